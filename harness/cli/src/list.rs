//! `dtnet list`: the scenarios in a directory, name and description.

use std::path::PathBuf;

use scenario::Scenario;

use crate::output::{say, Outcome, Verdict};

/// Arguments of `dtnet list`.
#[derive(clap::Args)]
pub struct ListArgs {
    /// Directory of scenario files.
    #[arg(default_value = "scenarios")]
    dir: PathBuf,
}

/// Lists the scenario files of the directory in `args`.
pub fn list(args: ListArgs) -> Outcome {
    let entries = std::fs::read_dir(&args.dir).map_err(|e| format!("{}: {e}", args.dir.display()))?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    let (loaded, errors): (Vec<_>, Vec<_>) = paths.iter().map(|p| Scenario::load(p)).partition(Result::is_ok);
    let scenarios: Vec<Scenario> = loaded.into_iter().flatten().collect();
    let width = scenarios.iter().map(|s| s.name.len()).max().unwrap_or(0);
    for s in &scenarios {
        let description = s.description().split_whitespace().collect::<Vec<_>>().join(" ");
        say(format_args!("{:<width$}  {description}", s.name));
    }
    let errors: Vec<String> = errors.into_iter().filter_map(|e| e.err()).map(|e| e.to_string()).collect();
    if errors.is_empty() {
        Ok(Verdict::Passed)
    } else {
        Err(errors.join("\ndtnet: "))
    }
}

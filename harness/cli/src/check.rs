//! `dtnet check`: validate scenario files without running them.

use std::path::PathBuf;

use scenario::Scenario;

use crate::output::{say, Outcome, Verdict};

/// Arguments of `dtnet check`.
#[derive(clap::Args)]
pub struct CheckArgs {
    /// Scenario files.
    #[arg(required = true)]
    scenarios: Vec<PathBuf>,
}

/// Loads and checks every scenario file of `args`.
pub fn check(args: CheckArgs) -> Outcome {
    let mut errors = Vec::new();
    for path in &args.scenarios {
        match Scenario::load(path).and_then(|s| scenario::check(&s).map(|()| s)) {
            Ok(s) => say(format_args!("ok {} ({})", path.display(), s.name)),
            Err(e) => errors.push(e.to_string()),
        }
    }
    if errors.is_empty() {
        Ok(Verdict::Passed)
    } else {
        Err(errors.join("\ndtnet: "))
    }
}

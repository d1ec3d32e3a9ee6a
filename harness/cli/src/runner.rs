//! Running scenarios for `run`, `record` and `replay`: loading files (or
//! the built-in tour), the wall-clock limit, and a progress bar on a
//! terminal.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use scenario::units::Dur;
use scenario::{Progress, RunOptions, Scenario, ScenarioReport};

/// Wall-clock limit of a run without `--timeout` (and of `record` and
/// `replay`): far beyond any shipped scenario, short of a forgotten job.
pub const DEFAULT_TIMEOUT: &str = "10m";

/// Loads scenario files, or the built-in default when there are none; every
/// file that does not load is reported.
pub fn load_scenarios(paths: &[PathBuf], seed: Option<u64>) -> Result<Vec<Scenario>, String> {
    let loaded: Vec<Result<Scenario, String>> = if paths.is_empty() {
        Scenario::builtin_tour().into_iter().map(Ok).collect()
    } else {
        paths.iter().map(|p| Scenario::load(p).map_err(|e| e.to_string())).collect()
    };
    let errors: Vec<String> = loaded.iter().filter_map(|r| r.as_ref().err().cloned()).collect();
    if !errors.is_empty() {
        return Err(errors.join("\ndtnet: "));
    }
    let scenarios = loaded.into_iter().flatten();
    Ok(scenarios.map(|s| if let Some(seed) = seed { s.with_seed(seed) } else { s }).collect())
}

/// A progress bar on stderr, when stderr is a terminal.
fn progress_bar(name: &str) -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new(0).with_message(name.to_owned());
    let style = ProgressStyle::with_template("{msg} [{bar:40}] {percent:>3}% {elapsed}")
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    Some(bar)
}

/// The wall-clock limit of commands without `--timeout`.
pub fn default_timeout() -> Duration {
    DEFAULT_TIMEOUT.parse::<Dur>().map_or(Duration::from_secs(600), |d| d.0)
}

/// Runs one scenario within `timeout` of wall time, with a progress bar if
/// `show_progress` and stderr is a terminal.
pub fn run_one(
    scenario: &Scenario,
    record: bool,
    show_progress: bool,
    timeout: Duration,
) -> Result<ScenarioReport, String> {
    let bar = show_progress.then(|| progress_bar(&scenario.name)).flatten();
    let progress = bar.clone().map(|bar| {
        Arc::new(move |p: Progress| {
            bar.set_length(p.total);
            bar.set_position(p.done);
        }) as Arc<dyn Fn(Progress) + Send + Sync>
    });
    let options = RunOptions { record, progress, wall_limit: Some(timeout) };
    let report = scenario::run(scenario, &options).map_err(|e| e.to_string());
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    report
}

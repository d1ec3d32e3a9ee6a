//! `dtnet run`: run scenario files (or the built-in tour), a report each,
//! a summary table after several.

use std::path::PathBuf;

use capture::Format;
use scenario::units::Dur;
use scenario::{Scenario, ScenarioReport};
use sim::record::write_capture;

use crate::output::{say, verdict, Outcome};
use crate::runner::{load_scenarios, run_one, DEFAULT_TIMEOUT};

/// Arguments of `dtnet run`.
#[derive(clap::Args)]
pub struct RunArgs {
    /// Scenario files; none runs the built-in default.
    scenarios: Vec<PathBuf>,
    /// Print one JSON object per scenario per line instead of a table.
    #[arg(long)]
    json: bool,
    /// Write each scenario's capture to DIR/NAME.pcapng, NAME being the scenario's name.
    #[arg(long, value_name = "DIR")]
    record: Option<PathBuf>,
    /// Run with this seed instead of the scenario's.
    #[arg(long)]
    seed: Option<u64>,
    /// Wall-clock limit of each scenario's run, e.g. "30s" or "10m": a run
    /// still going then is stopped and fails, reporting what was unfinished.
    #[arg(long, value_name = "DURATION", default_value = DEFAULT_TIMEOUT)]
    timeout: Dur,
}

/// Runs every scenario in `args`, printing each report.
pub fn run(args: RunArgs) -> Outcome {
    let scenarios = load_scenarios(&args.scenarios, args.seed)?;
    if let Some(dir) = &args.record {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let (mut passed, mut errors, mut summary) = (true, Vec::new(), Vec::new());
    for scenario in &scenarios {
        if let Some(why) = scenario.unavailable() {
            eprintln!("dtnet: {}: skipped: {why}", scenario.name);
            continue;
        }
        let report = match run_one(scenario, args.record.is_some(), !args.json, args.timeout.0) {
            Ok(report) => report,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        if args.json {
            say(report.to_json().to_string());
        } else {
            say(&report);
        }
        if let Some(dir) = &args.record {
            let path = dir.join(format!("{}.pcapng", scenario.name));
            write_capture(&path, &report.records, Format::PcapNg).map_err(|e| e.to_string())?;
        }
        passed &= report.passed();
        summary.push(summary_row(scenario, &report));
    }
    if summary.len() > 1 && !args.json {
        say(summary_table(&summary));
    }
    if errors.is_empty() {
        Ok(verdict(passed))
    } else {
        Err(errors.join("\ndtnet: "))
    }
}

/// One line of the summary `run` prints after several scenarios.
fn summary_row(scenario: &Scenario, report: &ScenarioReport) -> [String; 6] {
    let held = report.expectations.iter().filter(|c| c.passed).count();
    let verified: u64 = report.traffic.iter().map(|t| t.bytes).sum();
    [
        scenario.name.clone(),
        scenario.stack_mode(),
        report.stacks.len().to_string(),
        format!("{:.1} MB", verified as f64 / 1e6),
        format!("{held}/{}", report.expectations.len()),
        if report.passed() { "pass".into() } else { "FAIL".into() },
    ]
}

/// The summary of several runs, one line per scenario.
fn summary_table(rows: &[[String; 6]]) -> String {
    let head = ["scenario", "forwarding mode / thread model", "stacks", "verified", "checks", "result"];
    let widths: Vec<usize> =
        (0..6).map(|i| rows.iter().map(|r| r[i].len()).chain([head[i].len()]).max().unwrap_or(0)).collect();
    let line = |cells: &[&str]| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        padded.join("  ").trim_end().to_owned()
    };
    let mut out = format!("summary\n{}\n", line(&head));
    for row in rows {
        out += &line(&row.iter().map(String::as_str).collect::<Vec<_>>());
        out.push('\n');
    }
    out
}

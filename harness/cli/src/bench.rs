//! `dtnet bench`: measure the data path and print the figures.

use ::bench::Budget;

use crate::output::{say, Outcome, Verdict};

/// Arguments of `dtnet bench`.
#[derive(clap::Args)]
pub struct BenchArgs {
    /// Print one JSON object per line instead of a table.
    #[arg(long)]
    json: bool,
    /// Only benchmarks whose names start with one of these.
    prefixes: Vec<String>,
}

/// Runs the benchmarks `args` select and prints their measurements.
pub fn bench(args: BenchArgs) -> Outcome {
    if cfg!(debug_assertions) {
        eprintln!("dtnet: warning: a debug build measures nothing useful; use `cargo run --release -p dtnet -- bench`");
    }
    let results = ::bench::run(&args.prefixes, Budget::FULL);
    for m in results {
        if args.json {
            say(serde_json::to_string(&m).map_err(|e| e.to_string())?);
        } else {
            say(format_args!("{:<36} {:>10.2} {}", m.name, m.value, m.unit));
        }
    }
    Ok(Verdict::Passed)
}

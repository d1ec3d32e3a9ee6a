//! `dtnet record`: run a scenario and write what every port and queue saw
//! to a capture file.

use std::path::PathBuf;

use capture::{Format, Record};
use clap::ValueEnum;
use sim::record::write_capture;

use crate::output::{say, verdict, Outcome};
use crate::runner::{default_timeout, load_scenarios, run_one};

/// The capture formats `--format` offers.
#[derive(Clone, Copy, ValueEnum)]
pub enum CaptureFormat {
    /// pcapng: one interface per port and queue, directions.
    Pcapng,
    /// Classic pcap: no interface names, no directions.
    Pcap,
}

impl CaptureFormat {
    fn format(self) -> Format {
        match self {
            CaptureFormat::Pcapng => Format::PcapNg,
            CaptureFormat::Pcap => Format::Pcap,
        }
    }

    fn extension(self) -> &'static str {
        match self {
            CaptureFormat::Pcapng => "pcapng",
            CaptureFormat::Pcap => "pcap",
        }
    }
}

/// Arguments of `dtnet record`.
#[derive(clap::Args)]
pub struct RecordArgs {
    /// The scenario file.
    scenario: PathBuf,
    /// The capture file; default `<scenario name>.<format>`.
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Capture format.
    #[arg(long, value_enum, default_value = "pcapng")]
    format: CaptureFormat,
    /// Run with this seed instead of the scenario's.
    #[arg(long)]
    seed: Option<u64>,
}

/// How many distinct interfaces `records` name.
fn interfaces(records: &[Record]) -> usize {
    let mut names: Vec<_> = records.iter().map(|r| r.interface.as_deref()).collect();
    names.sort_unstable();
    names.dedup();
    names.len()
}

/// Runs the scenario of `args` and writes its capture.
pub fn record(args: RecordArgs) -> Outcome {
    let scenario = load_scenarios(std::slice::from_ref(&args.scenario), args.seed)?.remove(0);
    let report = run_one(&scenario, true, true, default_timeout())?;
    say(&report);
    let path = args.output.unwrap_or_else(|| PathBuf::from(format!("{}.{}", scenario.name, args.format.extension())));
    write_capture(&path, &report.records, args.format.format()).map_err(|e| e.to_string())?;
    let n = report.records.len();
    say(format_args!("recorded {n} frames on {} interfaces to {}", interfaces(&report.records), path.display()));
    Ok(verdict(report.passed()))
}

//! `dtnet replay`: inject a capture into a host of a scenario's topology
//! and print the normalised trace of what the hosts saw, or compare it with
//! a golden file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use capture::Record;
use clap::ValueEnum;
use scenario::plan::ReplayTraffic;
use scenario::{Expect, Scenario, Traffic};
use sim::replay::{check_golden, first_listen_port, inbound_frames, read_capture, Golden};

use crate::output::{say, verdict, Outcome};
use crate::runner::{default_timeout, run_one};

/// The topology `dtnet replay` uses without `--scenario`.
const REPLAY_TOPOLOGY: &str = r#"
name = "replay"
description = "One host, server (10.0.0.1/24, 02:00:00:00:00:01), with four RSS stacks on a bridge without impairments."
executor = "sim"

[[host]]
name = "server"
mac = "02:00:00:00:00:01"
ipv4 = "10.0.0.1/24"
stacks = 4
"#;
/// Where a replay's echo listeners listen when the capture does not say.
const DEFAULT_ECHO_PORT: u16 = 5201;
/// Virtual time a replay may run past the capture's last frame.
const REPLAY_GRACE: Duration = Duration::from_secs(60);

/// When `--pace` injects each frame.
#[derive(Clone, Copy, ValueEnum)]
pub enum PaceArg {
    /// Every frame at once.
    Fast,
    /// Keep the recorded gaps.
    Recorded,
}

/// Arguments of `dtnet replay`.
#[derive(clap::Args)]
pub struct ReplayArgs {
    /// The pcap or pcapng file.
    pcap: PathBuf,
    /// The host to replay into: the frames the capture saw its port
    /// receive (every frame of a capture without interface names) enter its
    /// link from a replay port on the bridge.
    #[arg(long, value_name = "PORT")]
    into: String,
    /// Take the topology (hosts, links, seed) from this scenario file,
    /// without its traffic; default: host `server` with four stacks. A TCP
    /// conversation replays faithfully only into the server it was recorded
    /// from (same stacks, same seed): pass the scenario that recorded it.
    #[arg(long, value_name = "FILE")]
    scenario: Option<PathBuf>,
    /// When to inject each frame.
    #[arg(long, value_enum, default_value = "recorded")]
    pace: PaceArg,
    /// TCP echo listeners on this port of the host answer replayed
    /// connections; default: the port of the capture's first connection
    /// request to the host, else 5201.
    #[arg(long)]
    echo_port: Option<u16>,
    /// Compare the trace with this golden file (exit 1 if it differs)
    /// instead of printing it.
    #[arg(long, value_name = "GOLDEN")]
    expect: Option<PathBuf>,
    /// Write the trace to the golden file instead of comparing.
    #[arg(long, requires = "expect")]
    update: bool,
}

/// The scenario a replay runs in: `topology`'s hosts and links, its own
/// traffic replaced by the replay (with echo listeners), its deadline long
/// enough for the capture. Of its expectations only "no leaks" is kept: a
/// replayed conversation need not complete (the capture's peer does not
/// answer what the host says differently), but buffers must come back.
fn replay_scenario(mut scenario: Scenario, args: &ReplayArgs, records: &[Record]) -> Result<Scenario, String> {
    let plan = &mut scenario.plan;
    let host = plan.hosts.iter().position(|h| h.name == args.into).ok_or_else(|| {
        let names: Vec<&str> = plan.hosts.iter().map(|h| h.name.as_str()).collect();
        format!("no host {:?} to replay into (hosts: {})", args.into, names.join(", "))
    })?;
    let frames = inbound_frames(records, &args.into).map_err(|e| e.to_string())?;
    let echo_port = args.echo_port.or_else(|| first_listen_port(&frames)).unwrap_or(DEFAULT_ECHO_PORT);
    plan.traffic = vec![Traffic::Replay(ReplayTraffic {
        host,
        file: args.pcap.clone(),
        recorded_pace: matches!(args.pace, PaceArg::Recorded),
        echo_port: Some(echo_port),
    })];
    let span = match (frames.first(), frames.last()) {
        (Some(first), Some(last)) => last.time.since(first.time),
        _ => Duration::ZERO,
    };
    plan.duration = plan.duration.max(span + REPLAY_GRACE);
    plan.expect = Expect { delivered: false, placement: false, ..Expect::default() };
    Ok(scenario)
}

/// Replays the capture of `args` and prints or compares the trace.
pub fn replay(args: ReplayArgs) -> Outcome {
    let records = read_capture(&args.pcap).map_err(|e| e.to_string())?;
    let topology = match &args.scenario {
        Some(path) => Scenario::load(path),
        None => Scenario::parse(REPLAY_TOPOLOGY, "<builtin replay topology>", Path::new(".")),
    }
    .map_err(|e| e.to_string())?;
    let scenario = replay_scenario(topology, &args, &records)?;
    let report = run_one(&scenario, true, true, default_timeout())?;
    if !report.passed() {
        eprint!("{report}");
    }
    let trace = capture::trace_text(&report.records);
    let Some(golden) = &args.expect else {
        print!("{trace}");
        return Ok(verdict(report.passed()));
    };
    let lines = trace.lines().count();
    let matched = match check_golden(golden, &trace, args.update).map_err(|e| e.to_string())? {
        Golden::Matches => {
            say(format_args!("golden trace {}: {lines} lines match", golden.display()));
            true
        }
        Golden::Updated => {
            say(format_args!("golden trace {}: written, {lines} lines", golden.display()));
            true
        }
        Golden::Differs(diff) => {
            say(format_args!("golden trace {}: {diff}", golden.display()));
            false
        }
    };
    Ok(verdict(matched && report.passed()))
}

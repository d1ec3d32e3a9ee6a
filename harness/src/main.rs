//! `dtnet`: the command-line front end of the dtnet test bench.
//!
//! Every command is a thin layer over the library: scenarios are loaded and
//! run by [`harness::scenario`], captures written by [`harness::record`],
//! replays made and compared by [`harness::replay`] (inside a scenario's
//! topology, through the same engine). Exit codes: 0 when everything
//! passed, 1 when an expectation (or a golden trace) failed, 2 when the
//! input was bad (a file that does not load, a damaged capture), 3 when a
//! held secondary (`domain attach --hold`) lost its primary.

use std::fmt::Display;
use std::io::{IsTerminal, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use capture::{Format, Record};
use clap::{Parser, Subcommand, ValueEnum};
use ethdev::rss::{Reta, RssKey};
use harness::bench::{self, Budget};
use harness::record::write_capture;
use harness::replay::{check_golden, first_listen_port, inbound_frames, read_capture, Golden};
use harness::rss::{parse_types, RssQuery};
use harness::scenario::plan::ReplayTraffic;
use harness::scenario::units::Dur;
use harness::scenario::{self, Expect, Progress, RunOptions, Scenario, ScenarioReport, Traffic};
use indicatif::{ProgressBar, ProgressStyle};

mod cli;

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
/// Wall-clock limit of a run without `--timeout` (and of `record` and
/// `replay`): far beyond any shipped scenario, short of a forgotten job.
const DEFAULT_TIMEOUT: &str = "10m";

/// Hermetic simulation and developer-test harness for DPDK-style user-space
/// TCP/IP stacks.
#[derive(Parser)]
#[command(name = "dtnet", version, about)]
struct Cli {
    /// More log output on stderr: -v info, -vv debug, -vvv trace
    /// (default: warnings). RUST_LOG, when set, decides instead.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Less log output: -q errors only, -qq nothing.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    quiet: u8,
    #[command(subcommand)]
    command: Command,
}

/// Sends `tracing` events to stderr at the level `-v`/`-q` ask for, unless
/// `RUST_LOG` says otherwise.
fn init_logs(verbose: u8, quiet: u8) {
    use tracing_subscriber::filter::{EnvFilter, LevelFilter};
    let level = match i16::from(verbose) - i16::from(quiet) {
        i16::MIN..=-2 => LevelFilter::OFF,
        -1 => LevelFilter::ERROR,
        0 => LevelFilter::WARN,
        1 => LevelFilter::INFO,
        2 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    };
    let filter = EnvFilter::builder().with_default_directive(level.into()).from_env_lossy();
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).init();
}

#[derive(Subcommand)]
enum Command {
    /// Run scenario files (the built-in default without one): a report per
    /// scenario; exits 1 if an expectation fails, 2 if a file is bad.
    Run(RunArgs),
    /// Run a scenario and write everything its hosts' ports and queues saw
    /// to a capture file.
    Record(RecordArgs),
    /// Inject a capture into a host and print (or compare with a golden
    /// file) the normalised trace of what the hosts saw.
    Replay(ReplayArgs),
    /// List the scenarios in a directory: name and description.
    List(ListArgs),
    /// Validate scenario files without running them: everything `run`
    /// checks before it starts (keys, limits, memory, files, the world's
    /// construction).
    Check(CheckArgs),
    /// Print the Toeplitz RSS hash of a flow and the queue it lands on.
    Rss(RssArgs),
    /// Measure the data path (use a release build). Prints one JSON object
    /// per line with --json.
    Bench(BenchArgs),
    /// Shared-memory domains (DPDK's --file-prefix): list, clean, hold one
    /// as primary, attach as secondary.
    #[command(subcommand)]
    Domain(cli::domain::DomainCommand),
    /// What a domain holds: processes, rings, pools by owner (gazellectl's view).
    Stats(cli::stats::StatsArgs),
    /// DPDK's multi-process samples as real processes of a domain.
    #[command(subcommand)]
    Mp(cli::mp::MpCommand),
}

#[derive(clap::Args)]
struct RunArgs {
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

#[derive(Clone, Copy, ValueEnum)]
enum CaptureFormat {
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

#[derive(clap::Args)]
struct RecordArgs {
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

#[derive(Clone, Copy, ValueEnum)]
enum PaceArg {
    /// Every frame at once.
    Fast,
    /// Keep the recorded gaps.
    Recorded,
}

#[derive(clap::Args)]
struct ReplayArgs {
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

#[derive(clap::Args)]
struct ListArgs {
    /// Directory of scenario files.
    #[arg(default_value = "scenarios")]
    dir: PathBuf,
}

#[derive(clap::Args)]
struct CheckArgs {
    /// Scenario files.
    #[arg(required = true)]
    scenarios: Vec<PathBuf>,
}

#[derive(clap::Args)]
struct RssArgs {
    /// Source IP address.
    #[arg(long)]
    src: IpAddr,
    /// Destination IP address.
    #[arg(long)]
    dst: IpAddr,
    /// Source port (hash over ports when both ports are given).
    #[arg(long, requires = "dport")]
    sport: Option<u16>,
    /// Destination port.
    #[arg(long, requires = "sport")]
    dport: Option<u16>,
    /// Toeplitz key in hex (40 or 52 bytes); default is the common 82599 key.
    #[arg(long)]
    key: Option<String>,
    /// Number of queues, filling a 128-entry RETA round-robin.
    #[arg(long, default_value_t = 1, conflicts_with = "reta")]
    queues: u16,
    /// Explicit RETA, comma separated queue numbers (64/128/256/512 entries).
    #[arg(long, value_delimiter = ',')]
    reta: Option<Vec<u16>>,
    /// Hash types, comma separated (ipv4, ipv4-tcp, ipv4-udp, ipv6, ipv6-tcp,
    /// ipv6-udp); ports take part only if an L4 type is listed.
    #[arg(long, default_value = "ipv4,ipv4-tcp,ipv4-udp,ipv6,ipv6-tcp,ipv6-udp")]
    types: String,
}

#[derive(clap::Args)]
struct BenchArgs {
    /// Print one JSON object per line instead of a table.
    #[arg(long)]
    json: bool,
    /// Only benchmarks whose names start with one of these.
    prefixes: Vec<String>,
}

/// How a command ended: everything passed, something failed, or the input
/// was bad (the message says why).
enum Verdict {
    Passed,
    Failed,
}

type Outcome = Result<Verdict, String>;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logs(cli.verbose, cli.quiet);
    let result = match cli.command {
        Command::Run(args) => run(args),
        Command::Record(args) => record(args),
        Command::Replay(args) => replay(args),
        Command::List(args) => list(args),
        Command::Check(args) => check(args),
        Command::Rss(args) => rss(args),
        Command::Bench(args) => bench(args),
        Command::Domain(command) => match cli::domain::run(command) {
            Ok(cli::domain::Ended::PrimaryDied) => return ExitCode::from(3),
            Ok(cli::domain::Ended::Done) => Ok(Verdict::Passed),
            Err(e) => Err(e),
        },
        Command::Stats(args) => cli::stats::run(args).map(|()| Verdict::Passed),
        Command::Mp(command) => cli::mp::run(command).map(|ok| if ok { Verdict::Passed } else { Verdict::Failed }),
    };
    match result {
        Ok(Verdict::Passed) => ExitCode::SUCCESS,
        Ok(Verdict::Failed) => ExitCode::FAILURE,
        Err(message) => {
            eprintln!("dtnet: {message}");
            ExitCode::from(2)
        }
    }
}

/// Writes a line to stdout; a closed pipe (`dtnet ... | head`) is not an
/// error worth a panic.
fn say(text: impl Display) {
    let _ = writeln!(std::io::stdout().lock(), "{text}");
}

fn verdict(passed: bool) -> Verdict {
    if passed {
        Verdict::Passed
    } else {
        Verdict::Failed
    }
}

/// Loads scenario files, or the built-in default when there are none; every
/// file that does not load is reported.
fn load_scenarios(paths: &[PathBuf], seed: Option<u64>) -> Result<Vec<Scenario>, String> {
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
fn default_timeout() -> Duration {
    DEFAULT_TIMEOUT.parse::<Dur>().map_or(Duration::from_secs(600), |d| d.0)
}

/// Runs one scenario within `timeout` of wall time, with a progress bar if
/// `show_progress` and stderr is a terminal.
fn run_one(
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

fn run(args: RunArgs) -> Outcome {
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

/// How many distinct interfaces `records` name.
fn interfaces(records: &[Record]) -> usize {
    let mut names: Vec<_> = records.iter().map(|r| r.interface.as_deref()).collect();
    names.sort_unstable();
    names.dedup();
    names.len()
}

fn record(args: RecordArgs) -> Outcome {
    let scenario = load_scenarios(std::slice::from_ref(&args.scenario), args.seed)?.remove(0);
    let report = run_one(&scenario, true, true, default_timeout())?;
    say(&report);
    let path = args.output.unwrap_or_else(|| PathBuf::from(format!("{}.{}", scenario.name, args.format.extension())));
    write_capture(&path, &report.records, args.format.format()).map_err(|e| e.to_string())?;
    let n = report.records.len();
    say(format_args!("recorded {n} frames on {} interfaces to {}", interfaces(&report.records), path.display()));
    Ok(verdict(report.passed()))
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

fn replay(args: ReplayArgs) -> Outcome {
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

fn list(args: ListArgs) -> Outcome {
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

fn check(args: CheckArgs) -> Outcome {
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

fn rss(args: RssArgs) -> Outcome {
    let types = parse_types(&args.types).map_err(|e| e.to_string())?;
    let key = args.key.as_deref().map(RssKey::from_hex).transpose().map_err(|e| e.to_string())?;
    let reta = match args.reta {
        Some(entries) => {
            let queues = entries.iter().max().map_or(1, |&m| m + 1);
            Reta::from_entries(entries, queues)
        }
        None => Reta::new(128, args.queues),
    }
    .map_err(|e| e.to_string())?;
    let l4 = types.intersects(
        ethdev::rss::RssHashTypes::IPV4_TCP
            | ethdev::rss::RssHashTypes::IPV4_UDP
            | ethdev::rss::RssHashTypes::IPV6_TCP
            | ethdev::rss::RssHashTypes::IPV6_UDP,
    );
    let ports = args.sport.zip(args.dport).filter(|_| l4);
    let query = RssQuery { src: args.src, dst: args.dst, ports, key: key.unwrap_or(RssKey::DEFAULT), reta };
    let placed = query.place().map_err(|e| e.to_string())?;
    say(format_args!("hash 0x{:08x} queue {}", placed.hash, placed.queue));
    Ok(Verdict::Passed)
}

fn bench(args: BenchArgs) -> Outcome {
    if cfg!(debug_assertions) {
        eprintln!(
            "dtnet: warning: a debug build measures nothing useful; use `cargo run --release -p harness -- bench`"
        );
    }
    let results = bench::run(&args.prefixes, Budget::FULL);
    for m in results {
        if args.json {
            say(serde_json::to_string(&m).map_err(|e| e.to_string())?);
        } else {
            say(format_args!("{:<36} {:>10.2} {}", m.name, m.value, m.unit));
        }
    }
    Ok(Verdict::Passed)
}

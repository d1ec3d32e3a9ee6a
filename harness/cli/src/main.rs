//! `dtnet`: the command-line front end of the dtnet test bench.
//!
//! This package is the CLI room of the `harness/` directory: `main` holds
//! the clap definitions and the dispatch, and each subcommand is a module
//! of its own ([`run`], [`record`], [`replay`], [`list`], [`check`],
//! [`rss`], [`bench`](mod@bench), [`domain`], [`stats`], [`mp`](mod@mp)),
//! a thin layer over the crates below: scenarios are loaded and run by the
//! `scenario` crate, captures written and replays compared by `sim`
//! (inside a scenario's topology, through the same engine), benchmarks
//! measured by `bench`, DPDK's multi-process samples run by `mp`. What
//! several subcommands share lives in [`runner`] (loading and running
//! scenarios) and [`output`] (verdicts, stdout). Exit codes: 0 when everything
//! passed, 1 when an expectation (or a golden trace) failed, 2 when the
//! input was bad (a file that does not load, a damaged capture), 3 when a
//! held secondary (`domain attach --hold`) lost its primary.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use output::Verdict;

mod bench;
mod check;
mod domain;
mod list;
mod mp;
mod output;
mod record;
mod replay;
mod rss;
mod run;
mod runner;
mod stats;

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
    Run(run::RunArgs),
    /// Run a scenario and write everything its hosts' ports and queues saw
    /// to a capture file.
    Record(record::RecordArgs),
    /// Inject a capture into a host and print (or compare with a golden
    /// file) the normalised trace of what the hosts saw.
    Replay(replay::ReplayArgs),
    /// List the scenarios in a directory: name and description.
    List(list::ListArgs),
    /// Validate scenario files without running them: everything `run`
    /// checks before it starts (keys, limits, memory, files, the world's
    /// construction).
    Check(check::CheckArgs),
    /// Print the Toeplitz RSS hash of a flow and the queue it lands on.
    Rss(rss::RssArgs),
    /// Measure the data path (use a release build). Prints one JSON object
    /// per line with --json.
    Bench(bench::BenchArgs),
    /// Shared-memory domains (DPDK's --file-prefix): list, clean, hold one
    /// as primary, attach as secondary.
    #[command(subcommand)]
    Domain(domain::DomainCommand),
    /// What a domain holds: processes, rings, pools by owner (gazellectl's view).
    Stats(stats::StatsArgs),
    /// DPDK's multi-process samples as real processes of a domain.
    #[command(subcommand)]
    Mp(mp::MpCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logs(cli.verbose, cli.quiet);
    let result = match cli.command {
        Command::Run(args) => run::run(args),
        Command::Record(args) => record::record(args),
        Command::Replay(args) => replay::replay(args),
        Command::List(args) => list::list(args),
        Command::Check(args) => check::check(args),
        Command::Rss(args) => rss::rss(args),
        Command::Bench(args) => bench::bench(args),
        Command::Domain(command) => match domain::run(command) {
            Ok(domain::Ended::PrimaryDied) => return ExitCode::from(3),
            Ok(domain::Ended::Done) => Ok(Verdict::Passed),
            Err(e) => Err(e),
        },
        Command::Stats(args) => stats::run(args).map(|()| Verdict::Passed),
        Command::Mp(command) => mp::run(command).map(|ok| if ok { Verdict::Passed } else { Verdict::Failed }),
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

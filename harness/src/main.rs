//! `dtnet`: the command-line front end of the dtnet test bench.

use std::net::IpAddr;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ethdev::rss::{Reta, RssKey};
use harness::bench::{self, Budget};
use harness::rss::{parse_types, RssQuery};
use harness::wire_run::{self, WireRun};

/// Hermetic simulation and developer-test harness for DPDK-style user-space
/// TCP/IP stacks.
#[derive(Parser)]
#[command(name = "dtnet", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the default hermetic scenario: veth ports with RSS on a bridge
    /// with seeded impairments, in virtual time; prints a report and exits
    /// non-zero if any expectation fails.
    Run(RunArgs),
    /// Print the Toeplitz RSS hash of a flow and the queue it lands on.
    Rss(RssArgs),
    /// Measure the data path (use a release build). Prints one JSON object
    /// per line with --json.
    Bench(BenchArgs),
}

#[derive(clap::Args)]
struct RunArgs {
    /// Seed of the traffic and the impairments.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Flows to generate.
    #[arg(long, default_value_t = 2000)]
    flows: u32,
    /// Loss probability on every bridge link (0.0-1.0).
    #[arg(long, default_value_t = 0.01)]
    loss: f64,
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

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Run(args) => run(args),
        Command::Rss(args) => rss(args),
        Command::Bench(args) => {
            bench(args);
            Ok(true)
        }
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(message) => {
            eprintln!("dtnet: {message}");
            ExitCode::from(2)
        }
    }
}

fn run(args: RunArgs) -> Result<bool, String> {
    let report =
        wire_run::run(&WireRun { seed: args.seed, flows: args.flows, loss: args.loss }).map_err(|e| e.to_string())?;
    print!("{report}");
    Ok(report.passed())
}

fn rss(args: RssArgs) -> Result<bool, String> {
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
    println!("hash 0x{:08x} queue {}", placed.hash, placed.queue);
    Ok(true)
}

fn bench(args: BenchArgs) {
    if cfg!(debug_assertions) {
        eprintln!(
            "dtnet: warning: a debug build measures nothing useful; use `cargo run --release -p harness -- bench`"
        );
    }
    let results = bench::run(&args.prefixes, Budget::FULL);
    for m in results {
        if args.json {
            println!("{}", serde_json::to_string(&m).expect("measurements serialise"));
        } else {
            println!("{:<36} {:>10.2} {}", m.name, m.value, m.unit);
        }
    }
}

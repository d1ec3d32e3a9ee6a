//! `dtnet mp`: DPDK's multi-process samples as real processes.
//!
//! Each role is one process, started by hand, by a test or by the `procs`
//! executor, and prints one report line; the exit status says whether its
//! checks held (0), failed (1), or it could not run (2).

use std::path::PathBuf;
use std::time::Duration;

use ethdev::shm::dir;

use ::mp::gazelle::{self, ltran, tuple_filter, vf};
use ::mp::place::Place;
use ::mp::{client_server, ring_peer, simple, symmetric};

/// The `mp` subcommands.
#[derive(clap::Subcommand)]
pub enum MpCommand {
    /// simple_mp: a primary and a secondary exchange messages through
    /// rings PRI_2_SEC and SEC_2_PRI from pool MSG_POOL.
    Simple(SimpleArgs),
    /// symmetric_mp: N processes (--proc-type auto) share ports port0 and
    /// port1; process n forwards queue n of each port to the other.
    Symmetric(SymmetricArgs),
    /// client_server_mp: a server (no --client-id) distributes what ports
    /// port0 and port1 receive to rings MProc_Client_<n>_RX; client n
    /// forwards out of the other port.
    ClientServer(ClientServerArgs),
    /// gazelle with one VF per process: process 0 makes a VF per process
    /// and switches between them, and serves TCP echo on its own; every
    /// other process runs echo clients on its VF.
    GazelleVf(GazelleArgs),
    /// gazelle's tuple_filter mode: every process on one port and address,
    /// each connection steered to its process's queue by a flow rule the
    /// primary makes; process 0 is the NIC, a LAN peer serving TCP echo,
    /// and gazelle's process 0; every process runs echo clients.
    TupleFilter(GazelleArgs),
    /// gazelle's ltran mode: process 0 is ltran, the forwarder that owns
    /// the NIC and switches every frame to an lstack process by its
    /// connection and listener tables, and a LAN peer serving TCP echo;
    /// every other process is an lstack instance running echo clients.
    Ltran(GazelleArgs),
    /// The far end of the `ring.xproc.spsc.burst32` benchmark: drain a
    /// domain ring, checking the sequence, and print how many words came.
    #[command(hide = true)]
    RingPeer {
        /// The domain's prefix.
        #[arg(long)]
        prefix: String,
        /// The ring to drain.
        #[arg(long)]
        ring: String,
        /// Runtime directory holding the domain.
        #[arg(long)]
        runtime_dir: PathBuf,
    },
}

/// Arguments of `dtnet mp simple`.
#[derive(clap::Args)]
pub struct SimpleArgs {
    /// The domain's prefix (DPDK's --file-prefix).
    #[arg(long, default_value = "simple_mp")]
    prefix: String,
    /// primary or secondary (DPDK's --proc-type).
    #[arg(long)]
    proc_type: ProcType,
    /// Messages each side sends.
    #[arg(long, default_value_t = 10_000)]
    messages: u32,
    /// Seconds a secondary waits for its primary.
    #[arg(long, default_value_t = 5.0)]
    wait: f64,
    /// Secondary only: send garbage instead of messages.
    #[arg(long)]
    hostile: bool,
    /// The name a secondary registers under.
    #[arg(long, default_value = "secondary")]
    name: String,
    /// Runtime directory holding the domains.
    #[arg(long)]
    runtime_dir: Option<PathBuf>,
}

/// Arguments of `dtnet mp symmetric`.
#[derive(clap::Args)]
pub struct SymmetricArgs {
    #[command(flatten)]
    place: PlaceArgs,
    /// Frames the primary sends into each port.
    #[arg(long, default_value_t = 10_000)]
    frames: u32,
}

/// Where one process of a sample stands.
#[derive(clap::Args)]
pub struct PlaceArgs {
    /// The domain's prefix (DPDK's --file-prefix, gazelle's unix_prefix;
    /// default: the sample's name, e.g. symmetric_mp or tuple_filter).
    #[arg(long)]
    prefix: Option<String>,
    /// Processes in the run (DPDK's --num-procs, gazelle's num_process).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=64))]
    num_procs: u16,
    /// This process's number (DPDK's --proc-id, gazelle's process_idx);
    /// process 0 is the primary.
    #[arg(long)]
    proc_id: u16,
    /// Seconds a secondary waits for its primary.
    #[arg(long, default_value_t = 5.0)]
    wait: f64,
    /// Runtime directory holding the domains.
    #[arg(long)]
    runtime_dir: Option<PathBuf>,
}

impl PlaceArgs {
    /// The place, in a domain named after `sample` unless --prefix says.
    fn place(self, sample: &str) -> Result<Place, String> {
        Ok(Place {
            prefix: self.prefix.unwrap_or_else(|| sample.into()),
            base: self.runtime_dir.unwrap_or_else(dir::base_dir),
            procs: self.num_procs,
            proc_id: self.proc_id,
            wait: wait(self.wait)?,
        })
    }
}

/// Arguments of `dtnet mp client-server`.
#[derive(clap::Args)]
pub struct ClientServerArgs {
    /// The domain's prefix (DPDK's --file-prefix).
    #[arg(long, default_value = "client_server_mp")]
    prefix: String,
    /// Clients the server distributes to.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=64))]
    clients: u16,
    /// Run client n instead of the server.
    #[arg(long)]
    client_id: Option<u16>,
    /// Server: frames sent into each port.
    #[arg(long, default_value_t = 10_000)]
    frames: u32,
    /// Server: how frames are spread over the clients.
    #[arg(long, value_enum, default_value_t = DistributionArg::RoundRobin)]
    distribution: DistributionArg,
    /// Server: words in each client's ring (a power of two; below 256 a
    /// client that stalls fills it, and the server counts drops).
    #[arg(long, default_value_t = 512)]
    ring_size: u32,
    /// Seconds a client waits for its server.
    #[arg(long, default_value_t = 5.0)]
    wait: f64,
    /// Runtime directory holding the domains.
    #[arg(long)]
    runtime_dir: Option<PathBuf>,
}

/// Arguments of `dtnet mp gazelle-vf`, `tuple-filter` and `ltran`.
#[derive(clap::Args)]
pub struct GazelleArgs {
    #[command(flatten)]
    place: PlaceArgs,
    /// Clients: connections each makes.
    #[arg(long, default_value_t = 8)]
    conns: u32,
    /// Bytes echoed per connection.
    #[arg(long, default_value_t = 64 * 1024)]
    bytes: u64,
    /// Who polls the stacks.
    #[arg(long, value_enum, default_value_t = ModelArg::Rtc)]
    model: ModelArg,
    /// Stacks each lstack process runs, a queue each (gazelle's
    /// `num_cpus`), its connections spread over them; gazelle-vf's server
    /// and ltran's forwarder keep one. Every process passes the same value.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=8))]
    stacks: u16,
    /// tuple-filter and ltran: every process also listens and the LAN peer
    /// makes --conns echo connections per process to them: in
    /// tuple-filter process n on port 7100 + n, steered by the listeners'
    /// flow rules; in ltran every instance on port 7100, the forwarder
    /// handing each new connection to the one with the fewest. Every
    /// process passes the flag.
    #[arg(long)]
    inbound: bool,
    /// tuple-filter: process 0 shares the port with the Linux kernel
    /// (gazelle's flow_bifurcation, the primary's alone): a kernel in a
    /// namespace with the port's MAC and address serves echo on port 8000,
    /// and the LAN peer echoes --conns connections with it through the
    /// port. Needs root.
    #[arg(long)]
    kernel: bool,
}

/// gazelle's thread models.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum ModelArg {
    /// Application threads run the stacks inside their calls.
    Rtc,
    /// A thread per stack; applications sleep until woken.
    Rtw,
}

/// How the server spreads frames.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum DistributionArg {
    /// Each frame to the next client that is up.
    RoundRobin,
    /// Each flow to one client, by the frame's RSS hash.
    FlowHash,
}

/// DPDK's process types.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum ProcType {
    /// Makes the domain's objects.
    Primary,
    /// Attaches to them.
    Secondary,
}

/// Runs one `mp` subcommand: `Ok(true)` if its checks held.
pub fn run(command: MpCommand) -> Result<bool, String> {
    let args = match command {
        MpCommand::Simple(args) => args,
        MpCommand::Symmetric(args) => return run_symmetric(args),
        MpCommand::ClientServer(args) => return run_client_server(args),
        MpCommand::GazelleVf(args) => return run_gazelle("gazelle-vf", args, vf::run),
        MpCommand::TupleFilter(args) => return run_gazelle("tuple-filter", args, tuple_filter::run),
        MpCommand::Ltran(args) => return run_gazelle("ltran", args, ltran::run),
        MpCommand::RingPeer { prefix, ring, runtime_dir } => {
            let count = ring_peer::drain(&prefix, &runtime_dir, &ring, || println!("attached"))?;
            println!("drained {count}");
            return Ok(true);
        }
    };
    let opts = simple::Options {
        prefix: args.prefix,
        base: args.runtime_dir.unwrap_or_else(dir::base_dir),
        messages: args.messages,
        wait: wait(args.wait)?,
        hostile: args.hostile,
    };
    match args.proc_type {
        ProcType::Primary => {
            let report = simple::primary(&opts, |line| println!("{line}"))?;
            println!("simple_mp primary: {report}");
            // With a dead secondary, success is getting everything back.
            let all = report.reclaimed.is_some() || (report.sent == opts.messages && report.received == opts.messages);
            Ok(all && report.in_use == 0 && report.bad_messages == 0 && report.bad_refs == 0)
        }
        ProcType::Secondary => {
            let report = simple::secondary(&opts, &args.name)?;
            println!("simple_mp secondary: {report}");
            Ok(report.received == opts.messages && report.bad_messages == 0 && report.bad_refs == 0)
        }
    }
}

fn wait(seconds: f64) -> Result<Duration, String> {
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("--wait: {e}"))
}

/// Runs one process of `symmetric_mp`: `Ok(true)` if its checks held.
fn run_symmetric(args: SymmetricArgs) -> Result<bool, String> {
    let opts = symmetric::Options { place: args.place.place("symmetric_mp")?, frames: args.frames };
    match symmetric::run(&opts, |line| println!("{line}"))? {
        symmetric::Outcome::Primary(report) => {
            println!("symmetric_mp primary: {report}");
            let (received, sent) = (report.received[0] + report.received[1], report.sent[0] + report.sent[1]);
            // Each frame arrived intact or left a gap, and every gap is a
            // frame a dead process held, sent or had in its rings (reclaimed):
            // exactly, since a buffer a secondary holds is always a frame.
            let all = received + report.gaps == sent && report.gaps == report.lost && report.bad == 0;
            let dead_own: usize = report.deaths.iter().map(|(_, r)| r.left).sum();
            let clean = report.in_use == 0 && dead_own == 0 && report.bridge_drops == 0;
            Ok(all && report.own.rx == report.predicted[0] && clean)
        }
        symmetric::Outcome::Secondary(counts) => {
            println!("symmetric_mp proc {}: {counts}", opts.place.proc_id);
            Ok(counts.rx[0] + counts.rx[1] == counts.tx[0] + counts.tx[1])
        }
    }
}

/// The signature of a gazelle mode's `run`.
type GazelleRun = fn(&gazelle::Options, &mut dyn FnMut(String)) -> Result<gazelle::Outcome, String>;

/// Runs one process of gazelle mode `mode` with `run`: `Ok(true)` if its
/// checks held.
fn run_gazelle(mode: &str, args: GazelleArgs, run: GazelleRun) -> Result<bool, String> {
    let opts = gazelle::Options {
        place: args.place.place(&mode.replace('-', "_"))?,
        conns: args.conns,
        bytes: args.bytes,
        model: match args.model {
            ModelArg::Rtc => stack::ThreadModel::RunToCompletion,
            ModelArg::Rtw => stack::ThreadModel::RunToWakeup,
        },
        stacks: args.stacks,
        inbound: args.inbound,
        kernel: args.kernel,
    };
    match run(&opts, &mut |line| println!("{line}"))? {
        gazelle::Outcome::Primary(report) => {
            println!("{mode} primary: {report}");
            Ok(report.passed())
        }
        gazelle::Outcome::Client(report) => {
            println!("{mode} proc {}: {report}", opts.place.proc_id);
            Ok(report.passed())
        }
    }
}

/// Runs the server or one client of `client_server_mp`: `Ok(true)` if its
/// checks held.
fn run_client_server(args: ClientServerArgs) -> Result<bool, String> {
    let opts = client_server::Options {
        prefix: args.prefix,
        base: args.runtime_dir.unwrap_or_else(dir::base_dir),
        clients: args.clients,
        client_id: args.client_id,
        frames: args.frames,
        distribution: match args.distribution {
            DistributionArg::RoundRobin => client_server::Distribution::RoundRobin,
            DistributionArg::FlowHash => client_server::Distribution::FlowHash,
        },
        ring_words: args.ring_size,
        wait: wait(args.wait)?,
    };
    match client_server::run(&opts, |line| println!("{line}"))? {
        client_server::Outcome::Server(report) => {
            println!("client_server_mp server: {report}");
            // Under flow hash no flow was split.
            let flows = opts.distribution == client_server::Distribution::RoundRobin || report.split_flows == 0;
            // Every frame arrived intact, or was dropped and counted, or a
            // dead client held it: exactly one of these.
            let intact = report.received + report.lost == report.sent;
            let intact = intact && report.bad == 0;
            Ok(intact && flows && report.in_use == 0 && report.dead_own == 0)
        }
        client_server::Outcome::Client(counts) => {
            let n = opts.client_id.unwrap_or_default();
            println!(
                "client_server_mp client {n}: received {} sent {} bad refs {}",
                counts.received, counts.sent, counts.bad_refs
            );
            Ok(counts.received == counts.sent && counts.bad_refs == 0)
        }
    }
}

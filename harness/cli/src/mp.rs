//! `dtnet mp`: DPDK's multi-process samples as real processes.
//!
//! Each role is one process, started by hand, by a test or by the `procs`
//! executor, and prints one report line; the exit status says whether its
//! checks held (0), failed (1), or it could not run (2).

use std::path::PathBuf;
use std::time::Duration;

use ethdev::shm::dir;

use ::mp::{ring_peer, simple};

/// The `mp` subcommands.
#[derive(clap::Subcommand)]
pub enum MpCommand {
    /// simple_mp: a primary and a secondary exchange messages through
    /// rings PRI_2_SEC and SEC_2_PRI from pool MSG_POOL.
    Simple(SimpleArgs),
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
        wait: Duration::try_from_secs_f64(args.wait).map_err(|e| format!("--wait: {e}"))?,
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

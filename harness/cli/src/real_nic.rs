//! `dtnet real-nic`: the real-NIC suite (`dpdk::realnic`) on the devices
//! the EAL arguments give this process (`-a <PCI>`, `--vdev ...`).
//!
//! The command initialises DPDK's EAL with the arguments after `--`, runs
//! every check of the suite from the `--tx` port to the `--rx` port (the
//! same port for a loopback device) and prints the report: each check
//! passed, FAILED or "unsupported by device" with its detail, then the
//! throughput of each receive queue in Mpps at 64 bytes and TCP goodput per
//! receive queue in Gbit/s (a stack group on each port); `--json` prints
//! the same as one JSON object. It exits 1 when a check failed, 2 when the
//! EAL could not start or the suite could not be set up (the message names
//! the cause). The DPDK code is compiled only when the `dpdk` crate is
//! built with its `dpdk` feature ([`dpdk::if_dpdk!`]); without it the
//! command says how to get a build that has it.

dpdk::if_dpdk! {
    {
        use std::time::Duration;

        use dpdk::realnic::{self, Options, Report, TcpOutcome};
        use dpdk::Eal;
        use serde_json::json;

        use crate::output::{say, verdict, Outcome};

        /// Arguments of `dtnet real-nic`.
        #[derive(clap::Args)]
        pub struct RealNicArgs {
            /// The port test frames are sent from: a PCI address given to the
            /// EAL with `-a`, or a vdev name (e.g. net_ring0).
            #[arg(long)]
            tx: String,
            /// The port they arrive on (default: the --tx port, a loopback device).
            #[arg(long)]
            rx: Option<String>,
            /// Receive queues for the RSS, flow and throughput checks.
            #[arg(long, default_value_t = 4)]
            queues: u16,
            /// Test flows in the RSS check.
            #[arg(long, default_value_t = 256)]
            flows: usize,
            /// Length of the throughput run, in seconds.
            #[arg(long, default_value_t = 1.0)]
            seconds: f64,
            /// Seed of the flows and the RSS key.
            #[arg(long, default_value_t = 1)]
            seed: u64,
            /// MiB each TCP connection of the TCP run carries.
            #[arg(long, default_value_t = 32)]
            tcp_mib: u64,
            /// Print the report as one JSON object.
            #[arg(long)]
            json: bool,
            /// EAL arguments, after `--`: e.g. `-a 0000:3b:02.0 --file-prefix=realnic`,
            /// or `--no-huge --no-pci --vdev=net_ring0`.
            #[arg(last = true)]
            eal: Vec<String>,
        }

        /// Runs the suite as `args` say and prints its report.
        pub fn real_nic(args: RealNicArgs) -> Outcome {
            let duration = Duration::try_from_secs_f64(args.seconds)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| format!("--seconds {}: want a positive number of seconds", args.seconds))?;
            let options = Options {
                queues: args.queues,
                flows: args.flows,
                duration,
                seed: args.seed,
                tcp_bytes: args.tcp_mib.checked_mul(1 << 20).filter(|&b| b > 0).ok_or_else(|| {
                    format!("--tcp-mib {}: want 1 to {} MiB", args.tcp_mib, u64::MAX >> 20)
                })?,
                ..Options::new(args.tx.clone(), args.rx.unwrap_or(args.tx))
            };
            let eal = Eal::init(&args.eal)
                .map_err(|e| format!("DPDK's EAL did not start with arguments {:?}: {e}", args.eal))?;
            let report = realnic::run(&eal, &options).map_err(|e| format!("real-NIC suite: {e}"))?;
            if args.json {
                say(to_json(&report));
            } else {
                say(report.to_string().trim_end());
            }
            Ok(verdict(!report.failed()))
        }

        /// The report as one JSON object: drivers, checks with verdict and
        /// detail, throughput (total and per queue, or the error), failed.
        fn to_json(report: &Report) -> serde_json::Value {
            let checks: Vec<_> = report
                .checks
                .iter()
                .map(|c| json!({"name": c.name, "verdict": c.outcome.verdict(), "detail": c.outcome.detail()}))
                .collect();
            let throughput = match &report.throughput {
                Ok(t) => json!({
                    "seconds": t.seconds,
                    "sent": t.sent,
                    "mpps_64b": t.queues.iter().map(|q| q.mpps).sum::<f64>(),
                    "queues": t
                        .queues
                        .iter()
                        .map(|q| json!({"queue": q.queue, "frames": q.frames, "mpps_64b": q.mpps}))
                        .collect::<Vec<_>>(),
                }),
                Err(why) => json!({"error": why}),
            };
            json!({
                "tx_driver": report.tx_driver,
                "rx_driver": report.rx_driver,
                "checks": checks,
                "throughput": throughput,
                "tcp": tcp_json(&report.tcp),
                "failed": report.failed(),
            })
        }

        /// The TCP run as JSON: its verdict, and the figures (total and per
        /// queue) or why there are none.
        fn tcp_json(tcp: &TcpOutcome) -> serde_json::Value {
            match tcp {
                TcpOutcome::Measured(t) => json!({
                    "verdict": "measured",
                    "seconds": t.seconds,
                    "bytes_per_conn": t.bytes_per_conn,
                    "gbps": t.gbps(),
                    "queues": t
                        .queues
                        .iter()
                        .map(|q| json!({"queue": q.queue, "conns": q.conns, "bytes": q.bytes, "gbps": q.gbps}))
                        .collect::<Vec<_>>(),
                }),
                TcpOutcome::Failed(why) => json!({"verdict": "FAILED", "detail": why}),
                TcpOutcome::Unsupported(why) => json!({"verdict": "unsupported by device", "detail": why}),
            }
        }
    } else {
        use crate::output::Outcome;

        /// Arguments of `dtnet real-nic` in a build without DPDK: taken as
        /// they come, to name them in the error.
        #[derive(clap::Args)]
        pub struct RealNicArgs {
            /// The suite's options and EAL arguments (this build cannot use them).
            #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
            args: Vec<String>,
        }

        /// Says that this build has no DPDK support and how to get one.
        pub fn real_nic(args: RealNicArgs) -> Outcome {
            Err(format!(
                "`real-nic {}`: this build of dtnet has no DPDK support; build it with \
                 `cargo build --release -p dtnet --features dpdk` (needs libdpdk 22.11 and libclang, \
                 see dpdk/README.md)",
                args.args.join(" ")
            ))
        }
    }
}

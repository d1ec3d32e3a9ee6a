//! The suite's TCP run: goodput per receive queue of dtnet's stacks over
//! the two ports.
//!
//! A stack group drives each port, the sender on the tx port and the
//! receiver on the rx port, with one stack per queue when both devices
//! spread frames by RSS through a RETA and one stack otherwise. Every
//! sender stack opens [`CONNS_PER_STACK`] bulk connections (sim's bulk
//! application: the receiver verifies every byte and returns a receipt,
//! which the sender checks) to the receiver, which listens on every stack;
//! the device's RSS puts each connection on a receive queue, whose stack
//! serves it. sim's threaded executor runs it, a thread per stack and per
//! application thread, and a queue's figure is the payload its stack
//! verified over the run's wall time, in Gbit/s. A loopback port
//! (`--tx` = `--rx`) cannot carry TCP between two stack groups: that is
//! reported unsupported, never measured.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ethdev::{EthDev, Mempool};
use sim::apps::{bulk, listen, Ledger, Side};
use sim::exec::{threads, Spawner};
use sim::latch::Latch;
use stack::{Api, GroupConfig, StackGroup};

use crate::DpdkEthDev;

/// Bulk connections each sender stack opens.
pub const CONNS_PER_STACK: usize = 2;
/// The receiver's TCP port.
const PORT: u16 = 5201;
const SENDER_IP: Ipv4Addr = Ipv4Addr::new(10, 5, 0, 1);
const RECEIVER_IP: Ipv4Addr = Ipv4Addr::new(10, 5, 0, 2);
/// The longest a TCP run may take (a liveness bound, not a speed check).
const TIMEOUT: Duration = Duration::from_secs(120);

/// TCP goodput on one receive queue.
#[derive(Clone, Debug, PartialEq)]
pub struct TcpQueueRate {
    /// The queue (and the receiver's stack that polls it).
    pub queue: u16,
    /// Connections the device's RSS put on it.
    pub conns: usize,
    /// Payload bytes its stack received and verified.
    pub bytes: u64,
    /// Gigabits of payload per second.
    pub gbps: f64,
}

/// The TCP run (see the module docs).
#[derive(Clone, Debug, PartialEq)]
pub struct TcpThroughput {
    /// Seconds the run lasted.
    pub seconds: f64,
    /// Payload bytes of each connection.
    pub bytes_per_conn: u64,
    /// Each receive queue's share, in queue order (queues that served no
    /// connection included).
    pub queues: Vec<TcpQueueRate>,
}

impl TcpThroughput {
    /// Gigabits of payload per second over all queues.
    pub fn gbps(&self) -> f64 {
        self.queues.iter().map(|q| q.gbps).sum()
    }

    /// Connections over all queues.
    pub fn conns(&self) -> usize {
        self.queues.iter().map(|q| q.conns).sum()
    }
}

/// How the TCP run went.
#[derive(Clone, Debug, PartialEq)]
pub enum TcpOutcome {
    /// Every connection delivered its bytes; the figures.
    Measured(TcpThroughput),
    /// A connection failed or the stacks could not be set up; why.
    Failed(String),
    /// The ports cannot carry it; why.
    Unsupported(String),
}

/// The stacks each group gets: one per queue if both devices spread frames
/// over `queues` queues by RSS with a RETA, else one.
pub(crate) fn stacks(tx: &DpdkEthDev, rx: &DpdkEthDev, queues: u16) -> u16 {
    let spreads = |dev: &DpdkEthDev| {
        let info = dev.info();
        !info.rss_types.is_empty() && !info.reta_sizes.is_empty() && info.max_rx_queues >= queues
    };
    if spreads(tx) && spreads(rx) {
        queues
    } else {
        1
    }
}

/// Runs bulk TCP from a group of `stacks` stacks on `tx` to one on `rx`
/// (both stopped), `bytes` per connection, buffers from `mbufs`; the ports
/// are left started.
pub(crate) fn run(tx: &Arc<DpdkEthDev>, rx: &Arc<DpdkEthDev>, mbufs: &Mempool, stacks: u16, bytes: u64) -> TcpOutcome {
    let groups = (|| -> Result<(StackGroup, StackGroup), String> {
        let group = |dev: &Arc<DpdkEthDev>, ip: Ipv4Addr, owner_base: u32| {
            let mac = dev.mac_addr().map_err(|e| e.to_string())?;
            let config = GroupConfig { owner_base, ..GroupConfig::new(usize::from(stacks), mac, ip) };
            let port: Arc<dyn EthDev> = Arc::clone(dev) as Arc<dyn EthDev>;
            StackGroup::new(port, mbufs.clone(), config).map_err(|e| format!("{}: {e}", dev.name()))
        };
        Ok((group(tx, SENDER_IP, 0)?, group(rx, RECEIVER_IP, u32::from(stacks))?))
    })();
    match groups {
        Ok((sender, receiver)) => measure(&sender, &receiver, bytes),
        Err(why) => TcpOutcome::Failed(format!("stack groups on the ports: {why}")),
    }
}

/// The bulk run between the two groups, and each receive queue's figure.
fn measure(sender: &StackGroup, receiver: &StackGroup, bytes: u64) -> TcpOutcome {
    let clock = Arc::new(sim::exec::RealClock::new());
    let (spawner, ledger) = (Spawner::new(), Arc::new(Ledger::default()));
    let listening = Latch::new(receiver.len());
    for stack in 0..receiver.len() {
        let api = Api::new(receiver, stack, clock.clone());
        let (spawner2, ledger, listening) = (spawner.clone(), Arc::clone(&ledger), Arc::clone(&listening));
        spawner.spawn_daemon(stack, format!("receiver@{stack}"), async move {
            let fd = listen(&api, PORT).await?;
            listening.count_down();
            bulk::server(api, fd, spawner2, stack, ledger).await
        });
    }
    let server = SocketAddr::new(RECEIVER_IP.into(), PORT);
    for conn in 0..sender.len() * CONNS_PER_STACK {
        let stack = conn % sender.len();
        let api = Api::new(sender, stack, clock.clone());
        let (ledger, listening) = (Arc::clone(&ledger), Arc::clone(&listening));
        spawner.spawn(receiver.len() + stack, format!("sender {conn}@{stack}"), async move {
            listening.wait().await;
            bulk::client(api, server, conn as u64, bytes, ledger).await
        });
    }
    let outcome = threads::run_groups(&[sender.clone(), receiver.clone()], &spawner, TIMEOUT, Duration::ZERO);
    if let Err(why) = outcome.ok() {
        return TcpOutcome::Failed(why);
    }
    let seconds = outcome.end.as_nanos() as f64 / 1e9;
    let mut per_queue: BTreeMap<usize, (usize, u64)> = (0..receiver.len()).map(|q| (q, (0, 0))).collect();
    for record in ledger.side(Side::Server) {
        let entry = per_queue.entry(record.stack).or_default();
        *entry = (entry.0 + 1, entry.1 + record.bytes);
    }
    let queues = per_queue
        .into_iter()
        .map(|(q, (conns, bytes))| TcpQueueRate {
            queue: q as u16,
            conns,
            bytes,
            gbps: bytes as f64 * 8.0 / seconds.max(f64::MIN_POSITIVE) / 1e9,
        })
        .collect();
    TcpOutcome::Measured(TcpThroughput { seconds, bytes_per_conn: bytes, queues })
}

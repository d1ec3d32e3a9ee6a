//! The replay port: a bridge port that injects a capture, sans-IO.
//!
//! A [`Replayer`] is a veth of its own on the world's bridge, in
//! promiscuous mode: it sends the frames of a capture into the bridge at
//! their due times (a [`ReplayPlan`], all at once or at the recorded pace)
//! and takes whatever the bridge delivers back to it. It holds no clock and
//! no thread: the world polls it right after the bridge
//! ([`Replayer::poll`], [`Replayer::poll_at`]), so the `sim` executor paces
//! it in virtual time. It can hold its start back until a [`Latch`] opens
//! (the servers it talks to listen), and the recorded pace counts from
//! there. Which frames to replay, attaching a replay to a world and golden
//! traces are [`replay`](crate::replay)'s business, a layer above the
//! world; this module sits below it, with [`ReplayError`], the ways a
//! replay can fail.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use capture::{Pace, ReadError, Record, ReplayPlan};
use ethdev::dev::PortConf;
use ethdev::mac::MacAddr;
use ethdev::mbuf::Mbuf;
use ethdev::mempool::{Mempool, MempoolConfig, Owner};
use ethdev::{EthDev, Instant, RxQueue, TxQueue};
use serde::Serialize;
use user_vbridge::{Bridge, PortConfig};
use user_veth::{Veth, VethPort};

use crate::latch::Latch;

/// Frames the replayer moves per burst.
const BURST: usize = 32;
/// Buffers of a replayer's pool: its transmit ring and a burst of slack.
const POOL: u32 = 2048;
/// Largest IP MTU a veth port accepts, used on the replay port.
const MAX_MTU: u16 = 9600;
/// Largest frame a replay can inject: the largest MTU, an Ethernet header
/// and a VLAN tag.
pub const MAX_FRAME: usize = MAX_MTU as usize + 18;
/// MAC of a replay port; it never appears in a frame (replayed frames keep
/// their recorded addresses).
const REPLAY_MAC: MacAddr = MacAddr([0x02, 0xff, 0, 0, 0, 0]);

/// Why a replay could not run.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: io::Error,
    },
    /// The capture is damaged; nothing was replayed.
    #[error("{}: {error}; {before} frame(s) precede it; refusing to replay a damaged capture", path.display())]
    Damaged {
        /// The capture file.
        path: PathBuf,
        /// Where and what the damage is.
        error: ReadError,
        /// Frames readable before the damage.
        before: usize,
    },
    /// No host of the topology has this name.
    #[error("no host {name:?} to replay into (hosts: {})", hosts.join(", "))]
    UnknownHost {
        /// The name asked for.
        name: String,
        /// The hosts there are.
        hosts: Vec<String>,
    },
    /// The capture has interface names but no frame received on the host's.
    #[error("the capture has no frame received on interface {port:?} (interfaces: {})", interfaces.join(", "))]
    NoFrames {
        /// The host's port.
        port: String,
        /// The interfaces the capture has.
        interfaces: Vec<String>,
    },
    /// A frame is longer than any port carries.
    #[error("frame {index} is {len} bytes, longer than the {MAX_FRAME} bytes a port carries")]
    FrameTooLong {
        /// Its position among the frames replayed, from 0.
        index: usize,
        /// Its length.
        len: usize,
    },
    /// The golden file does not exist and `update` was not asked for.
    #[error("golden trace {} does not exist; run with --update to create it", path.display())]
    GoldenMissing {
        /// The golden file.
        path: PathBuf,
    },
    /// The topology could not be built.
    #[error("cannot build the replay topology: {0}")]
    Setup(String),
}

/// What a replayer has done so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ReplayStats {
    /// Frames in the plan.
    pub planned: u64,
    /// Frames sent into the bridge.
    pub injected: u64,
    /// Frames the bridge delivered back to the replay port.
    pub returned: u64,
}

/// Where a replayer is in its replay.
enum Phase {
    /// Not started: the frames, and the pace to plan them with.
    Waiting(Vec<Record>, Pace),
    /// Started: the frames still to send, with their due times.
    Running(ReplayPlan),
}

/// Injects a capture into a world's bridge; see the module docs.
pub struct Replayer {
    port: VethPort,
    rxq: Box<dyn RxQueue>,
    txq: Box<dyn TxQueue>,
    pool: Mempool,
    phase: Phase,
    gate: Option<Arc<Latch>>,
    span: Duration,
    pending: Vec<Mbuf>,
    received: Vec<Mbuf>,
    stats: ReplayStats,
    done: Arc<Latch>,
    last: Instant,
}

impl Replayer {
    /// A replay port named `name` on `bridge`, without impairments, that
    /// will send `frames` at `pace`; every frame must fit a port
    /// ([`MAX_FRAME`]).
    pub(crate) fn new(
        name: String,
        bridge: &mut Bridge,
        frames: Vec<Record>,
        pace: Pace,
    ) -> Result<Replayer, ReplayError> {
        if let Some((index, r)) = frames.iter().enumerate().find(|(_, r)| r.data.len() > MAX_FRAME) {
            return Err(ReplayError::FrameTooLong { index, len: r.data.len() });
        }
        let pool = Mempool::new(MempoolConfig::new(format!("{name}-pool"), POOL).data_room(MAX_FRAME as u32))
            .map_err(|e| ReplayError::Setup(e.to_string()))?;
        let (port, wire) = Veth::new(name, REPLAY_MAC, pool.clone());
        let setup = |e: ethdev::error::DevError| ReplayError::Setup(e.to_string());
        port.configure(&PortConf { mtu: MAX_MTU, ..PortConf::new(1) }).map_err(setup)?;
        port.start().map_err(setup)?;
        port.set_promiscuous(true).map_err(setup)?;
        let (rxq, txq) = (port.rx_queue(0).map_err(setup)?, port.tx_queue(0).map_err(setup)?);
        bridge.add_port(Box::new(wire), PortConfig::default()).map_err(|e| ReplayError::Setup(e.to_string()))?;
        let span = match (pace, frames.first(), frames.last()) {
            (Pace::Recorded, Some(first), Some(last)) => last.time.since(first.time),
            _ => Duration::ZERO,
        };
        Ok(Replayer {
            port,
            rxq,
            txq,
            pool,
            stats: ReplayStats { planned: frames.len() as u64, ..ReplayStats::default() },
            phase: Phase::Waiting(frames, pace),
            gate: None,
            span,
            pending: Vec::with_capacity(BURST),
            received: Vec::with_capacity(BURST),
            done: Latch::new(1),
            last: Instant::ZERO,
        })
    }

    /// Holds the replay back until `gate` opens (e.g. until the servers it
    /// talks to listen); the recorded pace then counts from that moment.
    pub fn start_after(&mut self, gate: Arc<Latch>) {
        self.gate = Some(gate);
    }

    /// Takes what came back, then sends every frame due at `now` that the
    /// port's transmit ring takes; true if any frame moved.
    pub fn poll(&mut self, now: Instant) -> bool {
        self.last = now;
        self.start_if_open(now);
        let returned = self.take_returned();
        let injected = self.inject_due(now);
        if self.is_done() {
            self.done.count_down();
        }
        returned + injected > 0
    }

    /// When the replayer next has something to send: now while frames wait
    /// for room in the ring, else the next frame's due time, and nothing
    /// until its latch opens (a task event, not a time); `None` when done.
    pub fn poll_at(&self) -> Option<Instant> {
        match &self.phase {
            _ if !self.pending.is_empty() => Some(self.last),
            Phase::Waiting(..) => self.gate_open().then_some(self.last),
            Phase::Running(plan) => plan.poll_at(),
        }
    }

    /// Whether every frame has been sent.
    pub fn is_done(&self) -> bool {
        matches!(&self.phase, Phase::Running(plan) if plan.is_empty()) && self.pending.is_empty()
    }

    /// Time from the replay's start to its last frame.
    pub fn span(&self) -> Duration {
        self.span
    }

    /// Counters so far.
    pub fn stats(&self) -> ReplayStats {
        self.stats
    }

    /// A task that finishes once every frame has been sent: spawn it so
    /// that an executor keeps running until then.
    pub fn waiter(&self) -> impl std::future::Future<Output = io::Result<()>> + Send + 'static {
        let done = Arc::clone(&self.done);
        async move {
            done.wait().await;
            Ok(())
        }
    }

    /// The replay port, for its counters and accounting.
    pub fn port(&self) -> &VethPort {
        &self.port
    }

    /// Buffers of the replayer's pool in use.
    pub fn buffers_in_use(&self) -> usize {
        self.pool.in_use()
    }

    fn gate_open(&self) -> bool {
        self.gate.as_ref().is_none_or(|g| g.is_open())
    }

    /// Plans the frames from `now` once the gate is open.
    fn start_if_open(&mut self, now: Instant) {
        if matches!(self.phase, Phase::Waiting(..)) && self.gate_open() {
            let waiting = std::mem::replace(&mut self.phase, Phase::Running(ReplayPlan::default()));
            if let Phase::Waiting(frames, pace) = waiting {
                self.phase = Phase::Running(ReplayPlan::new(frames, now, pace));
            }
        }
    }

    fn take_returned(&mut self) -> usize {
        let mut total = 0;
        while self.rxq.rx_burst(&mut self.received, BURST) > 0 {
            total += self.received.len();
            self.received.clear();
        }
        self.stats.returned += total as u64;
        total
    }

    fn inject_due(&mut self, now: Instant) -> usize {
        let Phase::Running(plan) = &mut self.phase else { return 0 };
        let mut sent = 0;
        loop {
            while self.pending.len() < BURST && plan.poll_at().is_some_and(|t| t <= now) {
                let Some(mut mbuf) = self.pool.alloc(Owner::NONE) else { break };
                let Some(injection) = plan.pop_due(now) else { break };
                // Fits: frames are checked against the data room on attach.
                mbuf.extend_from_slice(&injection.record.data);
                self.pending.push(mbuf);
            }
            let n = if self.pending.is_empty() { 0 } else { self.txq.tx_burst(&mut self.pending) };
            sent += n;
            if n == 0 {
                break;
            }
        }
        self.stats.injected += sent as u64;
        sent
    }
}

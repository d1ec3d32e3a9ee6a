//! Replaying a capture into a host, sans-IO, and comparing the result with
//! a golden trace.
//!
//! A [`Replayer`] is a port of its own on the world's bridge, a veth named
//! `replay<n>` in promiscuous mode: it sends the frames of a capture into
//! the bridge at their due times (a [`ReplayPlan`], all at once or at the
//! recorded pace) and takes whatever the bridge delivers back to it. The
//! frames replayed "into" a host are those the capture saw that host's port
//! receive (interface `<host>`, inbound), or every frame of a capture
//! without interface names (classic pcap); they keep their recorded MAC
//! addresses, so the bridge learns the recorded peers on the replay port,
//! forwards the frames to the host over the host's own link (impairments
//! included) as if they came from the wire, and sends the host's answers
//! back to the replay port. What the host did is seen by a
//! [`Recording`](crate::record::Recording) of the world, which is what the
//! golden trace is made of.
//!
//! The replayer holds no clock and no thread: the world polls it right
//! after the bridge ([`Replayer::poll`], [`Replayer::poll_at`]), so the
//! `sim` executor paces it in virtual time. It can hold its start back
//! until a latch opens (the servers it talks to listen), and the recorded
//! pace counts from there. Recorded pace reproduces causality only if the
//! capture's times show it: a conversation recorded in virtual time over
//! links without delay happens in one instant, and replaying it "at the
//! recorded pace" sends it all at once, like the fast pace.
//!
//! A damaged capture (truncated, corrupt) is refused as a whole with the
//! byte offset of the damage ([`read_capture`]): a golden comparison of
//! half a replay would only mislead. [`check_golden`] compares a trace
//! with its golden file, or rewrites the file on request.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use capture::{Direction, Pace, PartialRead, ReadError, Record, ReplayPlan};
use ethdev::dev::PortConf;
use ethdev::mbuf::Mbuf;
use ethdev::mempool::{Mempool, MempoolConfig, Owner};
use ethdev::{EthDev, Instant, RxQueue, TxQueue};
use etherparse::{SlicedPacket, TransportSlice};
use serde::Serialize;
use user_vbridge::PortConfig;
use user_veth::{Veth, VethPort};

use crate::exec::Latch;
use crate::world::World;

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
const REPLAY_MAC: [u8; 6] = [0x02, 0xff, 0, 0, 0, 0];

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

/// Reads a pcap or pcapng file; a damaged file is an error naming the byte
/// offset of the damage.
pub fn read_capture(path: &Path) -> Result<Vec<Record>, ReplayError> {
    let bytes = std::fs::read(path).map_err(|source| ReplayError::Io { path: path.to_owned(), source })?;
    capture::read(&bytes).map_err(|PartialRead { records, error }| ReplayError::Damaged {
        path: path.to_owned(),
        error,
        before: records.len(),
    })
}

/// The frames of `records` to replay into the host whose port is `port`:
/// those seen received on interface `port` (inbound or of unknown
/// direction), or all of them when no record names an interface.
pub fn inbound_frames(records: &[Record], port: &str) -> Result<Vec<Record>, ReplayError> {
    if records.iter().all(|r| r.interface.is_none()) {
        return Ok(records.to_vec());
    }
    let selected: Vec<Record> = records
        .iter()
        .filter(|r| r.interface.as_deref() == Some(port) && r.direction != Some(Direction::Outbound))
        .cloned()
        .collect();
    if selected.is_empty() {
        let mut interfaces: Vec<String> = records.iter().filter_map(|r| r.interface.clone()).collect();
        interfaces.sort();
        interfaces.dedup();
        return Err(ReplayError::NoFrames { port: port.to_owned(), interfaces });
    }
    Ok(selected)
}

/// The port the first TCP connection request (SYN without ACK) among
/// `frames` asks for: where the host should listen to answer a replay.
pub fn first_listen_port(frames: &[Record]) -> Option<u16> {
    frames.iter().find_map(|r| match SlicedPacket::from_ethernet(&r.data).ok()?.transport? {
        TransportSlice::Tcp(tcp) if tcp.syn() && !tcp.ack() => Some(tcp.destination_port()),
        _ => None,
    })
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
    /// Adds a replay of the frames `records` saw host `into` receive
    /// (see [`inbound_frames`]) to `world`, as a new bridge port without
    /// impairments; returns its index in `world.replayers`. The replay
    /// starts at the first poll, or at the first poll after
    /// [`Replayer::start_after`]'s latch opens.
    pub fn attach(world: &mut World, records: &[Record], into: usize, pace: Pace) -> Result<usize, ReplayError> {
        let host = world.hosts.get(into).ok_or_else(|| ReplayError::UnknownHost {
            name: format!("#{into}"),
            hosts: world.hosts.iter().map(|h| h.name.clone()).collect(),
        })?;
        let frames = inbound_frames(records, &host.name)?;
        if let Some((index, r)) = frames.iter().enumerate().find(|(_, r)| r.data.len() > MAX_FRAME) {
            return Err(ReplayError::FrameTooLong { index, len: r.data.len() });
        }
        let name = format!("replay{}", world.replayers.len());
        let pool = Mempool::new(MempoolConfig::new(format!("{name}-pool"), POOL).data_room(MAX_FRAME as u32))
            .map_err(|e| ReplayError::Setup(e.to_string()))?;
        let (port, wire) = Veth::new(name, REPLAY_MAC, pool.clone());
        let setup = |e: ethdev::error::DevError| ReplayError::Setup(e.to_string());
        port.configure(&PortConf { mtu: MAX_MTU, ..PortConf::new(1) }).map_err(setup)?;
        port.start().map_err(setup)?;
        port.set_promiscuous(true).map_err(setup)?;
        let (rxq, txq) = (port.rx_queue(0).map_err(setup)?, port.tx_queue(0).map_err(setup)?);
        world.bridge.add_port(Box::new(wire), PortConfig::default()).map_err(|e| ReplayError::Setup(e.to_string()))?;
        let span = match (pace, frames.first(), frames.last()) {
            (Pace::Recorded, Some(first), Some(last)) => last.time.since(first.time),
            _ => Duration::ZERO,
        };
        world.replayers.push(Replayer {
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
        });
        Ok(world.replayers.len() - 1)
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

/// How a trace compared with its golden file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Golden {
    /// The trace is the golden text.
    Matches,
    /// The golden file was (re)written with the trace.
    Updated,
    /// The trace differs; the text says where.
    Differs(String),
}

/// Compares `trace` with the golden file at `path`, or writes the file
/// when `update` is set.
pub fn check_golden(path: &Path, trace: &str, update: bool) -> Result<Golden, ReplayError> {
    let io_error = |source| ReplayError::Io { path: path.to_owned(), source };
    if update {
        std::fs::write(path, trace).map_err(io_error)?;
        return Ok(Golden::Updated);
    }
    let golden = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(ReplayError::GoldenMissing { path: path.to_owned() })
        }
        Err(e) => return Err(io_error(e)),
    };
    Ok(match first_difference(&golden, trace) {
        None => Golden::Matches,
        Some(diff) => Golden::Differs(diff),
    })
}

/// Where two traces first differ, or `None` if they are equal.
fn first_difference(expected: &str, actual: &str) -> Option<String> {
    let (e, a): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
    let at = e.iter().zip(&a).position(|(x, y)| x != y).unwrap_or(e.len().min(a.len()));
    if at == e.len() && at == a.len() {
        return None;
    }
    let line = |v: &[&str]| v.get(at).map_or("(end of trace)".to_owned(), |l| l.to_string());
    Some(format!(
        "line {} differs (golden has {} lines, trace has {}):\n  expected: {}\n  actual:   {}",
        at + 1,
        e.len(),
        a.len(),
        line(&e),
        line(&a)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_difference_names_the_line_and_both_sides() {
        assert_eq!(first_difference("a\nb\n", "a\nb\n"), None);
        let diff = first_difference("a\nb\nc\n", "a\nx\nc\n").unwrap();
        assert!(diff.starts_with("line 2 differs"), "{diff}");
        assert!(diff.contains("expected: b") && diff.contains("actual:   x"), "{diff}");
        let shorter = first_difference("a\nb\n", "a\n").unwrap();
        assert!(shorter.contains("actual:   (end of trace)"), "{shorter}");
    }

    #[test]
    fn the_listen_port_is_the_first_connection_requests() {
        let tcp = |port: u16, ack: bool| {
            let builder = etherparse::PacketBuilder::ethernet2([2; 6], [4; 6]).ipv4([10, 0, 0, 2], [10, 0, 0, 1], 64);
            let builder = builder.tcp(49152, port, 1, 1000).syn();
            let mut frame = Vec::new();
            if ack {
                builder.ack(1).write(&mut frame, &[]).unwrap();
            } else {
                builder.write(&mut frame, &[]).unwrap();
            }
            Record::bare(Instant::ZERO, frame)
        };
        let frames = [Record::bare(Instant::ZERO, vec![0; 10]), tcp(80, true), tcp(5202, false), tcp(7, false)];
        assert_eq!(first_listen_port(&frames), Some(5202));
        assert_eq!(first_listen_port(&frames[..2]), None);
    }

    #[test]
    fn inbound_frames_pick_the_hosts_received_frames() {
        let t = Instant::ZERO;
        let records = vec![
            Record::new("server", Some(Direction::Inbound), t, vec![1]),
            Record::new("server", Some(Direction::Outbound), t, vec![2]),
            Record::new("server/rxq0", Some(Direction::Inbound), t, vec![3]),
            Record::new("client", Some(Direction::Inbound), t, vec![4]),
            Record::new("server", None, t, vec![5]),
        ];
        let data = |rs: Vec<Record>| rs.into_iter().map(|r| r.data[0]).collect::<Vec<_>>();
        assert_eq!(data(inbound_frames(&records, "server").unwrap()), [1, 5]);
        let bare = vec![Record::bare(t, vec![7]), Record::bare(t, vec![8])];
        assert_eq!(data(inbound_frames(&bare, "server").unwrap()), [7, 8]);
        let err = inbound_frames(&records, "nobody").unwrap_err().to_string();
        assert!(err.contains("\"nobody\"") && err.contains("client, server, server/rxq0"), "{err}");
    }
}

//! The header of a shared port: its shape, its queue holders, its counters.
//!
//! ```text
//! line 0      magic "dtnetprt", layout version, rx queues, tx queues,
//!             ring words, MAC, primary pid, pool name length
//! line 1      pool name (up to 40 bytes)
//! line 2..4   port counters: ipackets, opackets, imissed, ierrors, oerrors,
//!             then one word per `DropReason` (copied by the primary)
//! then        one line per rx queue, then one per tx queue:
//!             holder (owner id, or FREE), packets, bytes, copied, dropped
//! ```
//!
//! Every word is an atomic read at a checked index: `open` refuses a
//! header whose magic, version or shape does not fit its zone, so the
//! fixed indices below are in range from then on, and a queue number is
//! checked against the shape before it indexes anything.

use std::sync::atomic::{AtomicU64, Ordering};

use ethdev::mac::MacAddr;
use ethdev::mempool::Owner;
use ethdev::shm::Zone;
use ethdev::stats::DropReason;

use super::PortError;

/// Identifies a shared port header.
const MAGIC: u64 = u64::from_le_bytes(*b"dtnetprt");
/// Bumped whenever this layout changes.
const VERSION: u64 = 1;
/// Words per cache line.
const LINE: usize = 8;
/// Word indices of the shape.
const RX_QUEUES: usize = 2;
const TX_QUEUES: usize = 3;
const RING_WORDS: usize = 4;
const MAC: usize = 5;
const PRIMARY_PID: usize = 6;
const POOL_NAME_LEN: usize = 7;
const POOL_NAME: usize = LINE;
/// Longest pool name the header holds.
pub(crate) const MAX_POOL_NAME: usize = LINE * 8;
/// First word of the port counters, and how many there are.
const PORT_COUNTERS: usize = 2 * LINE;
const PORT_COUNTER_WORDS: usize = 3 * LINE;
/// First word of the queue lines.
const QUEUES: usize = PORT_COUNTERS + PORT_COUNTER_WORDS;
/// A queue line's holder word when nobody holds the queue.
const FREE: u64 = u64::MAX;

/// Bytes the header of a port with these queues needs.
pub(crate) fn header_bytes(rx_queues: u16, tx_queues: u16) -> usize {
    (QUEUES + (usize::from(rx_queues) + usize::from(tx_queues)) * LINE) * 8
}

/// Which way a queue carries frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// A receive queue: the primary's wire end produces, the holder consumes.
    Rx,
    /// A transmit queue: the holder produces, the wire end consumes.
    Tx,
}

impl Side {
    /// `rx` or `tx`, as in zone names and messages.
    pub fn name(self) -> &'static str {
        match self {
            Side::Rx => "rx",
            Side::Tx => "tx",
        }
    }
}

/// A counter of one queue line.
#[derive(Clone, Copy, Debug)]
pub(crate) enum QueueCounter {
    /// Frames moved through the queue's ring.
    Packets = 1,
    /// Their bytes.
    Bytes = 2,
    /// Frames copied into the port's pool on the way (they came from a
    /// pool outside the domain).
    Copied = 3,
    /// Rx: frames dropped for want of a buffer to copy into. Tx: ring words
    /// that named no buffer in transit (refused), and frames a dead holder
    /// left that the wire end had no room for.
    Dropped = 4,
}

/// The port's shape, as its header says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shape {
    /// Receive queues.
    pub rx_queues: u16,
    /// Transmit queues.
    pub tx_queues: u16,
    /// Words in each queue's ring.
    pub ring_words: u32,
    /// The port's MAC.
    pub mac: MacAddr,
    /// The primary that made it.
    pub primary_pid: u32,
    /// The domain pool its buffers come from.
    pub pool: String,
}

/// A checked port header.
#[derive(Clone, Debug)]
pub(crate) struct Header {
    zone: Zone,
    shape: Shape,
}

impl Header {
    /// Lays a header for `shape` out in the fresh zone `zone`.
    pub(crate) fn create(zone: &Zone, shape: &Shape) -> Result<Header, PortError> {
        let words = zone.u64s();
        if words.len() * 8 < header_bytes(shape.rx_queues, shape.tx_queues) {
            return Err(PortError::Corrupt(format!("zone {:?} is too small for the port header", zone.name())));
        }
        let name = shape.pool.as_bytes();
        if name.len() > MAX_POOL_NAME {
            return Err(PortError::Corrupt(format!("pool name {:?} is too long", shape.pool)));
        }
        for (word, chunk) in words[POOL_NAME..].iter().zip(name.chunks(8)) {
            let mut bytes = [0u8; 8];
            bytes[..chunk.len()].copy_from_slice(chunk);
            word.store(u64::from_le_bytes(bytes), Ordering::Relaxed);
        }
        let mut mac = [0u8; 8];
        mac[..6].copy_from_slice(&shape.mac.0);
        for (at, value) in [
            (RX_QUEUES, u64::from(shape.rx_queues)),
            (TX_QUEUES, u64::from(shape.tx_queues)),
            (RING_WORDS, u64::from(shape.ring_words)),
            (MAC, u64::from_le_bytes(mac)),
            (PRIMARY_PID, u64::from(shape.primary_pid)),
            (POOL_NAME_LEN, name.len() as u64),
        ] {
            words[at].store(value, Ordering::Relaxed);
        }
        let header = Header { zone: zone.clone(), shape: shape.clone() };
        for side in [Side::Rx, Side::Tx] {
            for queue in 0..header.queues(side) {
                header.line(side, queue)[0].store(FREE, Ordering::Relaxed);
            }
        }
        words[1].store(VERSION, Ordering::Relaxed);
        words[0].store(MAGIC, Ordering::Release);
        Ok(header)
    }

    /// Checks the header in `zone` and reads its shape.
    pub(crate) fn open(zone: &Zone) -> Result<Header, PortError> {
        let words = zone.u64s();
        let bad = |why: String| PortError::Corrupt(format!("port {:?}: {why}", zone.name()));
        if words.len() < QUEUES || words[0].load(Ordering::Acquire) != MAGIC {
            return Err(bad("not a shared port (bad magic)".into()));
        }
        let version = words[1].load(Ordering::Relaxed);
        if version != VERSION {
            return Err(bad(format!("port layout version {version}, this dtnet reads version {VERSION}")));
        }
        let read = |at: usize| words[at].load(Ordering::Relaxed);
        let queues = |at: usize| u16::try_from(read(at)).ok().filter(|&q| q > 0 && q <= crate::MAX_QUEUES);
        let (Some(rx_queues), Some(tx_queues)) = (queues(RX_QUEUES), queues(TX_QUEUES)) else {
            return Err(bad(format!("queue counts {} / {} out of range", read(RX_QUEUES), read(TX_QUEUES))));
        };
        if words.len() * 8 < header_bytes(rx_queues, tx_queues) {
            return Err(bad("queue lines past the end of the zone".into()));
        }
        let ring_words = u32::try_from(read(RING_WORDS)).map_err(|_| bad("ring size out of range".into()))?;
        let mac = read(MAC).to_le_bytes();
        let name_len = usize::try_from(read(POOL_NAME_LEN)).ok().filter(|&n| n <= MAX_POOL_NAME);
        let name_len = name_len.ok_or_else(|| bad("pool name length out of range".into()))?;
        let name: Vec<u8> =
            words[POOL_NAME..POOL_NAME + LINE].iter().flat_map(|w| w.load(Ordering::Relaxed).to_le_bytes()).collect();
        let pool = String::from_utf8(name[..name_len].to_vec()).map_err(|_| bad("pool name is not text".into()))?;
        let shape = Shape {
            rx_queues,
            tx_queues,
            ring_words,
            mac: MacAddr([mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]]),
            primary_pid: read(PRIMARY_PID) as u32,
            pool,
        };
        Ok(Header { zone: zone.clone(), shape })
    }

    pub(crate) fn shape(&self) -> &Shape {
        &self.shape
    }

    pub(crate) fn queues(&self, side: Side) -> u16 {
        match side {
            Side::Rx => self.shape.rx_queues,
            Side::Tx => self.shape.tx_queues,
        }
    }

    /// The line of `queue` (checked against the shape by the caller).
    fn line(&self, side: Side, queue: u16) -> &[AtomicU64] {
        let index = match side {
            Side::Rx => usize::from(queue),
            Side::Tx => usize::from(self.shape.rx_queues) + usize::from(queue),
        };
        let start = QUEUES + index * LINE;
        &self.zone.u64s()[start..start + LINE]
    }

    /// Whether `queue` exists on `side`.
    pub(crate) fn has(&self, side: Side, queue: u16) -> bool {
        queue < self.queues(side)
    }

    /// Makes `owner` the holder of `queue`, if nobody holds it; otherwise
    /// returns the holder.
    pub(crate) fn take(&self, side: Side, queue: u16, owner: Owner) -> Result<(), Owner> {
        let word = &self.line(side, queue)[0];
        word.compare_exchange(FREE, u64::from(owner.0), Ordering::AcqRel, Ordering::Acquire)
            .map(drop)
            .map_err(|held| Owner(held as u32))
    }

    /// Lets go of `queue` if `owner` holds it; whether it did.
    pub(crate) fn release(&self, side: Side, queue: u16, owner: Owner) -> bool {
        let word = &self.line(side, queue)[0];
        word.compare_exchange(u64::from(owner.0), FREE, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }

    /// Who holds `queue`, if anybody.
    pub(crate) fn holder(&self, side: Side, queue: u16) -> Option<Owner> {
        let held = self.line(side, queue)[0].load(Ordering::Acquire);
        (held != FREE).then_some(Owner(held as u32))
    }

    /// Adds `n` to a counter of `queue`.
    pub(crate) fn count(&self, side: Side, queue: u16, counter: QueueCounter, n: u64) {
        if n > 0 {
            self.line(side, queue)[counter as usize].fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Reads a counter of `queue`.
    pub(crate) fn counter(&self, side: Side, queue: u16, counter: QueueCounter) -> u64 {
        self.line(side, queue)[counter as usize].load(Ordering::Relaxed)
    }

    /// The port counters: ipackets, opackets, imissed, ierrors, oerrors,
    /// then drops by reason in `DropReason::ALL` order.
    fn port_counters(&self) -> &[AtomicU64] {
        &self.zone.u64s()[PORT_COUNTERS..PORT_COUNTERS + PORT_COUNTER_WORDS]
    }

    /// Copies the primary's port counters where every process can read them.
    pub(crate) fn publish(&self, totals: &PortTotals) {
        let words = self.port_counters();
        let values = [totals.ipackets, totals.opackets, totals.imissed, totals.ierrors, totals.oerrors];
        let drops = totals.drops.iter().map(|&(_, n)| n);
        for (word, value) in words.iter().zip(values.into_iter().chain(drops)) {
            word.store(value, Ordering::Relaxed);
        }
    }

    /// The port counters as the primary last published them.
    pub(crate) fn totals(&self) -> PortTotals {
        let words = self.port_counters();
        let read = |i: usize| words[i].load(Ordering::Relaxed);
        let drops = DropReason::ALL.iter().zip(5..).map(|(&reason, i)| (reason, read(i))).collect();
        PortTotals { ipackets: read(0), opackets: read(1), imissed: read(2), ierrors: read(3), oerrors: read(4), drops }
    }
}

/// A port's totals, as the primary counts them at the wire.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PortTotals {
    /// Frames received into rx queues.
    pub ipackets: u64,
    /// Frames sent to the wire.
    pub opackets: u64,
    /// Frames dropped because an rx ring was full.
    pub imissed: u64,
    /// Frames refused on receive for any other reason.
    pub ierrors: u64,
    /// Frames refused on transmit.
    pub oerrors: u64,
    /// Drops by reason.
    pub drops: Vec<(DropReason, u64)>,
}

const _: () = assert!(5 + DropReason::ALL.len() <= PORT_COUNTER_WORDS, "the port counters fit their lines");

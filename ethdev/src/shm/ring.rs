//! Rings of 64-bit words between two processes, laid out in a domain zone.
//!
//! This is the ring a process crash cannot wedge, and so the only kind a
//! domain holds: single producer, single consumer, as memif's rings are.
//! A multi-producer ring needs a reservation step and a publication step
//! (`crate::ring`); a process killed between the two leaves a reservation
//! nobody will ever publish, and the ring stops for everyone. Here each side
//! owns one position word and writes nothing else the other side reads: the
//! producer writes slots, then its `head` (Release); the consumer reads
//! slots, then writes its `tail`. A producer killed mid-burst leaves slots
//! written but not published, which nobody sees; a consumer killed leaves
//! its entries in place for whoever takes over its side (reclamation drains
//! a dead consumer's rings). Where several processes send to one, each gets
//! its own ring, as DPDK's client_server_mp gives each client its own.
//!
//! ```text
//! line 0   magic "dtnetrng", layout version, size (a power of two)
//! line 1   head: free-running u32 count of words produced
//! line 2   tail: free-running u32 count of words consumed
//! line 3.. size slots of u64
//! ```
//!
//! Everything is an atomic at a bounds-checked offset ([`Zone::u64s`]), and
//! a side never trusts what the other wrote: a head more than `size` ahead
//! of the tail (a confused or hostile peer) is refused and counted, never
//! followed. One side per process is enforced by the handle types
//! ([`ShmProducer`] and [`ShmConsumer`] are `Send`, not `Sync` or `Clone`);
//! one side per domain by who creates and who attaches (the primary, or the
//! control channel, hands each side to one process).

use std::cell::Cell;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{ShmError, Zone};

/// Identifies a ring header.
const MAGIC: u64 = u64::from_le_bytes(*b"dtnetrng");
/// Bumped whenever this layout changes.
const VERSION: u64 = 1;
/// Words per cache line.
const LINE: usize = 8;
/// Word index of the head, of the tail, and of the first slot.
const HEAD: usize = LINE;
const TAIL: usize = 2 * LINE;
const SLOTS: usize = 3 * LINE;

/// Bytes a ring of `size` words needs in a zone.
pub fn ring_bytes(size: u32) -> usize {
    (SLOTS + size as usize) * 8
}

/// The words of one ring, checked against its header.
#[derive(Clone, Debug)]
struct Words {
    zone: Zone,
    size: u32,
}

impl Words {
    fn all(&self) -> &[AtomicU64] {
        self.zone.u64s()
    }

    /// The position word at `at` (head or tail), as the u32 it holds.
    fn position(&self, at: usize) -> u32 {
        self.all()[at].load(Ordering::Acquire) as u32
    }

    /// The slots, `size` of them (checked by `open`).
    fn slots(&self) -> &[AtomicU64] {
        &self.all()[SLOTS..SLOTS + self.size as usize]
    }
}

/// The producing side of a ring in a domain.
#[derive(Debug)]
pub struct ShmProducer {
    words: Words,
    head: u32,
    refused: u64,
    _not_sync: PhantomData<Cell<()>>,
}

/// The consuming side of a ring in a domain.
#[derive(Debug)]
pub struct ShmConsumer {
    words: Words,
    tail: u32,
    refused: u64,
    _not_sync: PhantomData<Cell<()>>,
}

/// Lays out a ring of `size` words (a power of two, 2 to 2^30) in `zone`,
/// which must hold [`ring_bytes`] and be fresh (zeroed).
pub fn create(zone: &Zone, size: u32) -> Result<(), ShmError> {
    if !size.is_power_of_two() || !(2..=1 << 30).contains(&size) {
        return Err(ShmError::Corrupt(format!(
            "ring {:?}: size {size} is not a power of two in 2..=2^30",
            zone.name()
        )));
    }
    let words = zone.u64s();
    if words.len() < SLOTS + size as usize {
        return Err(ShmError::Full(format!("ring {:?} of {size} words needs {} bytes", zone.name(), ring_bytes(size))));
    }
    words[2].store(u64::from(size), Ordering::Relaxed);
    words[1].store(VERSION, Ordering::Relaxed);
    words[0].store(MAGIC, Ordering::Release);
    Ok(())
}

/// Checks the ring header in `zone` and returns its words.
fn open(zone: &Zone) -> Result<Words, ShmError> {
    let words = zone.u64s();
    let bad = |why: String| ShmError::Corrupt(format!("ring {:?}: {why}", zone.name()));
    if words.len() < SLOTS || words[0].load(Ordering::Acquire) != MAGIC {
        return Err(bad("not a ring (bad magic)".into()));
    }
    let version = words[1].load(Ordering::Relaxed);
    if version != VERSION {
        return Err(bad(format!("ring layout version {version}, this dtnet reads version {VERSION}")));
    }
    let size = words[2].load(Ordering::Relaxed);
    let fits = u32::try_from(size).ok().filter(|s| s.is_power_of_two() && words.len() >= SLOTS + *s as usize);
    let size = fits.ok_or_else(|| bad(format!("size {size} does not fit {} bytes", zone.len())))?;
    Ok(Words { zone: zone.clone(), size })
}

/// What anyone can read of a ring: its size and its two positions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingInfo {
    /// Words the ring holds.
    pub size: u32,
    /// Words produced so far (free-running).
    pub head: u32,
    /// Words consumed so far (free-running).
    pub tail: u32,
}

impl RingInfo {
    /// Words waiting, or `None` if the positions cannot both be right.
    pub fn depth(&self) -> Option<u32> {
        Some(self.head.wrapping_sub(self.tail)).filter(|&d| d <= self.size)
    }
}

/// The ring in `zone`, if the zone holds one of this layout.
pub fn inspect(zone: &Zone) -> Option<RingInfo> {
    let words = open(zone).ok()?;
    Some(RingInfo { size: words.size, head: words.position(HEAD), tail: words.position(TAIL) })
}

impl ShmProducer {
    /// The producing side of the ring in `zone`, resuming at its published head.
    pub fn attach(zone: &Zone) -> Result<ShmProducer, ShmError> {
        let words = open(zone)?;
        let head = words.position(HEAD);
        Ok(ShmProducer { words, head, refused: 0, _not_sync: PhantomData })
    }

    /// Appends as many of `items` as fit, in order; returns how many.
    pub fn enqueue_burst(&mut self, items: &[u64]) -> usize {
        let tail = self.words.position(TAIL);
        let used = self.head.wrapping_sub(tail);
        if used > self.words.size {
            self.refused += 1;
            return 0;
        }
        let n = items.len().min((self.words.size - used) as usize);
        let (slots, mask) = (self.words.slots(), self.words.size - 1);
        for (i, &item) in (0u32..).zip(&items[..n]) {
            slots[(self.head.wrapping_add(i) & mask) as usize].store(item, Ordering::Relaxed);
        }
        self.head = self.head.wrapping_add(n as u32);
        self.words.all()[HEAD].store(u64::from(self.head), Ordering::Release);
        n
    }

    /// Calls on which the consumer's tail was out of range (nothing was sent).
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// The ring's size in words.
    pub fn capacity(&self) -> usize {
        self.words.size as usize
    }

    /// Words the ring would take now (0 if the consumer's tail is out of
    /// range). Only the consumer moves the tail, and only forward, so the
    /// room can only grow until this side enqueues.
    pub fn free_count(&self) -> usize {
        let used = self.head.wrapping_sub(self.words.position(TAIL));
        self.words.size.checked_sub(used).map_or(0, |free| free as usize)
    }
}

impl ShmConsumer {
    /// The consuming side of the ring in `zone`, resuming at its published
    /// tail (how a reclaimer takes over a dead consumer's ring).
    pub fn attach(zone: &Zone) -> Result<ShmConsumer, ShmError> {
        let words = open(zone)?;
        let tail = words.position(TAIL);
        Ok(ShmConsumer { words, tail, refused: 0, _not_sync: PhantomData })
    }

    /// Moves up to `max` words into `out`, oldest first; returns how many.
    pub fn dequeue_burst(&mut self, out: &mut Vec<u64>, max: usize) -> usize {
        self.consume(max, |word| out.push(word))
    }

    /// Hands up to `max` words to `take`, oldest first, and only then
    /// publishes them as consumed; returns how many.
    ///
    /// This is how a consumer that may be killed takes buffers: `take`
    /// claims each one (its owner word changes), so a consumer killed
    /// halfway leaves every word in the ring, each either claimed (the
    /// reclaimer frees it as the dead process's) or still in transit (the
    /// reclaimer drains it). With the tail published first, words read but
    /// not yet claimed would be in nobody's hands.
    pub fn consume(&mut self, max: usize, mut take: impl FnMut(u64)) -> usize {
        let head = self.words.position(HEAD);
        let ready = head.wrapping_sub(self.tail);
        if ready > self.words.size {
            self.refused += 1;
            return 0;
        }
        let n = max.min(ready as usize);
        let (slots, mask, tail) = (self.words.slots(), self.words.size - 1, self.tail);
        (0..n as u32).for_each(|i| take(slots[(tail.wrapping_add(i) & mask) as usize].load(Ordering::Relaxed)));
        self.tail = self.tail.wrapping_add(n as u32);
        self.words.all()[TAIL].store(u64::from(self.tail), Ordering::Release);
        n
    }

    /// Words waiting (0 if the producer's head is out of range).
    pub fn len(&self) -> usize {
        let ready = self.words.position(HEAD).wrapping_sub(self.tail);
        if ready > self.words.size {
            0
        } else {
            ready as usize
        }
    }

    /// Whether no word is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Calls on which the producer's head was out of range (nothing was read).
    pub fn refused(&self) -> u64 {
        self.refused
    }
}

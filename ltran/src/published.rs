//! The forwarder's counters in a domain's shared memory, for `dtnet stats`
//! (gazelle's `gazellectl ltran show`).
//!
//! The forwarder lives in the primary's own memory, so a tool attached to
//! the domain cannot read its table. [`Forwarder::publish`] copies its
//! counters into a zone of 64-bit words now and then: a magic word, the
//! number of queues, the fixed counters, then one word per queue for the
//! new connections handed to it. [`read`] checks the magic and that the
//! queue count fits the zone before it reads a word, so a zone of another
//! kind or a damaged one reads as `None`, never out of bounds.

use std::sync::atomic::{AtomicU64, Ordering};

use ethdev::shm::{Domain, ShmError, Zone};

use crate::forwarder::Forwarder;
use crate::table::Miss;

/// The zone's name in a domain.
pub const ZONE: &str = "ltran.stats";
/// First word of the zone: "ltranst1".
const MAGIC: u64 = u64::from_le_bytes(*b"ltranst1");
/// Most queues a zone has room for (a shared port's most).
const MAX_QUEUES: usize = 64;
/// Words before the per-queue counters.
const FIXED: usize = 2 + 6 + MISSES.len();
/// The misses, in the order their words follow the fixed counters.
const MISSES: [Miss; 5] = [Miss::OtherHost, Miss::Unsupported, Miss::NoConnection, Miss::NoListener, Miss::TableFull];

/// What the forwarder last published.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Published {
    /// Connections and listeners the table holds now.
    pub entries: u64,
    /// Registrations made over the table's life.
    pub registered: u64,
    /// Connections made for a SYN their stack never confirmed.
    pub expired: u64,
    /// Frames put on an instance's queue, ARP copies made, frames nobody took.
    pub delivered: u64,
    /// ARP copies made beyond the arriving frame.
    pub copies: u64,
    /// Frames that found no instance or buffer.
    pub unplaced: u64,
    /// Frames that went nowhere, by why (in [`Miss`] order).
    pub misses: Vec<(Miss, u64)>,
    /// New connections handed to each queue.
    pub dispatched: Vec<u64>,
}

/// Reserves the forwarder's zone in `domain`, room for every queue.
pub fn reserve(domain: &Domain) -> Result<Zone, ShmError> {
    domain.reserve(ZONE, (FIXED + MAX_QUEUES) * 8)
}

impl Forwarder {
    /// Copies the counters into `zone` (see the module doc); a zone too
    /// small for them is left alone.
    pub fn publish(&self, zone: &Zone) {
        let queues = usize::from(self.queues()).min(MAX_QUEUES);
        let Some(words) = zone.u64s().get(..FIXED + queues) else { return };
        let (table, stats) = (self.table().stats(), self.stats());
        let fixed = [self.table().len() as u64, table.registered, table.expired, stats.delivered, stats.copies];
        let misses = MISSES.iter().map(|m| table.misses.get(m).copied().unwrap_or(0));
        let dispatched = (0..queues as u16).map(|q| table.dispatched.get(&q).copied().unwrap_or(0));
        let values = [MAGIC, queues as u64].into_iter().chain(fixed).chain([stats.unplaced]).chain(misses);
        for (word, value) in words.iter().zip(values.chain(dispatched)) {
            word.store(value, Ordering::Relaxed);
        }
    }
}

/// What `zone` holds, if it is a forwarder's (see the module doc).
pub fn read(zone: &Zone) -> Option<Published> {
    let words = zone.u64s();
    let get = |i: usize| words.get(i).map(|w: &AtomicU64| w.load(Ordering::Relaxed));
    if get(0)? != MAGIC {
        return None;
    }
    let queues = usize::try_from(get(1)?).ok().filter(|&q| q <= MAX_QUEUES)?;
    let dispatched = (FIXED..FIXED + queues).map(get).collect::<Option<Vec<_>>>()?;
    let misses = MISSES.iter().enumerate().map(|(i, &m)| Some((m, get(8 + i)?))).collect::<Option<Vec<_>>>()?;
    Some(Published {
        entries: get(2)?,
        registered: get(3)?,
        expired: get(4)?,
        delivered: get(5)?,
        copies: get(6)?,
        unplaced: get(7)?,
        misses,
        dispatched,
    })
}

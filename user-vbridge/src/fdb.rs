//! The forwarding database: which port a (MAC, VLAN) was last seen on.
//!
//! Entries live in a hash map keyed by the MAC and VLAN id packed into one
//! `u64`. Learned entries are also listed in a min-heap of *age stamps*
//! `(last seen, generation)`, which answers both "which entries have expired"
//! and "which entry is the oldest" without scanning the table. The heap is
//! lazy: refreshing an entry only rewrites `last_seen` in the map (one hash
//! lookup, the fast path); when a stamp reaches the top of the heap it is
//! compared with its entry, and an outdated stamp is pushed again with the
//! entry's real time. Stamps of removed entries are recognised by their
//! generation and discarded.
//!
//! Frames come in bursts, mostly from and to a few stations, so the table
//! remembers its last learn and its last lookup: a repeat within the same
//! poll costs a comparison instead of a hash probe. Any change to the table
//! forgets both.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::Duration;

use ethdev::mac::MacAddr;
use ethdev::Instant;

use crate::config::LimitPolicy;
use crate::frame::mac_bytes;
use crate::hash::FastBuild;
use crate::port::PortId;

/// Extra stale stamps tolerated before the heap is rebuilt.
const HEAP_SLACK: usize = 64;

/// What the FDB knows about one (MAC, VLAN).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FdbEntry {
    /// Port the address lives behind.
    pub port: PortId,
    /// Added by [`crate::Bridge::add_static`]: never aged, never moved by
    /// learning, kept when its port goes down.
    pub is_static: bool,
    /// When a frame from the address was last seen (learned entries).
    pub last_seen: Instant,
}

/// FDB event counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FdbStats {
    /// Entries created by learning.
    pub learned: u64,
    /// Learned entries that moved to another port.
    pub moved: u64,
    /// Learned entries removed by ageing.
    pub aged: u64,
    /// Learned entries evicted to make room (`LimitPolicy::EvictOldest`).
    pub evicted: u64,
    /// New addresses not learned because the table was full.
    pub refused: u64,
    /// Learned entries removed because their port went down.
    pub flushed: u64,
    /// Entries in the table now, static ones included.
    pub size: usize,
}

/// Packs a 48-bit MAC address and a 12-bit VLAN id into one key.
pub(crate) fn key(mac: u64, vlan: u16) -> u64 {
    mac | u64::from(vlan) << 48
}

fn unpack(key: u64) -> ([u8; 6], u16) {
    (mac_bytes(key), (key >> 48) as u16)
}

#[derive(Clone, Copy, Debug)]
struct Slot {
    port: PortId,
    last_seen: Instant,
    generation: u64,
    is_static: bool,
}

/// A heap entry: when a learned entry was (at least) last seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Stamp {
    at: Instant,
    generation: u64,
    key: u64,
}

/// The table, its age stamps and its limits.
pub(crate) struct Fdb {
    map: HashMap<u64, Slot, FastBuild>,
    ages: BinaryHeap<Reverse<Stamp>>,
    ageing: Duration,
    limit: Option<usize>,
    policy: LimitPolicy,
    learned_now: usize,
    next_generation: u64,
    stats: FdbStats,
    /// Last (key, port, time) learning settled; repeating it changes nothing.
    recent_learn: Option<(u64, PortId, Instant)>,
    /// Last destination looked up, with the answer.
    recent_lookup: Option<(u64, Option<PortId>)>,
}

impl Fdb {
    /// An empty table.
    pub fn new(ageing: Duration, limit: Option<usize>, policy: LimitPolicy) -> Fdb {
        Fdb {
            map: HashMap::default(),
            ages: BinaryHeap::new(),
            ageing,
            limit,
            policy,
            learned_now: 0,
            next_generation: 0,
            stats: FdbStats::default(),
            recent_learn: None,
            recent_lookup: None,
        }
    }

    /// Records that `key` was seen on `port` at `now`: refreshes, moves or
    /// creates a learned entry; static entries are left alone.
    pub fn learn(&mut self, key: u64, port: PortId, now: Instant) {
        if self.recent_learn == Some((key, port, now)) {
            return;
        }
        let settled = match self.map.get_mut(&key) {
            Some(slot) if slot.is_static => true,
            Some(slot) if slot.port == port => {
                slot.last_seen = now;
                true
            }
            Some(slot) => {
                slot.last_seen = now;
                slot.port = port;
                self.stats.moved += 1;
                self.forget_recent();
                true
            }
            None => self.insert_learned(key, port, now),
        };
        if settled {
            self.recent_learn = Some((key, port, now));
        }
    }

    /// The port behind `key`, if known.
    pub fn lookup(&mut self, key: u64) -> Option<PortId> {
        if let Some((recent, port)) = self.recent_lookup {
            if recent == key {
                return port;
            }
        }
        let port = self.map.get(&key).map(|slot| slot.port);
        self.recent_lookup = Some((key, port));
        port
    }

    /// The entry for `key`, if any.
    pub fn get(&self, key: u64) -> Option<FdbEntry> {
        self.map.get(&key).map(entry)
    }

    /// Installs (or replaces) a static entry.
    pub fn add_static(&mut self, key: u64, port: PortId) {
        let generation = self.generation();
        let slot = Slot { port, last_seen: Instant::ZERO, generation, is_static: true };
        if self.map.insert(key, slot).is_some_and(|old| !old.is_static) {
            self.learned_now -= 1;
        }
        self.forget_recent();
    }

    /// Removes the entry for `key`, static or learned; whether there was one.
    pub fn remove(&mut self, key: u64) -> bool {
        match self.map.remove(&key) {
            Some(old) => {
                if !old.is_static {
                    self.learned_now -= 1;
                }
                self.forget_recent();
                self.compact();
                true
            }
            None => false,
        }
    }

    /// Removes every learned entry on `port` (static ones stay).
    pub fn flush_port(&mut self, port: PortId) {
        let before = self.map.len();
        self.map.retain(|_, slot| slot.is_static || slot.port != port);
        let flushed = before - self.map.len();
        self.learned_now -= flushed;
        self.stats.flushed += flushed as u64;
        self.forget_recent();
        self.compact();
    }

    /// Removes every learned entry not refreshed within the ageing time.
    pub fn age(&mut self, now: Instant) {
        while let Some(&Reverse(stamp)) = self.ages.peek() {
            if !self.expired(stamp.at, now) {
                break;
            }
            self.ages.pop();
            match self.live_slot(stamp) {
                Some(slot) if self.expired(slot.last_seen, now) => {
                    self.map.remove(&stamp.key);
                    self.learned_now -= 1;
                    self.stats.aged += 1;
                    self.forget_recent();
                }
                Some(slot) => self.push_stamp(stamp.key, slot),
                None => {}
            }
        }
    }

    /// Earliest time an entry might expire (a lower bound: entries refreshed
    /// since their stamp was pushed expire later).
    pub fn next_expiry(&self) -> Option<Instant> {
        self.ages.peek().map(|Reverse(stamp)| stamp.at + self.ageing)
    }

    /// The ageing time.
    pub fn ageing(&self) -> Duration {
        self.ageing
    }

    /// Event counters and the current size.
    pub fn stats(&self) -> FdbStats {
        FdbStats { size: self.map.len(), ..self.stats }
    }

    /// Every entry with its MAC and VLAN, sorted by VLAN then MAC.
    pub fn entries(&self) -> Vec<(MacAddr, u16, FdbEntry)> {
        let mut keys: Vec<u64> = self.map.keys().copied().collect();
        keys.sort_unstable();
        keys.into_iter()
            .filter_map(|k| {
                let (mac, vlan) = unpack(k);
                self.get(k).map(|e| (MacAddr(mac), vlan, e))
            })
            .collect()
    }

    /// Creates a learned entry if the limit allows; whether it did.
    fn insert_learned(&mut self, key: u64, port: PortId, now: Instant) -> bool {
        if self.limit.is_some_and(|limit| self.learned_now >= limit) && !self.make_room() {
            self.stats.refused += 1;
            return false;
        }
        let generation = self.generation();
        let slot = Slot { port, last_seen: now, generation, is_static: false };
        self.map.insert(key, slot);
        self.push_stamp(key, slot);
        self.learned_now += 1;
        self.stats.learned += 1;
        self.forget_recent();
        true
    }

    /// Under `EvictOldest`, removes the least recently seen learned entry;
    /// whether room was made.
    fn make_room(&mut self) -> bool {
        if self.policy != LimitPolicy::EvictOldest {
            return false;
        }
        while let Some(Reverse(stamp)) = self.ages.pop() {
            match self.live_slot(stamp) {
                Some(slot) if slot.last_seen == stamp.at => {
                    self.map.remove(&stamp.key);
                    self.learned_now -= 1;
                    self.stats.evicted += 1;
                    self.forget_recent();
                    return true;
                }
                Some(slot) => self.push_stamp(stamp.key, slot),
                None => {}
            }
        }
        false
    }

    /// The learned entry a stamp was pushed for, if it still exists.
    fn live_slot(&self, stamp: Stamp) -> Option<Slot> {
        self.map.get(&stamp.key).filter(|slot| !slot.is_static && slot.generation == stamp.generation).copied()
    }

    fn push_stamp(&mut self, key: u64, slot: Slot) {
        let stamp = Stamp { at: slot.last_seen, generation: slot.generation, key };
        self.ages.push(Reverse(stamp));
    }

    /// Rebuilds the heap when stamps of removed entries dominate it.
    fn compact(&mut self) {
        if self.ages.len() <= 2 * self.learned_now + HEAP_SLACK {
            return;
        }
        let ages = self
            .map
            .iter()
            .filter(|(_, slot)| !slot.is_static)
            .map(|(&key, slot)| Reverse(Stamp { at: slot.last_seen, generation: slot.generation, key }));
        self.ages = ages.collect();
    }

    fn forget_recent(&mut self) {
        self.recent_learn = None;
        self.recent_lookup = None;
    }

    fn expired(&self, last_seen: Instant, now: Instant) -> bool {
        now.since(last_seen) >= self.ageing
    }

    fn generation(&mut self) -> u64 {
        self.next_generation += 1;
        self.next_generation
    }
}

fn entry(slot: &Slot) -> FdbEntry {
    FdbEntry { port: slot.port, is_static: slot.is_static, last_seen: slot.last_seen }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P0: PortId = PortId(0);
    const P1: PortId = PortId(1);

    fn mac(n: u8) -> u64 {
        key(0x0200_0000_0000 | u64::from(n), 0)
    }

    fn fdb(limit: Option<usize>, policy: LimitPolicy) -> Fdb {
        Fdb::new(Duration::from_secs(10), limit, policy)
    }

    #[test]
    fn key_round_trips() {
        let k = key(0x0102_0304_0506, 4095);
        assert_eq!(unpack(k), ([1, 2, 3, 4, 5, 6], 4095));
    }

    #[test]
    fn refreshed_entries_outlive_their_first_stamp() {
        let mut f = fdb(None, LimitPolicy::StopLearning);
        f.learn(mac(1), P0, Instant::from_secs(0));
        f.learn(mac(2), P0, Instant::from_secs(0));
        f.learn(mac(1), P0, Instant::from_secs(5));
        f.age(Instant::from_secs(10));
        assert_eq!((f.lookup(mac(1)), f.lookup(mac(2))), (Some(P0), None));
        assert_eq!(f.next_expiry(), Some(Instant::from_secs(15)));
        f.age(Instant::from_secs(15));
        assert_eq!(f.stats().size, 0);
        assert_eq!(f.stats().aged, 2);
    }

    #[test]
    fn eviction_takes_the_least_recently_seen() {
        let mut f = fdb(Some(2), LimitPolicy::EvictOldest);
        f.learn(mac(1), P0, Instant::from_secs(1));
        f.learn(mac(2), P0, Instant::from_secs(2));
        f.learn(mac(1), P0, Instant::from_secs(3));
        f.learn(mac(3), P1, Instant::from_secs(4));
        assert_eq!(f.lookup(mac(2)), None);
        assert_eq!((f.lookup(mac(1)), f.lookup(mac(3))), (Some(P0), Some(P1)));
        assert_eq!(f.stats().evicted, 1);
    }

    #[test]
    fn stale_stamps_are_compacted_after_flushes() {
        let mut f = fdb(None, LimitPolicy::StopLearning);
        for round in 0..10 {
            for n in 0..50 {
                f.learn(mac(n), P0, Instant::from_secs(round));
            }
            f.flush_port(P0);
        }
        assert!(f.ages.len() <= HEAP_SLACK + 50, "heap holds {}", f.ages.len());
        assert_eq!(f.stats().flushed, 500);
    }

    #[test]
    fn static_replaces_learned_and_is_kept_on_flush() {
        let mut f = fdb(Some(1), LimitPolicy::StopLearning);
        f.learn(mac(1), P0, Instant::ZERO);
        f.add_static(mac(1), P1);
        f.learn(mac(1), P0, Instant::ZERO);
        f.flush_port(P1);
        assert_eq!(f.get(mac(1)).map(|e| (e.port, e.is_static)), Some((P1, true)));
        f.learn(mac(2), P0, Instant::ZERO);
        assert_eq!(f.lookup(mac(2)), Some(P0), "static entries do not count against the limit");
    }
}

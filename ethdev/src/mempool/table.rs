//! Buffers in flight as plain numbers, and the table that turns them back
//! into buffers.
//!
//! A ring that lives in shared memory cannot carry an [`Mbuf`]: the handle
//! holds an address that means nothing in another process. It carries an
//! [`MbufRef`] instead, a pool number and a slot index packed in one `u64`.
//! Each process numbers the pools it shares the same way (a [`PoolTable`]
//! filled in domain order), so a reference made in one process resolves in
//! another. Everything in a reference is checked before it is followed,
//! because a reference read from shared memory may have been written by a
//! crashed or hostile process: the pool number against the table, the index
//! against the pool, the slot's owner word against the transit state (with
//! a CAS, so a reference is claimed at most once), and the data window
//! against the buffer.

use super::{Mbuf, Mempool, Owner, CACHED, FREE, TRANSIT};

/// A buffer given up to a ring: pool number (in a [`PoolTable`]) and slot index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MbufRef {
    /// The pool's number in the table of whoever resolves the reference.
    pub pool: u16,
    /// The slot's index in the pool.
    pub index: u32,
}

impl MbufRef {
    /// The reference as one word, for a ring of `u64`.
    pub fn to_word(self) -> u64 {
        u64::from(self.pool) << 32 | u64::from(self.index)
    }

    /// The reference packed in `word` (any word unpacks; [`PoolTable::claim`] checks it).
    pub fn from_word(word: u64) -> MbufRef {
        MbufRef { pool: (word >> 32) as u16, index: word as u32 }
    }
}

/// Why a reference was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RefError {
    /// No pool has this number.
    #[error("no pool {0} in the table")]
    NoSuchPool(u16),
    /// The index is past the pool's last slot.
    #[error("slot {index} is past the end of pool {pool} ({capacity} slots)")]
    OutOfRange {
        /// Pool number.
        pool: u16,
        /// Refused index.
        index: u32,
        /// The pool's capacity.
        capacity: usize,
    },
    /// The slot is not in transit: claimed already, free, cached or held.
    #[error("slot {index} of pool {pool} is not in transit")]
    NotInTransit {
        /// Pool number.
        pool: u16,
        /// Refused index.
        index: u32,
    },
    /// The slot's data window lies outside its buffer; the buffer was freed.
    #[error("slot {index} of pool {pool} has a data window outside its buffer (freed)")]
    BadWindow {
        /// Pool number.
        pool: u16,
        /// Refused index.
        index: u32,
    },
}

/// The pools a process resolves references with, numbered from 0.
#[derive(Debug, Default)]
pub struct PoolTable {
    pools: Vec<Mempool>,
}

impl PoolTable {
    /// An empty table.
    pub fn new() -> PoolTable {
        PoolTable::default()
    }

    /// Adds `pool` under the next number, which it returns; `None` once the
    /// table holds 65 536 pools.
    pub fn add(&mut self, pool: Mempool) -> Option<u16> {
        let id = u16::try_from(self.pools.len()).ok()?;
        self.pools.push(pool);
        Some(id)
    }

    /// The pool numbered `id`.
    pub fn get(&self, id: u16) -> Option<&Mempool> {
        self.pools.get(usize::from(id))
    }

    /// Takes the buffer `r` names for `owner`, if it really is in transit.
    pub fn claim(&self, r: MbufRef, owner: Owner) -> Result<Mbuf, RefError> {
        let pool = self.get(r.pool).ok_or(RefError::NoSuchPool(r.pool))?;
        let shared = pool.shared();
        let word = shared.owners().get(r.index as usize).ok_or(RefError::OutOfRange {
            pool: r.pool,
            index: r.index,
            capacity: pool.capacity(),
        })?;
        let seen = word.load(crate::sync::Ordering::Acquire);
        let in_transit = seen != FREE && seen & (CACHED | TRANSIT) == TRANSIT;
        if !in_transit || !shared.move_slot(r.index, seen, owner.0 & super::OWNER_MASK) {
            return Err(RefError::NotInTransit { pool: r.pool, index: r.index });
        }
        let mbuf = Mbuf { pool: pool.handle.0, index: r.index };
        if mbuf.window_fits() {
            Ok(mbuf)
        } else {
            Err(RefError::BadWindow { pool: r.pool, index: r.index })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mempool::MempoolConfig;

    fn table() -> PoolTable {
        let mut table = PoolTable::new();
        assert_eq!(table.add(Mempool::new(MempoolConfig::new("a", 4).data_room(64)).unwrap()), Some(0));
        table
    }

    #[test]
    fn a_reference_is_claimed_once_with_its_data() {
        let table = table();
        let pool = table.get(0).unwrap();
        let mut m = pool.alloc(Owner(1)).unwrap();
        m.extend_from_slice(b"abc");
        m.set_rss_hash(9);
        let r = MbufRef::from_word(m.into_ref(0).to_word());
        let mut transit = Vec::new();
        pool.walk_in_transit(|i, sender| transit.push((i, sender)));
        assert_eq!(transit, [(r.index, Owner(1))]);
        let got = table.claim(r, Owner(2)).unwrap();
        assert_eq!((got.data(), got.rss_hash(), got.owner()), (&b"abc"[..], 9, Owner(2)));
        assert_eq!(table.claim(r, Owner(3)).unwrap_err(), RefError::NotInTransit { pool: 0, index: r.index });
        drop(got);
        assert_eq!(pool.in_use(), 0);
    }

    #[test]
    fn forged_references_are_refused_not_followed() {
        let table = table();
        let held = table.get(0).unwrap().alloc(Owner(1)).unwrap();
        let refused = |r: MbufRef| table.claim(r, Owner(2)).unwrap_err();
        assert_eq!(refused(MbufRef { pool: 7, index: 0 }), RefError::NoSuchPool(7));
        assert!(matches!(refused(MbufRef { pool: 0, index: 4 }), RefError::OutOfRange { capacity: 4, .. }));
        assert!(matches!(refused(MbufRef { pool: 0, index: held.index }), RefError::NotInTransit { .. }));
        let free = (0..4).find(|&i| i != held.index).unwrap();
        assert!(matches!(refused(MbufRef { pool: 0, index: free }), RefError::NotInTransit { .. }));
        assert_eq!(held.owner(), Owner(1), "the holder keeps its buffer");
    }
}

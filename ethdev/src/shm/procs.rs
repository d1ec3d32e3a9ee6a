//! The domain's table of processes: written by the primary's control
//! channel, read by anyone (`dtnet stats`), like the instance table
//! gazellectl reads from ltran.
//!
//! One zone, `dtnet.procs`, of 64 entries of eight 64-bit words: pid and
//! state, owner id, role, and a 32-byte name. Everything is decoded with
//! its range checked, so a table another process scribbled on reads as
//! odd entries, never as a crash.

use std::sync::atomic::Ordering;

use super::{Domain, ShmError, Zone};
use crate::owner::Owner;

/// The zone's name.
pub const ZONE: &str = "dtnet.procs";
/// Entries in the table.
const ENTRIES: usize = 64;
/// Words per entry.
const WORDS: usize = 8;
/// Bytes of a name.
const NAME: usize = 32;

/// Where a process is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcState {
    /// Registered and running.
    Alive,
    /// Said goodbye.
    LoggedOut,
    /// Exited without goodbye; its resources were reclaimed.
    Died,
}

/// One process of the domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcEntry {
    /// Its pid.
    pub pid: u32,
    /// Primary or secondary.
    pub primary: bool,
    /// Its owner id (0 for the primary).
    pub owner: Owner,
    /// Its registration name.
    pub name: String,
    /// Where it is in its life.
    pub state: ProcState,
}

/// The table in a domain.
#[derive(Clone, Debug)]
pub struct ProcTable {
    zone: Zone,
}

impl ProcTable {
    /// Makes the table in `domain` (the primary does, once).
    pub fn create(domain: &Domain) -> Result<ProcTable, ShmError> {
        Ok(ProcTable { zone: domain.reserve(ZONE, ENTRIES * WORDS * 8)? })
    }

    /// The table of `domain`.
    pub fn open(domain: &Domain) -> Result<ProcTable, ShmError> {
        Ok(ProcTable { zone: domain.lookup(ZONE)? })
    }

    /// Writes `entry` over the entry of the same pid and owner, or an empty
    /// one, or the oldest one no longer alive; drops it if all are alive.
    pub fn record(&self, entry: &ProcEntry) {
        let words = self.zone.u64s();
        let entries = self.entries_raw();
        let same =
            entries.iter().position(|e| e.as_ref().is_some_and(|e| e.pid == entry.pid && e.owner == entry.owner));
        let free = || entries.iter().position(Option::is_none);
        let gone = || entries.iter().position(|e| e.as_ref().is_some_and(|e| e.state != ProcState::Alive));
        let Some(slot) = same.or_else(free).or_else(gone) else { return };
        let Some(at) = words.get(slot * WORDS..(slot + 1) * WORDS) else { return };
        let mut name = [0u8; NAME];
        let len = entry.name.len().min(NAME);
        name[..len].copy_from_slice(&entry.name.as_bytes()[..len]);
        for (word, chunk) in at[2..6].iter().zip(name.chunks(8)) {
            word.store(u64::from_le_bytes(chunk.try_into().expect("8 bytes")), Ordering::Relaxed);
        }
        at[1].store(u64::from(entry.owner.0), Ordering::Relaxed);
        at[6].store(u64::from(entry.primary), Ordering::Relaxed);
        let state = match entry.state {
            ProcState::Alive => 1,
            ProcState::LoggedOut => 2,
            ProcState::Died => 3,
        };
        at[0].store(u64::from(entry.pid) | state << 32, Ordering::Release);
    }

    /// The processes recorded, in table order.
    pub fn entries(&self) -> Vec<ProcEntry> {
        self.entries_raw().into_iter().flatten().collect()
    }

    fn entries_raw(&self) -> Vec<Option<ProcEntry>> {
        self.zone.u64s().chunks_exact(WORDS).take(ENTRIES).map(decode).collect()
    }
}

fn decode(at: &[std::sync::atomic::AtomicU64]) -> Option<ProcEntry> {
    let head = at[0].load(Ordering::Acquire);
    let state = match head >> 32 {
        1 => ProcState::Alive,
        2 => ProcState::LoggedOut,
        3 => ProcState::Died,
        _ => return None,
    };
    let bytes: Vec<u8> = at[2..6].iter().flat_map(|w| w.load(Ordering::Relaxed).to_le_bytes()).collect();
    let name = String::from_utf8_lossy(&bytes).trim_end_matches('\0').to_string();
    Some(ProcEntry {
        pid: head as u32,
        primary: at[6].load(Ordering::Relaxed) == 1,
        owner: Owner(at[1].load(Ordering::Relaxed) as u32),
        name,
        state,
    })
}

//! The redirection table: the low bits of the hash index a table of queue
//! ids, so software can move flows between queues without touching the key.

use crate::error::ConfigError;

const FIELD: &str = "rss.reta";
const SIZE_FIELD: &str = "rss.reta_size";
const QUEUES_FIELD: &str = "rx_queues";
const VALID_SIZES: [usize; 4] = [64, 128, 256, 512];

/// A redirection table: `queue = entries[hash & (len - 1)]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reta {
    entries: Vec<u16>,
    nb_queues: u16,
}

impl Reta {
    /// A table of `size` (64, 128, 256 or 512) entries spreading hashes
    /// round-robin over `nb_queues` queues: `entries[i] = i % nb_queues`.
    pub fn new(size: usize, nb_queues: u16) -> Result<Reta, ConfigError> {
        check_size(size)?;
        check_queues(nb_queues)?;
        let entries = (0..size).map(|i| (i % usize::from(nb_queues)) as u16).collect();
        Ok(Reta { entries, nb_queues })
    }

    /// A table with the given entries, each a queue below `nb_queues`.
    pub fn from_entries(entries: Vec<u16>, nb_queues: u16) -> Result<Reta, ConfigError> {
        check_size(entries.len())?;
        check_queues(nb_queues)?;
        let bad = entries.iter().enumerate().find(|&(_, &queue)| queue >= nb_queues);
        if let Some((index, &queue)) = bad {
            return Err(entry_error(index, queue, nb_queues));
        }
        Ok(Reta { entries, nb_queues })
    }

    /// The queue that receives a packet with this hash.
    #[inline]
    pub fn queue(&self, hash: u32) -> u16 {
        self.entries[hash as usize & (self.entries.len() - 1)]
    }

    /// The number of entries (64, 128, 256 or 512).
    #[expect(clippy::len_without_is_empty, reason = "a RETA is never empty")]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The entries, indexed by the low bits of the hash.
    pub fn entries(&self) -> &[u16] {
        &self.entries
    }

    /// The number of queues entries may name.
    pub fn nb_queues(&self) -> u16 {
        self.nb_queues
    }

    /// Points entry `index` at `queue`, like one masked entry of
    /// `rte_eth_dev_rss_reta_update`.
    pub fn update(&mut self, index: usize, queue: u16) -> Result<(), ConfigError> {
        if queue >= self.nb_queues {
            return Err(entry_error(index, queue, self.nb_queues));
        }
        let len = self.entries.len();
        let entry = self
            .entries
            .get_mut(index)
            .ok_or_else(|| ConfigError::new(FIELD, format!("index {index} is past the table's {len} entries")))?;
        *entry = queue;
        Ok(())
    }
}

/// Refuses a table size no NIC offers.
fn check_size(size: usize) -> Result<(), ConfigError> {
    if VALID_SIZES.contains(&size) {
        Ok(())
    } else {
        Err(ConfigError::new(SIZE_FIELD, format!("must be 64, 128, 256 or 512, not {size}")))
    }
}

/// Refuses a table with no queue to point at.
fn check_queues(nb_queues: u16) -> Result<(), ConfigError> {
    if nb_queues == 0 {
        Err(ConfigError::new(QUEUES_FIELD, "RSS needs at least one receive queue"))
    } else {
        Ok(())
    }
}

/// The refusal of entry `index` naming a queue the port does not have.
fn entry_error(index: usize, queue: u16, nb_queues: u16) -> ConfigError {
    ConfigError::new(FIELD, format!("entry {index} names queue {queue}, but there are only {nb_queues} queues"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_fill_is_round_robin() {
        let reta = Reta::new(64, 3).expect("valid table");
        assert_eq!(&reta.entries()[..7], &[0, 1, 2, 0, 1, 2, 0]);
        assert_eq!(reta.len(), 64);
        assert_eq!(reta.nb_queues(), 3);
    }

    #[test]
    fn queue_uses_low_bits_of_hash() {
        let entries = (0..128).map(|i| u16::from(i == 5)).collect();
        let reta = Reta::from_entries(entries, 2).expect("valid table");
        assert_eq!(reta.queue(5), 1);
        assert_eq!(reta.queue(0xffff_ff80 | 5), 1);
        assert_eq!(reta.queue(6), 0);
    }

    #[test]
    fn update_moves_one_entry() {
        let mut reta = Reta::new(64, 4).expect("valid table");
        reta.update(9, 3).expect("valid update");
        assert_eq!(reta.queue(9), 3);
        assert_eq!(reta.queue(8), 0);
    }

    #[test]
    fn zero_queues_is_refused() {
        assert_eq!(Reta::new(64, 0).map_err(|e| e.field), Err(QUEUES_FIELD.to_owned()));
    }
}

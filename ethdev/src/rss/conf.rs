//! A port's whole RSS configuration, with the hash tables of its key kept
//! ready: the key changes rarely, frames arrive constantly.

use super::{Reta, RssHashTypes, RssKey, Toeplitz};
use crate::error::ConfigError;
use crate::packet::{Ipv4Flow, PacketMeta};

/// Key, hashed packet types and redirection table of a port, plus the
/// [`Toeplitz`] tables of the key, rebuilt whenever the key changes.
#[derive(Clone, Debug)]
pub struct RssConf {
    toeplitz: Toeplitz,
    types: RssHashTypes,
    reta: Reta,
}

impl RssConf {
    /// Size of the RETA [`RssConf::new`] builds (as on an 82599).
    pub const DEFAULT_RETA_SIZE: usize = 128;

    /// The usual defaults for `nb_queues` receive queues: the default key,
    /// every IPv4/IPv6 (TCP, UDP) type, and a round-robin 128-entry RETA.
    pub fn new(nb_queues: u16) -> Result<RssConf, ConfigError> {
        let reta = Reta::new(Self::DEFAULT_RETA_SIZE, nb_queues)?;
        Ok(RssConf::from_parts(RssKey::DEFAULT, RssHashTypes::all(), reta))
    }

    /// A configuration from its parts.
    pub fn from_parts(key: RssKey, types: RssHashTypes, reta: Reta) -> RssConf {
        RssConf { toeplitz: Toeplitz::new(&key), types, reta }
    }

    /// The hash key.
    pub fn key(&self) -> &RssKey {
        self.toeplitz.key()
    }

    /// Replaces the key, rebuilding the hash tables if it differs.
    pub fn set_key(&mut self, key: RssKey) {
        if key != *self.key() {
            self.toeplitz = Toeplitz::new(&key);
        }
    }

    /// Which packet types are hashed.
    pub fn types(&self) -> RssHashTypes {
        self.types
    }

    /// Changes which packet types are hashed.
    pub fn set_types(&mut self, types: RssHashTypes) {
        self.types = types;
    }

    /// The redirection table.
    pub fn reta(&self) -> &Reta {
        &self.reta
    }

    /// The redirection table, to update or replace.
    pub fn reta_mut(&mut self) -> &mut Reta {
        &mut self.reta
    }

    /// The hash tables of the current key.
    pub fn toeplitz(&self) -> &Toeplitz {
        &self.toeplitz
    }

    /// The RSS hash of a received frame and the queue it goes to, or `None`
    /// if its type is not hashed (such frames go to queue 0 on a NIC).
    #[inline]
    pub fn queue_for(&self, meta: &PacketMeta) -> Option<(u32, u16)> {
        let hash = self.toeplitz.hash_meta(meta, self.types)?;
        Some((hash, self.reta.queue(hash)))
    }

    /// [`RssConf::queue_for`] a frame [`Ipv4Flow::parse`] read.
    #[inline]
    pub fn queue_for_ipv4(&self, flow: &Ipv4Flow) -> Option<(u32, u16)> {
        let hash = self.toeplitz.hash_ipv4_flow(flow, self.types)?;
        Some((hash, self.reta.queue(hash)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_key_rebuilds_tables() {
        let mut conf = RssConf::new(4).expect("valid conf");
        let input = [1u8, 2, 3, 4, 5, 6, 7, 8];
        let before = conf.toeplitz().hash(&input);
        let key = RssKey::symmetric(40).expect("valid length");
        conf.set_key(key);
        assert_eq!(conf.key(), &key);
        assert_ne!(conf.toeplitz().hash(&input), before);
        assert_eq!(conf.toeplitz().hash(&input), Toeplitz::new(&key).hash(&input));
    }

    #[test]
    fn defaults() {
        let conf = RssConf::new(4).expect("valid conf");
        assert_eq!(conf.key(), &RssKey::DEFAULT);
        assert_eq!(conf.types(), RssHashTypes::all());
        assert_eq!(conf.reta().len(), 128);
    }
}

//! The workspace's one Ethernet MAC address type.
//!
//! [`MacAddr`] is a `#[repr(transparent)]` newtype over the six octets as
//! they appear on the wire, so it costs nothing over `[u8; 6]` and converts
//! both ways with `From`. It is what ports, the bridge's forwarding table,
//! frame builders, stack configuration and scenarios all pass around; the
//! text form is `aa:bb:cc:dd:ee:ff` (parsing also accepts one hex digit per
//! octet, as gazelle's configuration files do), and serde reads it from that
//! string. The address-class checks (`is_multicast`, `is_broadcast`,
//! `is_zero`) live here so no caller tests the group bit by hand.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserialize, Deserializer, Visitor};

/// An Ethernet MAC address: six octets in wire order.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(transparent)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// `ff:ff:ff:ff:ff:ff`.
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);

    /// The six octets.
    pub const fn octets(self) -> [u8; 6] {
        self.0
    }

    /// Whether the group bit (the low bit of the first octet) is set; true
    /// for broadcast too.
    pub const fn is_multicast(self) -> bool {
        self.0[0] & 1 == 1
    }

    /// Whether this is `ff:ff:ff:ff:ff:ff`.
    pub fn is_broadcast(self) -> bool {
        self == Self::BROADCAST
    }

    /// Whether this is `00:00:00:00:00:00`.
    pub fn is_zero(self) -> bool {
        self == Self::default()
    }
}

impl From<[u8; 6]> for MacAddr {
    fn from(octets: [u8; 6]) -> Self {
        Self(octets)
    }
}

impl From<MacAddr> for [u8; 6] {
    fn from(mac: MacAddr) -> Self {
        mac.0
    }
}

impl PartialEq<[u8; 6]> for MacAddr {
    fn eq(&self, other: &[u8; 6]) -> bool {
        self.0 == *other
    }
}

/// Why a string is not a [`MacAddr`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a MAC address like \"aa:bb:cc:dd:ee:ff\"")]
pub struct ParseMacError(pub String);

impl FromStr for MacAddr {
    type Err = ParseMacError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ParseMacError(s.to_owned());
        let mut bytes = [0u8; 6];
        let mut parts = s.split(':');
        for byte in &mut bytes {
            let part = parts.next().filter(|p| (1..=2).contains(&p.len())).ok_or_else(bad)?;
            *byte = u8::from_str_radix(part, 16).map_err(|_| bad())?;
        }
        match parts.next() {
            Some(_) => Err(bad()),
            None => Ok(Self(bytes)),
        }
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MacAddr({self})")
    }
}

/// What a MAC address looks like, for error messages.
const HINT: &str = "a MAC address like \"aa:bb:cc:dd:ee:ff\"";

impl<'de> Deserialize<'de> for MacAddr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(MacVisitor)
    }
}

struct MacVisitor;

impl Visitor<'_> for MacVisitor {
    type Value = MacAddr;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "expected {HINT}")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<MacAddr, E> {
        v.trim().parse().map_err(|_| E::custom(format!("expected {HINT}, got {v:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trips_and_classes_follow_the_group_bit() {
        let mac: MacAddr = "2:0:0:0:0:AB".parse().unwrap();
        assert_eq!(mac, MacAddr([2, 0, 0, 0, 0, 0xab]));
        assert_eq!(mac.to_string().parse(), Ok(mac));
        assert_eq!(format!("{mac:?}"), "MacAddr(02:00:00:00:00:ab)");
        assert!(!mac.is_multicast() && !mac.is_broadcast() && !mac.is_zero());
        assert!(MacAddr([0x01, 0, 0x5e, 0, 0, 1]).is_multicast());
        assert!(MacAddr::BROADCAST.is_multicast() && MacAddr::BROADCAST.is_broadcast());
        assert!(MacAddr::default().is_zero());
        assert_eq!(<[u8; 6]>::from(mac), mac.octets());
    }
}

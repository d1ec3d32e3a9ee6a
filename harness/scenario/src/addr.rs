//! Addresses a host can own. A host's MAC must be a unicast address other
//! than all zeros; its IPv4 address must not be unspecified, limited
//! broadcast, multicast, loopback, nor the network or broadcast address of
//! its own subnet (prefixes up to /30; /31 and /32 have neither); its IPv6
//! address must not be unspecified, loopback or multicast; a gateway obeys
//! the IPv4 rules that do not depend on a prefix. Each check says what the
//! address is instead, for an error that names the key.

use std::net::{Ipv4Addr, Ipv6Addr};

use ethdev::mac::MacAddr;
use stack::GroupConfig;

/// Why `mac` cannot be a host's.
pub fn check_mac(mac: impl Into<MacAddr>) -> Result<(), String> {
    let mac = mac.into();
    let what = if mac.is_zero() {
        "the all-zero MAC"
    } else if mac.is_broadcast() {
        "the broadcast MAC"
    } else if mac.is_multicast() {
        "a multicast MAC (the low bit of its first octet is set)"
    } else {
        return Ok(());
    };
    Err(format!("{mac} is {what}, which no host can own"))
}

/// Why `addr` cannot be an IPv4 host or gateway address, whatever its prefix.
fn check_v4_any(addr: Ipv4Addr) -> Result<(), String> {
    let what = if addr.is_unspecified() {
        "the unspecified address"
    } else if addr.is_broadcast() {
        "the limited broadcast address"
    } else if addr.is_multicast() {
        "a multicast address"
    } else if addr.is_loopback() {
        "a loopback address"
    } else {
        return Ok(());
    };
    Err(format!("{addr} is {what}, which no host can own"))
}

/// Why `addr/prefix` cannot be a host's IPv4 address.
pub fn check_v4(addr: Ipv4Addr, prefix: u8) -> Result<(), String> {
    check_v4_any(addr)?;
    if prefix > 30 {
        return Ok(());
    }
    let host_mask = u32::MAX >> prefix;
    let network = Ipv4Addr::from(addr.to_bits() & !host_mask);
    let what = match addr.to_bits() & host_mask {
        0 => "network",
        bits if bits == host_mask => "broadcast",
        _ => return Ok(()),
    };
    Err(format!("{addr} is the {what} address of {network}/{prefix}, which no host can own"))
}

/// Why `addr` cannot be a host's IPv6 address.
pub fn check_v6(addr: Ipv6Addr) -> Result<(), String> {
    let what = if addr.is_unspecified() {
        "the unspecified address"
    } else if addr.is_loopback() {
        "the loopback address"
    } else if addr.is_multicast() {
        "a multicast address"
    } else {
        return Ok(());
    };
    Err(format!("{addr} is {what}, which no host can own"))
}

/// The first address of `group` no host can own: the key it comes from
/// (`mac`, `ipv4`, `ipv6` or `gateway`) and why.
pub fn check_group(group: &GroupConfig) -> Result<(), (&'static str, String)> {
    check_mac(group.mac).map_err(|m| ("mac", m))?;
    if let Some((addr, prefix)) = group.ipv4 {
        check_v4(addr, prefix).map_err(|m| ("ipv4", m))?;
    }
    if let Some((addr, _)) = group.ipv6 {
        check_v6(addr).map_err(|m| ("ipv6", m))?;
    }
    if let Some(gateway) = group.gateway {
        check_v4_any(gateway).map_err(|m| ("gateway", m))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_must_be_unicast_and_not_zero() {
        assert!(check_mac([0x02, 0, 0, 0, 0, 1]).is_ok());
        assert_eq!(check_mac([0; 6]), Err("00:00:00:00:00:00 is the all-zero MAC, which no host can own".into()));
        assert!(check_mac([0xff; 6]).is_err_and(|m| m.contains("broadcast")));
        assert!(check_mac([0x01, 0, 0x5e, 0, 0, 1]).is_err_and(|m| m.contains("multicast")));
    }

    #[test]
    fn ipv4_host_addresses_exclude_network_and_broadcast() {
        assert!(check_v4(Ipv4Addr::new(10, 0, 0, 1), 24).is_ok());
        let network = check_v4(Ipv4Addr::new(10, 0, 0, 0), 24);
        assert_eq!(network, Err("10.0.0.0 is the network address of 10.0.0.0/24, which no host can own".into()));
        let broadcast = check_v4(Ipv4Addr::new(10, 0, 1, 255), 23);
        assert_eq!(broadcast, Err("10.0.1.255 is the broadcast address of 10.0.0.0/23, which no host can own".into()));
        assert!(check_v4(Ipv4Addr::new(10, 0, 0, 0), 31).is_ok(), "RFC 3021: /31 has no network address");
        assert!(check_v4(Ipv4Addr::new(10, 0, 0, 255), 32).is_ok());
        for bad in [Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST, Ipv4Addr::new(224, 0, 0, 1), Ipv4Addr::LOCALHOST] {
            assert!(check_v4(bad, 32).is_err(), "{bad}");
        }
    }

    #[test]
    fn ipv6_host_addresses_exclude_unspecified_loopback_and_multicast() {
        assert!(check_v6("fd00::1".parse().unwrap()).is_ok());
        for bad in ["::", "::1", "ff02::1"] {
            assert!(check_v6(bad.parse().unwrap()).is_err(), "{bad}");
        }
    }
}

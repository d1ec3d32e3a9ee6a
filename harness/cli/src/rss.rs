//! `dtnet rss`: the Toeplitz hash of a flow and the queue it lands on.

use std::net::IpAddr;

use ethdev::error::ConfigError;
use ethdev::packet::IpAddrs;
use ethdev::rss::{Reta, RssHashTypes, RssKey, Toeplitz};

use crate::output::{say, Outcome, Verdict};

/// A flow and the RSS setup to place it with.
#[derive(Debug, Clone)]
pub struct RssQuery {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Source and destination ports, if the hash includes them.
    pub ports: Option<(u16, u16)>,
    /// Toeplitz key.
    pub key: RssKey,
    /// Redirection table.
    pub reta: Reta,
}

/// The answer: hash and queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    /// Toeplitz hash of the tuple.
    pub hash: u32,
    /// Queue the RETA maps it to.
    pub queue: u16,
}

impl RssQuery {
    /// Hashes the tuple (over ports too when given) and looks up the RETA.
    pub fn place(&self) -> Result<Placement, ConfigError> {
        let toeplitz = Toeplitz::new(&self.key);
        let hash = match addrs(self.src, self.dst)? {
            IpAddrs::V4 { src, dst } => toeplitz.hash_v4(src, dst, self.ports),
            IpAddrs::V6 { src, dst } => toeplitz.hash_v6(src, dst, self.ports),
        };
        Ok(Placement { hash, queue: self.reta.queue(hash) })
    }
}

fn addrs(src: IpAddr, dst: IpAddr) -> Result<IpAddrs, ConfigError> {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => Ok(IpAddrs::V4 { src: s.octets(), dst: d.octets() }),
        (IpAddr::V6(s), IpAddr::V6(d)) => Ok(IpAddrs::V6 { src: s.octets(), dst: d.octets() }),
        _ => Err(ConfigError::new("dst", "source and destination must both be IPv4 or both IPv6")),
    }
}

/// Parses `--types` names (`ipv4`, `ipv4-tcp`, ...; comma separated) into
/// hash types; used to decide whether ports take part.
pub fn parse_types(text: &str) -> Result<RssHashTypes, ConfigError> {
    text.split(',').map(str::trim).filter(|t| !t.is_empty()).try_fold(RssHashTypes::empty(), |acc, name| {
        let flag = match name {
            "ipv4" => RssHashTypes::IPV4,
            "ipv4-tcp" => RssHashTypes::IPV4_TCP,
            "ipv4-udp" => RssHashTypes::IPV4_UDP,
            "ipv6" => RssHashTypes::IPV6,
            "ipv6-tcp" => RssHashTypes::IPV6_TCP,
            "ipv6-udp" => RssHashTypes::IPV6_UDP,
            other => return Err(ConfigError::new("types", format!("unknown hash type {other:?}"))),
        };
        Ok(acc | flag)
    })
}

/// Arguments of `dtnet rss`.
#[derive(clap::Args)]
pub struct RssArgs {
    /// Source IP address.
    #[arg(long)]
    src: IpAddr,
    /// Destination IP address.
    #[arg(long)]
    dst: IpAddr,
    /// Source port (hash over ports when both ports are given).
    #[arg(long, requires = "dport")]
    sport: Option<u16>,
    /// Destination port.
    #[arg(long, requires = "sport")]
    dport: Option<u16>,
    /// Toeplitz key in hex (40 or 52 bytes); default is the common 82599 key.
    #[arg(long)]
    key: Option<String>,
    /// Number of queues, filling a 128-entry RETA round-robin.
    #[arg(long, default_value_t = 1, conflicts_with = "reta")]
    queues: u16,
    /// Explicit RETA, comma separated queue numbers (64/128/256/512 entries).
    #[arg(long, value_delimiter = ',')]
    reta: Option<Vec<u16>>,
    /// Hash types, comma separated (ipv4, ipv4-tcp, ipv4-udp, ipv6, ipv6-tcp,
    /// ipv6-udp); ports take part only if an L4 type is listed.
    #[arg(long, default_value = "ipv4,ipv4-tcp,ipv4-udp,ipv6,ipv6-tcp,ipv6-udp")]
    types: String,
}

/// Prints the hash and queue of the flow `args` describe.
pub fn rss(args: RssArgs) -> Outcome {
    let types = parse_types(&args.types).map_err(|e| e.to_string())?;
    let key = args.key.as_deref().map(RssKey::from_hex).transpose().map_err(|e| e.to_string())?;
    let reta = match args.reta {
        Some(entries) => {
            let queues = entries.iter().max().map_or(1, |&m| m + 1);
            Reta::from_entries(entries, queues)
        }
        None => Reta::new(128, args.queues),
    }
    .map_err(|e| e.to_string())?;
    let l4 = types
        .intersects(RssHashTypes::IPV4_TCP | RssHashTypes::IPV4_UDP | RssHashTypes::IPV6_TCP | RssHashTypes::IPV6_UDP);
    let ports = args.sport.zip(args.dport).filter(|_| l4);
    let query = RssQuery { src: args.src, dst: args.dst, ports, key: key.unwrap_or(RssKey::DEFAULT), reta };
    let placed = query.place().map_err(|e| e.to_string())?;
    say(format_args!("hash 0x{:08x} queue {}", placed.hash, placed.queue));
    Ok(Verdict::Passed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_the_first_microsoft_vector() {
        let query = RssQuery {
            src: "66.9.149.187".parse().unwrap(),
            dst: "161.142.100.80".parse().unwrap(),
            ports: Some((2794, 1766)),
            key: RssKey::DEFAULT,
            reta: Reta::new(128, 4).unwrap(),
        };
        let placed = query.place().unwrap();
        assert_eq!(placed.hash, 0x51ccc178);
        assert_eq!(placed.queue as u32, (0x51ccc178 & 127) % 4);
    }

    #[test]
    fn mixed_families_and_unknown_types_are_errors() {
        let query = RssQuery {
            src: "1.2.3.4".parse().unwrap(),
            dst: "::1".parse().unwrap(),
            ports: None,
            key: RssKey::DEFAULT,
            reta: Reta::new(64, 1).unwrap(),
        };
        assert_eq!(query.place().unwrap_err().field, "dst");
        assert_eq!(parse_types("ipv4,tcp").unwrap_err().field, "types");
        assert_eq!(parse_types("ipv4, ipv6-udp").unwrap(), RssHashTypes::IPV4 | RssHashTypes::IPV6_UDP);
    }
}

//! Relative TCP sequence numbers, per connection and direction.
//!
//! The first sequence number seen from one endpoint to another becomes that
//! direction's base (relative 0), and acknowledgment numbers are shown
//! relative to the opposite direction's base, as Wireshark does. A SYN with
//! a new sequence number on a known 4-tuple starts a new connection (both
//! bases are forgotten), and a SYN-ACK resets its own direction's base, so a
//! reused 4-tuple does not carry numbers over. When an acknowledgment comes
//! before anything was seen the other way, the acknowledged number becomes
//! that direction's base.

use std::collections::HashMap;
use std::net::IpAddr;

/// One end of a TCP connection.
pub(crate) type Endpoint = (IpAddr, u16);

/// The TCP fields the normaliser needs from a segment.
pub(crate) struct Segment {
    pub src: Endpoint,
    pub dst: Endpoint,
    pub syn: bool,
    pub ack_flag: bool,
    pub seq: u32,
    pub ack: u32,
}

/// Bases of every direction seen so far.
#[derive(Default)]
pub(crate) struct TcpSeqs {
    bases: HashMap<(Endpoint, Endpoint), u32>,
}

impl TcpSeqs {
    /// The relative sequence number of `s`, and its relative acknowledgment
    /// number when the ACK flag is set (otherwise the raw field).
    pub fn relative(&mut self, s: &Segment) -> (u32, u32) {
        let fwd = (s.src, s.dst);
        let rev = (s.dst, s.src);
        if s.syn {
            let renewed = self.bases.get(&fwd).is_some_and(|&base| base != s.seq);
            if renewed && !s.ack_flag {
                self.bases.remove(&rev);
            }
            self.bases.insert(fwd, s.seq);
        }
        let seq = s.seq.wrapping_sub(*self.bases.entry(fwd).or_insert(s.seq));
        let ack = if s.ack_flag { s.ack.wrapping_sub(*self.bases.entry(rev).or_insert(s.ack)) } else { s.ack };
        (seq, ack)
    }

    /// A sequence number of the opposite direction (e.g. a SACK edge sent
    /// by `src`) made relative, or raw when that direction is unknown.
    pub fn relative_peer(&self, src: Endpoint, dst: Endpoint, number: u32) -> u32 {
        self.bases.get(&(dst, src)).map_or(number, |&base| number.wrapping_sub(base))
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    const A: Endpoint = (IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 49152);
    const B: Endpoint = (IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 80);

    fn seg(src: Endpoint, dst: Endpoint, flags: &str, seq: u32, ack: u32) -> Segment {
        Segment { src, dst, syn: flags.contains('S'), ack_flag: flags.contains('.'), seq, ack }
    }

    #[test]
    fn handshake_is_relative_to_each_isn() {
        let mut t = TcpSeqs::default();
        assert_eq!(t.relative(&seg(A, B, "S", 1000, 0)), (0, 0));
        assert_eq!(t.relative(&seg(B, A, "S.", 7_000_000, 1001)), (0, 1));
        assert_eq!(t.relative(&seg(A, B, ".", 1001, 7_000_001)), (1, 1));
    }

    #[test]
    fn wraps_around_u32() {
        let mut t = TcpSeqs::default();
        assert_eq!(t.relative(&seg(A, B, "S", u32::MAX, 0)), (0, 0));
        assert_eq!(t.relative(&seg(A, B, ".", 10, 5)).0, 11);
    }

    #[test]
    fn new_syn_on_same_tuple_starts_over() {
        let mut t = TcpSeqs::default();
        t.relative(&seg(A, B, "S", 1000, 0));
        t.relative(&seg(B, A, "S.", 5000, 1001));
        assert_eq!(t.relative(&seg(A, B, "S", 1000, 0)), (0, 0), "a retransmitted SYN keeps the base");
        assert_eq!(t.relative(&seg(A, B, "S", 90_000, 0)), (0, 0));
        assert_eq!(t.relative(&seg(B, A, "S.", 123, 90_001)), (0, 1));
    }
}

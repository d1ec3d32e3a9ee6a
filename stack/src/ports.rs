//! Local port bookkeeping for one stack group (one host address).
//!
//! `bind` claims a port and fails with `EADDRINUSE` unless every holder set
//! `SO_REUSEADDR` (which dtnet treats like `SO_REUSEPORT`, the way gazelle
//! applications listen on one port from a thread per stack). Connecting
//! sockets draw an ephemeral port from 49152-65535 that satisfies a
//! caller's predicate: in RSS mode, that the reply's hash lands on the
//! connecting stack's own queue.

use std::collections::HashMap;
use std::io;

use crate::error;

/// First and last ephemeral port (the IANA dynamic range).
const EPHEMERAL: std::ops::RangeInclusive<u16> = EPHEMERAL_FIRST..=65535;
/// The first ephemeral port.
pub(crate) const EPHEMERAL_FIRST: u16 = 49152;
/// How many ephemeral ports there are.
pub(crate) const EPHEMERAL_SPAN: u16 = 65535 - EPHEMERAL_FIRST + 1;

/// Transport protocol a port belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

#[derive(Clone, Copy, Debug)]
struct Holders {
    count: usize,
    reuse: bool,
}

/// Ports in use, per protocol.
#[derive(Debug, Default)]
pub(crate) struct PortTable {
    used: HashMap<(Proto, u16), Holders>,
    cursor: u16,
}

impl PortTable {
    /// A table whose first ephemeral search starts `offset` ports into the
    /// range (wrapping), as RFC 6056 randomisation places a process's.
    pub(crate) fn starting_at(offset: u16) -> PortTable {
        let span = EPHEMERAL.end() - EPHEMERAL.start() + 1;
        PortTable { used: HashMap::new(), cursor: offset % span }
    }

    /// Claims `port`; shared only when all holders ask for reuse.
    pub(crate) fn bind(&mut self, proto: Proto, port: u16, reuse: bool) -> io::Result<()> {
        match self.used.get_mut(&(proto, port)) {
            Some(h) if h.reuse && reuse => h.count += 1,
            Some(_) => return Err(error::addr_in_use(port)),
            None => {
                self.used.insert((proto, port), Holders { count: 1, reuse });
            }
        }
        Ok(())
    }

    /// Whether a socket of the group holds `port`.
    pub(crate) fn in_use(&self, proto: Proto, port: u16) -> bool {
        self.used.contains_key(&(proto, port))
    }

    /// Releases one claim on `port`.
    pub(crate) fn release(&mut self, proto: Proto, port: u16) {
        if let Some(h) = self.used.get_mut(&(proto, port)) {
            h.count -= 1;
            if h.count == 0 {
                self.used.remove(&(proto, port));
            }
        }
    }

    /// Claims a free ephemeral port for which `fits` holds, searching
    /// round-robin from where the last search stopped.
    pub(crate) fn ephemeral(&mut self, proto: Proto, fits: impl Fn(u16) -> bool) -> io::Result<u16> {
        let span = usize::from(EPHEMERAL.end() - EPHEMERAL.start()) + 1;
        for _ in 0..span {
            let port = EPHEMERAL.start() + self.cursor;
            self.cursor = (self.cursor + 1) % span as u16;
            if !self.used.contains_key(&(proto, port)) && fits(port) {
                self.used.insert((proto, port), Holders { count: 1, reuse: false });
                return Ok(port);
            }
        }
        Err(error::addr_not_available("no ephemeral port fits"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_conflicts_unless_both_reuse() {
        let mut t = PortTable::default();
        t.bind(Proto::Tcp, 80, false).unwrap();
        assert_eq!(t.bind(Proto::Tcp, 80, true).unwrap_err().kind(), io::ErrorKind::AddrInUse);
        t.bind(Proto::Udp, 80, false).unwrap();
        t.bind(Proto::Tcp, 81, true).unwrap();
        t.bind(Proto::Tcp, 81, true).unwrap();
        t.release(Proto::Tcp, 81);
        t.release(Proto::Tcp, 81);
        t.bind(Proto::Tcp, 81, false).unwrap();
    }

    #[test]
    fn ephemeral_ports_honour_the_predicate_and_run_out() {
        let mut t = PortTable::default();
        let p = t.ephemeral(Proto::Tcp, |p| p % 7 == 0).unwrap();
        assert_eq!(p % 7, 0);
        assert!(t.ephemeral(Proto::Tcp, |q| q == p).is_err(), "a used port is never handed out twice");
        t.release(Proto::Tcp, p);
        assert_eq!(t.ephemeral(Proto::Tcp, |q| q == p).unwrap(), p);
    }

    #[test]
    fn an_offset_table_starts_its_search_there_and_wraps() {
        let mut t = PortTable::starting_at(16383);
        assert_eq!(t.ephemeral(Proto::Tcp, |_| true).unwrap(), 65535);
        assert_eq!(t.ephemeral(Proto::Tcp, |_| true).unwrap(), 49152, "the search wraps to the range's start");
        let mut t = PortTable::starting_at(16384 + 7);
        assert_eq!(t.ephemeral(Proto::Tcp, |_| true).unwrap(), 49152 + 7, "offsets beyond the range wrap");
    }
}

//! Traffic applications for tests and scenarios, written once over the
//! stack's async socket API and run by either executor.
//!
//! Every application checks what it receives (a deterministic byte pattern
//! per connection, echoed bytes, datagram sequence numbers, echo replies)
//! rather than counting bytes, and records each connection it saw in a
//! shared [`Ledger`] so that a test can assert where every connection was
//! served.

pub mod bulk;
pub mod echo;
pub mod pattern;
pub mod ping;
pub mod udp;

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Mutex, PoisonError};

use stack::{Api, Fd, SockOpt, SockType};

/// What each TCP connection does (dtnet's apps and the kernel's alike).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// Client sends `bytes` pattern bytes; server verifies them.
    Bulk,
    /// Client sends `bytes` in chunks and checks they are echoed.
    Echo,
}

/// Which end of a connection a record describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The connecting end.
    Client,
    /// The accepting end.
    Server,
}

/// One connection as one end saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnRecord {
    /// Which end.
    pub side: Side,
    /// The stack that served it.
    pub stack: usize,
    /// This end's address.
    pub local: SocketAddr,
    /// The other end's address.
    pub peer: SocketAddr,
    /// Payload bytes verified by this end.
    pub bytes: u64,
}

/// What the applications of a run observed.
#[derive(Debug, Default)]
pub struct Ledger {
    records: Mutex<Vec<ConnRecord>>,
}

impl Ledger {
    /// Records one finished connection.
    pub fn record(&self, record: ConnRecord) {
        self.records.lock().unwrap_or_else(PoisonError::into_inner).push(record);
    }

    /// All records so far.
    pub fn records(&self) -> Vec<ConnRecord> {
        self.records.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Records of one side.
    pub fn side(&self, side: Side) -> Vec<ConnRecord> {
        self.records().into_iter().filter(|r| r.side == side).collect()
    }
}

/// A listener on `port` of `api`'s home stack, with `SO_REUSEADDR` so that
/// every stack can have its own (gazelle-style RSS servers).
pub async fn listen(api: &Api, port: u16) -> io::Result<Fd> {
    let fd = api.socket(SockType::Stream)?;
    api.setsockopt(fd, SockOpt::ReuseAddr(true)).await?;
    api.bind(fd, SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port)).await?;
    api.listen(fd, 128).await?;
    Ok(fd)
}

/// Reads exactly `n` bytes (an error at end of stream).
pub async fn read_exact(api: &Api, fd: Fd, n: usize) -> io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let got = api.recv(fd, n - out.len()).await?;
        if got.is_empty() {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "end of stream"));
        }
        out.extend_from_slice(&got);
    }
    Ok(out)
}

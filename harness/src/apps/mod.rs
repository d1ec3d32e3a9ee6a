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

use std::net::SocketAddr;
use std::sync::{Mutex, PoisonError};

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

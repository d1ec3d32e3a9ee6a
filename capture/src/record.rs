//! The unit every part of the crate exchanges: one captured frame with where,
//! which way and when it was seen.

use std::fmt;

use ethdev::Instant;

/// Which way a frame crossed its capture point, as seen by the interface
/// named in the record (pcapng `epb_flags` bits 0–1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    /// Received by the interface (pcapng "inbound").
    Inbound,
    /// Sent by the interface (pcapng "outbound").
    Outbound,
}

impl Direction {
    /// The pcapng `epb_flags` word for this direction (bits 0–1 only).
    pub const fn epb_flags(self) -> u32 {
        match self {
            Direction::Inbound => 0b01,
            Direction::Outbound => 0b10,
        }
    }

    /// The direction an `epb_flags` word states, `None` when it says
    /// "not available" or holds the invalid value 3.
    pub const fn from_epb_flags(flags: u32) -> Option<Direction> {
        match flags & 0b11 {
            0b01 => Some(Direction::Inbound),
            0b10 => Some(Direction::Outbound),
            _ => None,
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Inbound => "in",
            Direction::Outbound => "out",
        })
    }
}

/// A capture point, turned into the interface name a pcapng file carries:
/// `<port>`, `<port>/rxq<n>` or `<port>/txq<n>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CapturePoint {
    /// A whole port, e.g. a bridge port: `port0`.
    Port(String),
    /// One receive queue of a port: `port0/rxq1`.
    RxQueue(String, u16),
    /// One transmit queue of a port: `port0/txq1`.
    TxQueue(String, u16),
}

impl fmt::Display for CapturePoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CapturePoint::Port(port) => f.write_str(port),
            CapturePoint::RxQueue(port, queue) => write!(f, "{port}/rxq{queue}"),
            CapturePoint::TxQueue(port, queue) => write!(f, "{port}/txq{queue}"),
        }
    }
}

impl From<CapturePoint> for String {
    fn from(point: CapturePoint) -> String {
        point.to_string()
    }
}

/// One captured frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Name of the interface (capture point) it was seen on; `None` for
    /// classic pcap files and pcapng interfaces without an `if_name`.
    pub interface: Option<String>,
    /// Which way it crossed the interface, if known.
    pub direction: Option<Direction>,
    /// When it was seen, in the caller's time (nanoseconds).
    pub time: Instant,
    /// The frame, from the Ethernet header on, without FCS.
    pub data: Vec<u8>,
}

impl Record {
    /// A record on the named interface.
    pub fn new(interface: impl Into<String>, direction: Option<Direction>, time: Instant, data: Vec<u8>) -> Record {
        Record { interface: Some(interface.into()), direction, time, data }
    }

    /// A record with no interface name and no direction, as classic pcap
    /// carries them.
    pub fn bare(time: Instant, data: Vec<u8>) -> Record {
        Record { interface: None, direction: None, time, data }
    }
}

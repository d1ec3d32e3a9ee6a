//! Errors of reading captures (writing's are the writer's own).
//!
//! Reading errors always say where the problem is: the byte offset of the
//! file header, block (pcapng) or packet record (pcap) that could not be
//! used, counted from the start of the input.

use std::fmt;

use crate::record::Record;

/// What is wrong at a [`ReadError`]'s offset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadErrorKind {
    /// The input ends inside a structure: `what` ("file header", "block",
    /// "packet record") needs `needed` bytes but only `available` are left.
    Truncated {
        /// The structure cut short.
        what: &'static str,
        /// Bytes the structure needs, as far as its header tells.
        needed: u64,
        /// Bytes left in the input from the offset on.
        available: u64,
    },
    /// A structure is complete but its content is invalid.
    Malformed {
        /// The structure ("block", "packet record", ...).
        what: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The input starts with neither a pcap nor a pcapng magic number.
    UnknownMagic(u32),
    /// A packet refers to an interface its section never described.
    UnknownInterface(u32),
    /// The packets are not Ethernet frames (pcap `LINKTYPE_*` value).
    UnsupportedLinkType(u32),
}

/// A capture that cannot be read (further), with where the problem is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadError {
    /// Byte offset, from the start of the input, of the file header, block
    /// or packet record at fault.
    pub offset: u64,
    /// What is wrong there.
    pub kind: ReadErrorKind,
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let offset = self.offset;
        match &self.kind {
            ReadErrorKind::Truncated { what, needed, available } => {
                write!(f, "truncated {what} at byte offset {offset}: needs {needed} bytes, {available} left")
            }
            ReadErrorKind::Malformed { what, reason } => {
                write!(f, "malformed {what} at byte offset {offset}: {reason}")
            }
            ReadErrorKind::UnknownMagic(magic) => {
                write!(f, "not a pcap or pcapng capture: unknown magic 0x{magic:08x} at byte offset {offset}")
            }
            ReadErrorKind::UnknownInterface(id) => {
                write!(f, "packet block at byte offset {offset} refers to undescribed interface {id}")
            }
            ReadErrorKind::UnsupportedLinkType(link) => {
                write!(f, "unsupported link type {link} (only Ethernet, 1) for the packet at byte offset {offset}")
            }
        }
    }
}

impl std::error::Error for ReadError {}

/// A read that stopped at an error, with every record before it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{error} ({} records read before it)", .records.len())]
pub struct PartialRead {
    /// The records read before the error, in file order.
    pub records: Vec<Record>,
    /// The error that stopped the read.
    #[source]
    pub error: ReadError,
}

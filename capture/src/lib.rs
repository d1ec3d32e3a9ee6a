//! capture: dtnet's packet captures, sans-IO.
//!
//! Frames seen at a capture point (a bridge port, or one rx/tx queue of a
//! port) are [`Record`]s: interface name, direction, the caller's
//! [`Instant`](ethdev::Instant) and the bytes. A [`Recorder`] writes them
//! as pcapng with one interface description per capture point, nanosecond
//! timestamps and `epb_flags` directions, or as classic pcap on request;
//! the output depends on nothing but the records, so a seeded simulation
//! produces byte-identical captures that Wireshark and tshark read. The
//! [`Reader`] reads pcap or pcapng back, stopping at the first problem with
//! an error that names its byte offset while keeping the records before it.
//! A [`ReplayPlan`] turns records into timed injections, either all at once
//! or at the recorded pace, without touching a clock: the caller asks when
//! the next one is due and injects it. Finally, [`trace_text`] decodes
//! frames with etherparse into one normalised line each (relative times and
//! TCP sequence numbers), the stable text that golden snapshot tests
//! compare. Nothing here reads a clock, spawns a thread or opens a file.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod error;
mod reader;
mod record;
mod replay;
mod tcp_seq;
mod trace;
mod writer;

pub use error::{PartialRead, ReadError, ReadErrorKind};
pub use reader::{read, Reader};
pub use record::{CapturePoint, Direction, Record};
pub use replay::{Injection, Pace, ReplayPlan};
pub use trace::{trace_lines, trace_text, Trace};
pub use writer::{to_bytes, Format, InterfaceId, Recorder, WriteError, PCAPNG_TSRESOL, PCAP_SNAPLEN};

//! Recording frames into a pcapng (or classic pcap) stream.
//!
//! A [`Recorder`] writes through any [`Write`]: a file, or a `Vec<u8>` when
//! the caller wants the bytes. Every capture point becomes one pcapng
//! Interface Description Block (link type Ethernet, `if_name` = the point's
//! name, `if_tsresol` = 9, i.e. nanoseconds, no snap length limit), written
//! when the interface is added; each frame becomes an Enhanced Packet Block
//! on its interface with the `epb_flags` direction option when the direction
//! is known. Timestamps are the caller's [`Instant`]s written as nanoseconds
//! since its epoch, so virtual time stays virtual. Output is deterministic:
//! always little-endian, and the section header carries no options (no
//! hostname, OS or application name) and no wall-clock time.
//!
//! Classic pcap (on request, [`Format::Pcap`]) has one global header
//! (Ethernet, nanosecond timestamps, snap length [`PCAP_SNAPLEN`]) and no
//! notion of interfaces or directions: interfaces can still be added, so
//! calling code does not change with the format, but their names and the
//! directions are dropped, and all frames land in one undivided stream.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::io::Write;
use std::time::Duration;

use ethdev::Instant;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};
use pcap_file::pcapng::blocks::interface_description::{InterfaceDescriptionBlock, InterfaceDescriptionOption};
use pcap_file::pcapng::blocks::section_header::SectionHeaderBlock;
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::{DataLink, Endianness, TsResolution};

use crate::record::{Direction, Record};

/// Why a capture could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The underlying writer failed.
    #[error("capture write failed: {0}")]
    Io(#[from] std::io::Error),
    /// The interface id was not handed out by this recorder.
    #[error("interface {0} was not added to this recorder")]
    UnknownInterface(InterfaceId),
    /// The frame is longer than the format can hold.
    #[error("frame of {len} bytes is longer than the {max} bytes the capture allows")]
    FrameTooLarge {
        /// The frame's length.
        len: usize,
        /// The most the capture format (snap length) allows.
        max: u32,
    },
    /// The time cannot be expressed in the format (classic pcap holds
    /// seconds in 32 bits).
    #[error("time {0} does not fit the capture format's timestamp")]
    TimestampOutOfRange(ethdev::Instant),
    /// The encoder refused the data for another reason.
    #[error("capture encoding failed: {0}")]
    Encode(String),
}

impl From<pcap_file::PcapError> for WriteError {
    fn from(e: pcap_file::PcapError) -> WriteError {
        match e {
            pcap_file::PcapError::IoError(io) => WriteError::Io(io),
            other => WriteError::Encode(other.to_string()),
        }
    }
}

/// The pcapng `if_tsresol` the recorder writes: 10^-9 s, nanoseconds.
pub const PCAPNG_TSRESOL: u8 = 9;

/// The snap length of classic pcap output: the longest frame it can hold.
pub const PCAP_SNAPLEN: u32 = 262_144;

/// A capture file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// pcapng: named interfaces, directions, nanosecond timestamps.
    PcapNg,
    /// Classic pcap with nanosecond timestamps: no interfaces, no directions.
    Pcap,
}

/// An interface handed out by [`Recorder::add_interface`], numbered from 0
/// in the order added (the pcapng interface id).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InterfaceId(u32);

impl InterfaceId {
    /// The pcapng interface id.
    pub const fn index(self) -> u32 {
        self.0
    }
}

impl fmt::Display for InterfaceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

enum Sink<W: Write> {
    PcapNg(PcapNgWriter<W>),
    Pcap(PcapWriter<W>),
}

/// Writes frames to a capture stream; see the module docs.
pub struct Recorder<W: Write> {
    sink: Sink<W>,
    names: Vec<Option<String>>,
    by_name: HashMap<Option<String>, InterfaceId>,
}

impl<W: Write> Recorder<W> {
    /// A recorder writing `format` to `writer`; writes the file header.
    pub fn new(writer: W, format: Format) -> Result<Recorder<W>, WriteError> {
        let sink = match format {
            Format::PcapNg => {
                let section = SectionHeaderBlock { endianness: Endianness::Little, ..SectionHeaderBlock::default() };
                Sink::PcapNg(PcapNgWriter::with_section_header(writer, section)?)
            }
            Format::Pcap => {
                let header = PcapHeader {
                    snaplen: PCAP_SNAPLEN,
                    datalink: DataLink::ETHERNET,
                    ts_resolution: TsResolution::NanoSecond,
                    endianness: Endianness::Little,
                    ..PcapHeader::default()
                };
                Sink::Pcap(PcapWriter::with_header(writer, header)?)
            }
        };
        Ok(Recorder { sink, names: Vec::new(), by_name: HashMap::new() })
    }

    /// A pcapng recorder.
    pub fn pcapng(writer: W) -> Result<Recorder<W>, WriteError> {
        Recorder::new(writer, Format::PcapNg)
    }

    /// A classic pcap recorder (no interface names, no directions).
    pub fn pcap(writer: W) -> Result<Recorder<W>, WriteError> {
        Recorder::new(writer, Format::Pcap)
    }

    /// The format being written.
    pub fn format(&self) -> Format {
        match self.sink {
            Sink::PcapNg(_) => Format::PcapNg,
            Sink::Pcap(_) => Format::Pcap,
        }
    }

    /// Adds the capture point `name` (e.g. `port0/rxq1`, see
    /// [`crate::CapturePoint`]) and returns its id; a name added before gets
    /// its existing id. In pcapng this writes the interface's description.
    pub fn add_interface(&mut self, name: impl Into<String>) -> Result<InterfaceId, WriteError> {
        self.intern(Some(name.into()))
    }

    /// Adds (once) an interface without a name, for records that have none.
    pub fn add_unnamed_interface(&mut self) -> Result<InterfaceId, WriteError> {
        self.intern(None)
    }

    /// The id of the interface added under `name`, if any.
    pub fn interface(&self, name: &str) -> Option<InterfaceId> {
        self.by_name.get(&Some(name.to_owned())).copied()
    }

    /// The name an interface was added under (`None` if unnamed or unknown).
    pub fn interface_name(&self, id: InterfaceId) -> Option<&str> {
        self.names.get(id.0 as usize).and_then(|n| n.as_deref())
    }

    fn intern(&mut self, name: Option<String>) -> Result<InterfaceId, WriteError> {
        if let Some(&id) = self.by_name.get(&name) {
            return Ok(id);
        }
        let id =
            InterfaceId(u32::try_from(self.names.len()).map_err(|_| WriteError::Encode("too many interfaces".into()))?);
        if let Sink::PcapNg(w) = &mut self.sink {
            let mut options = Vec::new();
            if let Some(name) = &name {
                options.push(InterfaceDescriptionOption::IfName(Cow::Owned(name.clone())));
            }
            options.push(InterfaceDescriptionOption::IfTsResol(PCAPNG_TSRESOL));
            w.write_pcapng_block(InterfaceDescriptionBlock { linktype: DataLink::ETHERNET, snaplen: 0, options })?;
        }
        self.names.push(name.clone());
        self.by_name.insert(name, id);
        Ok(id)
    }

    /// Writes one frame seen on `interface` at `time`.
    pub fn write(
        &mut self,
        interface: InterfaceId,
        direction: Option<Direction>,
        time: Instant,
        data: &[u8],
    ) -> Result<(), WriteError> {
        if interface.0 as usize >= self.names.len() {
            return Err(WriteError::UnknownInterface(interface));
        }
        let timestamp = Duration::from_nanos(time.as_nanos());
        match &mut self.sink {
            Sink::PcapNg(w) => {
                let len = u32::try_from(data.len())
                    .map_err(|_| WriteError::FrameTooLarge { len: data.len(), max: u32::MAX })?;
                let options = direction.map(|d| EnhancedPacketOption::Flags(d.epb_flags())).into_iter().collect();
                let block = EnhancedPacketBlock {
                    interface_id: interface.0,
                    timestamp,
                    original_len: len,
                    data: Cow::Borrowed(data),
                    options,
                };
                w.write_pcapng_block(block)?;
            }
            Sink::Pcap(w) => {
                let len = u32::try_from(data.len())
                    .ok()
                    .filter(|&l| l <= PCAP_SNAPLEN)
                    .ok_or(WriteError::FrameTooLarge { len: data.len(), max: PCAP_SNAPLEN })?;
                if u32::try_from(timestamp.as_secs()).is_err() {
                    return Err(WriteError::TimestampOutOfRange(time));
                }
                w.write_packet(&PcapPacket::new(timestamp, len, data))?;
            }
        }
        Ok(())
    }

    /// Writes a record, adding its interface (by name) on first use.
    pub fn write_record(&mut self, record: &Record) -> Result<(), WriteError> {
        let id = self.intern(record.interface.clone())?;
        self.write(id, record.direction, record.time, &record.data)
    }

    /// Flushes and returns the writer.
    pub fn finish(self) -> Result<W, WriteError> {
        let mut writer = match self.sink {
            Sink::PcapNg(w) => w.into_inner(),
            Sink::Pcap(w) => w.into_writer(),
        };
        writer.flush()?;
        Ok(writer)
    }
}

/// The bytes of a capture of `records` in `format`, interfaces numbered in
/// order of first appearance.
pub fn to_bytes<'a>(records: impl IntoIterator<Item = &'a Record>, format: Format) -> Result<Vec<u8>, WriteError> {
    let mut recorder = Recorder::new(Vec::new(), format)?;
    for record in records {
        recorder.write_record(record)?;
    }
    recorder.finish()
}

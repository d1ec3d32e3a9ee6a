//! Reading pcap and pcapng captures back into [`Record`]s.
//!
//! The format is detected from the magic number. A [`Reader`] walks the
//! input block by block (pcapng) or packet by packet (pcap) and yields one
//! `Result` per frame; the first problem ends the walk with a [`ReadError`]
//! naming the byte offset of the structure at fault, so everything before it
//! has already been handed out. [`read`] collects the same into a vector, or
//! into a [`PartialRead`] holding the records before the error. Nothing in
//! the input can make the reader panic: framing is checked here, bodies are
//! decoded by `pcap-file`, and only the blocks that carry frames (or the
//! interfaces they refer to) are decoded at all.
//!
//! pcapng timestamps are converted to nanoseconds using each interface's
//! `if_tsresol` (default microseconds) and `if_tsoffset`; Simple Packet
//! Blocks carry no time and are read at [`Instant::ZERO`].

use ethdev::Instant;
use pcap_file::pcap::PcapParser;
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketOption;
use pcap_file::pcapng::blocks::interface_description::{InterfaceDescriptionBlock, InterfaceDescriptionOption};
use pcap_file::pcapng::blocks::packet::PacketOption;
use pcap_file::pcapng::blocks::{
    ENHANCED_PACKET_BLOCK, INTERFACE_DESCRIPTION_BLOCK, PACKET_BLOCK, SECTION_HEADER_BLOCK, SIMPLE_PACKET_BLOCK,
};
use pcap_file::pcapng::{Block, PcapNgParser};
use pcap_file::{Endianness, PcapError};

use crate::error::{PartialRead, ReadError, ReadErrorKind};
use crate::record::{Direction, Record};
use crate::writer::Format;

/// The pcapng block type as it appears in the first four bytes of a file.
const PCAPNG_MAGIC: [u8; 4] = [0x0A, 0x0D, 0x0D, 0x0A];
/// Classic pcap magics: micro/nanosecond resolution, either byte order.
const PCAP_MAGICS: [[u8; 4]; 4] =
    [[0xD4, 0xC3, 0xB2, 0xA1], [0xA1, 0xB2, 0xC3, 0xD4], [0x4D, 0x3C, 0xB2, 0xA1], [0xA1, 0xB2, 0x3C, 0x4D]];
/// Length of a classic pcap file header and packet record header.
const PCAP_HEADER_LEN: u64 = 24;
const PCAP_RECORD_HEADER_LEN: usize = 16;
/// Smallest pcapng block: type, two lengths.
const PCAPNG_MIN_BLOCK: u64 = 12;
/// Ethernet as a link type number.
const LINKTYPE_ETHERNET: u32 = 1;
/// pcapng's default timestamp resolution: microseconds.
const DEFAULT_TSRESOL: u8 = 6;

/// What a pcapng section says about one of its interfaces.
struct Interface {
    name: Option<String>,
    link: u32,
    tsresol: u8,
    tsoffset_secs: i64,
}

impl Interface {
    fn from_idb(idb: &InterfaceDescriptionBlock<'_>) -> Interface {
        let mut interface =
            Interface { name: None, link: u32::from(idb.linktype), tsresol: DEFAULT_TSRESOL, tsoffset_secs: 0 };
        for option in &idb.options {
            match option {
                InterfaceDescriptionOption::IfName(name) => interface.name = Some(name.to_string()),
                InterfaceDescriptionOption::IfTsResol(r) => interface.tsresol = *r,
                // The field is a signed number of seconds stored in 64 bits.
                InterfaceDescriptionOption::IfTsOffset(o) => interface.tsoffset_secs = *o as i64,
                _ => {}
            }
        }
        interface
    }

    /// The instant of a raw timestamp in this interface's units.
    fn instant(&self, raw: u64) -> Instant {
        let raw = u128::from(raw);
        let nanos = if self.tsresol & 0x80 == 0 {
            let exp = u32::from(self.tsresol);
            if exp <= 9 {
                raw * 10u128.pow(9 - exp)
            } else {
                10u128.checked_pow(exp - 9).map_or(0, |div| raw / div)
            }
        } else {
            (raw * 1_000_000_000) >> u32::from(self.tsresol & 0x7F)
        };
        let offset = i128::from(self.tsoffset_secs) * 1_000_000_000;
        let nanos = (nanos as i128).saturating_add(offset).clamp(0, i128::from(u64::MAX));
        Instant::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }
}

enum State {
    Pcap(PcapParser),
    PcapNg { parser: PcapNgParser, interfaces: Vec<Interface> },
}

/// Walks a capture in memory, one frame per item; see the module docs.
pub struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
    state: State,
    done: bool,
}

impl<'a> Reader<'a> {
    /// A reader of `input`, after checking its magic and file header.
    pub fn new(input: &'a [u8]) -> Result<Reader<'a>, ReadError> {
        let Some(magic) = input.first_chunk::<4>() else {
            let kind = ReadErrorKind::Truncated { what: "file header", needed: 4, available: input.len() as u64 };
            return Err(ReadError { offset: 0, kind });
        };
        let (rest, state) = if *magic == PCAPNG_MAGIC {
            let (rest, parser) = PcapNgParser::new(input).map_err(|e| pcapng_error(input, 0, e, None))?;
            (rest, State::PcapNg { parser, interfaces: Vec::new() })
        } else if PCAP_MAGICS.contains(magic) {
            let (rest, parser) = PcapParser::new(input).map_err(|e| {
                let kind = match e {
                    PcapError::IncompleteBuffer => ReadErrorKind::Truncated {
                        what: "file header",
                        needed: PCAP_HEADER_LEN,
                        available: input.len() as u64,
                    },
                    other => ReadErrorKind::Malformed { what: "file header", reason: other.to_string() },
                };
                ReadError { offset: 0, kind }
            })?;
            let link = u32::from(parser.header().datalink);
            if link != LINKTYPE_ETHERNET {
                return Err(ReadError { offset: 0, kind: ReadErrorKind::UnsupportedLinkType(link) });
            }
            (rest, State::Pcap(parser))
        } else {
            return Err(ReadError { offset: 0, kind: ReadErrorKind::UnknownMagic(u32::from_be_bytes(*magic)) });
        };
        Ok(Reader { input, pos: input.len() - rest.len(), state, done: false })
    }

    /// The format of the input.
    pub fn format(&self) -> Format {
        match self.state {
            State::Pcap(_) => Format::Pcap,
            State::PcapNg { .. } => Format::PcapNg,
        }
    }

    /// Byte offset where the next block or packet record starts.
    pub fn offset(&self) -> u64 {
        self.pos as u64
    }

    fn next_pcap(&mut self) -> Option<Result<Record, ReadError>> {
        let State::Pcap(parser) = &self.state else { return None };
        let rest = self.input.get(self.pos..).unwrap_or_default();
        if rest.is_empty() {
            return None;
        }
        let offset = self.pos as u64;
        match parser.next_packet(rest) {
            Ok((rem, packet)) => {
                self.pos = self.input.len() - rem.len();
                let nanos = u64::try_from(packet.timestamp.as_nanos()).unwrap_or(u64::MAX);
                Some(Ok(Record::bare(Instant::from_nanos(nanos), packet.data.into_owned())))
            }
            Err(PcapError::IncompleteBuffer) => {
                let header = parser.header();
                let incl = rest.get(8..12).and_then(|b| b.first_chunk::<4>()).map(|b| match header.endianness {
                    Endianness::Big => u32::from_be_bytes(*b),
                    Endianness::Little => u32::from_le_bytes(*b),
                });
                let kind = match incl {
                    // A length no valid record can have is damage, not a cut.
                    Some(incl) if incl > header.snaplen => ReadErrorKind::Malformed {
                        what: "packet record",
                        reason: format!("captured length {incl} exceeds the snap length {}", header.snaplen),
                    },
                    _ => ReadErrorKind::Truncated {
                        what: "packet record",
                        needed: PCAP_RECORD_HEADER_LEN as u64 + u64::from(incl.unwrap_or(0)),
                        available: rest.len() as u64,
                    },
                };
                Some(Err(ReadError { offset, kind }))
            }
            Err(e) => {
                let kind = ReadErrorKind::Malformed { what: "packet record", reason: e.to_string() };
                Some(Err(ReadError { offset, kind }))
            }
        }
    }

    fn next_pcapng(&mut self) -> Option<Result<Record, ReadError>> {
        let State::PcapNg { parser, interfaces } = &mut self.state else { return None };
        loop {
            let rest = self.input.get(self.pos..).unwrap_or_default();
            if rest.is_empty() {
                return None;
            }
            let offset = self.pos;
            let big = parser.section().endianness == Endianness::Big;
            let block_type =
                rest.first_chunk::<4>().map(|b| if big { u32::from_be_bytes(*b) } else { u32::from_le_bytes(*b) });
            if !matches!(block_type, Some(ENHANCED_PACKET_BLOCK | SIMPLE_PACKET_BLOCK | PACKET_BLOCK)) {
                // Framing only; the parser itself decodes section headers
                // and interface descriptions to keep its state.
                let rem = match parser.next_raw_block(rest) {
                    Ok((rem, _)) => rem,
                    Err(e) => return Some(Err(pcapng_error(self.input, offset, e, Some(big)))),
                };
                self.pos = self.input.len() - rem.len();
                match block_type {
                    Some(SECTION_HEADER_BLOCK) => interfaces.clear(),
                    Some(INTERFACE_DESCRIPTION_BLOCK) => {
                        if let Some(idb) = parser.interfaces().last() {
                            interfaces.push(Interface::from_idb(idb));
                        }
                    }
                    _ => {}
                }
                continue;
            }
            let (rem, block) = match parser.next_block(rest) {
                Ok(ok) => ok,
                Err(e) => return Some(Err(pcapng_error(self.input, offset, e, Some(big)))),
            };
            self.pos = self.input.len() - rem.len();
            return Some(packet(block, interfaces, offset as u64));
        }
    }
}

/// Decodes a block that carries a frame into a record.
fn packet(block: Block<'_>, interfaces: &[Interface], offset: u64) -> Result<Record, ReadError> {
    let malformed =
        |reason: String| ReadError { offset, kind: ReadErrorKind::Malformed { what: "packet block", reason } };
    let (id, raw_time, flags, data) = match block {
        Block::EnhancedPacket(epb) => {
            let flags = epb.options.iter().find_map(|o| match o {
                EnhancedPacketOption::Flags(f) => Some(*f),
                _ => None,
            });
            let raw_time = u64::try_from(epb.timestamp.as_nanos()).unwrap_or(u64::MAX);
            (epb.interface_id, Some(raw_time), flags, epb.data.into_owned())
        }
        Block::Packet(pb) => {
            let flags = pb.options.iter().find_map(|o| match o {
                PacketOption::Flags(f) => Some(*f),
                _ => None,
            });
            (u32::from(pb.interface_id), Some(pb.timestamp), flags, pb.data.into_owned())
        }
        Block::SimplePacket(spb) => {
            // The body runs to the block's end, padding included.
            let mut data = spb.data.into_owned();
            data.truncate(usize::try_from(spb.original_len).unwrap_or(usize::MAX));
            (0, None, None, data)
        }
        _ => return Err(malformed("not a packet block".into())),
    };
    let interface =
        interfaces.get(id as usize).ok_or(ReadError { offset, kind: ReadErrorKind::UnknownInterface(id) })?;
    if interface.link != LINKTYPE_ETHERNET {
        return Err(ReadError { offset, kind: ReadErrorKind::UnsupportedLinkType(interface.link) });
    }
    Ok(Record {
        interface: interface.name.clone(),
        direction: flags.and_then(Direction::from_epb_flags),
        time: raw_time.map_or(Instant::ZERO, |t| interface.instant(t)),
        data,
    })
}

/// Explains a pcapng block that could not be framed or decoded, telling a
/// truncated input (the block's length runs past the end) from a bad block.
/// `big` is the section's byte order, `None` before any section header.
fn pcapng_error(input: &[u8], offset: usize, error: PcapError, big: Option<bool>) -> ReadError {
    let rest = input.get(offset..).unwrap_or_default();
    let available = rest.len() as u64;
    let is_shb = rest.first_chunk::<4>() == Some(&PCAPNG_MAGIC);
    let big = if is_shb {
        match rest.get(8..12) {
            Some([0x1A, 0x2B, 0x3C, 0x4D]) => Some(true),
            Some([0x4D, 0x3C, 0x2B, 0x1A]) => Some(false),
            _ => big,
        }
    } else {
        big
    };
    let declared = rest.get(4..8).and_then(|b| b.first_chunk::<4>()).zip(big).map(|(b, big)| {
        if big {
            u64::from(u32::from_be_bytes(*b))
        } else {
            u64::from(u32::from_le_bytes(*b))
        }
    });
    let offset = offset as u64;
    let truncated = |needed| ReadError { offset, kind: ReadErrorKind::Truncated { what: "block", needed, available } };
    match declared {
        _ if available < PCAPNG_MIN_BLOCK => truncated(declared.unwrap_or(PCAPNG_MIN_BLOCK).max(PCAPNG_MIN_BLOCK)),
        Some(len) if len > available => truncated(len),
        _ => {
            let reason = match error {
                PcapError::IncompleteBuffer => "a field runs past the end of the block".to_owned(),
                other => other.to_string(),
            };
            ReadError { offset, kind: ReadErrorKind::Malformed { what: "block", reason } }
        }
    }
}

impl Iterator for Reader<'_> {
    type Item = Result<Record, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = match self.state {
            State::Pcap(_) => self.next_pcap(),
            State::PcapNg { .. } => self.next_pcapng(),
        };
        if !matches!(item, Some(Ok(_))) {
            self.done = true;
        }
        item
    }
}

impl std::iter::FusedIterator for Reader<'_> {}

/// Every record of a pcap or pcapng capture, or the records before the
/// first problem together with it.
pub fn read(input: &[u8]) -> Result<Vec<Record>, PartialRead> {
    let reader = Reader::new(input).map_err(|error| PartialRead { records: Vec::new(), error })?;
    let mut records = Vec::new();
    for item in reader {
        match item {
            Ok(record) => records.push(record),
            Err(error) => return Err(PartialRead { records, error }),
        }
    }
    Ok(records)
}

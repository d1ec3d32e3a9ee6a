//! The smoltcp side of one NIC queue: a `phy::Device` over staged mbufs.
//!
//! The stack instance moves frames between its NIC queue and two staging
//! areas: `rx` holds mbufs taken by `rx_burst` (or handed over by another
//! stack) for smoltcp to read, `tx` collects the mbufs smoltcp writes until
//! the instance passes them to `tx_burst`. smoltcp reads a received frame in
//! place, inside its mbuf, and writes a transmitted frame straight into a
//! freshly allocated mbuf, so no frame is copied on the way through.
//!
//! With TCP segmentation offload the device tells smoltcp that the NIC
//! fills in TCP checksums and cuts IPv4 TCP segments of up to
//! [`TSO_FRAME`] bytes (smoltcp's `segmentation-offload`). The IP MTU
//! smoltcp sees stays the wire's, so the MSS it advertises and the segment
//! size it asks for are the wire's; only the frames it builds grow. Those
//! larger than a standard buffer go into a buffer of the group's TSO pool,
//! and every TCP frame leaves with the mbuf flags asking the NIC for its
//! checksum and, when smoltcp asked for it, for segmentation at its MSS.
//! The pools hold no chained buffers, so a super-frame needs one large
//! buffer. The NIC either copies it into wire-sized segments and frees it,
//! or (a veth whose wire carries super-frames) sends it whole, and the
//! receiving NIC's large receive offload hands it up whole: smoltcp checks
//! no size on receive, so it reads the super-frame as one large segment,
//! as Linux's TCP reads a GSO packet that crossed a veth pair.
//!
//! A frame whose checksums the NIC verified and found good (its receive
//! checksum offload, see [`ethdev::mbuf::OlFlags::CKSUM_FILLED`]) is handed
//! to smoltcp with `PacketMeta::checksum_verified`, so smoltcp does not sum
//! it again (the stack instance drops one the NIC found a bad checksum in
//! before it gets here).

use std::collections::VecDeque;
use std::num::{NonZeroU16, NonZeroUsize};

use ethdev::mbuf::OlFlags;
use ethdev::proto::{ETHERNET_HEADER, ETHER_TYPE_IPV4, ETHER_TYPE_IPV6, PROTO_TCP};
use ethdev::{Mbuf, Mempool, Owner};
use smoltcp::phy::{self, Checksum, DeviceCapabilities, Medium, PacketMeta};
use smoltcp::time::Instant as SmolInstant;

use crate::dispatch::ConnKey;

/// Largest frame (Ethernet header included) handed to the NIC for TSO:
/// 64 KiB, as Linux's default GSO size, which keeps the IPv4 total length
/// within its 16 bits.
pub const TSO_FRAME: usize = 64 * 1024;

/// Counters of the device layer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeviceStats {
    /// Frames handed to smoltcp.
    pub rx_frames: u64,
    /// Frames smoltcp produced.
    pub tx_frames: u64,
    /// Frames smoltcp produced that were lost because the pool was empty.
    pub tx_no_mbuf: u64,
    /// Frames produced with a TSO request (each a segment larger than the MSS).
    pub tso_frames: u64,
}

/// What the stack instance must know of a received frame before smoltcp
/// reads it: which socket set to give smoltcp with it, and whether it may
/// reach a listener at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RxKind {
    /// A TCP segment of connection `key`; `opens` for a SYN without ACK.
    Tcp {
        /// The connection, as this host sees it.
        key: ConnKey,
        /// A SYN without ACK.
        opens: bool,
    },
    /// An ARP message or IPv6 neighbour discovery message.
    Neighbor,
    /// Anything else.
    Other,
}

/// A received frame waiting for smoltcp.
pub(crate) struct RxFrame {
    /// The frame.
    pub(crate) mbuf: Mbuf,
    /// What it is.
    pub(crate) kind: RxKind,
}

/// A smoltcp device whose frames live in mbufs of one pool (and, with TSO,
/// super-frames in buffers of a second one).
pub(crate) struct QueueDevice {
    pool: Mempool,
    /// Large buffers for TSO super-frames; `None` without TSO.
    tso_pool: Option<Mempool>,
    owner: Owner,
    mtu: usize,
    /// Received frames waiting for smoltcp.
    pub(crate) rx: VecDeque<RxFrame>,
    /// Frames smoltcp wrote, waiting for `tx_burst`.
    pub(crate) tx: Vec<Mbuf>,
    pub(crate) stats: DeviceStats,
}

impl QueueDevice {
    /// A device allocating from `pool` as `owner`, for IP packets up to
    /// `mtu` bytes on the wire; with a `tso_pool`, frames up to the smaller
    /// of [`TSO_FRAME`] and that pool's data room are segmented by the NIC.
    pub(crate) fn new(pool: Mempool, tso_pool: Option<Mempool>, owner: Owner, mtu: usize) -> Self {
        Self { pool, tso_pool, owner, mtu, rx: VecDeque::new(), tx: Vec::new(), stats: DeviceStats::default() }
    }

    /// Whether a frame could be built now: its pools have a buffer left.
    pub(crate) fn can_transmit(&self) -> bool {
        self.pool.has_avail() && self.tso_pool.as_ref().is_none_or(Mempool::has_avail)
    }

    fn token(&mut self) -> MbufTx<'_> {
        MbufTx {
            pool: &self.pool,
            tso_pool: self.tso_pool.as_ref(),
            owner: self.owner,
            segment: None,
            out: &mut self.tx,
            stats: &mut self.stats,
        }
    }
}

/// A received frame: smoltcp reads it where it lies; dropping the token frees the mbuf.
pub(crate) struct MbufRx(Mbuf);

/// The right to transmit one frame.
pub(crate) struct MbufTx<'a> {
    pool: &'a Mempool,
    tso_pool: Option<&'a Mempool>,
    owner: Owner,
    /// Segment size smoltcp asked the NIC to cut this frame at.
    segment: Option<NonZeroU16>,
    out: &'a mut Vec<Mbuf>,
    stats: &'a mut DeviceStats,
}

impl phy::Device for QueueDevice {
    type RxToken<'a> = MbufRx;
    type TxToken<'a> = MbufTx<'a>;

    fn receive(&mut self, _now: SmolInstant) -> Option<(MbufRx, MbufTx<'_>)> {
        let frame = self.rx.pop_front()?;
        self.stats.rx_frames += 1;
        Some((MbufRx(frame.mbuf), self.token()))
    }

    fn transmit(&mut self, _now: SmolInstant) -> Option<MbufTx<'_>> {
        self.can_transmit().then(|| self.token())
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = self.mtu + ETHERNET_HEADER;
        if let Some(tso_pool) = &self.tso_pool {
            caps.checksum.tcp = Checksum::Rx;
            caps.segmentation.tcpv4 = NonZeroUsize::new(tso_pool.data_room().min(TSO_FRAME));
        }
        caps
    }
}

impl phy::RxToken for MbufRx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(self.0.data())
    }

    fn meta(&self) -> PacketMeta {
        let mut meta = PacketMeta::default();
        meta.checksum_verified = checksums_verified(&self.0);
        meta
    }
}

/// Whether the NIC verified every checksum of a received frame and found
/// it good: its TCP/UDP checksum and, over IPv4, its IPv4 header checksum
/// (IPv6 has none). smoltcp then does not sum the frame again.
fn checksums_verified(mbuf: &Mbuf) -> bool {
    let flags = mbuf.flags();
    flags.contains(OlFlags::RX_L4_CKSUM_GOOD)
        && (flags.contains(OlFlags::RX_IP_CKSUM_GOOD) || ether_type(mbuf.data()) == Some(ETHER_TYPE_IPV6))
}

impl phy::TxToken for MbufTx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let pool = match self.tso_pool {
            Some(large) if len > self.pool.data_room() => large,
            _ => self.pool,
        };
        let mut mbuf = pool.alloc(self.owner);
        match mbuf.as_mut().and_then(|m| m.append(len)) {
            Some(buf) => {
                let r = f(buf);
                self.stats.tx_frames += 1;
                if let Some(mut mbuf) = mbuf {
                    if self.tso_pool.is_some() {
                        self.stats.tso_frames += u64::from(request_offloads(&mut mbuf, self.segment));
                    }
                    self.out.push(mbuf);
                }
                r
            }
            None => {
                // smoltcp must still be given a buffer; the frame is lost
                // and counted, exactly like a NIC dropping it for lack of
                // descriptors. TCP retransmits it.
                self.stats.tx_no_mbuf += 1;
                f(&mut vec![0; len])
            }
        }
    }

    fn set_meta(&mut self, meta: PacketMeta) {
        self.segment = meta.segmentation_offload_size;
    }
}

/// Asks the NIC to fill in the checksum of a TCP frame (smoltcp leaves it
/// out under TSO) and to cut it at `segment` bytes if smoltcp asked for
/// that; true if segmentation was requested.
fn request_offloads(mbuf: &mut Mbuf, segment: Option<NonZeroU16>) -> bool {
    if !is_tcp(mbuf.data()) {
        return false;
    }
    mbuf.set_flags(mbuf.flags() | OlFlags::TX_L4_CKSUM);
    if let Some(size) = segment {
        mbuf.request_tso(size.get());
    }
    segment.is_some()
}

/// Whether an untagged Ethernet frame carries TCP directly over IPv4 or IPv6.
fn is_tcp(frame: &[u8]) -> bool {
    let proto_at = match ether_type(frame) {
        Some(ETHER_TYPE_IPV4) => ETHERNET_HEADER + 9,
        Some(ETHER_TYPE_IPV6) => ETHERNET_HEADER + 6,
        _ => return false,
    };
    frame.get(proto_at) == Some(&PROTO_TCP)
}

/// The EtherType of an untagged Ethernet frame.
fn ether_type(frame: &[u8]) -> Option<u16> {
    frame.get(12..14).map(|t| u16::from_be_bytes([t[0], t[1]]))
}

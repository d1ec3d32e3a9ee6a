//! The packet buffer: data plus the metadata a NIC and a stack exchange.
//!
//! An [`Mbuf`] is a handle on one slot of a [`Mempool`]. The slot starts with
//! a fixed 64-byte header, like DPDK's `rte_mbuf` first cache line: where the
//! data starts and how long it is, the port and queue it arrived on, the RSS
//! hash, offload flags and the flow-rule mark. All of it lives in the pool's
//! region, so a buffer carries its metadata wherever its index travels.
//! The data window moves inside the buffer: [`Mbuf::prepend`] eats headroom,
//! [`Mbuf::append`] eats tailroom, [`Mbuf::adj`] and [`Mbuf::trim`] give them
//! back.

use crate::mempool::{Mempool, Owner};

pub use crate::mempool::Mbuf;

bitflags::bitflags! {
    /// Offload flags on a buffer, like DPDK's `RTE_MBUF_F_*`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
    pub struct OlFlags: u64 {
        /// `rss_hash` holds the receive-side Toeplitz hash.
        const RX_RSS_HASH = 1 << 0;
        /// A flow rule matched and `mark` holds its MARK value.
        const RX_FDIR_MARK = 1 << 1;
        /// The IPv4 header checksum was verified and is good.
        const RX_IP_CKSUM_GOOD = 1 << 2;
        /// The IPv4 header checksum was verified and is wrong.
        const RX_IP_CKSUM_BAD = 1 << 3;
        /// The TCP/UDP checksum was verified and is good.
        const RX_L4_CKSUM_GOOD = 1 << 4;
        /// The TCP/UDP checksum was verified and is wrong.
        const RX_L4_CKSUM_BAD = 1 << 5;
        /// Receive: a TCP segment larger than the MTU, taken whole by large
        /// receive offload; `tso_segsz` holds the segment size it stands for.
        const RX_LRO = 1 << 6;
        /// On the wire: the sending port filled in every checksum of this
        /// frame (the IPv4 header's and the TCP/UDP one) and no byte has
        /// changed since. A receiving port with checksum offload then
        /// reports them good without summing the frame, as a NIC that
        /// verified them on the wire would; a receiving port always removes
        /// the flag, and whatever changes the bytes in flight clears it
        /// ([`Mbuf::distrust_checksums`]), so the receiver verifies again.
        const CKSUM_FILLED = 1 << 7;
        /// Transmit: the NIC fills in the IPv4 header checksum.
        const TX_IP_CKSUM = 1 << 16;
        /// Transmit: the NIC fills in the TCP or UDP checksum.
        const TX_L4_CKSUM = 1 << 17;
        /// Transmit: the NIC cuts this TCP segment into `tso_segsz` pieces.
        const TX_TCP_SEG = 1 << 18;
        /// Transmit: the port hands this frame to its own receive queue
        /// `queue()` instead of the wire, a hairpin inside the NIC, which
        /// is how one process passes a frame to another's queue (user-veth
        /// shared ports do; other ports drop such a frame as a bad offload).
        const TX_LOOPBACK = 1 << 19;
    }
}

impl Mbuf {
    /// The packet bytes.
    pub fn data(&self) -> &[u8] {
        let (off, len) = self.window();
        &self.buffer()[off..off + len]
    }

    /// The packet bytes, mutably.
    pub fn data_mut(&mut self) -> &mut [u8] {
        let (off, len) = self.window();
        &mut self.buffer_mut()[off..off + len]
    }

    /// Packet length in bytes.
    pub fn len(&self) -> usize {
        self.header().data_len as usize
    }

    /// Whether the packet has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Free bytes in front of the data.
    pub fn headroom(&self) -> usize {
        self.header().data_off as usize
    }

    /// Free bytes after the data.
    pub fn tailroom(&self) -> usize {
        self.buffer().len() - self.headroom() - self.len()
    }

    /// Grows the data at the end by `n` bytes and returns them, or `None`
    /// if the tailroom is too small.
    pub fn append(&mut self, n: usize) -> Option<&mut [u8]> {
        if n > self.tailroom() {
            return None;
        }
        let end = self.headroom() + self.len();
        self.header_mut().data_len += n as u32;
        Some(&mut self.buffer_mut()[end..end + n])
    }

    /// Grows the data at the front by `n` bytes and returns them, or `None`
    /// if the headroom is too small.
    pub fn prepend(&mut self, n: usize) -> Option<&mut [u8]> {
        if n > self.headroom() {
            return None;
        }
        let header = self.header_mut();
        header.data_off -= n as u32;
        header.data_len += n as u32;
        let start = header.data_off as usize;
        Some(&mut self.buffer_mut()[start..start + n])
    }

    /// Removes `n` bytes from the front; `false` (and no change) if the
    /// packet is shorter.
    pub fn adj(&mut self, n: usize) -> bool {
        if n > self.len() {
            return false;
        }
        let header = self.header_mut();
        header.data_off += n as u32;
        header.data_len -= n as u32;
        true
    }

    /// Removes `n` bytes from the end; `false` (and no change) if the packet
    /// is shorter.
    pub fn trim(&mut self, n: usize) -> bool {
        if n > self.len() {
            return false;
        }
        self.header_mut().data_len -= n as u32;
        true
    }

    /// Appends a copy of `bytes`; `false` (and no change) if it does not fit.
    pub fn extend_from_slice(&mut self, bytes: &[u8]) -> bool {
        match self.append(bytes.len()) {
            Some(room) => {
                room.copy_from_slice(bytes);
                true
            }
            None => false,
        }
    }

    /// A deep copy (bytes and metadata) in a buffer from `pool`, allocated
    /// for `owner`; `None` if the pool is empty or its buffers are too small.
    pub fn copy_to(&self, pool: &Mempool, owner: Owner) -> Option<Mbuf> {
        let mut copy = pool.alloc(owner)?;
        if !copy.extend_from_slice(self.data()) {
            return None;
        }
        copy.copy_metadata_from(self);
        Some(copy)
    }

    /// Copies port, queue, hash, mark, flags and TSO size from `other`.
    pub fn copy_metadata_from(&mut self, other: &Mbuf) {
        let (src, dst) = (other.header(), self.header_mut());
        dst.port = src.port;
        dst.queue = src.queue;
        dst.rss_hash = src.rss_hash;
        dst.mark = src.mark;
        dst.ol_flags = src.ol_flags;
        dst.tso_segsz = src.tso_segsz;
    }

    /// Index of the buffer's slot in its pool.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// Who holds this buffer.
    pub fn owner(&self) -> Owner {
        self.shared().owner(self.index)
    }

    /// Hands the buffer to another owner (e.g. when a port passes a frame
    /// to a stack).
    pub fn set_owner(&mut self, owner: Owner) {
        crate::owner::check_owner(owner);
        self.shared().set_owner(self.index, owner);
    }

    /// Port the buffer was received on (or is bound for).
    pub fn port(&self) -> u16 {
        self.header().port
    }

    /// Sets the port.
    pub fn set_port(&mut self, port: u16) {
        self.header_mut().port = port;
    }

    /// Queue the buffer was received on.
    pub fn queue(&self) -> u16 {
        self.header().queue
    }

    /// Sets the queue.
    pub fn set_queue(&mut self, queue: u16) {
        self.header_mut().queue = queue;
    }

    /// The RSS hash, valid when [`OlFlags::RX_RSS_HASH`] is set.
    pub fn rss_hash(&self) -> u32 {
        self.header().rss_hash
    }

    /// Records an RSS hash and sets [`OlFlags::RX_RSS_HASH`].
    pub fn set_rss_hash(&mut self, hash: u32) {
        let header = self.header_mut();
        header.rss_hash = hash;
        header.ol_flags |= OlFlags::RX_RSS_HASH.bits();
    }

    /// The flow-rule mark, valid when [`OlFlags::RX_FDIR_MARK`] is set.
    pub fn mark(&self) -> u32 {
        self.header().mark
    }

    /// Records a flow-rule mark and sets [`OlFlags::RX_FDIR_MARK`].
    pub fn set_mark(&mut self, mark: u32) {
        let header = self.header_mut();
        header.mark = mark;
        header.ol_flags |= OlFlags::RX_FDIR_MARK.bits();
    }

    /// The offload flags.
    pub fn flags(&self) -> OlFlags {
        OlFlags::from_bits_retain(self.header().ol_flags)
    }

    /// Replaces the offload flags.
    pub fn set_flags(&mut self, flags: OlFlags) {
        self.header_mut().ol_flags = flags.bits();
    }

    /// Forgets that this frame's checksums are known to be good
    /// ([`OlFlags::CKSUM_FILLED`] and the receive `*_CKSUM_GOOD` flags), for
    /// whatever just changed its bytes: whoever reads it next verifies them.
    pub fn distrust_checksums(&mut self) {
        let known_good = OlFlags::CKSUM_FILLED | OlFlags::RX_IP_CKSUM_GOOD | OlFlags::RX_L4_CKSUM_GOOD;
        self.set_flags(self.flags() - known_good);
    }

    /// Segment payload size for TSO, when [`OlFlags::TX_TCP_SEG`] is set.
    pub fn tso_segsz(&self) -> u16 {
        self.header().tso_segsz
    }

    /// Asks the NIC to cut this TCP segment into `segsz`-byte payloads
    /// (sets [`OlFlags::TX_TCP_SEG`]).
    pub fn request_tso(&mut self, segsz: u16) {
        let header = self.header_mut();
        header.tso_segsz = segsz;
        header.ol_flags |= OlFlags::TX_TCP_SEG.bits();
    }

    /// Whether the data window lies inside the buffer: always, unless
    /// another process wrote the header (checked when a reference is claimed).
    pub(crate) fn window_fits(&self) -> bool {
        let (off, len) = self.window();
        off.checked_add(len).is_some_and(|end| end <= self.buffer().len())
    }

    fn window(&self) -> (usize, usize) {
        let header = self.header();
        (header.data_off as usize, header.data_len as usize)
    }
}

impl std::fmt::Debug for Mbuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mbuf")
            .field("index", &self.index)
            .field("len", &self.len())
            .field("port", &self.port())
            .field("queue", &self.queue())
            .field("flags", &self.flags())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mempool::MempoolConfig;

    fn one() -> (Mempool, Mbuf) {
        let pool = Mempool::new(MempoolConfig::new("t", 2).data_room(64)).unwrap();
        let m = pool.alloc(Owner::NONE).unwrap();
        (pool, m)
    }

    #[test]
    fn window_moves_within_headroom_and_tailroom() {
        let (_pool, mut m) = one();
        assert_eq!((m.headroom(), m.len(), m.tailroom()), (128, 0, 64));
        assert!(m.extend_from_slice(b"payload"));
        m.prepend(2).unwrap().copy_from_slice(b"hd");
        assert_eq!(m.data(), b"hdpayload");
        assert!(m.adj(2) && m.trim(4));
        assert_eq!(m.data(), b"pay");
        assert!(m.append(62).is_none(), "tailroom is 61");
        assert!(!m.adj(4));
        assert_eq!(m.data(), b"pay");
    }

    #[test]
    fn metadata_resets_on_reuse() {
        let (pool, mut m) = one();
        m.set_rss_hash(7);
        m.set_mark(9);
        m.request_tso(1000);
        m.extend_from_slice(b"x");
        let index = m.index();
        drop(m);
        let mut again = pool.alloc(Owner::NONE).unwrap();
        if again.index() != index {
            again = pool.alloc(Owner::NONE).unwrap();
        }
        assert_eq!(again.index(), index);
        assert_eq!((again.len(), again.flags(), again.rss_hash()), (0, OlFlags::empty(), 0));
    }

    #[test]
    fn copy_to_copies_bytes_and_metadata() {
        let (pool, mut m) = one();
        m.extend_from_slice(b"abc");
        m.set_port(3);
        m.set_rss_hash(0xdead);
        let c = m.copy_to(&pool, Owner(5)).unwrap();
        assert_eq!((c.data(), c.port(), c.rss_hash(), c.owner()), (&b"abc"[..], 3, 0xdead, Owner(5)));
        assert!(c.copy_to(&pool, Owner(5)).is_none(), "pool exhausted");
    }
}

//! The header at the start of every pool slot.
//!
//! Like DPDK's `rte_mbuf` first cache line, each slot of a
//! [`Mempool`](crate::Mempool) begins with a fixed 64-byte header: where the
//! data starts and how long it is, the port and queue it arrived on, the
//! RSS hash, offload flags and the flow-rule mark. The pool lays slots out
//! and hands out references to their headers; [`Mbuf`](crate::Mbuf) reads
//! and writes the fields. Its own module, so that neither of those two
//! depends on the other for it.

/// The metadata at the start of every pool slot (64 bytes, `repr(C)` so its
/// layout is fixed for shared memory).
#[repr(C, align(64))]
#[derive(Debug)]
pub(crate) struct MbufHeader {
    pub(crate) data_off: u32,
    pub(crate) data_len: u32,
    pub(crate) rss_hash: u32,
    pub(crate) mark: u32,
    pub(crate) ol_flags: u64,
    pub(crate) port: u16,
    pub(crate) queue: u16,
    pub(crate) tso_segsz: u16,
}

impl MbufHeader {
    /// Puts a freshly allocated header in its initial state: empty data
    /// starting after `headroom`, no metadata.
    pub(crate) fn reset(&mut self, headroom: u16) {
        *self = MbufHeader {
            data_off: headroom as u32,
            data_len: 0,
            rss_hash: 0,
            mark: 0,
            ol_flags: 0,
            port: 0,
            queue: 0,
            tso_segsz: 0,
        };
    }
}

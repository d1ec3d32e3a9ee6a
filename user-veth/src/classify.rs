//! Receive classification: which queue a frame goes to, as NIC hardware
//! decides it.
//!
//! In order: the MTU check (a super-frame taken by large receive offload
//! may exceed it), the MAC filter, flow rules (whose fate may be a
//! queue, a drop, or RSS over a subset of queues), and finally the port's
//! RSS through its RETA. With no rules and isolate mode off the flow table
//! costs one branch, and a plain IPv4 TCP/UDP frame (when no receive
//! checksum offload wants the full header walk either) takes the
//! fixed-offset parser, [`Ipv4Flow::parse`], straight into the Toeplitz hash.

use ethdev::flow::Fate;
use ethdev::mac::MacAddr;
use ethdev::packet::{Ipv4Flow, PacketMeta};
use ethdev::proto::ETHERNET_HEADER;
use ethdev::rss::RssHashTypes;
use ethdev::stats::DropReason;

use crate::port::State;

/// Where a received frame goes and what the NIC learnt about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Placement {
    pub(crate) queue: u16,
    pub(crate) hash: Option<u32>,
    pub(crate) mark: Option<u32>,
}

/// Decides the queue of a frame whose headers are `meta`, or why it is dropped.
pub(crate) fn classify(
    state: &State,
    mac: &MacAddr,
    promiscuous: bool,
    frame_len: usize,
    meta: &PacketMeta,
    max_l3: usize,
) -> Result<Placement, DropReason> {
    admit(max_l3, *mac, promiscuous, frame_len - meta.l3_offset as usize, MacAddr(meta.dst_mac))?;
    if rss_only(state) {
        return Ok(default_rss(state, meta, None));
    }
    let verdict = state.flows.classify(meta, frame_len);
    let placement = match verdict.fate {
        Fate::Queue(queue) => Placement { queue, hash: None, mark: verdict.mark },
        Fate::Drop => return Err(DropReason::FlowDrop),
        Fate::Isolated => return Err(DropReason::Isolated),
        Fate::Rss { queues, types } => rss_subset(state, meta, queues, types, verdict.mark),
        Fate::Default => default_rss(state, meta, verdict.mark),
    };
    Ok(placement)
}

/// Whether `state` lets [`classify_ipv4`] stand in for [`classify`]: no
/// flow rules and isolate mode off, so only MTU, MAC filter and RSS apply.
pub(crate) fn rss_only(state: &State) -> bool {
    state.flows.is_empty() && !state.flows.is_isolated()
}

/// [`classify`] for a frame [`Ipv4Flow::parse`] read (layer 3 at byte 14),
/// on a port where [`rss_only`] holds.
#[inline]
pub(crate) fn classify_ipv4(
    state: &State,
    mac: &MacAddr,
    promiscuous: bool,
    frame: &[u8],
    flow: &Ipv4Flow,
    max_l3: usize,
) -> Result<Placement, DropReason> {
    let dst_mac = MacAddr(*frame.first_chunk().ok_or(DropReason::Malformed)?);
    admit(max_l3, *mac, promiscuous, frame.len() - ETHERNET_HEADER, dst_mac)?;
    Ok(match state.rss.queue_for_ipv4(flow) {
        Some((hash, queue)) => Placement { queue, hash: Some(hash), mark: None },
        None => Placement { queue: 0, hash: None, mark: None },
    })
}

/// The size check on the `l3_len` bytes from layer 3 on (the MTU, or more
/// for a super-frame taken by large receive offload), and the MAC filter.
#[inline(always)]
fn admit(max_l3: usize, mac: MacAddr, promiscuous: bool, l3_len: usize, dst_mac: MacAddr) -> Result<(), DropReason> {
    if l3_len > max_l3 {
        return Err(DropReason::Oversize);
    }
    if !dst_mac.is_multicast() && dst_mac != mac && !promiscuous {
        return Err(DropReason::MacFilter);
    }
    Ok(())
}

/// The port's own RSS: `reta[hash & (size - 1)]`, or queue 0 for frames of
/// a type that is not hashed.
fn default_rss(state: &State, meta: &PacketMeta, mark: Option<u32>) -> Placement {
    match state.rss.queue_for(meta) {
        Some((hash, queue)) => Placement { queue, hash: Some(hash), mark },
        None => Placement { queue: 0, hash: None, mark },
    }
}

/// A flow rule's RSS action: the rule's queues fill the RETA round-robin,
/// as NICs program it, so the queue is `queues[(hash & (size-1)) % n]`.
fn rss_subset(state: &State, meta: &PacketMeta, queues: &[u16], types: RssHashTypes, mark: Option<u32>) -> Placement {
    let types = if types.is_empty() { state.rss.types() } else { types };
    match state.rss.toeplitz().hash_meta(meta, types) {
        Some(hash) => {
            let slot = (hash as usize & (state.rss.reta().len() - 1)) % queues.len();
            Placement { queue: queues[slot], hash: Some(hash), mark }
        }
        None => Placement { queue: queues[0], hash: None, mark },
    }
}

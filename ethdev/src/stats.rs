//! Counted drops: every frame a component refuses is counted under a reason.
//!
//! Accounting must close — for every port, queue and link, frames offered
//! equal frames passed on plus frames dropped — so drops are never silent.
//! [`DropCounters`] is a fixed array of atomic counters indexed by
//! [`DropReason`], cheap enough for the data path and readable from any
//! thread for stats and xstats.

use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! drop_reasons {
    ($($variant:ident => $name:literal : $doc:literal,)*) => {
        /// Why a frame was dropped.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum DropReason {
            $(#[doc = $doc] $variant,)*
        }

        impl DropReason {
            /// Every reason, in counter order.
            pub const ALL: &'static [DropReason] = &[$(DropReason::$variant,)*];

            /// Stable snake-case name used in xstats and reports.
            pub fn name(self) -> &'static str {
                match self { $(DropReason::$variant => $name,)* }
            }
        }
    };
}

drop_reasons! {
    Malformed => "malformed": "Too short or unparseable where parsing was required.",
    LinkDown => "link_down": "The link was down.",
    MacFilter => "mac_filter": "Unicast to another MAC while not promiscuous.",
    Oversize => "oversize": "Longer than the MTU allows.",
    RingFull => "ring_full": "The receive or transmit ring was full (imissed).",
    NoMbuf => "no_mbuf": "No buffer could be allocated for a copy or a segment.",
    FlowDrop => "flow_drop": "A flow rule's DROP action.",
    Isolated => "isolated": "No flow rule matched in isolate mode.",
    InvalidSrcMac => "invalid_src_mac": "Source MAC is multicast, broadcast or zero.",
    LinkLocal => "link_local": "Link-local control frame (01:80:C2:00:00:0X), not forwarded.",
    NoEgress => "no_egress": "The destination is the ingress port (no hairpin) or no other port exists.",
    Loss => "loss": "Lost on an impaired link.",
    RateLimit => "rate_limit": "Over a link's rate limit.",
    BadOffload => "bad_offload": "An offload request the frame cannot satisfy (e.g. TSO on a non-TCP frame).",
}

/// One atomic counter per [`DropReason`].
#[derive(Debug, Default)]
pub struct DropCounters {
    counts: [AtomicU64; DropReason::ALL.len()],
}

impl DropCounters {
    /// Counts `n` drops for `reason`.
    pub fn add(&self, reason: DropReason, n: u64) {
        self.counts[reason as usize].fetch_add(n, Ordering::Relaxed);
    }

    /// Drops counted for `reason`.
    pub fn get(&self, reason: DropReason) -> u64 {
        self.counts[reason as usize].load(Ordering::Relaxed)
    }

    /// All drops, whatever the reason.
    pub fn total(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// The non-zero counters with their reasons.
    pub fn nonzero(&self) -> Vec<(DropReason, u64)> {
        DropReason::ALL.iter().map(|&r| (r, self.get(r))).filter(|&(_, n)| n > 0).collect()
    }

    /// Sets every counter to zero.
    pub fn reset(&self) {
        self.counts.iter().for_each(|c| c.store(0, Ordering::Relaxed));
    }
}

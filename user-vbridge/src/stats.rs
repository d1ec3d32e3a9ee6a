//! Counters of frames crossing links and the switch, and the identities
//! that make them add up.
//!
//! Every link direction counts what entered it (`frames_in`), what left it
//! (`frames_out`), what it dropped and why, and what it duplicated; together
//! with the frames still in its delay queue they satisfy
//! `in + duplicated = out + dropped + in flight`. The switch in the middle
//! counts what it accepted from ingress links and where it went.

use ethdev::stats::{DropCounters, DropReason};

/// Counters of one direction of one port's link.
#[derive(Debug, Default)]
pub struct LinkStats {
    /// Frames that entered the link: taken from the port (ingress) or
    /// offered by the switch, flood copies included (egress); a super-frame
    /// cut before the link counts as its segments.
    pub frames_in: u64,
    /// Bytes of `frames_in`.
    pub bytes_in: u64,
    /// Frames that left the link: into the switch (ingress) or handed to
    /// the port (egress).
    pub frames_out: u64,
    /// Bytes of `frames_out`.
    pub bytes_out: u64,
    /// Frames dropped, by reason.
    pub drops: DropCounters,
    /// Frames with a bit flipped by the corrupt impairment (not dropped).
    pub corrupted: u64,
    /// Extra copies made by the duplicate impairment.
    pub duplicated: u64,
}

impl LinkStats {
    pub(crate) fn count_in(&mut self, bytes: usize) {
        self.frames_in += 1;
        self.bytes_in += bytes as u64;
    }

    pub(crate) fn count_out(&mut self, bytes: usize) {
        self.frames_out += 1;
        self.bytes_out += bytes as u64;
    }

    pub(crate) fn count_drop(&mut self, reason: DropReason) {
        self.drops.add(reason, 1);
    }

    /// Checks `in + duplicated = out + dropped + in_flight`.
    pub(crate) fn check(&self, in_flight: usize, what: &str) -> Result<(), String> {
        let entered = self.frames_in + self.duplicated;
        let accounted = self.frames_out + self.drops.total() + in_flight as u64;
        if entered == accounted {
            return Ok(());
        }
        Err(format!(
            "{what}: in {} + duplicated {} != out {} + dropped {} + in flight {in_flight}",
            self.frames_in,
            self.duplicated,
            self.frames_out,
            self.drops.total()
        ))
    }
}

/// Counters of the switching stage between ingress and egress links.
#[derive(Debug, Default)]
pub struct SwitchStats {
    /// Frames that left an ingress link into the switch.
    pub switched: u64,
    /// Frames sent to the one port their destination was learned on.
    pub forwarded: u64,
    /// Frames flooded (unknown unicast, broadcast, multicast).
    pub flooded: u64,
    /// Egress offers made by floods: one per receiving port.
    pub flood_offers: u64,
    /// Extra egress offers made by cutting a super-frame into segments for
    /// its port (segments beyond the first).
    pub cut_extra: u64,
    /// Frames the switch dropped (`NoEgress`).
    pub drops: DropCounters,
}

impl SwitchStats {
    /// Checks the switch against the sums over ingress and egress links.
    pub(crate) fn check(&self, ingress_out: u64, egress_in: u64) -> Result<(), String> {
        if ingress_out != self.switched {
            return Err(format!("ingress links passed {ingress_out} frames, switch took {}", self.switched));
        }
        let decided = self.forwarded + self.flooded + self.drops.total();
        if decided != self.switched {
            return Err(format!(
                "switch took {} frames but forwarded {} + flooded {} + dropped {}",
                self.switched,
                self.forwarded,
                self.flooded,
                self.drops.total()
            ));
        }
        let offered = self.forwarded + self.flood_offers + self.cut_extra;
        if offered != egress_in {
            return Err(format!(
                "switch offered {offered} frames (cut segments included), egress links took {egress_in}"
            ));
        }
        Ok(())
    }
}

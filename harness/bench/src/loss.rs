//! Loss recovery: one verified bulk stream (as `tcp.goodput.1500`) whose
//! client link loses 1 % or 2 % of the frames it sends, and, opt-in with
//! root, Linux over a veth pair losing the sender's segments at the same
//! rate (an nftables random drop where they arrive, since this platform's
//! kernel has no `sch_netem`; see [`kernel_lossy_goodput`]), measured right
//! before ours, and the ratio of the two. Both sides lose what the sender
//! sends, never the receiver's ACKs. Our smoltcp is patched
//! (`third_party/smoltcp/PATCHES.md`) to recover without waiting for the
//! retransmission timeout: three duplicate ACKs start NewReno fast recovery
//! (RFC 6582), in which every partial ACK retransmits the next hole at once
//! and a retransmission that is itself lost is resent once more duplicate
//! ACKs arrive than the segments in flight behind it could cause; a loss
//! probe resends the first unacknowledged segment when no new data is
//! acknowledged for twice the smoothed RTT (at least 2 ms), which covers a
//! loss at the tail or a lost retransmission with nothing sent after it; and
//! the RTO, now the last resort, is at least 200 ms (1 s upstream). A SACK
//! scoreboard retransmits every hole that the peer's SACK blocks report lost
//! (RFC 6675's rule), one per duplicate ACK, so the holes of a window are
//! repaired in one round trip, as Linux (SACK, RACK-TLP) does; Linux also
//! detects lost retransmissions by time (RACK), where we wait for duplicate
//! ACKs or the loss probe.

use stack::ThreadModel;

use crate::kernel::{kernel_lossy_goodput, secs_for};
pub use crate::tcp::LossyRun;
use crate::tcp::{is_smoke, lossy_goodput, reported};
use crate::{measurement, Budget, Measurement};

/// One loss rate's figures: ours, the kernel's, and ours over the kernel's.
pub struct Rate {
    /// Probability that the client's link loses a frame.
    pub loss: f64,
    /// dtnet's goodput (Gbit/s).
    pub ours: &'static str,
    /// Linux's goodput over a veth pair with netem (Gbit/s, opt-in).
    pub kernel: &'static str,
    /// `ours / kernel`, both measured in the same run (opt-in).
    pub ratio: &'static str,
}

/// The loss rates measured.
pub const RATES: [Rate; 2] = [
    Rate {
        loss: 0.01,
        ours: "tcp.goodput.loss1",
        kernel: "kernel.tcp.goodput.loss1",
        ratio: "tcp.goodput.loss1.ratio",
    },
    Rate {
        loss: 0.02,
        ours: "tcp.goodput.loss2",
        kernel: "kernel.tcp.goodput.loss2",
        ratio: "tcp.goodput.loss2.ratio",
    },
];

/// Names of dtnet's own figures (default run).
pub const NAMES: [&str; 2] = [RATES[0].ours, RATES[1].ours];
/// Names of the kernel's figures (opt-in).
pub const KERNEL_NAMES: [&str; 2] = [RATES[0].kernel, RATES[1].kernel];
/// Names of the ratios (opt-in).
pub const RATIO_NAMES: [&str; 2] = [RATES[0].ratio, RATES[1].ratio];

/// Stream length for a smoke pass and a full run: shorter than the
/// loss-free stream's, since recovery makes it slower.
const SMOKE_BYTES: u64 = 1 << 20;
const FULL_BYTES: u64 = 8 << 20;

fn stream_bytes(budget: Budget) -> u64 {
    if is_smoke(budget) {
        SMOKE_BYTES
    } else {
        FULL_BYTES
    }
}

/// dtnet's stream at `rate`, `len` bytes long (every byte verified).
pub fn stream(len: u64, rate: &Rate) -> Result<LossyRun, String> {
    lossy_goodput(len, ThreadModel::RunToCompletion, false, rate.loss)
}

fn ours(budget: Budget, rate: &Rate) -> Result<f64, String> {
    stream(stream_bytes(budget), rate).map(|run| run.gbits)
}

/// dtnet's goodput at each loss rate (default run).
pub(super) fn run(budget: Budget) -> Vec<Measurement> {
    let figure = |rate: &Rate| reported(rate.ours, ours(budget, rate).map(|g| measurement(rate.ours, g, "Gbit/s")));
    RATES.iter().flat_map(figure).collect()
}

/// The kernel's goodput at each loss rate (opt-in: needs root).
pub(super) fn run_kernel(budget: Budget) -> Vec<Measurement> {
    let figure = |rate: &Rate| {
        let gbits = kernel_lossy_goodput(secs_for(budget), rate.loss).map_err(|skip| skip.to_string());
        reported(rate.kernel, gbits.map(|g| measurement(rate.kernel, g, "Gbit/s")))
    };
    RATES.iter().flat_map(figure).collect()
}

/// Ours over the kernel's at each loss rate, the kernel measured right
/// before ours (opt-in: needs root).
pub(super) fn run_ratio(budget: Budget) -> Vec<Measurement> {
    let figure = |rate: &Rate| {
        let kernel =
            kernel_lossy_goodput(secs_for(budget), rate.loss).map_err(|skip| format!("kernel baseline: {skip}"));
        let ratio = kernel.and_then(|kernel| ours(budget, rate).map(|ours| ours / kernel));
        reported(rate.ratio, ratio.map(|r| measurement(rate.ratio, r, "x")))
    };
    RATES.iter().flat_map(figure).collect()
}

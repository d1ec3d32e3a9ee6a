//! `dtnet bench`: throughput of the data path's building blocks.
//!
//! Each benchmark runs its kernel in rounds until a time budget is spent and
//! reports the best round's rate (the least disturbed by the other tenant
//! of a 2-core machine). Results are [`Measurement`]s printed one JSON object
//! per line; ratios against a baseline measured in the same run (e.g. fast
//! softrss over the bit-serial reference) are reported as measurements of
//! their own, so a reader never compares figures from different runs.
//!
//! This crate is the benchmark room of the `harness/` directory: it builds
//! its worlds with `sim`, runs the cross-process ring benchmark against the
//! `mp` crate's ring peer, and holds the root-only kernel baselines
//! ([`kernel`], [`kernel_conn`], [`kernel_peer`]); the `dtnet bench` command prints what it
//! measures.

mod bridge;
pub mod kernel;
pub mod kernel_conn;
pub mod kernel_peer;
pub mod loss;
mod mp;
mod ring;
mod scale;
pub mod softrss;
mod tcp;

use std::time::{Duration, Instant};

use serde::Serialize;

/// One reported figure.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Measurement {
    /// Dotted name, e.g. `softrss.fast`.
    pub name: String,
    /// The figure.
    pub value: f64,
    /// Its unit, e.g. `Mhash/s`.
    pub unit: &'static str,
}

/// How long each benchmark may run.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Rounds to measure (best is kept).
    pub rounds: u32,
    /// Wall time per round.
    pub round: Duration,
}

impl Budget {
    /// The default for `dtnet bench`: 5 rounds of 200 ms.
    pub const FULL: Budget = Budget { rounds: 5, round: Duration::from_millis(200) };
    /// A quick pass that only proves every benchmark runs (tests).
    pub const SMOKE: Budget = Budget { rounds: 1, round: Duration::from_millis(5) };
}

/// A benchmark family: a name prefix and the function producing its figures.
struct Family {
    names: &'static [&'static str],
    run: fn(Budget) -> Vec<Measurement>,
}

const FAMILIES: &[Family] = &[
    Family { names: softrss::NAMES, run: softrss::run },
    Family { names: &["ring.spsc.burst32", "ring.mpmc.burst32", ring::XPROC], run: ring::run },
    Family { names: &[mp::NAME], run: mp::run },
    Family {
        names: &["bridge.fwd.64b.2port", "bridge.fwd.64b.8port", "bridge.fwd.64b.ratio_to_cable"],
        run: bridge::run,
    },
    Family { names: &[tcp::GOODPUT, tcp::GOODPUT_RTW, tcp::GOODPUT_TSO, tcp::TSO_RATIO], run: tcp::run_goodput },
    Family { names: &[kernel_peer::NAME], run: kernel_peer::run },
    Family { names: &loss::NAMES, run: loss::run },
    Family { names: &[tcp::CONN_RATE, tcp::CONN_RATE_RTW], run: tcp::run_conn_rate },
    Family { names: &[scale::NAME], run: scale::run },
];

/// Families that need root and host tools (the kernel baseline): they run
/// only when a prefix selects them, e.g. `dtnet bench kernel`, never in the
/// default run, and [`names`] does not list them.
const OPT_IN: &[Family] = &[
    Family { names: &[tcp::RATIO], run: tcp::run_ratio },
    Family { names: &[tcp::TSO_KERNEL_RATIO], run: tcp::run_tso_ratio },
    Family { names: &[kernel::NAME, kernel::OFFLOAD], run: kernel::run },
    Family { names: &[kernel_conn::NAME], run: kernel_conn::run },
    Family { names: &[kernel_conn::RATIO], run: kernel_conn::run_ratio },
    Family { names: &loss::KERNEL_NAMES, run: loss::run_kernel },
    Family { names: &loss::RATIO_NAMES, run: loss::run_ratio },
];

/// Every benchmark name, in run order.
pub fn names() -> Vec<&'static str> {
    FAMILIES.iter().flat_map(|f| f.names.iter().copied()).collect()
}

/// Runs the families that have a benchmark whose name starts with one of
/// `prefixes` (all if empty) and returns the matching figures.
pub fn run(prefixes: &[String], budget: Budget) -> Vec<Measurement> {
    let wanted = |name: &str| prefixes.is_empty() || prefixes.iter().any(|p| name.starts_with(p.as_str()));
    let opt_in = OPT_IN.iter().filter(|_| !prefixes.is_empty());
    FAMILIES
        .iter()
        .chain(opt_in)
        .filter(|f| f.names.iter().any(|n| wanted(n)))
        .flat_map(|f| (f.run)(budget))
        .filter(|m| wanted(&m.name))
        .collect()
}

/// Runs `round` (which returns how many operations it did) for the budget
/// and returns the best rate in millions of operations per second.
fn best_rate(budget: Budget, mut round: impl FnMut(Duration) -> u64) -> f64 {
    (0..budget.rounds)
        .map(|_| {
            let start = Instant::now();
            let ops = round(budget.round);
            ops as f64 / start.elapsed().as_secs_f64() / 1e6
        })
        .fold(0.0, f64::max)
}

/// The best of `rounds` whole runs of `measure` (the least disturbed by
/// the other tenant), for figures whose one run is short, such as the
/// connection rates; the first failure ends it.
fn best_of<E>(rounds: u32, mut measure: impl FnMut() -> Result<f64, E>) -> Result<f64, E> {
    (0..rounds.max(1)).try_fold(0.0, |best, _| Ok(f64::max(best, measure()?)))
}

/// Repeats `batch` (which returns its operation count) until `length` has passed.
fn repeat_for(length: Duration, mut batch: impl FnMut() -> u64) -> u64 {
    let start = Instant::now();
    let mut ops = 0;
    while start.elapsed() < length {
        ops += batch();
    }
    ops
}

/// The `dtnet` executable, for benchmarks that start processes: `DTNET_BIN`
/// if set (tests set it), else the running executable.
fn dtnet_binary() -> std::path::PathBuf {
    std::env::var_os("DTNET_BIN")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::current_exe().ok())
        .unwrap_or_else(|| "dtnet".into())
}

fn measurement(name: &str, value: f64, unit: &'static str) -> Measurement {
    Measurement { name: name.to_string(), value, unit }
}

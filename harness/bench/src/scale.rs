//! `scale.conns.10k`: the wall time, in seconds, of the shipped C10K
//! scenario (`scenarios/c10k-rss-rtc.toml`, built into the binary): 10,000
//! concurrent 16 KiB bulk connections from a 2-stack client to a 4-stack RSS
//! server under the simulation executor, every byte verified. The run is
//! in virtual time, so the wall time is the stacks' own cost of carrying
//! that many connections (set-up, backlog overflow and retransmission,
//! transfer, teardown); a run whose expectations fail reports no figure and
//! says why on stderr. A smoke pass runs the same world with 1,000
//! connections, reported under the same name (the test only proves it runs).

use std::path::Path;
use std::time::Instant;

use scenario::{RunOptions, Scenario};

use crate::tcp::reported;
use crate::{measurement, Budget, Measurement};

/// The benchmark's name.
pub const NAME: &str = "scale.conns.10k";

const C10K: &str = include_str!("../../../scenarios/c10k-rss-rtc.toml");
const FULL_CONNS: &str = "conns = 10000";
const SMOKE_CONNS: &str = "conns = 1000";

/// The registered benchmark.
pub(super) fn run(budget: Budget) -> Vec<Measurement> {
    let text = if crate::tcp::is_smoke(budget) { C10K.replace(FULL_CONNS, SMOKE_CONNS) } else { C10K.to_string() };
    reported(NAME, wall_seconds(&text).map(|secs| measurement(NAME, secs, "s")))
}

/// Runs the scenario in `text` and returns its wall time in seconds.
fn wall_seconds(text: &str) -> Result<f64, String> {
    let scenario = Scenario::parse(text, "c10k-rss-rtc.toml", Path::new(".")).map_err(|e| e.to_string())?;
    let start = Instant::now();
    let report = scenario::run(&scenario, &RunOptions::default()).map_err(|e| e.to_string())?;
    let secs = start.elapsed().as_secs_f64();
    if !report.passed() {
        return Err(format!("the scenario failed:\n{report}"));
    }
    Ok(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_scenario_opens_ten_thousand_connections() {
        assert_eq!(C10K.matches(FULL_CONNS).count(), 1);
    }
}

//! The far end of the cross-process ring benchmark (`ring.xproc.spsc.burst32`):
//! a secondary that drains one domain ring in bursts, checking that the
//! words arrive as the sequence 0, 1, 2, ... until the end mark.

use std::time::Duration;

use ethdev::shm::ring::ShmConsumer;
use ethdev::shm::{Domain, DomainOptions, Role};

/// The word that ends a run.
pub const END: u64 = u64::MAX;
/// Words taken per call.
const BURST: usize = 32;

/// Attaches to `ring` of domain `prefix` under `base`, drains it until
/// [`END`], and returns how many words came, or why the sequence broke.
pub fn drain(prefix: &str, base: &std::path::Path, ring: &str, ready: impl FnOnce()) -> Result<u64, String> {
    let options = DomainOptions { base: base.to_owned(), wait: Duration::from_secs(5), ..DomainOptions::default() };
    let domain = Domain::open(prefix, Role::Secondary, &options).map_err(|e| e.to_string())?;
    let mut rx = ShmConsumer::attach(&domain.lookup(ring).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    ready();
    let mut words = Vec::with_capacity(BURST);
    let mut next = 0u64;
    loop {
        words.clear();
        if rx.dequeue_burst(&mut words, BURST) == 0 {
            std::hint::spin_loop();
            continue;
        }
        for &word in &words {
            if word == END {
                return Ok(next);
            }
            if word != next {
                return Err(format!("word {next} arrived as {word}"));
            }
            next += 1;
        }
    }
}

//! Progress of a run: work done against work planned.
//!
//! The applications and the raw-frame load count the bytes they move on a
//! shared [`Meter`]; the run reports each further percent to the caller's
//! progress callback. Its own module, so that the builder, the frame load
//! and the runner can all hold one without depending on one another.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::Progress;

/// Counts work done against work planned and tells a progress callback
/// whenever another percent is done. Clones share the counts.
#[derive(Clone)]
pub(crate) struct Meter {
    done: Arc<AtomicU64>,
    total: Arc<AtomicU64>,
    report: Option<Arc<dyn Fn(Progress) + Send + Sync>>,
}

impl Meter {
    /// A meter of `total` units planned, telling `report` (if any) of progress.
    pub(super) fn new(total: u64, report: Option<Arc<dyn Fn(Progress) + Send + Sync>>) -> Meter {
        Meter { done: Arc::new(AtomicU64::new(0)), total: Arc::new(AtomicU64::new(total)), report }
    }

    /// Adds `n` units to the work planned (work only known once built).
    pub fn plan(&self, n: u64) {
        self.total.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts `n` more units done.
    /// With `-vv` (debug logs) every further tenth is logged as well.
    pub fn add(&self, n: u64) {
        let logging = tracing::enabled!(tracing::Level::DEBUG);
        if self.report.is_none() && !logging {
            return;
        }
        let before = self.done.fetch_add(n, Ordering::Relaxed);
        let (done, total) = (before + n, self.total.load(Ordering::Relaxed));
        let percent = |x: u64| x.saturating_mul(100) / total.max(1);
        if percent(done) == percent(before) && done != total {
            return;
        }
        if let Some(report) = &self.report {
            report(Progress { done, total });
        }
        if logging && percent(done) / 10 != percent(before) / 10 {
            tracing::debug!(done, total, percent = percent(done), "progress");
        }
    }
}

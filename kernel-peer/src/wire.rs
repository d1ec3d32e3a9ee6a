//! The TAP descriptor as a bridge port's wire end.
//!
//! [`TapWire`] implements [`Wire`]: `take_tx` reads the frames the kernel
//! has sent (non-blocking, at most a burst) into mbufs of the wire's own
//! pool, and `put_rx` writes each frame the bridge delivers to the
//! descriptor and frees it, so the kernel receives it as if from a cable.
//! Nothing is lost silently: a frame that cannot be read for want of a
//! buffer stays in the kernel's queue, and a write the kernel refuses is
//! counted in [`TapCounters`].

use std::io;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use ethdev::{Mbuf, Mempool, Owner, Wire};
use rustix::io::Errno;

/// What crossed a TAP wire; shared, so a caller can read it while the
/// bridge owns the wire.
#[derive(Debug, Default)]
pub struct TapCounters {
    /// Frames read from the kernel.
    pub from_kernel: AtomicU64,
    /// Frames written to the kernel.
    pub to_kernel: AtomicU64,
    /// Frames the kernel refused on write (dropped here).
    pub write_errors: AtomicU64,
    /// Reads that found no free buffer (the frame waited in the kernel).
    pub no_mbuf: AtomicU64,
    /// Reads that failed for another reason than "nothing to read".
    pub read_errors: AtomicU64,
}

impl TapCounters {
    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// The value of `counter`.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// The wire end of a TAP device (see [`crate::KernelHost`]).
pub struct TapWire {
    fd: Arc<OwnedFd>,
    name: String,
    pool: Mempool,
    counters: Arc<TapCounters>,
}

impl TapWire {
    pub(crate) fn new(fd: Arc<OwnedFd>, name: String, pool: Mempool, counters: Arc<TapCounters>) -> TapWire {
        TapWire { fd, name, pool, counters }
    }

    /// Reads one frame, or `None` if nothing is waiting or no buffer is free.
    fn read_one(&self) -> Option<Mbuf> {
        let Some(mut mbuf) = self.pool.alloc(Owner::NONE) else {
            TapCounters::add(&self.counters.no_mbuf, 1);
            return None;
        };
        let room = mbuf.tailroom();
        let buf = mbuf.append(room)?;
        match rustix::io::read(&*self.fd, buf) {
            Ok(n) if n > 0 => {
                mbuf.trim(room - n);
                Some(mbuf)
            }
            Ok(_) | Err(Errno::AGAIN) => None,
            Err(e) => {
                TapCounters::add(&self.counters.read_errors, 1);
                tracing::debug!(tap = %self.name, error = %io::Error::from(e), "TAP read failed");
                None
            }
        }
    }
}

impl Wire for TapWire {
    fn take_tx(&mut self, out: &mut Vec<Mbuf>, max: usize) -> usize {
        let before = out.len();
        while out.len() - before < max {
            match self.read_one() {
                Some(mbuf) => out.push(mbuf),
                None => break,
            }
        }
        let taken = out.len() - before;
        TapCounters::add(&self.counters.from_kernel, taken as u64);
        taken
    }

    fn put_rx(&mut self, frames: &mut Vec<Mbuf>) {
        for mbuf in frames.drain(..) {
            match rustix::io::write(&*self.fd, mbuf.data()) {
                Ok(n) if n == mbuf.len() => TapCounters::add(&self.counters.to_kernel, 1),
                Ok(_) | Err(_) => TapCounters::add(&self.counters.write_errors, 1),
            }
        }
    }

    fn link_up(&self) -> bool {
        true
    }

    fn name(&self) -> &str {
        &self.name
    }
}

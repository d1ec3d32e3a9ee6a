//! One direction of a port's cable: impairments, frames in flight, counters.
//!
//! A perfect link passes frames straight through. An impaired one runs each
//! frame through [`ImpairState`] and, if the link delays, parks it in a
//! [`DelayQueue`] until its release time. Each link direction has its own
//! ChaCha8 RNG seeded from the bridge seed, the port number and the
//! direction.

use ethdev::stats::DropReason;
use ethdev::{Instant, Mbuf, Mempool, Owner};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::delay::DelayQueue;
use crate::impair::{ImpairState, Impairments};
use crate::port::{Direction, PortId};
use crate::stats::LinkStats;

/// Where the bridge's own buffers (flood copies, duplicates) come from.
pub(crate) struct Copier {
    /// The bridge's pool.
    pub pool: Mempool,
    /// Owner recorded on copies.
    pub owner: Owner,
}

impl Copier {
    /// A deep copy of `mbuf`, or `None` if the pool is exhausted.
    pub fn copy(&self, mbuf: &Mbuf) -> Option<Mbuf> {
        mbuf.copy_to(&self.pool, self.owner)
    }
}

/// One direction of one port's link.
pub(crate) struct Link {
    stats: LinkStats,
    rng: ChaCha8Rng,
    impair: Option<ImpairState>,
    /// `impair.is_none()`, kept as a flag for the fast path.
    perfect: bool,
    queue: DelayQueue,
    flap_downs: u64,
}

impl Link {
    /// A link with `config`, its RNG derived from `seed`, port and direction.
    pub fn new(seed: u64, port: PortId, direction: Direction, config: Impairments, now: Instant) -> Link {
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&seed.to_le_bytes());
        key[8..10].copy_from_slice(&port.0.to_le_bytes());
        key[10] = direction.index() as u8 + 1;
        let mut link = Link {
            stats: LinkStats::default(),
            rng: ChaCha8Rng::from_seed(key),
            impair: None,
            perfect: true,
            queue: DelayQueue::default(),
            flap_downs: 0,
        };
        link.configure(config, now);
        link
    }

    /// Replaces the impairments; the RNG stream and in-flight frames stay.
    pub fn configure(&mut self, config: Impairments, now: Instant) {
        self.flap_downs = config.flap.map_or(0, |flap| flap.downs_started(now));
        self.impair = ImpairState::new(config, now);
        self.perfect = self.impair.is_none();
    }

    /// The link's counters.
    pub fn stats(&self) -> &LinkStats {
        &self.stats
    }

    /// The link's counters, for the bridge's own bookkeeping.
    pub fn stats_mut(&mut self) -> &mut LinkStats {
        &mut self.stats
    }

    /// Whether frames pass without impairments.
    pub fn is_perfect(&self) -> bool {
        self.perfect
    }

    /// Frames in the delay queue.
    pub fn in_flight(&self) -> usize {
        self.queue.len()
    }

    /// Counts a frame of `bytes` in and as dropped for `reason` (the
    /// caller drops the buffer, if there is one).
    pub fn refuse(&mut self, bytes: usize, reason: DropReason) {
        self.stats.count_in(bytes);
        self.stats.count_drop(reason);
    }

    /// Puts a frame on the link at `now`: it is dropped, appended to `out`,
    /// or queued; a duplicate may follow it.
    #[inline(always)]
    pub fn send(&mut self, mbuf: Mbuf, now: Instant, copier: &Copier, out: &mut Vec<Mbuf>) {
        self.stats.count_in(mbuf.len());
        match self.perfect {
            true => self.emit(mbuf, out),
            false => self.impair(mbuf, now, copier, out),
        }
    }

    /// The impaired path of [`Link::send`].
    fn impair(&mut self, mbuf: Mbuf, now: Instant, copier: &Copier, out: &mut Vec<Mbuf>) {
        let Some(state) = self.impair.as_mut() else {
            self.emit(mbuf, out);
            return;
        };
        if let Err(reason) = state.admit(mbuf.data(), now, &mut self.rng) {
            self.stats.count_drop(reason);
            return;
        }
        let copy = if state.duplicate(&mut self.rng) { copier.copy(&mbuf) } else { None };
        self.pass(mbuf, now, out);
        if let Some(copy) = copy {
            self.stats.duplicated += 1;
            self.pass(copy, now, out);
        }
    }

    /// Appends frames due by `now` to `out`, or drops them as `LinkDown`
    /// when the far end cannot take them.
    pub fn release(&mut self, now: Instant, deliverable: bool, out: &mut Vec<Mbuf>) {
        while let Some(mbuf) = self.queue.pop_due(now) {
            match deliverable {
                true => self.emit(mbuf, out),
                false => self.stats.count_drop(DropReason::LinkDown),
            }
        }
    }

    /// The next time something happens on the link after `now`: a release
    /// or the start of a flap's down window.
    pub fn next_event(&self, now: Instant) -> Option<Instant> {
        let flap = self.impair.as_ref().and_then(ImpairState::flap);
        let flap_at = flap.map(|flap| flap.next_down_after(now));
        [self.queue.next_release(), flap_at].into_iter().flatten().min()
    }

    /// Whether a flap down window began since the last call.
    pub fn flap_began(&mut self, now: Instant) -> bool {
        let Some(flap) = self.impair.as_ref().and_then(ImpairState::flap) else {
            return false;
        };
        let started = flap.downs_started(now);
        let began = started > self.flap_downs;
        self.flap_downs = started;
        began
    }

    /// Corrupts (a corrupted frame's checksums are no longer believed, see
    /// [`Mbuf::distrust_checksums`]), then delays or emits, one admitted frame.
    fn pass(&mut self, mut mbuf: Mbuf, now: Instant, out: &mut Vec<Mbuf>) {
        let Some(state) = self.impair.as_ref() else {
            self.emit(mbuf, out);
            return;
        };
        if state.corrupt(mbuf.data_mut(), &mut self.rng) {
            mbuf.distrust_checksums();
            self.stats.corrupted += 1;
        }
        match state.release_time(now, &mut self.rng) {
            Some(at) => self.queue.push(at, mbuf),
            None => self.emit(mbuf, out),
        }
    }

    #[inline(always)]
    fn emit(&mut self, mbuf: Mbuf, out: &mut Vec<Mbuf>) {
        self.stats.count_out(mbuf.len());
        out.push(mbuf);
    }
}

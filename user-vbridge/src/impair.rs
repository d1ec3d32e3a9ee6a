//! Link impairments: what an imperfect cable does to the frames on it.
//!
//! [`Impairments`] is the configuration of one direction of one link, in the
//! spirit of Linux netem: loss (uniform and Gilbert–Elliott bursts), delay
//! with jitter, reorder by holding frames back, duplication, bit corruption,
//! a token-bucket rate limit, an MTU and a periodic link flap.
//! [`ImpairState`] applies it frame by frame, drawing every random decision
//! from the link's own RNG in a fixed order, so a run is reproducible from
//! its seed and one link's traffic never shifts another link's draws.

use std::time::Duration;

use ethdev::error::ConfigError;
use ethdev::stats::DropReason;
use ethdev::Instant;
use rand::RngExt;
use rand_chacha::ChaCha8Rng;

use crate::frame::L2Header;

/// Bits per byte times nanoseconds per second: the token bucket's unit.
const TOKEN_SCALE: u128 = 8 * 1_000_000_000;

/// Bursty loss: a two-state (good/bad) Markov chain, one step per frame.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GilbertElliott {
    /// Per-frame probability of moving from the good to the bad state.
    pub p_good_to_bad: f64,
    /// Per-frame probability of moving from the bad back to the good state;
    /// the mean burst length is its inverse.
    pub p_bad_to_good: f64,
    /// Loss probability in the good state (usually 0).
    pub loss_good: f64,
    /// Loss probability in the bad state (usually 1).
    pub loss_bad: f64,
}

/// A policer: frames beyond `bits_per_sec` with `burst_bytes` of slack are
/// dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Sustained rate in bits per second (frame bytes, no preamble or gap).
    pub bits_per_sec: u64,
    /// Bucket depth in bytes: how much may pass back to back.
    pub burst_bytes: u32,
}

/// Holding some frames back so later ones overtake them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Reorder {
    /// Probability that a frame is held back.
    pub probability: f64,
    /// How much longer a held-back frame takes.
    pub extra_delay: Duration,
}

/// A link that goes down for `down` at the start of every `period`, the
/// first time at `offset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flap {
    /// Start of the first down window.
    pub offset: Duration,
    /// Time from one down window's start to the next.
    pub period: Duration,
    /// Length of each down window.
    pub down: Duration,
}

/// Everything one direction of a link does to frames. The default is a
/// perfect link, which the bridge forwards on its fast path.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Impairments {
    /// Probability that a frame is lost, independently of the others.
    pub loss: f64,
    /// Bursty loss, on top of `loss`.
    pub burst_loss: Option<GilbertElliott>,
    /// Fixed propagation delay.
    pub delay: Duration,
    /// Delay varies uniformly in `delay ± jitter` (floored at zero); as in
    /// netem, frames may overtake each other.
    pub jitter: Duration,
    /// Holding frames back.
    pub reorder: Option<Reorder>,
    /// Probability that a frame arrives twice.
    pub duplicate: f64,
    /// Probability that one random bit after the Ethernet header is flipped.
    pub corrupt: f64,
    /// Rate limit.
    pub rate: Option<RateLimit>,
    /// Largest layer-3 payload (bytes after the Ethernet header and tags).
    pub mtu: Option<u32>,
    /// Periodic link flap.
    pub flap: Option<Flap>,
}

impl Impairments {
    /// Whether this is a perfect link.
    pub fn is_none(&self) -> bool {
        *self == Impairments::default()
    }

    /// Checks probabilities and periods; `field` names the link in errors.
    pub fn validate(&self, field: &str) -> Result<(), ConfigError> {
        check_probability(field, "loss", self.loss)?;
        check_probability(field, "duplicate", self.duplicate)?;
        check_probability(field, "corrupt", self.corrupt)?;
        if let Some(ge) = &self.burst_loss {
            check_probability(field, "burst_loss.p_good_to_bad", ge.p_good_to_bad)?;
            check_probability(field, "burst_loss.p_bad_to_good", ge.p_bad_to_good)?;
            check_probability(field, "burst_loss.loss_good", ge.loss_good)?;
            check_probability(field, "burst_loss.loss_bad", ge.loss_bad)?;
        }
        if let Some(reorder) = &self.reorder {
            check_probability(field, "reorder.probability", reorder.probability)?;
        }
        if let Some(rate) = &self.rate {
            if rate.bits_per_sec == 0 || rate.burst_bytes == 0 {
                return Err(refuse(field, "rate", "rate and burst must be positive"));
            }
        }
        if let Some(flap) = &self.flap {
            if flap.period.is_zero() || flap.down > flap.period {
                return Err(refuse(field, "flap", "needs a positive period and down <= period"));
            }
        }
        Ok(())
    }

    /// Whether frames go through the link's delay queue.
    fn delays(&self) -> bool {
        !self.delay.is_zero() || !self.jitter.is_zero() || self.reorder.is_some()
    }
}

impl Flap {
    /// Whether the link is in a down window at `now`.
    pub fn is_down(&self, now: Instant) -> bool {
        let (offset, period, down) = (nanos(self.offset), nanos(self.period), nanos(self.down));
        now.as_nanos() >= offset && (now.as_nanos() - offset) % period < down
    }

    /// How many down windows have started by `now`.
    pub(crate) fn downs_started(&self, now: Instant) -> u64 {
        let offset = nanos(self.offset);
        match now.as_nanos().checked_sub(offset) {
            Some(since) => since / nanos(self.period) + 1,
            None => 0,
        }
    }

    /// Start of the first down window strictly after `now`.
    pub(crate) fn next_down_after(&self, now: Instant) -> Instant {
        let (offset, period) = (nanos(self.offset), nanos(self.period));
        let started = self.downs_started(now);
        Instant::from_nanos(offset.saturating_add(started.saturating_mul(period)))
    }
}

/// A token bucket in units of bit-nanoseconds, so refills are exact integers.
#[derive(Clone, Debug)]
struct TokenBucket {
    tokens: u128,
    capacity: u128,
    rate: u128,
    last: Instant,
}

impl TokenBucket {
    fn new(limit: &RateLimit, now: Instant) -> TokenBucket {
        let capacity = u128::from(limit.burst_bytes) * TOKEN_SCALE;
        TokenBucket { tokens: capacity, capacity, rate: u128::from(limit.bits_per_sec), last: now }
    }

    fn admit(&mut self, bytes: usize, now: Instant) -> bool {
        let elapsed = u128::from(now.as_nanos().saturating_sub(self.last.as_nanos()));
        self.last = self.last.max(now);
        self.tokens = (self.tokens + elapsed * self.rate).min(self.capacity);
        let cost = bytes as u128 * TOKEN_SCALE;
        if cost > self.tokens {
            return false;
        }
        self.tokens -= cost;
        true
    }
}

/// The running state of one impaired link direction.
#[derive(Clone, Debug)]
pub(crate) struct ImpairState {
    config: Impairments,
    bad: bool,
    bucket: Option<TokenBucket>,
}

impl ImpairState {
    /// State for `config` starting at `now`, or `None` for a perfect link.
    pub fn new(config: Impairments, now: Instant) -> Option<ImpairState> {
        if config.is_none() {
            return None;
        }
        let bucket = config.rate.as_ref().map(|rate| TokenBucket::new(rate, now));
        Some(ImpairState { config, bad: false, bucket })
    }

    /// The flap schedule, if any.
    pub fn flap(&self) -> Option<&Flap> {
        self.config.flap.as_ref()
    }

    /// Decides whether a frame entering the link at `now` survives flap,
    /// MTU, rate limit and loss.
    pub fn admit(&mut self, frame: &[u8], now: Instant, rng: &mut ChaCha8Rng) -> Result<(), DropReason> {
        if self.flap().is_some_and(|flap| flap.is_down(now)) {
            return Err(DropReason::LinkDown);
        }
        if self.config.mtu.is_some_and(|mtu| payload_len(frame) > mtu as usize) {
            return Err(DropReason::Oversize);
        }
        if self.bucket.as_mut().is_some_and(|bucket| !bucket.admit(frame.len(), now)) {
            return Err(DropReason::RateLimit);
        }
        if self.lose(rng) {
            return Err(DropReason::Loss);
        }
        Ok(())
    }

    /// Whether an admitted frame is duplicated.
    pub fn duplicate(&self, rng: &mut ChaCha8Rng) -> bool {
        self.config.duplicate > 0.0 && rng.random_bool(self.config.duplicate)
    }

    /// Maybe flips one bit after the Ethernet header; whether it did.
    pub fn corrupt(&self, frame: &mut [u8], rng: &mut ChaCha8Rng) -> bool {
        if self.config.corrupt == 0.0 || !rng.random_bool(self.config.corrupt) {
            return false;
        }
        let start = L2Header::parse(frame).map_or(frame.len(), |header| header.len);
        if start >= frame.len() {
            return false;
        }
        let at = rng.random_range(start..frame.len());
        frame[at] ^= 1 << rng.random_range(0..8u32);
        true
    }

    /// When a frame entering at `now` leaves the link, or `None` if the link
    /// has no delay, jitter or reorder and frames pass at once.
    pub fn release_time(&self, now: Instant, rng: &mut ChaCha8Rng) -> Option<Instant> {
        if !self.config.delays() {
            return None;
        }
        let (delay, jitter) = (nanos(self.config.delay), nanos(self.config.jitter));
        let mut total = delay;
        if jitter > 0 {
            let draw = rng.random_range(0..=jitter.saturating_mul(2));
            total = delay.saturating_add(draw).saturating_sub(jitter);
        }
        if let Some(reorder) = &self.config.reorder {
            if rng.random_bool(reorder.probability) {
                total = total.saturating_add(nanos(reorder.extra_delay));
            }
        }
        Some(Instant::from_nanos(now.as_nanos().saturating_add(total)))
    }

    fn lose(&mut self, rng: &mut ChaCha8Rng) -> bool {
        let burst = self.config.burst_loss.is_some_and(|ge| self.step_burst(&ge, rng));
        let uniform = self.config.loss > 0.0 && rng.random_bool(self.config.loss);
        burst || uniform
    }

    /// Draws the loss of one frame in the current state, then the state
    /// transition.
    fn step_burst(&mut self, ge: &GilbertElliott, rng: &mut ChaCha8Rng) -> bool {
        let (loss, leave) = match self.bad {
            true => (ge.loss_bad, ge.p_bad_to_good),
            false => (ge.loss_good, ge.p_good_to_bad),
        };
        let lost = rng.random_bool(loss);
        if rng.random_bool(leave) {
            self.bad = !self.bad;
        }
        lost
    }
}

/// Bytes after the Ethernet header and its tags.
fn payload_len(frame: &[u8]) -> usize {
    L2Header::parse(frame).map_or(0, |header| frame.len() - header.len)
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

fn check_probability(field: &str, name: &str, p: f64) -> Result<(), ConfigError> {
    if (0.0..=1.0).contains(&p) {
        return Ok(());
    }
    Err(refuse(field, name, "must be a probability between 0 and 1"))
}

fn refuse(field: &str, name: &str, reason: &str) -> ConfigError {
    ConfigError::new(format!("{field}.{name}"), reason)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn flap_windows() {
        let flap = Flap {
            offset: Duration::from_millis(10),
            period: Duration::from_millis(100),
            down: Duration::from_millis(20),
        };
        let at = Instant::from_millis;
        assert!(!flap.is_down(at(9)) && flap.is_down(at(10)) && flap.is_down(at(29)));
        assert!(!flap.is_down(at(30)) && flap.is_down(at(115)));
        assert_eq!((flap.downs_started(at(9)), flap.downs_started(at(110))), (0, 2));
        assert_eq!(flap.next_down_after(at(0)), at(10));
        assert_eq!(flap.next_down_after(at(10)), at(110));
    }

    #[test]
    fn token_bucket_refills_exactly() {
        let limit = RateLimit { bits_per_sec: 8_000, burst_bytes: 100 };
        let mut bucket = TokenBucket::new(&limit, Instant::ZERO);
        assert!(bucket.admit(100, Instant::ZERO));
        assert!(!bucket.admit(1, Instant::ZERO));
        assert!(!bucket.admit(10, Instant::from_millis(9)));
        assert!(bucket.admit(10, Instant::from_millis(10)));
    }

    #[test]
    fn nan_and_out_of_range_probabilities_are_refused() {
        let nan = Impairments { loss: f64::NAN, ..Impairments::default() };
        assert_eq!(nan.validate("p0.ingress").unwrap_err().field, "p0.ingress.loss");
        let big = Impairments { corrupt: 1.5, ..Impairments::default() };
        assert!(big.validate("x").is_err());
    }

    #[test]
    fn corruption_spares_the_ethernet_header() {
        let config = Impairments { corrupt: 1.0, ..Impairments::default() };
        let state = ImpairState::new(config, Instant::ZERO).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut header_only = [2u8; 14];
        assert!(!state.corrupt(&mut header_only, &mut rng));
        let mut frame = [2u8; 15];
        assert!(state.corrupt(&mut frame, &mut rng));
        assert_eq!((&frame[..14], (frame[14] ^ 2).count_ones()), (&[2u8; 14][..], 1));
    }
}

//! How a bridge and its ports are configured.

use std::time::Duration;

use ethdev::error::ConfigError;
use ethdev::Owner;

use crate::impair::Impairments;

/// Linux's default FDB ageing time.
pub const DEFAULT_AGEING_TIME: Duration = Duration::from_secs(300);
/// Buffers in the bridge's own pool (flood copies, duplicates) by default.
pub const DEFAULT_POOL_CAPACITY: u32 = 4096;

/// What the FDB does when a new address arrives and the learned-entry limit
/// is reached.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LimitPolicy {
    /// Do not learn the new address (Linux bridge `max_learned`).
    #[default]
    StopLearning,
    /// Evict the least recently seen learned entry (OVS `max-mac-entries`).
    EvictOldest,
}

/// Bridge-wide settings.
#[derive(Clone, Debug, PartialEq)]
pub struct BridgeConfig {
    /// Name used in errors and reports.
    pub name: String,
    /// A learned entry not refreshed for this long is removed.
    pub ageing_time: Duration,
    /// Maximum number of learned (non-static) entries; `None` = unlimited.
    pub fdb_limit: Option<usize>,
    /// What to do when `fdb_limit` is reached.
    pub limit_policy: LimitPolicy,
    /// Seed of every link's impairment RNG.
    pub seed: u64,
    /// Buffers in the pool `Bridge::new` creates for copies.
    pub pool_capacity: u32,
    /// Owner recorded on the buffers the bridge allocates.
    pub owner: Owner,
}

impl Default for BridgeConfig {
    fn default() -> Self {
        BridgeConfig {
            name: "vbridge".into(),
            ageing_time: DEFAULT_AGEING_TIME,
            fdb_limit: None,
            limit_policy: LimitPolicy::default(),
            seed: 0,
            pool_capacity: DEFAULT_POOL_CAPACITY,
            owner: Owner::NONE,
        }
    }
}

impl BridgeConfig {
    /// Checks values that would make the bridge misbehave.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.ageing_time.is_zero() {
            return Err(ConfigError::new("bridge.ageing_time", "must be positive"));
        }
        if u64::try_from(self.ageing_time.as_nanos()).is_err() {
            return Err(ConfigError::new("bridge.ageing_time", "must fit in 2^64 nanoseconds"));
        }
        Ok(())
    }
}

/// Per-port settings.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PortConfig {
    /// Allow frames back out of the port they came in on (Linux
    /// `hairpin_mode`); off by default.
    pub hairpin: bool,
    /// Impairments of the port-to-bridge direction.
    pub ingress: Impairments,
    /// Impairments of the bridge-to-port direction.
    pub egress: Impairments,
}

//! Shared-memory domains: what processes of one dtnet "file prefix" share.
//!
//! A domain is DPDK's `--file-prefix` (and gazelle's `unix_prefix`): one
//! runtime directory ([`dir`]) holding a memory file that every process of
//! the domain maps, plus three lock files. The first process to open it as
//! primary creates the memory; secondaries attach to it. Inside the memory
//! ([`layout`]) a table names the objects (rings, pools, ports, stats), as
//! DPDK's memzones do, and objects refer to each other by offset, so each
//! process may map the file at any address, which DPDK cannot allow.
//!
//! Liveness is kept by `flock`s, which the kernel drops when a process dies,
//! however it dies:
//! - `primary.lock`: held exclusively by the primary for its lifetime, and
//!   holding its nonce and pid, so a second primary is refused naming the
//!   first, and a secondary can ask at any time whether the primary lives;
//! - `procs.lock`: held shared by every attached process, so `clean` (and
//!   the last process out, which cleans up after itself) can tell whether
//!   anybody is still attached;
//! - `registry.lock`: held exclusively while an object is added.

pub mod control;
pub mod dir;
pub mod domain;
pub mod layout;
pub mod map;
pub mod procs;
pub mod ring;
pub mod rules;
pub(crate) mod words;

use std::path::{Path, PathBuf};

pub use domain::{Domain, DomainInfo, DomainOptions, Role, Zone};
pub use layout::Entry;

/// Why a domain could not be opened, or an object not be made or found.
#[derive(Debug, thiserror::Error)]
pub enum ShmError {
    /// A prefix that cannot name a directory.
    #[error("bad domain prefix {prefix:?}: {reason}")]
    BadPrefix {
        /// The prefix, escaped.
        prefix: String,
        /// Why.
        reason: String,
    },
    /// An object name that does not fit the table.
    #[error("bad object name {name:?}: names are 1 to {max} printable ASCII characters")]
    BadName {
        /// The name, escaped.
        name: String,
        /// Longest name accepted.
        max: usize,
    },
    /// A second primary on a live prefix.
    #[error(
        "domain {prefix:?}: a primary process (pid {pid}) is already running. Is another primary process running?"
    )]
    PrimaryRunning {
        /// The domain.
        prefix: String,
        /// The running primary's pid.
        pid: u32,
    },
    /// A primary whose prefix still has processes of an earlier primary.
    #[error("domain {prefix:?}: processes of an earlier primary are still attached; stop them or pick another prefix")]
    StillAttached {
        /// The domain.
        prefix: String,
    },
    /// A secondary with no primary to attach to.
    #[error("domain {prefix:?}: no primary process is running (waited {waited_ms} ms); start the primary first, or wait longer")]
    NoPrimary {
        /// The domain.
        prefix: String,
        /// How long the secondary waited.
        waited_ms: u128,
    },
    /// A domain made by another layout version of dtnet.
    #[error("domain was made by layout version {found}, this dtnet reads version {expected}")]
    Version {
        /// Version in the file.
        found: u64,
        /// Version this build reads.
        expected: u64,
    },
    /// A lookup of a name nobody created.
    #[error("domain {prefix:?}: no object named {name:?}")]
    NotFound {
        /// The domain.
        prefix: String,
        /// The name looked up.
        name: String,
    },
    /// An object created twice.
    #[error("domain {prefix:?}: an object named {name:?} already exists")]
    Exists {
        /// The domain.
        prefix: String,
        /// The name.
        name: String,
    },
    /// No room left in the memory or the object table.
    #[error("domain is full: {0}")]
    Full(String),
    /// The primary refused this process (another user, a malformed greeting).
    #[error("the primary refused this process: {0}")]
    Refused(String),
    /// The primary denied a request (a flow rule) and said why.
    #[error("the primary denied the request: {0}")]
    Denied(String),
    /// The memory holds values that cannot be right.
    #[error("domain memory is corrupt: {0}")]
    Corrupt(String),
    /// `clean` on a domain some process still holds.
    #[error("domain {prefix:?} is in use by live processes{}; stop them first", primary.map(|p| format!(" (primary pid {p})")).unwrap_or_default())]
    InUse {
        /// The domain.
        prefix: String,
        /// Its live primary, if any.
        primary: Option<u32>,
    },
    /// A file operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
}

impl ShmError {
    pub(crate) fn io(path: &Path, source: impl Into<std::io::Error>) -> ShmError {
        ShmError::Io { path: path.to_owned(), source: source.into() }
    }
}

//! Where one process of a multi-process sample stands: its domain and its
//! number among the processes (DPDK's `--file-prefix`, `--num-procs` and
//! `--proc-id`), with the checks every sample makes of them.

use std::path::PathBuf;
use std::time::Duration;

use ethdev::shm::{Domain, DomainOptions, Role};

/// A process's domain and number.
#[derive(Clone, Debug)]
pub struct Place {
    /// The domain's prefix.
    pub prefix: String,
    /// Runtime directory holding domains.
    pub base: PathBuf,
    /// Processes in the run (DPDK's `--num-procs`).
    pub procs: u16,
    /// This process's number (DPDK's `--proc-id`); the primary is 0.
    pub proc_id: u16,
    /// How long a secondary waits for its primary.
    pub wait: Duration,
}

impl Place {
    /// Opens the domain, as its primary if nobody made it yet, else as a
    /// secondary (waiting up to `wait` for a primary that is starting).
    pub fn open(&self) -> Result<Domain, String> {
        let options = DomainOptions { base: self.base.clone(), wait: self.wait, ..DomainOptions::default() };
        Domain::open(&self.prefix, Role::Auto, &options).map_err(|e| e.to_string())
    }

    /// An error unless this process, which became the primary, is process 0.
    pub fn first(&self) -> Result<(), String> {
        match self.proc_id {
            0 => Ok(()),
            n => Err(format!("process {n} became the primary: start process 0 first")),
        }
    }

    /// An error unless this process's number is a secondary's: 1 to procs - 1.
    pub fn secondary(&self) -> Result<(), String> {
        match self.proc_id {
            n if n == 0 || n >= self.procs => {
                Err(format!("--proc-id {n} of a secondary must be between 1 and {}", self.procs.saturating_sub(1)))
            }
            _ => Ok(()),
        }
    }
}

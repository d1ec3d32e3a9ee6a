//! Errors of the DPDK wrapper: each names its cause (the DPDK call and its
//! errno text, or the limit a request broke), so a bad argument list, a
//! missing device or an unsupported offload never panics.

use thiserror::Error;

/// Why a DPDK operation failed.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum Error {
    /// `rte_eal_init` already ran (or was tried) in this process; DPDK allows
    /// one EAL per process, and `cargo nextest` runs each test in its own.
    #[error("DPDK's EAL was already initialised in this process (it can be initialised once per process)")]
    EalAlreadyInitialised,
    /// An argument the wrapper refuses: a NUL byte in an EAL argument, or
    /// one EAL would act on by ending the process (`--help`).
    #[error("bad argument: {0}")]
    BadArgument(String),
    /// `rte_eal_init` failed; `said` is what EAL gave as the cause on
    /// stderr (its usage text, printed on stdout, is left out).
    #[error("rte_eal_init failed: {message} (errno {errno}): {said}")]
    EalInit {
        /// DPDK's (positive) errno.
        errno: i32,
        /// `rte_strerror(errno)`.
        message: String,
        /// EAL's last lines on stderr, e.g. getopt's
        /// `unrecognized option '--bad'`.
        said: String,
    },
    /// A DPDK call failed; `errno` is DPDK's (positive) error number.
    #[error("{call} failed: {message} (errno {errno})")]
    Dpdk {
        /// The DPDK function that failed, with its subject (port, pool).
        call: String,
        /// The positive errno it returned or set.
        errno: i32,
        /// `rte_strerror(errno)`.
        message: String,
    },
    /// No port has this name (e.g. a `--vdev` that was not given).
    #[error("no DPDK port is named {0:?}")]
    NoSuchDevice(String),
    /// No port has this id.
    #[error("no DPDK port has id {0}")]
    NoSuchPort(u16),
    /// The port is already configured by another [`crate::Port`] handle.
    #[error("DPDK port {0} is already in use by another Port handle")]
    PortInUse(u16),
    /// The port's queues were already handed out by [`crate::Port::start`].
    #[error("DPDK port {0} is already started; its queues were handed out once")]
    AlreadyStarted(u16),
    /// More queues than the device has.
    #[error("port {port} ({driver}): {requested} {kind} queues requested, the device has at most {max}")]
    TooManyQueues {
        /// Port id.
        port: u16,
        /// Driver name.
        driver: String,
        /// `rx` or `tx`.
        kind: &'static str,
        /// Queues asked for.
        requested: u16,
        /// Queues the device has.
        max: u16,
    },
    /// RSS hash types the device cannot hash on.
    #[error("port {port} ({driver}): RSS hash types {requested:#x} unsupported by device (it offers {supported:#x})")]
    RssUnsupported {
        /// Port id.
        port: u16,
        /// Driver name.
        driver: String,
        /// `RTE_ETH_RSS_*` bits asked for.
        requested: u64,
        /// `RTE_ETH_RSS_*` bits the device offers.
        supported: u64,
    },
    /// Offloads the device cannot do.
    #[error("port {port} ({driver}): {kind} offloads {requested:#x} unsupported by device (it offers {supported:#x})")]
    OffloadUnsupported {
        /// Port id.
        port: u16,
        /// Driver name.
        driver: String,
        /// `rx` or `tx`.
        kind: &'static str,
        /// `RTE_ETH_*_OFFLOAD_*` bits asked for.
        requested: u64,
        /// The bits the device offers.
        supported: u64,
    },
    /// A flow rule the device (or dtnet's translation) cannot take.
    #[error("port {port} ({driver}): flow rule unsupported by device: {reason}")]
    FlowUnsupported {
        /// Port id.
        port: u16,
        /// Driver name.
        driver: String,
        /// What the driver or the translation said.
        reason: String,
    },
    /// A RETA whose size the device does not have (0 if it has none).
    #[error("port {port} ({driver}): a RETA of {requested} entries, but the device's RETA has {device} entries")]
    RetaSize {
        /// Port id.
        port: u16,
        /// Driver name.
        driver: String,
        /// Entries given.
        requested: usize,
        /// The device's RETA size.
        device: u16,
    },
    /// A RETA entry names a queue the port does not have.
    #[error("port {port}: RETA entry {index} is queue {queue}, but the port has {queues} rx queues")]
    RetaQueue {
        /// Port id.
        port: u16,
        /// Entry index.
        index: usize,
        /// Queue named.
        queue: u16,
        /// Rx queues configured.
        queues: u16,
    },
    /// An RSS key whose length the device does not take.
    #[error("port {port} ({driver}): RSS key of {requested} bytes, the device takes {device}")]
    RssKeyLength {
        /// Port id.
        port: u16,
        /// Driver name.
        driver: String,
        /// Key bytes given.
        requested: usize,
        /// The device's key size.
        device: u8,
    },
    /// A frame longer than one mbuf's data room (frames are not chained).
    #[error("frame {index} is {len} bytes, longer than the mbuf data room of {room}")]
    FrameTooLong {
        /// Index of the frame in the burst.
        index: usize,
        /// Its length.
        len: usize,
        /// The pool's data room less headroom.
        room: u16,
    },
    /// The pool had no free mbufs for a transmit burst.
    #[error("mbuf pool exhausted: no {0} free mbufs for the burst")]
    PoolExhausted(usize),
}

/// A result of the DPDK wrapper.
pub type Result<T> = std::result::Result<T, Error>;

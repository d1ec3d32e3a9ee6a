//! The time source application handles read.
//!
//! Stacks are sans-IO and never read a clock; an [`Api`](crate::Api) that
//! polls a stack itself (run-to-completion) needs the time, and the
//! executor decides what time is: virtual in a simulation, monotonic on
//! real threads.

/// The time source an [`Api`](crate::Api) reads when it polls a stack
/// itself (run-to-completion): virtual time in a simulation, monotonic time
/// on real threads.
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> ethdev::Instant;
}

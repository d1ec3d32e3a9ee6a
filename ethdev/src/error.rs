//! Errors shared by every layer of the data path.
//!
//! Configuration mistakes name the offending field so a user can fix the
//! scenario or code without reading ours; flow-rule errors say which part of
//! the rule (attribute, pattern item, action) was refused, like
//! `rte_flow_error`.

use thiserror::Error;

/// A configuration value that was refused, naming the field it came from.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid {field}: {reason}")]
pub struct ConfigError {
    /// Dotted path of the refused field, e.g. `rss.key` or `rx_queues`.
    pub field: String,
    /// Why it was refused, in words a user can act on.
    pub reason: String,
}

impl ConfigError {
    /// A refusal of `field` for `reason`.
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self { field: field.into(), reason: reason.into() }
    }
}

/// Which part of a flow rule an error refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowErrorCause {
    /// The rule's attributes (group, priority, direction).
    Attr,
    /// The pattern item at this index.
    Item(usize),
    /// The action at this index.
    Action(usize),
    /// The rule as a whole (e.g. no such rule, table full).
    Rule,
}

/// Why a flow rule was refused or could not be found.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("flow rule refused at {cause:?}: {message}")]
pub struct FlowError {
    /// The part of the rule at fault.
    pub cause: FlowErrorCause,
    /// What is wrong with it.
    pub message: String,
}

impl FlowError {
    /// An error about `cause` with a message.
    pub fn new(cause: FlowErrorCause, message: impl Into<String>) -> Self {
        Self { cause, message: message.into() }
    }
}

/// Errors from the `EthDev` control path.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DevError {
    /// A configuration value was refused.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A flow rule was refused.
    #[error(transparent)]
    Flow(#[from] FlowError),
    /// The call needs the port in another state (e.g. configure while started).
    #[error("port is {actual}, operation needs it {needed}")]
    State {
        /// The state the port is in.
        actual: &'static str,
        /// The state the operation needs.
        needed: &'static str,
    },
    /// Frames went missing: the port's counters do not add up (see
    /// [`crate::EthDev::check_accounting`]).
    #[error("{0}")]
    Accounting(String),
    /// The port does not support this operation or value.
    #[error("not supported: {0}")]
    Unsupported(String),
}

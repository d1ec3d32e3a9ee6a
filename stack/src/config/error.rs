//! Error types of the configuration loader.
//!
//! dtnet has one field-level refusal type, [`ethdev::error::ConfigError`] (a field and a
//! reason), used by every data-path constructor. The loader's error is a different thing and
//! is named for it: [`ConfigFileError`] is a diagnostic about a configuration *file*, carrying
//! its origin, line and key so it can be printed like a compiler message. The semantic checks
//! of [`StackConfig::validate`](super::StackConfig::validate) report a [`ValidationError`],
//! which names a gazelle key (and the key that requires a missing one) so the loader can turn
//! it into a [`ConfigFileError::Invalid`] pointing at the right line.

use std::fmt;
use std::path::PathBuf;

/// Why a configuration could not be loaded.
///
/// Every variant that comes from a file names its origin (usually the file name) and, when the
/// problem sits on a particular line, that line; problems tied to one setting name its key.
/// The `Display` form reads like a compiler diagnostic:
/// `lstack.conf:7: key "num_cpus": expected a CPU list like "2,3" or "2-5", got "two"`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigFileError {
    /// The file could not be read.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The path that was opened.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The text is not well-formed (lstack.conf or TOML syntax, binary data, or not UTF-8);
    /// the only variant whose `Display` form also gives the column, as `origin:line:column:`.
    #[error("{origin}:{line}:{column}: {}{message}", KeyPrefix(.key.as_deref()))]
    Syntax {
        /// Where the text came from.
        origin: String,
        /// 1-based line of the offending token.
        line: usize,
        /// 1-based column (in characters) of the offending token.
        column: usize,
        /// The top-level key being parsed, if any.
        key: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// A key that neither gazelle's lstack.conf nor dtnet knows.
    #[error("{origin}:{line}: key \"{key}\": unknown key")]
    UnknownKey {
        /// Where the text came from.
        origin: String,
        /// 1-based line of the key.
        line: usize,
        /// 1-based column of the key.
        column: usize,
        /// The key as written.
        key: String,
    },
    /// The same key is set twice.
    #[error("{origin}:{line}: key \"{key}\": set more than once (first set on line {first_line})")]
    DuplicateKey {
        /// Where the text came from.
        origin: String,
        /// 1-based line of the second occurrence.
        line: usize,
        /// 1-based column of the second occurrence.
        column: usize,
        /// The repeated key.
        key: String,
        /// 1-based line of the first occurrence.
        first_line: usize,
    },
    /// A value of the wrong type or format for its key.
    #[error("{origin}:{line}: key \"{key}\": {message}")]
    BadValue {
        /// Where the text came from.
        origin: String,
        /// 1-based line of the key.
        line: usize,
        /// 1-based column of the key.
        column: usize,
        /// The key whose value is bad.
        key: String,
        /// What was expected.
        message: String,
    },
    /// A key without a default is absent.
    #[error("{origin}: key \"{key}\": required but missing")]
    MissingKey {
        /// Where the text came from.
        origin: String,
        /// The missing key.
        key: String,
    },
    /// The values parse but are out of range or contradict each other (see
    /// [`StackConfig::validate`](super::StackConfig::validate)).
    #[error("{origin}{}: key \"{key}\": {message}", LineSuffix(*.line))]
    Invalid {
        /// Where the text came from.
        origin: String,
        /// 1-based line of the key; for a missing key, the line of the key that requires it;
        /// `None` when neither is in the file.
        line: Option<usize>,
        /// The key the problem is reported against.
        key: String,
        /// What is wrong.
        message: String,
    },
}

impl ConfigFileError {
    /// The key the error is about, if it is about one.
    pub fn key(&self) -> Option<&str> {
        match self {
            Self::Io { .. } => None,
            Self::Syntax { key, .. } => key.as_deref(),
            Self::UnknownKey { key, .. }
            | Self::DuplicateKey { key, .. }
            | Self::BadValue { key, .. }
            | Self::MissingKey { key, .. }
            | Self::Invalid { key, .. } => Some(key),
        }
    }

    /// The 1-based line the error points at, if any.
    pub fn line(&self) -> Option<usize> {
        match self {
            Self::Io { .. } | Self::MissingKey { .. } => None,
            Self::Syntax { line, .. }
            | Self::UnknownKey { line, .. }
            | Self::DuplicateKey { line, .. }
            | Self::BadValue { line, .. } => Some(*line),
            Self::Invalid { line, .. } => *line,
        }
    }
}

/// A semantic problem found by [`StackConfig::validate`](super::StackConfig::validate): the key
/// it is reported against and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("key \"{key}\": {message}")]
pub struct ValidationError {
    /// The configuration key (gazelle's spelling) the problem is reported against.
    pub key: &'static str,
    /// What is wrong, in a sentence fragment.
    pub message: String,
    /// For a key that is missing but required by another: that other key, whose line the
    /// error points at when `key` itself is not in the file.
    pub required_by: Option<&'static str>,
}

impl ValidationError {
    /// Builds an error for `key`.
    pub(crate) fn new(key: &'static str, message: impl Into<String>) -> Self {
        Self { key, message: message.into(), required_by: None }
    }

    /// Builds an error for `key`, which is missing although `required_by` needs it.
    pub(crate) fn missing(key: &'static str, required_by: &'static str, message: impl Into<String>) -> Self {
        Self { key, message: message.into(), required_by: Some(required_by) }
    }
}

/// Renders `key "k": ` for an optional key; public so that every dtnet
/// diagnostic (stack configs, scenarios) reads alike.
pub struct KeyPrefix<'a>(pub Option<&'a str>);

impl fmt::Display for KeyPrefix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(key) => write!(f, "key \"{key}\": "),
            None => Ok(()),
        }
    }
}

/// Renders `:line` for an optional line (see [`KeyPrefix`]).
pub struct LineSuffix(pub Option<usize>);

impl fmt::Display for LineSuffix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(line) => write!(f, ":{line}"),
            None => Ok(()),
        }
    }
}

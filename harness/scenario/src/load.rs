//! Reading a scenario file: TOML syntax, then the serde types of
//! [`spec`](crate::spec) through `serde_path_to_error`, then the
//! resolution into a [`Plan`](crate::Plan). Every error names the file, the line and the
//! key path, the way stack config errors do:
//! `scenarios/x.toml:12: key "host[1].impairments.loss": expected a probability in 0.0..=1.0, got 2.5`.
//! The line comes from the span toml keeps on each error (or on the
//! `Spanned` keys that resolution checks), the key path from
//! `serde_path_to_error`.

use std::ops::Range;
use std::path::PathBuf;

use stack::config::{ConfigFileError, KeyPrefix, LineSuffix};

use crate::spec::ScenarioSpec;

/// Why a scenario could not be loaded or run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScenarioError {
    /// A file could not be read.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The path that was opened.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The text is not well-formed TOML, not UTF-8, or holds binary junk.
    #[error("{origin}:{line}:{column}: {message}")]
    Syntax {
        /// Where the text came from.
        origin: String,
        /// 1-based line of the offending token.
        line: usize,
        /// 1-based column (in characters) of the offending token.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// A key is unknown, a value is bad, or keys contradict each other.
    #[error("{origin}{}: {}{message}", LineSuffix(*.line), KeyPrefix(.key.as_deref()))]
    Invalid {
        /// Where the text came from.
        origin: String,
        /// 1-based line of the key, when known.
        line: Option<usize>,
        /// Path of the key, e.g. `host[1].impairments.loss`.
        key: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// The world could not be built or run.
    #[error("scenario {name}: {message}")]
    Run {
        /// The scenario's name.
        name: String,
        /// What failed.
        message: String,
    },
}

impl ScenarioError {
    /// The key path the error is about, if any.
    pub fn key(&self) -> Option<&str> {
        match self {
            ScenarioError::Invalid { key, .. } => key.as_deref(),
            _ => None,
        }
    }

    /// The 1-based column a syntax error points at, if any.
    pub fn column(&self) -> Option<usize> {
        match self {
            ScenarioError::Syntax { column, .. } => Some(*column),
            _ => None,
        }
    }

    /// The 1-based line the error points at, if any.
    pub fn line(&self) -> Option<usize> {
        match self {
            ScenarioError::Syntax { line, .. } => Some(*line),
            ScenarioError::Invalid { line, .. } => *line,
            _ => None,
        }
    }
}

/// The name toml gives the value inside a `Spanned` key; not part of any
/// path a user wrote.
const SPANNED_VALUE: &str = "$__serde_spanned_private_value";

/// `path` as the user wrote it: `host[1].impairments.loss`.
fn key_path(path: &serde_path_to_error::Path) -> String {
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            serde_path_to_error::Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            serde_path_to_error::Segment::Map { key } if key == SPANNED_VALUE => {}
            other => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(&other.to_string());
            }
        }
    }
    out
}

/// Where errors about one text point: its origin and its lines.
#[derive(Clone, Copy)]
pub(crate) struct Source<'a> {
    pub text: &'a str,
    pub origin: &'a str,
}

impl Source<'_> {
    /// The 1-based line of byte `offset`.
    pub fn line(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end].iter().filter(|&&b| b == b'\n').count() + 1
    }

    /// The 1-based column, in characters, of byte `offset` on its line.
    fn column(&self, offset: usize) -> usize {
        let mut end = offset.min(self.text.len());
        while !self.text.is_char_boundary(end) {
            end -= 1;
        }
        let line_start = self.text[..end].rfind('\n').map_or(0, |i| i + 1);
        self.text[line_start..end].chars().count() + 1
    }

    /// A [`ScenarioError::Syntax`] at byte `offset`.
    fn syntax(&self, offset: usize, message: impl Into<String>) -> ScenarioError {
        let (line, column) = (self.line(offset), self.column(offset));
        ScenarioError::Syntax { origin: self.origin.to_owned(), line, column, message: message.into() }
    }

    /// An [`ScenarioError::Invalid`] at `span` about `key`.
    pub fn error(&self, span: Range<usize>, key: impl Into<String>, message: impl Into<String>) -> ScenarioError {
        ScenarioError::Invalid {
            origin: self.origin.to_owned(),
            line: Some(self.line(span.start)),
            key: Some(key.into()),
            message: message.into(),
        }
    }

    /// An [`ScenarioError::Invalid`] about `key` that no one line shows.
    pub fn error_in_file(&self, key: impl Into<String>, message: impl Into<String>) -> ScenarioError {
        ScenarioError::Invalid {
            origin: self.origin.to_owned(),
            line: None,
            key: Some(key.into()),
            message: message.into(),
        }
    }

    /// Parses the text into the spec types, refusing binary junk first.
    pub fn deserialize(&self) -> Result<ScenarioSpec, ScenarioError> {
        stack::config::reject_binary(self.text, self.origin).map_err(from_config_syntax)?;
        let de = toml::Deserializer::parse(self.text)
            .map_err(|e| self.syntax(e.span().map_or(0, |s| s.start), e.message().trim()))?;
        serde_path_to_error::deserialize(de).map_err(|e| {
            let path = key_path(e.path());
            let inner = e.into_inner();
            ScenarioError::Invalid {
                origin: self.origin.to_owned(),
                line: inner.span().map(|s| self.line(s.start)),
                key: (!path.is_empty()).then_some(path),
                message: inner.message().trim().to_owned(),
            }
        })
    }
}

/// Decodes a scenario file's bytes: UTF-8 without binary junk, or a
/// [`ScenarioError::Syntax`] naming `origin`, line and column.
pub(crate) fn decode<'a>(bytes: &'a [u8], origin: &str) -> Result<&'a str, ScenarioError> {
    stack::config::decode_text(bytes, origin).map_err(from_config_syntax)
}

/// A text error of the shared decoder as a scenario error.
fn from_config_syntax(e: ConfigFileError) -> ScenarioError {
    match e {
        ConfigFileError::Syntax { origin, line, column, message, .. } => {
            ScenarioError::Syntax { origin, line, column, message }
        }
        other => ScenarioError::Invalid { origin: String::new(), line: None, key: None, message: other.to_string() },
    }
}

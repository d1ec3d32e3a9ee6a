//! Warnings of the configuration loader: settings that are accepted but do not act as written.

use std::fmt;

/// A setting that was accepted but has no effect, or not the effect its text suggests.
///
/// Loading never fails because of a warning; the warnings are kept on the loaded
/// [`StackConfig`](super::StackConfig) (field `warnings`, in file order) so that a caller can
/// print them. The `Display` form reads like the loader's errors:
/// `lstack.conf:12: key "rpc_msg_max": warning: ...`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigWarning {
    /// Where the text came from (usually the file name).
    pub origin: String,
    /// 1-based line of the key.
    pub line: usize,
    /// 1-based column of the key.
    pub column: usize,
    /// The key as written.
    pub key: String,
    /// Why the setting does not act as written.
    pub kind: WarningKind,
}

/// Why a [`ConfigWarning`] was raised.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WarningKind {
    /// A key of an earlier gazelle release that gazelle's current parser no longer reads.
    Retired {
        /// When gazelle's parser stopped reading the key (year and month of the change).
        removed: &'static str,
        /// The first tagged gazelle release without the key.
        absent_since: &'static str,
        /// The key or keys that took over its job, if any.
        replaced_by: Option<&'static str>,
        /// What became of the setting, in a sentence fragment.
        note: &'static str,
    },
    /// A key gazelle knows that has no effect in dtnet.
    Ignored {
        /// Why dtnet (or gazelle itself) does not act on it.
        reason: &'static str,
    },
    /// A key that another key overrides, as it does in gazelle.
    Overridden {
        /// The key that takes precedence.
        by: &'static str,
        /// What happens instead, in a sentence fragment.
        effect: &'static str,
    },
}

impl WarningKind {
    /// Whether this warning is about a key of an earlier gazelle release.
    #[must_use]
    pub fn is_retired(&self) -> bool {
        matches!(self, Self::Retired { .. })
    }
}

impl fmt::Display for WarningKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Retired { removed, absent_since, replaced_by, note } => {
                write!(f, "key of an earlier gazelle release, dropped from gazelle's parser in {removed} ")?;
                write!(f, "(not read by gazelle {absent_since} and later); ")?;
                match replaced_by {
                    Some(new) => write!(f, "replaced by {new}: {note}")?,
                    None => write!(f, "no replacement: {note}")?,
                }
                f.write_str("; ignored by dtnet")
            }
            Self::Ignored { reason } => write!(f, "ignored by dtnet: {reason}"),
            Self::Overridden { by, effect } => write!(f, "overridden by {by}: {effect}"),
        }
    }
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: key \"{}\": warning: {}", self.origin, self.line, self.key, self.kind)
    }
}

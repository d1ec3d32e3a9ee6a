//! How a command ends and how it talks: the [`Verdict`] every subcommand
//! returns (the exit status `main` turns it into) and [`say`], stdout that
//! survives a closed pipe.

use std::fmt::Display;
use std::io::Write;

/// How a command ended: everything passed, something failed, or the input
/// was bad (the message says why).
pub enum Verdict {
    /// Everything passed.
    Passed,
    /// Something failed.
    Failed,
}

/// What a subcommand returns: a verdict, or why the input was bad.
pub type Outcome = Result<Verdict, String>;

/// Writes a line to stdout; a closed pipe (`dtnet ... | head`) is not an
/// error worth a panic.
pub fn say(text: impl Display) {
    let _ = writeln!(std::io::stdout().lock(), "{text}");
}

/// [`Verdict::Passed`] if `passed`, else [`Verdict::Failed`].
pub fn verdict(passed: bool) -> Verdict {
    if passed {
        Verdict::Passed
    } else {
        Verdict::Failed
    }
}

//! Where a domain's files live: one runtime directory per prefix.
//!
//! As DPDK keeps `/var/run/dpdk/<file-prefix>/` and gazelle
//! `/var/run/gazelle/<unix_prefix>…`, a domain named `P` lives in
//! `<base>/P`: as root `/var/run/dtnet`, otherwise
//! `$XDG_RUNTIME_DIR/dtnet` (or `/tmp/dtnet-<uid>` without one), unless
//! `DTNET_RUNTIME_DIR` names another base. Directories are made mode 0700
//! and files 0600, so only their owner (and root) can attach.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::ShmError;

/// The environment variable that overrides the base runtime directory.
pub const RUNTIME_DIR_ENV: &str = "DTNET_RUNTIME_DIR";

/// Longest prefix accepted, in bytes.
pub const MAX_PREFIX: usize = 64;

/// The base directory under which every domain's directory lives.
pub fn base_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(RUNTIME_DIR_ENV).filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let uid = rustix::process::getuid();
    if uid.is_root() {
        return PathBuf::from("/var/run/dtnet");
    }
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("dtnet"),
        None => PathBuf::from(format!("/tmp/dtnet-{}", uid.as_raw())),
    }
}

/// Refuses prefixes that are not a plain file name: empty, too long, or
/// holding anything but ASCII letters, digits, `-`, `_` and `.` (and not
/// starting with `.`).
pub fn check_prefix(prefix: &str) -> Result<(), ShmError> {
    let bad =
        |reason: &str| Err(ShmError::BadPrefix { prefix: prefix.escape_debug().to_string(), reason: reason.into() });
    if prefix.is_empty() {
        return bad("it is empty");
    }
    if prefix.len() > MAX_PREFIX {
        return bad(&format!("it is longer than {MAX_PREFIX} bytes"));
    }
    if prefix.starts_with('.') {
        return bad("it starts with '.'");
    }
    if !prefix.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
        return bad("only ASCII letters, digits, '-', '_' and '.' are allowed");
    }
    Ok(())
}

/// The directory of domain `prefix` under `base`.
pub fn domain_dir(base: &Path, prefix: &str) -> Result<PathBuf, ShmError> {
    check_prefix(prefix)?;
    Ok(base.join(prefix))
}

/// Makes `dir` (and its parents) with mode 0700 if missing.
pub(crate) fn make_private_dir(dir: &Path) -> Result<(), ShmError> {
    fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|e| ShmError::io(dir, e))?;
    // An existing directory keeps its mode; make sure it is private.
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(|e| ShmError::io(dir, e))
}

/// Opens (creating if `create`) a file of the domain with mode 0600.
pub(crate) fn open_file(path: &Path, create: bool) -> io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new().read(true).write(true).create(create).mode(0o600).open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_must_be_plain_names() {
        for good in ["a", "dtnet0", "gazelle_1.test", &"x".repeat(MAX_PREFIX)] {
            assert!(check_prefix(good).is_ok(), "{good}");
        }
        for bad in ["", ".hidden", "a/b", "..", "sp ace", "nul\0", "é", &"x".repeat(MAX_PREFIX + 1)] {
            let err = check_prefix(bad).unwrap_err().to_string();
            assert!(err.contains("prefix"), "{bad:?}: {err}");
        }
    }
}

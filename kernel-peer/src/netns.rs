//! Named network namespaces and the `ip` command, shared by every part of
//! dtnet that puts the kernel on a wire (the kernel peer, the kernel TCP
//! baseline bench).
//!
//! A [`Netns`] is a guard: `ip netns add` when created (after clearing a
//! leftover of the same name, which only a killed process can leave), `ip
//! netns del` when dropped, also while a panic unwinds, so a run removes
//! every namespace it made whatever happens. Names carry the process id and
//! a per-process counter ([`unique_name`]), so concurrent test processes
//! never share one. [`unavailable`] says why this process cannot make
//! namespaces and TAP devices, if it cannot: callers skip with that reason.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use rustix::fs::{Mode, OFlags};
use rustix::thread::{move_into_link_name_space, LinkNameSpaceType};

/// `CAP_NET_ADMIN` and `CAP_SYS_ADMIN` in the capability bit masks.
const NEEDED_CAPS: u64 = (1 << 12) | (1 << 21);
/// Where `ip netns` keeps its namespace handles.
const NETNS_DIR: &str = "/run/netns";
/// The TUN/TAP clone device.
pub const TUN_DEVICE: &str = "/dev/net/tun";

/// Why this process cannot put the kernel on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unavailable {
    /// Not root with `CAP_SYS_ADMIN` and `CAP_NET_ADMIN`.
    NotRoot,
    /// A required command is missing.
    MissingTool(&'static str),
    /// `/dev/net/tun` cannot be opened: why.
    NoTun(String),
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unavailable::NotRoot => {
                write!(f, "not root: network namespaces need CAP_SYS_ADMIN and CAP_NET_ADMIN")
            }
            Unavailable::MissingTool(tool) => {
                write!(f, "`{tool}` is not installed (apt-get install {})", package(tool))
            }
            Unavailable::NoTun(why) => write!(f, "no TUN/TAP support: cannot open {TUN_DEVICE}: {why}"),
        }
    }
}

impl std::error::Error for Unavailable {}

/// The Debian package providing `tool`.
fn package(tool: &str) -> &'static str {
    match tool {
        "ip" => "iproute2",
        "ethtool" => "ethtool",
        "iperf3" => "iperf3",
        _ => "the package providing it",
    }
}

/// Why a kernel peer cannot be made here (not root, no `ip`, no TUN), or
/// `None` if it can.
pub fn unavailable() -> Option<Unavailable> {
    if !privileged() {
        return Some(Unavailable::NotRoot);
    }
    if let Err(missing) = which("ip") {
        return Some(missing);
    }
    rustix::fs::open(TUN_DEVICE, OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())
        .err()
        .map(|e| Unavailable::NoTun(io::Error::from(e).to_string()))
}

/// Whether this process is root with the capabilities namespaces need.
pub fn privileged() -> bool {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return false;
    };
    let field = |key: &str| status.lines().find_map(|l| l.strip_prefix(key)).map(str::trim);
    let euid = field("Uid:").and_then(|ids| ids.split_whitespace().nth(1)).map(|id| id == "0");
    let caps = field("CapEff:").and_then(|hex| u64::from_str_radix(hex, 16).ok());
    euid == Some(true) && caps.is_some_and(|c| c & NEEDED_CAPS == NEEDED_CAPS)
}

/// `tool` on the PATH, or in the sbin directories a user's PATH may lack.
pub fn which(tool: &'static str) -> Result<PathBuf, Unavailable> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(tool))
        .find(|candidate| candidate.is_file())
        .ok_or(Unavailable::MissingTool(tool))
}

/// A name no other process and no earlier call of this process uses:
/// `dt<tag><pid>x<n>`, at most 15 bytes for tags of one or two letters
/// (the limit for interface names, so a device may share it).
pub fn unique_name(tag: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed) % 1000;
    format!("dt{tag}{}x{n}", std::process::id())
}

/// Every namespace `ip netns list` shows whose name starts with `prefix`.
pub fn list(prefix: &str) -> Vec<String> {
    let Ok(ip) = which("ip") else { return Vec::new() };
    let Ok(output) = checked(Command::new(ip).args(["netns", "list"])) else { return Vec::new() };
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(prefix))
        .map(String::from)
        .collect()
}

/// A named network namespace, deleted on drop.
#[derive(Debug)]
pub struct Netns {
    name: String,
    ip: PathBuf,
}

impl Netns {
    /// Creates namespace `name` (first deleting a leftover of that name)
    /// and brings its loopback up.
    pub fn create(name: &str) -> Result<Netns, String> {
        let ip = which("ip").map_err(|e| e.to_string())?;
        let ns = Netns { name: name.to_string(), ip };
        ns.remove();
        ns.root_ip(&["netns", "add", name])?;
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip -n <name> <args>`, failing with the command and its stderr.
    pub fn ip(&self, args: &[&str]) -> Result<(), String> {
        let mut cmd = Command::new(&self.ip);
        cmd.args(["-n", &self.name]).args(args);
        checked(&mut cmd).map(drop)
    }

    /// `ip <args>` in this process's own namespace.
    pub fn root_ip(&self, args: &[&str]) -> Result<(), String> {
        checked(Command::new(&self.ip).args(args)).map(drop)
    }

    /// A command running `program` inside the namespace.
    pub fn exec(&self, program: &Path) -> Command {
        let mut cmd = Command::new(&self.ip);
        cmd.args(["netns", "exec", &self.name]).arg(program);
        cmd
    }

    /// Moves the calling thread into the namespace: sockets it opens from
    /// then on belong to the namespace's kernel stack. Other threads are
    /// not affected.
    pub fn enter(&self) -> io::Result<()> {
        enter(&self.name)
    }

    /// Deletes the namespace, ignoring that it may not exist.
    fn remove(&self) {
        quiet(Command::new(&self.ip).args(["netns", "del", &self.name]));
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        self.remove();
    }
}

/// Moves the calling thread into namespace `name` (see [`Netns::enter`]).
pub fn enter(name: &str) -> io::Result<()> {
    let path = Path::new(NETNS_DIR).join(name);
    let fd = rustix::fs::open(&path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())?;
    move_into_link_name_space(std::os::fd::AsFd::as_fd(&fd), Some(LinkNameSpaceType::Network))?;
    Ok(())
}

/// Runs `cmd`; on failure returns a one-line description with its stderr.
pub fn checked(cmd: &mut Command) -> Result<Output, String> {
    let shown = describe(cmd);
    let output = cmd.stdin(Stdio::null()).output().map_err(|e| format!("`{shown}` could not run: {e}"))?;
    if output.status.success() {
        return Ok(output);
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let first = stderr.lines().next().unwrap_or("no message").trim().to_string();
    Err(format!("`{shown}` failed ({}): {first}", output.status))
}

/// Runs `cmd` for its side effect only, discarding output and failure.
pub fn quiet(cmd: &mut Command) {
    let _ = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).status();
}

/// `cmd` as a shell-like line, for error messages.
pub fn describe(cmd: &Command) -> String {
    let program = Path::new(cmd.get_program()).file_name().unwrap_or(cmd.get_program()).to_string_lossy();
    let args = cmd.get_args().map(|a| a.to_string_lossy().into_owned());
    std::iter::once(program.into_owned()).chain(args).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_names_fit_an_interface_name_and_differ() {
        let (a, b) = (unique_name("k"), unique_name("k"));
        assert_ne!(a, b);
        assert!(a.len() <= 15, "{a}");
        assert!(a.starts_with("dtk"));
    }

    #[test]
    fn a_failing_command_is_described_with_its_stderr() {
        let err = checked(Command::new("sh").args(["-c", "echo boom >&2; exit 3"])).unwrap_err();
        assert!(err.contains("sh -c") && err.contains("boom") && err.contains('3'), "{err}");
    }
}

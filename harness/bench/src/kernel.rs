//! The kernel baseline: Linux TCP goodput over a veth pair at MTU 1500, the
//! figure a user-space stack's goodput is compared against. The bench builds
//! its own topology (two network namespaces named after the process id, a
//! veth pair between them with segmentation and receive offloads off so every
//! segment is a real 1500-byte frame), runs one `iperf3` transfer across it,
//! and always tears the topology down again, on error and on panic too.
//! `kernel.tcp.goodput.offload` is the same transfer with TSO, GSO and GRO
//! on, the kernel's veth defaults, the baseline for dtnet's TSO figure. The
//! topology also hosts the connection-rate baseline ([`crate::kernel_conn`]). It
//! needs root, `ip` (iproute2), `ethtool` and `iperf3`; without them it
//! explains on stderr why the baseline was skipped and reports nothing, so a
//! bench run never fails for want of a privileged host. Calls within one
//! process are serialised: the names are per process, and two transfers at
//! once would only measure each other. The namespaces are
//! [`kernel_peer::Netns`] guards, shared with the kernel peer.

use std::fmt;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::thread;
use std::time::Duration;

use kernel_peer::netns::{self, checked, quiet, Netns, Unavailable};
use serde_json::Value;

use crate::{measurement, Budget, Measurement};

/// The benchmark's name.
pub const NAME: &str = "kernel.tcp.goodput.1500";
/// The same transfer with the veth's segmentation and receive offloads on.
pub const OFFLOAD: &str = "kernel.tcp.goodput.offload";
/// The veth MTU the baseline runs at.
const MTU: u32 = 1500;
/// Transfer length for a full run; a smoke run transfers for one second.
const FULL_SECS: u32 = 3;
/// Server and client addresses; the namespaces isolate them from the host.
const SERVER: &str = "10.199.0.1";
const CLIENT: &str = "10.199.0.2";
const PREFIX_LEN: u32 = 30;
/// Connect attempts while the server starts, and the pause between them.
const CONNECT_TRIES: u32 = 50;
const CONNECT_PAUSE: Duration = Duration::from_millis(100);

/// Serialises baselines within this process (see the module doc).
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Why the kernel baseline produced no figure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelSkip {
    /// The process may not create namespaces (needs root with
    /// `CAP_SYS_ADMIN` and `CAP_NET_ADMIN`).
    NotRoot,
    /// A required command is not installed.
    MissingTool(&'static str),
    /// Building the topology failed: the command and its error.
    Setup(String),
    /// `iperf3` ran but gave no usable figure.
    Measure(String),
}

impl fmt::Display for KernelSkip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KernelSkip::NotRoot => Unavailable::NotRoot.fmt(f),
            KernelSkip::MissingTool(tool) => Unavailable::MissingTool(tool).fmt(f),
            KernelSkip::Setup(why) => write!(f, "could not build the veth topology: {why}"),
            KernelSkip::Measure(why) => write!(f, "iperf3 gave no figure: {why}"),
        }
    }
}

impl std::error::Error for KernelSkip {}

impl From<Unavailable> for KernelSkip {
    fn from(why: Unavailable) -> KernelSkip {
        match why {
            Unavailable::NotRoot => KernelSkip::NotRoot,
            Unavailable::MissingTool(tool) => KernelSkip::MissingTool(tool),
            Unavailable::NoTun(why) => KernelSkip::Setup(why),
        }
    }
}

/// The registered benchmarks: offloads off and on, each one figure, or
/// none with a note on stderr.
pub(super) fn run(budget: Budget) -> Vec<Measurement> {
    [(NAME, Offloads::Off), (OFFLOAD, Offloads::On)]
        .into_iter()
        .flat_map(|(name, offloads)| match kernel_goodput_with(secs_for(budget), offloads) {
            Ok(gbits) => vec![measurement(name, gbits, "Gbit/s")],
            Err(skip) => {
                eprintln!("dtnet: kernel baseline {name} skipped: {skip}");
                Vec::new()
            }
        })
        .collect()
}

/// Whether the veth pair segments and coalesces (TSO, GSO, GRO) or carries
/// every segment as a frame of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offloads {
    /// Every segment a real frame of at most the MTU.
    Off,
    /// The kernel's defaults for veth: segmentation and receive offloads on.
    On,
}

/// Transfer length in seconds for `budget`: 1 for a smoke pass, a few for a
/// full run. Callers computing a ratio against the baseline should use it
/// so both figures come from comparable runs.
pub fn secs_for(budget: Budget) -> u32 {
    if budget.round < Duration::from_millis(100) {
        1
    } else {
        FULL_SECS
    }
}

/// Linux TCP goodput in Gbit/s over a fresh veth pair at MTU 1500, measured
/// by a `secs`-second `iperf3` transfer between two namespaces. The topology
/// is always removed before this returns (or unwinds).
pub fn kernel_goodput(secs: u32) -> Result<f64, KernelSkip> {
    kernel_goodput_with(secs, Offloads::Off)
}

/// [`kernel_goodput`] with the veth's offloads as `offloads` says.
pub fn kernel_goodput_with(secs: u32, offloads: Offloads) -> Result<f64, KernelSkip> {
    let tools = Tools::find()?;
    let iperf3 = netns::which("iperf3")?;
    let topology = Topology::create(&tools, offloads)?;
    let mut server = topology.start_server(&iperf3)?;
    let report = topology.run_client(&iperf3, &mut server, secs.max(1))?;
    received_gbits(&report)
}

/// [`kernel_goodput`] (offloads off) with each TCP segment the client sends
/// lost with probability `loss`. This kernel has no `sch_netem`, so an
/// nftables rule in the server's namespace drops them as they arrive
/// (`numgen random`, at the prerouting hook before anything else sees
/// them): to the sender that is a loss on the wire, as netem's would be,
/// not a local drop its own stack would be told of. The receiver's ACKs
/// are never dropped.
pub fn kernel_lossy_goodput(secs: u32, loss: f64) -> Result<f64, KernelSkip> {
    let tools = Tools::find()?;
    let (iperf3, nft) = (netns::which("iperf3")?, netns::which("nft")?);
    let topology = Topology::create(&tools, Offloads::Off)?;
    let per_10k = (loss * 10_000.0).round().to_string();
    let chain = "{ type filter hook prerouting priority -300; }";
    // iperf3's port: its control and data connections both run on it.
    let drop = ["tcp", "dport", "5201", "numgen", "random", "mod", "10000", "<", &per_10k, "drop"];
    let rules: [&[&str]; 3] = [
        &["add", "table", "inet", "dtnet"],
        &["add", "chain", "inet", "dtnet", "pre", chain],
        &[&["add", "rule", "inet", "dtnet", "pre"][..], &drop[..]].concat(),
    ];
    for rule in rules {
        checked(topology.server_ns.exec(&nft).args(rule)).map_err(KernelSkip::Setup)?;
    }
    let mut server = topology.start_server(&iperf3)?;
    let report = topology.run_client(&iperf3, &mut server, secs.max(1))?;
    received_gbits(&report)
}

/// Absolute paths of the commands every topology needs.
pub(crate) struct Tools {
    ip: PathBuf,
    ethtool: PathBuf,
}

impl Tools {
    /// Checks privileges and finds every tool, or says what is missing.
    pub(crate) fn find() -> Result<Tools, KernelSkip> {
        if !netns::privileged() {
            return Err(KernelSkip::NotRoot);
        }
        Ok(Tools { ip: netns::which("ip")?, ethtool: netns::which("ethtool")? })
    }
}

/// Two namespaces joined by a veth pair; removed on drop. Each namespace and
/// the veth end inside it share one name, `dtnet-k<pid>a` or `...b` (at
/// most 15 bytes, the limit for interface names). Holding one serialises
/// baselines within the process.
pub(crate) struct Topology<'t> {
    tools: &'t Tools,
    pub(crate) server_ns: Netns,
    pub(crate) client_ns: Netns,
    _serial: std::sync::MutexGuard<'static, ()>,
}

impl<'t> Topology<'t> {
    /// Builds the topology with `offloads`, first clearing leftovers of a
    /// killed process that had the same pid.
    pub(crate) fn create(tools: &'t Tools, offloads: Offloads) -> Result<Topology<'t>, KernelSkip> {
        let serial = ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let pid = std::process::id();
        let server_ns = Netns::create(&format!("dtnet-k{pid}a")).map_err(KernelSkip::Setup)?;
        let client_ns = Netns::create(&format!("dtnet-k{pid}b")).map_err(KernelSkip::Setup)?;
        let topology = Topology { tools, server_ns, client_ns, _serial: serial };
        topology.remove_link();
        let (server, client) = (topology.server_ns.name(), topology.client_ns.name());
        topology.ip(&["link", "add", server, "type", "veth", "peer", "name", client])?;
        topology.configure_end(&topology.server_ns, SERVER, offloads)?;
        topology.configure_end(&topology.client_ns, CLIENT, offloads)?;
        Ok(topology)
    }

    /// Moves the veth end named after `ns` into it, addresses it and brings
    /// it up with its offloads set.
    fn configure_end(&self, ns: &Netns, addr: &str, offloads: Offloads) -> Result<(), KernelSkip> {
        let (cidr, mtu, dev) = (format!("{addr}/{PREFIX_LEN}"), MTU.to_string(), ns.name());
        self.ip(&["link", "set", dev, "netns", dev])?;
        ns.ip(&["addr", "add", &cidr, "dev", dev]).map_err(KernelSkip::Setup)?;
        ns.ip(&["link", "set", dev, "mtu", &mtu, "up"]).map_err(KernelSkip::Setup)?;
        let on = if offloads == Offloads::On { "on" } else { "off" };
        let offloads = ["-K", dev, "tso", on, "gso", on, "gro", on];
        checked(ns.exec(&self.tools.ethtool).args(offloads)).map(drop).map_err(KernelSkip::Setup)
    }

    /// The server's address inside the topology.
    pub(crate) fn server_ip(&self) -> Ipv4Addr {
        SERVER.parse().expect("a literal address")
    }

    /// Starts a one-shot `iperf3` server in the server namespace.
    fn start_server(&self, iperf3: &Path) -> Result<Server, KernelSkip> {
        let mut cmd = self.server_ns.exec(iperf3);
        cmd.args(["-s", "-1", "-B", SERVER]).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        let child = cmd.spawn().map_err(|e| KernelSkip::Setup(format!("cannot start `iperf3 -s`: {e}")))?;
        Ok(Server(child))
    }

    /// Runs the client for `secs`, retrying while the server is not yet
    /// listening, and returns its JSON report.
    fn run_client(&self, iperf3: &Path, server: &mut Server, secs: u32) -> Result<Value, KernelSkip> {
        let secs = secs.to_string();
        let mut last = String::new();
        for _ in 0..CONNECT_TRIES {
            let mut cmd = self.client_ns.exec(iperf3);
            cmd.args(["-c", SERVER, "-B", CLIENT, "-t", &secs, "-J"]);
            let output = cmd.output().map_err(|e| KernelSkip::Measure(format!("cannot run `iperf3 -c`: {e}")))?;
            let report = client_report(&output)?;
            match report_error(&report) {
                None if output.status.success() => return Ok(report),
                None => return Err(KernelSkip::Measure(format!("`iperf3 -c` {}", output.status))),
                Some(error) if !error.contains("connect") => return Err(KernelSkip::Measure(error)),
                Some(error) => last = error,
            }
            server.check_alive()?;
            thread::sleep(CONNECT_PAUSE);
        }
        Err(KernelSkip::Measure(format!("server never accepted a connection: {last}")))
    }

    /// `ip <args>`, failing with the command and its stderr.
    fn ip(&self, args: &[&str]) -> Result<(), KernelSkip> {
        let mut cmd = Command::new(&self.tools.ip);
        cmd.args(args);
        checked(&mut cmd).map(drop).map_err(KernelSkip::Setup)
    }

    /// Deletes the veth pair (synchronously, so its names are free at once),
    /// ignoring what does not exist; the namespaces go when their guards drop.
    fn remove_link(&self) {
        for ns in [&self.server_ns, &self.client_ns] {
            quiet(Command::new(&self.tools.ip).args(["-n", ns.name(), "link", "del", ns.name()]));
            quiet(Command::new(&self.tools.ip).args(["link", "del", ns.name()]));
        }
    }
}

impl Drop for Topology<'_> {
    fn drop(&mut self) {
        self.remove_link();
    }
}

/// The `iperf3` server process; killed on drop if still running.
struct Server(Child);

impl Server {
    /// Fails if the server has already exited (it only exits after a test).
    fn check_alive(&mut self) -> Result<(), KernelSkip> {
        match self.0.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(KernelSkip::Measure(format!("the iperf3 server exited early ({status})"))),
            Err(e) => Err(KernelSkip::Measure(format!("cannot poll the iperf3 server: {e}"))),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

/// The client's JSON report (`iperf3 -J` writes one even on failure).
fn client_report(output: &Output) -> Result<Value, KernelSkip> {
    serde_json::from_slice(&output.stdout).map_err(|e| {
        let stderr = String::from_utf8_lossy(&output.stderr);
        KernelSkip::Measure(format!("`iperf3 -c` {} printed no JSON ({e}): {}", output.status, stderr.trim()))
    })
}

/// The `error` field of an `iperf3 -J` report, if any.
fn report_error(report: &Value) -> Option<String> {
    report.get("error").map(|e| e.as_str().map_or_else(|| e.to_string(), str::to_string))
}

/// `end.sum_received.bits_per_second` in Gbit/s, if positive.
fn received_gbits(report: &Value) -> Result<f64, KernelSkip> {
    let bits = report.pointer("/end/sum_received/bits_per_second").and_then(Value::as_f64);
    match bits {
        Some(b) if b.is_finite() && b > 0.0 => Ok(b / 1e9),
        Some(b) => Err(KernelSkip::Measure(format!("received {b} bit/s"))),
        None => Err(KernelSkip::Measure("no end.sum_received.bits_per_second in the report".to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goodput_is_read_from_the_received_sum() {
        let report = serde_json::json!({"end": {"sum_received": {"bits_per_second": 2.5e9}}});
        assert_eq!(received_gbits(&report), Ok(2.5));
        let empty = serde_json::json!({"end": {}});
        assert!(matches!(received_gbits(&empty), Err(KernelSkip::Measure(_))));
    }

    #[test]
    fn smoke_budgets_transfer_for_one_second() {
        assert_eq!(secs_for(Budget::SMOKE), 1);
        assert_eq!(secs_for(Budget::FULL), FULL_SECS);
    }
}

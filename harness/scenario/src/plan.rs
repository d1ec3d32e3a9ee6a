//! A scenario after loading: names resolved to host indices, files read,
//! defaults filled in, every value in the type the components take. This
//! is what the engine runs; code can build one directly (as
//! [`TcpRun`](crate::tcp_run::TcpRun) does) without a file.

pub use sim::apps::Workload;
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::time::Duration;

use ethdev::mac::MacAddr;
use ethdev::stats::DropReason;
use kernel_peer::KernelHostConfig;
use stack::{ForwardMode, GroupConfig};
use user_vbridge::{BridgeConfig, PortConfig};

/// Which executor runs the world.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Executor {
    /// One thread, virtual time.
    Sim,
    /// Real threads, real time.
    Threads,
    /// Real processes sharing a domain, real time ([`mp::procs`]).
    Procs,
}

/// One host of a scenario.
#[derive(Clone, Debug)]
pub struct HostPlan {
    /// Name, unique in the scenario; names the port too.
    pub name: String,
    /// What drives the host's port.
    pub nic: HostNic,
    /// The impairments of the host's bridge link.
    pub link: PortConfig,
    /// The port a stack host's group drives.
    pub port: PortBackend,
    /// A kernel host sharing a stack host's NIC (flow bifurcation): that
    /// host's index, in place of a bridge port of its own.
    pub shares: Option<usize>,
}

/// The port under a stack host.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum PortBackend {
    /// A user-veth port plugged into the bridge.
    #[default]
    Veth,
    /// A DPDK port of the run's EAL ([`DpdkPlan`]).
    Dpdk {
        /// The port the stacks drive: a vdev name or a PCI address given with `-a`.
        device: String,
        /// A port on the device's network (its far end), plugged into the
        /// bridge so the host reaches the others.
        uplink: String,
    },
}

/// The DPDK side of a run with DPDK hosts: one EAL per process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DpdkPlan {
    /// EAL arguments; a `--file-prefix` unique to the process is added if
    /// they have none.
    pub eal: Vec<String>,
    /// net_ring port pairs to create, cabled back to back: `c` gives
    /// `net_ring_c_a` and `net_ring_c_b`.
    pub ring_cables: Vec<String>,
}

/// What drives a host's port.
#[derive(Clone, Debug)]
pub enum HostNic {
    /// A stack group (its `seed` is replaced by the scenario's seed plus
    /// the host's index when the world is built).
    Stacks(GroupConfig),
    /// A bare port with RSS queues, driven by `frames` traffic.
    Bare {
        /// The port's MAC address.
        mac: MacAddr,
        /// The address frames to this host carry.
        ipv4: Ipv4Addr,
        /// Receive (and transmit) queues.
        queues: u16,
    },
    /// The Linux kernel in a namespace of its own, on a TAP device (see
    /// [`sim::kernel`]).
    Kernel(KernelHostConfig),
}

impl HostPlan {
    /// The stack group's configuration, if the host has stacks.
    pub fn group(&self) -> Option<&GroupConfig> {
        match &self.nic {
            HostNic::Stacks(g) => Some(g),
            HostNic::Bare { .. } | HostNic::Kernel(_) => None,
        }
    }

    /// The kernel host's configuration, if the host is the kernel.
    pub fn kernel(&self) -> Option<&KernelHostConfig> {
        match &self.nic {
            HostNic::Kernel(k) => Some(k),
            HostNic::Stacks(_) | HostNic::Bare { .. } => None,
        }
    }

    /// Whether the host runs sockets (stacks or the kernel), so that
    /// connection-oriented traffic can use it.
    pub fn has_sockets(&self) -> bool {
        self.group().is_some() || self.kernel().is_some()
    }

    /// The IPv4 address of a host with sockets.
    pub fn ipv4(&self) -> Option<Ipv4Addr> {
        match &self.nic {
            HostNic::Stacks(g) => g.ipv4.map(|(a, _)| a),
            HostNic::Kernel(k) => k.ipv4.map(|(a, _)| a),
            HostNic::Bare { .. } => None,
        }
    }

    /// The IPv6 address of a host with sockets.
    pub fn ipv6(&self) -> Option<Ipv6Addr> {
        match &self.nic {
            HostNic::Stacks(g) => g.ipv6.map(|(a, _)| a),
            HostNic::Kernel(k) => k.ipv6.map(|(a, _)| a),
            HostNic::Bare { .. } => None,
        }
    }

    /// Number of stacks (0 for a bare host).
    pub fn stacks(&self) -> usize {
        self.group().map_or(0, |g| g.stacks)
    }

    /// The stack that serves a listening port when the mode puts every
    /// listener on one stack (software forwarding, flow director): the last,
    /// so that most frames land on the wrong queue and must be steered.
    pub fn listen_stack(&self) -> Option<usize> {
        let g = self.group()?;
        matches!(g.mode, ForwardMode::SoftForward | ForwardMode::FlowDirector).then(|| g.stacks.saturating_sub(1))
    }

    /// The stacks a server's listeners live on, the way the mode expects
    /// applications to listen: in RSS mode one listener per stack (a thread
    /// per stack with `SO_REUSEADDR`, as gazelle applications do), with
    /// `listen_shadow` one listener that the stack shadows on every stack,
    /// otherwise the [`listen_stack`](Self::listen_stack).
    pub fn listener_stacks(&self) -> Vec<usize> {
        match (self.group(), self.listen_stack()) {
            (_, Some(stack)) => vec![stack],
            (Some(g), None) if g.mode == ForwardMode::Rss => (0..g.stacks).collect(),
            (Some(_), None) => vec![0],
            (None, _) => Vec::new(),
        }
    }
}

/// TCP connections from one host to another.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpTraffic {
    /// What each connection does.
    pub workload: Workload,
    /// Index of the connecting host.
    pub client: usize,
    /// Index of the listening host.
    pub server: usize,
    /// The server's port.
    pub port: u16,
    /// Connections in all.
    pub conns: u64,
    /// Payload bytes per connection.
    pub bytes: u64,
    /// Connections open at once; each client task runs its share in turn.
    pub parallel: u64,
    /// Use the server's IPv6 address.
    pub ipv6: bool,
}

/// UDP request/response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UdpTraffic {
    /// Index of the requesting host.
    pub client: usize,
    /// Index of the answering host.
    pub server: usize,
    /// The server's port.
    pub port: u16,
    /// Client sockets.
    pub clients: u64,
    /// Requests per client socket.
    pub requests: u32,
    /// Use the server's IPv6 address.
    pub ipv6: bool,
}

/// ICMP echo.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PingTraffic {
    /// Index of the pinging host.
    pub from: usize,
    /// Index of the pinged host.
    pub to: usize,
    /// Echo requests.
    pub count: u16,
}

/// Raw frames between bare hosts (see [`frames`](crate::frames)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FramesTraffic {
    /// Indices of the hosts exchanging frames.
    pub hosts: Vec<usize>,
    /// Flows between random pairs of hosts.
    pub flows: u32,
    /// Frames per flow.
    pub frames_per_flow: u32,
    /// Frames per sending step.
    pub burst: usize,
    /// Time between steps.
    pub pace: Duration,
    /// Wait after the last step for frames in flight.
    pub drain: Duration,
}

/// A capture injected into a host's port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplayTraffic {
    /// Index of the host whose port transmits the frames.
    pub host: usize,
    /// The capture file.
    pub file: PathBuf,
    /// Keep the recorded gaps (otherwise everything at once).
    pub recorded_pace: bool,
    /// Start TCP echo listeners on this port of the host, to answer the
    /// replayed connections.
    pub echo_port: Option<u16>,
}

/// One traffic application of a scenario.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Traffic {
    /// Bulk, echo or short TCP connections.
    Tcp(TcpTraffic),
    /// UDP request/response.
    Udp(UdpTraffic),
    /// Ping.
    Ping(PingTraffic),
    /// Raw frames.
    Frames(FramesTraffic),
    /// Capture replay.
    Replay(ReplayTraffic),
}

impl Traffic {
    /// A one-line description for reports, e.g. `bulk client->server:5201 16x262144B`
    /// (`echo IPv6 ...` over IPv6).
    pub fn label(&self, hosts: &[HostPlan]) -> String {
        let name = |i: usize| hosts.get(i).map_or("?", |h| h.name.as_str());
        match self {
            Traffic::Tcp(t) => {
                let kind = match (t.workload, t.parallel < t.conns) {
                    (Workload::Bulk, _) => "bulk",
                    (Workload::Echo, false) => "echo",
                    (Workload::Echo, true) => "short",
                };
                let (client, server, v6) = (name(t.client), name(t.server), if t.ipv6 { " IPv6" } else { "" });
                format!("{kind}{v6} {client}->{server}:{} {}x{}B", t.port, t.conns, t.bytes)
            }
            Traffic::Udp(u) => {
                let (client, server, v6) = (name(u.client), name(u.server), if u.ipv6 { " IPv6" } else { "" });
                format!("udp{v6} {client}->{server}:{} {}x{} requests", u.port, u.clients, u.requests)
            }
            Traffic::Ping(p) => format!("ping {}->{} x{}", name(p.from), name(p.to), p.count),
            Traffic::Frames(f) => {
                let names: Vec<&str> = f.hosts.iter().map(|&h| name(h)).collect();
                format!("frames {} flows x{} over {}", f.flows, f.frames_per_flow, names.join(","))
            }
            Traffic::Replay(r) => format!("replay {} from {}", r.file.display(), name(r.host)),
        }
    }
}

/// What must hold after a run.
#[derive(Clone, Debug, PartialEq)]
pub struct Expect {
    /// Every connection, request and frame completes with every byte checked.
    pub delivered: bool,
    /// Every connection served by the stack, every frame on the queue, its mode predicts.
    pub placement: bool,
    /// Pools back to their baseline, accounting closed.
    pub no_leaks: bool,
    /// Each stack's (bare queue's) share within this fraction of the even share.
    pub balance: Option<f64>,
    /// Most drops, all reasons together.
    pub max_drops: Option<u64>,
    /// Most drops per reason.
    pub max_drops_by_reason: BTreeMap<DropReason, u64>,
    /// Losses on every link near its configured `loss` probability (links
    /// with burst loss are left out).
    pub loss_as_configured: bool,
    /// Golden trace of the recorded frames.
    pub golden_trace: Option<PathBuf>,
}

impl Default for Expect {
    /// Delivery, placement and no leaks; nothing else.
    fn default() -> Self {
        Expect {
            delivered: true,
            placement: true,
            no_leaks: true,
            balance: None,
            max_drops: None,
            max_drops_by_reason: BTreeMap::new(),
            loss_as_configured: false,
            golden_trace: None,
        }
    }
}

/// The whole resolved scenario, without its name and origin.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Seed of the bridge, the stacks and the traffic.
    pub seed: u64,
    /// Which executor runs it.
    pub executor: Executor,
    /// Deadline (virtual time in `sim`, wall time in `threads`).
    pub duration: Duration,
    /// The bridge (its seed is the scenario's).
    pub bridge: BridgeConfig,
    /// The hosts.
    pub hosts: Vec<HostPlan>,
    /// The traffic.
    pub traffic: Vec<Traffic>,
    /// The expectations.
    pub expect: Expect,
    /// Under [`Executor::Procs`], the processes (hosts and traffic are
    /// empty: the sample's primary plays the hosts).
    pub procs: Option<mp::procs::ProcsPlan>,
    /// The EAL and ring cables, if a host has a DPDK port.
    pub dpdk: Option<DpdkPlan>,
}

//! A scenario file as written: the serde types of its TOML, every struct
//! with `deny_unknown_fields`. Values are checked as they are read (see
//! [`units`](crate::units)); what needs the whole file (names that refer to
//! hosts, files relative to the scenario, keys that exclude each other) is
//! checked when the spec is resolved into a [`Plan`](crate::Plan), through
//! the spans the spec keeps of those keys.

use std::collections::BTreeMap;
use std::fmt;

use ethdev::mac::MacAddr;
use ethdev::stats::DropReason;
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use toml::Spanned;

use crate::limits::{
    MAX_CONNS, MAX_CONN_BYTES, MAX_FRAMES, MAX_MTU, MAX_QUEUES, MAX_REQUESTS, MAX_SOCKET_BUFFER, MAX_STACKS, MIN_MTU,
    MIN_SOCKET_BUFFER,
};
use crate::units::{Bounded, Bytes, Dur, KillAt, Probability, V4Cidr, V6Cidr};

/// Connections or client sockets of a traffic entry, at most [`MAX_CONNS`].
pub type Conns = Bounded<u64, 0, MAX_CONNS>;
/// Payload bytes of one connection, at most [`MAX_CONN_BYTES`].
pub type ConnBytes = Bounded<Bytes, 0, MAX_CONN_BYTES>;
/// A socket buffer size in [`MIN_SOCKET_BUFFER`]`..=`[`MAX_SOCKET_BUFFER`].
pub type SocketBuffer = Bounded<Bytes, MIN_SOCKET_BUFFER, MAX_SOCKET_BUFFER>;
/// A number of frames, flows or requests, at most [`MAX_FRAMES`].
pub type Frames = Bounded<u32, 0, MAX_FRAMES>;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioSpec {
    /// Short name, shown in reports.
    pub name: String,
    /// One paragraph on what the scenario shows.
    #[serde(default)]
    pub description: String,
    /// Seed of every random choice (impairments, stacks, traffic).
    #[serde(default = "one")]
    pub seed: u64,
    /// Which executor runs the scenario (default `sim`).
    pub executor: Option<Spanned<ExecutorSpec>>,
    /// Deadline: virtual time under `sim`, wall time under `threads`.
    #[serde(default = "default_duration")]
    pub duration: Dur,
    /// The bridge.
    #[serde(default)]
    pub bridge: BridgeSpec,
    /// The hosts, in order (none under `executor = "procs"`).
    #[serde(rename = "host", default)]
    pub hosts: Vec<Spanned<HostSpec>>,
    /// The processes of an `executor = "procs"` run.
    pub procs: Option<Spanned<ProcsSpec>>,
    /// The DPDK side of a run with `backend = "dpdk"` hosts.
    pub dpdk: Option<Spanned<DpdkSpec>>,
    /// Faults injected into the run.
    #[serde(default)]
    pub fault: FaultSpec,
    /// The traffic, by kind.
    #[serde(default)]
    pub traffic: TrafficSpec,
    /// What must hold after the run (default: [`Expect::default`](crate::Expect::default)).
    pub expect: Option<ExpectSpec>,
}

fn one() -> u64 {
    1
}

fn one_conn() -> Conns {
    Bounded(1)
}

fn yes() -> bool {
    true
}

fn default_duration() -> Dur {
    Dur(std::time::Duration::from_secs(60))
}

/// `executor`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecutorSpec {
    /// One thread, virtual time.
    Sim,
    /// Real threads, wall time.
    Threads,
    /// Real processes sharing a domain, wall time.
    Procs,
}

/// `[dpdk]`: DPDK's EAL for the run's `backend = "dpdk"` hosts.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DpdkSpec {
    /// EAL arguments (`--vdev`, `-a <PCI>`, `--no-huge`, `-m`, `--lcores`, ...).
    #[serde(default)]
    pub eal: Vec<String>,
    /// Names of net_ring port pairs cabled back to back: `c` gives
    /// `net_ring_c_a` and `net_ring_c_b`.
    #[serde(default)]
    pub ring_cables: Vec<Spanned<String>>,
}

/// `[procs]`: which of DPDK's multi-process samples runs, and how big.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcsSpec {
    /// `simple_mp`, `symmetric_mp`, `client_server_mp`, `gazelle_vf`, `tuple_filter` or `ltran`.
    pub sample: SampleSpec,
    /// Processes, the primary included (simple_mp: 2).
    pub processes: Option<Spanned<Bounded<u16, 2, 64>>>,
    /// Frames into each port (messages each way, for simple_mp).
    #[serde(default = "procs_frames")]
    pub frames: Frames,
    /// client_server_mp: `round_robin` (default) or `flow_hash`.
    pub distribution: Option<Spanned<DistributionSpec>>,
    /// gazelle's modes: who polls the stacks (default `run_to_completion`).
    pub thread_model: Option<Spanned<ThreadModelSpec>>,
    /// gazelle's modes: connections each client process makes (default 8).
    pub conns: Option<Spanned<Bounded<u32, 1, 1024>>>,
    /// gazelle's modes: bytes echoed per connection (default 64 KiB).
    pub bytes: Option<Spanned<ConnBytes>>,
    /// gazelle's modes: stacks per lstack process, a queue each (gazelle's
    /// `num_cpus`, default 1; processes × stacks at most 64 queues).
    pub stacks: Option<Spanned<Bounded<u16, 1, 8>>>,
    /// tuple_filter: process 0 shares the port with the Linux kernel
    /// (gazelle's `flow_bifurcation`), which the LAN peer echoes with too
    /// (default false; needs root and TUN).
    pub kernel: Option<Spanned<bool>>,
}

fn procs_frames() -> Frames {
    Bounded(10_000)
}

/// `procs.sample`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SampleSpec {
    /// simple_mp.
    SimpleMp,
    /// symmetric_mp.
    SymmetricMp,
    /// client_server_mp.
    ClientServerMp,
    /// gazelle with one VF per process.
    GazelleVf,
    /// gazelle's tuple_filter mode: one shared port, a rule per connection.
    TupleFilter,
    /// gazelle's ltran mode: a forwarder process switching for lstack instances.
    Ltran,
}

/// `procs.distribution`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DistributionSpec {
    /// The next client that is up, in turn.
    RoundRobin,
    /// The client the frame's RSS hash names.
    FlowHash,
}

/// `[fault]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// `[[fault.kill]]`: processes to kill (`executor = "procs"` only).
    #[serde(default)]
    pub kill: Vec<Spanned<KillSpec>>,
}

/// One `[[fault.kill]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KillSpec {
    /// The victim's name (`proc-2`, `client-1`, ...), or `random`: a
    /// non-primary process drawn from the seed.
    pub target: Spanned<String>,
    /// When: `"random"` or a duration after every process joined.
    pub at: KillAt,
    /// Which signal (default `KILL`).
    #[serde(default)]
    pub signal: SignalSpec,
    /// Whether an heir takes the victim's place (default true).
    #[serde(default = "yes")]
    pub restart: bool,
}

/// `fault.kill[].signal`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum SignalSpec {
    /// SIGKILL: no chance to clean up.
    #[default]
    Kill,
    /// SIGTERM.
    Term,
    /// SIGINT.
    Int,
    /// SIGSEGV, as a crash would raise it.
    Segv,
    /// SIGABRT, as a failed assertion would raise it.
    Abrt,
}

/// `[bridge]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BridgeSpec {
    /// FDB ageing time (default 300 s).
    pub ageing: Option<Dur>,
    /// Most learned FDB entries (default unlimited).
    pub fdb_limit: Option<usize>,
    /// What a full FDB does.
    #[serde(default)]
    pub limit_policy: LimitPolicySpec,
}

/// `bridge.limit_policy`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitPolicySpec {
    /// Stop learning (Linux).
    #[default]
    StopLearning,
    /// Evict the oldest entry (OVS).
    EvictOldest,
}

/// One `[[host]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostSpec {
    /// Name, unique in the scenario.
    pub name: Spanned<String>,
    /// What the host is (default: dtnet's own, stacks or a bare port).
    pub kind: Option<Spanned<HostKindSpec>>,
    /// `kind = "kernel"`: the stack host whose NIC this kernel shares
    /// (gazelle's `flow_bifurcation`) instead of a bridge port of its own;
    /// its `mac` and addresses are that host's.
    pub nic: Option<Spanned<String>>,
    /// What drives a stack host's port (default: a user-veth port).
    pub backend: Option<Spanned<BackendSpec>>,
    /// `backend = "dpdk"`: the DPDK port the host's stacks drive.
    pub device: Option<Spanned<String>>,
    /// `backend = "dpdk"`: the DPDK port, on the device's network, that is
    /// plugged into the bridge.
    pub uplink: Option<Spanned<String>>,
    /// MAC address of the host's port.
    pub mac: Option<Spanned<MacAddr>>,
    /// IPv4 address and prefix.
    pub ipv4: Option<Spanned<V4Cidr>>,
    /// IPv6 address and prefix.
    pub ipv6: Option<Spanned<V6Cidr>>,
    /// IPv4 default gateway.
    pub gateway: Option<Spanned<std::net::Ipv4Addr>>,
    /// Number of stack instances (one NIC queue each).
    pub stacks: Option<Spanned<Bounded<usize, 0, MAX_STACKS>>>,
    /// A bare port with this many RSS queues and no stacks (`frames` traffic).
    pub queues: Option<Spanned<Bounded<u16, 0, MAX_QUEUES>>>,
    /// Forwarding mode of the stacks.
    pub mode: Option<Spanned<ModeSpec>>,
    /// Thread model of the stacks.
    pub thread_model: Option<Spanned<ThreadModelSpec>>,
    /// A gazelle `lstack.conf` or a `.toml` stack config, relative to the scenario file.
    pub config: Option<Spanned<String>>,
    /// IP MTU of the port.
    pub mtu: Option<Bounded<u16, MIN_MTU, MAX_MTU>>,
    /// Default socket receive buffer.
    pub rx_buffer: Option<SocketBuffer>,
    /// Default socket send buffer.
    pub tx_buffer: Option<SocketBuffer>,
    /// TCP segmentation offload on the host's port.
    #[serde(default)]
    pub tso: bool,
    /// The impairments of the host's bridge link.
    pub impairments: Option<Spanned<ImpairmentsSpec>>,
}

/// `host.kind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HostKindSpec {
    /// dtnet's stacks or a bare port (`stacks`, `config` or `queues`).
    Dtnet,
    /// The Linux kernel in a network namespace, on a TAP device.
    Kernel,
}

/// `host.backend`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackendSpec {
    /// A user-veth port on the bridge.
    Veth,
    /// A DPDK port (`device`), reaching the bridge through another (`uplink`).
    Dpdk,
}

/// `host.mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModeSpec {
    /// RSS spreads flows over the stacks.
    Rss,
    /// Listeners shadowed on every stack.
    ListenShadow,
    /// Software forwarding between stacks.
    SoftForward,
    /// Per-connection flow rules.
    FlowDirector,
}

/// `host.thread_model`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThreadModelSpec {
    /// Stack threads poll; applications are woken.
    RunToWakeup,
    /// Applications poll their stacks.
    RunToCompletion,
}

/// `[host.impairments]`: the fields of `user_vbridge::Impairments`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImpairmentsSpec {
    /// Which direction of the link is impaired.
    #[serde(default)]
    pub direction: DirectionSpec,
    /// Independent loss probability.
    #[serde(default)]
    pub loss: Probability,
    /// Gilbert–Elliott burst loss.
    pub burst_loss: Option<BurstLossSpec>,
    /// Fixed delay.
    pub delay: Option<Dur>,
    /// Uniform jitter around the delay.
    pub jitter: Option<Dur>,
    /// Holding frames back.
    pub reorder: Option<ReorderSpec>,
    /// Duplication probability.
    #[serde(default)]
    pub duplicate: Probability,
    /// Probability of one flipped bit.
    #[serde(default)]
    pub corrupt: Probability,
    /// Token-bucket rate limit.
    pub rate: Option<RateSpec>,
    /// Largest layer-3 payload the link carries.
    pub mtu: Option<u32>,
    /// Periodic link flap.
    pub flap: Option<FlapSpec>,
}

/// `impairments.direction`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DirectionSpec {
    /// Port to bridge and bridge to port.
    #[default]
    Both,
    /// Port to bridge only.
    Ingress,
    /// Bridge to port only.
    Egress,
}

/// `impairments.burst_loss`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BurstLossSpec {
    /// Per-frame probability of entering the bad state.
    pub p_good_to_bad: Probability,
    /// Per-frame probability of leaving it.
    pub p_bad_to_good: Probability,
    /// Loss probability in the good state.
    #[serde(default)]
    pub loss_good: Probability,
    /// Loss probability in the bad state.
    #[serde(default = "certain")]
    pub loss_bad: Probability,
}

fn certain() -> Probability {
    Probability(1.0)
}

/// `impairments.reorder`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReorderSpec {
    /// Probability a frame is held back.
    pub probability: Probability,
    /// How much longer it takes.
    pub extra_delay: Dur,
}

/// `impairments.rate`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateSpec {
    /// Sustained rate.
    pub bits_per_sec: u64,
    /// Bucket depth.
    pub burst_bytes: Bytes,
}

/// `impairments.flap`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlapSpec {
    /// Start of the first down window.
    #[serde(default = "zero")]
    pub offset: Dur,
    /// From one down window to the next.
    pub period: Dur,
    /// Length of each down window.
    pub down: Dur,
}

fn zero() -> Dur {
    Dur(std::time::Duration::ZERO)
}

/// `[traffic]`: one array of tables per kind of application.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrafficSpec {
    /// `[[traffic.bulk]]`.
    #[serde(default)]
    pub bulk: Vec<TcpSpec>,
    /// `[[traffic.echo]]`.
    #[serde(default)]
    pub echo: Vec<TcpSpec>,
    /// `[[traffic.short]]`.
    #[serde(default)]
    pub short: Vec<ShortSpec>,
    /// `[[traffic.udp]]`.
    #[serde(default)]
    pub udp: Vec<UdpSpec>,
    /// `[[traffic.ping]]`.
    #[serde(default)]
    pub ping: Vec<PingSpec>,
    /// `[[traffic.frames]]`.
    #[serde(default)]
    pub frames: Vec<FramesSpec>,
    /// `[[traffic.replay]]`.
    #[serde(default)]
    pub replay: Vec<ReplaySpec>,
}

/// `[[traffic.bulk]]` and `[[traffic.echo]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TcpSpec {
    /// The connecting host.
    pub client: Spanned<String>,
    /// The listening host.
    pub server: Spanned<String>,
    /// The server's port.
    pub port: Option<Spanned<u16>>,
    /// Connections.
    #[serde(default = "one_conn")]
    pub conns: Conns,
    /// Payload bytes per connection.
    pub bytes: ConnBytes,
    /// Connect to the server's IPv6 address.
    #[serde(default)]
    pub ipv6: bool,
}

/// `[[traffic.short]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShortSpec {
    /// The connecting host.
    pub client: Spanned<String>,
    /// The listening host.
    pub server: Spanned<String>,
    /// The server's port.
    pub port: Option<Spanned<u16>>,
    /// Connections in all.
    pub conns: Conns,
    /// Bytes echoed per connection.
    #[serde(default = "short_bytes")]
    pub bytes: ConnBytes,
    /// Connections open at once (each task runs its share one after another).
    pub parallel: Option<Conns>,
    /// Connect to the server's IPv6 address.
    #[serde(default)]
    pub ipv6: bool,
}

fn short_bytes() -> ConnBytes {
    Bounded(Bytes(64))
}

/// `[[traffic.udp]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UdpSpec {
    /// The requesting host.
    pub client: Spanned<String>,
    /// The answering host.
    pub server: Spanned<String>,
    /// The server's port.
    pub port: Option<Spanned<u16>>,
    /// Client sockets, each on its own stack in turn.
    #[serde(default = "one_conn")]
    pub clients: Conns,
    /// Requests per client socket.
    pub requests: Bounded<u32, 0, MAX_REQUESTS>,
    /// Send to the server's IPv6 address.
    #[serde(default)]
    pub ipv6: bool,
}

/// `[[traffic.ping]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PingSpec {
    /// The pinging host.
    pub from: Spanned<String>,
    /// The pinged host.
    pub to: Spanned<String>,
    /// Echo requests.
    pub count: u16,
}

/// `[[traffic.frames]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FramesSpec {
    /// The bare hosts exchanging frames (default: all of them).
    pub hosts: Option<Vec<Spanned<String>>>,
    /// Flows between random pairs of those hosts.
    pub flows: Frames,
    /// Frames per flow.
    #[serde(default = "frames_per_flow")]
    pub frames_per_flow: Frames,
    /// Frames every sending step.
    #[serde(default = "frames_burst")]
    pub burst: Bounded<usize, 0, MAX_FRAMES>,
    /// Time between sending steps.
    pub pace: Option<Dur>,
    /// How long to wait for frames in flight after the last step.
    pub drain: Option<Dur>,
}

fn frames_per_flow() -> Frames {
    Bounded(4)
}

fn frames_burst() -> Bounded<usize, 0, MAX_FRAMES> {
    Bounded(24)
}

/// `[[traffic.replay]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplaySpec {
    /// The host whose port sends the frames.
    pub host: Spanned<String>,
    /// The pcap or pcapng file, relative to the scenario file.
    pub file: Spanned<String>,
    /// `"recorded"` keeps the recorded gaps; `"fast"` sends all at once.
    #[serde(default)]
    pub pace: PaceSpec,
    /// Start TCP echo listeners on this port of the host.
    pub echo_port: Option<u16>,
}

/// `replay.pace`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaceSpec {
    /// Keep the recorded gaps.
    #[default]
    Recorded,
    /// Everything at once.
    Fast,
}

/// `[expect]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectSpec {
    /// Every connection, request and frame completes with every byte checked.
    #[serde(default = "yes")]
    pub delivered: bool,
    /// Every connection on the stack, every frame on the queue, its mode predicts.
    #[serde(default = "yes")]
    pub placement: bool,
    /// Every pool back to its baseline and all accounting closed.
    #[serde(default = "yes")]
    pub no_leaks: bool,
    /// Each stack's (queue's) share within this fraction of the even share.
    pub balance: Option<f64>,
    /// Most drops, all reasons together.
    pub max_drops: Option<u64>,
    /// Most drops per reason.
    #[serde(default)]
    pub max_drops_by_reason: DropLimits,
    /// Losses on every link near its configured `loss` probability.
    #[serde(default)]
    pub loss_as_configured: bool,
    /// A golden trace file of the recorded frames, relative to the scenario file.
    pub golden_trace: Option<Spanned<String>>,
}

/// `expect.max_drops_by_reason`: a table from drop reason names to limits.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DropLimits(pub BTreeMap<DropReason, u64>);

impl<'de> Deserialize<'de> for DropLimits {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<DropLimits, D::Error> {
        d.deserialize_map(DropLimitsVisitor)
    }
}

struct DropLimitsVisitor;

impl<'de> Visitor<'de> for DropLimitsVisitor {
    type Value = DropLimits;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a table of drop reasons and limits, like { loss = 100 }")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<DropLimits, A::Error> {
        let mut limits = BTreeMap::new();
        while let Some(name) = map.next_key::<String>()? {
            let reason = DropReason::ALL.iter().copied().find(|r| r.name() == name).ok_or_else(|| {
                let names: Vec<&str> = DropReason::ALL.iter().map(|r| r.name()).collect();
                de::Error::custom(format!("unknown drop reason {name:?}, expected one of {}", names.join(", ")))
            })?;
            limits.insert(reason, map.next_value()?);
        }
        Ok(DropLimits(limits))
    }
}

//! Stacks serving TCP across a bridge, in any forwarding mode and thread
//! model, under either executor, with the checks every such run must pass.
//!
//! A [`TcpRun`] is a scenario written in code: a server host and a client
//! host, each a stack group on a veth port, on one bridge (optionally
//! impaired), and one bulk or echo traffic entry between them. It builds a
//! [`Plan`] and runs it through the scenario engine
//! ([`scenario`](crate)), which listens the way each mode expects
//! applications to and spreads client tasks over the client's stacks;
//! [`TcpReport::check`] then applies the engine's delivery, placement and
//! leak checks, and keeps the world for further inspection.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use capture::Record;
use ethdev::mac::MacAddr;
use stack::{ForwardMode, GroupConfig, ThreadModel};
use user_vbridge::{BridgeConfig, Impairments, PortConfig};

use crate::build::{App, Slot};
use crate::plan::{PortBackend, TcpTraffic};
use crate::{checks, Expect, HostNic, HostPlan, Plan, RunOptions, Traffic};
use sim::apps::ConnRecord;
use sim::exec::Outcome;
use sim::world::World;

pub use crate::{Executor, Workload};

/// Port the server listens on.
pub const SERVER_PORT: u16 = 5201;
const SERVER_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x01]);
const CLIENT_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x02]);
const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const SERVER_IP6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1);
const CLIENT_IP6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2);

/// A TCP run's parameters.
#[derive(Clone, Debug)]
pub struct TcpRun {
    /// Forwarding mode of both hosts.
    pub mode: ForwardMode,
    /// Thread model of both hosts.
    pub model: ThreadModel,
    /// Executor.
    pub executor: Executor,
    /// Stacks on the server host.
    pub server_stacks: usize,
    /// Stacks on the client host.
    pub client_stacks: usize,
    /// Number of connections.
    pub conns: u64,
    /// Bytes per connection.
    pub bytes: u64,
    /// What each connection does.
    pub workload: Workload,
    /// Impairments on both hosts' bridge links.
    pub impairments: Impairments,
    /// Whether [`TcpRun::impairments`] also apply to the bridge's links
    /// towards the hosts (the default), not only to those from them. A frame
    /// then crosses two impaired links: two bit flips in one frame can cancel
    /// out in its ones'-complement checksum, which one alone never does.
    pub impair_egress: bool,
    /// Seed of the bridge and the stacks.
    pub seed: u64,
    /// Give up after this long (virtual time in `sim`, wall time in `threads`).
    pub timeout: Duration,
    /// Record every frame on both hosts' ports and queues.
    pub capture: bool,
    /// Give both hosts IPv6 addresses (besides IPv4) and connect over IPv6.
    pub ipv6: bool,
    /// TCP segmentation offload on both hosts ([`GroupConfig::tso`]).
    pub tso: bool,
}

impl TcpRun {
    /// `conns` bulk connections of `bytes` each, 4 server and 2 client stacks, no impairments.
    pub fn new(mode: ForwardMode, model: ThreadModel, executor: Executor, conns: u64, bytes: u64) -> TcpRun {
        TcpRun {
            mode,
            model,
            executor,
            server_stacks: 4,
            client_stacks: 2,
            conns,
            bytes,
            workload: Workload::Bulk,
            impairments: Impairments::default(),
            impair_egress: true,
            seed: 1,
            timeout: Duration::from_secs(120),
            capture: false,
            ipv6: false,
            tso: false,
        }
    }

    /// The address clients connect to: the server's IPv6 address with
    /// [`ipv6`](Self::ipv6), else its IPv4 address.
    pub fn server_addr(&self) -> SocketAddr {
        let ip = if self.ipv6 { IpAddr::V6(SERVER_IP6) } else { IpAddr::V4(SERVER_IP) };
        SocketAddr::new(ip, SERVER_PORT)
    }

    fn host(&self, name: &str, stacks: usize, mac: MacAddr, ip: Ipv4Addr, ip6: Ipv6Addr) -> HostPlan {
        let group = GroupConfig {
            mode: self.mode,
            model: self.model,
            ipv6: self.ipv6.then_some((ip6, 64)),
            tso: self.tso,
            ..GroupConfig::new(stacks, mac, ip)
        };
        let egress = if self.impair_egress { self.impairments.clone() } else { Impairments::default() };
        let link = PortConfig { ingress: self.impairments.clone(), egress, ..PortConfig::default() };
        HostPlan { name: name.into(), nic: HostNic::Stacks(group), link, port: PortBackend::Veth, shares: None }
    }

    /// The scenario this run is: host 0 serves, host 1 connects.
    pub fn plan(&self) -> Plan {
        let traffic = TcpTraffic {
            workload: self.workload,
            client: 1,
            server: 0,
            port: SERVER_PORT,
            conns: self.conns,
            bytes: self.bytes,
            parallel: self.conns,
            ipv6: self.ipv6,
        };
        Plan {
            seed: self.seed,
            executor: self.executor,
            duration: self.timeout,
            bridge: BridgeConfig { name: "br0".into(), ..BridgeConfig::default() },
            hosts: vec![
                self.host("server", self.server_stacks, SERVER_MAC, SERVER_IP, SERVER_IP6),
                self.host("client", self.client_stacks, CLIENT_MAC, CLIENT_IP, CLIENT_IP6),
            ],
            traffic: vec![Traffic::Tcp(traffic)],
            expect: Expect::default(),
            procs: None,
            dpdk: None,
        }
    }

    /// Builds the world, runs it, and returns what happened.
    pub fn run(&self) -> Result<TcpReport, String> {
        let plan = self.plan();
        let ex = crate::execute("tcp run", &plan, &RunOptions::default(), self.capture).map_err(|e| e.to_string())?;
        let records = match ex.apps.first() {
            Some(App::Tcp(ledger)) => ledger.records(),
            _ => Vec::new(),
        };
        Ok(TcpReport {
            run: self.clone(),
            listen_stack: plan.hosts[0].listen_stack(),
            records,
            plan,
            outcome: ex.outcome,
            captures: ex.records,
            apps: ex.apps,
            world: ex.world,
        })
    }
}

/// What a [`TcpRun`] produced.
pub struct TcpReport {
    /// The parameters.
    pub run: TcpRun,
    /// How the executor finished.
    pub outcome: Outcome,
    /// Connections as the applications saw them.
    pub records: Vec<ConnRecord>,
    /// The single listening stack (software forwarding, flow director).
    pub listen_stack: Option<usize>,
    /// Frames seen on both hosts' ports and queues, if the run captured.
    pub captures: Vec<Record>,
    /// The world after the run, for further inspection.
    pub world: World,
    plan: Plan,
    apps: Vec<App>,
}

impl TcpReport {
    /// Every expectation of the run (delivery, placement, no leaks); the
    /// first that fails, as an error.
    pub fn check(&self) -> Result<(), String> {
        let view = checks::RunView {
            world: &self.world,
            outcome: &self.outcome,
            apps: &self.apps,
            slots: &[Slot::Host(0), Slot::Host(1)],
            kernels: &[],
            records: &self.captures,
            dpdk: None,
        };
        match checks::evaluate(&self.plan, &view).into_iter().find(|c| !c.passed) {
            Some(c) => Err(format!("{}: {}", c.name, c.detail)),
            None => Ok(()),
        }
    }

    /// Accepted connections per server stack.
    pub fn accepted_per_stack(&self) -> Vec<u64> {
        let g = &self.world.hosts[0].group;
        (0..g.len()).map(|i| g.stats(i).accepted).collect()
    }
}

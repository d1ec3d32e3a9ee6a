//! Stacks serving TCP across a bridge, in any forwarding mode and thread
//! model, under either executor, with the checks every such run must pass.
//!
//! A server host and a client host, each a stack group on a veth port, sit
//! on one bridge (optionally impaired). The server listens the way its mode
//! expects applications to: in RSS mode one listener per stack (a thread
//! per stack with `SO_REUSEADDR`, as gazelle applications do), with
//! `listen_shadow` one listener shadowed on every stack, with software
//! forwarding or flow-director rules one listener on the last stack (so
//! that most frames land on the wrong queue and must be steered). Client
//! tasks spread over the client's stacks, each opening connections of the
//! chosen workload. [`TcpRun::check`] then verifies placement, counts,
//! accounting and buffers.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ethdev::Instant;
use stack::{Api, ForwardMode, GroupConfig, SockOpt, SockType, StackGroup, ThreadModel};
use user_vbridge::{Captured, Impairments, TapFilter};

use crate::apps::{bulk, echo, ConnRecord, Ledger, Side};
use crate::exec::{self, Latch, Outcome, SimClock, Spawner};
use crate::world::World;

/// Port the server listens on.
pub const SERVER_PORT: u16 = 5201;
const SERVER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

/// Which executor runs the world.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Executor {
    /// One thread, virtual time.
    Sim,
    /// Real threads, real time.
    Threads,
}

/// What each connection does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// Client sends `bytes` pattern bytes; server verifies them.
    Bulk,
    /// Client sends `bytes` in chunks and checks they are echoed.
    Echo,
}

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
    /// Seed of the bridge and the stacks.
    pub seed: u64,
    /// Give up after this long (virtual time in `sim`, wall time in `threads`).
    pub timeout: Duration,
    /// Capture every frame on the server's bridge port.
    pub capture: bool,
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
            seed: 1,
            timeout: Duration::from_secs(120),
            capture: false,
        }
    }

    fn group(&self, stacks: usize, mac: [u8; 6], ip: Ipv4Addr, seed: u64) -> GroupConfig {
        GroupConfig { mode: self.mode, model: self.model, seed, ..GroupConfig::new(stacks, mac, ip) }
    }

    /// Builds the world, runs it, and returns what happened.
    pub fn run(&self) -> Result<TcpReport, String> {
        let mut world = World::new(self.seed)?;
        let server_cfg = self.group(self.server_stacks, SERVER_MAC, SERVER_IP, self.seed);
        let client_cfg = self.group(self.client_stacks, CLIENT_MAC, CLIENT_IP, self.seed.wrapping_add(1));
        world.add_host("server", server_cfg, self.impairments.clone())?;
        world.add_host("client", client_cfg, self.impairments.clone())?;
        let filter = TapFilter { port: Some(world.hosts[0].bridge_port), direction: None };
        let tap = self.capture.then(|| world.bridge.add_tap(filter));
        let ledger = Arc::new(Ledger::default());
        let spawner = Spawner::new();
        let sim_clock = Arc::new(SimClock::default());
        let clock: Arc<dyn stack::Clock> = match self.executor {
            Executor::Sim => sim_clock.clone(),
            Executor::Threads => Arc::new(exec::RealClock::new()),
        };
        let (listen_stack, listening) = self.spawn_servers(&world.hosts[0].group, &clock, &spawner, &ledger);
        self.spawn_clients(&world.hosts[1].group, &clock, &spawner, &ledger, &listening);
        if self.model == ThreadModel::RunToCompletion {
            lend_threads(&world.hosts[0].group, 0, &clock, &spawner);
            lend_threads(&world.hosts[1].group, self.server_stacks, &clock, &spawner);
        }
        let outcome = match self.executor {
            Executor::Sim => {
                let deadline = Instant::ZERO + self.timeout;
                exec::sim::run(&mut world, &sim_clock, &spawner, deadline, Duration::from_secs(5))
            }
            Executor::Threads => exec::threads::run(&mut world, &spawner, self.timeout, Duration::from_millis(200)),
        };
        let captures = tap.map(|t| world.bridge.take_captures(t)).unwrap_or_default();
        Ok(TcpReport { run: self.clone(), outcome, records: ledger.records(), listen_stack, captures, world })
    }

    /// Spawns the server's listeners per the mode; returns the listening
    /// stack when there is exactly one, and a latch that opens once every
    /// listener is up.
    fn spawn_servers(
        &self,
        group: &StackGroup,
        clock: &Arc<dyn stack::Clock>,
        spawner: &Spawner,
        ledger: &Arc<Ledger>,
    ) -> (Option<usize>, Arc<Latch>) {
        let (homes, single) = match self.mode {
            ForwardMode::Rss => ((0..group.len()).collect(), None),
            ForwardMode::ListenShadow => (vec![0], None),
            _ => (vec![group.len() - 1], Some(group.len() - 1)),
        };
        let listening = Latch::new(homes.len());
        for home in homes {
            let api = group.api(home, Arc::clone(clock));
            let (spawner2, ledger, listening) = (spawner.clone(), Arc::clone(ledger), Arc::clone(&listening));
            let workload = self.workload;
            spawner.spawn_daemon(home, format!("server@{home}"), async move {
                let fd = listen(&api, SERVER_PORT).await?;
                listening.count_down();
                match workload {
                    Workload::Bulk => bulk::server(api, fd, spawner2, home, ledger).await,
                    Workload::Echo => echo::server(api, fd, spawner2, home, ledger).await,
                }
            });
        }
        (single, listening)
    }

    fn spawn_clients(
        &self,
        group: &StackGroup,
        clock: &Arc<dyn stack::Clock>,
        spawner: &Spawner,
        ledger: &Arc<Ledger>,
        listening: &Arc<Latch>,
    ) {
        let server = SocketAddr::new(IpAddr::V4(SERVER_IP), SERVER_PORT);
        for id in 0..self.conns {
            let home = id as usize % group.len();
            let api = group.api(home, Arc::clone(clock));
            let (ledger, listening, len, workload) =
                (Arc::clone(ledger), Arc::clone(listening), self.bytes, self.workload);
            // Client threads come after the server's in the threads executor.
            spawner.spawn(self.server_stacks + home, format!("client {id}"), async move {
                listening.wait().await;
                match workload {
                    Workload::Bulk => bulk::client(api, server, id, len, ledger).await,
                    Workload::Echo => echo::client(api, server, id, len, ledger).await,
                }
            });
        }
    }
}

/// Run-to-completion needs an application thread polling every stack, as
/// gazelle runs one per stack: thread `first + i` lends itself to stack `i`.
fn lend_threads(group: &StackGroup, first: usize, clock: &Arc<dyn stack::Clock>, spawner: &Spawner) {
    for i in 0..group.len() {
        let api = group.api(i, Arc::clone(clock));
        spawner.spawn_daemon(first + i, format!("idle@{i}"), async move {
            api.lend_thread().await;
            Ok(())
        });
    }
}

/// A listener on `port` of `api`'s home stack, with `SO_REUSEADDR` so that
/// every stack can have its own (gazelle-style RSS servers).
pub async fn listen(api: &Api, port: u16) -> std::io::Result<stack::Fd> {
    let fd = api.socket(SockType::Stream)?;
    api.setsockopt(fd, SockOpt::ReuseAddr(true)).await?;
    api.bind(fd, SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port)).await?;
    api.listen(fd, 128).await?;
    Ok(fd)
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
    /// Frames seen on the server's bridge port, if the run captured.
    pub captures: Vec<Captured>,
    /// The world after the run, for further inspection.
    pub world: World,
}

impl TcpReport {
    /// Every expectation of the run; the first that fails, as an error.
    pub fn check(&self) -> Result<(), String> {
        self.outcome.ok()?;
        let servers: Vec<_> = self.records.iter().filter(|r| r.side == Side::Server).collect();
        let clients: Vec<_> = self.records.iter().filter(|r| r.side == Side::Client).collect();
        let n = self.run.conns as usize;
        if servers.len() != n || clients.len() != n {
            return Err(format!("{} server and {} client records for {n} connections", servers.len(), clients.len()));
        }
        if let Some(r) = self.records.iter().find(|r| r.bytes != self.run.bytes) {
            return Err(format!("{r:?}: expected {} bytes", self.run.bytes));
        }
        let server = &self.world.hosts[0].group;
        let client = &self.world.hosts[1].group;
        for r in &servers {
            let expected = self.listen_stack.unwrap_or_else(|| server.rss_stack(r.peer, r.local));
            if r.stack != expected {
                return Err(format!("server connection {r:?} served by stack {} instead of {expected}", r.stack));
            }
        }
        if self.listen_stack.is_none() {
            if let Some(r) = clients.iter().find(|r| client.rss_stack(r.peer, r.local) != r.stack) {
                return Err(format!(
                    "client connection {r:?}: replies hash to stack {}",
                    client.rss_stack(r.peer, r.local)
                ));
            }
        }
        self.check_counts(server, &servers)?;
        self.world.check_accounting()?;
        match self.world.buffers_in_use() {
            0 => Ok(()),
            n => Err(format!("{n} buffers still in use after the run")),
        }
    }

    fn check_counts(&self, server: &StackGroup, servers: &[&ConnRecord]) -> Result<(), String> {
        for i in 0..server.len() {
            let accepted = server.stats(i).accepted;
            let recorded = servers.iter().filter(|r| r.stack == i).count() as u64;
            if accepted != recorded {
                return Err(format!("server stack {i} accepted {accepted} connections, applications saw {recorded}"));
            }
        }
        Ok(())
    }

    /// Accepted connections per server stack.
    pub fn accepted_per_stack(&self) -> Vec<u64> {
        let g = &self.world.hosts[0].group;
        (0..g.len()).map(|i| g.stats(i).accepted).collect()
    }
}

//! From a [`Plan`] to a running start: the world (bridge, hosts, bare
//! ports, replayers) and the tasks of every traffic entry, handed to a
//! [`Spawner`].
//!
//! Application threads follow gazelle's binding of threads to stacks: host
//! `h`'s stack `i` is served by application thread `base[h] + i`, where the
//! bases number the stacks of all hosts in order, so a threaded run gives
//! each stack its own application thread and tasks on one stack share it.
//! Servers listen the way their host's mode expects applications to (see
//! [`HostPlan::listener_stacks`](crate::plan::HostPlan::listener_stacks)).
//! Clients wait until their server listens; under run-to-completion every
//! stack also gets an idle task that lends it its thread.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use capture::Pace;
use stack::{Api, GroupConfig, StackGroup, ThreadModel};
use user_vbridge::BridgeConfig;

use crate::dpdk_ports::DpdkPorts;
use crate::frames::{FrameLoad, FrameTally};
use crate::meter::Meter;
use crate::plan::{
    Executor, FramesTraffic, HostNic, PingTraffic, Plan, PortBackend, ReplayTraffic, TcpTraffic, Traffic, UdpTraffic,
    Workload,
};
use sim::apps::{bulk, echo, listen, ping, udp, Ledger};
use sim::exec::{RealClock, SimClock, Spawner, TaskClock};
use sim::kernel::{apps as kernel_apps, KernelNode, KernelTasks, StopFlag};
use sim::latch::Latch;
use sim::replay::{read_capture, Replayer};
use sim::world::World;

/// Bytes of one UDP request ([`udp::client`]'s size).
pub(crate) const UDP_REQUEST_BYTES: u64 = 64;
/// Bytes of one echo request's payload ([`ping::ping`]'s size).
pub(crate) const PING_BYTES: u64 = 56;
/// First local port of UDP client sockets on each host.
pub(crate) const UDP_CLIENT_PORT: u16 = 20000;

/// What one traffic entry's tasks leave behind for the checks.
pub(crate) enum App {
    /// TCP connections, as the applications recorded them.
    Tcp(Arc<Ledger>),
    /// Completed UDP round trips.
    Udp(Arc<AtomicU64>),
    /// Echo replies received.
    Ping(Arc<AtomicU64>),
    /// What the frame receivers saw.
    Frames(Arc<Mutex<FrameTally>>),
    /// Index of the replayer in `world.replayers`, and what its echo
    /// servers (if any) recorded.
    Replay(usize, Arc<Ledger>),
}

/// A world with its tasks spawned, ready for an executor.
pub(crate) struct Built {
    /// The world.
    pub world: World,
    /// The tasks.
    pub spawner: Spawner,
    /// Virtual time, if the executor is `sim`.
    pub sim_clock: Arc<SimClock>,
    /// The time applications read.
    pub clock: Arc<dyn stack::Clock>,
    /// One entry per traffic entry of the plan, in order.
    pub apps: Vec<App>,
    /// Where each plan host went.
    pub slots: Vec<Slot>,
    /// The kernel hosts, torn down when the last handle drops.
    pub kernels: Vec<KernelNode>,
    /// Ends the kernel hosts' servers once the run is over.
    pub kernel_stop: StopFlag,
    /// The EAL and DPDK ports of DPDK hosts; last, so dropped after the world.
    pub dpdk: Option<DpdkPorts>,
}

/// Where a plan host went in the world.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Slot {
    /// `world.hosts[i]`.
    Host(usize),
    /// `world.nics[i]`.
    Nic(usize),
    /// `Built::kernels[i]`.
    Kernel(usize),
}

impl Slot {
    /// The index in `world.hosts`, for a stack host.
    pub fn host(self) -> Option<usize> {
        match self {
            Slot::Host(i) => Some(i),
            Slot::Nic(_) | Slot::Kernel(_) => None,
        }
    }

    /// The index in `world.nics`, for a bare host.
    pub fn nic(self) -> Option<usize> {
        match self {
            Slot::Nic(i) => Some(i),
            Slot::Host(_) | Slot::Kernel(_) => None,
        }
    }
}

/// Builds `plan`'s world and spawns its tasks; `meter` counts their progress.
pub(crate) fn build(plan: &Plan, meter: &Meter) -> Result<Built, String> {
    let mut world = World::with_bridge(BridgeConfig { seed: plan.seed, ..plan.bridge.clone() })?;
    let (mut slots, mut kernels) = (Vec::new(), Vec::new());
    let mut dpdk = plan.dpdk.as_ref().map(DpdkPorts::start).transpose()?;
    for (i, host) in plan.hosts.iter().enumerate() {
        slots.push(match &host.nic {
            HostNic::Stacks(g) => {
                let group = GroupConfig { seed: plan.seed.wrapping_add(i as u64), ..g.clone() };
                let link = host.link.clone();
                Slot::Host(match (&host.port, dpdk.as_mut()) {
                    (PortBackend::Veth, _) => world.add_host_on(&host.name, group, link)?,
                    (PortBackend::Dpdk { device, uplink }, Some(dpdk)) => {
                        dpdk.add_host(&mut world, &host.name, group, (device, uplink), link)?
                    }
                    (PortBackend::Dpdk { .. }, None) => {
                        return Err(format!("host {}: a DPDK host in a plan without DPDK", host.name))
                    }
                })
            }
            HostNic::Bare { mac, ipv4, queues } => {
                Slot::Nic(world.add_nic(&host.name, *mac, *ipv4, *queues, host.link.clone())?)
            }
            HostNic::Kernel(config) => {
                if plan.executor == Executor::Sim {
                    return Err(format!("host {}: {}", host.name, sim::kernel::SIM_REFUSAL));
                }
                if host.shares.is_some() {
                    Slot::Kernel(usize::MAX) // made below, once the host it shares with exists
                } else {
                    kernels.push(KernelNode::attach(&mut world, config, host.link.clone())?);
                    Slot::Kernel(kernels.len() - 1)
                }
            }
        });
    }
    for (i, host) in plan.hosts.iter().enumerate() {
        let (Some(shared), HostNic::Kernel(config)) = (host.shares, &host.nic) else { continue };
        let Some(group) = slots[shared].host().map(|h| &world.hosts[h].group) else {
            return Err(format!("host {}: the host whose NIC it shares has no stacks", host.name));
        };
        kernels.push(KernelNode::share(group, config)?);
        slots[i] = Slot::Kernel(kernels.len() - 1);
    }
    if let Some(dpdk) = dpdk.as_mut() {
        dpdk.mark_baseline();
    }
    let sim_clock = Arc::new(SimClock::default());
    let (timer, clock): (Arc<dyn TaskClock>, Arc<dyn stack::Clock>) = match plan.executor {
        Executor::Sim => (sim_clock.clone(), sim_clock.clone()),
        // A procs plan has no hosts: its world stays empty.
        Executor::Threads | Executor::Procs => {
            let real = Arc::new(RealClock::new());
            (real.clone(), real)
        }
    };
    let mut spawn = Spawn::new(plan, &world, &slots, &kernels, Arc::clone(&clock), timer, meter.clone());
    let apps = plan
        .traffic
        .iter()
        .enumerate()
        .map(|(i, t)| spawn.traffic(i, t, &mut world).map_err(|e| format!("{}: {e}", t.label(&plan.hosts))))
        .collect::<Result<_, _>>()?;
    spawn.lend_threads();
    let kernel_stop = spawn.kernel.stop_flag().clone();
    Ok(Built { world, spawner: spawn.spawner, sim_clock, clock, apps, slots, kernels, kernel_stop, dpdk })
}

/// One plan host as the tasks see it.
struct Node {
    /// Its stacks (`None` for a bare host).
    group: Option<StackGroup>,
    /// Where it went in the world.
    slot: Slot,
    /// Its kernel, if it is a kernel host.
    kernel: Option<Arc<kernel_peer::KernelHost>>,
    /// Its addresses.
    ipv4: Option<Ipv4Addr>,
    ipv6: Option<Ipv6Addr>,
    /// Its receive queues, if bare.
    queues: u16,
    /// The stacks its listeners live on (see [`HostPlan::listener_stacks`](crate::plan::HostPlan::listener_stacks)).
    listeners: Vec<usize>,
    /// The application thread of its stack 0.
    base: usize,
    /// Next local port for UDP client sockets.
    udp_port: u16,
    /// Next ICMP echo identifier.
    ident: u16,
}

/// What spawning tasks needs to know about the world.
struct Spawn {
    spawner: Spawner,
    clock: Arc<dyn stack::Clock>,
    timer: Arc<dyn TaskClock>,
    meter: Meter,
    seed: u64,
    nodes: Vec<Node>,
    /// The thread after every stack's: bare-port traffic, replays and the
    /// tasks waiting for kernel threads run there.
    spare_thread: usize,
    /// Starts kernel hosts' application threads.
    kernel: KernelTasks,
}

impl Spawn {
    fn new(
        plan: &Plan,
        world: &World,
        slots: &[Slot],
        kernels: &[KernelNode],
        clock: Arc<dyn stack::Clock>,
        timer: Arc<dyn TaskClock>,
        meter: Meter,
    ) -> Spawn {
        let mut next_thread = 0;
        let nodes = plan
            .hosts
            .iter()
            .zip(slots)
            .map(|(host, &slot)| {
                let group = slot.host().map(|i| world.hosts[i].group.clone());
                let kernel = match slot {
                    Slot::Kernel(k) => Some(Arc::clone(&kernels[k].host)),
                    Slot::Host(_) | Slot::Nic(_) => None,
                };
                let base = next_thread;
                next_thread += group.as_ref().map_or(0, StackGroup::len);
                let queues = match host.nic {
                    HostNic::Bare { queues, .. } => queues,
                    HostNic::Stacks(_) | HostNic::Kernel(_) => 0,
                };
                let (listeners, ipv4, ipv6) = (host.listener_stacks(), host.ipv4(), host.ipv6());
                Node { group, slot, kernel, ipv4, ipv6, queues, listeners, base, udp_port: UDP_CLIENT_PORT, ident: 1 }
            })
            .collect();
        let spawner = Spawner::new();
        let kernel = KernelTasks::new(spawner.clone(), next_thread, StopFlag::default());
        Spawn { spawner, clock, timer, meter, seed: plan.seed, nodes, spare_thread: next_thread, kernel }
    }

    fn traffic(&mut self, index: usize, traffic: &Traffic, world: &mut World) -> Result<App, String> {
        Ok(match traffic {
            Traffic::Tcp(t) => App::Tcp(self.tcp(t)?),
            Traffic::Udp(u) => App::Udp(self.udp(u)?),
            Traffic::Ping(p) => App::Ping(self.ping(p)?),
            Traffic::Frames(f) => App::Frames(self.frames(index, f, world)?),
            Traffic::Replay(r) => {
                let ledger = Arc::new(Ledger::default());
                App::Replay(self.replay(r, world, &ledger)?, ledger)
            }
        })
    }

    fn node(&self, host: usize) -> Result<&Node, String> {
        self.nodes.get(host).ok_or_else(|| format!("no host #{host}"))
    }

    fn group(&self, host: usize) -> Result<&StackGroup, String> {
        self.node(host)?.group.as_ref().ok_or_else(|| format!("host #{host} has no stacks"))
    }

    /// An API handle on stack `stack` (modulo the stacks) of `host`, and the
    /// application thread bound to that stack.
    fn api(&self, host: usize, stack: usize) -> Result<(Api, usize), String> {
        let (group, base) = (self.group(host)?, self.node(host)?.base);
        let home = stack % group.len();
        Ok((Api::new(group, home, Arc::clone(&self.clock)), base + home))
    }

    /// `host`'s address of the asked family, with `port`.
    fn addr(&self, host: usize, port: u16, ipv6: bool) -> Result<SocketAddr, String> {
        let node = self.node(host)?;
        let ip = match ipv6 {
            true => node.ipv6.map(IpAddr::V6),
            false => node.ipv4.map(IpAddr::V4),
        };
        let family = if ipv6 { "IPv6" } else { "IPv4" };
        ip.map(|ip| SocketAddr::new(ip, port)).ok_or_else(|| format!("host #{host} has no {family} address"))
    }

    /// Servers of `workload` on `port` of `host`, on the stacks its mode
    /// puts listeners on; returns a latch that opens once all listen.
    fn listeners(
        &self,
        host: usize,
        port: u16,
        workload: Workload,
        ledger: &Arc<Ledger>,
    ) -> Result<Arc<Latch>, String> {
        let homes = &self.node(host)?.listeners;
        let listening = Latch::new(homes.len());
        for &home in homes {
            let (api, thread) = self.api(host, home)?;
            let (spawner, ledger, listening) = (self.spawner.clone(), Arc::clone(ledger), Arc::clone(&listening));
            self.spawner.spawn_daemon(thread, format!("server {port}@{home}"), async move {
                let fd = listen(&api, port).await?;
                listening.count_down();
                match workload {
                    Workload::Bulk => bulk::server(api, fd, spawner, thread, ledger).await,
                    Workload::Echo => echo::server(api, fd, spawner, thread, ledger).await,
                }
            });
        }
        Ok(listening)
    }

    /// Listeners for `t`, then its client tasks, task `i` on the client's
    /// stack `i` (modulo its stacks), each running its share of the
    /// connections one after another.
    fn tcp(&mut self, t: &TcpTraffic) -> Result<Arc<Ledger>, String> {
        let ledger = Arc::new(Ledger::default());
        let server = self.addr(t.server, t.port, t.ipv6)?;
        let listening = match &self.node(t.server)?.kernel {
            Some(host) => self.kernel_listener(host, server, t.workload, &ledger)?,
            None => self.listeners(t.server, t.port, t.workload, &ledger)?,
        };
        if let Some(host) = self.node(t.client)?.kernel.clone() {
            return self.kernel_clients(&host, t, server, &listening, ledger);
        }
        for task in 0..t.parallel.max(1) {
            let (api, thread) = self.api(t.client, task as usize)?;
            let ids: Vec<u64> = (task..t.conns).step_by(t.parallel.max(1) as usize).collect();
            let (ledger, listening, meter, t) =
                (Arc::clone(&ledger), Arc::clone(&listening), self.meter.clone(), t.clone());
            self.spawner.spawn(thread, format!("client {}:{task}", t.port), async move {
                listening.wait().await;
                for id in ids {
                    match t.workload {
                        Workload::Bulk => bulk::client(api.clone(), server, id, t.bytes, Arc::clone(&ledger)).await?,
                        Workload::Echo => echo::client(api.clone(), server, id, t.bytes, Arc::clone(&ledger)).await?,
                    }
                    meter.add(t.bytes);
                }
                Ok(())
            });
        }
        Ok(ledger)
    }

    /// A UDP server on the server's stack 0, and `clients` client sockets
    /// spread over the client's stacks.
    fn udp(&mut self, u: &UdpTraffic) -> Result<Arc<AtomicU64>, String> {
        let done = Arc::new(AtomicU64::new(0));
        let listening = Latch::new(1);
        let server = self.addr(u.server, u.port, u.ipv6)?;
        let ready = Arc::clone(&listening);
        if let Some(host) = &self.node(u.server)?.kernel {
            self.kernel.spawn(host, format!("kernel udp server {}", u.port), true, move |stop| {
                let socket = kernel_apps::udp_bind(server)?;
                ready.count_down();
                kernel_apps::udp_server(socket, stop)
            })?;
        } else {
            let (api, thread) = self.api(u.server, 0)?;
            self.spawner.spawn_daemon(thread, format!("udp server {}", u.port), async move {
                let fd = udp::bind(&api, stack::api::any_addr(server.ip(), server.port())).await?;
                ready.count_down();
                udp::server(api, fd).await
            });
        }
        if let Some(host) = self.node(u.client)?.kernel.clone() {
            self.kernel_udp_clients(&host, u, server, &listening, &done)?;
            return Ok(done);
        }
        for c in 0..u.clients {
            let (api, thread) = self.api(u.client, c as usize)?;
            let node = self.nodes.get_mut(u.client).ok_or("no client host")?;
            let local = stack::api::any_addr(server.ip(), node.udp_port);
            node.udp_port = node.udp_port.wrapping_add(1);
            let (done, listening, meter, requests) =
                (Arc::clone(&done), Arc::clone(&listening), self.meter.clone(), u.requests);
            self.spawner.spawn(thread, format!("udp client {}:{c}", u.port), async move {
                listening.wait().await;
                let n = udp::client(api, local, server, requests).await?;
                done.fetch_add(u64::from(n), Ordering::Relaxed);
                meter.add(u64::from(n) * UDP_REQUEST_BYTES);
                Ok(())
            });
        }
        Ok(done)
    }

    /// A kernel server of `workload` on `addr`; returns a latch that opens
    /// once it listens.
    fn kernel_listener(
        &self,
        host: &kernel_peer::KernelHost,
        addr: SocketAddr,
        workload: Workload,
        ledger: &Arc<Ledger>,
    ) -> Result<Arc<Latch>, String> {
        let (listening, ledger) = (Latch::new(1), Arc::clone(ledger));
        let ready = Arc::clone(&listening);
        self.kernel.spawn(host, format!("kernel server {}", addr.port()), true, move |stop| {
            let listener = kernel_apps::listen(addr)?;
            ready.count_down();
            kernel_apps::tcp_server(listener, workload, ledger, stop)
        })?;
        Ok(listening)
    }

    /// `t.parallel` kernel client threads, each running its share of the
    /// connections one after another once the server listens.
    fn kernel_clients(
        &self,
        host: &kernel_peer::KernelHost,
        t: &TcpTraffic,
        server: SocketAddr,
        listening: &Arc<Latch>,
        ledger: Arc<Ledger>,
    ) -> Result<Arc<Ledger>, String> {
        for task in 0..t.parallel.max(1) {
            let ids: Vec<u64> = (task..t.conns).step_by(t.parallel.max(1) as usize).collect();
            let (ledger, listening, meter) = (Arc::clone(&ledger), Arc::clone(listening), self.meter.clone());
            let (workload, bytes) = (t.workload, t.bytes);
            self.kernel.spawn(host, format!("kernel client {}:{task}", t.port), false, move |stop| {
                wait_open(&listening, &stop)?;
                for id in ids {
                    ledger.record(kernel_apps::tcp_client(workload, server, id, bytes, &stop)?);
                    meter.add(bytes);
                }
                Ok(())
            })?;
        }
        Ok(ledger)
    }

    /// `u.clients` kernel UDP client threads, each on its own local port.
    fn kernel_udp_clients(
        &mut self,
        host: &kernel_peer::KernelHost,
        u: &UdpTraffic,
        server: SocketAddr,
        listening: &Arc<Latch>,
        done: &Arc<AtomicU64>,
    ) -> Result<(), String> {
        let own = self.addr(u.client, 0, u.ipv6)?.ip();
        for c in 0..u.clients {
            let node = self.nodes.get_mut(u.client).ok_or("no client host")?;
            let local = SocketAddr::new(own, node.udp_port);
            node.udp_port = node.udp_port.wrapping_add(1);
            let (done, listening, meter, requests) =
                (Arc::clone(done), Arc::clone(listening), self.meter.clone(), u.requests);
            self.kernel.spawn(host, format!("kernel udp client {}:{c}", u.port), false, move |stop| {
                wait_open(&listening, &stop)?;
                let n = kernel_apps::udp_client(kernel_apps::udp_bind(local)?, server, requests, &stop)?;
                done.fetch_add(u64::from(n), Ordering::Relaxed);
                meter.add(u64::from(n) * UDP_REQUEST_BYTES);
                Ok(())
            })?;
        }
        Ok(())
    }

    /// Echo requests from a socket on the next stack of `p.from`, each with
    /// its own identifier.
    fn ping(&mut self, p: &PingTraffic) -> Result<Arc<AtomicU64>, String> {
        let replies = Arc::new(AtomicU64::new(0));
        let target = self.addr(p.to, 0, false)?.ip();
        let node = self.nodes.get_mut(p.from).ok_or("no pinging host")?;
        let ident = node.ident;
        node.ident = ident.wrapping_add(1);
        let (api, thread) = self.api(p.from, usize::from(ident))?;
        let (r, meter, count) = (Arc::clone(&replies), self.meter.clone(), p.count);
        self.spawner.spawn(thread, format!("ping {ident}"), async move {
            let n = ping::ping(api, target, ident, count).await?;
            r.fetch_add(u64::from(n), Ordering::Relaxed);
            meter.add(u64::from(n) * PING_BYTES);
            Ok(())
        });
        Ok(replies)
    }

    /// The frame load between the bare hosts of `f`, on the spare thread.
    fn frames(&mut self, index: usize, f: &FramesTraffic, world: &World) -> Result<Arc<Mutex<FrameTally>>, String> {
        let mut nics = Vec::new();
        for &h in &f.hosts {
            let node = self.node(h)?;
            let nic =
                node.slot.nic().and_then(|n| world.nics.get(n)).ok_or_else(|| format!("host #{h} is not bare"))?;
            nics.push((nic, node.queues));
        }
        let load = FrameLoad::new(&nics, f, self.seed.wrapping_add(index as u64))?;
        self.meter.plan(load.bytes());
        let tally = Arc::new(Mutex::new(FrameTally::default()));
        let (timer, t2, meter) = (Arc::clone(&self.timer), Arc::clone(&tally), self.meter.clone());
        self.spawner.spawn(self.spare_thread, format!("frames {index}"), load.run(timer, t2, meter));
        Ok(tally)
    }

    /// A replayer port sending the capture's frames into the host, echo
    /// servers on the host if asked (the replay starts once they listen),
    /// and a task that lasts until every frame is sent.
    fn replay(&mut self, r: &ReplayTraffic, world: &mut World, ledger: &Arc<Ledger>) -> Result<usize, String> {
        let records = read_capture(&r.file).map_err(|e| e.to_string())?;
        let pace = if r.recorded_pace { Pace::Recorded } else { Pace::AsFastAsPossible };
        let host = self.node(r.host)?.slot.host().ok_or_else(|| format!("host #{} has no stacks", r.host))?;
        let index = Replayer::attach(world, &records, host, pace).map_err(|e| e.to_string())?;
        if let Some(port) = r.echo_port {
            let listening = self.listeners(r.host, port, Workload::Echo, ledger)?;
            world.replayers[index].start_after(listening);
        }
        self.spawner.spawn(self.spare_thread, format!("replay {index}"), world.replayers[index].waiter());
        Ok(index)
    }

    /// Run-to-completion needs an application thread polling every stack,
    /// as gazelle runs one per stack: thread `base + i` lends itself to
    /// stack `i`.
    fn lend_threads(&self) {
        for node in &self.nodes {
            let Some(group) = node.group.as_ref().filter(|g| g.config().model == ThreadModel::RunToCompletion) else {
                continue;
            };
            for stack in 0..group.len() {
                let api = Api::new(group, stack, Arc::clone(&self.clock));
                self.spawner.spawn_daemon(node.base + stack, format!("idle@{stack}"), async move {
                    api.lend_thread().await;
                    Ok::<(), io::Error>(())
                });
            }
        }
    }
}

/// Blocks a kernel thread until `latch` opens (its server listens), or
/// fails once the run stops.
fn wait_open(latch: &Latch, stop: &StopFlag) -> io::Result<()> {
    while !latch.is_open() {
        if stop.stopped() {
            return Err(io::Error::new(io::ErrorKind::Interrupted, "the run stopped before the server listened"));
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    Ok(())
}

//! gazelle's tuple_filter mode across real processes.
//!
//! Every lstack process runs on one port with one address, its s stacks
//! (gazelle `num_cpus`, `Options::stacks`) on queues n·s .. (n + 1)·s for
//! process n (gazelle `num_process`, `process_idx`). The port's RSS is off, so what no
//! rule claims lands on queue 0, process 0's; each connection a process
//! opens gets a flow rule steering its frames to that process's queue, and
//! since only the NIC's primary may make rules, a secondary asks for them
//! on its control connection ([`ethdev::shm::rules`]). Process 0's stack
//! hands every neighbour message on to the other processes' queues through
//! the port's hairpin, so they learn the peers' MACs that only queue 0
//! hears of (gazelle passes mbuf pointers as decimal text on a Unix
//! socket; here the buffer goes by reference through rings whose every
//! slot is accounted for).
//!
//! The domain's primary is the NIC (the shared port `nic`, its wire end on
//! a LAN bridge), the LAN's peer host (a stack on a veth of its own,
//! running the echo server), and gazelle's process 0. Every gazelle
//! process, process 0 included, runs the echo clients (see [`super`]).
//! When one dies, the primary frees its queue and buffers and destroys the
//! rules it asked for, so the peer's frames for its connections fall back
//! to queue 0 instead of a queue nobody polls, and an heir with the same
//! `--proc-id` takes the queue again.
//!
//! With `inbound`, every process also listens (process n on port 7100 + n)
//! and the LAN peer makes `conns` echo connections to each: a listener's
//! stack asks for a rule steering its port's SYNs to its queue, and each
//! accepted connection gets its own rule, so the NIC hands new connections
//! to the listening process where gazelle's process 0 passes them on by
//! software. The peer's connections to a killed process are not retried,
//! so the kill runs go outbound only.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ethdev::mempool::{DeadOwner, Mempool, Owner};
use ethdev::shm::control::{ControlClient, ControlEvent, ControlServer, Peer};
use ethdev::shm::{Domain, Zone};
use ethdev::{EthDev, MacAddr};
use sim::apps::{echo, listen, Ledger};
use sim::exec::{sleep_until, RealClock, Spawner};
use stack::{Api, Clock, ForwardMode, ProcessSlot, StackGroup};
use user_vbridge::Bridge;
use user_veth::shared::{PortRules, SharedPort};

use super::kernel::KernelSide;
use super::one_port::{Layout, OnLan};
use super::{
    register, run_client, serve, spawn_clients, supervise, ClientReport, NicTotals, Options, Outcome, Report, Server,
    PORT,
};
use crate::bridged::{bridge_drops, BridgedWires};
use crate::hosts::PRIMARY_OWNER;

/// The word the primary sets once the peer's server listens.
const LISTENING: &str = "tuple_filter.listening";
/// Word n is set once process n listens (with `inbound`).
const INBOUND: &str = "tuple_filter.inbound";
/// Process n listens on this port + n.
const INBOUND_PORT: u16 = 7100;
/// Flow rules one process may hold: its connections' (a few dozen here).
const RULES_PER_PROCESS: usize = 1024;

/// The port every process is on (a queue pair each, RSS off: everything
/// no rule claims goes to queue 0), the address they share, and the peer's.
fn layout(opts: &Options) -> Layout {
    Layout {
        name: "nic",
        queues: opts.place.procs * opts.stacks,
        mac: MacAddr([2, 0, 0, 0, 3, 1]),
        ip: IP,
        peer_mac: MacAddr([2, 0, 0, 0, 3, 100]),
        peer_ip: PEER_IP,
    }
}
const IP: Ipv4Addr = Ipv4Addr::new(10, 3, 0, 1);
const PEER_IP: Ipv4Addr = Ipv4Addr::new(10, 3, 0, 100);

/// Process `opts.place.proc_id`'s stack on the shared `port`, allocating as `owner`.
fn group(opts: &Options, port: SharedPort, owner: Owner) -> Result<StackGroup, String> {
    let slot = ProcessSlot { index: opts.place.proc_id, count: opts.place.procs };
    layout(opts).group(opts, (port, owner), ForwardMode::FlowDirector, slot)
}

/// Runs process `opts.place.proc_id`: the primary if it is the first, else a
/// client. `say` hears `ready <pid>` once the port exists.
pub fn run(opts: &Options, say: &mut dyn FnMut(String)) -> Result<Outcome, String> {
    super::run(opts, say, primary, client)
}

/// The NIC: the shared port on the LAN bridge, and its rule book.
struct SharedNic {
    port: SharedPort,
    lan: Bridge,
    wires: BridgedWires,
    rules: PortRules,
    peer_pool: Mempool,
}

impl SharedNic {
    /// The port, started, its wire end on the LAN; returns it with the
    /// peer host's stack group, plugged in too.
    fn new(domain: &Domain, opts: &Options) -> Result<(SharedNic, StackGroup), String> {
        let OnLan { port, wire, mut lan, peer, peer_pool } = layout(opts).build(domain, opts)?;
        let mut wires = BridgedWires::default();
        wires.plug(&mut lan, wire, port.name().to_owned())?;
        let rules = PortRules::new(vec![port.clone()], RULES_PER_PROCESS);
        Ok((SharedNic { port, lan, wires, rules, peer_pool }, peer))
    }
}

impl super::Nic for SharedNic {
    fn poll(&mut self, now: ethdev::Instant) {
        self.lan.poll(now);
    }

    fn control(&mut self, control: &mut ControlServer) -> Vec<ControlEvent> {
        let events = control.poll_serving(&mut self.rules);
        for event in &events {
            if let ControlEvent::LoggedOut(peer) = event {
                self.rules.forget(peer.owner);
            }
        }
        events
    }

    fn reclaim(&mut self, peer: &Peer, dead: &DeadOwner) -> (usize, usize) {
        let reclaimed = self.wires.reclaim(dead);
        let rules = self.rules.forget(peer.owner);
        tracing::warn!(pid = peer.pid, ?reclaimed, rules, "a process died; its queue and rules were reclaimed");
        (reclaimed.held + reclaimed.cached + reclaimed.unsent, reclaimed.left + self.rules.held_by(peer.owner))
    }

    /// Frames still waiting for processes that left go back to the pool
    /// with the bridge and the wire end; a rule left behind is an error.
    fn close(self) -> Result<NicTotals, String> {
        self.lan.check_accounting()?;
        if !self.rules.is_empty() {
            return Err(format!("{} flow rules outlived the processes that asked for them", self.rules.len()));
        }
        let (switched, drops) = (self.lan.switch_stats().switched, bridge_drops(&self.lan));
        let granted = self.rules.granted();
        let SharedNic { port, lan, wires, rules, peer_pool } = self;
        drop((lan, wires, rules));
        Ok(NicTotals {
            switched,
            drops,
            in_use: port.pool().in_use() + peer_pool.in_use(),
            rules: granted,
            ..NicTotals::default()
        })
    }
}

fn primary(opts: &Options, domain: &Domain, say: &mut dyn FnMut(String)) -> Result<Report, String> {
    opts.place.first()?;
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let (nic, peer) = SharedNic::new(domain, opts)?;
    let listening = domain.reserve(LISTENING, 8).map_err(|e| err(&e))?;
    let inbound = domain.reserve(INBOUND, 8 * usize::from(opts.place.procs)).map_err(|e| err(&e))?;
    let control = ControlServer::bind(domain).map_err(|e| err(&e))?;
    // Process 0 is the primary: its port handle makes its rules itself.
    let own = group(opts, nic.port.clone(), PRIMARY_OWNER)?;
    let expected = usize::from(opts.place.procs) * opts.conns as usize;
    let mut server = Server::start(&peer, listening, opts.bytes, expected);
    let to = (&server.spawner, 1);
    // Process 0's own echoes are checked as they go (a task fails on a bad
    // byte) and counted by the server; only the peer's clients are `inbound`.
    let unchecked = Arc::new(Ledger::default());
    spawn_clients(opts, &own, SocketAddr::from((PEER_IP, PORT)), to, &unchecked, Some(&server.listening));
    if opts.inbound {
        serve_inbound(opts, &own, (&server.spawner, 1), &unchecked, &inbound);
        connect_inbound(opts, &peer, &server.spawner, &server.ledger, &inbound);
        server.inbound = expected;
    }
    let kernel = match opts.kernel {
        true => Some(KernelSide::start(opts, (&own, 1), (layout(opts).mac, IP), &peer, &server.spawner)?),
        false => None,
    };
    say(format!("ready {}", std::process::id()));
    let mut report = supervise(opts, control, nic, server, &[peer, own], say)?;
    if let Some((echoed, in_use)) = kernel.map(KernelSide::finish) {
        (report.kernel, report.in_use) = (echoed, report.in_use + in_use);
    }
    Ok(report)
}

/// A client process: its connections, then how many came back intact.
fn client(opts: &Options, domain: &Domain) -> Result<ClientReport, String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let control: Arc<ControlClient> = Arc::new(register(opts, domain)?);
    let port = SharedPort::attach(domain, layout(opts).name, control.owner()).map_err(|e| err(&e))?;
    let group = group(opts, port.with_rules_from(Arc::clone(&control)), control.owner())?;
    let listening = domain.lookup(LISTENING).map_err(|e| err(&e))?;
    let (spawner, ledger) = (Spawner::new(), Arc::new(Ledger::default()));
    let mut expected = opts.conns as usize;
    if opts.inbound {
        let inbound = domain.lookup(INBOUND).map_err(|e| err(&e))?;
        serve_inbound(opts, &group, (&spawner, 0), &ledger, &inbound);
        expected *= 2;
    }
    let server = SocketAddr::from((PEER_IP, PORT));
    run_client(opts, (control, group), &listening, server, (spawner, ledger), expected)
}

/// This process's listener for the LAN peer's connections, on stack 0 of
/// `group`: it says so in its word of `inbound`, then serves `conns`
/// connections of `bytes` each, recorded in `ledger`.
fn serve_inbound(
    opts: &Options,
    group: &StackGroup,
    (spawner, thread): (&Spawner, usize),
    ledger: &Arc<Ledger>,
    inbound: &Zone,
) {
    let api = Api::new(group, 0, Arc::new(RealClock::new()));
    let (tasks, ledger, zone) = (spawner.clone(), Arc::clone(ledger), inbound.clone());
    let (n, conns, bytes) = (opts.place.proc_id, opts.conns, opts.bytes);
    spawner.spawn(thread, "inbound listener", async move {
        let fd = listen(&api, INBOUND_PORT + n).await?;
        if let Some(word) = zone.u64s().get(usize::from(n)) {
            word.store(1, Ordering::Release);
        }
        for _ in 0..conns {
            let (conn, peer) = api.accept(fd).await?;
            let aborted = Arc::new(AtomicUsize::new(0));
            tasks.spawn(
                thread,
                format!("inbound {peer}"),
                serve(api.clone(), conn, peer, bytes, Arc::clone(&ledger), aborted),
            );
        }
        api.close(fd).await
    });
}

/// The LAN peer's `conns` echo connections to every process's listener,
/// each made once that process says it listens (its word of `inbound`),
/// recorded in `ledger`.
fn connect_inbound(opts: &Options, peer: &StackGroup, spawner: &Spawner, ledger: &Arc<Ledger>, inbound: &Zone) {
    for n in 0..opts.place.procs {
        for c in 0..opts.conns {
            let api = Api::new(peer, 0, Arc::new(RealClock::new()));
            let to = SocketAddr::from((IP, INBOUND_PORT + n));
            let id = 1 << 48 | u64::from(n) << 32 | u64::from(c);
            let client = echo::client(api, to, id, opts.bytes, Arc::clone(ledger));
            let zone = inbound.clone();
            spawner.spawn(0, format!("inbound client {n}.{c}"), async move {
                let clock = RealClock::new();
                while zone.u64s().get(usize::from(n)).is_none_or(|w| w.load(Ordering::Acquire) == 0) {
                    sleep_until(&clock, clock.now() + Duration::from_millis(1)).await;
                }
                client.await
            });
        }
    }
}

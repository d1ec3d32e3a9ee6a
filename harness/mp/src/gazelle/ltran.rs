//! gazelle's ltran mode across real processes.
//!
//! The domain's primary is ltran: the forwarder that owns the NIC (its
//! port on a LAN bridge) and switches every frame to an lstack process in
//! software ([`ltran::Forwarder`]), and, beside it on the LAN, the peer
//! host running the echo server. Every other process is an lstack
//! instance: process n holds queues (n - 1)·s .. n·s of the forwarder's
//! shared port `ltran` for its s stacks (`Options::stacks`), all of them
//! one address, each stack registering each of its connections
//! and listener with the forwarder as a flow rule it asks the primary for
//! (gazelle's lstack sends ltran registration messages on its ring), and
//! runs `conns` echo clients to the peer (see [`super`]).
//!
//! With `inbound`, every instance also listens on one port, 7100, as
//! processes of one service do, and once all listen the LAN peer makes
//! `conns` echo connections per instance to it: the forwarder hands each
//! new connection to the listener with the fewest, and the report's
//! `spread` says how many each instance got.
//!
//! When an instance dies, the primary reclaims its queue and buffers and
//! the forwarder forgets its connections and listeners at once (ltran
//! invalidates them when the registration socket hangs up), so the peer's
//! frames for them are dropped and counted, never reset; an heir with the
//! same `--proc-id` takes the queue again.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ethdev::mempool::{DeadOwner, Mempool, Owner};
use ethdev::shm::control::{ControlClient, ControlEvent, ControlServer, Peer};
use ethdev::shm::{Domain, Zone};
use ethdev::{EthDev, MacAddr};
use ltran::{Forwarder, Limits};
use sim::apps::{echo, listen, Ledger};
use sim::exec::{sleep_until, RealClock, Spawner};
use sim::latch::Latch;
use stack::{Api, Clock, ForwardMode, ProcessSlot, StackGroup};
use user_vbridge::Bridge;
use user_veth::shared::{SharedPort, SharedWire};

use super::one_port::{Layout, OnLan};
use super::{register, run_client, serve, supervise, ClientReport, NicTotals, Options, Outcome, Report, Server, PORT};
use crate::bridged::{bridge_drops, lock, plug_locked};
use crate::hosts::PRIMARY_OWNER;

/// The word the primary sets once the peer's server listens.
const LISTENING: &str = "ltran.listening";
/// Word n - 1 is set once instance n listens (with `inbound`).
const INBOUND: &str = "ltran.inbound";
/// Set once every inbound connection is done: instances may leave.
const INBOUND_DONE: &str = "ltran.inbound_done";
/// The port every instance listens on (with `inbound`).
const INBOUND_PORT: u16 = 7100;

/// The forwarder's shared port (a queue pair per instance, RSS off: the
/// forwarder places every frame itself), the address every instance
/// shares, and the peer's.
fn layout(opts: &Options) -> Layout {
    Layout {
        name: "ltran",
        queues: (instances(opts.place.procs) * opts.stacks).max(1),
        mac: MacAddr([2, 0, 0, 0, 4, 1]),
        ip: IP,
        peer_mac: MacAddr([2, 0, 0, 0, 4, 100]),
        peer_ip: PEER_IP,
    }
}
const IP: Ipv4Addr = Ipv4Addr::new(10, 4, 0, 1);
const PEER_IP: Ipv4Addr = Ipv4Addr::new(10, 4, 0, 100);

/// The lstack instances of a run of `procs` processes (all but ltran).
fn instances(procs: u16) -> u16 {
    procs.saturating_sub(1)
}

/// Instance `opts.place.proc_id`'s stack on the forwarder's `port`, allocating as `owner`.
fn group(opts: &Options, port: SharedPort, owner: Owner) -> Result<StackGroup, String> {
    let slot = ProcessSlot { index: opts.place.proc_id - 1, count: instances(opts.place.procs) };
    layout(opts).group(opts, (port, owner), ForwardMode::Ltran, slot)
}

/// Runs process `opts.place.proc_id`: ltran if it is the first, else an
/// lstack instance. `say` hears `ready <pid>` once the port exists.
pub fn run(opts: &Options, say: &mut dyn FnMut(String)) -> Result<Outcome, String> {
    super::run(opts, say, primary, client)
}

/// How often the forwarder publishes its counters.
const PUBLISH_EVERY: Duration = Duration::from_millis(1);

/// ltran: the forwarder on the shared port, its NIC on the LAN bridge.
struct Ltran {
    forwarder: Arc<Mutex<Forwarder>>,
    /// Where the forwarder publishes its counters for `dtnet stats`, and
    /// when next: a tool reads them once a second, so once a millisecond
    /// keeps the table lookups out of most of the forwarding loop's turns.
    published: (Zone, ethdev::Instant),
    lan: Bridge,
    pool: Mempool,
    peer_pool: Mempool,
}

impl Ltran {
    /// The forwarder, its NIC on the LAN; returns it with the peer host's
    /// stack group, plugged in too.
    fn new(domain: &Domain, opts: &Options) -> Result<(Ltran, StackGroup), String> {
        let OnLan { port, wire, mut lan, peer, peer_pool } = layout(opts).build(domain, opts)?;
        let (name, pool) = (port.name().to_owned(), port.pool().clone());
        let forwarder = Arc::new(Mutex::new(Forwarder::new(port, wire, PRIMARY_OWNER, Limits::default())));
        plug_locked(&mut lan, &forwarder, name)?;
        let published = ltran::published::reserve(domain).map_err(|e| e.to_string())?;
        Ok((Ltran { forwarder, published: (published, ethdev::Instant::ZERO), lan, pool, peer_pool }, peer))
    }
}

impl super::Nic for Ltran {
    fn poll(&mut self, now: ethdev::Instant) {
        let mut forwarder = lock(&self.forwarder);
        forwarder.poll(now);
        let (zone, next) = &mut self.published;
        if now >= *next {
            forwarder.publish(zone);
            *next = now + PUBLISH_EVERY;
        }
        drop(forwarder);
        self.lan.poll(now);
    }

    fn control(&mut self, control: &mut ControlServer) -> Vec<ControlEvent> {
        let mut forwarder = lock(&self.forwarder);
        let events = control.poll_serving(&mut *forwarder);
        for event in &events {
            if let ControlEvent::LoggedOut(peer) = event {
                forwarder.forget(peer.owner);
            }
        }
        events
    }

    fn reclaim(&mut self, peer: &Peer, dead: &DeadOwner) -> (usize, usize) {
        let mut forwarder = lock(&self.forwarder);
        let reclaimed = SharedWire::reclaim(&mut [forwarder.wire_mut()], dead);
        let entries = forwarder.forget(peer.owner);
        tracing::warn!(pid = peer.pid, ?reclaimed, entries, "an instance died; its queue and entries were reclaimed");
        let left = reclaimed.left + forwarder.table().held_by(peer.owner);
        (reclaimed.held + reclaimed.cached + reclaimed.unsent, left)
    }

    /// Frames still waiting for instances that left go back to the pool
    /// with the bridge and the forwarder; an entry left behind is an error.
    fn close(self) -> Result<NicTotals, String> {
        self.lan.check_accounting()?;
        let (switched, drops) = (self.lan.switch_stats().switched, bridge_drops(&self.lan));
        let (table_len, stats, moved) = {
            let forwarder = lock(&self.forwarder);
            (forwarder.table().len(), forwarder.table().stats().clone(), forwarder.stats())
        };
        if table_len > 0 {
            return Err(format!("{table_len} ltran entries outlived the instances that made them"));
        }
        let Ltran { forwarder, published: _, lan, pool, peer_pool } = self;
        drop((lan, forwarder));
        let misses = stats.misses.values().sum::<u64>() + moved.unplaced;
        tracing::info!(?stats, ?moved, "ltran's totals");
        Ok(NicTotals {
            switched,
            drops,
            in_use: pool.in_use() + peer_pool.in_use(),
            rules: stats.registered as usize,
            spread: stats.dispatched.values().copied().collect(),
            misses,
        })
    }
}

fn primary(opts: &Options, domain: &Domain, say: &mut dyn FnMut(String)) -> Result<Report, String> {
    opts.place.first()?;
    if opts.kernel {
        return Err(
            "a kernel sharing the port is tuple_filter's: ltran's process 0 has no lstack queues to share".into()
        );
    }
    if instances(opts.place.procs) == 0 {
        return Err("ltran needs at least one lstack instance: --num-procs 2 or more".into());
    }
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let (nic, peer) = Ltran::new(domain, opts)?;
    let listening = domain.reserve(LISTENING, 8).map_err(|e| err(&e))?;
    let inbound = domain.reserve(INBOUND, 8 * usize::from(instances(opts.place.procs))).map_err(|e| err(&e))?;
    let done = domain.reserve(INBOUND_DONE, 8).map_err(|e| err(&e))?;
    let control = ControlServer::bind(domain).map_err(|e| err(&e))?;
    let expected = usize::from(instances(opts.place.procs)) * opts.conns as usize;
    let mut server = Server::start(&peer, listening, opts.bytes, expected);
    if opts.inbound {
        connect_inbound(opts, &peer, &server, (&inbound, &done));
        server.inbound = expected;
    }
    say(format!("ready {}", std::process::id()));
    supervise(opts, control, nic, server, &[peer], say)
}

/// An lstack instance: its connections, then how many came back intact.
fn client(opts: &Options, domain: &Domain) -> Result<ClientReport, String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let control: Arc<ControlClient> = Arc::new(register(opts, domain)?);
    let port = SharedPort::attach(domain, layout(opts).name, control.owner()).map_err(|e| err(&e))?;
    let group = group(opts, port.with_rules_from(Arc::clone(&control)), control.owner())?;
    let listening = domain.lookup(LISTENING).map_err(|e| err(&e))?;
    let (spawner, ledger) = (Spawner::new(), Arc::new(Ledger::default()));
    if opts.inbound {
        let words = [INBOUND, INBOUND_DONE].map(|name| domain.lookup(name).map_err(|e| err(&e)));
        let [inbound, done] = words;
        serve_inbound(opts, &group, &spawner, &inbound?, done?);
    }
    let server = SocketAddr::from((PEER_IP, PORT));
    run_client(opts, (control, group), &listening, server, (spawner, ledger), opts.conns as usize)
}

/// Waits until word `index` of `zone` is set.
async fn set(zone: &Zone, index: usize) {
    let clock = RealClock::new();
    while zone.u64s().get(index).is_none_or(|w| w.load(Ordering::Acquire) == 0) {
        sleep_until(&clock, clock.now() + Duration::from_millis(1)).await;
    }
}

/// This instance's listener on [`INBOUND_PORT`]: it says so in its word of
/// `inbound`, serves what the forwarder hands it (the peer checks every
/// byte) until `done` is set, then lets the instance leave.
fn serve_inbound(opts: &Options, group: &StackGroup, spawner: &Spawner, inbound: &Zone, done: Zone) {
    let api = Api::new(group, 0, Arc::new(RealClock::new()));
    let (tasks, zone, word) = (spawner.clone(), inbound.clone(), usize::from(opts.place.proc_id - 1));
    let bytes = opts.bytes;
    spawner.spawn_daemon(0, "inbound listener", async move {
        let fd = listen(&api, INBOUND_PORT).await?;
        if let Some(w) = zone.u64s().get(word) {
            w.store(1, Ordering::Release);
        }
        let (ledger, aborted) = (Arc::new(Ledger::default()), Arc::new(AtomicUsize::new(0)));
        loop {
            let (conn, peer) = api.accept(fd).await?;
            let serve = serve(api.clone(), conn, peer, bytes, Arc::clone(&ledger), Arc::clone(&aborted));
            tasks.spawn(0, format!("inbound {peer}"), serve);
        }
    });
    spawner.spawn(0, "until the peer's connections are done", async move {
        set(&done, 0).await;
        Ok(())
    });
}

/// The LAN peer's `conns` echo connections per instance to
/// [`INBOUND_PORT`], made once every instance listens (its word of
/// `inbound`), recorded in the server's ledger; `done` is set once all have
/// ended.
fn connect_inbound(opts: &Options, peer: &StackGroup, server: &Server, (inbound, done): (&Zone, &Zone)) {
    let count = usize::from(instances(opts.place.procs));
    let total = count * opts.conns as usize;
    let ended = Latch::new(total);
    for c in 0..total {
        let api = Api::new(peer, 0, Arc::new(RealClock::new()));
        let to = SocketAddr::from((IP, INBOUND_PORT));
        let client = echo::client(api, to, 1 << 48 | c as u64, opts.bytes, Arc::clone(&server.ledger));
        let (zone, ended) = (inbound.clone(), Arc::clone(&ended));
        server.spawner.spawn(0, format!("inbound client {c}"), async move {
            for n in 0..count {
                set(&zone, n).await;
            }
            let result = client.await;
            ended.count_down();
            result
        });
    }
    let done = done.clone();
    server.spawner.spawn(0, "inbound done", async move {
        ended.wait().await;
        if let Some(w) = done.u64s().first() {
            w.store(1, Ordering::Release);
        }
        Ok(())
    });
}

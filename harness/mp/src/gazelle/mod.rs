//! gazelle's multi-process modes, run as real processes.
//!
//! Three of gazelle's ways to spread lstack processes over one NIC:
//! - [`vf`]: each process on a virtual function of its own, the NIC's
//!   embedded switch between them;
//! - [`tuple_filter`]: every process on one port and one address, each
//!   connection steered to its process's queue by a flow rule that only the
//!   NIC's primary may make, and process 0 handing neighbour messages on;
//! - [`ltran`]: a forwarder process owns the NIC and switches every frame
//!   to an lstack process in software, by its connection and listener
//!   tables.
//!
//! What the modes share lives here. The domain's primary plays the NIC
//! ([`Nic`]) and runs the TCP echo server every client talks to; the other
//! processes (and, in tuple_filter, the primary's own gazelle process 0)
//! run `conns` echo clients of `bytes` each, every chunk checked. A
//! process killed mid-run (`kill -9`) loses everything it held to the
//! primary's reclamation, and one restarted with the same `--proc-id`
//! takes its place. The server learns of the dead's connections as a kernel
//! would: keep-alive probes go unanswered (or the heir's fresh stack resets
//! them) and `TCP_USER_TIMEOUT` aborts them.
//!
//! The primary's checks: every client process finished once (the first or
//! an heir), every connection the server accepted was served in full or
//! aborted after its client died (and only then), the NIC dropped nothing
//! and its counters add up, nothing belongs to the dead, and once everyone
//! has left every pool is back to its baseline. A client's checks: every
//! connection echoed intact.

mod kernel;
pub mod ltran;
mod one_port;
pub mod tuple_filter;
pub mod vf;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ethdev::mempool::DeadOwner;
use ethdev::shm::control::{ControlClient, ControlEvent, ControlServer, Peer};
use ethdev::shm::{Domain, Zone};
use sim::apps::{echo, listen, Ledger, Side};
use sim::exec::{self, RealClock, Spawner};
use sim::latch::Latch;
use stack::{Api, Fd, SockOpt, StackGroup, ThreadModel};

use crate::place::Place;

/// How long the whole run may take, and how long the stacks keep running
/// after their tasks to finish closing.
const LINGER: Duration = Duration::from_secs(60);
const DRAIN: Duration = Duration::from_millis(50);
/// How long the server's connections wait for a vanished client that has
/// no heir (an heir's stack resets the dead's connections at once): well
/// above any stall a live client's process suffers on a loaded machine
/// (at 2 s, one trial in ~24 beside a busy loop on two cores left a live
/// connection unfinished; at 5 s, one broad stress run in three did).
const USER_TIMEOUT: Duration = Duration::from_secs(10);
/// The server's port.
const PORT: u16 = 7000;

/// What to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// The domain, its processes (process 0 the primary), and this one's number.
    pub place: Place,
    /// Connections each client process makes.
    pub conns: u32,
    /// Bytes echoed per connection.
    pub bytes: u64,
    /// Who polls the stacks.
    pub model: ThreadModel,
    /// Stacks each lstack process runs (gazelle's `num_cpus`), on a queue
    /// each, its clients spread over them; gazelle_vf's server and ltran's
    /// forwarder, both process 0, keep one.
    pub stacks: u16,
    /// tuple_filter and ltran: every process also listens, and the LAN
    /// peer makes `conns` echo connections per process to them (see
    /// [`tuple_filter`] and [`ltran`]).
    pub inbound: bool,
    /// tuple_filter: process 0 shares the port with the Linux kernel,
    /// which the LAN peer echoes with too (see [`kernel`]; needs root).
    pub kernel: bool,
}

/// What the primary saw.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Connections served in full, and those expected (each client's).
    pub served: (usize, usize),
    /// Connections aborted because their client vanished.
    pub aborted: usize,
    /// Connections accepted.
    pub accepted: usize,
    /// Frames the NIC's switch carried.
    pub switched: u64,
    /// Frames it dropped.
    pub switch_drops: u64,
    /// Processes that died, with the buffers reclaimed from each.
    pub deaths: Vec<(u32, usize)>,
    /// Buffers, queues and flow rules still the dead's after reclamation.
    pub dead_own: usize,
    /// Buffers in use in the NIC's pools once everyone left.
    pub in_use: usize,
    /// Flow rules the primary made for other processes (tuple_filter).
    pub rules: usize,
    /// Connections the primary's own clients (the LAN peer's to every
    /// process's listener, with `inbound`) echoed intact, and those expected.
    pub inbound: (usize, usize),
    /// New connections the forwarder handed to each instance (ltran).
    pub spread: Vec<u64>,
    /// Frames the forwarder dropped (ltran): for no connection or
    /// listener, not its to take, or with no instance to take them.
    pub misses: u64,
    /// The LAN peer's connections to the kernel sharing process 0's port
    /// echoed intact, and those it made (tuple_filter with `kernel`).
    pub kernel: (usize, usize),
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (served, expected) = self.served;
        write!(f, "served {served} of {expected} connections in full, ")?;
        write!(f, "aborted {} of {} accepted; switched {}, ", self.aborted, self.accepted, self.switched)?;
        write!(f, "switch drops {}; deaths {}, dead own {}; ", self.switch_drops, self.deaths.len(), self.dead_own)?;
        write!(f, "pools in use {}; flow rules granted {}", self.in_use, self.rules)?;
        if self.inbound.1 > 0 {
            write!(f, "; inbound {} of {} echoed intact", self.inbound.0, self.inbound.1)?;
        }
        if self.kernel.1 > 0 {
            write!(f, "; kernel {} of {} echoed intact", self.kernel.0, self.kernel.1)?;
        }
        if !self.spread.is_empty() || self.misses > 0 {
            write!(f, "; spread {:?}, forwarder misses {}", self.spread, self.misses)?;
        }
        Ok(())
    }
}

impl Report {
    /// Whether the primary's checks held (see the module doc).
    pub fn passed(&self) -> bool {
        let (served, expected) = self.served;
        // Every client's connections served, by its first run or its
        // heir; a connection aborted only after a death; nothing lost.
        let all = served >= expected && served + self.aborted == self.accepted;
        let aborts_explained = self.aborted == 0 || !self.deaths.is_empty();
        // A forwarder drops frames only for connections of the dead.
        let forwarded = self.misses == 0 || !self.deaths.is_empty();
        let clean = self.switch_drops == 0 && self.dead_own == 0 && self.in_use == 0 && forwarded;
        all && aborts_explained && clean && self.inbound.0 == self.inbound.1 && self.kernel.0 == self.kernel.1
    }
}

/// What a process did, by the role it got.
#[derive(Debug)]
pub enum Outcome {
    /// Process 0: the NIC and the server.
    Primary(Report),
    /// A client process.
    Client(ClientReport),
}

/// What a client process saw.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientReport {
    /// Connections echoed intact (its own and, with `inbound`, the
    /// peer's), and those expected.
    pub intact: (usize, usize),
    /// Its own connections echoed intact, by the stack that made them.
    pub per_stack: Vec<usize>,
}

impl ClientReport {
    /// Whether every connection was echoed intact.
    pub fn passed(&self) -> bool {
        self.intact.0 == self.intact.1
    }
}

impl std::fmt::Display for ClientReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (intact, expected) = self.intact;
        write!(f, "{intact} of {expected} connections echoed intact")?;
        if self.per_stack.len() > 1 {
            write!(f, ", by stack {:?}", self.per_stack)?;
        }
        Ok(())
    }
}

/// A mode's primary, given the domain it made and where to say things.
type Primary = fn(&Options, &Domain, &mut dyn FnMut(String)) -> Result<Report, String>;
/// A mode's client process.
type Client = fn(&Options, &Domain) -> Result<ClientReport, String>;

/// Runs process `opts.place.proc_id` of a mode: `primary` if it is the first to
/// open the domain, else `client`.
fn run(opts: &Options, say: &mut dyn FnMut(String), primary: Primary, client: Client) -> Result<Outcome, String> {
    let domain = opts.place.open()?;
    if domain.is_primary() {
        primary(opts, &domain, say).map(Outcome::Primary)
    } else {
        client(opts, &domain).map(Outcome::Client)
    }
}

/// The NIC a mode's primary plays.
trait Nic {
    /// Moves frames once.
    fn poll(&mut self, now: ethdev::Instant);
    /// Serves the control channel once: its events, after the NIC has
    /// answered the requests that came in.
    fn control(&mut self, control: &mut ControlServer) -> Vec<ControlEvent>;
    /// Takes back what the dead process `peer` held; returns the buffers
    /// reclaimed and what is still its own afterwards.
    fn reclaim(&mut self, peer: &Peer, dead: &DeadOwner) -> (usize, usize);
    /// Checks the NIC's accounting and takes it down; returns its totals.
    fn close(self) -> Result<NicTotals, String>;
}

/// What a NIC counted over a run.
#[derive(Default)]
struct NicTotals {
    /// Frames its switch carried.
    switched: u64,
    /// Frames it dropped.
    drops: u64,
    /// Buffers still in use in its pools once taken down.
    in_use: usize,
    /// Flow rules (or ltran registrations) it made for other processes.
    rules: usize,
    /// New connections a forwarder handed to each instance.
    spread: Vec<u64>,
    /// Frames a forwarder dropped.
    misses: u64,
}

/// Where this process's search for ephemeral ports starts
/// ([`stack::GroupConfig::ephemeral_offset`]): its pid, spread over the
/// port range by a multiplicative hash, so that an heir, whose pid is
/// often its predecessor's plus a few, starts far from the ports whose
/// connections its predecessor's peers may still hold.
fn fresh_ports() -> u16 {
    (std::process::id().wrapping_mul(0x9e37_79b1) >> 16) as u16
}

/// Client process `n` registers on the control channel as this prefix and
/// n; the primary reads n back from the name when the client logs out.
const CLIENT_NAME: &str = "gazelle-";

/// The primary's loop: serves the control channel, reclaims the dead,
/// drives the NIC, and runs `groups` (the server's, and any stacks of the
/// primary's own) until every client process has finished once and the
/// server's connections are done. The server's spawner holds its tasks and
/// any the primary runs itself; the connections of the latter that are
/// clients' (in `server.ledger`) make the report's `inbound`.
fn supervise(
    opts: &Options,
    mut control: ControlServer,
    mut nic: impl Nic,
    server: Server,
    groups: &[StackGroup],
    mut say: impl FnMut(String),
) -> Result<Report, String> {
    let mut report = Report::default();
    let started = Instant::now();
    let mut finished = vec![false; usize::from(opts.place.procs)];
    finished[0] = true;
    std::thread::scope(|s| -> Result<(), String> {
        let stacks = s.spawn(|| exec::threads::run_groups(groups, &server.spawner, LINGER, DRAIN));
        let mut live = 0u16;
        while !stacks.is_finished() {
            for event in nic.control(&mut control) {
                match event {
                    ControlEvent::Registered(peer) => {
                        live += 1;
                        say(format!("joined {}", peer.pid));
                    }
                    ControlEvent::LoggedOut(peer) => {
                        live -= 1;
                        let n = peer.name.strip_prefix(CLIENT_NAME).and_then(|n| n.parse::<usize>().ok());
                        if let Some(done) = n.and_then(|n| finished.get_mut(n)) {
                            *done = true;
                        }
                    }
                    ControlEvent::Died(peer, dead) => {
                        let (reclaimed, left) = nic.reclaim(&peer, &dead);
                        report.deaths.push((peer.pid, reclaimed));
                        report.dead_own += left;
                        live -= 1;
                        say(format!("died {}", peer.pid));
                    }
                    ControlEvent::Refused { .. } => {}
                }
            }
            if live == 0 && finished.iter().all(|&f| f) {
                server.release.count_down();
            }
            if started.elapsed() > LINGER + Duration::from_secs(5) {
                return Err(format!("after {LINGER:?}: clients finished {finished:?}, {live} attached"));
            }
            nic.poll(ethdev::Instant::ZERO + started.elapsed());
            std::thread::yield_now();
        }
        let outcome = stacks.join().map_err(|_| "the primary's stack threads panicked".to_string())?;
        let stats: Vec<_> = groups.iter().flat_map(|g| (0..g.len()).map(|i| g.stats(i))).collect();
        outcome.ok().map_err(|why| format!("primary: {why}; stacks: {stats:?}"))
    })?;
    let full = server.ledger.side(Side::Server).iter().filter(|r| r.bytes == opts.bytes).count();
    report.accepted = server.accepted.load(Ordering::Acquire);
    report.aborted = server.aborted.load(Ordering::Acquire);
    report.served = (full, server.expected);
    let own = server.ledger.side(Side::Client);
    report.inbound = (own.iter().filter(|r| r.bytes == opts.bytes).count(), server.inbound);
    drop(server);
    let totals = nic.close()?;
    (report.switched, report.switch_drops) = (totals.switched, totals.drops);
    (report.in_use, report.rules) = (totals.in_use, totals.rules);
    (report.spread, report.misses) = (totals.spread, totals.misses);
    Ok(report)
}

/// The echo server every client talks to, and what it counts.
struct Server {
    spawner: Spawner,
    ledger: Arc<Ledger>,
    /// Counted down once every client has finished: the server may stop.
    release: Arc<Latch>,
    /// Open once the server listens.
    listening: Arc<Latch>,
    accepted: Arc<AtomicUsize>,
    aborted: Arc<AtomicUsize>,
    /// Connections it expects to serve in full.
    expected: usize,
    /// Client connections the primary's own tasks are to make (see [`supervise`]).
    inbound: usize,
}

impl Server {
    /// Spawns the server's tasks on stack 0 of `group`, on application
    /// thread 0: a listener that says so in `listening` and serves every
    /// connection (`bytes` each) in a task of its own, and a task that
    /// ends when [`Server::release`] is counted down (the listener is a
    /// daemon, so the run ends once that task and every connection are done).
    fn start(group: &StackGroup, listening: Zone, bytes: u64, expected: usize) -> Server {
        let server = Server {
            spawner: Spawner::new(),
            ledger: Arc::default(),
            release: Latch::new(1),
            listening: Latch::new(1),
            accepted: Arc::default(),
            aborted: Arc::default(),
            expected,
            inbound: 0,
        };
        let release = Arc::clone(&server.release);
        server.spawner.spawn(0, "until every client is done", async move {
            release.wait().await;
            Ok(())
        });
        let api = Api::new(group, 0, Arc::new(RealClock::new()));
        let (tasks, ledger) = (server.spawner.clone(), Arc::clone(&server.ledger));
        let (accepted, aborted) = (Arc::clone(&server.accepted), Arc::clone(&server.aborted));
        let latch = Arc::clone(&server.listening);
        server.spawner.spawn_daemon(0, "listener", async move {
            let fd = listen(&api, PORT).await?;
            if let Some(word) = listening.u64s().first() {
                word.store(1, Ordering::Release);
            }
            latch.count_down();
            loop {
                let (conn, peer) = api.accept(fd).await?;
                accepted.fetch_add(1, Ordering::AcqRel);
                let serve = serve(api.clone(), conn, peer, bytes, Arc::clone(&ledger), Arc::clone(&aborted));
                tasks.spawn(0, format!("echo {peer}"), serve);
            }
        });
        server
    }
}

/// Echoes one connection of `bytes`; one whose client vanished ends
/// early, aborted by `TCP_USER_TIMEOUT` or reset by the client's heir (or
/// cut short when the aborted socket reads as closed), and is counted.
async fn serve(
    api: Api,
    conn: Fd,
    peer: SocketAddr,
    bytes: u64,
    ledger: Arc<Ledger>,
    aborted: Arc<AtomicUsize>,
) -> std::io::Result<()> {
    api.setsockopt(conn, SockOpt::UserTimeout(Some(USER_TIMEOUT))).await?;
    match echo::handle(api.clone(), conn, peer, ledger).await {
        Ok(echoed) if echoed == bytes => {}
        Ok(echoed) => {
            tracing::info!(%peer, echoed, "a connection ended early");
            aborted.fetch_add(1, Ordering::AcqRel);
        }
        Err(e) => {
            tracing::info!(%peer, %e, "a connection ended without its client");
            aborted.fetch_add(1, Ordering::AcqRel);
            api.close(conn).await?;
        }
    }
    Ok(())
}

/// Spawns this process's `conns` echo clients of `bytes` to `server`,
/// client c on stack c mod the stacks of `group`, run by `spawner`'s
/// application thread `thread` plus that stack's number, checked in
/// `ledger`; with `ready`, each waits for it to open first.
fn spawn_clients(
    opts: &Options,
    group: &StackGroup,
    server: SocketAddr,
    (spawner, thread): (&Spawner, usize),
    ledger: &Arc<Ledger>,
    ready: Option<&Arc<Latch>>,
) {
    for c in 0..opts.conns {
        let home = c as usize % group.len();
        let api = Api::new(group, home, Arc::new(RealClock::new()));
        let id = u64::from(opts.place.proc_id) << 32 | u64::from(c);
        let client = echo::client(api, server, id, opts.bytes, Arc::clone(ledger));
        let ready = ready.cloned();
        spawner.spawn(thread + home, format!("client {c}"), async move {
            if let Some(ready) = ready {
                ready.wait().await;
            }
            client.await
        });
    }
}

/// A client process once registered as `control` with its stacks in
/// `group`: waits for the server to listen (the word `listening`), runs its
/// clients beside whatever tasks `spawner` already holds (which record
/// their connections in `ledger` too), logs out; reports how many
/// connections came back intact, of the `expected` ones.
fn run_client(
    opts: &Options,
    (control, group): (Arc<ControlClient>, StackGroup),
    listening: &Zone,
    server: SocketAddr,
    (spawner, ledger): (Spawner, Arc<Ledger>),
    expected: usize,
) -> Result<ClientReport, String> {
    let started = Instant::now();
    while listening.u64s().first().is_none_or(|w| w.load(Ordering::Acquire) == 0) {
        if control.primary_gone() || started.elapsed() > LINGER {
            return Err(format!("domain {:?}: the server never listened", opts.place.prefix));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    spawn_clients(opts, &group, server, (&spawner, 0), &ledger, None);
    let outcome = exec::threads::run_groups(std::slice::from_ref(&group), &spawner, LINGER, DRAIN);
    let intact = ledger.records().into_iter().filter(|r| r.bytes == opts.bytes).collect::<Vec<_>>();
    let mut per_stack = vec![0; group.len()];
    for record in intact.iter().filter(|r| r.side == Side::Client) {
        if let Some(count) = per_stack.get_mut(record.stack) {
            *count += 1;
        }
    }
    // Where frames stopped, should the run fail.
    let stats: Vec<_> = (0..group.len()).map(|i| group.stats(i)).collect();
    drop(group);
    if control.primary_gone() {
        return Err(format!("domain {:?}: the primary process died", opts.place.prefix));
    }
    // The stacks (and any port that asked through it) are gone: only
    // this handle is left to say goodbye with.
    if let Some(control) = Arc::into_inner(control) {
        control.logout();
    }
    outcome.ok().map_err(|why| format!("client {}: {why}; stacks: {stats:?}", opts.place.proc_id))?;
    Ok(ClientReport { intact: (intact.len(), expected), per_stack })
}

/// Registers client process `opts.place.proc_id` on `domain`'s control channel,
/// refusing a number outside 1..procs.
fn register(opts: &Options, domain: &Domain) -> Result<ControlClient, String> {
    opts.place.secondary()?;
    ControlClient::register(domain, &format!("{CLIENT_NAME}{}", opts.place.proc_id)).map_err(|e| e.to_string())
}

//! `simple_mp`: a primary and a secondary exchange messages both ways.
//!
//! As in DPDK's sample, the primary makes pool `MSG_POOL` and rings
//! `PRI_2_SEC` and `SEC_2_PRI`; each side allocates a buffer, writes a
//! message, and sends it to the other, which frees it. Here the rings are
//! the domain's single-producer rings of [`MbufRef`] words, every message
//! is checked ([`crate::message`]), the secondary registers on the control
//! channel, and the primary outlives it: if the secondary dies, the primary
//! reclaims what it held and stashed and drains the ring it was reading,
//! so `MSG_POOL` ends at its baseline whatever happened.
//!
//! A `hostile` secondary sends garbage instead of references, scribbles its
//! ring's head and the owner words of free buffers; the primary counts all
//! of it and finishes its own work.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use ethdev::handover;
use ethdev::mempool::{MbufRef, Owner, PoolTable};
use ethdev::shm::control::{ControlClient, ControlEvent, ControlServer};
use ethdev::shm::ring::{self, ShmConsumer, ShmProducer};
use ethdev::shm::{Domain, DomainOptions, Role, Zone};
use ethdev::{Mbuf, Mempool, MempoolConfig};

use crate::message::{self, Checker};

/// DPDK's names for the sample's objects.
pub const POOL: &str = "MSG_POOL";
/// The ring the primary sends on.
pub const PRI_2_SEC: &str = "PRI_2_SEC";
/// The ring the secondary sends on.
pub const SEC_2_PRI: &str = "SEC_2_PRI";
/// Buffers in `MSG_POOL`.
const POOL_BUFFERS: u32 = 1024;
/// Words per ring.
const RING_WORDS: u32 = 256;
/// Messages moved per step at most.
const BURST: usize = 32;
/// The primary's owner id; the secondary gets one from the control channel.
const PRIMARY_OWNER: Owner = Owner(1);
/// Sender bytes in the messages.
const FROM_PRIMARY: u8 = 1;
const FROM_SECONDARY: u8 = 2;
/// How long the primary waits for its secondary to finish after its own work.
const LINGER: Duration = Duration::from_secs(30);

/// What to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// The domain's prefix.
    pub prefix: String,
    /// Runtime directory holding domains.
    pub base: PathBuf,
    /// Messages each side sends.
    pub messages: u32,
    /// How long a secondary waits for its primary.
    pub wait: Duration,
    /// Secondary only: send garbage instead of messages.
    pub hostile: bool,
}

/// What a side saw.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Messages sent.
    pub sent: u32,
    /// Messages received intact and in order.
    pub received: u32,
    /// Messages received damaged or out of order.
    pub bad_messages: u64,
    /// Ring words that named no buffer in transit (refused, counted).
    pub bad_refs: u64,
    /// Ring positions the peer wrote out of range (refused, counted).
    pub refused_positions: u64,
    /// Pool slots found in an impossible state (left out, counted).
    pub corrupt_slots: u64,
    /// Primary: what was reclaimed after the secondary died.
    pub reclaimed: Option<Reclaim>,
    /// `MSG_POOL` buffers in use when the side finished.
    pub in_use: usize,
}

/// What the primary took back from a dead secondary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reclaim {
    /// Its pid.
    pub pid: u32,
    /// Buffers it held.
    pub held: usize,
    /// Buffers its caches stashed.
    pub cached: usize,
    /// Buffers left in the ring it read, drained and freed.
    pub drained: usize,
    /// Buffers it died taking off the free list or sending, swept back.
    pub lost: usize,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "sent {} received {} intact, bad messages {}, bad refs {}, refused positions {}, corrupt slots {}",
            self.sent, self.received, self.bad_messages, self.bad_refs, self.refused_positions, self.corrupt_slots
        )?;
        if let Some(r) = self.reclaimed {
            write!(
                f,
                "; peer {} died: reclaimed {} held {} cached {} drained {} lost",
                r.pid, r.held, r.cached, r.drained, r.lost
            )?;
        }
        write!(f, "; {POOL} in use {}", self.in_use)
    }
}

/// One side's ends: its pool, its rings and its counts.
struct Endpoint {
    pool: Mempool,
    table: PoolTable,
    tx: ShmProducer,
    rx: ShmConsumer,
    owner: Owner,
    sender: u8,
    checker: Checker,
    report: Report,
}

impl Endpoint {
    fn new(pool: Mempool, tx: &Zone, rx: &Zone, owner: Owner, sender: u8) -> Result<Endpoint, String> {
        let mut table = PoolTable::new();
        table.add(pool.clone());
        let tx = ShmProducer::attach(tx).map_err(|e| e.to_string())?;
        let rx = ShmConsumer::attach(rx).map_err(|e| e.to_string())?;
        Ok(Endpoint { pool, table, tx, rx, owner, sender, checker: Checker::default(), report: Report::default() })
    }

    /// Sends up to a burst of the `total` messages; whether any moved.
    fn send(&mut self, total: u32) -> bool {
        let mut words = Vec::with_capacity(BURST);
        while words.len() < BURST && self.report.sent + (words.len() as u32) < total {
            let Some(mut m) = self.pool.alloc(self.owner) else { break };
            message::write(&mut m, self.sender, self.report.sent + words.len() as u32);
            words.push(m.into_ref(0).to_word());
        }
        let sent = self.tx.enqueue_burst(&words);
        for &word in &words[sent..] {
            // Not taken by the ring: claim it back and free it.
            drop(self.table.claim(MbufRef::from_word(word), self.owner));
        }
        self.report.sent += sent as u32;
        self.report.refused_positions = self.tx.refused() + self.rx.refused();
        sent > 0
    }

    /// Receives and checks up to a burst; whether anything came. Each
    /// buffer is claimed before the ring lets go of its reference, so a
    /// kill at any point leaves it findable (`ShmConsumer::consume`).
    fn receive(&mut self) -> bool {
        let (table, owner, checker, report) = (&self.table, self.owner, &mut self.checker, &mut self.report);
        let n = self.rx.consume(BURST, |word| match table.claim(MbufRef::from_word(word), owner) {
            Ok(m) => {
                checker.check(m.data());
            }
            Err(_) => report.bad_refs += 1,
        });
        self.report.refused_positions = self.tx.refused() + self.rx.refused();
        n > 0
    }

    fn finish(mut self, peer: u8) -> Report {
        self.report.received = self.checker.received_from(peer);
        self.report.bad_messages = self.checker.bad;
        self.report.corrupt_slots = self.pool.corrupt_slots();
        self.report.in_use = self.pool.in_use();
        self.report
    }
}

fn options(opts: &Options, wait: Duration) -> DomainOptions {
    DomainOptions { base: opts.base.clone(), wait, ..DomainOptions::default() }
}

fn idle() {
    std::thread::sleep(Duration::from_micros(50));
}

/// Runs the primary: makes the objects, serves the control channel,
/// exchanges messages, and stays until its secondary logged out or died.
/// `say` hears `ready <pid>` once the objects exist and `registered <pid>
/// <name>` when the secondary arrives.
pub fn primary(opts: &Options, mut say: impl FnMut(String)) -> Result<Report, String> {
    let err = |e: ethdev::shm::ShmError| e.to_string();
    let domain = Domain::open(&opts.prefix, Role::Primary, &options(opts, Duration::ZERO)).map_err(err)?;
    let config = MempoolConfig::new(POOL, POOL_BUFFERS).data_room(256);
    let zone = domain.reserve(POOL, config.region_size().map_err(|e| e.to_string())?).map_err(err)?;
    let pool = Mempool::create_in(&zone, config).map_err(|e| e.to_string())?;
    let mut rings = Vec::new();
    for name in [PRI_2_SEC, SEC_2_PRI] {
        let zone = domain.reserve(name, ring::ring_bytes(RING_WORDS)).map_err(err)?;
        ring::create(&zone, RING_WORDS).map_err(err)?;
        rings.push(zone);
    }
    let mut control = ControlServer::bind(&domain).map_err(err)?;
    let mut me = Endpoint::new(pool, &rings[0], &rings[1], PRIMARY_OWNER, FROM_PRIMARY)?;
    say(format!("ready {}", std::process::id()));
    let started = Instant::now();
    let (mut registered, mut peer_gone) = (false, false);
    while !peer_gone {
        for event in control.poll() {
            match event {
                ControlEvent::Registered(p) => {
                    tracing::info!(pid = p.pid, name = %p.name, owner = p.owner.0, "secondary registered");
                    say(format!("registered {} {}", p.pid, p.name));
                    registered = true;
                }
                ControlEvent::LoggedOut(_) => peer_gone = true,
                ControlEvent::Died(p, dead) => {
                    // Drain first: what the dead had claimed but not yet
                    // released from the ring is then refused by the drain
                    // and freed by the reclaim, never freed twice.
                    let drained = drain(&rings[0], &me.table)?;
                    let freed = me.pool.reclaim(&dead);
                    // The secondary was the only other user: the pool is
                    // ours alone now, so a slot it died taking can be found.
                    while me.receive() {}
                    let lost = me.pool.reclaim_unsent(&dead) + me.pool.sweep_lost();
                    let (held, cached) = (freed.held, freed.cached);
                    me.report.reclaimed = Some(Reclaim { pid: p.pid, held, cached, drained, lost });
                    tracing::warn!(
                        pid = p.pid,
                        owner = p.owner.0,
                        held,
                        cached,
                        drained,
                        lost,
                        "secondary died; reclaimed"
                    );
                    peer_gone = true;
                }
                ControlEvent::Refused { .. } => {}
            }
        }
        if peer_gone {
            break;
        }
        if started.elapsed() > LINGER {
            let what = if registered { "finish" } else { "register" };
            return Err(format!("the secondary did not {what} within {LINGER:?}"));
        }
        if !(me.send(opts.messages) | me.receive()) {
            idle();
        }
    }
    while me.receive() {}
    Ok(me.finish(FROM_SECONDARY))
}

/// Takes over the reading side of a dead process's ring and frees what it
/// left there in transit ([`handover::drain`]).
fn drain(zone: &Zone, table: &PoolTable) -> Result<usize, String> {
    handover::drain(zone, table, PRIMARY_OWNER).map(|found| found.in_transit).map_err(|e| e.to_string())
}

/// Runs the secondary: registers, exchanges messages, logs out.
pub fn secondary(opts: &Options, name: &str) -> Result<Report, String> {
    let err = |e: ethdev::shm::ShmError| e.to_string();
    let domain = Domain::open(&opts.prefix, Role::Secondary, &options(opts, opts.wait)).map_err(err)?;
    let client = ControlClient::register(&domain, name).map_err(err)?;
    let pool = Mempool::attach(&domain.lookup(POOL).map_err(err)?).map_err(|e| e.to_string())?;
    let (tx, rx) = (domain.lookup(SEC_2_PRI).map_err(err)?, domain.lookup(PRI_2_SEC).map_err(err)?);
    let mut me = Endpoint::new(pool, &tx, &rx, client.owner(), FROM_SECONDARY)?;
    let named = if opts.hostile { hostile(&mut me, &tx, opts.messages) } else { Vec::new() };
    while me.checker.received_from(FROM_PRIMARY) < opts.messages || me.report.sent < opts.messages {
        if client.primary_gone() {
            return Err(format!("domain {:?}: the primary process died", opts.prefix));
        }
        if !(me.send(opts.messages) | me.receive()) {
            idle();
        }
    }
    drop(named);
    let report = me.finish(FROM_PRIMARY);
    client.logout();
    Ok(report)
}

/// Garbage where the primary reads: words that name no buffer in transit
/// (random, past the pool, another pool, buffers this side holds), a head far
/// past the tail for a while, and a scribbled ring header. Counts them as
/// this side's `count` messages, and returns the buffers its words name,
/// which the caller holds until the primary has sent everything: freed
/// earlier, one could carry a message of the primary's while a stale word
/// naming it still waits in the ring, and the primary would take it back
/// (a claim checks that a buffer is in transit, not who sent it).
fn hostile(me: &mut Endpoint, tx: &Zone, count: u32) -> Vec<Mbuf> {
    let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
    let mut garbage = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut mine = Vec::new();
    me.pool.alloc_bulk(&mut mine, 4, me.owner);
    let words: Vec<u64> = (0..count)
        .map(|i| match (i % 4, mine.get(i as usize % 4)) {
            (0, _) | (_, None) => garbage(),
            (1, _) => MbufRef { pool: 0, index: POOL_BUFFERS + i }.to_word(),
            (2, _) => MbufRef { pool: 9, index: i }.to_word(),
            (_, Some(held)) => MbufRef { pool: 0, index: held.index() }.to_word(),
        })
        .collect();
    for chunk in words.chunks(BURST) {
        while me.tx.enqueue_burst(chunk) == 0 {
            me.receive();
            idle();
        }
    }
    let header = tx.u64s();
    let real = header[8].load(Ordering::Acquire);
    header[8].store(real + 1_000_000, Ordering::Release);
    std::thread::sleep(Duration::from_millis(20));
    header[8].store(real, Ordering::Release);
    header[0].store(garbage(), Ordering::Release);
    header[2].store(1 << 40, Ordering::Release);
    me.report.sent = count;
    mine
}

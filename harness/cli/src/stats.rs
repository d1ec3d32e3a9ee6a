//! `dtnet stats`: what a domain holds, gazellectl style.
//!
//! Attaches to the domain as a secondary (without registering: it takes
//! nothing) and reads: the process table the primary keeps (pid, role,
//! owner, state), every ring's depth and capacity, every pool's slots by
//! owner (held, cached, sent), and every shared port's counters (as its
//! primary last published them) with each queue's holder and ring counts,
//! and an ltran forwarder's table counters (as it last published them).
//! Objects are recognised by their headers;
//! anything else is listed with its size. `--json` prints one object per
//! snapshot; `--watch` prints a snapshot every second until interrupted.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use ethdev::mempool::Owner;
use ethdev::shm::procs::{ProcState, ProcTable};
use ethdev::shm::ring;
use ethdev::shm::{dir, Domain, DomainOptions, Role};
use ethdev::Mempool;
use user_veth::shared::{SharedPort, Side};

/// Arguments of `dtnet stats`.
#[derive(clap::Args)]
pub struct StatsArgs {
    /// The domain's prefix.
    #[arg(long)]
    prefix: String,
    /// One JSON object per snapshot.
    #[arg(long)]
    json: bool,
    /// A snapshot every second until interrupted.
    #[arg(long)]
    watch: bool,
    /// Runtime directory holding the domains.
    #[arg(long)]
    runtime_dir: Option<PathBuf>,
}

/// One snapshot of a domain.
#[derive(Serialize)]
struct Snapshot {
    prefix: String,
    processes: Vec<Process>,
    rings: Vec<RingStats>,
    pools: Vec<PoolStats>,
    ports: Vec<PortStats>,
    forwarders: Vec<ForwarderView>,
    other: Vec<Object>,
}

/// An ltran forwarder's counters, as it last published them.
#[derive(Serialize)]
struct ForwarderView {
    name: String,
    entries: u64,
    registered: u64,
    expired: u64,
    delivered: u64,
    copies: u64,
    unplaced: u64,
    misses: BTreeMap<String, u64>,
    dispatched: Vec<u64>,
}

#[derive(Serialize)]
struct PortStats {
    name: String,
    mac: String,
    primary_pid: u32,
    pool: String,
    ipackets: u64,
    opackets: u64,
    imissed: u64,
    ierrors: u64,
    oerrors: u64,
    drops: BTreeMap<&'static str, u64>,
    queues: Vec<QueueStats>,
}

#[derive(Serialize)]
struct QueueStats {
    side: &'static str,
    queue: u16,
    holder: Option<u32>,
    packets: u64,
    bytes: u64,
    copied: u64,
    dropped: u64,
}

#[derive(Serialize)]
struct Process {
    pid: u32,
    role: &'static str,
    owner: u32,
    name: String,
    state: &'static str,
    alive: bool,
}

#[derive(Serialize)]
struct RingStats {
    name: String,
    depth: Option<u32>,
    capacity: u32,
}

#[derive(Serialize)]
struct PoolStats {
    name: String,
    capacity: usize,
    in_use: usize,
    free_listed: usize,
    corrupt_slots: u64,
    by_owner: BTreeMap<u32, Slots>,
}

#[derive(Serialize)]
struct Slots {
    held: usize,
    cached: usize,
    sent: usize,
}

#[derive(Serialize)]
struct Object {
    name: String,
    bytes: usize,
}

/// Runs `dtnet stats`.
pub fn run(args: StatsArgs) -> Result<(), String> {
    let base = args.runtime_dir.unwrap_or_else(dir::base_dir);
    let options = DomainOptions { base, ..DomainOptions::default() };
    let domain = Domain::open(&args.prefix, Role::Secondary, &options).map_err(|e| e.to_string())?;
    loop {
        let snapshot = snapshot(&domain)?;
        if args.json {
            println!("{}", serde_json::to_string(&snapshot).map_err(|e| e.to_string())?);
        } else {
            print_text(&snapshot);
        }
        if !args.watch {
            return Ok(());
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn snapshot(domain: &Domain) -> Result<Snapshot, String> {
    let processes = ProcTable::open(domain).map(|t| t.entries()).unwrap_or_default();
    let mut snapshot = Snapshot {
        prefix: domain.prefix().to_owned(),
        processes: processes.iter().map(process).collect(),
        rings: Vec::new(),
        pools: Vec::new(),
        ports: Vec::new(),
        forwarders: Vec::new(),
        other: Vec::new(),
    };
    for entry in domain.objects().map_err(|e| e.to_string())? {
        let zone = domain.lookup(&entry.name).map_err(|e| e.to_string())?;
        if let Some(info) = ring::inspect(&zone) {
            snapshot.rings.push(RingStats { name: entry.name, depth: info.depth(), capacity: info.size });
        } else if let Ok(pool) = Mempool::attach(&zone) {
            snapshot.pools.push(pool_stats(entry.name, &pool));
        } else if let Ok(port) = SharedPort::attach(domain, &entry.name, Owner::NONE) {
            snapshot.ports.push(port_stats(entry.name, &port));
        } else if let Some(p) = ltran::published::read(&zone) {
            snapshot.forwarders.push(forwarder(entry.name, p));
        } else if entry.name != ethdev::shm::procs::ZONE {
            snapshot.other.push(Object { name: entry.name, bytes: entry.len });
        }
    }
    Ok(snapshot)
}

fn process(p: &ethdev::shm::procs::ProcEntry) -> Process {
    let alive = p.state == ProcState::Alive && rustix::process::test_kill_process(pid(p.pid)).is_ok();
    let state = match p.state {
        ProcState::Alive if !alive => "gone",
        ProcState::Alive => "alive",
        ProcState::LoggedOut => "logged out",
        ProcState::Died => "died, reclaimed",
    };
    let role = if p.primary { "primary" } else { "secondary" };
    Process { pid: p.pid, role, owner: p.owner.0, name: p.name.clone(), state, alive }
}

fn pid(raw: u32) -> rustix::process::Pid {
    rustix::process::Pid::from_raw(raw as i32).unwrap_or(rustix::process::Pid::INIT)
}

fn pool_stats(name: String, pool: &Mempool) -> PoolStats {
    let census = pool.census();
    let by_owner = census
        .owners
        .iter()
        .map(|(owner, s)| (owner.0, Slots { held: s.held, cached: s.cached, sent: s.sent }))
        .collect::<BTreeMap<_, _>>();
    let in_use = by_owner.values().map(|s| s.held + s.sent).sum();
    PoolStats {
        name,
        capacity: census.capacity,
        in_use,
        free_listed: census.free_listed,
        corrupt_slots: pool.corrupt_slots(),
        by_owner,
    }
}

fn port_stats(name: String, port: &SharedPort) -> PortStats {
    let (shape, totals) = (port.shape(), port.totals());
    let mut queues = Vec::new();
    for (side, count) in [(Side::Rx, shape.rx_queues), (Side::Tx, shape.tx_queues)] {
        for queue in 0..count {
            let [packets, bytes, copied, dropped] = port.queue_counters(side, queue).unwrap_or_default();
            let holder = port.holder(side, queue).map(|o| o.0);
            queues.push(QueueStats { side: side.name(), queue, holder, packets, bytes, copied, dropped });
        }
    }
    PortStats {
        name,
        mac: shape.mac.to_string(),
        primary_pid: shape.primary_pid,
        pool: shape.pool.clone(),
        ipackets: totals.ipackets,
        opackets: totals.opackets,
        imissed: totals.imissed,
        ierrors: totals.ierrors,
        oerrors: totals.oerrors,
        drops: totals.drops.iter().filter(|(_, n)| *n > 0).map(|(r, n)| (r.name(), *n)).collect(),
        queues,
    }
}

fn forwarder(name: String, p: ltran::published::Published) -> ForwarderView {
    ForwarderView {
        name,
        entries: p.entries,
        registered: p.registered,
        expired: p.expired,
        delivered: p.delivered,
        copies: p.copies,
        unplaced: p.unplaced,
        misses: p.misses.iter().map(|(m, n)| (format!("{m:?}"), *n)).collect(),
        dispatched: p.dispatched,
    }
}

fn print_text(s: &Snapshot) {
    println!("domain {}", s.prefix);
    println!("processes");
    for p in &s.processes {
        println!("  {:>8} {:<9} owner {:<8} {:<16} {}", p.pid, p.role, p.owner, p.state, p.name);
    }
    println!("rings");
    for r in &s.rings {
        let depth = r.depth.map_or("corrupt".to_owned(), |d| d.to_string());
        println!("  {:<24} depth {depth:>6} of {}", r.name, r.capacity);
    }
    println!("pools");
    for p in &s.pools {
        println!(
            "  {:<24} in use {} of {}, free list {}, corrupt slots {}",
            p.name, p.in_use, p.capacity, p.free_listed, p.corrupt_slots
        );
        for (owner, slots) in &p.by_owner {
            println!("    owner {owner:<8} held {:<6} cached {:<6} sent {}", slots.held, slots.cached, slots.sent);
        }
    }
    println!("ports");
    for p in &s.ports {
        println!(
            "  {:<24} {} primary {} pool {}: rx {} tx {} missed {} errors {}/{} drops {:?}",
            p.name, p.mac, p.primary_pid, p.pool, p.ipackets, p.opackets, p.imissed, p.ierrors, p.oerrors, p.drops
        );
        for q in &p.queues {
            let holder = q.holder.map_or("-".to_owned(), |h| h.to_string());
            println!(
                "    {}{:<3} holder {holder:<8} packets {:<10} bytes {:<12} copied {:<8} dropped {}",
                q.side, q.queue, q.packets, q.bytes, q.copied, q.dropped
            );
        }
    }
    for f in &s.forwarders {
        println!(
            "ltran {:<24} entries {} registered {} expired {} delivered {} copies {} unplaced {}",
            f.name, f.entries, f.registered, f.expired, f.delivered, f.copies, f.unplaced
        );
        println!("    misses {:?}; new connections by queue {:?}", f.misses, f.dispatched);
    }
    for o in &s.other {
        println!("object {:<24} {} bytes", o.name, o.bytes);
    }
}

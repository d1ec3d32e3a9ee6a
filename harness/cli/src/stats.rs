//! `dtnet stats`: what a domain holds, gazellectl style.
//!
//! Attaches to the domain as a secondary (without registering: it takes
//! nothing) and reads: the process table the primary keeps (pid, role,
//! owner, state), every ring's depth and capacity, and every pool's slots
//! by owner (held, cached, sent). Objects are recognised by their headers;
//! anything else is listed with its size. `--json` prints one object per
//! snapshot; `--watch` prints a snapshot every second until interrupted.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use ethdev::shm::procs::{ProcState, ProcTable};
use ethdev::shm::ring;
use ethdev::shm::{dir, Domain, DomainOptions, Role};
use ethdev::Mempool;

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
    other: Vec<Object>,
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
        other: Vec::new(),
    };
    for entry in domain.objects().map_err(|e| e.to_string())? {
        let zone = domain.lookup(&entry.name).map_err(|e| e.to_string())?;
        if let Some(info) = ring::inspect(&zone) {
            snapshot.rings.push(RingStats { name: entry.name, depth: info.depth(), capacity: info.size });
        } else if let Ok(pool) = Mempool::attach(&zone) {
            snapshot.pools.push(pool_stats(entry.name, &pool));
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
    for o in &s.other {
        println!("object {:<24} {} bytes", o.name, o.bytes);
    }
}

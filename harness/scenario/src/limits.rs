//! What a scenario may ask for, and what a run of it would need.
//!
//! Sizes are bounded before anything is allocated, in two layers. Every
//! count and size a file writes has a limit no run could usefully exceed
//! (the constants below); the spec types read those keys as
//! [`Bounded`](crate::units::Bounded) values, so an absurd number is refused
//! while it is read, with its line, key and the limit. Within the limits a
//! scenario can still ask for more memory than the machine has (a million
//! connections with 64 KiB buffers each), so resolution then
//! [`estimate`]s the memory of the whole plan (pool buffers, rings, socket
//! buffers of the connections open at once, planned frames, captures) and
//! refuses a plan above the machine's memory ([`machine_memory`]), naming
//! the estimate and the key of its largest part.

use std::fmt;
use std::time::Duration;

use ethdev::mempool::{DEFAULT_DATA_ROOM, DEFAULT_HEADROOM, HEADER_SIZE};
use stack::device::TSO_FRAME;
use stack::group::TSO_BUFFERS_PER_STACK;

use crate::build::UDP_CLIENT_PORT;
use crate::plan::{HostNic, Plan, Traffic};
use sim::world::HOST_POOL;

/// Most hosts in a scenario: one bridge port, pool and set of stacks each.
pub const MAX_HOSTS: usize = 64;
/// Most stacks of a host: one queue pair each, and a veth port has
/// [`user_veth::MAX_QUEUES`].
pub const MAX_STACKS: u64 = user_veth::MAX_QUEUES as u64;
/// Most receive queues of a bare host, as [`MAX_STACKS`].
pub const MAX_QUEUES: u64 = user_veth::MAX_QUEUES as u64;
/// Smallest IP MTU of a host's port (the veth port's minimum).
pub const MIN_MTU: u64 = user_veth::MTU_RANGE.0 as u64;
/// Largest IP MTU of a host's port (the veth port's maximum).
pub const MAX_MTU: u64 = user_veth::MTU_RANGE.1 as u64;
/// Most connections (or UDP client sockets) of one traffic entry: each is a
/// task and a socket at both ends, and a host has 64 Ki ports.
pub const MAX_CONNS: u64 = 1_000_000;
/// Most payload bytes of one connection: 1 TiB, hours of simulated transfer.
pub const MAX_CONN_BYTES: u64 = 1 << 40;
/// Smallest socket buffer: one full-sized segment must fit.
pub const MIN_SOCKET_BUFFER: u64 = 1 << 10;
/// Largest socket buffer: 64 MiB, beyond any TCP window a run needs (and
/// allocated in full for every socket).
pub const MAX_SOCKET_BUFFER: u64 = 64 << 20;
/// Most UDP client sockets of one host, over all its `udp` entries: each
/// binds its own local port, counting up from 20000.
pub const MAX_UDP_CLIENTS: u64 = (u16::MAX - UDP_CLIENT_PORT) as u64;
/// Most UDP requests per client socket.
pub const MAX_REQUESTS: u64 = 10_000_000;
/// Most raw frames of one `frames` entry (flows × frames per flow), all
/// built before the first is sent.
pub const MAX_FRAMES: u64 = 1_000_000;
/// Longest duration any key takes: a day, of virtual or wall time.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);
/// Largest capture a replay reads (it is read whole).
pub const MAX_CAPTURE_BYTES: u64 = 1 << 30;
/// The machine's memory when `/proc/meminfo` cannot be read.
pub const DEFAULT_MACHINE_MEMORY: u64 = 4 << 30;

/// Bytes of one pool buffer: data room, headroom and header.
const BUFFER_BYTES: u64 = DEFAULT_DATA_ROOM as u64 + DEFAULT_HEADROOM as u64 + HEADER_SIZE as u64;
/// Bytes of one ring slot, with room for the largest element (an RPC).
const RING_SLOT_BYTES: u64 = 64;
/// Slots of each NIC queue's ring (the port's default).
const NIC_RING_SLOTS: u64 = 1024;
/// What a connection costs besides its socket buffers, at each end: socket
/// state, task, ledger entry.
const CONN_OVERHEAD: u64 = 16 << 10;
/// What one planned raw frame costs: its bytes and its expectation entry.
const FRAME_BYTES: u64 = 512;
/// Copies a replay keeps of a capture's bytes (the file, its records).
const CAPTURE_COPIES: u64 = 2;

/// A part of a plan that needs memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// The bridge's pool.
    Bridge,
    /// Host `i`: pool, rings, TSO buffers.
    Host(usize),
    /// Traffic entry `i` of [`Plan::traffic`]: its sockets, tasks, frames.
    Traffic(usize),
}

/// The estimated memory of a plan, by part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemoryEstimate {
    /// Bytes of each part.
    pub parts: Vec<(Part, u64)>,
}

impl MemoryEstimate {
    /// Bytes of all parts.
    pub fn total(&self) -> u64 {
        self.parts.iter().fold(0, |sum, (_, bytes)| sum.saturating_add(*bytes))
    }

    /// The part that needs the most.
    pub fn largest(&self) -> Option<(Part, u64)> {
        self.parts.iter().copied().max_by_key(|(_, bytes)| *bytes)
    }
}

/// The memory `plan` needs at its peak, roughly and on the high side.
pub fn estimate(plan: &Plan) -> MemoryEstimate {
    let mut parts = vec![(Part::Bridge, u64::from(plan.bridge.pool_capacity).saturating_mul(BUFFER_BYTES))];
    parts.extend(plan.hosts.iter().enumerate().map(|(i, h)| (Part::Host(i), host_bytes(&h.nic))));
    parts.extend(plan.traffic.iter().enumerate().map(|(i, t)| (Part::Traffic(i), traffic_bytes(plan, t))));
    MemoryEstimate { parts }
}

fn host_bytes(nic: &HostNic) -> u64 {
    let pool = u64::from(HOST_POOL) * BUFFER_BYTES;
    let (queues, stack_rings, tso) = match nic {
        HostNic::Stacks(g) => {
            let stacks = g.stacks as u64;
            let tso = if g.tso { stacks * u64::from(TSO_BUFFERS_PER_STACK) * TSO_FRAME as u64 } else { 0 };
            (stacks, stacks.saturating_mul(2 * g.ring_size as u64), tso)
        }
        HostNic::Bare { queues, .. } => (u64::from(*queues), 0, 0),
        HostNic::Kernel(_) => (0, 0, 0),
    };
    let rings = queues.saturating_mul(2 * NIC_RING_SLOTS).saturating_add(stack_rings).saturating_mul(RING_SLOT_BYTES);
    pool.saturating_add(rings).saturating_add(tso)
}

/// Socket buffers (both directions) and overhead of one socket on `host`.
fn socket_bytes(plan: &Plan, host: usize) -> u64 {
    let bufs = plan.hosts.get(host).and_then(|h| h.group()).map_or(0, |g| (g.bufs.rx + g.bufs.tx) as u64);
    bufs + CONN_OVERHEAD
}

fn traffic_bytes(plan: &Plan, traffic: &Traffic) -> u64 {
    match traffic {
        Traffic::Tcp(t) => {
            let open = t.parallel.clamp(1, t.conns.max(1));
            let per_conn = socket_bytes(plan, t.client) + socket_bytes(plan, t.server);
            open.saturating_mul(per_conn).saturating_add(t.conns.saturating_mul(8))
        }
        Traffic::Udp(u) => u.clients.saturating_add(1).saturating_mul(socket_bytes(plan, u.client)),
        Traffic::Ping(p) => socket_bytes(plan, p.from),
        Traffic::Frames(f) => {
            u64::from(f.flows).saturating_mul(u64::from(f.frames_per_flow)).saturating_mul(FRAME_BYTES)
        }
        Traffic::Replay(r) => {
            let file = std::fs::metadata(&r.file).map_or(0, |m| m.len());
            file.saturating_mul(CAPTURE_COPIES).saturating_add(socket_bytes(plan, r.host))
        }
    }
}

/// The machine's memory: `MemTotal` of `/proc/meminfo`, or
/// [`DEFAULT_MACHINE_MEMORY`] where that cannot be read.
pub fn machine_memory() -> u64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|kib| kib.trim().parse::<u64>().ok())
        .map_or(DEFAULT_MACHINE_MEMORY, |kib| kib.saturating_mul(1024))
}

/// A byte count for people: `1.5 GiB`, `640 KiB`, `12 B`.
#[derive(Clone, Copy, Debug)]
pub struct Size(pub u64);

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(&str, u64); 4] = [("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
        match UNITS.iter().find(|(_, n)| self.0 >= *n) {
            Some((unit, n)) => write!(f, "{:.1} {unit}", self.0 as f64 / *n as f64),
            None => write!(f, "{} B", self.0),
        }
    }
}

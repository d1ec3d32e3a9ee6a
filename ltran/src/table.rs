//! ltran's decisions: which queue each frame from the NIC goes to.
//!
//! Connections are kept by their four-tuple in wire order (the remote end,
//! then the local one), each with the queue of the stack that owns it.
//! Listeners are kept by local address and port; several instances may
//! listen on the same one (gazelle's ltran spreads one service over
//! processes), and a SYN for no known connection makes a new entry with the
//! listener that has the fewest connections. That entry lives
//! [`Limits::unconfirmed`] unless the stack confirms it by registering the
//! connection once it accepts, as lstack confirms with
//! `REG_RING_TCP_CONNECT`. ARP goes to every instance, ICMP to the first,
//! and anything else (IPv6, UDP, a segment of no connection) nowhere,
//! counted by [`Miss`]: ltran never answers with a reset.
//!
//! Registrations come from the instances ([`Table::register`]) and go with
//! them ([`Table::unregister`], [`Table::forget`] when a process leaves or
//! dies, at once where ltran invalidates and purges on a timer). Every
//! count is bounded by [`Limits`], so a SYN flood or a greedy instance
//! finds a full table, not unbounded memory.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::Duration;

use ethdev::flow::FlowId;
use ethdev::mempool::Owner;
use ethdev::packet::{IpAddrs, PacketMeta};
use ethdev::proto::{ETHER_TYPE_ARP, ETHER_TYPE_IPV4, PROTO_ICMP, PROTO_TCP};
use ethdev::{Instant, MacAddr};

/// TCP flags SYN and ACK.
const TCP_SYN: u8 = 0x02;
const TCP_ACK: u8 = 0x10;

/// Where a frame from the NIC goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// To this queue.
    Queue(u16),
    /// A copy to every instance (ARP).
    EveryInstance,
    /// To the first instance (ICMP).
    FirstInstance,
    /// Nowhere: freed and counted.
    Drop(Miss),
}

/// Why a frame went nowhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Miss {
    /// A unicast frame for another MAC (a switch floods those).
    OtherHost,
    /// Not IPv4 TCP, ICMP or ARP (IPv6, UDP, a fragment, junk): ltran
    /// hands these to the kernel or frees them.
    Unsupported,
    /// A TCP segment of no known connection that is not a SYN.
    NoConnection,
    /// A SYN to an address and port nobody listens on.
    NoListener,
    /// A SYN while the table holds [`Limits::conns`] connections.
    TableFull,
}

/// The table's bounds.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Registrations one instance may hold (connections and listeners).
    pub per_instance: usize,
    /// Connections the table holds at most, confirmed or not.
    pub conns: usize,
    /// How long a connection made for a SYN waits for its stack to
    /// confirm it (ltran's 5 s).
    pub unconfirmed: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { per_instance: 4096, conns: 65536, unconfirmed: Duration::from_secs(5) }
    }
}

/// What the table counted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TableStats {
    /// Registrations made over the table's life.
    pub registered: u64,
    /// New connections handed to a listener, by queue.
    pub dispatched: BTreeMap<u16, u64>,
    /// Connections made for a SYN that their stack never confirmed.
    pub expired: u64,
    /// Frames that went nowhere, by why.
    pub misses: BTreeMap<Miss, u64>,
}

/// A connection's key: (remote, local), the order its frames arrive in.
type ConnKey = (SocketAddr, SocketAddr);

/// A connection the table knows.
#[derive(Clone, Copy, Debug)]
struct Conn {
    queue: u16,
    owner: Owner,
    /// The listener it was handed to, if it came in as a SYN.
    listener: Option<FlowId>,
    /// Until when it waits for its stack, if not yet registered.
    unconfirmed: Option<Instant>,
}

/// An instance listening on an address and port.
#[derive(Clone, Copy, Debug)]
struct Listener {
    id: FlowId,
    queue: u16,
    owner: Owner,
    /// Connections handed to it that still exist.
    conns: usize,
}

/// What a registration id names.
#[derive(Clone, Copy, Debug)]
enum Registration {
    Conn(ConnKey),
    Listener(SocketAddr),
}

/// ltran's connection and listener tables.
#[derive(Debug, Default)]
pub struct Table {
    /// The NIC's MAC.
    mac: MacAddr,
    limits: Limits,
    conns: HashMap<ConnKey, Conn>,
    listeners: HashMap<SocketAddr, Vec<Listener>>,
    /// Every registration, under its id, with its owner.
    ids: HashMap<FlowId, (Owner, Registration)>,
    /// How many of `ids` each owner holds.
    held: HashMap<Owner, usize>,
    /// No unconfirmed connection expires before this (a lower bound, so
    /// [`Table::poll`] scans the table only when one may have).
    earliest: Option<Instant>,
    next_id: u64,
    stats: TableStats,
}

impl Table {
    /// An empty table for the NIC with MAC `mac`, bounded by `limits`.
    pub fn new(mac: MacAddr, limits: Limits) -> Table {
        Table { mac, limits, ..Table::default() }
    }

    /// Where `frame`, arriving from the NIC at `now`, goes; a SYN for a
    /// listener makes its connection's entry here.
    pub fn classify(&mut self, frame: &[u8], now: Instant) -> Verdict {
        let verdict = self.decide(frame, now);
        if let Verdict::Drop(miss) = verdict {
            *self.stats.misses.entry(miss).or_default() += 1;
        }
        verdict
    }

    fn decide(&mut self, frame: &[u8], now: Instant) -> Verdict {
        let Ok(meta) = PacketMeta::parse(frame) else { return Verdict::Drop(Miss::Unsupported) };
        let group = meta.dst_mac[0] & 1 == 1;
        if !group && meta.dst_mac != self.mac.0 {
            return Verdict::Drop(Miss::OtherHost);
        }
        match (meta.ether_type, meta.ip_proto) {
            (ETHER_TYPE_ARP, _) => Verdict::EveryInstance,
            (ETHER_TYPE_IPV4, Some(PROTO_ICMP)) if !meta.fragment => Verdict::FirstInstance,
            (ETHER_TYPE_IPV4, Some(PROTO_TCP)) => self.tcp(&meta, now),
            _ => Verdict::Drop(Miss::Unsupported),
        }
    }

    fn tcp(&mut self, meta: &PacketMeta, now: Instant) -> Verdict {
        let (Some(IpAddrs::V4 { src, dst }), Some((sport, dport))) = (meta.ip, meta.ports) else {
            return Verdict::Drop(Miss::Unsupported);
        };
        let key = (SocketAddr::from((src, sport)), SocketAddr::from((dst, dport)));
        if let Some(conn) = self.conns.get(&key) {
            return Verdict::Queue(conn.queue);
        }
        if meta.tcp_flags & (TCP_SYN | TCP_ACK) != TCP_SYN {
            return Verdict::Drop(Miss::NoConnection);
        }
        self.dispatch(key, now)
    }

    /// Hands the new connection `key` to the listener of its local end
    /// with the fewest connections (the first registered of equals).
    fn dispatch(&mut self, key: ConnKey, now: Instant) -> Verdict {
        let Some(listener) = self.listeners.get_mut(&key.1).and_then(|l| l.iter_mut().min_by_key(|l| l.conns)) else {
            return Verdict::Drop(Miss::NoListener);
        };
        if self.conns.len() >= self.limits.conns {
            return Verdict::Drop(Miss::TableFull);
        }
        listener.conns += 1;
        let conn = Conn {
            queue: listener.queue,
            owner: listener.owner,
            listener: Some(listener.id),
            unconfirmed: Some(now + self.limits.unconfirmed),
        };
        self.conns.insert(key, conn);
        self.earliest = self.earliest.min(conn.unconfirmed).or(conn.unconfirmed);
        *self.stats.dispatched.entry(conn.queue).or_default() += 1;
        Verdict::Queue(conn.queue)
    }

    /// Registers for `owner` the connection from `src` to `dst` on
    /// `queue`, or with no `src` its listener on `dst`; returns the
    /// registration's id. A connection the table made for a SYN to this
    /// very queue is confirmed; one that belongs to another queue, a second
    /// listener of one queue on one address, or an instance over its limit
    /// is refused.
    pub fn register(
        &mut self,
        owner: Owner,
        queue: u16,
        src: Option<SocketAddr>,
        dst: SocketAddr,
    ) -> Result<FlowId, String> {
        if self.held_by(owner) >= self.limits.per_instance {
            return Err(format!("this instance holds {} registrations, the most one may", self.limits.per_instance));
        }
        let registration = match src {
            None => self.add_listener(owner, queue, dst)?,
            Some(src) => self.add_conn(owner, queue, (src, dst))?,
        };
        let id = self.new_id();
        match registration {
            Registration::Listener(addr) => {
                let listeners = self.listeners.entry(addr).or_default();
                listeners.push(Listener { id, queue, owner, conns: 0 });
            }
            Registration::Conn(key) => {
                let conn = self.conns.entry(key).or_insert(Conn { queue, owner, listener: None, unconfirmed: None });
                conn.unconfirmed = None;
            }
        }
        self.ids.insert(id, (owner, registration));
        *self.held.entry(owner).or_default() += 1;
        self.stats.registered += 1;
        Ok(id)
    }

    fn add_listener(&self, owner: Owner, queue: u16, dst: SocketAddr) -> Result<Registration, String> {
        let twice = self.listeners.get(&dst).is_some_and(|l| l.iter().any(|l| l.queue == queue && l.owner == owner));
        match twice {
            true => Err(format!("queue {queue} already listens on {dst}")),
            false => Ok(Registration::Listener(dst)),
        }
    }

    fn add_conn(&self, owner: Owner, queue: u16, key: ConnKey) -> Result<Registration, String> {
        match self.conns.get(&key) {
            Some(c) if c.unconfirmed.is_some() && (c.owner, c.queue) == (owner, queue) => Ok(Registration::Conn(key)),
            Some(_) => Err(format!("the connection from {} to {} is another stack's", key.0, key.1)),
            None if self.conns.len() >= self.limits.conns => {
                Err(format!("the table holds {} connections, the most it may", self.limits.conns))
            }
            None => Ok(Registration::Conn(key)),
        }
    }

    fn new_id(&mut self) -> FlowId {
        self.next_id += 1;
        FlowId::from_raw(self.next_id)
    }

    /// Removes registration `id`, which `owner` must hold.
    pub fn unregister(&mut self, owner: Owner, id: FlowId) -> Result<(), String> {
        match self.ids.get(&id) {
            Some(&(holder, registration)) if holder == owner => {
                self.ids.remove(&id);
                if let Some(held) = self.held.get_mut(&owner) {
                    *held -= 1;
                }
                self.remove(id, registration);
                Ok(())
            }
            _ => Err(format!("registration {} is not this instance's", id.raw())),
        }
    }

    fn remove(&mut self, id: FlowId, registration: Registration) {
        match registration {
            Registration::Conn(key) => self.remove_conn(&key),
            Registration::Listener(addr) => {
                let listeners = self.listeners.entry(addr).or_default();
                listeners.retain(|l| l.id != id);
                if listeners.is_empty() {
                    self.listeners.remove(&addr);
                }
            }
        }
    }

    /// Removes a connection, and its count from the listener it came in by.
    fn remove_conn(&mut self, key: &ConnKey) {
        let Some(conn) = self.conns.remove(key) else { return };
        let Some(id) = conn.listener else { return };
        for listener in self.listeners.values_mut().flat_map(|l| l.iter_mut()).filter(|l| l.id == id) {
            listener.conns = listener.conns.saturating_sub(1);
        }
    }

    /// Removes everything `owner` registered or was handed (it left or
    /// died); returns how many entries went.
    pub fn forget(&mut self, owner: Owner) -> usize {
        let ids: Vec<_> = self.ids.iter().filter(|(_, (o, _))| *o == owner).map(|(&id, &(_, r))| (id, r)).collect();
        for &(id, registration) in &ids {
            self.ids.remove(&id);
            self.remove(id, registration);
        }
        self.held.remove(&owner);
        let handed: Vec<ConnKey> = self.conns.iter().filter(|(_, c)| c.owner == owner).map(|(&k, _)| k).collect();
        handed.iter().for_each(|k| self.remove_conn(k));
        ids.len() + handed.len()
    }

    /// Drops the connections made for a SYN that were not confirmed by `now`.
    pub fn poll(&mut self, now: Instant) {
        if self.earliest.is_none_or(|t| t > now) {
            return;
        }
        let stale: Vec<ConnKey> =
            self.conns.iter().filter(|(_, c)| c.unconfirmed.is_some_and(|t| t <= now)).map(|(&k, _)| k).collect();
        self.stats.expired += stale.len() as u64;
        stale.iter().for_each(|k| self.remove_conn(k));
        self.earliest = self.poll_at();
    }

    /// When [`Table::poll`] next has something to do.
    pub fn poll_at(&self) -> Option<Instant> {
        self.conns.values().filter_map(|c| c.unconfirmed).min()
    }

    /// Registrations `owner` holds.
    pub fn held_by(&self, owner: Owner) -> usize {
        self.held.get(&owner).copied().unwrap_or(0)
    }

    /// Entries of the table: registrations, and connections awaiting one.
    pub fn len(&self) -> usize {
        self.ids.len() + self.conns.values().filter(|c| c.unconfirmed.is_some()).count()
    }

    /// Whether the table holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What the table counted.
    pub fn stats(&self) -> &TableStats {
        &self.stats
    }
}

#[cfg(test)]
mod tests;

//! One stack instance: a smoltcp interface and socket set on one NIC queue.
//!
//! [`Instance::poll`] is the whole life of a stack, sans-IO: execute the
//! application calls waiting in its RPC ring, take a burst from its NIC
//! queue and its soft ring, hand frames owned by other stacks to them, run
//! smoltcp's ingress one frame at a time (refilling a listener after its
//! spare socket took a SYN, since a smoltcp socket accepts exactly one
//! connection), run smoltcp's egress for the sockets that are due (and
//! free those the application closed once TCP is done with them), and
//! transmit. It never reads a clock; the executor passes `now`.
//!
//! The instance is split the way smoltcp splits its interface: this module
//! holds the state and the poll loop, `datapath` moves frames (NIC queue,
//! soft ring, hand-over between stacks, SYN filtering, ingress and
//! transmit), and `sockets` runs the socket operations that application
//! calls ask for, addressed by instance-local [`SockId`]s; `tcp_sets` keeps
//! each TCP socket in a smoltcp socket set of its own, so that a frame or
//! a poll costs the same with ten connections or ten thousand; `listener`
//! keeps a listener's spare socket and its SYN and accept queues.

mod datapath;
mod listener;
mod sockets;
mod tcp_sets;

use rustc_hash::FxHashMap;
use std::io;
use std::sync::Arc;

use ethdev::{Instant, Mbuf};
use smoltcp::iface::{Config, Interface, PollResult, SocketSet};
use smoltcp::time::Instant as SmolInstant;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr};

use crate::device::{DeviceStats, QueueDevice};
use crate::dispatch::ConnKey;
use crate::fabric::{Fabric, Inbox, NicQueue};
use crate::rpc::{Notify, Reply, Rpc, SockId};

use listener::{Conn, Sock};
use tcp_sets::{Slot, TcpSets};

/// Frames taken from the NIC queue per poll.
const RX_BURST: usize = 64;
/// RPCs executed per poll.
const RPC_BURST: usize = 256;
/// Frames a poll's TCP egress aims at before it stops starting new passes.
const TX_BURST: usize = 32;

/// Counters of one stack instance.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StackStats {
    /// Frames taken from the NIC queue.
    pub nic_rx: u64,
    /// Frames given to the NIC queue.
    pub nic_tx: u64,
    /// Frames handed to another stack's soft ring.
    pub forwarded_out: u64,
    /// Frames received through the soft ring.
    pub forwarded_in: u64,
    /// Copies of neighbour replies made for the other stacks.
    pub broadcast_copies: u64,
    /// Frames lost because a soft ring was full or no mbuf was left to copy into.
    pub soft_drops: u64,
    /// Duplicate SYNs for a connection that already exists, dropped.
    pub dup_syn_drops: u64,
    /// SYNs dropped because the listener's accept queue was full.
    pub backlog_drops: u64,
    /// IP fragments discarded: the stacks do not reassemble.
    pub fragment_drops: u64,
    /// Frames the NIC found a bad IPv4 header or TCP/UDP checksum in
    /// (receive checksum offload), dropped as smoltcp would drop them.
    pub checksum_drops: u64,
    /// Echo requests to a broadcast or multicast address, ignored as Linux does.
    pub broadcast_echo_ignored: u64,
    /// Connections accepted by the application.
    pub accepted: u64,
    /// Connections the application started.
    pub connected: u64,
    /// Connection flow rules the port refused (flow-director mode): those
    /// connections' frames are left to software forwarding.
    pub flow_rules_refused: u64,
    /// Copies of neighbour messages handed to the other processes sharing
    /// the port (tuple_filter mode, process 0's stack 0).
    pub process_copies: u64,
    /// Application calls executed.
    pub rpcs: u64,
    /// Frames handed to the kernel sharing the NIC (flow bifurcation):
    /// those for ports no socket holds, and copies of neighbour messages.
    pub to_kernel: u64,
    /// Frames the kernel sent that this stack put on its NIC queue.
    pub from_kernel: u64,
    /// smoltcp device counters.
    pub device: DeviceStats,
}

/// One stack instance. See the module documentation.
pub struct Instance {
    id: usize,
    fabric: Arc<Fabric>,
    inbox: Inbox,
    nic: NicQueue,
    iface: Interface,
    /// UDP and ICMP sockets (few; smoltcp visits them all on every poll).
    sockets: SocketSet<'static>,
    /// TCP sockets, each in a set of its own.
    tcp: TcpSets,
    device: QueueDevice,
    socks: FxHashMap<SockId, Sock>,
    next_sock: u32,
    listen_ports: FxHashMap<u16, SockId>,
    conn_index: FxHashMap<ConnKey, Slot>,
    /// Connections in a listener's SYN queue, and the listener.
    half_open: FxHashMap<Slot, SockId>,
    /// Connections the application closed, with when each entered TIME-WAIT.
    closing: FxHashMap<Slot, (Conn, Option<Instant>)>,
    /// Calls that would block on the stack's state, woken by any change.
    waiters: Vec<Arc<Notify>>,
    /// Calls that would block on one connection, woken only when it is
    /// touched (see [`Instance::touch`]): with thousands of connections,
    /// waking every blocked call on every change made a run quadratic.
    conn_waiters: FxHashMap<Slot, Vec<Arc<Notify>>>,
    /// Connections touched since the last poll ended.
    touched: Vec<Slot>,
    /// Egress's list of sockets to reschedule, kept to reuse its memory.
    egress_next: Vec<(Slot, Option<Instant>)>,
    burst: Vec<Mbuf>,
    now: Instant,
    changed: bool,
    stats: StackStats,
}

fn smol(now: Instant) -> SmolInstant {
    SmolInstant::from_micros((now.as_nanos() / 1000) as i64)
}

fn from_smol(t: SmolInstant) -> Instant {
    Instant::from_nanos(t.total_micros().max(0) as u64 * 1000)
}

impl Instance {
    /// Stack `id` of the group sharing `fabric`, reading its rings through
    /// `inbox` and polling its NIC queue through `nic`.
    pub(crate) fn new(id: usize, fabric: Arc<Fabric>, inbox: Inbox, nic: NicQueue) -> Instance {
        let cfg = &fabric.config;
        let owner = cfg.stack_owner(id);
        let mut device = QueueDevice::new(fabric.pool.clone(), fabric.tso_pool.clone(), owner, usize::from(cfg.mtu));
        let mut config = Config::new(HardwareAddress::Ethernet(EthernetAddress(cfg.mac.0)));
        config.random_seed = cfg.seed ^ (id as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let mut iface = Interface::new(config, &mut device, SmolInstant::ZERO);
        iface.update_ip_addrs(|addrs| {
            let v4 = cfg.ipv4.map(|(a, len)| IpCidr::new(IpAddress::Ipv4(a), len));
            let v6 = cfg.ipv6.map(|(a, len)| IpCidr::new(IpAddress::Ipv6(a), len));
            addrs.extend(v4.into_iter().chain(v6));
        });
        if let Some(gw) = cfg.gateway {
            // Only fails when the route table is full, which a new one is not.
            let _ = iface.routes_mut().add_default_ipv4_route(gw);
        }
        Instance {
            id,
            fabric,
            inbox,
            nic,
            iface,
            sockets: SocketSet::new(Vec::new()),
            tcp: TcpSets::default(),
            device,
            socks: FxHashMap::default(),
            next_sock: 1,
            listen_ports: FxHashMap::default(),
            conn_index: FxHashMap::default(),
            half_open: FxHashMap::default(),
            closing: FxHashMap::default(),
            waiters: Vec::new(),
            conn_waiters: FxHashMap::default(),
            touched: Vec::new(),
            egress_next: Vec::new(),
            burst: Vec::with_capacity(RX_BURST),
            now: Instant::ZERO,
            changed: false,
            stats: StackStats::default(),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> StackStats {
        StackStats { device: self.device.stats, ..self.stats }
    }

    /// Does everything due at `now`; true if anything moved or changed.
    pub fn poll(&mut self, now: Instant) -> bool {
        self.now = self.now.max(now);
        let ts = smol(self.now);
        let mut worked = self.run_rpcs();
        worked |= self.receive();
        self.iface.poll_maintenance(ts);
        self.ingress(ts);
        self.egress(ts);
        worked |= self.transmit();
        let changed = std::mem::take(&mut self.changed);
        if changed {
            self.waiters.drain(..).for_each(|n| n.fire());
        }
        let mut touched = std::mem::take(&mut self.touched);
        for slot in touched.drain(..) {
            self.conn_waiters.remove(&slot).into_iter().flatten().for_each(|n| n.fire());
        }
        self.touched = touched; // keeps its capacity: no allocation per poll
        worked || changed
    }

    /// Marks connection `slot` as changed: the calls waiting on it are
    /// woken at the end of this poll.
    pub(super) fn touch(&mut self, slot: Slot) {
        if self.conn_waiters.contains_key(&slot) {
            self.touched.push(slot);
        }
    }

    /// When the stack next has something to do: now while frames or calls
    /// wait, else smoltcp's next timer. `None` when idle.
    pub fn poll_at(&mut self) -> Option<Instant> {
        let queued = !self.device.rx.is_empty()
            || !self.device.tx.is_empty()
            || !self.inbox.rpc.is_empty()
            || !self.inbox.soft.is_empty();
        if queued {
            return Some(self.now);
        }
        let timers = self.iface.poll_at(smol(self.now), &self.sockets).map(from_smol);
        timers.into_iter().chain(self.tcp.next_due()).min()
    }

    /// smoltcp's egress for the datagram sockets and for the TCP sockets
    /// that are due, in passes (see [`Instance::egress_pass`]) while the
    /// last pass sent something and fewer than [`TX_BURST`] frames went
    /// out, so a bulk sender fills a burst per poll rather than one frame.
    fn egress(&mut self, ts: SmolInstant) {
        // An empty datagram set is skipped: each TCP socket's egress below
        // also runs the interface's own (neighbour and multicast) egress,
        // and a second pass per poll cost a tenth of a bulk stream's time.
        let datagrams = self.sockets.iter().next().is_some();
        if datagrams {
            self.egress_set(ts, None);
        }
        let (start, mut polled_any) = (self.device.tx.len(), false);
        loop {
            let before = self.device.tx.len();
            polled_any |= self.egress_pass(ts);
            let sent = self.device.tx.len();
            if sent == before || sent - start >= TX_BURST {
                break;
            }
        }
        if !datagrams && !polled_any {
            self.egress_set(ts, None); // the interface's own egress
        }
    }

    /// One segment at most from each TCP socket that is due, in deadline
    /// order, until the pools run dry; each is then rescheduled or, closed,
    /// freed. Each due socket gets one turn; its next deadline joins the
    /// queue after the others had theirs. Out of buffers, the rest keep
    /// their place for the next poll, as smoltcp's own egress stops there.
    /// True if any socket was polled.
    fn egress_pass(&mut self, ts: SmolInstant) -> bool {
        let mut next = std::mem::take(&mut self.egress_next);
        let mut polled_any = false;
        while self.device.can_transmit() {
            let Some(slot) = self.tcp.pop_due(self.now) else { break };
            polled_any = true;
            let before = self.tcp.get(slot).state();
            self.egress_set(ts, Some(slot));
            // Egress changes what a call sees only by changing the state
            // (a timer closing the connection).
            if self.tcp.get(slot).state() != before {
                self.touch(slot);
                if self.handshake_progress(slot) {
                    continue;
                }
            }
            if let Some(due) = self.next_due(slot, ts) {
                next.push((slot, due));
            }
        }
        next.drain(..).for_each(|(slot, due)| self.tcp.schedule(slot, due));
        self.egress_next = next;
        polled_any
    }

    /// smoltcp's egress over TCP socket `slot`'s set, or the datagram set.
    fn egress_set(&mut self, ts: SmolInstant, slot: Option<Slot>) {
        let set = match slot {
            Some(slot) => self.tcp.set_mut(slot),
            None => &mut self.sockets,
        };
        self.changed |= self.iface.poll_egress(ts, &mut self.device, set) == PollResult::SocketStateChanged;
    }

    /// Runs one application call now, on socket `on` if it is one call
    /// that waits on a single socket ([`Op::waits_on`]): a call that
    /// succeeds marks the stack and that connection changed (waiters are
    /// woken at the end of the next poll); one that would block leaves
    /// `notify` to be fired at the next change of that connection, or of
    /// the stack if `on` is not a connection.
    pub(crate) fn run_call(
        &mut self,
        on: Option<SockId>,
        notify: Option<Arc<Notify>>,
        call: impl FnOnce(&mut Instance) -> io::Result<Reply>,
    ) -> io::Result<Reply> {
        let result = call(self);
        let slot = on.and_then(|id| self.conn_slot(id));
        match (&result, notify, slot) {
            (Err(e), Some(notify), Some(slot)) if e.kind() == io::ErrorKind::WouldBlock => {
                self.conn_waiters.entry(slot).or_default().push(notify);
            }
            (Err(e), Some(notify), None) if e.kind() == io::ErrorKind::WouldBlock => self.waiters.push(notify),
            (Ok(_), _, slot) => {
                self.changed = true;
                slot.into_iter().for_each(|slot| self.touch(slot));
            }
            _ => {}
        }
        result
    }

    fn run_rpcs(&mut self) -> bool {
        let mut n = 0;
        while let Some(Rpc { op, reply, notify }) = self.inbox.rpc.dequeue() {
            reply.set(self.run_call(op.waits_on(), notify, |s| s.execute(op)));
            n += 1;
            if n == RPC_BURST {
                break;
            }
        }
        self.stats.rpcs += n as u64;
        n > 0
    }
}

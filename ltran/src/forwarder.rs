//! The forwarder: the cable's side of a shared port, switching by [`Table`].
//!
//! A [`Forwarder`] is a [`Wire`]: whatever drives the cable (a bridge,
//! a test) hands it the frames arriving for the NIC and takes from it the
//! frames the instances sent. Each arriving frame is classified by the
//! table and put straight on the receive ring of the queue it picked
//! ([`SharedWire::deliver`]), past the port's own RSS and flow rules; an
//! ARP frame is copied to every queue an instance holds. What the instances
//! send leaves as the port's wire end gives it. The instances register
//! connections and listeners by asking the domain's primary for flow rules
//! on the port ([`RuleService`]), which the forwarder turns into table
//! entries once it has checked that the queue named is the asker's.
//!
//! The forwarder keeps no clock: its driver tells it the time with
//! [`Forwarder::poll`], which also expires unconfirmed connections.

use ethdev::flow::FlowId;
use ethdev::mbuf::Mbuf;
use ethdev::mempool::Owner;
use ethdev::shm::control::{Peer, RuleService};
use ethdev::shm::rules::TupleRule;
use ethdev::{EthDev, Instant, Wire};
use user_veth::shared::{SharedPort, SharedWire, Side};

use crate::table::{Limits, Table, Verdict};

/// What the forwarder moved, beside what its table counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ForwarderStats {
    /// Frames put on an instance's queue (each ARP copy counts).
    pub delivered: u64,
    /// ARP copies made beyond the arriving frame.
    pub copies: u64,
    /// Frames for the first instance, or copies for every instance, when
    /// no instance held a queue, or copies the pool had no buffer for.
    pub unplaced: u64,
}

/// gazelle's ltran on a shared port's wire end (see the module doc).
pub struct Forwarder {
    port: SharedPort,
    wire: SharedWire,
    /// The owner the forwarder's own copies are allocated as.
    owner: Owner,
    table: Table,
    now: Instant,
    /// Frames for each queue, gathered over one `put_rx`.
    batches: Vec<Vec<Mbuf>>,
    stats: ForwarderStats,
}

impl Forwarder {
    /// A forwarder for the port `port` (the primary's handle) whose wire
    /// end is `wire`, allocating its copies as `owner`.
    pub fn new(port: SharedPort, wire: SharedWire, owner: Owner, limits: Limits) -> Forwarder {
        let queues = usize::from(port.shape().rx_queues);
        let batches = (0..queues).map(|_| Vec::new()).collect();
        let table = Table::new(port.shape().mac, limits);
        Forwarder { port, wire, owner, table, now: Instant::ZERO, batches, stats: ForwarderStats::default() }
    }

    /// Tells the forwarder it is `now`, and expires what waited too long.
    pub fn poll(&mut self, now: Instant) {
        self.now = now;
        self.table.poll(now);
    }

    /// The tables.
    pub fn table(&self) -> &Table {
        &self.table
    }

    /// What the forwarder moved.
    pub fn stats(&self) -> ForwarderStats {
        self.stats
    }

    /// The port's receive queues, each an instance's or nobody's.
    pub(crate) fn queues(&self) -> u16 {
        self.batches.len() as u16
    }

    /// The port's wire end, for reclamation ([`SharedWire::reclaim`]).
    pub fn wire_mut(&mut self) -> &mut SharedWire {
        &mut self.wire
    }

    /// Forgets every entry of `owner`, which left or died; returns how many.
    pub fn forget(&mut self, owner: Owner) -> usize {
        self.table.forget(owner)
    }

    /// The receive queues an instance holds, in order.
    fn instances(&self) -> impl Iterator<Item = u16> + '_ {
        (0..self.batches.len() as u16).filter(|&q| self.port.holder(Side::Rx, q).is_some())
    }

    /// Puts `frame` in the batch of every queue an instance holds: the
    /// frame itself in the last, copies in the others.
    fn copy_to_every_instance(&mut self, frame: Mbuf) {
        let queues: Vec<u16> = self.instances().collect();
        let Some((&last, others)) = queues.split_last() else {
            self.stats.unplaced += 1;
            return;
        };
        for &queue in others {
            match frame.copy_to(self.port.pool(), self.owner) {
                Some(copy) => {
                    self.stats.copies += 1;
                    self.batches[usize::from(queue)].push(copy);
                }
                None => self.stats.unplaced += 1,
            }
        }
        self.batches[usize::from(last)].push(frame);
    }

    /// Puts each batch on its queue's ring.
    fn flush(&mut self) {
        for queue in 0..self.batches.len() {
            let mut batch = std::mem::take(&mut self.batches[queue]);
            self.stats.delivered += batch.len() as u64;
            self.wire.deliver(queue as u16, &mut batch);
            self.batches[queue] = batch;
        }
    }
}

impl Wire for Forwarder {
    fn take_tx(&mut self, out: &mut Vec<Mbuf>, max: usize) -> usize {
        self.wire.take_tx(out, max)
    }

    fn put_rx(&mut self, frames: &mut Vec<Mbuf>) {
        for frame in frames.drain(..) {
            match self.table.classify(frame.data(), self.now) {
                Verdict::Queue(queue) => match self.batches.get_mut(usize::from(queue)) {
                    Some(batch) => batch.push(frame),
                    None => self.stats.unplaced += 1,
                },
                Verdict::EveryInstance => self.copy_to_every_instance(frame),
                Verdict::FirstInstance => {
                    let first = self.instances().next();
                    match first {
                        Some(queue) => self.batches[usize::from(queue)].push(frame),
                        None => self.stats.unplaced += 1,
                    }
                }
                Verdict::Drop(_) => {}
            }
        }
        self.flush();
    }

    fn link_up(&self) -> bool {
        self.wire.link_up()
    }

    fn name(&self) -> &str {
        self.wire.name()
    }
}

impl RuleService for Forwarder {
    fn flow_add(&mut self, asker: &Peer, rule: &TupleRule) -> Result<FlowId, String> {
        if rule.port != self.port.name() {
            return Err(format!("ltran forwards port {:?}, not {:?}", self.port.name(), rule.port));
        }
        if self.port.holder(Side::Rx, rule.queue) != Some(asker.owner) {
            return Err(format!("receive queue {} of port {:?} is not this process's", rule.queue, rule.port));
        }
        self.table.register(asker.owner, rule.queue, rule.src, rule.dst)
    }

    fn flow_del(&mut self, asker: &Peer, port: &str, id: FlowId) -> Result<(), String> {
        if port != self.port.name() {
            return Err(format!("ltran forwards port {:?}, not {port:?}", self.port.name()));
        }
        self.table.unregister(asker.owner, id)
    }
}

//! The primary's rule book: the connection rules secondaries asked for on
//! the domain's shared ports, each kept under the owner id of the process
//! that asked (see [`ethdev::shm::rules`]).
//!
//! A rule may steer only into a receive queue its asker holds, a listener's
//! rule only to an address and port no other process listens on, and a
//! process may hold at most a set number of rules, so one process can
//! neither take another's traffic nor fill the port's flow table. When a
//! process leaves or dies, [`PortRules::forget`] destroys its rules, so its
//! peers' frames fall back to the port's catch-all instead of a queue
//! nobody polls.

use std::collections::HashMap;
use std::net::SocketAddr;

use ethdev::flow::FlowId;
use ethdev::mempool::Owner;
use ethdev::shm::control::{Peer, RuleService};
use ethdev::shm::rules::TupleRule;
use ethdev::EthDev;

use super::{SharedPort, Side};

/// One rule a process asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Held {
    /// Index into [`PortRules::ports`].
    port: usize,
    id: FlowId,
    /// For a listener's rule, the address and port it listens on.
    listens: Option<SocketAddr>,
}

/// The rules secondaries hold on the primary's shared ports.
#[derive(Debug)]
pub struct PortRules {
    /// The primary's own handles of the ports (they configure).
    ports: Vec<SharedPort>,
    /// Per owner: each rule it asked for.
    held: HashMap<Owner, Vec<Held>>,
    /// Most rules one owner may hold.
    limit: usize,
    /// Rules made over the book's life.
    granted: usize,
}

impl PortRules {
    /// A book for `ports` (the primary's handles), at most `limit` rules per process.
    pub fn new(ports: Vec<SharedPort>, limit: usize) -> PortRules {
        PortRules { ports, held: HashMap::new(), limit, granted: 0 }
    }

    /// How many rules `owner` holds.
    pub fn held_by(&self, owner: Owner) -> usize {
        self.held.get(&owner).map_or(0, Vec::len)
    }

    /// How many rules the book has made, over its life.
    pub fn granted(&self) -> usize {
        self.granted
    }

    /// How many rules all processes hold.
    pub fn len(&self) -> usize {
        self.held.values().map(Vec::len).sum()
    }

    /// Whether no process holds a rule.
    pub fn is_empty(&self) -> bool {
        self.held.values().all(Vec::is_empty)
    }

    /// Destroys every rule `owner` asked for (it left or died); returns how many.
    pub fn forget(&mut self, owner: Owner) -> usize {
        let rules = self.held.remove(&owner).unwrap_or_default();
        rules.iter().filter(|h| self.ports[h.port].flow_destroy(h.id).is_ok()).count()
    }

    fn port_index(&self, name: &str) -> Result<usize, String> {
        self.ports.iter().position(|p| p.name() == name).ok_or_else(|| format!("no shared port named {name:?}"))
    }
}

impl RuleService for PortRules {
    fn flow_add(&mut self, asker: &Peer, rule: &TupleRule) -> Result<FlowId, String> {
        let index = self.port_index(&rule.port)?;
        let port = &self.ports[index];
        if port.holder(Side::Rx, rule.queue) != Some(asker.owner) {
            return Err(format!("receive queue {} of port {:?} is not this process's", rule.queue, rule.port));
        }
        if self.held_by(asker.owner) >= self.limit {
            return Err(format!("this process holds {} rules, the most one process may", self.limit));
        }
        let listens = rule.src.is_none().then_some(rule.dst);
        let taken = |(&owner, rules): (&Owner, &Vec<Held>)| {
            owner != asker.owner && rules.iter().any(|h| h.port == index && listens.is_some() && h.listens == listens)
        };
        if self.held.iter().any(taken) {
            return Err(format!("another process listens on {} of port {:?}", rule.dst, rule.port));
        }
        let pattern = rule.pattern().ok_or("the two ends of a rule must be of one address family")?;
        let id = port.flow_create(&rule.attr(), &pattern, &rule.actions()).map_err(|e| e.to_string())?;
        self.held.entry(asker.owner).or_default().push(Held { port: index, id, listens });
        self.granted += 1;
        Ok(id)
    }

    fn flow_del(&mut self, asker: &Peer, port: &str, id: FlowId) -> Result<(), String> {
        let index = self.port_index(port)?;
        let rules = self.held.get_mut(&asker.owner);
        let at = rules.as_ref().and_then(|r| r.iter().position(|h| (h.port, h.id) == (index, id)));
        let (Some(rules), Some(at)) = (rules, at) else {
            return Err(format!("rule {} of port {port:?} is not this process's", id.raw()));
        };
        rules.swap_remove(at);
        self.ports[index].flow_destroy(id).map_err(|e| e.to_string())
    }
}

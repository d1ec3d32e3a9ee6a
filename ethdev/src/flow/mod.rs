//! rte_flow-like receive classification.
//!
//! A [`FlowTable`] holds the flow rules of one port. A rule is a
//! [`FlowAttr`] (group, priority, direction), a pattern of [`FlowItem`]s
//! listing headers from the outermost inwards, each with `rte_flow`'s spec /
//! last / mask triple ([`ItemSpec`]), and a list of [`FlowAction`]s. Rules are
//! validated and compiled when created: the pattern becomes a flat list of
//! integer range checks over the fields of a parsed [`PacketMeta`], the
//! actions a fate, a mark and a counter, and the rule is inserted in
//! priority order (lower value first, ties by creation order). The hot path,
//! [`FlowTable::classify`], walks that sorted list through `&self` without
//! allocating: the first matching rule with a fate decides it, matching
//! rules without one (PASSTHRU) only contribute their mark and counts, and a
//! packet no rule decides falls back to the port's RSS, or is dropped in
//! isolate mode if no rule matched it at all. Counters are atomics, so one
//! table can be read-shared by a control thread and data-path threads.

mod action;
mod item;
mod steering;

use std::sync::atomic::{AtomicU64, Ordering};

pub use action::FlowAction;
pub use item::{EthItem, FlowItem, Ipv4Item, Ipv6Item, ItemSpec, TcpItem, UdpItem, VlanItem};
pub use steering::tcp_steering;

use crate::error::{FlowError, FlowErrorCause};
use crate::packet::PacketMeta;
use crate::rss::RssHashTypes;
use action::{compile_actions, RuleFate};
use item::{compile_pattern, Check};

/// A rule's attributes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FlowAttr {
    /// Rule group; only group 0 exists (no jump action).
    pub group: u32,
    /// Lower values are tried first.
    pub priority: u32,
    /// The rule applies to received traffic; egress rules are refused.
    pub ingress: bool,
}

impl FlowAttr {
    /// An ingress rule of group 0 with this priority.
    #[must_use]
    pub fn ingress(priority: u32) -> Self {
        Self { group: 0, priority, ingress: true }
    }
}

/// Handle of a created rule; never reused within a table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FlowId(u64);

impl FlowId {
    /// The handle's number, as a text form (a control-channel answer) carries it.
    #[must_use]
    pub fn raw(self) -> u64 {
        self.0
    }

    /// The handle numbered `raw`; a table refuses one it never handed out.
    #[must_use]
    pub fn from_raw(raw: u64) -> FlowId {
        FlowId(raw)
    }
}

/// What a COUNT action has counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FlowCounters {
    /// Packets the rule matched.
    pub hits: u64,
    /// Bytes of those packets (frame length as passed to `classify`).
    pub bytes: u64,
}

/// What happens to a classified packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fate<'a> {
    /// Deliver to this receive queue.
    Queue(u16),
    /// Drop the packet.
    Drop,
    /// Hash the packet over `types` and pick from `queues` with the hash.
    Rss {
        /// Candidate queues (never empty).
        queues: &'a [u16],
        /// Hash types of the rule (empty: the port's own).
        types: RssHashTypes,
    },
    /// No rule decided: use the port's default RSS and RETA.
    Default,
    /// No rule matched and the port is isolated: drop the packet.
    Isolated,
}

/// The result of classifying one packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Verdict<'a> {
    /// Where the packet goes.
    pub fate: Fate<'a>,
    /// Mark of the highest-priority matching rule that has one.
    pub mark: Option<u32>,
}

#[derive(Debug, Default)]
struct Counter {
    hits: AtomicU64,
    bytes: AtomicU64,
}

impl Counter {
    fn add(&self, frame_len: usize) {
        self.hits.fetch_add(1, Ordering::Relaxed);
        let bytes = u64::try_from(frame_len).unwrap_or(u64::MAX);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    fn read(&self) -> FlowCounters {
        FlowCounters { hits: self.hits.load(Ordering::Relaxed), bytes: self.bytes.load(Ordering::Relaxed) }
    }
}

/// A compiled rule.
#[derive(Debug)]
struct Rule {
    id: FlowId,
    priority: u32,
    checks: Box<[Check]>,
    fate: RuleFate,
    mark: Option<u32>,
    counter: Option<Counter>,
}

impl Rule {
    #[inline]
    fn matches(&self, meta: &PacketMeta) -> bool {
        self.checks.iter().all(|check| check.matches(meta))
    }

    fn fate(&self) -> Option<Fate<'_>> {
        match &self.fate {
            RuleFate::Queue(queue) => Some(Fate::Queue(*queue)),
            RuleFate::Drop => Some(Fate::Drop),
            RuleFate::Rss { queues, types } => Some(Fate::Rss { queues, types: *types }),
            RuleFate::Passthru => None,
        }
    }
}

/// The flow rules of one port, in classification order.
#[derive(Debug)]
pub struct FlowTable {
    rules: Vec<Rule>,
    next_id: u64,
    isolated: bool,
    max_rules: usize,
}

impl Default for FlowTable {
    fn default() -> Self {
        Self::new()
    }
}

impl FlowTable {
    /// An empty, non-isolated table without a size limit.
    #[must_use]
    pub fn new() -> Self {
        Self::with_max_rules(usize::MAX)
    }

    /// An empty table that refuses more than `max_rules` rules, like a
    /// NIC's filter memory.
    #[must_use]
    pub fn with_max_rules(max_rules: usize) -> Self {
        Self { rules: Vec::new(), next_id: 0, isolated: false, max_rules }
    }

    /// Checks that a rule could be created, without creating it.
    ///
    /// # Errors
    ///
    /// The first refusal found, checking the attributes, then the pattern
    /// items, then the actions, then the table size; its cause names the
    /// attribute, item index or action index at fault.
    pub fn validate(
        &self,
        attr: &FlowAttr,
        pattern: &[FlowItem],
        actions: &[FlowAction],
        nb_rx_queues: u16,
    ) -> Result<(), FlowError> {
        self.compile(attr, pattern, actions, nb_rx_queues).map(drop)
    }

    /// Validates and adds a rule for a port with `nb_rx_queues` rx queues.
    ///
    /// # Errors
    ///
    /// As [`FlowTable::validate`]; a refused rule leaves the table unchanged.
    pub fn create(
        &mut self,
        attr: &FlowAttr,
        pattern: &[FlowItem],
        actions: &[FlowAction],
        nb_rx_queues: u16,
    ) -> Result<FlowId, FlowError> {
        let rule = self.compile(attr, pattern, actions, nb_rx_queues)?;
        let id = rule.id;
        let at = self.rules.partition_point(|r| r.priority <= rule.priority);
        self.rules.insert(at, rule);
        self.next_id += 1;
        Ok(id)
    }

    fn compile(
        &self,
        attr: &FlowAttr,
        pattern: &[FlowItem],
        actions: &[FlowAction],
        nb_rx_queues: u16,
    ) -> Result<Rule, FlowError> {
        check_attr(attr)?;
        let checks = compile_pattern(pattern)?.into_boxed_slice();
        let actions = compile_actions(actions, nb_rx_queues)?;
        if self.rules.len() >= self.max_rules {
            return Err(FlowError::new(FlowErrorCause::Rule, format!("table full ({} rules)", self.max_rules)));
        }
        Ok(Rule {
            id: FlowId(self.next_id),
            priority: attr.priority,
            checks,
            fate: actions.fate,
            mark: actions.mark,
            counter: actions.count.then(Counter::default),
        })
    }

    /// Removes a rule.
    ///
    /// # Errors
    ///
    /// [`FlowErrorCause::Rule`] if no rule has this id.
    pub fn destroy(&mut self, id: FlowId) -> Result<(), FlowError> {
        let at = self.position(id)?;
        self.rules.remove(at);
        Ok(())
    }

    /// Removes every rule (isolate mode is kept).
    pub fn flush(&mut self) {
        self.rules.clear();
    }

    /// Counters of a rule that has a COUNT action.
    ///
    /// # Errors
    ///
    /// [`FlowErrorCause::Rule`] if no rule has this id or it does not count.
    pub fn query(&self, id: FlowId) -> Result<FlowCounters, FlowError> {
        let rule = &self.rules[self.position(id)?];
        let counter = rule
            .counter
            .as_ref()
            .ok_or_else(|| FlowError::new(FlowErrorCause::Rule, format!("flow rule {id:?} has no COUNT action")))?;
        Ok(counter.read())
    }

    fn position(&self, id: FlowId) -> Result<usize, FlowError> {
        self.rules
            .iter()
            .position(|rule| rule.id == id)
            .ok_or_else(|| FlowError::new(FlowErrorCause::Rule, format!("no flow rule {id:?}")))
    }

    /// Sets isolate mode: packets no rule matches are dropped instead of
    /// going to the port's default RSS.
    pub fn set_isolate(&mut self, isolated: bool) {
        self.isolated = isolated;
    }

    /// Whether isolate mode is on.
    #[must_use]
    pub fn is_isolated(&self) -> bool {
        self.isolated
    }

    /// Number of rules.
    #[must_use]
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether the table has no rules.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Classifies one received packet of `frame_len` bytes, updating the
    /// counters of every rule that matches it on the way.
    #[inline]
    #[must_use]
    pub fn classify(&self, meta: &PacketMeta, frame_len: usize) -> Verdict<'_> {
        if self.rules.is_empty() {
            return Verdict { fate: self.unmatched_fate(), mark: None };
        }
        self.classify_rules(meta, frame_len)
    }

    fn classify_rules(&self, meta: &PacketMeta, frame_len: usize) -> Verdict<'_> {
        let mut mark = None;
        let mut matched = false;
        for rule in self.rules.iter().filter(|rule| rule.matches(meta)) {
            matched = true;
            mark = mark.or(rule.mark);
            if let Some(counter) = &rule.counter {
                counter.add(frame_len);
            }
            if let Some(fate) = rule.fate() {
                return Verdict { fate, mark };
            }
        }
        let fate = if matched { Fate::Default } else { self.unmatched_fate() };
        Verdict { fate, mark }
    }

    fn unmatched_fate(&self) -> Fate<'static> {
        if self.isolated {
            Fate::Isolated
        } else {
            Fate::Default
        }
    }
}

fn check_attr(attr: &FlowAttr) -> Result<(), FlowError> {
    if !attr.ingress {
        return Err(FlowError::new(FlowErrorCause::Attr, "only ingress rules are supported"));
    }
    if attr.group != 0 {
        return Err(FlowError::new(FlowErrorCause::Attr, format!("group {} unsupported: only group 0", attr.group)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::IpAddrs;

    fn udp6() -> PacketMeta {
        PacketMeta {
            dst_mac: [0x33, 0x33, 0, 0, 0, 1],
            src_mac: [2, 0, 0, 0, 0, 1],
            vlan: None,
            ether_type: 0x86dd,
            l3_offset: 14,
            ip: Some(IpAddrs::V6 { src: [0xfe; 16], dst: [0xff; 16] }),
            ip_proto: Some(17),
            fragment: false,
            l4_offset: 54,
            ports: Some((546, 547)),
            tcp_flags: 0,
        }
    }

    #[test]
    fn equal_priorities_keep_creation_order() {
        let mut table = FlowTable::new();
        let attr = FlowAttr::ingress(3);
        let ids: Vec<_> =
            (0..3).map(|q| table.create(&attr, &[], &[FlowAction::Queue(q)], 4).expect("valid rule")).collect();
        let order: Vec<_> = table.rules.iter().map(|rule| rule.id).collect();
        assert_eq!(order, ids);
    }

    #[test]
    fn ids_are_not_reused_after_destroy() {
        let mut table = FlowTable::new();
        let attr = FlowAttr::ingress(0);
        let first = table.create(&attr, &[], &[], 1).expect("valid rule");
        table.destroy(first).expect("rule exists");
        let second = table.create(&attr, &[], &[], 1).expect("valid rule");
        assert_ne!(first, second);
    }

    #[test]
    fn failed_create_consumes_no_id() {
        let mut table = FlowTable::new();
        let attr = FlowAttr::ingress(0);
        assert!(table.create(&attr, &[], &[FlowAction::Queue(9)], 1).is_err());
        assert_eq!(table.create(&attr, &[], &[], 1), Ok(FlowId(0)));
    }

    #[test]
    fn passthru_rule_counts_and_marks_then_lower_rule_decides() {
        let mut table = FlowTable::new();
        let udp = [FlowItem::Udp(ItemSpec::ANY)];
        let low = table.create(&FlowAttr::ingress(0), &udp, &[FlowAction::Mark(1), FlowAction::Count], 2);
        let high = table.create(&FlowAttr::ingress(1), &[], &[FlowAction::Mark(2), FlowAction::Queue(1)], 2);
        assert!(low.is_ok() && high.is_ok());
        let verdict = table.classify(&udp6(), 100);
        assert_eq!(verdict, Verdict { fate: Fate::Queue(1), mark: Some(1) });
        let counters = low.and_then(|id| table.query(id));
        assert_eq!(counters, Ok(FlowCounters { hits: 1, bytes: 100 }));
    }
}

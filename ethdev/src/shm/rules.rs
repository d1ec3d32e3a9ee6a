//! Flow rules a secondary asks its primary for, over the control channel.
//!
//! Only a domain's primary configures a shared port, as only DPDK's primary
//! configures a NIC; yet in gazelle's tuple_filter mode every process steers
//! its own connections to its own queues, one rule per connection (ETH /
//! IP src+dst / TCP sport+dport → QUEUE), which secondaries ask process 0
//! for. Here a secondary asks the primary on its control connection, one
//! line each way ([`Request`]), and the primary's [`RuleService`] decides:
//! it checks that the queue is the asker's, creates the rule and keeps it
//! under the asker's owner id, so the rules of a process that leaves or dies
//! go with it (gazelle's outlive a killed process and steer its peers'
//! frames into a queue nobody polls).
//!
//! Only the connection rule's shape ([`TupleRule`]) crosses: it is all
//! tuple_filter needs, and a narrow request is one the primary can check.

use std::net::SocketAddr;

use crate::flow::{FlowAction, FlowAttr, FlowId, FlowItem, Ipv4Item, Ipv6Item, ItemSpec, TcpItem};

use super::control::Peer;

/// A rule steering one TCP connection's frames to a queue: frames from
/// `src` to `dst` go to `queue` of port `port`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TupleRule {
    /// The shared port's name.
    pub port: String,
    /// The rule's priority (lower is tried first).
    pub priority: u32,
    /// The queue the frames go to.
    pub queue: u16,
    /// The frames' source: the remote end of the connection.
    pub src: SocketAddr,
    /// The frames' destination: the local end.
    pub dst: SocketAddr,
}

impl TupleRule {
    /// The rule `attr`/`pattern`/`actions` describe, if it has the
    /// connection rule's shape: ingress, ETH (any) / IPv4 or IPv6 with both
    /// addresses / TCP with both ports, under default masks, → one QUEUE.
    pub fn from_flow(
        port: &str,
        attr: &FlowAttr,
        pattern: &[FlowItem],
        actions: &[FlowAction],
    ) -> Result<TupleRule, String> {
        let shape = "a secondary may only ask for connection rules: ingress, group 0, \
                     ETH / IPv4 or IPv6 src+dst / TCP sport+dport -> QUEUE";
        let (&[FlowAction::Queue(queue)], true, 0) = (actions, attr.ingress, attr.group) else {
            return Err(shape.into());
        };
        let (src, dst) = match pattern {
            [FlowItem::Eth(eth), ip, FlowItem::Tcp(tcp @ ItemSpec { spec: Some(t), .. })]
                if *eth == ItemSpec::ANY && exact(tcp) && t.flags == 0 =>
            {
                let (src_ip, dst_ip): (std::net::IpAddr, std::net::IpAddr) = match ip {
                    FlowItem::Ipv4(i @ ItemSpec { spec: Some(v), .. }) if exact(i) && v.proto == 0 => {
                        (v.src.into(), v.dst.into())
                    }
                    FlowItem::Ipv6(i @ ItemSpec { spec: Some(v), .. }) if exact(i) && v.proto == 0 => {
                        (v.src.into(), v.dst.into())
                    }
                    _ => return Err(shape.into()),
                };
                (SocketAddr::new(src_ip, t.src_port), SocketAddr::new(dst_ip, t.dst_port))
            }
            _ => return Err(shape.into()),
        };
        Ok(TupleRule { port: port.into(), priority: attr.priority, queue, src, dst })
    }

    /// The rule's attributes.
    pub fn attr(&self) -> FlowAttr {
        FlowAttr::ingress(self.priority)
    }

    /// The rule's pattern (`None` if the two ends' families differ).
    pub fn pattern(&self) -> Option<[FlowItem; 3]> {
        let ip = match (self.src, self.dst) {
            (SocketAddr::V4(s), SocketAddr::V4(d)) => {
                FlowItem::Ipv4(ItemSpec::new(Ipv4Item { src: s.ip().octets(), dst: d.ip().octets(), proto: 0 }))
            }
            (SocketAddr::V6(s), SocketAddr::V6(d)) => {
                FlowItem::Ipv6(ItemSpec::new(Ipv6Item { src: s.ip().octets(), dst: d.ip().octets(), proto: 0 }))
            }
            _ => return None,
        };
        let tcp = TcpItem { src_port: self.src.port(), dst_port: self.dst.port(), flags: 0 };
        Some([FlowItem::Eth(ItemSpec::ANY), ip, FlowItem::Tcp(ItemSpec::new(tcp))])
    }

    /// The rule's one action.
    pub fn actions(&self) -> [FlowAction; 1] {
        [FlowAction::Queue(self.queue)]
    }
}

/// Whether `item` matches exact values under its default mask.
fn exact<T>(item: &ItemSpec<T>) -> bool {
    item.last.is_none() && item.mask.is_none()
}

/// What a secondary asks of its primary, after its greeting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// Create a connection rule: `FLOW ADD <port> <priority> <queue> <src> <dst>`,
    /// answered `FLOW <id>`.
    FlowAdd(TupleRule),
    /// Destroy a rule this process asked for: `FLOW DEL <port> <id>`,
    /// answered `OK`.
    FlowDel {
        /// The shared port's name.
        port: String,
        /// The rule.
        id: FlowId,
    },
}

impl Request {
    /// The request's line, without its newline.
    pub fn to_line(&self) -> String {
        match self {
            Request::FlowAdd(r) => format!("FLOW ADD {} {} {} {} {}", r.port, r.priority, r.queue, r.src, r.dst),
            Request::FlowDel { port, id } => format!("FLOW DEL {port} {}", id.raw()),
        }
    }

    /// Reads a request line (without its newline); says what is wrong with
    /// one it cannot read.
    pub fn parse(line: &str) -> Result<Request, String> {
        let words: Vec<&str> = line.split(' ').collect();
        let number = |what: &str, word: &str| format!("bad {what} {word:?}");
        match words[..] {
            ["FLOW", "ADD", port, priority, queue, src, dst] => {
                let rule = TupleRule {
                    port: port.into(),
                    priority: priority.parse().map_err(|_| number("priority", priority))?,
                    queue: queue.parse().map_err(|_| number("queue", queue))?,
                    src: src.parse().map_err(|_| number("address", src))?,
                    dst: dst.parse().map_err(|_| number("address", dst))?,
                };
                if rule.pattern().is_none() {
                    return Err("the two ends of a rule must be of one address family".into());
                }
                Ok(Request::FlowAdd(rule))
            }
            ["FLOW", "DEL", port, id] => Ok(Request::FlowDel {
                port: port.into(),
                id: FlowId::from_raw(id.parse().map_err(|_| number("id", id))?),
            }),
            _ => Err("expected FLOW ADD <port> <priority> <queue> <src> <dst> or FLOW DEL <port> <id>".into()),
        }
    }
}

/// The primary's side of [`Request`]s: decides each one for the peer that
/// asked. An error is the reason the peer is told.
pub trait RuleService {
    /// Creates `rule` for `asker`.
    fn flow_add(&mut self, asker: &Peer, rule: &TupleRule) -> Result<FlowId, String>;
    /// Destroys rule `id` of port `port`, which `asker` must have asked for.
    fn flow_del(&mut self, asker: &Peer, port: &str, id: FlowId) -> Result<(), String>;
}

/// The service of a primary that configures nothing for others: it denies
/// every request.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoRules;

impl RuleService for NoRules {
    fn flow_add(&mut self, _: &Peer, _: &TupleRule) -> Result<FlowId, String> {
        Err("this primary creates no flow rules for other processes".into())
    }

    fn flow_del(&mut self, _: &Peer, _: &str, _: FlowId) -> Result<(), String> {
        Err("this primary creates no flow rules for other processes".into())
    }
}

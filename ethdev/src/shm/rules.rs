//! Flow rules a secondary asks its primary for, over the control channel.
//!
//! Only a domain's primary configures a shared port, as only DPDK's primary
//! configures a NIC; yet in gazelle's tuple_filter mode every process steers
//! its own connections to its own queues, one rule per connection (ETH /
//! IP src+dst / TCP sport+dport → QUEUE), which secondaries ask process 0
//! for. Here a secondary asks the primary on its control connection, one
//! line each way ([`Request`]), and the primary's
//! [`RuleService`](super::control::RuleService) decides:
//! it checks that the queue is the asker's, creates the rule and keeps it
//! under the asker's owner id, so the rules of a process that leaves or dies
//! go with it (gazelle's outlive a killed process and steer its peers'
//! frames into a queue nobody polls).
//!
//! Only two shapes of rule ([`TupleRule`]) cross: a connection's, and a
//! listener's (its port's SYNs from anyone, so that the NIC hands a new
//! connection to the process listening for it). They are all tuple_filter
//! needs, and a narrow request is one the primary can check.

use std::net::{IpAddr, SocketAddr};

use crate::flow::{tcp_steering, FlowAction, FlowAttr, FlowId, FlowItem, ItemSpec};

/// A rule steering TCP frames to a queue: a connection's (frames from
/// `src` to `dst`), or a listener's (with no `src`: SYNs without ACK from
/// anyone to `dst`), to `queue` of port `port`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TupleRule {
    /// The shared port's name.
    pub port: String,
    /// The rule's priority (lower is tried first).
    pub priority: u32,
    /// The queue the frames go to.
    pub queue: u16,
    /// The frames' source: the remote end of the connection; `None` for a
    /// listener's rule.
    pub src: Option<SocketAddr>,
    /// The frames' destination: the local end.
    pub dst: SocketAddr,
}

impl TupleRule {
    /// The rule `attr`/`pattern`/`actions` describe, if it has one of the
    /// two shapes (see [`tcp_steering`]) and is ingress → one QUEUE.
    pub fn from_flow(
        port: &str,
        attr: &FlowAttr,
        pattern: &[FlowItem],
        actions: &[FlowAction],
    ) -> Result<TupleRule, String> {
        let shape = "a secondary may only ask for connection or listener rules: ingress, group 0, \
                     ETH / IPv4 or IPv6 src+dst / TCP sport+dport -> QUEUE, or a listener's: \
                     ETH / IPv4 or IPv6 dst / TCP dport, SYN set and ACK clear -> QUEUE";
        let (&[FlowAction::Queue(queue)], true, 0, [_, ip, _]) = (actions, attr.ingress, attr.group, pattern) else {
            return Err(shape.into());
        };
        let (src_ip, dst_ip): (IpAddr, IpAddr) = match ip {
            FlowItem::Ipv4(ItemSpec { spec: Some(v), .. }) => (v.src.into(), v.dst.into()),
            FlowItem::Ipv6(ItemSpec { spec: Some(v), .. }) => (v.src.into(), v.dst.into()),
            _ => return Err(shape.into()),
        };
        let FlowItem::Tcp(ItemSpec { spec: Some(tcp), .. }) = &pattern[2] else { return Err(shape.into()) };
        // Each shape is checked by building it again from what was read.
        let dst = SocketAddr::new(dst_ip, tcp.dst_port);
        [Some(SocketAddr::new(src_ip, tcp.src_port)), None]
            .into_iter()
            .map(|src| TupleRule { port: port.into(), priority: attr.priority, queue, src, dst })
            .find(|rule| rule.pattern().is_some_and(|p| p[..] == *pattern))
            .ok_or_else(|| shape.into())
    }

    /// The rule's attributes.
    pub fn attr(&self) -> FlowAttr {
        FlowAttr::ingress(self.priority)
    }

    /// The rule's pattern (see [`tcp_steering`]; `None` if the two
    /// ends' families differ).
    pub fn pattern(&self) -> Option<[FlowItem; 3]> {
        tcp_steering(self.src, self.dst)
    }

    /// The rule's one action.
    pub fn actions(&self) -> [FlowAction; 1] {
        [FlowAction::Queue(self.queue)]
    }
}

/// What a secondary asks of its primary, after its greeting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// Create a rule: `FLOW ADD <port> <priority> <queue> <src> <dst>`
    /// (`*` for a listener's source), answered `FLOW <id>`.
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
            Request::FlowAdd(r) => {
                let src = r.src.map_or("*".to_owned(), |s| s.to_string());
                format!("FLOW ADD {} {} {} {src} {}", r.port, r.priority, r.queue, r.dst)
            }
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
                    src: match src {
                        "*" => None,
                        src => Some(src.parse().map_err(|_| number("address", src))?),
                    },
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

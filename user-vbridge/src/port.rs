//! Port identities, the two directions of a port's link, and the port
//! record the bridge keeps.

use std::fmt;

use ethdev::{Mbuf, Wire};

use crate::link::Link;

/// A bridge port, numbered from 0 in the order ports were added.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortId(pub u16);

impl PortId {
    /// The port's position in the bridge's port list.
    pub fn index(self) -> usize {
        usize::from(self.0)
    }
}

impl fmt::Display for PortId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "port{}", self.0)
    }
}

/// Which way a frame crosses a port's link.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    /// From the port into the bridge (what the port transmitted).
    Ingress,
    /// From the bridge out to the port (what the port receives).
    Egress,
}

impl Direction {
    /// Both directions, ingress first.
    pub const BOTH: [Direction; 2] = [Direction::Ingress, Direction::Egress];

    /// 0 for ingress, 1 for egress: an index into per-direction arrays.
    pub fn index(self) -> usize {
        match self {
            Direction::Ingress => 0,
            Direction::Egress => 1,
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Ingress => "ingress",
            Direction::Egress => "egress",
        })
    }
}

/// A port as the bridge holds it: the wire, its state and both links.
pub(crate) struct Port {
    /// The network-facing end of the attached device.
    pub wire: Box<dyn Wire>,
    /// Frames may leave through the port they came in on.
    pub hairpin: bool,
    /// Set by `Bridge::set_port_up`.
    pub admin_up: bool,
    /// Administratively up and the wire's link is up.
    pub up: bool,
    /// Port-to-bridge link.
    pub ingress: Link,
    /// Bridge-to-port link.
    pub egress: Link,
    /// Frames waiting to be handed to the wire in one burst.
    pub out: Vec<Mbuf>,
}

impl Port {
    /// One direction's link.
    pub fn link(&self, direction: Direction) -> &Link {
        match direction {
            Direction::Ingress => &self.ingress,
            Direction::Egress => &self.egress,
        }
    }

    /// One direction's link, mutably.
    pub fn link_mut(&mut self, direction: Direction) -> &mut Link {
        match direction {
            Direction::Ingress => &mut self.ingress,
            Direction::Egress => &mut self.egress,
        }
    }
}

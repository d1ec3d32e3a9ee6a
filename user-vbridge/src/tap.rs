//! Capture taps: copies of the frames crossing chosen points.
//!
//! A tap watches one port or all, one direction or both. The capture point
//! is the port end of the link: ingress frames are recorded as the port
//! transmits them (before impairments and validation), egress frames as the
//! port receives them (after impairments). Each record holds a copy of the
//! bytes and the bridge time, ready to be written as pcap.

use ethdev::Instant;

use crate::port::{Direction, PortId};

/// Names a tap for [`crate::Bridge::take_captures`] and
/// [`crate::Bridge::remove_tap`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TapId(u32);

/// Which frames a tap records.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TapFilter {
    /// Only this port; `None` = every port.
    pub port: Option<PortId>,
    /// Only this direction; `None` = both.
    pub direction: Option<Direction>,
}

impl TapFilter {
    fn matches(&self, port: PortId, direction: Direction) -> bool {
        self.port.is_none_or(|p| p == port) && self.direction.is_none_or(|d| d == direction)
    }
}

/// One recorded frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Captured {
    /// The port it crossed.
    pub port: PortId,
    /// Which way it crossed.
    pub direction: Direction,
    /// Bridge time of the crossing.
    pub time: Instant,
    /// The frame's bytes.
    pub data: Vec<u8>,
}

struct Tap {
    filter: TapFilter,
    frames: Vec<Captured>,
}

/// Every tap of a bridge, with a per-port summary for the fast path.
#[derive(Default)]
pub(crate) struct Taps {
    taps: Vec<Option<Tap>>,
    watched: Vec<[bool; 2]>,
}

impl Taps {
    /// Starts a tap; `ports` is the bridge's current port count.
    pub fn add(&mut self, filter: TapFilter, ports: usize) -> TapId {
        let id = TapId(self.taps.len() as u32);
        self.taps.push(Some(Tap { filter, frames: Vec::new() }));
        self.refresh(ports);
        id
    }

    /// Stops a tap, discarding what it recorded; whether it existed.
    pub fn remove(&mut self, id: TapId, ports: usize) -> bool {
        let existed = self.taps.get_mut(id.0 as usize).and_then(Option::take).is_some();
        self.refresh(ports);
        existed
    }

    /// What a tap recorded since the last call (empty for unknown taps).
    pub fn take(&mut self, id: TapId) -> Vec<Captured> {
        let tap = self.taps.get_mut(id.0 as usize).and_then(Option::as_mut);
        tap.map(|tap| std::mem::take(&mut tap.frames)).unwrap_or_default()
    }

    /// Recomputes which points are watched, for `ports` ports.
    pub fn refresh(&mut self, ports: usize) {
        self.watched = (0..ports).map(|p| Direction::BOTH.map(|d| self.any_matches(PortId(p as u16), d))).collect();
    }

    /// Whether any tap records frames crossing `port` in `direction`.
    pub fn watches(&self, port: PortId, direction: Direction) -> bool {
        self.watched.get(port.index()).is_some_and(|w| w[direction.index()])
    }

    /// Records `data` in every tap that matches.
    pub fn record(&mut self, port: PortId, direction: Direction, time: Instant, data: &[u8]) {
        for tap in self.taps.iter_mut().flatten().filter(|t| t.filter.matches(port, direction)) {
            tap.frames.push(Captured { port, direction, time, data: data.to_vec() });
        }
    }

    fn any_matches(&self, port: PortId, direction: Direction) -> bool {
        self.taps.iter().flatten().any(|t| t.filter.matches(port, direction))
    }
}

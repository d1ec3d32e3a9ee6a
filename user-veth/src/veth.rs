//! Making a veth: a port and its wire end around one shared state.
//!
//! The two faces depend on the state they share ([`port`](crate::port)
//! defines it, [`wire`](crate::wire) reads it) and not on each other;
//! [`Veth::new`] is the one place that builds the state and hands out both.

use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, RwLock};

use ethdev::dev::PortConf;
use ethdev::mac::MacAddr;
use ethdev::mempool::Mempool;

use crate::counters::PortCounters;
use crate::port::{Shared, State, VethPort};
use crate::wire::VethWire;

/// Constructor namespace for a veth port and its wire end.
pub struct Veth;

impl Veth {
    /// A stopped port named `name` with MAC `mac`, configured with one queue
    /// pair, and its wire end. `pool` supplies buffers for transmit offloads
    /// that create frames (TSO segments).
    #[allow(clippy::new_ret_no_self, reason = "a port is made together with its wire end")]
    pub fn new(name: impl Into<String>, mac: impl Into<MacAddr>, pool: Mempool) -> (VethPort, VethWire) {
        let conf = PortConf::new(1);
        let state = State::build(&conf).expect("the default configuration is valid");
        let shared = Arc::new(Shared {
            name: name.into(),
            mac: mac.into(),
            pool,
            state: RwLock::new(state),
            started: AtomicBool::new(false),
            generation: AtomicU64::new(0),
            link_up: AtomicBool::new(true),
            promiscuous: AtomicBool::new(false),
            counters: PortCounters::default(),
        });
        (VethPort { shared: Arc::clone(&shared) }, VethWire::new(shared))
    }
}

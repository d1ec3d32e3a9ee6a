//! gazelle's ltran: a forwarder process that owns the NIC and switches its
//! frames to lstack processes in software.
//!
//! In gazelle's ltran mode no lstack process touches the NIC: ltran polls
//! it, looks every frame up in its tables and hands it to the stack it
//! belongs to, and sends what the stacks send. Here the forwarder sits
//! where a shared port's wire end would ([`user_veth::shared`]): the
//! lstack processes attach to the port and hold its queues as they would
//! a NIC's, and the [`Forwarder`] stands between the port's wire end and
//! the cable, picking each arriving frame's queue itself instead of the
//! port's RSS and flow rules. Frames go by reference through the port's
//! rings, copied once into its pool on the way in (ltran copies into the
//! stack's buffers too), and every buffer is accounted for as on any
//! shared port, so a killed lstack process's buffers are reclaimed.
//!
//! The decisions are a sans-IO [`Table`]: connections by their four-tuple,
//! listeners by address and port, and a new connection handed to the
//! listener with the fewest connections. The stacks register their
//! connections and listeners as flow rules they ask the domain's primary
//! for (gazelle's lstack sends ltran registration messages), so the stack
//! code is the one tuple_filter mode uses.

mod forwarder;
pub mod published;
mod table;

pub use forwarder::{Forwarder, ForwarderStats};
pub use table::{Limits, Miss, Table, TableStats, Verdict};

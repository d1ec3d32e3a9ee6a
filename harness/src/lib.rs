//! harness: what runs dtnet's components and reports on them.
//!
//! The `dtnet` binary is a thin clap front end over this library: [`rss`]
//! answers "which queue will this flow land on", [`bench`] measures the data
//! path, and [`wire_run`] drives the default hermetic scenario (veth ports
//! on a bridge, in virtual time) and reports its accounting.

pub mod apps;
pub mod bench;
pub mod exec;
pub mod rss;
pub mod tcp_run;
pub mod wire_run;
pub mod world;

//! harness: what runs dtnet's components and reports on them.
//!
//! The `dtnet` binary is a thin clap front end over this library: [`rss`]
//! answers "which queue will this flow land on", [`bench`] measures the data
//! path, and [`wire_run`] drives the default hermetic scenario (veth ports
//! on a bridge, in virtual time) and reports its accounting.

pub mod bench;
pub mod rss;
pub mod wire_run;

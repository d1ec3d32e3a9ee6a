//! harness: what runs dtnet's components and reports on them.
//!
//! The `dtnet` binary is a thin clap front end over this library: [`rss`]
//! answers "which queue will this flow land on", [`bench`](mod@bench) measures the data
//! path, and [`scenario`] loads and runs scenario files (topology, traffic,
//! impairments, expectations) and reports on them; [`tcp_run`] is a TCP
//! scenario written in code. [`record`] captures every port and queue of a
//! world to pcapng, and [`replay`] injects a capture into a host and
//! compares the resulting trace with a golden file.

pub mod apps;
pub mod bench;
pub mod exec;
pub mod kernel;
pub mod latch;
pub mod mp;
pub mod record;
pub mod replay;
pub mod replayer;
pub mod rss;
pub mod scenario;
pub mod tcp_run;
pub mod world;

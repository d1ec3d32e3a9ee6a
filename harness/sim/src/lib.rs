//! sim: the room where a dtnet world lives and runs.
//!
//! A [`world::World`] is a topology (hosts with their stack groups and
//! ports, bare NICs, replay ports, kernel hosts from [`kernel`]) on one
//! bridge; [`exec`] holds the executors that own its time and threads
//! (`sim`: one thread, virtual time; `threads`: real time), and [`apps`]
//! the traffic applications that run on it as tasks (bulk, echo, UDP,
//! ping), with the [`latch`] that gates them. [`record`] captures every port
//! and queue of a world, [`replay`] reads a capture back and compares
//! traces with golden files, and [`replayer`] is the bridge port that
//! injects a capture. Everything above (the scenario engine, benchmarks,
//! the `dtnet` CLI) builds on this crate; it depends on nothing of theirs.

pub mod apps;
pub mod exec;
pub mod kernel;
pub mod latch;
pub mod record;
pub mod replay;
pub mod replayer;
pub mod world;

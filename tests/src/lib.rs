//! End-to-end tests across dtnet's crates live in `tests/`; this library
//! holds what they share: [`module_graph`], the checker that keeps module
//! cycles out of every crate.

pub mod module_graph;

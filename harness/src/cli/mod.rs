//! The `dtnet` subcommands that live in modules of their own.

pub mod domain;
pub mod mp;
pub mod stats;

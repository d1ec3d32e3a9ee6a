//! Integration tests of the bridge through its public API, with in-memory
//! test ports: switching rules, impairments, taps and accounting, TCP
//! super-frames, and a property test over random traffic.

mod common;
mod impairments;
mod observe;
mod props;
mod rules;
mod super_frames;

//! Stacks in every single-process forwarding mode, both thread models,
//! both executors: a server host with 4 stacks and a client host with 2,
//! 64 connections of 1 MiB each. Every byte intact, every connection on the
//! stack the mode predicts, per-stack counts agreeing with the applications,
//! accounting closed, no buffer leaked.

use rstest::rstest;
use scenario::tcp_run::{Executor, TcpRun};
use stack::{ForwardMode, ThreadModel};

const CONNS: u64 = 64;
const BYTES: u64 = 1 << 20;

fn run_and_check(run: TcpRun) {
    let report = run.run().unwrap();
    if let Err(e) = report.check() {
        let hosts = &report.world.hosts;
        let stats: Vec<_> =
            hosts.iter().map(|h| (0..h.group.len()).map(|s| h.group.stats(s)).collect::<Vec<_>>()).collect();
        panic!("{:?}/{:?}/{:?}: {e}\nstack stats: {stats:#?}", run.mode, run.model, run.executor);
    }
    let accepted = report.accepted_per_stack();
    assert_eq!(accepted.iter().sum::<u64>(), CONNS);
    if report.listen_stack.is_none() {
        assert!(accepted.iter().filter(|&&n| n > 0).count() > 1, "RSS spread connections over stacks: {accepted:?}");
    }
}

#[rstest]
fn sim_modes(
    #[values(ForwardMode::Rss, ForwardMode::ListenShadow, ForwardMode::SoftForward, ForwardMode::FlowDirector)]
    mode: ForwardMode,
    #[values(ThreadModel::RunToWakeup, ThreadModel::RunToCompletion)] model: ThreadModel,
) {
    run_and_check(TcpRun::new(mode, model, Executor::Sim, CONNS, BYTES));
}

#[rstest]
fn threads_modes(
    #[values(ForwardMode::Rss, ForwardMode::ListenShadow, ForwardMode::SoftForward, ForwardMode::FlowDirector)]
    mode: ForwardMode,
    #[values(ThreadModel::RunToWakeup, ThreadModel::RunToCompletion)] model: ThreadModel,
) {
    run_and_check(TcpRun::new(mode, model, Executor::Threads, CONNS, BYTES));
}

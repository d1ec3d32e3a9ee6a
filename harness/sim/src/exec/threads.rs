//! The threaded executor: real time, real threads.
//!
//! The bridge gets a thread (a run of stack groups whose devices join them,
//! [`run_groups`], has none); under run-to-wakeup every stack gets a thread
//! that polls it in a loop; each application thread (the `thread` index a
//! task was spawned with) gets a thread that runs its tasks. Under
//! run-to-wakeup an application thread sleeps until a stack wakes one of its
//! tasks; under run-to-completion there are no stack threads, and
//! application threads keep polling their tasks, whose calls poll the stacks.
//!
//! What no thread here would poll, it refuses before starting: a world with
//! [`Replayer`](crate::replayer::Replayer)s (sans-IO ports the simulation
//! polls after the bridge) is a [`Refusal`], not a run that waits for a
//! replay that never starts.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use stack::{Clock, StackGroup, ThreadModel};
use user_vbridge::Bridge;

use super::{Outcome, RealClock, Spawner, TaskList};
use crate::world::World;

/// Idle polls a polling thread spins through before it yields its core.
const SPIN: u32 = 64;

/// Why the threaded executor refused a world.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The world injects captures: no thread here polls a replay port.
    #[error(
        "the threads executor cannot run a world with {0} replayer(s): no thread would poll a replay port \
         (replays run under the sim executor)"
    )]
    Replayers(usize),
}

/// Runs `spawner`'s tasks over `world` on real threads until they finish or
/// `timeout` passes, then keeps the stacks and bridge running for `drain`;
/// refuses a world it cannot run (see [`Refusal`]) before starting.
pub fn run(world: &mut World, spawner: &Spawner, timeout: Duration, drain: Duration) -> Result<Outcome, Refusal> {
    if !world.replayers.is_empty() {
        return Err(Refusal::Replayers(world.replayers.len()));
    }
    let groups: Vec<StackGroup> = world.hosts.iter().map(|h| h.group.clone()).collect();
    let outcome = run_parts(Some(&mut world.bridge), &groups, spawner, timeout, drain);
    settle_alone(world, outcome.end, drain);
    Ok(outcome)
}

/// With every thread gone, polls `world` from this thread (its clock going
/// on from `end`) until a poll finds nothing to do, or for `limit` at most.
/// The threads stop one by one, so the bridge's last poll could hand a
/// stack a frame (a kernel host's late ACK, say) after that stack's thread
/// had stopped, leaving the frame queued and its buffer counted in use.
fn settle_alone(world: &mut World, end: ethdev::Instant, limit: Duration) {
    let start = std::time::Instant::now();
    while world.poll(end + start.elapsed()) && start.elapsed() < limit {}
}

/// Runs `spawner`'s tasks over `groups` whose ports need no bridge (their
/// devices carry the frames between them, e.g. two DPDK ports cabled to
/// each other), as [`run`] does a world's.
pub fn run_groups(groups: &[StackGroup], spawner: &Spawner, timeout: Duration, drain: Duration) -> Outcome {
    run_parts(None, groups, spawner, timeout, drain)
}

/// The threads of [`run`]: the bridge's, if there is one, the stacks' and
/// the applications'.
fn run_parts(
    bridge: Option<&mut Bridge>,
    groups: &[StackGroup],
    spawner: &Spawner,
    timeout: Duration,
    drain: Duration,
) -> Outcome {
    let clock = Arc::new(RealClock::new());
    let stop = AtomicBool::new(false);
    let outcome = Mutex::new(Outcome::default());
    let busy_poll = groups.iter().any(|g| g.config().model == ThreadModel::RunToCompletion);
    let app_threads = spawner.threads().max(1);
    thread::scope(|s| {
        let (stop, clock, outcome) = (&stop, &clock, &outcome);
        if let Some(bridge) = bridge {
            s.spawn(move || {
                while !stop.load(Ordering::Acquire) {
                    bridge.poll(clock.now());
                    thread::yield_now();
                }
            });
        }
        for g in groups.iter().filter(|g| g.config().model == ThreadModel::RunToWakeup) {
            for i in 0..g.len() {
                s.spawn(move || poll_stack(g, i, clock.as_ref(), stop));
            }
        }
        let apps: Vec<_> = (0..app_threads)
            .map(|me| s.spawn(move || app_thread(me, app_threads, spawner, busy_poll, outcome, stop)))
            .collect();
        let started = std::time::Instant::now();
        while spawner.live() > 0 && started.elapsed() < timeout {
            thread::sleep(Duration::from_millis(1));
        }
        let unfinished = spawner.live();
        let drain_end = std::time::Instant::now() + drain;
        while std::time::Instant::now() < drain_end {
            if busy_poll {
                groups.iter().for_each(|g| (0..g.len()).for_each(|i| _ = g.poll(i, clock.now())));
            }
            thread::yield_now();
        }
        stop.store(true, Ordering::Release);
        apps.into_iter().for_each(|a| a.thread().unpark());
        let mut o = outcome.lock().unwrap_or_else(PoisonError::into_inner);
        (o.timed_out, o.unfinished) = (unfinished > 0, unfinished);
    });
    let mut o = outcome.into_inner().unwrap_or_else(PoisonError::into_inner);
    o.end = clock.now();
    o
}

fn poll_stack(group: &StackGroup, i: usize, clock: &RealClock, stop: &AtomicBool) {
    let mut idle = 0;
    while !stop.load(Ordering::Acquire) {
        if group.poll(i, clock.now()) {
            idle = 0;
        } else {
            idle += 1;
            if idle > SPIN {
                thread::yield_now();
            }
        }
    }
}

fn app_thread(me: usize, n: usize, spawner: &Spawner, busy_poll: bool, outcome: &Mutex<Outcome>, stop: &AtomicBool) {
    let mut tasks = TaskList::default();
    while !stop.load(Ordering::Acquire) {
        tasks.extend(spawner.take(|t| t % n == me), Some(&thread::current()));
        tasks.poll(busy_poll, spawner, |name, e| {
            outcome.lock().unwrap_or_else(PoisonError::into_inner).failures.push((name, e));
        });
        if stop.load(Ordering::Acquire) {
            outcome.lock().unwrap_or_else(PoisonError::into_inner).stuck.extend(tasks.stuck());
        } else if busy_poll {
            thread::yield_now();
        } else {
            thread::park_timeout(Duration::from_millis(1));
        }
    }
}

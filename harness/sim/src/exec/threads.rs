//! The threaded executor: real time, real threads.
//!
//! Each application thread (the `thread` index a task was spawned with)
//! gets a thread that runs its tasks. Under run-to-wakeup every stack gets
//! a thread that polls it in a loop, the bridge gets one too (a run of
//! stack groups whose devices join them, [`run_groups`], has no bridge),
//! and an application thread sleeps until a stack wakes one of its tasks.
//! Under run-to-completion there are neither stack nor bridge threads: an
//! application thread keeps polling its tasks, whose calls poll the stacks,
//! and after each round polls the bridge itself if no other thread holds
//! it (the bridge sits behind a lock, taken with `try_lock`), as a
//! run-to-completion gazelle thread does all its work in its own loop and
//! as Linux's veth hands a frame to its peer in the sender's context. So
//! two busy application threads on two cores are all that runs, as in the
//! kernel baselines, not three threads taking turns; and application
//! threads beyond the number of cores share them (see [`os_threads`]), as
//! DPDK gives each polling lcore a core of its own. Every application
//! thread loops until the run stops, tasks or none, so the bridge is
//! polled as long as any is; during the drain the coordinating thread
//! polls the stacks and the bridge as well, and after the run the world is
//! settled from one thread.
//!
//! What no thread here would poll, it refuses before starting: a world with
//! [`Replayer`](crate::replayer::Replayer)s (sans-IO ports the simulation
//! polls after the bridge) is a [`Refusal`], not a run that waits for a
//! replay that never starts.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError, TryLockError};
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

/// What every thread of a run shares.
struct Shared<'a, 'b> {
    spawner: &'a Spawner,
    clock: RealClock,
    stop: AtomicBool,
    outcome: Mutex<Outcome>,
    /// Whether application threads busy-poll (run-to-completion).
    busy_poll: bool,
    /// The bridge the application threads poll (run-to-completion).
    bridge: Option<Mutex<&'b mut Bridge>>,
}

impl Shared<'_, '_> {
    /// Polls the shared bridge unless another thread is polling it.
    fn try_poll_bridge(&self) {
        let Some(bridge) = &self.bridge else { return };
        match bridge.try_lock() {
            Ok(mut bridge) => bridge.poll(self.clock.now()),
            Err(TryLockError::Poisoned(p)) => p.into_inner().poll(self.clock.now()),
            Err(TryLockError::WouldBlock) => {}
        }
    }

    /// Polls every stack of `groups` and the shared bridge, as the drain
    /// does under run-to-completion.
    fn poll_all(&self, groups: &[StackGroup]) {
        groups.iter().for_each(|g| (0..g.len()).for_each(|i| _ = g.poll(i, self.clock.now())));
        if let Some(bridge) = &self.bridge {
            bridge.lock().unwrap_or_else(PoisonError::into_inner).poll(self.clock.now());
        }
    }

    fn fail(&self, name: String, error: String) {
        self.outcome.lock().unwrap_or_else(PoisonError::into_inner).failures.push((name, error));
    }
}

/// The threads of [`run`]: the bridge's under run-to-wakeup, the stacks'
/// and the applications' (see the module doc).
fn run_parts(
    bridge: Option<&mut Bridge>,
    groups: &[StackGroup],
    spawner: &Spawner,
    timeout: Duration,
    drain: Duration,
) -> Outcome {
    let busy_poll = groups.iter().any(|g| g.config().model == ThreadModel::RunToCompletion);
    let (bridge_thread, bridge) = match busy_poll {
        true => (None, bridge.map(Mutex::new)),
        false => (bridge, None),
    };
    let shared = Shared {
        spawner,
        clock: RealClock::new(),
        stop: AtomicBool::new(false),
        outcome: Mutex::default(),
        busy_poll,
        bridge,
    };
    let app_threads = os_threads(spawner.threads(), busy_poll);
    thread::scope(|s| {
        let shared = &shared;
        if let Some(bridge) = bridge_thread {
            s.spawn(move || poll_bridge(bridge, shared));
        }
        for g in groups.iter().filter(|g| g.config().model == ThreadModel::RunToWakeup) {
            for i in 0..g.len() {
                s.spawn(move || poll_stack(g, i, &shared.clock, &shared.stop));
            }
        }
        let apps: Vec<_> = (0..app_threads).map(|me| s.spawn(move || app_thread(me, app_threads, shared))).collect();
        let started = std::time::Instant::now();
        while spawner.live() > 0 && started.elapsed() < timeout {
            thread::sleep(Duration::from_millis(1));
        }
        let unfinished = spawner.live();
        let drain_end = std::time::Instant::now() + drain;
        while std::time::Instant::now() < drain_end {
            if busy_poll {
                shared.poll_all(groups);
            }
            thread::yield_now();
        }
        shared.stop.store(true, Ordering::Release);
        apps.into_iter().for_each(|a| a.thread().unpark());
        let mut o = shared.outcome.lock().unwrap_or_else(PoisonError::into_inner);
        (o.timed_out, o.unfinished) = (unfinished > 0, unfinished);
    });
    let end = shared.clock.now();
    Outcome { end, ..shared.outcome.into_inner().unwrap_or_else(PoisonError::into_inner) }
}

/// How many threads carry `logical` application threads: one each, but
/// never more busy-polling (run-to-completion) threads than the machine
/// has cores, as DPDK gives each lcore a core of its own. Polling threads
/// that outnumber the cores only take turns at them, every hop of a frame
/// waiting for the next thread to be scheduled; so logical thread `t`
/// runs on thread `t % n`.
fn os_threads(logical: usize, busy_poll: bool) -> usize {
    let cores = thread::available_parallelism().map_or(1, usize::from);
    match busy_poll {
        true => logical.clamp(1, cores),
        false => logical.max(1),
    }
}

/// The bridge's own thread (run-to-wakeup).
fn poll_bridge(bridge: &mut Bridge, shared: &Shared) {
    while !shared.stop.load(Ordering::Acquire) {
        bridge.poll(shared.clock.now());
        thread::yield_now();
    }
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

fn app_thread(me: usize, n: usize, shared: &Shared) {
    let mut tasks = TaskList::default();
    while !shared.stop.load(Ordering::Acquire) {
        tasks.extend(shared.spawner.take(|t| t % n == me), Some(&thread::current()));
        tasks.poll(shared.busy_poll, shared.spawner, |name, e| shared.fail(name, e));
        if shared.stop.load(Ordering::Acquire) {
            shared.outcome.lock().unwrap_or_else(PoisonError::into_inner).stuck.extend(tasks.stuck());
        } else if shared.busy_poll {
            shared.try_poll_bridge();
            thread::yield_now();
        } else {
            thread::park_timeout(Duration::from_millis(1));
        }
    }
}

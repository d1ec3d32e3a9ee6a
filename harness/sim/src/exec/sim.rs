//! The simulation executor: one thread, virtual time, no randomness of its own.
//!
//! Each round fires the tasks' due timers, polls the bridge and every stack
//! at the current virtual time, then every task whose waker fired. While
//! anything moves, time stands still; when a round moves nothing, time jumps
//! to the earliest deadline of any component (a delayed frame, a TCP timer)
//! or task timer ([`sleep_until`](super::sleep_until)). The order of polls is fixed
//! and every random choice comes from a seed, so a run is a pure function of
//! its inputs: the same seed gives byte-identical captures.
//!
//! Stacks are polled by the executor under both thread models; under
//! run-to-completion the tasks' calls also poll their stacks inline, which
//! is the part of that model a single thread can show.

use std::time::Duration;

use ethdev::Instant;
use stack::Clock;

use super::{Outcome, SimClock, Spawner, TaskList};
use crate::world::World;

/// Smallest step of virtual time when a round moved nothing yet a deadline
/// is already due (keeps the loop from spinning at one instant).
const TICK: Duration = Duration::from_micros(1);

/// Runs `spawner`'s tasks over `world` until they all finish or virtual
/// time reaches `deadline`, then lets the world settle for `drain` (closing
/// handshakes) so that buffers return to their pools.
pub fn run(world: &mut World, clock: &SimClock, spawner: &Spawner, deadline: Instant, drain: Duration) -> Outcome {
    run_within(world, clock, spawner, (deadline, drain), Duration::MAX)
}

/// [`run`], also stopped (and its settling cut short) once `wall` of real
/// time has passed, whatever virtual time says: a run that keeps busy at
/// one instant, or whose virtual deadline is far off, still ends. The
/// outcome says whether the wall-clock limit stopped it.
pub fn run_within(
    world: &mut World,
    clock: &SimClock,
    spawner: &Spawner,
    (deadline, drain): (Instant, Duration),
    wall: Duration,
) -> Outcome {
    let wall_end = std::time::Instant::now().checked_add(wall);
    let past_wall = || wall_end.is_some_and(|end| std::time::Instant::now() >= end);
    let mut tasks = TaskList::default();
    let mut outcome = Outcome::default();
    loop {
        let now = clock.now();
        tasks.extend(spawner.take(|_| true), None);
        clock.fire();
        let mut busy = world.poll(now);
        busy |= tasks.poll(false, spawner, |name, e| outcome.failures.push((name, e)));
        if spawner.live() == 0 {
            break;
        }
        if now >= deadline {
            outcome.timed_out = true;
            break;
        }
        if past_wall() {
            outcome.wall_limited = true;
            break;
        }
        if !busy {
            let next = world.poll_at().into_iter().chain(clock.next_timer()).min().unwrap_or(deadline).min(deadline);
            clock.set(next.max(now + TICK));
        }
    }
    outcome.unfinished = spawner.live();
    outcome.stuck = tasks.stuck().collect();
    settle_within(world, clock, drain, &past_wall);
    outcome.end = clock.now();
    outcome
}

/// Runs the world without tasks for up to `drain` of virtual time, or until
/// nothing is left to do.
pub fn settle(world: &mut World, clock: &SimClock, drain: Duration) {
    settle_within(world, clock, drain, &|| false);
}

/// [`settle`], cut short as soon as `past_wall` says so.
fn settle_within(world: &mut World, clock: &SimClock, drain: Duration, past_wall: &dyn Fn() -> bool) {
    let end = clock.now() + drain;
    loop {
        let now = clock.now();
        if past_wall() {
            break;
        }
        if world.poll(now) {
            continue;
        }
        match world.poll_at() {
            Some(next) if next <= end => clock.set(next.max(now + TICK)),
            _ => break,
        }
    }
}

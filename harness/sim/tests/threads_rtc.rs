//! The threads executor under run-to-completion has no bridge thread: the
//! application threads poll the bridge between rounds of their tasks. A
//! run whose tasks leave some application threads with nothing to do (and
//! whose one busy host only lends its thread to its stack) still carries
//! every frame, ends, and leaves the world at rest. Busy-polling threads
//! never outnumber the cores: more application threads than cores share
//! as many threads as there are cores.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use sim::apps::ping;
use sim::exec::{self, RealClock, Spawner};
use sim::world::World;
use stack::{Api, GroupConfig, ThreadModel};
use user_vbridge::Impairments;

/// A world of two run-to-completion hosts, a (10.0.0.1) with `a` stacks
/// and b (10.0.0.2) with `b`.
fn two_hosts(a: usize, b: usize) -> World {
    let mut world = World::new(1).unwrap();
    let host = |stacks: usize, last: u8| GroupConfig {
        model: ThreadModel::RunToCompletion,
        ..GroupConfig::new(stacks, [2, 0, 0, 0, 0, last], Ipv4Addr::new(10, 0, 0, last))
    };
    world.add_host("a", host(a, 1), Impairments::default()).unwrap();
    world.add_host("b", host(b, 2), Impairments::default()).unwrap();
    world
}

#[test]
fn run_to_completion_moves_frames_with_idle_application_threads() {
    let mut world = two_hosts(1, 1);
    let clock = Arc::new(RealClock::new());
    let spawner = Spawner::new();
    let b = Api::new(&world.hosts[1].group, 0, clock.clone());
    spawner.spawn_daemon(0, "b lends its thread", async move {
        b.lend_thread().await;
        Ok(())
    });
    let a = Api::new(&world.hosts[0].group, 0, clock);
    spawner.spawn(3, "ping from a", async move {
        let replies = ping::ping(a, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 7, 5).await?;
        assert_eq!(replies, 5);
        Ok(())
    });
    let outcome = exec::threads::run(&mut world, &spawner, Duration::from_secs(30), Duration::from_millis(20));
    outcome.unwrap().ok().unwrap();
    world.check_accounting().unwrap();
    assert_eq!(world.buffers_in_use(), 0);
}

#[test]
fn run_to_completion_polls_on_no_more_threads_than_cores() {
    let cores = thread::available_parallelism().map_or(1, usize::from);
    let stacks = cores + 1;
    // b has a single stack, as in the test above: ping does not retry, and
    // this test is about threads, not neighbour learning across stacks.
    let mut world = two_hosts(stacks, 1);
    let clock = Arc::new(RealClock::new());
    let spawner = Spawner::new();
    let seen = Arc::new(Mutex::new(HashSet::new()));
    // Every stack of both hosts lends an application thread of its own
    // (a's stacks threads 0..stacks, b's the next), which notes the thread
    // it runs on.
    for (host, stack) in (0..stacks).map(|s| (0, s)).chain([(1, 0)]) {
        let (api, seen) = (Api::new(&world.hosts[host].group, stack, clock.clone()), Arc::clone(&seen));
        spawner.spawn_daemon(host * stacks + stack, format!("{host}/{stack} lends its thread"), async move {
            seen.lock().unwrap().insert(thread::current().id());
            api.lend_thread().await;
            Ok(())
        });
    }
    let a = Api::new(&world.hosts[0].group, 0, clock);
    spawner.spawn(0, "ping from a", async move {
        let replies = ping::ping(a, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 7, 5).await?;
        assert_eq!(replies, 5);
        Ok(())
    });
    let outcome = exec::threads::run(&mut world, &spawner, Duration::from_secs(30), Duration::from_millis(20));
    outcome.unwrap().ok().unwrap();
    let threads = seen.lock().unwrap().len();
    assert!(threads <= cores, "{} application threads ran on {threads} threads, {cores} cores", stacks + 1);
    world.check_accounting().unwrap();
    assert_eq!(world.buffers_in_use(), 0);
}

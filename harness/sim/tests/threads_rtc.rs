//! The threads executor under run-to-completion has no bridge thread: the
//! application threads poll the bridge between rounds of their tasks. A
//! run whose tasks leave some application threads with nothing to do (and
//! whose one busy host only lends its thread to its stack) still carries
//! every frame, ends, and leaves the world at rest.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use sim::apps::ping;
use sim::exec::{self, RealClock, Spawner};
use sim::world::World;
use stack::{Api, GroupConfig, ThreadModel};
use user_vbridge::Impairments;

#[test]
fn run_to_completion_moves_frames_with_idle_application_threads() {
    let mut world = World::new(1).unwrap();
    let host = |last: u8| GroupConfig {
        model: ThreadModel::RunToCompletion,
        ..GroupConfig::new(1, [2, 0, 0, 0, 0, last], Ipv4Addr::new(10, 0, 0, last))
    };
    world.add_host("a", host(1), Impairments::default()).unwrap();
    world.add_host("b", host(2), Impairments::default()).unwrap();
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

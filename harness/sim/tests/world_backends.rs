//! A world holds any port backend: a host whose port is user-veth behind a
//! fault injector (middleware the world knows nothing about) pings and is
//! pinged, is recorded through the world's capture tap, and its
//! accounting and buffers are checked like any other host's.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use ethdev::mempool::{Mempool, MempoolConfig};
use ethdev::middleware::{FaultConfig, FaultInjector};
use ethdev::{EthDev, Instant};
use sim::apps::ping;
use sim::exec::{self, SimClock, Spawner};
use sim::record::Recording;
use sim::world::World;
use stack::GroupConfig;
use user_vbridge::{Impairments, PortConfig};
use user_veth::Veth;

#[test]
fn a_host_on_another_backend_is_polled_recorded_and_checked() {
    let mut world = World::new(1).unwrap();
    let a = GroupConfig::new(1, [2, 0, 0, 0, 0, 1], Ipv4Addr::new(10, 0, 0, 1));
    world.add_host("a", a, Impairments::default()).unwrap();
    let pool = Mempool::new(MempoolConfig::new("b-pool", 4096)).unwrap();
    let b = GroupConfig::new(1, [2, 0, 0, 0, 0, 2], Ipv4Addr::new(10, 0, 0, 2));
    let (veth, wire) = Veth::new("b", b.mac, pool.clone());
    let faulty = Arc::new(FaultInjector::new(veth, FaultConfig::default()).unwrap());
    let port: Arc<dyn EthDev> = faulty.clone();
    world.add_host_port("b", port, wire, pool, b, PortConfig::default()).unwrap();

    let clock = Arc::new(SimClock::default());
    let recording = Recording::attach(&world, clock.clone());
    let spawner = Spawner::new();
    let api = stack::Api::new(&world.hosts[0].group, 0, clock.clone());
    spawner.spawn(0, "ping", async move {
        let replies = ping::ping(api, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 7, 3).await?;
        assert_eq!(replies, 3);
        Ok(())
    });
    let deadline = Instant::ZERO + Duration::from_secs(30);
    exec::sim::run(&mut world, &clock, &spawner, deadline, Duration::from_secs(1)).ok().unwrap();

    let records = recording.finish();
    for interface in ["b", "b/rxq0", "b/txq0"] {
        let seen = records.iter().filter(|r| r.interface.as_deref() == Some(interface)).count();
        assert!(seen >= 3, "{interface}: {seen} records");
    }
    assert_eq!(world.hosts[1].port.name(), "b");
    assert_eq!(faulty.fault_stats(), Default::default(), "no faults configured, none injected");
    world.check_accounting().unwrap();
    assert_eq!(world.buffers_in_use(), 0);
}

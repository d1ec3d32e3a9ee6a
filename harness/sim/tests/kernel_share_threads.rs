//! Flow bifurcation end to end: host a's stacks share its NIC with a Linux
//! kernel (a namespace whose TAP has a's MAC and address), as gazelle's
//! `flow_bifurcation` does through virtio-user. Host b, a dtnet stack on
//! the bridge, makes echo connections to a's stack on one port and to the
//! kernel's echo server on another, and sends UDP to a kernel socket: all
//! reach the right stack, every byte is checked, and a's counters show the
//! frames handed to the kernel and those it sent through the NIC. Under
//! both thread models; without root or TUN it says why it skipped.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use kernel_peer::netns::unavailable;
use kernel_peer::KernelHostConfig;
use sim::apps::{echo, listen, Ledger, Side, Workload};
use sim::exec::{self, RealClock, Spawner};
use sim::kernel::{apps, KernelNode, KernelTasks, StopFlag};
use sim::world::World;
use stack::{Api, GroupConfig, SockType, ThreadModel};
use user_vbridge::Impairments;

const A: Ipv4Addr = Ipv4Addr::new(10, 7, 0, 1);
const B: Ipv4Addr = Ipv4Addr::new(10, 7, 0, 2);
const A_MAC: [u8; 6] = [2, 0, 0, 0, 7, 1];
/// The port a's stack serves, and the kernel's TCP and UDP ports.
const STACK_PORT: u16 = 7000;
const KERNEL_PORT: u16 = 8000;
const KERNEL_UDP: u16 = 8001;
const CONNS: u64 = 4;
const BYTES: u64 = 50_000;
const DATAGRAMS: usize = 5;

#[test]
fn a_nic_shared_with_the_kernel_serves_both_stacks_threads() {
    if let Some(why) = unavailable() {
        eprintln!("skipped: {why}");
        return;
    }
    share_both_ways(ThreadModel::RunToCompletion);
    share_both_ways(ThreadModel::RunToWakeup);
}

/// One run of the test under `model`.
fn share_both_ways(model: ThreadModel) {
    let mut world = World::new(1).unwrap();
    let host = |mac, ip| GroupConfig { model, ..GroupConfig::new(2, mac, ip) };
    world.add_host("a", host(A_MAC, A), Impairments::default()).unwrap();
    world.add_host("b", host([2, 0, 0, 0, 7, 2], B), Impairments::default()).unwrap();
    let kernel = KernelHostConfig {
        name: "a-kernel".into(),
        mac: A_MAC.into(),
        ipv4: Some((A, 24)),
        ipv6: None,
        gateway: None,
        mtu: 1500,
    };
    let kernel = KernelNode::share(&world.hosts[0].group, &kernel).unwrap().host;

    let (spawner, ledger, stop) = (Spawner::new(), Arc::new(Ledger::default()), StopFlag::default());
    let clock = Arc::new(RealClock::new());
    // a's stack serves echo on STACK_PORT; the kernel on KERNEL_PORT and UDP.
    for stack in 0..2 {
        let a = Api::new(&world.hosts[0].group, stack, clock.clone());
        let (tasks, served) = (spawner.clone(), Arc::clone(&ledger));
        spawner.spawn_daemon(stack, format!("a's echo server on stack {stack}"), async move {
            let fd = listen(&a, STACK_PORT).await?;
            echo::server(a, fd, tasks, stack, served).await
        });
    }
    let kernel_tasks = KernelTasks::new(spawner.clone(), 3, stop.clone());
    let kernel_ledger = Arc::new(Ledger::default());
    let listener = kernel.spawn("listen".into(), || apps::listen(SocketAddr::from((A, KERNEL_PORT)))).unwrap();
    let listener = listener.join().unwrap().unwrap();
    let served = Arc::clone(&kernel_ledger);
    let echo_server = move |stop| apps::tcp_server(listener, Workload::Echo, served, stop);
    kernel_tasks.spawn(&kernel, "kernel echo server".into(), true, echo_server).unwrap();
    let udp = kernel.spawn("bind".into(), || apps::udp_bind(SocketAddr::from((A, KERNEL_UDP)))).unwrap();
    let udp = udp.join().unwrap().unwrap();
    kernel_tasks.spawn(&kernel, "kernel udp echo".into(), true, move |stop| apps::udp_server(udp, stop)).unwrap();

    // b: echo connections to both, then datagrams to the kernel.
    for c in 0..2 * CONNS {
        let b = Api::new(&world.hosts[1].group, c as usize % 2, clock.clone());
        let port = if c % 2 == 0 { STACK_PORT } else { KERNEL_PORT };
        let client = echo::client(b, SocketAddr::from((A, port)), c, BYTES, Arc::clone(&ledger));
        spawner.spawn(2, format!("echo client {c} to port {port}"), client);
    }
    let b = Api::new(&world.hosts[1].group, 0, clock);
    spawner.spawn(2, "udp to the kernel", async move {
        let fd = b.socket(SockType::Dgram)?;
        b.bind(fd, SocketAddr::from((B, 9000))).await?;
        let kernel = SocketAddr::from((A, KERNEL_UDP));
        for n in 0..DATAGRAMS {
            let message = format!("datagram {n}");
            b.sendto(fd, message.as_bytes(), kernel).await?;
            let (back, from) = b.recvfrom(fd, 64).await?;
            assert_eq!((back.as_slice(), from), (message.as_bytes(), kernel));
        }
        b.close(fd).await
    });

    let outcome = exec::threads::run(&mut world, &spawner, Duration::from_secs(60), Duration::from_millis(200));
    stop.stop();
    outcome.unwrap().ok().unwrap();
    let echoed = ledger.side(Side::Client);
    assert_eq!(echoed.iter().filter(|r| r.bytes == BYTES).count() as u64, 2 * CONNS, "{echoed:?}");
    let by_stack =
        ledger.side(Side::Server).iter().filter(|r| r.local.port() == STACK_PORT && r.bytes == BYTES).count();
    let by_kernel = kernel_ledger.records().iter().filter(|r| r.bytes == BYTES).count();
    assert_eq!((by_stack as u64, by_kernel as u64), (CONNS, CONNS), "each side served its own port");
    let stats: Vec<_> = (0..2).map(|i| world.hosts[0].group.stats(i)).collect();
    let (to_kernel, from_kernel) = stats.iter().fold((0, 0), |(t, f), s| (t + s.to_kernel, f + s.from_kernel));
    assert!(to_kernel > 0 && from_kernel > 0, "{stats:?}");
    world.check_accounting().unwrap();
    assert_eq!(world.buffers_in_use(), 0);
    assert_eq!(kernel.buffers_in_use(), 0);
}

//! IPv6 end to end, in simulation.
//!
//! TCP bulk over IPv6 in RSS and software-forwarding modes (every byte
//! intact, each connection on the stack its mode predicts, with RSS placing
//! by the IPv6 Toeplitz hash as specified); and, between two IPv6-only
//! hosts with four stacks each, UDP request/response and ping6 from every
//! client stack, which only work if neighbour discovery serves every stack.
//! Every run ends with accounting closed and every pool back to baseline.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use capture::{Direction, Record};
use ethdev::rss::{toeplitz, RssKey};
use ethdev::Instant;
use rstest::rstest;
use scenario::tcp_run::{Executor, TcpRun};
use sim::apps::{ping, udp, Side};
use sim::exec::{self, SimClock, Spawner};
use sim::latch::Latch;
use sim::record::Recording;
use sim::world::World;
use stack::{Api, ForwardMode, GroupConfig, StackGroup, ThreadModel};
use user_vbridge::Impairments;

const CONNS: u64 = 32;
const BYTES: u64 = 256 * 1024;
const STACKS: usize = 4;
const SERVER_IP6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1);
const CLIENT_IP6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2);
const UDP_PORT: u16 = 53;
/// The server's UDP socket lives on this stack, so that requests RSS puts
/// on other queues must be handed to it.
const UDP_STACK: usize = 1;
const REQUESTS: u32 = 20;
const ECHOES: u16 = 5;
const ICMPV6_NEIGHBOR_SOLICIT: u8 = 135;
const ICMPV6_NEIGHBOR_ADVERT: u8 = 136;

/// The queue the specification puts a TCP segment from `peer` to `local`
/// on: the bit-serial Toeplitz hash of (source, destination, ports) under
/// the default key, through the default 128-entry RETA (`i % queues`).
fn spec_queue(peer: SocketAddr, local: SocketAddr, queues: usize) -> usize {
    let (IpAddr::V6(src), IpAddr::V6(dst)) = (peer.ip(), local.ip()) else { panic!("not IPv6: {peer} -> {local}") };
    let input: Vec<u8> =
        [&src.octets()[..], &dst.octets(), &peer.port().to_be_bytes(), &local.port().to_be_bytes()].concat();
    (toeplitz::reference(&RssKey::DEFAULT, &input) as usize & 127) % queues
}

#[rstest]
fn tcp_bulk_over_ipv6(#[values(ForwardMode::Rss, ForwardMode::SoftForward)] mode: ForwardMode) {
    let mut run = TcpRun::new(mode, ThreadModel::RunToWakeup, Executor::Sim, CONNS, BYTES);
    run.ipv6 = true;
    let report = run.run().unwrap();
    report.check().unwrap_or_else(|e| panic!("{mode:?}: {e}"));
    let servers: Vec<_> = report.records.iter().filter(|r| r.side == Side::Server).collect();
    assert_eq!(servers.len() as u64, CONNS);
    let server = &report.world.hosts[0].group;
    if mode == ForwardMode::Rss {
        for r in &servers {
            assert_eq!(r.stack, spec_queue(r.peer, r.local, server.len()), "{r:?}");
        }
        let used = (0..server.len()).filter(|&i| servers.iter().any(|r| r.stack == i)).count();
        assert!(used > 1, "RSS spread the connections over one stack only");
    } else {
        assert!(handed_over(server) > 0, "no frame was handed to the listening stack");
    }
}

/// An IPv6-only host with `STACKS` RSS stacks.
fn ipv6_host(mac_byte: u8, ip: Ipv6Addr, seed: u64) -> GroupConfig {
    let mac = [0x02, 0, 0, 0, 0, mac_byte];
    // `new` gives an IPv4 address, which this host must not have.
    let placeholder = std::net::Ipv4Addr::UNSPECIFIED;
    GroupConfig { ipv4: None, ipv6: Some((ip, 64)), seed, ..GroupConfig::new(STACKS, mac, placeholder) }
}

/// Two IPv6-only hosts: a UDP echo server on the server's stack
/// `UDP_STACK`; from every client stack, UDP requests and pings to the
/// server. Returns the world after the run and what the ports recorded.
fn udp_and_ping6_from_every_stack() -> (World, Vec<Record>) {
    let mut world = World::new(3).unwrap();
    world.add_host("server", ipv6_host(1, SERVER_IP6, 1), Impairments::default()).unwrap();
    world.add_host("client", ipv6_host(2, CLIENT_IP6, 2), Impairments::default()).unwrap();
    let (clock, spawner) = (Arc::new(SimClock::default()), Spawner::new());
    let api = |host: usize, stack: usize| Api::new(&world.hosts[host].group, stack, clock.clone());
    let server = SocketAddr::new(IpAddr::V6(SERVER_IP6), UDP_PORT);
    let listening = Latch::new(1);
    let (server_api, ready) = (api(0, UDP_STACK), listening.clone());
    spawner.spawn_daemon(0, "udp server", async move {
        let fd = udp::bind(&server_api, stack::api::any_addr(server.ip(), UDP_PORT)).await?;
        ready.count_down();
        udp::server(server_api, fd).await
    });
    for stack in 0..STACKS {
        let (client, listening) = (api(1, stack), listening.clone());
        let local = SocketAddr::new(IpAddr::V6(CLIENT_IP6), 4000 + stack as u16);
        spawner.spawn(0, format!("udp client {stack}"), async move {
            listening.wait().await;
            udp::client(client, local, server, REQUESTS).await.map(drop)
        });
        let pinger = api(1, stack);
        spawner.spawn(0, format!("ping6 {stack}"), async move {
            ping::ping(pinger, server.ip(), 0x600 + stack as u16, ECHOES).await.map(drop)
        });
    }
    let recording = Recording::attach(&world, clock.clone());
    let outcome =
        exec::sim::run(&mut world, &clock, &spawner, Instant::ZERO + Duration::from_secs(60), Duration::from_secs(5));
    let records = recording.finish();
    outcome.ok().unwrap();
    world.check_accounting().unwrap();
    assert_eq!(world.buffers_in_use(), 0, "buffers still in use after the settle phase");
    (world, records)
}

/// ICMPv6 messages of type `icmp_type` that `port` sent to the wire.
fn icmpv6_sent(records: &[Record], port: &str, icmp_type: u8) -> usize {
    let of_type = |r: &&Record| {
        let icmpv6 = r.data.get(12..14) == Some(&[0x86, 0xdd]) && r.data.get(20) == Some(&58);
        icmpv6 && r.data.get(54) == Some(&icmp_type)
    };
    let sent = |r: &&Record| r.interface.as_deref() == Some(port) && r.direction == Some(Direction::Outbound);
    records.iter().filter(sent).filter(of_type).count()
}

/// Neighbour-message copies the stacks of `group` made for each other.
fn copies(group: &StackGroup) -> u64 {
    (0..group.len()).map(|i| group.stats(i).broadcast_copies).sum()
}

/// Frames stacks of `group` handed to the stack owning them (the soft ring
/// carries neighbour-message copies too, which are not counted).
fn handed_over(group: &StackGroup) -> u64 {
    (0..group.len()).map(|i| group.stats(i)).map(|s| s.forwarded_out.saturating_sub(s.broadcast_copies)).sum()
}

#[test]
fn udp_and_ping6_work_from_every_stack_with_neighbour_discovery_across_stacks() {
    let (world, records) = udp_and_ping6_from_every_stack();
    let (server, client) = (&world.hosts[0].group, &world.hosts[1].group);
    let asked = icmpv6_sent(&records, "client", ICMPV6_NEIGHBOR_SOLICIT);
    assert!(asked > 0, "the client never resolved the server");
    assert!(copies(client) > 0, "the client's stacks shared no advertisement");
    // The stack that polled a solicitation answered it, once; the others got
    // it as an advertisement from the asker, so no server stack had to ask.
    assert_eq!(icmpv6_sent(&records, "server", ICMPV6_NEIGHBOR_ADVERT), asked, "one answer per solicitation");
    assert!(copies(server) > 0, "the server's stacks shared no solicitation");
    assert_eq!(icmpv6_sent(&records, "server", ICMPV6_NEIGHBOR_SOLICIT), 0, "a server stack did not learn the client");
    assert!(handed_over(server) > 0, "no request landed away from the UDP socket's stack");
}

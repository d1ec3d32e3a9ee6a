//! dtnet's stack instances over DPDK ports, content verified:
//! - two stack groups on a cable of two `net_ring` ports talk TCP to each
//!   other (an echo of random bytes);
//! - a stack group on `net_af_packet` over a veth pair into a network
//!   namespace this test creates talks TCP to the Linux kernel's own stack,
//!   once as the client of a kernel echo server and once as the echo server
//!   of a kernel client, so bytes are checked in both directions each time;
//! - the same over `net_tap` (its kernel interface moved into the
//!   namespace) with the group's TSO on: the port fills in checksums for
//!   the stack (net_tap's transmit offloads), and the stack's 64 KiB TSO
//!   super-frames, longer than a DPDK mbuf, are segmented in software.
//!
//! The af_packet and tap tests need root; without it it says so and passes without
//! running. Both end with every dtnet and DPDK buffer back in its pool.
#![cfg(feature = "dpdk")]

mod common;
mod stacks_common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use dpdk::{DpdkEthDev, PktPool, PoolConf};
use ethdev::{EthDev, Mempool, MempoolConfig};
use kernel_peer::netns::{self, Netns};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use stack::{Api, GroupConfig, StackGroup};
use stacks_common::{drive, echo_client, echo_server, poll_until, settle, Task, WallClock, WAIT};

const MAC_A: [u8; 6] = [0x02, 0xd7, 0, 0, 0, 0x0a];
const MAC_B: [u8; 6] = [0x02, 0xd7, 0, 0, 0, 0x0b];
const ECHO_PORT: u16 = 7100;
/// Bytes each echo carries: several windows' worth, so flow control runs.
const BYTES: usize = 300 * 1024;

fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..len).map(|_| rng.random()).collect()
}

/// A one-stack group on DPDK port `port` of the EAL, with its own dtnet pool.
fn group_on(
    eal: &dpdk::Eal,
    port: dpdk::PortId,
    dpdk_pool: &PktPool<'_>,
    mbufs: &Mempool,
    config: GroupConfig,
) -> StackGroup {
    let dev: Arc<dyn EthDev> = Arc::new(DpdkEthDev::new(eal, port, dpdk_pool, mbufs.clone()).expect("adapter"));
    StackGroup::new(dev, mbufs.clone(), config).expect("a stack group takes a DPDK port")
}

#[test]
fn stacks_on_ring_ports_exchange_tcp_content() {
    let eal = common::eal("stacks-ring", &[]);
    let dpdk_pool = PktPool::new(&eal, "stacks_ring_pool", PoolConf::default()).expect("pool");
    let (a, b) = eal.ring_cable("stacks", 1).expect("ring cable");
    let mbufs_a = Mempool::new(MempoolConfig::new("stacks_ring_a", 4096)).expect("dtnet pool a");
    let mbufs_b = Mempool::new(MempoolConfig::new("stacks_ring_b", 4096)).expect("dtnet pool b");
    let (ip_a, ip_b) = (Ipv4Addr::new(10, 76, 0, 1), Ipv4Addr::new(10, 76, 0, 2));
    let group_a = group_on(&eal, a, &dpdk_pool, &mbufs_a, GroupConfig::new(1, MAC_A, ip_a));
    let group_b =
        group_on(&eal, b, &dpdk_pool, &mbufs_b, GroupConfig { owner_base: 10, ..GroupConfig::new(1, MAC_B, ip_b) });
    let clock = Arc::new(WallClock::new());
    let (api_a, api_b) = (Api::new(&group_a, 0, clock.clone()), Api::new(&group_b, 0, clock.clone()));
    let data = random_bytes(12, BYTES);

    let tasks: Vec<Task<'_>> = vec![
        Box::pin(echo_server(&api_b, ECHO_PORT)),
        Box::pin(echo_client(&api_a, SocketAddr::new(ip_b.into(), ECHO_PORT), &data)),
    ];
    let results = drive(&[&group_a, &group_b], &clock, tasks);
    let [served, echoed] = <[_; 2]>::try_from(results).expect("two results");
    assert!(served.expect("server") == data, "the server on port b read exactly what a sent");
    assert!(echoed.expect("client") == data, "the client on port a read its bytes back");
    assert!(group_a.stats(0).nic_rx > 0 && group_b.stats(0).nic_rx > 0, "both stacks received over DPDK");

    settle(&[&group_a, &group_b], &clock, Duration::from_millis(300));
    drop((api_a, api_b, group_a, group_b));
    assert_eq!((mbufs_a.in_use(), mbufs_b.in_use()), (0, 0), "dtnet pools back to baseline");
    assert_eq!(dpdk_pool.in_use(), 0, "DPDK pool back to baseline");
}

const NS_DPDK_IP: Ipv4Addr = Ipv4Addr::new(10, 78, 0, 1);
const NS_KERNEL_IP: Ipv4Addr = Ipv4Addr::new(10, 78, 0, 2);
const KERNEL_PORT: u16 = 7200;

/// A veth pair: one end (`host_if`, with the DPDK side's MAC) in this
/// namespace for net_af_packet, the other in a fresh namespace with the
/// kernel's address. Deleting the namespace (on drop) deletes the pair.
struct VethIntoNamespace {
    ns: Netns,
    host_if: String,
}

impl VethIntoNamespace {
    fn new(dpdk_mac: &str) -> Result<VethIntoNamespace, String> {
        let ns = Netns::create(&netns::unique_name("dp"))?;
        let (host_if, kernel_if) = (netns::unique_name("da"), netns::unique_name("db"));
        let pair = VethIntoNamespace { ns, host_if };
        let ns = &pair.ns;
        ns.root_ip(&["link", "add", &pair.host_if, "address", dpdk_mac, "type", "veth", "peer", "name", &kernel_if])?;
        ns.root_ip(&["link", "set", &kernel_if, "netns", ns.name()])?;
        ns.ip(&["addr", "add", &format!("{NS_KERNEL_IP}/24"), "dev", &kernel_if])?;
        // The kernel leaves TCP checksums to a veth's peer, which af_packet
        // is not: it must send them filled in (and so unsegmented).
        let ethtool = netns::which("ethtool").map_err(|e| e.to_string())?;
        netns::checked(ns.exec(&ethtool).args(["-K", &kernel_if, "tx", "off"]))?;
        ns.ip(&["link", "set", &kernel_if, "up"])?;
        ns.root_ip(&["link", "set", &pair.host_if, "up"])?;
        Ok(pair)
    }
}

impl Drop for VethIntoNamespace {
    fn drop(&mut self) {
        // The namespace's drop deletes the pair; this covers a pair whose
        // peer never got there.
        netns::quiet(Command::new("ip").args(["link", "del", &self.host_if]));
    }
}

/// The kernel's echo server in namespace `ns`: one connection, read to the
/// end, sent back; returns what it read. Returns once it listens.
fn kernel_echo_server(ns: String) -> std::thread::JoinHandle<std::io::Result<Vec<u8>>> {
    let (listening, ready) = std::sync::mpsc::channel();
    let server = std::thread::spawn(move || {
        netns::enter(&ns)?;
        let listener = TcpListener::bind((NS_KERNEL_IP, KERNEL_PORT));
        let _ = listening.send(());
        let listener = listener?;
        listener.set_nonblocking(true)?;
        let start = std::time::Instant::now();
        let mut conn = loop {
            match listener.accept() {
                Ok((conn, _)) => break conn,
                Err(e) if e.kind() != std::io::ErrorKind::WouldBlock || start.elapsed() > WAIT => return Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        };
        conn.set_nonblocking(false)?;
        conn.set_read_timeout(Some(WAIT))?;
        let mut got = Vec::new();
        conn.read_to_end(&mut got)?;
        conn.write_all(&got)?;
        Ok(got)
    });
    let _ = ready.recv_timeout(WAIT);
    server
}

/// The kernel's echo client in namespace `ns`: connects to `server` (again
/// until it listens), sends `data`, and returns what comes back.
fn kernel_echo_client(
    ns: String,
    server: SocketAddr,
    data: Vec<u8>,
) -> std::thread::JoinHandle<std::io::Result<Vec<u8>>> {
    std::thread::spawn(move || {
        netns::enter(&ns)?;
        let start = std::time::Instant::now();
        let mut conn = loop {
            match TcpStream::connect_timeout(&server, Duration::from_secs(1)) {
                Ok(conn) => break conn,
                Err(e) if start.elapsed() > WAIT => return Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        };
        conn.set_read_timeout(Some(WAIT))?;
        conn.write_all(&data)?;
        conn.shutdown(std::net::Shutdown::Write)?;
        let mut back = Vec::new();
        conn.read_to_end(&mut back)?;
        Ok(back)
    })
}

#[test]
fn stacks_on_af_packet_talk_tcp_with_the_kernel_in_a_namespace() {
    if let Some(why) = netns::unavailable() {
        eprintln!("skipped: net_af_packet into a namespace needs one: {why}");
        return;
    }
    let pair = VethIntoNamespace::new("02:d7:00:00:00:0a").expect("veth pair into a namespace");
    let vdev = format!("--vdev=net_af_packet0,iface={}", pair.host_if);
    let eal = common::eal("stacks-afp", &[&vdev]);
    let dpdk_pool = PktPool::new(&eal, "stacks_afp_pool", PoolConf::default()).expect("pool");
    let id = eal.port_by_name("net_af_packet0").expect("af_packet port");
    let mbufs = Mempool::new(MempoolConfig::new("stacks_afp", 4096)).expect("dtnet pool");
    let group = group_on(&eal, id, &dpdk_pool, &mbufs, GroupConfig::new(1, MAC_A, NS_DPDK_IP));
    let clock = Arc::new(WallClock::new());
    let api = Api::new(&group, 0, clock.clone());
    let (to_kernel, from_kernel) = (random_bytes(21, BYTES), random_bytes(22, BYTES));

    echo_both_ways_with_the_kernel(pair.ns.name(), &api, &group, &clock, &to_kernel, &from_kernel);

    settle(&[&group], &clock, Duration::from_millis(300));
    drop((api, group));
    assert_eq!(mbufs.in_use(), 0, "dtnet pool back to baseline");
    assert_eq!(dpdk_pool.in_use(), 0, "DPDK pool back to baseline");
}

#[test]
fn stacks_on_net_tap_with_tso_and_checksum_offloads_talk_tcp_with_the_kernel() {
    if let Some(why) = netns::unavailable() {
        eprintln!("skipped: net_tap into a namespace needs one: {why}");
        return;
    }
    let ns = Netns::create(&netns::unique_name("dq")).expect("namespace");
    let iface = netns::unique_name("dr");
    let vdev = format!("--vdev=net_tap0,iface={iface},mac=02:d7:00:00:00:0a");
    let eal = common::eal("stacks-tap", &[&vdev]);
    let dpdk_pool = PktPool::new(&eal, "stacks_tap_pool", PoolConf::default()).expect("pool");
    let id = eal.port_by_name("net_tap0").expect("tap port");
    let mbufs = Mempool::new(MempoolConfig::new("stacks_tap", 4096)).expect("dtnet pool");
    let config = GroupConfig { tso: true, ..GroupConfig::new(1, MAC_A, NS_DPDK_IP) };
    let group = group_on(&eal, id, &dpdk_pool, &mbufs, config);
    // The started port's kernel interface moves into the namespace and
    // becomes the kernel's end of the link (net_tap keeps its descriptors).
    ns.root_ip(&["link", "set", &iface, "netns", ns.name()]).expect("move the tap");
    ns.ip(&["addr", "add", &format!("{NS_KERNEL_IP}/24"), "dev", &iface]).expect("address");
    ns.ip(&["link", "set", &iface, "up"]).expect("up");
    let clock = Arc::new(WallClock::new());
    let api = Api::new(&group, 0, clock.clone());
    let (to_kernel, from_kernel) = (random_bytes(31, BYTES), random_bytes(32, BYTES));

    echo_both_ways_with_the_kernel(ns.name(), &api, &group, &clock, &to_kernel, &from_kernel);
    assert!(group.stats(0).device.tso_frames > 0, "the stack handed the port TSO super-frames");

    settle(&[&group], &clock, Duration::from_millis(300));
    drop((api, group));
    assert_eq!(mbufs.in_use(), 0, "dtnet pool back to baseline");
    assert_eq!(dpdk_pool.in_use(), 0, "DPDK pool back to baseline");
}

/// The kernel in namespace `ns` and the DPDK stack echo each other's bytes
/// both ways at once: the stack sends `to_kernel` to the kernel's echo
/// server and echoes what the kernel's client sends (`from_kernel`); every
/// byte is checked at both ends.
fn echo_both_ways_with_the_kernel(
    ns: &str,
    api: &Api,
    group: &StackGroup,
    clock: &Arc<WallClock>,
    to_kernel: &[u8],
    from_kernel: &[u8],
) {
    let server = kernel_echo_server(ns.to_owned());
    let client = kernel_echo_client(ns.to_owned(), SocketAddr::new(NS_DPDK_IP.into(), ECHO_PORT), from_kernel.to_vec());
    let tasks: Vec<Task<'_>> = vec![
        Box::pin(echo_client(api, SocketAddr::new(NS_KERNEL_IP.into(), KERNEL_PORT), to_kernel)),
        Box::pin(echo_server(api, ECHO_PORT)),
    ];
    let results = drive(&[group], clock, tasks);
    let [echoed, served] = <[_; 2]>::try_from(results).expect("two results");
    // A closed dtnet socket may still owe the kernel its last segments (a
    // retransmission after a drop on the link): keep the stack polled until
    // both kernel threads are done, or they would wait on a silent stack.
    poll_until(&[group], clock, || server.is_finished() && client.is_finished());
    let kernel_read = server.join().expect("kernel server thread").expect("kernel echo server");
    let kernel_back = client.join().expect("kernel client thread").expect("kernel echo client");
    assert!(kernel_read == to_kernel, "the kernel read exactly what the DPDK stack sent");
    assert!(echoed.expect("dtnet client") == to_kernel, "the DPDK stack read the kernel's echo intact");
    assert!(served.expect("dtnet server") == from_kernel, "the DPDK stack read exactly what the kernel sent");
    assert!(kernel_back == from_kernel, "the kernel read the DPDK stack's echo intact");
}

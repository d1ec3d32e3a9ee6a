//! net_af_packet over a veth pair into a network namespace this test
//! creates: ICMP echo requests sent through DPDK reach the Linux kernel's
//! own stack, and its echo replies come back through DPDK with the same
//! payload. Needs root (and `ip`); without it the test says so and passes
//! without running. The namespace and the veth pair are removed even when
//! the test fails.
#![cfg(feature = "dpdk")]

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use dpdk::{PktPool, PoolConf, Port, PortConf};
use etherparse::{Icmpv4Type, PacketBuilder, SlicedPacket, TransportSlice};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

const DPDK_IP: [u8; 4] = [10, 77, 0, 1];
const KERNEL_IP: [u8; 4] = [10, 77, 0, 2];
const ECHOES: u16 = 50;
/// How long to wait for the kernel's replies (a liveness bound, not a speed check).
const WAIT: Duration = Duration::from_secs(10);

/// Runs `ip ARGS`, failing the test with its stderr if it fails.
fn ip(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(out.status.success(), "ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A veth pair whose peer sits in a fresh namespace with the kernel's
/// address; removed on drop.
struct KernelPeer {
    netns: String,
    host_if: String,
}

impl KernelPeer {
    fn new(dpdk_mac: &str) -> KernelPeer {
        let id = std::process::id();
        let peer = KernelPeer { netns: format!("dtnet-afp-{id}"), host_if: format!("dtaf{id}a") };
        let kernel_if = format!("dtaf{id}b");
        ip(&["netns", "add", &peer.netns]);
        ip(&["link", "add", &peer.host_if, "address", dpdk_mac, "type", "veth", "peer", "name", &kernel_if]);
        ip(&["link", "set", &kernel_if, "netns", &peer.netns]);
        let sysctl = |name: &str| format!("net.ipv6.conf.{name}.disable_ipv6=1");
        // Quiet links: no IPv6 neighbour discovery on either end.
        Command::new("sysctl").args(["-qw", &sysctl(&peer.host_if)]).status().expect("sysctl");
        let ns = |args: &[&str]| {
            let mut all = vec!["netns", "exec", peer.netns.as_str(), "ip"];
            all.extend_from_slice(args);
            ip(&all)
        };
        ns(&["link", "set", "lo", "up"]);
        let _ = Command::new("ip").args(["netns", "exec", &peer.netns, "sysctl", "-qw", &sysctl(&kernel_if)]).status();
        ns(&["addr", "add", "10.77.0.2/24", "dev", &kernel_if]);
        ns(&["link", "set", &kernel_if, "up"]);
        // The kernel knows the DPDK side's MAC, so it answers without ARP.
        ns(&["neigh", "add", "10.77.0.1", "lladdr", dpdk_mac, "dev", &kernel_if]);
        ip(&["link", "set", &peer.host_if, "up"]);
        peer
    }

    /// The MAC of the kernel's end.
    fn kernel_mac(&self) -> [u8; 6] {
        let id = std::process::id();
        let text = ip(&["netns", "exec", &self.netns, "cat", &format!("/sys/class/net/dtaf{id}b/address")]);
        let bytes: Vec<u8> = text.trim().split(':').map(|b| u8::from_str_radix(b, 16).expect("hex")).collect();
        bytes.try_into().expect("six bytes")
    }
}

impl Drop for KernelPeer {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.host_if]).status();
        let _ = Command::new("ip").args(["netns", "del", &self.netns]).status();
    }
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// An ICMP echo request from the DPDK side to the kernel.
fn echo_request(src: [u8; 6], dst: [u8; 6], seq: u16, payload: &[u8]) -> Vec<u8> {
    let builder = PacketBuilder::ethernet2(src, dst).ipv4(DPDK_IP, KERNEL_IP, 64).icmpv4_echo_request(0xd7d7, seq);
    let mut out = Vec::with_capacity(builder.size(payload.len()));
    builder.write(&mut out, payload).expect("frame fits");
    out
}

/// The sequence number and payload of an echo reply from the kernel to us.
fn echo_reply(frame: &[u8]) -> Option<(u16, Vec<u8>)> {
    let packet = SlicedPacket::from_ethernet(frame).ok()?;
    let Some(TransportSlice::Icmpv4(icmp)) = packet.transport else { return None };
    match icmp.icmp_type() {
        Icmpv4Type::EchoReply(echo) if echo.id == 0xd7d7 => Some((echo.seq, icmp.payload().to_vec())),
        _ => None,
    }
}

#[test]
fn af_packet_port_exchanges_icmp_echoes_with_the_kernel_in_a_namespace() {
    if !is_root() {
        eprintln!("skipped: net_af_packet over a veth pair needs root to create a network namespace");
        return;
    }
    let dpdk_mac = "02:d7:00:00:00:01";
    let peer = KernelPeer::new(dpdk_mac);
    let kernel_mac = peer.kernel_mac();
    let vdev = format!("--vdev=net_af_packet0,iface={}", peer.host_if);
    let eal = common::eal("af-packet", &[&vdev]);
    let pool = PktPool::new(&eal, "afp_pool", PoolConf::default()).expect("pool");
    let id = eal.port_by_name("net_af_packet0").expect("af_packet port");
    let port = Port::configure(&eal, id, &pool, &PortConf::default()).expect("configure");
    assert_eq!(port.mac().expect("mac"), [2, 0xd7, 0, 0, 0, 1], "af_packet takes the interface's MAC");
    let mut queues = port.start().expect("start");

    let mut rng = ChaCha8Rng::seed_from_u64(77);
    let payloads: Vec<Vec<u8>> =
        (0..ECHOES).map(|i| (0..16 + usize::from(i) * 20).map(|_| rng.random()).collect()).collect();
    let frames: Vec<Vec<u8>> = payloads
        .iter()
        .enumerate()
        .map(|(seq, p)| echo_request(port.mac().unwrap().octets(), kernel_mac, seq as u16, p))
        .collect();
    let mut replies = vec![None; usize::from(ECHOES)];
    let mut sent = 0;
    let deadline = Instant::now() + WAIT;
    while replies.iter().any(Option::is_none) && Instant::now() < deadline {
        if sent < frames.len() {
            sent += queues.tx[0].tx_burst(&frames[sent..(sent + 8).min(frames.len())]).expect("tx");
        }
        queues.rx[0].rx_burst(32, |frame, _| {
            if let Some((seq, payload)) = echo_reply(frame) {
                if let Some(slot) = replies.get_mut(usize::from(seq)) {
                    *slot = Some(payload);
                }
            }
        });
        std::thread::sleep(Duration::from_millis(1));
    }
    for (seq, (reply, payload)) in replies.iter().zip(&payloads).enumerate() {
        assert_eq!(reply.as_ref(), Some(payload), "the kernel echoed request {seq} intact");
    }
    let stats = port.stats().expect("stats");
    assert_eq!(stats.opackets, u64::from(ECHOES));
    assert_eq!(stats.obytes, frames.iter().map(|f| f.len() as u64).sum::<u64>(), "af_packet counts bytes too");
    assert!(stats.ipackets >= u64::from(ECHOES), "every reply was counted");
    drop(queues);
    drop(port);
    assert_eq!(pool.in_use(), 0);
}

//! The kernel host end to end on its own: the kernel answers an ARP request
//! written to its TAP with its configured MAC, and everything the host made
//! is gone after it drops, also when a panic unwinds past it. Without root
//! or TUN each test says why it skipped and passes.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use ethdev::{Mbuf, Mempool, MempoolConfig, Owner, Wire};
use kernel_peer::netns::{self, unavailable};
use kernel_peer::{KernelHost, KernelHostConfig};

const KERNEL_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
const OUR_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0b];
const KERNEL_IP: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 1);
const OUR_IP: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 2);

fn config() -> KernelHostConfig {
    KernelHostConfig {
        name: "kernel".into(),
        mac: KERNEL_MAC.into(),
        ipv4: Some((KERNEL_IP, 24)),
        ipv6: None,
        gateway: None,
        mtu: 1500,
    }
}

fn skipped() -> bool {
    match unavailable() {
        Some(why) => {
            eprintln!("skipped: {why}");
            true
        }
        None => false,
    }
}

/// An ARP request from `OUR_MAC`/`OUR_IP` for `KERNEL_IP`.
fn arp_request(pool: &Mempool) -> Mbuf {
    let mut frame = Vec::with_capacity(42);
    frame.extend_from_slice(&[0xff; 6]);
    frame.extend_from_slice(&OUR_MAC);
    frame.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
    frame.extend_from_slice(&OUR_MAC);
    frame.extend_from_slice(&OUR_IP.octets());
    frame.extend_from_slice(&[0; 6]);
    frame.extend_from_slice(&KERNEL_IP.octets());
    let mut mbuf = pool.alloc(Owner::NONE).expect("a free buffer");
    assert!(mbuf.extend_from_slice(&frame));
    mbuf
}

/// Whether `frame` is the kernel's ARP reply to us.
fn is_arp_reply(frame: &[u8]) -> bool {
    frame.len() >= 42
        && frame[..6] == OUR_MAC
        && frame[12..14] == [0x08, 0x06]
        && frame[20..22] == [0, 2]
        && frame[22..28] == KERNEL_MAC
        && frame[28..32] == KERNEL_IP.octets()
}

#[test]
fn the_kernel_answers_arp_through_the_tap_with_the_hosts_mac() {
    if skipped() {
        return;
    }
    let pool = Mempool::new(MempoolConfig::new("test", 64)).unwrap();
    let (host, mut wire) = KernelHost::create(config()).unwrap();
    wire.put_rx(&mut vec![arp_request(&pool)]);
    let (mut seen, started) = (Vec::new(), Instant::now());
    while !seen.iter().any(|m: &Mbuf| is_arp_reply(m.data())) && started.elapsed() < Duration::from_secs(5) {
        wire.take_tx(&mut seen, 32);
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(seen.iter().any(|m| is_arp_reply(m.data())), "no ARP reply among {} frames", seen.len());
    let counters = host.counters();
    assert_eq!(kernel_peer::TapCounters::get(&counters.to_kernel), 1);
    assert!(kernel_peer::TapCounters::get(&counters.from_kernel) >= 1);
    drop(seen);
    assert_eq!((pool.in_use(), host.buffers_in_use()), (0, 0));
}

#[test]
fn dropping_the_host_removes_its_namespace_and_device_even_while_unwinding() {
    if skipped() {
        return;
    }
    let (host, wire) = KernelHost::create(config()).unwrap();
    let ns = host.netns().name().to_string();
    assert_eq!(netns::list(&ns), vec![ns.clone()]);
    let failed = std::panic::catch_unwind(move || {
        let _owned = (host, wire);
        panic!("a run failing half-way");
    });
    assert!(failed.is_err());
    assert_eq!(netns::list(&ns), Vec::<String>::new(), "namespace {ns} left behind");
}

#[test]
fn a_thread_spawned_in_the_host_sees_only_the_tap_and_loopback() {
    if skipped() {
        return;
    }
    let (host, _wire) = KernelHost::create(config()).unwrap();
    let tap = host.tap_name().to_string();
    let links = host
        .spawn("lister".into(), || std::fs::read_to_string("/proc/thread-self/net/dev"))
        .unwrap()
        .join()
        .unwrap()
        .unwrap();
    let names: Vec<&str> = links.lines().skip(2).filter_map(|l| l.split(':').next()).map(str::trim).collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.contains(&"lo") && names.contains(&tap.as_str()), "{names:?}");
}

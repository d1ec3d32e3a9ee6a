//! The forwarder on a real shared port, within one process: the primary's
//! mapping of a domain holds the port and the forwarder, a second mapping
//! holds two instances' queues (as two lstack processes would; the
//! multi-process run with real processes and kills is `dtnet mp ltran`'s
//! tests). Frames come from a host pool outside the domain, as from the
//! cable.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use ethdev::dev::PortConf;
use ethdev::mbuf::Mbuf;
use ethdev::mempool::{Mempool, MempoolConfig, Owner};
use ethdev::queue::RxQueue;
use ethdev::rss::RssHashTypes;
use ethdev::shm::control::{Peer, RuleService};
use ethdev::shm::rules::TupleRule;
use ethdev::shm::{Domain, DomainOptions, Role};
use ethdev::{EthDev, Instant, Wire};
use etherparse::PacketBuilder;
use ltran::{Forwarder, Limits, Miss};
use user_veth::shared::{PortSpec, SharedPort, SharedVeth};

const MAC: [u8; 6] = [2, 0, 0, 0, 4, 1];
const PEER_MAC: [u8; 6] = [2, 0, 0, 0, 4, 100];
const LOCAL: Ipv4Addr = Ipv4Addr::new(10, 4, 0, 1);
const REMOTE: Ipv4Addr = Ipv4Addr::new(10, 4, 0, 100);
const PRIMARY: Owner = Owner(1);
const INSTANCES: [Owner; 2] = [Owner(2), Owner(3)];

struct Rig {
    _base: tempfile::TempDir,
    primary: Domain,
    secondary: Domain,
    forwarder: Forwarder,
    /// The primary's handle of the port.
    port: SharedPort,
    /// A host's own pool, outside the domain.
    host: Mempool,
}

/// A port of three queues (RSS off) and its forwarder; nobody holds a queue yet.
fn rig() -> Rig {
    let base = tempfile::tempdir().unwrap();
    let opts = DomainOptions { base: base.path().to_owned(), size: 8 << 20, wait: Duration::ZERO };
    let primary = Domain::open("ltran", Role::Primary, &opts).unwrap();
    let conf = PortConf { rss_types: RssHashTypes::empty(), ..PortConf::new(3) };
    let pool = MempoolConfig::new("ltran_pool", 512);
    let spec = PortSpec { name: "ltran".into(), mac: MAC.into(), conf, ring_words: 64, pool, owner: PRIMARY };
    let (port, wire) = SharedVeth::create(&primary, &spec).unwrap();
    port.start().unwrap();
    let forwarder = Forwarder::new(port.clone(), wire, PRIMARY, Limits::default());
    let secondary = Domain::open("ltran", Role::Secondary, &opts).unwrap();
    let host = Mempool::new(MempoolConfig::new("host", 256)).unwrap();
    Rig { _base: base, primary, secondary, forwarder, port, host }
}

fn peer(owner: Owner) -> Peer {
    Peer { pid: 1, uid: 0, name: format!("instance {}", owner.0), owner }
}

impl Rig {
    /// Instance `n` attached, holding rx queue `n`.
    fn instance(&self, n: usize) -> (SharedPort, Box<dyn RxQueue>) {
        let port = SharedPort::attach(&self.secondary, "ltran", INSTANCES[n]).unwrap();
        let rx = port.rx_queue(n as u16).unwrap();
        (port, rx)
    }

    fn mbuf(&self, bytes: &[u8]) -> Mbuf {
        let mut m = self.host.alloc(Owner::NONE).unwrap();
        assert!(m.extend_from_slice(bytes));
        m
    }

    /// Hands `frames` to the forwarder as the cable would.
    fn arrive(&mut self, frames: &[Vec<u8>]) {
        let mut burst: Vec<Mbuf> = frames.iter().map(|f| self.mbuf(f)).collect();
        self.forwarder.put_rx(&mut burst);
        assert!(burst.is_empty());
    }

    /// Instance `n` asks for a registration on queue `queue`.
    fn register(&mut self, n: usize, queue: u16, src: Option<SocketAddr>, dst: SocketAddr) -> Result<(), String> {
        let rule = TupleRule { port: "ltran".into(), priority: 1, queue, src, dst };
        self.forwarder.flow_add(&peer(INSTANCES[n]), &rule).map(drop)
    }
}

fn received(rx: &mut Box<dyn RxQueue>) -> Vec<Vec<u8>> {
    let mut burst = Vec::new();
    rx.rx_burst(&mut burst, 64);
    burst.iter().map(|m| m.data().to_vec()).collect()
}

fn syn(sport: u16) -> Vec<u8> {
    let mut frame = Vec::new();
    let ip = PacketBuilder::ethernet2(PEER_MAC, MAC).ipv4(REMOTE.octets(), LOCAL.octets(), 64);
    ip.tcp(sport, 80, 1, 65535).syn().write(&mut frame, &[]).unwrap();
    frame
}

fn arp() -> Vec<u8> {
    let mut frame = [[0xff; 6], PEER_MAC].concat();
    frame.extend_from_slice(&[0x08, 0x06]);
    frame.extend_from_slice(&[7; 28]);
    frame
}

fn ping() -> Vec<u8> {
    let mut frame = Vec::new();
    let ip = PacketBuilder::ethernet2(PEER_MAC, MAC).ipv4(REMOTE.octets(), LOCAL.octets(), 64);
    ip.icmpv4_echo_request(1, 1).write(&mut frame, &[0; 8]).unwrap();
    frame
}

/// New connections alternate between two listeners on one port, each
/// landing whole on its instance's queue and only there; ARP reaches both
/// instances (a copy for one of them) and ICMP the first; every buffer
/// from the cable was copied into the domain's pool once and freed, and
/// the pool is back to its baseline.
#[test]
fn frames_reach_the_queue_the_table_picks_and_arp_reaches_every_instance() {
    let mut rig = rig();
    let ((_a, mut rx_a), (_b, mut rx_b)) = (rig.instance(0), rig.instance(1));
    rig.register(0, 0, None, SocketAddr::from((LOCAL, 80))).unwrap();
    rig.register(1, 1, None, SocketAddr::from((LOCAL, 80))).unwrap();
    let syns: Vec<_> = (0..4).map(|p| syn(1000 + p)).collect();
    rig.arrive(&syns);
    assert_eq!(received(&mut rx_a), [syns[0].clone(), syns[2].clone()]);
    assert_eq!(received(&mut rx_b), [syns[1].clone(), syns[3].clone()]);
    rig.arrive(&[arp(), ping()]);
    assert_eq!(received(&mut rx_a), [arp(), ping()]);
    assert_eq!(received(&mut rx_b), [arp()]);
    let stats = rig.forwarder.stats();
    assert_eq!((stats.delivered, stats.copies, stats.unplaced), (7, 1, 0));
    assert_eq!(rig.host.in_use(), 0, "the cable's buffers were copied and freed");
    assert_eq!(rig.port.pool().in_use(), 0, "every delivered frame was freed by its instance");
}

/// An instance may register only on a queue it holds and only on the
/// forwarder's port; a segment of no connection, and a SYN nobody
/// listens for, go nowhere and are counted; with nobody holding a queue,
/// ARP and ICMP go nowhere either, counted, and the pools stay at baseline.
#[test]
fn refusals_and_misses_are_counted_and_nothing_leaks() {
    let mut rig = rig();
    let any = SocketAddr::from((LOCAL, 80));
    assert!(rig.register(0, 0, None, any).is_err(), "a queue nobody holds");
    let (_a, _rx_a) = rig.instance(0);
    assert!(rig.register(1, 0, None, any).is_err(), "another instance's queue");
    let rule = TupleRule { port: "other".into(), priority: 1, queue: 0, src: None, dst: any };
    assert!(rig.forwarder.flow_add(&peer(INSTANCES[0]), &rule).is_err(), "another port");
    drop((_a, _rx_a));
    let mut ack = syn(2000);
    ack[14 + 20 + 13] = 0x10;
    rig.arrive(&[syn(1000), ack, arp(), ping()]);
    let table = rig.forwarder.table().stats();
    assert_eq!(table.misses.get(&Miss::NoListener), Some(&1));
    assert_eq!(table.misses.get(&Miss::NoConnection), Some(&1));
    assert_eq!(rig.forwarder.stats().unplaced, 2);
    rig.forwarder.poll(Instant::ZERO + Duration::from_secs(10));
    assert!(rig.forwarder.table().is_empty());
    assert_eq!((rig.host.in_use(), rig.port.pool().in_use()), (0, 0));
}

/// The forwarder's counters reach a tool attached to the domain: what it
/// publishes into its zone reads back as the table and forwarder counted
/// (entries, registrations, deliveries, misses, new connections by queue),
/// and a zone that is not a forwarder's, or claims more queues than it
/// has room for, reads as nothing.
#[test]
fn published_counters_read_back_from_the_domain() {
    let mut rig = rig();
    let (_a, mut rx_a) = rig.instance(0);
    rig.register(0, 0, None, SocketAddr::from((LOCAL, 80))).unwrap();
    rig.arrive(&[syn(1000), syn(1001), ping()]);
    received(&mut rx_a);
    let mut ack = syn(2000);
    ack[14 + 20 + 13] = 0x10;
    rig.arrive(&[ack]);
    let zone = ltran::published::reserve(&rig.primary).unwrap();
    assert_eq!(ltran::published::read(&zone), None, "nothing published yet");
    rig.forwarder.publish(&zone);
    let seen = ltran::published::read(&rig.secondary.lookup(ltran::published::ZONE).unwrap()).unwrap();
    assert_eq!((seen.entries, seen.registered, seen.expired), (3, 1, 0), "a listener and two connections");
    assert_eq!((seen.delivered, seen.copies, seen.unplaced), (3, 0, 0));
    assert_eq!(seen.dispatched, [2, 0, 0]);
    assert!(seen.misses.contains(&(Miss::NoConnection, 1)) && seen.misses.len() == 5, "{:?}", seen.misses);
    zone.u64s()[1].store(65, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(ltran::published::read(&zone), None, "more queues than the zone holds");
    let other = rig.primary.reserve("other", 8 * 4).unwrap();
    assert_eq!(ltran::published::read(&other), None);
}

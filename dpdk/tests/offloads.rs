//! Offloads and flow rules through a DPDK port's `EthDev` adapter:
//! - on net_ring, which has no offloads, what an mbuf asks for is done in
//!   software: frames leave with the IPv4 and TCP/UDP checksums filled in,
//!   and a large TCP frame asking for TSO arrives as MSS-sized segments,
//!   each with valid checksums, carrying the payload in order; an offload a
//!   frame cannot take (an L4 checksum for ARP, TSO for UDP) is a counted
//!   drop;
//! - net_ring has no rte_flow: every flow operation is "unsupported by
//!   device", naming the driver;
//! - net_tap (root only) takes dtnet's rules in `rte_flow_validate` (so the
//!   translation builds items and actions it understands), refuses an
//!   action it lacks by name, and either creates a rule or says why not.
#![cfg(feature = "dpdk")]

mod common;

use std::sync::Arc;

use dpdk::{DpdkEthDev, PktPool, PoolConf};
use ethdev::dev::{EthDev, PortConf};
use ethdev::error::DevError;
use ethdev::flow::{FlowAction, FlowAttr, FlowItem, Ipv4Item, ItemSpec, TcpItem};
use ethdev::frame::FrameSpec;
use ethdev::packet::{IpAddrs, PacketMeta};
use ethdev::rss::RssHashTypes;
use ethdev::{Mbuf, Mempool, MempoolConfig, OlFlags, Owner, RxQueue, TxQueue};
use user_veth::offload::verify_checksums;

const V4: IpAddrs = IpAddrs::V4 { src: [10, 1, 0, 1], dst: [10, 1, 0, 2] };
const V6: IpAddrs = IpAddrs::V6 { src: [0xfd; 16], dst: [0xfe; 16] };
const SEGMENT: u16 = 1000;

/// One queue, no RSS.
fn conf() -> PortConf {
    PortConf { rss_types: RssHashTypes::empty(), rx_ring_size: 512, tx_ring_size: 512, ..PortConf::new(1) }
}

/// `frame` with its IPv4 header and TCP/UDP checksums zeroed, in an mbuf
/// asking for `flags`.
fn zeroed(pool: &Mempool, frame: &[u8], flags: OlFlags) -> Mbuf {
    let meta = PacketMeta::parse(frame).expect("frame");
    let mut bytes = frame.to_vec();
    let (l3, l4) = (usize::from(meta.l3_offset), usize::from(meta.l4_offset));
    if matches!(meta.ip, Some(IpAddrs::V4 { .. })) {
        bytes[l3 + 10..l3 + 12].fill(0);
    }
    let field = l4 + if meta.ip_proto == Some(6) { 16 } else { 6 };
    bytes[field..field + 2].fill(0);
    asking(pool, &bytes, flags)
}

/// `frame` in an mbuf asking for `flags`.
fn asking(pool: &Mempool, frame: &[u8], flags: OlFlags) -> Mbuf {
    let mut mbuf = pool.alloc(Owner::NONE).expect("dtnet mbuf");
    assert!(mbuf.extend_from_slice(frame));
    mbuf.set_flags(flags);
    mbuf
}

/// Everything `rx` receives within a few polls.
fn receive(rx: &mut dyn RxQueue) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for _ in 0..100 {
        rx.rx_burst(&mut out, 64);
    }
    out.into_iter().map(|m| m.data().to_vec()).collect()
}

fn checksums_good(frame: &[u8]) -> bool {
    let meta = PacketMeta::parse(frame).expect("frame");
    let flags = verify_checksums(frame, &meta);
    let l4_good = flags.contains(OlFlags::RX_L4_CKSUM_GOOD);
    let ip_good = !matches!(meta.ip, Some(IpAddrs::V4 { .. })) || flags.contains(OlFlags::RX_IP_CKSUM_GOOD);
    l4_good && ip_good
}

#[test]
fn a_ring_port_does_in_software_the_offloads_an_mbuf_asks_for() {
    let eal = common::eal("offloads-ring", &[]);
    let dpdk_pool = PktPool::new(&eal, "offloads_ring_pool", PoolConf::default()).expect("pool");
    let mbufs = Mempool::new(MempoolConfig::new("offloads_ring", 512).data_room(16 * 1024)).expect("dtnet pool");
    let (a, b) = eal.ring_cable("offl", 1).expect("ring cable");
    let port_a: Arc<dyn EthDev> = Arc::new(DpdkEthDev::new(&eal, a, &dpdk_pool, mbufs.clone()).expect("adapter a"));
    let port_b: Arc<dyn EthDev> = Arc::new(DpdkEthDev::new(&eal, b, &dpdk_pool, mbufs.clone()).expect("adapter b"));
    assert!(port_a.info().tx_offloads.is_empty(), "net_ring has no transmit offloads");
    for port in [&port_a, &port_b] {
        port.configure(&conf()).expect("configure");
        port.start().expect("start");
    }
    let (mut tx, mut rx) = (port_a.tx_queue(0).expect("tx"), port_b.rx_queue(0).expect("rx"));

    let checksums = OlFlags::TX_IP_CKSUM | OlFlags::TX_L4_CKSUM;
    let originals = [
        FrameSpec::tcp(V4, 1000, 80).build(b"tcp over ipv4"),
        FrameSpec::udp(V4, 1001, 53).build(b"udp over ipv4"),
        FrameSpec::tcp(V6, 1002, 80).build(b"tcp over ipv6"),
    ];
    let mut burst: Vec<Mbuf> = originals
        .iter()
        .map(|f| zeroed(&mbufs, f, if f[12..14] == [0x86, 0xdd] { OlFlags::TX_L4_CKSUM } else { checksums }))
        .collect();
    assert_eq!(tx.tx_burst(&mut burst), originals.len());
    assert_eq!(receive(rx.as_mut()), originals.to_vec(), "checksums filled in exactly as etherparse writes them");

    let payload: Vec<u8> = (0..8 * usize::from(SEGMENT) + 123).map(|i| (i % 251) as u8).collect();
    let big = FrameSpec::tcp(V4, 2000, 80).build(&payload);
    let mut tso = zeroed(&mbufs, &big, checksums);
    tso.request_tso(SEGMENT);
    let mut burst = vec![tso];
    assert_eq!(tx.tx_burst(&mut burst), 1, "the TSO frame is taken");
    let segments = receive(rx.as_mut());
    assert_eq!(segments.len(), 9, "8 full segments and the rest");
    let mut carried = Vec::new();
    for segment in &segments {
        assert!(checksums_good(segment), "every segment has valid checksums");
        let meta = PacketMeta::parse(segment).expect("segment");
        let data_offset = usize::from(segment[usize::from(meta.l4_offset) + 12] >> 4) * 4;
        carried.extend_from_slice(&segment[usize::from(meta.l4_offset) + data_offset..]);
    }
    assert!(carried == payload, "the segments carry the payload in order");

    // Offloads a frame cannot take (an L4 checksum for ARP, TSO for UDP)
    // are counted drops, not frames with garbage in them.
    let arp = [0xffu8; 6].into_iter().chain([2, 0, 0, 0, 0, 1, 0x08, 0x06]).chain([0; 46]).collect::<Vec<u8>>();
    let mut bad = vec![asking(&mbufs, &arp, OlFlags::TX_L4_CKSUM), {
        let mut udp = zeroed(&mbufs, &originals[1], checksums);
        udp.request_tso(SEGMENT);
        udp
    }];
    assert_eq!(tx.tx_burst(&mut bad), 2, "both are taken");
    assert!(receive(rx.as_mut()).is_empty(), "and neither is sent");
    let xstats = port_a.xstats().expect("xstats");
    let bad_offload = xstats.iter().find(|x| x.name == "dtnet_tx_bad_offload").map(|x| x.value);
    assert_eq!(bad_offload, Some(2), "{xstats:?}");

    drop((tx, rx, port_a, port_b));
    assert_eq!((mbufs.in_use(), dpdk_pool.in_use()), (0, 0), "pools back to baseline");
}

/// A rule steering TCP to port 5000 of 10.1.0.2 to queue 1.
fn steer_rule() -> [FlowItem; 3] {
    let ip = Ipv4Item { dst: [10, 1, 0, 2], ..Ipv4Item::default() };
    let ip_mask = Ipv4Item { dst: [0xff; 4], ..Ipv4Item::default() };
    [
        FlowItem::Eth(ItemSpec::ANY),
        FlowItem::Ipv4(ItemSpec::new(ip).with_mask(ip_mask)),
        FlowItem::Tcp(ItemSpec::new(TcpItem { dst_port: 5000, ..TcpItem::default() })),
    ]
}

#[test]
fn flow_rules_on_a_ring_port_are_unsupported_by_device() {
    let eal = common::eal("flow-ring", &[]);
    let dpdk_pool = PktPool::new(&eal, "flow_ring_pool", PoolConf::default()).expect("pool");
    let mbufs = Mempool::new(MempoolConfig::new("flow_ring", 64)).expect("dtnet pool");
    let (a, _) = eal.ring_cable("flow", 2).expect("ring cable");
    let port = DpdkEthDev::new(&eal, a, &dpdk_pool, mbufs).expect("adapter");
    port.configure(&PortConf { rss_types: RssHashTypes::empty(), ..PortConf::new(2) }).expect("configure");
    port.start().expect("start");
    let attr = FlowAttr::ingress(0);
    for result in [
        port.flow_validate(&attr, &steer_rule(), &[FlowAction::Queue(1)]),
        port.flow_create(&attr, &steer_rule(), &[FlowAction::Queue(1)]).map(drop),
        port.flow_flush(),
    ] {
        let Err(DevError::Unsupported(why)) = result else { panic!("net_ring has no rte_flow: {result:?}") };
        assert!(why.contains("net_ring") && why.contains("unsupported by device"), "{why}");
    }
    let bad = port.flow_validate(&attr, &steer_rule(), &[FlowAction::Queue(7)]);
    assert!(matches!(bad, Err(DevError::Flow(_))), "a queue the port lacks is refused by dtnet's model: {bad:?}");
}

#[test]
fn net_tap_validates_translated_rules_and_names_what_it_refuses() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: net_tap needs root");
        return;
    }
    let iface = format!("--vdev=net_tap0,iface=dtfl{}", std::process::id());
    let eal = common::eal("flow-tap", &[&iface]);
    let dpdk_pool = PktPool::new(&eal, "flow_tap_pool", PoolConf::default()).expect("pool");
    let mbufs = Mempool::new(MempoolConfig::new("flow_tap", 64)).expect("dtnet pool");
    let id = eal.port_by_name("net_tap0").expect("tap port");
    let port = DpdkEthDev::new(&eal, id, &dpdk_pool, mbufs).expect("adapter");
    port.configure(&PortConf { rss_types: RssHashTypes::empty(), ..PortConf::new(2) }).expect("configure");
    port.start().expect("start");
    let attr = FlowAttr::ingress(0);
    port.flow_validate(&attr, &steer_rule(), &[FlowAction::Queue(1)])
        .expect("net_tap takes an ETH/IPV4/TCP -> QUEUE rule");
    port.flow_validate(&attr, &steer_rule(), &[FlowAction::Drop]).expect("and a DROP rule");
    let marked = port.flow_validate(&attr, &steer_rule(), &[FlowAction::Mark(7), FlowAction::Queue(1)]);
    let Err(DevError::Unsupported(why)) = marked else { panic!("net_tap has no MARK action: {marked:?}") };
    assert!(why.contains("net_tap"), "{why}");
    // Creating needs the kernel's tc (flower, multiq); where it has them the
    // rule is made and destroyed, where not the driver's reason is given.
    match port.flow_create(&attr, &steer_rule(), &[FlowAction::Queue(1)]) {
        Ok(rule) => port.flow_destroy(rule).expect("destroy"),
        Err(DevError::Unsupported(why)) => assert!(why.contains("net_tap"), "{why}"),
        Err(other) => panic!("a refused rule is Unsupported: {other}"),
    }
    port.flow_flush().expect("flush");
}

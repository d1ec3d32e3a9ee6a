//! user-veth end to end: frames in through the wire end, out of the queues
//! (and back), checking placement, offloads, drops and accounting.

use ethdev::dev::{PortConf, RxOffloads, TxOffloads};
use ethdev::error::DevError;
use ethdev::flow::{FlowAction, FlowAttr, FlowItem};
use ethdev::frame::FrameSpec;
use ethdev::mbuf::{Mbuf, OlFlags};
use ethdev::mempool::{Mempool, MempoolConfig, Owner};
use ethdev::middleware::{BurstLog, Capture, CaptureWire, HookPoint};
use ethdev::packet::IpAddrs;
use ethdev::rss::{Reta, RssHashTypes, RssKey};
use ethdev::stats::DropReason;
use ethdev::{EthDev, Wire};
use proptest::prelude::*;
use rand::{RngExt, SeedableRng};
use rstest::rstest;
use user_veth::{Cable, Veth, VethPort, VethWire};

const MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];

/// A started port and its wire end; with [`Rig::captured`], both behind
/// the capture middleware.
struct Rig<D = VethPort, W = VethWire> {
    pool: Mempool,
    port: D,
    wire: W,
}

impl Rig {
    fn new(conf: PortConf) -> Rig {
        Rig::with_pool(conf, MempoolConfig::new("veth-test", 8192))
    }

    fn with_pool(conf: PortConf, pool: MempoolConfig) -> Rig {
        let pool = Mempool::new(pool).unwrap();
        let (port, wire) = Veth::new("veth0", MAC, pool.clone());
        port.configure(&conf).unwrap();
        port.start().unwrap();
        Rig { pool, port, wire }
    }

    /// The rig with its port and wire end behind a [`Capture`].
    fn captured(self) -> Rig<Capture<VethPort>, CaptureWire<VethWire>> {
        let port = Capture::new(self.port);
        let wire = port.wire(self.wire);
        Rig { pool: self.pool, port, wire }
    }
}

impl<D: EthDev, W: Wire> Rig<D, W> {
    /// Sends `burst` on transmit queue `queue`; returns how many frames it took.
    fn tx(&self, queue: u16, burst: &mut Vec<Mbuf>) -> usize {
        self.port.tx_queue(queue).unwrap().tx_burst(burst)
    }

    fn mbuf(&self, frame: &[u8]) -> Mbuf {
        let mut m = self.pool.alloc(Owner::NONE).unwrap();
        assert!(m.extend_from_slice(frame));
        m
    }

    fn inject(&mut self, frames: &[Vec<u8>]) {
        let mut burst: Vec<Mbuf> = frames.iter().map(|f| self.mbuf(f)).collect();
        self.wire.put_rx(&mut burst);
        assert!(burst.is_empty(), "put_rx drains its input");
    }

    fn drain(&self, queue: u16) -> Vec<Mbuf> {
        let mut out = Vec::new();
        let mut rx = self.port.rx_queue(queue).unwrap();
        while rx.rx_burst(&mut out, 64) > 0 {}
        out
    }

    fn drop_count(&self, name: &str) -> u64 {
        self.port.xstats().unwrap().into_iter().find(|x| x.name == name).map(|x| x.value).unwrap()
    }

    /// Drains every queue, checks accounting and that no buffer leaked.
    fn finish(self) {
        self.port.check_accounting().unwrap();
        let queues = self.port.stats().unwrap().q_ipackets.len() as u16;
        (0..queues).for_each(|q| drop(self.drain(q)));
        let mut out = Vec::new();
        let mut wire = self.wire;
        while wire.take_tx(&mut out, 64) > 0 {}
        drop(out);
        self.port.check_accounting().unwrap();
        drop((self.port, wire));
        assert_eq!(self.pool.in_use(), 0, "buffers leaked");
    }
}

fn v4(src: [u8; 4], dst: [u8; 4]) -> IpAddrs {
    IpAddrs::V4 { src, dst }
}

fn tcp_to_port(ip: IpAddrs, sport: u16, dport: u16) -> FrameSpec {
    FrameSpec::tcp(ip, sport, dport).macs([2, 0, 0, 0, 0, 1], MAC)
}

/// (src, dst, sport, dport, hash over IPs, hash over IPs and ports).
fn ms_vectors() -> Vec<(IpAddrs, u16, u16, u32, u32)> {
    let p4 = |s: &str| s.parse::<std::net::Ipv4Addr>().unwrap().octets();
    let p6 = |s: &str| s.parse::<std::net::Ipv6Addr>().unwrap().octets();
    let v6 = |src: &str, dst: &str| IpAddrs::V6 { src: p6(src), dst: p6(dst) };
    vec![
        (v4(p4("66.9.149.187"), p4("161.142.100.80")), 2794, 1766, 0x323e8fc2, 0x51ccc178),
        (v4(p4("199.92.111.2"), p4("65.69.140.83")), 14230, 4739, 0xd718262a, 0xc626b0ea),
        (v4(p4("24.19.198.95"), p4("12.22.207.184")), 12898, 38024, 0xd2d0a5de, 0x5c2b394a),
        (v4(p4("38.27.205.30"), p4("209.142.163.6")), 48228, 2217, 0x82989176, 0xafc7327f),
        (v4(p4("153.39.163.191"), p4("202.188.127.2")), 44251, 1303, 0x5d1809c5, 0x10e828a2),
        (v6("3ffe:2501:200:1fff::7", "3ffe:2501:200:3::1"), 2794, 1766, 0x2cc18cd5, 0x40207d3d),
        (v6("3ffe:501:8::260:97ff:fe40:efab", "ff02::1"), 14230, 4739, 0x0f0c461c, 0xdde51bbf),
        (v6("3ffe:1900:4545:3:200:f8ff:fe21:67cf", "fe80::200:f8ff:fe21:67cf"), 44251, 38024, 0x4b61e985, 0x02d1feef),
    ]
}

#[rstest]
fn microsoft_vectors_land_on_their_reta_entry(#[values(true, false)] with_ports: bool) {
    let mut conf = PortConf::new(4);
    if !with_ports {
        conf.rss_types = RssHashTypes::IPV4 | RssHashTypes::IPV6;
    }
    let mut rig = Rig::new(conf);
    let reta = rig.port.reta_query().unwrap();
    for (ip, sport, dport, ip_hash, port_hash) in ms_vectors() {
        let expected = if with_ports { port_hash } else { ip_hash };
        rig.inject(&[tcp_to_port(ip, sport, dport).build(b"x")]);
        let queue = reta.entries()[expected as usize & (reta.len() - 1)];
        let got = rig.drain(queue);
        assert_eq!(got.len(), 1, "{ip:?} expected on queue {queue}");
        assert_eq!(got[0].rss_hash(), expected);
        assert!(got[0].flags().contains(OlFlags::RX_RSS_HASH));
        assert_eq!(got[0].queue(), queue);
    }
    rig.finish();
}

#[rstest]
fn random_flows_spread_evenly(#[values(4, 8, 16)] queues: u16) {
    let mut rig = Rig::new(PortConf::new(queues));
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(queues as u64);
    let mut counts = vec![0usize; queues as usize];
    for _ in 0..100 {
        let frames: Vec<Vec<u8>> = (0..1000)
            .map(|_| tcp_to_port(v4(rng.random(), rng.random()), rng.random(), rng.random()).build(&[]))
            .collect();
        rig.inject(&frames);
        for q in 0..queues {
            counts[q as usize] += rig.drain(q).len();
        }
    }
    let mean = 100_000.0 / queues as f64;
    for (q, &n) in counts.iter().enumerate() {
        assert!((n as f64 - mean).abs() <= mean * 0.10, "queue {q} got {n}, mean {mean}");
    }
    assert_eq!(counts.iter().sum::<usize>(), 100_000);
    rig.finish();
}

fn tcp_dport(port: u16) -> Vec<FlowItem> {
    use ethdev::flow::{ItemSpec, TcpItem};
    let spec = TcpItem { dst_port: port, ..TcpItem::default() };
    let mask = TcpItem { dst_port: 0xffff, ..TcpItem::default() };
    vec![
        FlowItem::Eth(ItemSpec::ANY),
        FlowItem::Ipv4(ItemSpec::ANY),
        FlowItem::Tcp(ItemSpec::new(spec).with_mask(mask)),
    ]
}

#[test]
fn flow_rule_beats_rss_and_marks_and_counts() {
    let mut rig = Rig::new(PortConf::new(4));
    let rule = rig
        .port
        .flow_create(
            &FlowAttr::ingress(0),
            &tcp_dport(80),
            &[FlowAction::Queue(3), FlowAction::Mark(77), FlowAction::Count],
        )
        .unwrap();
    let web: Vec<Vec<u8>> =
        (0..64u16).map(|i| tcp_to_port(v4([10, 0, 0, i as u8], [10, 0, 1, 1]), 1000 + i, 80).build(b"")).collect();
    let other: Vec<Vec<u8>> =
        (0..64u16).map(|i| tcp_to_port(v4([10, 0, 0, i as u8], [10, 0, 1, 1]), 1000 + i, 81).build(b"")).collect();
    rig.inject(&web);
    rig.inject(&other);
    let on_q3 = rig.drain(3);
    let marked: Vec<&Mbuf> = on_q3.iter().filter(|m| m.flags().contains(OlFlags::RX_FDIR_MARK)).collect();
    assert_eq!(marked.len(), 64, "every port-80 frame on queue 3, marked");
    assert!(marked.iter().all(|m| m.mark() == 77));
    let spread: usize = (0..3).map(|q| rig.drain(q).len()).sum::<usize>() + on_q3.len() - 64;
    assert_eq!(spread, 64, "other traffic still spread by RSS");
    let counters = rig.port.flow_query(rule).unwrap();
    assert_eq!(counters.hits, 64);
    assert_eq!(counters.bytes, web.iter().map(|f| f.len() as u64).sum::<u64>());
    drop(on_q3);
    rig.finish();
}

#[test]
fn isolate_mode_drops_unmatched_frames() {
    let mut rig = Rig::new(PortConf::new(2));
    rig.port.flow_create(&FlowAttr::ingress(0), &tcp_dport(80), &[FlowAction::Queue(1)]).unwrap();
    rig.port.flow_isolate(true).unwrap();
    rig.inject(&[
        tcp_to_port(v4([1, 1, 1, 1], [2, 2, 2, 2]), 5, 80).build(b""),
        tcp_to_port(v4([1, 1, 1, 1], [2, 2, 2, 2]), 5, 81).build(b""),
    ]);
    assert_eq!(rig.drain(1).len(), 1);
    assert_eq!(rig.drain(0).len(), 0);
    assert_eq!(rig.drop_count("rx_drop_isolated"), 1);
    rig.finish();
}

/// Sends one TSO frame and returns the wire frames.
fn tso_segments(ip: IpAddrs, payload: &[u8], segsz: u16) -> (Rig, Vec<Mbuf>) {
    let mut conf = PortConf::new(1);
    conf.tx_offloads = TxOffloads::all();
    let mut rig = Rig::with_pool(conf, MempoolConfig::new("tso", 256).data_room(16384));
    let mut frame = FrameSpec::tcp(ip, 4000, 5000).build(payload);
    let l4 = if matches!(ip, IpAddrs::V4 { .. }) { 14 + 20 } else { 14 + 40 };
    frame[l4 + 13] |= 0x09; // PSH | FIN: only the last segment may keep them
    let mut big = rig.mbuf(&frame);
    big.request_tso(segsz);
    let mut burst = vec![big];
    assert_eq!(rig.tx(0, &mut burst), 1);
    let mut out = Vec::new();
    rig.wire.take_tx(&mut out, 32);
    (rig, out)
}

#[rstest]
#[case::ipv4(v4([10, 0, 0, 1], [10, 0, 0, 2]), 1460)]
#[case::ipv6(IpAddrs::V6 { src: [0xfd; 16], dst: [0xfe; 16] }, 1440)]
fn tso_segments_parse_verify_and_reassemble(#[case] ip: IpAddrs, #[case] segsz: u16) {
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};
    let payload: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let (rig, segments) = tso_segments(ip, &payload, segsz);
    assert_eq!(segments.len(), payload.len().div_ceil(segsz as usize));
    let mut reassembled = vec![0u8; payload.len()];
    for (i, seg) in segments.iter().enumerate() {
        let parsed = SlicedPacket::from_ethernet(seg.data()).unwrap();
        let Some(TransportSlice::Tcp(tcp)) = parsed.transport else { panic!("segment {i} is not TCP") };
        let data = tcp.payload();
        let checksum = match &parsed.net {
            Some(NetSlice::Ipv4(v4)) => {
                assert_eq!(v4.header().header_checksum(), v4.header().to_header().calc_header_checksum());
                assert!(v4.header().total_len() as usize <= 1500);
                tcp.to_header().calc_checksum_ipv4(&v4.header().to_header(), data).unwrap()
            }
            Some(NetSlice::Ipv6(v6)) => tcp.to_header().calc_checksum_ipv6(&v6.header().to_header(), data).unwrap(),
            _ => panic!("segment {i} has no IP header"),
        };
        assert_eq!(tcp.checksum(), checksum, "segment {i} checksum");
        let last = i + 1 == segments.len();
        assert_eq!((tcp.psh(), tcp.fin()), (last, last), "PSH and FIN only on the last segment");
        let offset = tcp.sequence_number().wrapping_sub(1) as usize;
        reassembled[offset..offset + data.len()].copy_from_slice(data);
        assert!(!seg.flags().contains(OlFlags::TX_TCP_SEG));
    }
    assert_eq!(reassembled, payload);
    drop(segments);
    rig.finish();
}

#[test]
fn tso_without_the_offload_enabled_is_a_counted_drop() {
    let mut rig = Rig::new(PortConf::new(1));
    let mut big = rig.mbuf(&FrameSpec::tcp(v4([1, 0, 0, 1], [1, 0, 0, 2]), 1, 2).build(&[0; 1000]));
    big.request_tso(500);
    rig.tx(0, &mut vec![big]);
    let mut out = Vec::new();
    assert_eq!(rig.wire.take_tx(&mut out, 8), 0);
    assert_eq!(rig.drop_count("tx_drop_bad_offload"), 1);
    rig.finish();
}

#[test]
fn rx_checksum_offload_flags_good_and_bad() {
    let mut conf = PortConf::new(1);
    conf.rx_offloads = RxOffloads::CHECKSUM;
    let mut rig = Rig::new(conf);
    let good = tcp_to_port(v4([10, 0, 0, 1], [10, 0, 0, 2]), 1, 2).build(b"hello");
    let mut bad_l4 = good.clone();
    *bad_l4.last_mut().unwrap() ^= 0xff;
    let mut bad_ip = good.clone();
    bad_ip[14 + 8] ^= 0x01; // TTL: covered by the IPv4 header checksum, not by the TCP pseudo header
    let udp_v6 =
        FrameSpec::udp(IpAddrs::V6 { src: [1; 16], dst: [2; 16] }, 3, 4).macs([2, 0, 0, 0, 0, 1], MAC).build(b"v6");
    rig.inject(&[good, bad_l4, bad_ip, udp_v6]);
    let flags: Vec<OlFlags> = rig.drain(0).iter().map(|m| m.flags() - OlFlags::RX_RSS_HASH).collect();
    assert_eq!(
        flags,
        vec![
            OlFlags::RX_IP_CKSUM_GOOD | OlFlags::RX_L4_CKSUM_GOOD,
            OlFlags::RX_IP_CKSUM_GOOD | OlFlags::RX_L4_CKSUM_BAD,
            OlFlags::RX_IP_CKSUM_BAD | OlFlags::RX_L4_CKSUM_GOOD,
            OlFlags::RX_L4_CKSUM_GOOD,
        ]
    );
    rig.finish();
}

#[test]
fn tx_checksum_offload_fills_checksums() {
    let mut conf = PortConf::new(1);
    conf.tx_offloads = TxOffloads::IPV4_CKSUM | TxOffloads::L4_CKSUM;
    let mut rig = Rig::new(conf);
    let mut frame = FrameSpec::udp(v4([10, 0, 0, 1], [10, 0, 0, 2]), 1, 2).build(b"payload");
    let good = frame.clone();
    frame[14 + 10..14 + 12].fill(0);
    frame[14 + 20 + 6..14 + 20 + 8].fill(0xaa);
    let mut m = rig.mbuf(&frame);
    m.set_flags(OlFlags::TX_IP_CKSUM | OlFlags::TX_L4_CKSUM);
    rig.tx(0, &mut vec![m]);
    let mut out = Vec::new();
    rig.wire.take_tx(&mut out, 8);
    assert_eq!(out[0].data(), &good[..]);
    drop(out);
    rig.finish();
}

/// A port that filled in every checksum of a frame sends it marked
/// `CKSUM_FILLED` (IPv4 header and L4 both asked for; not the L4 one alone,
/// nor none). A receiver with checksum offload believes the mark instead of
/// summing (so a marked frame with a wrong checksum passes as good: only a
/// wire that changed no byte may carry the mark) and verifies an unmarked
/// frame; every receiver takes the mark off.
#[test]
fn filled_checksums_cross_the_wire_marked_and_are_believed() {
    let ip = v4([10, 0, 0, 1], [10, 0, 0, 2]);
    let mut conf = PortConf::new(1);
    conf.tx_offloads = TxOffloads::IPV4_CKSUM | TxOffloads::L4_CKSUM;
    let mut rig = Rig::new(conf);
    let both = OlFlags::TX_IP_CKSUM | OlFlags::TX_L4_CKSUM;
    for (asked, marked) in [(both, true), (OlFlags::TX_L4_CKSUM, false), (OlFlags::empty(), false)] {
        let mut m = rig.mbuf(&FrameSpec::udp(ip, 1, 2).build(b"payload"));
        m.set_flags(asked);
        rig.tx(0, &mut vec![m]);
        let mut out = Vec::new();
        assert_eq!(rig.wire.take_tx(&mut out, 8), 1);
        assert_eq!(out[0].flags().contains(OlFlags::CKSUM_FILLED), marked, "asked {asked:?}");
    }
    rig.finish();

    for checksum in [true, false] {
        let mut conf = PortConf::new(1);
        conf.rx_offloads = if checksum { RxOffloads::CHECKSUM } else { RxOffloads::empty() };
        let mut rig = Rig::new(conf);
        let mut bad = tcp_to_port(ip, 1, 2).build(b"hello");
        *bad.last_mut().unwrap() ^= 0xff;
        let (mut marked, unmarked) = (rig.mbuf(&bad), rig.mbuf(&bad));
        marked.set_flags(OlFlags::CKSUM_FILLED);
        rig.wire.put_rx(&mut vec![marked, unmarked]);
        let flags: Vec<OlFlags> = rig.drain(0).iter().map(|m| m.flags() - OlFlags::RX_RSS_HASH).collect();
        let expected = if checksum {
            vec![
                OlFlags::RX_IP_CKSUM_GOOD | OlFlags::RX_L4_CKSUM_GOOD,
                OlFlags::RX_IP_CKSUM_GOOD | OlFlags::RX_L4_CKSUM_BAD,
            ]
        } else {
            vec![OlFlags::empty(); 2]
        };
        assert_eq!(flags, expected, "checksum offload {checksum}");
        rig.finish();
    }
}

#[test]
fn mtu_is_enforced_both_ways() {
    let mut rig = Rig::new(PortConf::new(1));
    let ip = v4([10, 0, 0, 1], [10, 0, 0, 2]);
    let fits = tcp_to_port(ip, 1, 2).build(&[0; 1460]);
    let too_big = tcp_to_port(ip, 1, 2).build(&[0; 1461]);
    rig.inject(&[fits.clone(), too_big.clone()]);
    assert_eq!(rig.drain(0).len(), 1);
    assert_eq!(rig.drop_count("rx_drop_oversize"), 1);
    let mut burst = vec![rig.mbuf(&fits), rig.mbuf(&too_big)];
    rig.tx(0, &mut burst);
    let mut out = Vec::new();
    assert_eq!(rig.wire.take_tx(&mut out, 8), 1);
    assert_eq!(rig.drop_count("tx_drop_oversize"), 1);
    drop(out);
    rig.finish();
}

#[test]
fn mac_filter_promiscuous_link_and_full_rings_are_counted() {
    let mut conf = PortConf::new(1);
    conf.rx_ring_size = 64;
    let mut rig = Rig::new(conf);
    let ip = v4([10, 0, 0, 1], [10, 0, 0, 2]);
    let stranger = FrameSpec::tcp(ip, 1, 2).macs([2, 0, 0, 0, 0, 1], [2, 9, 9, 9, 9, 9]).build(b"");
    let broadcast = FrameSpec::tcp(ip, 1, 2).macs([2, 0, 0, 0, 0, 1], [0xff; 6]).build(b"");
    rig.inject(&[stranger.clone(), broadcast]);
    assert_eq!((rig.drain(0).len(), rig.drop_count("rx_drop_mac_filter")), (1, 1));
    rig.port.set_promiscuous(true).unwrap();
    rig.inject(std::slice::from_ref(&stranger));
    assert_eq!(rig.drain(0).len(), 1);
    rig.port.set_link(false).unwrap();
    rig.inject(std::slice::from_ref(&stranger));
    assert!(!rig.wire.link_up());
    assert_eq!(rig.drop_count("rx_drop_link_down"), 1);
    assert_eq!(rig.tx(0, &mut vec![rig.mbuf(&stranger)]), 0, "no transmit while down");
    rig.port.set_link(true).unwrap();
    rig.inject(&vec![stranger; 100]);
    assert_eq!(rig.port.stats().unwrap().imissed, 36);
    assert_eq!(rig.drain(0).len(), 64);
    rig.finish();
}

#[test]
fn invalid_configuration_names_the_field() {
    let (port, _wire) = Veth::new("v", MAC, Mempool::new(MempoolConfig::new("p", 8)).unwrap());
    let field = |conf: PortConf| match port.configure(&conf) {
        Err(DevError::Config(e)) => e.field,
        other => panic!("expected a config error, got {other:?}"),
    };
    assert_eq!(field(PortConf { rx_queues: 0, ..PortConf::new(1) }), "rx_queues");
    assert_eq!(field(PortConf { tx_queues: 65, ..PortConf::new(1) }), "tx_queues");
    assert_eq!(field(PortConf { rx_ring_size: 1000, ..PortConf::new(1) }), "rx_ring_size");
    assert_eq!(field(PortConf { reta_size: 100, ..PortConf::new(1) }), "reta_size");
    assert_eq!(field(PortConf { mtu: 20, ..PortConf::new(1) }), "mtu");
    assert_eq!(RssKey::new(&[0; 39]).unwrap_err().field, "rss.key");
    port.configure(&PortConf::new(4)).unwrap();
    let bad_reta = Reta::from_entries(vec![9; 128], 16).unwrap();
    match port.reta_update(bad_reta) {
        Err(DevError::Config(e)) => assert_eq!(e.field, "rss.reta"),
        other => panic!("expected a RETA error, got {other:?}"),
    }
    port.start().unwrap();
    assert!(matches!(port.configure(&PortConf::new(2)), Err(DevError::State { .. })));
}

#[test]
fn reta_update_moves_flows() {
    let mut rig = Rig::new(PortConf::new(4));
    rig.port.reta_update(Reta::from_entries(vec![2; 64], 4).unwrap()).unwrap();
    let frames: Vec<Vec<u8>> =
        (0..50u16).map(|i| tcp_to_port(v4([1, 2, 3, 4], [5, 6, 7, 8]), i, 80).build(b"")).collect();
    rig.inject(&frames);
    assert_eq!(rig.drain(2).len(), 50);
    rig.finish();
}

#[test]
fn cable_joins_two_ports() {
    let pool = Mempool::new(MempoolConfig::new("cable", 64)).unwrap();
    let (a, wa) = Veth::new("a", [2, 0, 0, 0, 0, 1], pool.clone());
    let (b, wb) = Veth::new("b", MAC, pool.clone());
    for p in [&a, &b] {
        p.configure(&PortConf::new(1)).unwrap();
        p.start().unwrap();
    }
    let mut cable = Cable::new(wa, wb);
    let mut m = pool.alloc(Owner::NONE).unwrap();
    tcp_to_port(v4([1, 1, 1, 1], [2, 2, 2, 2]), 1, 2).write_to(b"over the cable", &mut m);
    a.tx_queue(0).unwrap().tx_burst(&mut vec![m]);
    assert_eq!(cable.pump(32), 1);
    let mut got = Vec::new();
    b.rx_queue(0).unwrap().rx_burst(&mut got, 8);
    assert!(got[0].data().ends_with(b"over the cable"));
    drop((got, cable));
    a.check_accounting().unwrap();
    b.check_accounting().unwrap();
    assert_eq!(pool.in_use(), 0);
}

proptest! {
    #[test]
    fn garbage_frames_never_panic_and_accounting_closes(frames in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..200), 1..64)) {
        let mut conf = PortConf::new(4);
        conf.rx_offloads = RxOffloads::CHECKSUM;
        let mut rig = Rig::new(conf);
        rig.port.set_promiscuous(true).unwrap();
        rig.inject(&frames);
        let short = frames.iter().filter(|f| f.len() < 14).count() as u64;
        prop_assert!(rig.drop_count("rx_drop_malformed") >= short);
        let delivered: usize = (0..4).map(|q| rig.drain(q).len()).sum();
        let dropped: u64 = DropReason::ALL.iter().map(|r| rig.drop_count(&format!("rx_drop_{}", r.name()))).sum();
        prop_assert_eq!(delivered as u64 + dropped, frames.len() as u64);
        rig.finish();
    }

    /// Super-frames of any content and segment size, with or without
    /// large receive offload: no panic, and every frame is delivered (whole
    /// or as the segments cut from it) or counted as a drop.
    #[test]
    fn garbage_super_frames_never_panic_and_accounting_closes(
        frames in prop::collection::vec((prop::collection::vec(any::<u8>(), 0..3000), any::<u16>()), 1..16),
        lro: bool,
    ) {
        let conf = PortConf { rx_offloads: if lro { RxOffloads::TCP_LRO } else { RxOffloads::empty() }, ..PortConf::new(2) };
        let mut rig = Rig::with_pool(conf, MempoolConfig::new("garbage-super", 256).data_room(4096));
        rig.port.set_promiscuous(true).unwrap();
        let mut burst: Vec<Mbuf> = frames.iter().map(|(frame, segsz)| {
            let mut m = rig.mbuf(frame);
            m.set_flags(OlFlags::TX_TCP_SEG);
            m.request_tso(*segsz);
            m
        }).collect();
        rig.wire.put_rx(&mut burst);
        let delivered: usize = (0..2).map(|q| rig.drain(q).len()).sum();
        let dropped: u64 = DropReason::ALL.iter().map(|r| rig.drop_count(&format!("rx_drop_{}", r.name()))).sum();
        let cut = rig.drop_count("rx_cut_extra_segments");
        prop_assert_eq!(delivered as u64 + dropped, frames.len() as u64 + cut);
        rig.finish();
    }

    /// Plain IPv4 TCP/UDP frames take the fixed-offset parser unless a
    /// receive offload needs the full walk; both paths must place every
    /// frame (and drop every refused one) alike.
    #[test]
    fn fixed_offset_parser_places_frames_like_the_full_walk(
        flows in prop::collection::vec((any::<([u8; 4], [u8; 4], u16, u16)>(), any::<bool>(), 0usize..1600), 1..64),
        mtu in 1000u16..1500,
        promiscuous: bool,
    ) {
        let frames: Vec<Vec<u8>> = flows
            .iter()
            .map(|&((src, dst, sport, dport), tcp, len)| {
                let spec = if tcp { FrameSpec::tcp(v4(src, dst), sport, dport) } else { FrameSpec::udp(v4(src, dst), sport, dport) };
                let to = if len % 3 == 0 { [2, 0, 0, 0, 0, 9] } else { MAC };
                spec.macs([2, 0, 0, 0, 0, 1], to).build(&vec![0; len])
            })
            .collect();
        let placed = |offloads: RxOffloads| {
            let mut conf = PortConf::new(4);
            (conf.rx_offloads, conf.mtu) = (offloads, mtu);
            let mut rig = Rig::new(conf);
            rig.port.set_promiscuous(promiscuous).unwrap();
            rig.inject(&frames);
            let queues: Vec<Vec<(u32, Vec<u8>)>> =
                (0..4).map(|q| rig.drain(q).iter().map(|m| (m.rss_hash(), m.data().to_vec())).collect()).collect();
            let drops: Vec<u64> = DropReason::ALL.iter().map(|r| rig.drop_count(&format!("rx_drop_{}", r.name()))).collect();
            rig.finish();
            (queues, drops)
        };
        prop_assert_eq!(placed(RxOffloads::empty()), placed(RxOffloads::CHECKSUM));
    }
}

/// A burst hook that keeps a copy of every frame with where it was seen.
#[test]
fn burst_hook_sees_wire_and_queue_bursts_exactly() {
    let mut conf = PortConf::new(2);
    conf.tx_ring_size = 64;
    let mut rig = Rig::new(conf.clone()).captured();
    let seen = std::sync::Arc::new(BurstLog::default());
    assert!(rig.port.set_burst_hook(Some(seen.clone())).is_none());
    rig.port.stop().unwrap();
    rig.port.configure(&conf).unwrap();
    rig.port.start().unwrap();
    let ip = v4([10, 0, 0, 1], [10, 0, 0, 2]);
    let frames: Vec<Vec<u8>> = (0..8u16).map(|i| tcp_to_port(ip, 1000 + i, 80).build(b"in")).collect();
    let stranger = FrameSpec::tcp(ip, 1, 2).macs([2, 0, 0, 0, 0, 1], [2, 9, 9, 9, 9, 9]).build(b"");
    let mut offered = frames.clone();
    offered.push(stranger);
    rig.inject(&offered);
    assert_eq!(seen.at(HookPoint::FromWire), offered, "the hook sees frames before the MAC filter drops one");
    for q in 0..2 {
        let got: Vec<Vec<u8>> = rig.drain(q).iter().map(|m| m.data().to_vec()).collect();
        assert_eq!(seen.at(HookPoint::RxQueue(q)), got);
    }
    let out: Vec<Vec<u8>> = (0..100u16).map(|i| tcp_to_port(ip, i, 80).build(b"out")).collect();
    let mut burst: Vec<Mbuf> = out.iter().map(|f| rig.mbuf(f)).collect();
    assert_eq!(rig.tx(1, &mut burst), 64);
    assert_eq!(seen.at(HookPoint::TxQueue(1)), out[..64], "only the frames the ring took");
    assert_eq!(burst.len(), 36);
    drop(burst);
    let mut sent = Vec::new();
    while rig.wire.take_tx(&mut sent, 16) > 0 {}
    assert_eq!(seen.at(HookPoint::ToWire), out[..64]);
    drop(sent);
    let before = seen.len();
    assert!(rig.port.set_burst_hook(None).is_some());
    rig.inject(&frames);
    assert_eq!(seen.len(), before, "a removed hook sees nothing");
    rig.finish();
}

#[test]
fn a_transmit_handle_from_before_a_reconfiguration_is_inert() {
    let mut conf = PortConf::new(1);
    let rig = Rig::new(conf.clone());
    let mut stale = rig.port.tx_queue(0).unwrap();
    rig.port.stop().unwrap();
    let stopped = rig.mbuf(&tcp_to_port(v4([10, 0, 0, 1], [10, 0, 0, 2]), 1, 80).build(b"x"));
    assert_eq!(stale.tx_burst(&mut vec![stopped]), 0, "no transmit while stopped");
    conf.tx_ring_size = 64;
    rig.port.configure(&conf).unwrap();
    rig.port.start().unwrap();
    let frame = tcp_to_port(v4([10, 0, 0, 1], [10, 0, 0, 2]), 1, 80).build(b"x");
    let mut burst = vec![rig.mbuf(&frame)];
    assert_eq!(stale.free_count(), 0, "its old ring is no longer the port's");
    assert_eq!(stale.tx_burst(&mut burst), 0, "so it takes nothing");
    assert_eq!(rig.tx(0, &mut burst), 1, "a handle taken after configure sends");
    assert!(rig.port.rx_queue(1).is_err(), "no such queue");
    drop(stale);
    rig.finish();
}

/// A TSO sender and a receiver (large receive offload if `lro`) joined by
/// a cable whose sender end sends super-frames; `segsz` is the sender's
/// segment size.
struct SuperPair {
    pool: Mempool,
    sender: VethPort,
    receiver: VethPort,
    cable: Cable<VethWire, VethWire>,
}

impl SuperPair {
    fn new(lro: bool) -> SuperPair {
        let pool = Mempool::new(MempoolConfig::new("super", 256).data_room(16384)).unwrap();
        let (sender, mut sender_wire) = Veth::new("tx", [2, 0, 0, 0, 0, 1], pool.clone());
        let (receiver, receiver_wire) = Veth::new("rx", MAC, pool.clone());
        sender_wire.send_super_frames(true);
        let mut conf = PortConf::new(1);
        conf.tx_offloads = TxOffloads::all();
        sender.configure(&conf).unwrap();
        conf.rx_offloads = if lro { RxOffloads::TCP_LRO } else { RxOffloads::empty() };
        receiver.configure(&conf).unwrap();
        for p in [&sender, &receiver] {
            p.start().unwrap();
        }
        SuperPair { pool, sender, receiver, cable: Cable::new(sender_wire, receiver_wire) }
    }

    /// Sends `payload` as one TSO request cut at `segsz` (PSH and FIN set),
    /// moves it across and returns the wire frame count and what arrived.
    fn send(&mut self, ip: IpAddrs, payload: &[u8], segsz: u16) -> (usize, Vec<Mbuf>) {
        let mut frame = tcp_to_port(ip, 4000, 5000).build(payload);
        let l4 = if matches!(ip, IpAddrs::V4 { .. }) { 14 + 20 } else { 14 + 40 };
        frame[l4 + 13] |= 0x09;
        let mut big = self.pool.alloc(Owner::NONE).unwrap();
        assert!(big.extend_from_slice(&frame));
        big.set_flags(OlFlags::TX_L4_CKSUM);
        big.request_tso(segsz);
        assert_eq!(self.sender.tx_queue(0).unwrap().tx_burst(&mut vec![big]), 1);
        let moved = self.cable.pump(32);
        let mut got = Vec::new();
        self.receiver.rx_queue(0).unwrap().rx_burst(&mut got, 64);
        (moved, got)
    }

    fn xstat(port: &VethPort, name: &str) -> u64 {
        port.xstats().unwrap().into_iter().find(|x| x.name == name).map(|x| x.value).unwrap()
    }

    fn finish(self, got: Vec<Mbuf>) {
        drop(got);
        self.sender.check_accounting().unwrap();
        self.receiver.check_accounting().unwrap();
        drop(self.cable);
        assert_eq!(self.pool.in_use(), 0, "buffers leaked");
    }
}

/// Checks a received TCP frame's IP and TCP checksums and returns its
/// sequence number offset (from 1), payload, PSH and FIN.
fn checked_tcp(frame: &[u8]) -> (usize, Vec<u8>, bool, bool) {
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};
    let parsed = SlicedPacket::from_ethernet(frame).unwrap();
    let Some(TransportSlice::Tcp(tcp)) = parsed.transport else { panic!("not TCP") };
    let data = tcp.payload();
    let checksum = match &parsed.net {
        Some(NetSlice::Ipv4(v4)) => {
            assert_eq!(v4.header().header_checksum(), v4.header().to_header().calc_header_checksum());
            assert_eq!(v4.header().total_len() as usize, frame.len() - 14);
            tcp.to_header().calc_checksum_ipv4(&v4.header().to_header(), data).unwrap()
        }
        Some(NetSlice::Ipv6(v6)) => tcp.to_header().calc_checksum_ipv6(&v6.header().to_header(), data).unwrap(),
        _ => panic!("no IP header"),
    };
    assert_eq!(tcp.checksum(), checksum, "TCP checksum");
    (tcp.sequence_number().wrapping_sub(1) as usize, data.to_vec(), tcp.psh(), tcp.fin())
}

#[rstest]
#[case::ipv4(v4([10, 0, 0, 1], [10, 0, 0, 2]), 1460)]
#[case::ipv6(IpAddrs::V6 { src: [0xfd; 16], dst: [0xfe; 16] }, 1440)]
fn a_super_frame_crosses_whole_and_lro_takes_it_whole(#[case] ip: IpAddrs, #[case] segsz: u16) {
    let payload: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let segments = payload.len().div_ceil(segsz as usize) as u64;
    let mut pair = SuperPair::new(true);
    let (moved, got) = pair.send(ip, &payload, segsz);
    assert_eq!((moved, got.len()), (1, 1), "one frame on the wire, one up the queue");
    let frame = &got[0];
    assert!(frame.flags().contains(OlFlags::RX_LRO));
    assert!(!frame.flags().intersects(OlFlags::TX_TCP_SEG | OlFlags::TX_L4_CKSUM));
    assert_eq!(frame.tso_segsz(), segsz, "the segment size it stands for");
    assert_eq!(checked_tcp(frame.data()), (0, payload, true, true));
    let (tx, rx) = (pair.sender.stats().unwrap(), pair.receiver.stats().unwrap());
    assert_eq!(tx.opackets, segments, "the sender counts the segments the super-frame stands for");
    assert_eq!(SuperPair::xstat(&pair.sender, "tx_tso_extra_segments"), segments - 1);
    assert_eq!(rx.ipackets, 1);
    pair.finish(got);
}

#[rstest]
#[case::ipv4(v4([10, 0, 0, 1], [10, 0, 0, 2]), 1460)]
#[case::ipv6(IpAddrs::V6 { src: [0xfd; 16], dst: [0xfe; 16] }, 1440)]
fn a_super_frame_is_cut_on_receive_without_lro(#[case] ip: IpAddrs, #[case] segsz: u16) {
    let payload: Vec<u8> = (0..10_000u32).map(|i| (i * 13 % 251) as u8).collect();
    let mut pair = SuperPair::new(false);
    let (moved, got) = pair.send(ip, &payload, segsz);
    assert_eq!(moved, 1, "one frame on the wire");
    assert_eq!(got.len(), payload.len().div_ceil(segsz as usize));
    let mut reassembled = vec![0u8; payload.len()];
    for (i, segment) in got.iter().enumerate() {
        assert!(segment.len() <= 1514 && !segment.flags().intersects(OlFlags::TX_TCP_SEG | OlFlags::RX_LRO));
        let (offset, data, psh, fin) = checked_tcp(segment.data());
        let last = i + 1 == got.len();
        assert_eq!((psh, fin), (last, last), "PSH and FIN only on the last segment");
        reassembled[offset..offset + data.len()].copy_from_slice(&data);
    }
    assert_eq!(reassembled, payload);
    assert_eq!(SuperPair::xstat(&pair.receiver, "rx_cut_extra_segments"), got.len() as u64 - 1);
    pair.finish(got);
}

/// Super-frames a receiver cannot honour are counted drops, whole or cut:
/// not TCP, no segment size, segments above its MTU, a TCP header cut
/// or IP header cut short (an offload it cannot apply), an Ethernet header
/// cut short (malformed).
#[rstest]
fn bad_super_frames_are_counted_drops(#[values(true, false)] lro: bool) {
    let conf =
        PortConf { rx_offloads: if lro { RxOffloads::TCP_LRO } else { RxOffloads::empty() }, ..PortConf::new(1) };
    let mut rig = Rig::with_pool(conf, MempoolConfig::new("bad-super", 64).data_room(16384));
    let ip = v4([10, 0, 0, 1], [10, 0, 0, 2]);
    let tcp = tcp_to_port(ip, 1, 2).build(&[7; 4000]);
    let udp = FrameSpec::udp(ip, 1, 2).macs([2, 0, 0, 0, 0, 1], MAC).build(&[7; 4000]);
    let cases: [(&[u8], u16, &str); 5] = [
        (&udp, 1000, "rx_drop_bad_offload"),
        (&tcp, 0, "rx_drop_bad_offload"),
        (&tcp, 3000, "rx_drop_oversize"),
        (&tcp[..40], 1000, "rx_drop_bad_offload"),
        (&tcp[..10], 1000, "rx_drop_malformed"),
    ];
    for (frame, segsz, counter) in cases {
        let before = rig.drop_count(counter);
        let mut m = rig.mbuf(frame);
        m.set_flags(OlFlags::TX_TCP_SEG);
        m.request_tso(segsz);
        rig.wire.put_rx(&mut vec![m]);
        assert_eq!(rig.drop_count(counter), before + 1, "{counter} for segsz {segsz}, {} bytes", frame.len());
    }
    assert!(rig.drain(0).is_empty());
    rig.finish();
}

/// A plain veth has no hairpin: a frame asking to loop back is dropped and
/// counted as a bad offload, never sent to the wire.
#[test]
fn a_loopback_request_is_a_counted_drop_on_a_plain_veth() {
    let mut rig = Rig::new(PortConf::new(1));
    let frame = FrameSpec::udp(IpAddrs::V4 { src: [10, 0, 0, 1], dst: [10, 0, 0, 2] }, 1, 2).build(b"x");
    let mut m = rig.mbuf(&frame);
    m.set_flags(OlFlags::TX_LOOPBACK);
    assert_eq!(rig.tx(0, &mut vec![m]), 1);
    assert_eq!(rig.wire.take_tx(&mut Vec::new(), 64), 0);
    assert_eq!(rig.drop_count("tx_drop_bad_offload"), 1);
    rig.port.check_accounting().unwrap();
    assert_eq!(rig.pool.in_use(), 0);
}

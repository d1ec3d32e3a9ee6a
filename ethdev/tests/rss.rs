//! Software RSS against the published Toeplitz vectors and against itself.
//!
//! The Microsoft verification vectors (DESIGN §5) pin the hash definition,
//! the input layout and the default key; property tests then hold the
//! table-driven fast path, the tuple shortcuts and the frame path to the
//! bit-serial reference for arbitrary keys and inputs.

use std::net::{IpAddr, SocketAddr};

use ethdev::packet::{IpAddrs, Ipv4Flow, PacketMeta};
use ethdev::rss::{hash_input, toeplitz, Reta, RssConf, RssHashTypes, RssKey, Toeplitz};
use etherparse::PacketBuilder;
use proptest::collection::vec;
use proptest::prelude::*;
use rstest::rstest;

/// The input layout: source IP, destination IP, then (optionally) source
/// and destination port, all network byte order.
fn tuple_bytes(src: SocketAddr, dst: SocketAddr, with_ports: bool) -> Vec<u8> {
    let mut bytes = ip_bytes(src.ip());
    bytes.extend(ip_bytes(dst.ip()));
    if with_ports {
        bytes.extend(src.port().to_be_bytes());
        bytes.extend(dst.port().to_be_bytes());
    }
    bytes
}

fn ip_bytes(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    }
}

fn ip_addrs(src: SocketAddr, dst: SocketAddr) -> IpAddrs {
    match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => IpAddrs::V4 { src: s.octets(), dst: d.octets() },
        (IpAddr::V6(s), IpAddr::V6(d)) => IpAddrs::V6 { src: s.octets(), dst: d.octets() },
        _ => panic!("mixed address families"),
    }
}

/// The hash of a tuple through the `hash_v4` / `hash_v6` shortcuts.
fn tuple_hash(toeplitz: &Toeplitz, ip: IpAddrs, ports: Option<(u16, u16)>) -> u32 {
    match ip {
        IpAddrs::V4 { src, dst } => toeplitz.hash_v4(src, dst, ports),
        IpAddrs::V6 { src, dst } => toeplitz.hash_v6(src, dst, ports),
    }
}

/// An Ethernet frame from `src` to `dst`, TCP or UDP, parsed.
fn frame_meta(src: SocketAddr, dst: SocketAddr, tcp: bool) -> PacketMeta {
    let eth = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
    let ip = match ip_addrs(src, dst) {
        IpAddrs::V4 { src, dst } => eth.ipv4(src, dst, 64),
        IpAddrs::V6 { src, dst } => eth.ipv6(src, dst, 64),
    };
    let mut frame = Vec::new();
    let written = if tcp {
        ip.tcp(src.port(), dst.port(), 1, 1024).write(&mut frame, b"payload")
    } else {
        ip.udp(src.port(), dst.port()).write(&mut frame, b"payload")
    };
    written.expect("serialisable");
    PacketMeta::parse(&frame).expect("whole frame")
}

/// Checks one Microsoft vector on every path: reference, byte-string fast
/// path, tuple shortcuts, and a parsed TCP and UDP frame.
#[rstest]
#[case::v4_1("161.142.100.80:1766", "66.9.149.187:2794", 0x323e8fc2, 0x51ccc178)]
#[case::v4_2("65.69.140.83:4739", "199.92.111.2:14230", 0xd718262a, 0xc626b0ea)]
#[case::v4_3("12.22.207.184:38024", "24.19.198.95:12898", 0xd2d0a5de, 0x5c2b394a)]
#[case::v4_4("209.142.163.6:2217", "38.27.205.30:48228", 0x82989176, 0xafc7327f)]
#[case::v4_5("202.188.127.2:1303", "153.39.163.191:44251", 0x5d1809c5, 0x10e828a2)]
#[case::v6_1("[3ffe:2501:200:3::1]:1766", "[3ffe:2501:200:1fff::7]:2794", 0x2cc18cd5, 0x40207d3d)]
#[case::v6_2("[ff02::1]:4739", "[3ffe:501:8::260:97ff:fe40:efab]:14230", 0x0f0c461c, 0xdde51bbf)]
#[case::v6_3("[fe80::200:f8ff:fe21:67cf]:38024", "[3ffe:1900:4545:3:200:f8ff:fe21:67cf]:44251", 0x4b61e985, 0x02d1feef)]
fn microsoft_vector(#[case] dst: SocketAddr, #[case] src: SocketAddr, #[case] ip_only: u32, #[case] with_ports: u32) {
    let key = RssKey::DEFAULT;
    let fast = Toeplitz::new(&key);
    for (ports, expected) in [(false, ip_only), (true, with_ports)] {
        let input = tuple_bytes(src, dst, ports);
        assert_eq!(toeplitz::reference(&key, &input), expected, "reference, ports={ports}");
        assert_eq!(fast.hash(&input), expected, "fast path, ports={ports}");
        let tuple_ports = ports.then_some((src.port(), dst.port()));
        assert_eq!(tuple_hash(&fast, ip_addrs(src, dst), tuple_ports), expected, "tuple");
    }
    for tcp in [true, false] {
        let meta = frame_meta(src, dst, tcp);
        assert_eq!(fast.hash_meta(&meta, RssHashTypes::all()), Some(with_ports), "tcp={tcp}");
        let ip_types = RssHashTypes::IPV4 | RssHashTypes::IPV6;
        assert_eq!(fast.hash_meta(&meta, ip_types), Some(ip_only), "tcp={tcp}");
    }
}

#[test]
fn conf_sends_a_vector_frame_to_its_reta_queue() {
    let conf = RssConf::new(4).expect("valid conf");
    let src = "66.9.149.187:2794".parse().expect("literal");
    let dst = "161.142.100.80:1766".parse().expect("literal");
    let meta = frame_meta(src, dst, true);
    let queue = ((0x51ccc178 & 127) % 4) as u16;
    assert_eq!(conf.queue_for(&meta), Some((0x51ccc178, queue)));
}

#[test]
fn conf_does_not_hash_disabled_types() {
    let mut conf = RssConf::new(4).expect("valid conf");
    conf.set_types(RssHashTypes::IPV6 | RssHashTypes::IPV6_TCP);
    let src = "66.9.149.187:2794".parse().expect("literal");
    let dst = "161.142.100.80:1766".parse().expect("literal");
    assert_eq!(conf.queue_for(&frame_meta(src, dst, true)), None);
}

#[rstest]
#[case::size_zero(0)]
#[case::size_not_power_of_two(100)]
#[case::size_too_small(32)]
#[case::size_too_large(1024)]
fn bad_reta_size_names_its_field(#[case] size: usize) {
    let error = Reta::new(size, 4).expect_err("bad size");
    assert_eq!(error.field, "rss.reta_size");
    assert!(error.reason.contains(&size.to_string()), "{error}");
    let error = Reta::from_entries(vec![0; size], 4).expect_err("bad size");
    assert_eq!(error.field, "rss.reta_size");
}

#[test]
fn reta_entry_naming_a_missing_queue_names_its_index() {
    let mut entries = vec![0u16; 64];
    entries[17] = 4;
    let error = Reta::from_entries(entries, 4).expect_err("queue 4 of 4");
    assert_eq!(error.field, "rss.reta");
    assert!(error.reason.contains("entry 17"), "{error}");
}

#[rstest]
#[case::index_past_end(64, 0)]
#[case::queue_missing(3, 4)]
fn bad_reta_update_is_refused(#[case] index: usize, #[case] queue: u16) {
    let mut reta = Reta::new(64, 4).expect("valid table");
    let before = reta.clone();
    let error = reta.update(index, queue).expect_err("bad update");
    assert_eq!(error.field, "rss.reta");
    assert!(error.reason.contains(&index.to_string()), "{error}");
    assert_eq!(reta, before);
}

#[test]
fn default_reta_is_round_robin() {
    let reta = Reta::new(128, 3).expect("valid table");
    assert!(reta.entries().iter().enumerate().all(|(i, &q)| usize::from(q) == i % 3));
    assert_eq!(reta.queue(130), 2);
}

fn any_key() -> impl Strategy<Value = RssKey> {
    prop_oneof![vec(any::<u8>(), 40), vec(any::<u8>(), 52)].prop_map(|bytes| RssKey::new(&bytes).expect("valid length"))
}

fn any_ip() -> impl Strategy<Value = IpAddrs> {
    prop_oneof![
        any::<([u8; 4], [u8; 4])>().prop_map(|(src, dst)| IpAddrs::V4 { src, dst }),
        any::<([u8; 16], [u8; 16])>().prop_map(|(src, dst)| IpAddrs::V6 { src, dst }),
    ]
}

/// The hash input laid out by hand, independently of `hash_input`.
fn layout(ip: IpAddrs, ports: Option<(u16, u16)>) -> Vec<u8> {
    let mut bytes = match ip {
        IpAddrs::V4 { src, dst } => [&src[..], &dst[..]].concat(),
        IpAddrs::V6 { src, dst } => [&src[..], &dst[..]].concat(),
    };
    if let Some((src, dst)) = ports {
        bytes.extend(src.to_be_bytes());
        bytes.extend(dst.to_be_bytes());
    }
    bytes
}

fn reversed(ip: IpAddrs) -> IpAddrs {
    match ip {
        IpAddrs::V4 { src, dst } => IpAddrs::V4 { src: dst, dst: src },
        IpAddrs::V6 { src, dst } => IpAddrs::V6 { src: dst, dst: src },
    }
}

prop_compose! {
    fn any_meta()(
        ip in proptest::option::weighted(0.9, any_ip()),
        proto in prop::sample::select(vec![6u8, 17, 1, 132]),
        ports in proptest::option::of(any::<(u16, u16)>()),
    ) -> PacketMeta {
        PacketMeta {
            dst_mac: [0; 6],
            src_mac: [0; 6],
            vlan: None,
            ether_type: 0x0800,
            l3_offset: 14,
            ip,
            ip_proto: ip.map(|_| proto),
            fragment: ports.is_none(),
            l4_offset: 34,
            ports,
            tcp_flags: 0,
        }
    }
}

proptest! {
    #[test]
    fn fast_path_equals_reference(key in any_key(), input in vec(any::<u8>(), 0..=60)) {
        prop_assert_eq!(Toeplitz::new(&key).hash(&input), toeplitz::reference(&key, &input));
    }

    #[test]
    fn tuple_shortcuts_equal_reference(
        key in any_key(),
        ip in any_ip(),
        ports in proptest::option::of(any::<(u16, u16)>()),
    ) {
        let expected = toeplitz::reference(&key, &layout(ip, ports));
        prop_assert_eq!(tuple_hash(&Toeplitz::new(&key), ip, ports), expected);
    }

    #[test]
    fn hash_meta_equals_hash_of_hash_input(
        key in any_key(),
        meta in any_meta(),
        types in any::<u32>().prop_map(RssHashTypes::from_bits_truncate),
    ) {
        let fast = Toeplitz::new(&key);
        let via_input = hash_input(&meta, types).map(|input| {
            toeplitz::reference(&key, input.as_bytes())
        });
        prop_assert_eq!(fast.hash_meta(&meta, types), via_input);
        if let (Some(input), Some(ip)) = (hash_input(&meta, types), meta.ip) {
            let with_ports = matches!(input.as_bytes().len(), 12 | 36);
            let ports = meta.ports.filter(|_| with_ports);
            prop_assert_eq!(input.as_bytes(), &layout(ip, ports)[..]);
        }
    }

    #[test]
    fn symmetric_key_hashes_both_directions_alike(
        len in prop::sample::select(vec![40usize, 52]),
        ip in any_ip(),
        ports in proptest::option::of(any::<(u16, u16)>()),
    ) {
        let key = RssKey::symmetric(len).expect("valid length");
        let fast = Toeplitz::new(&key);
        let back_ports = ports.map(|(src, dst)| (dst, src));
        prop_assert_eq!(tuple_hash(&fast, ip, ports), tuple_hash(&fast, reversed(ip), back_ports));
        prop_assert_eq!(
            toeplitz::reference(&key, &layout(ip, ports)),
            toeplitz::reference(&key, &layout(reversed(ip), back_ports))
        );
    }

    #[test]
    fn queue_is_a_configured_queue(nb_queues in 1u16..64, meta in any_meta()) {
        let conf = RssConf::new(nb_queues).expect("valid conf");
        if let Some((hash, queue)) = conf.queue_for(&meta) {
            prop_assert!(queue < nb_queues);
            prop_assert_eq!(queue, conf.reta().queue(hash));
        }
    }

    #[test]
    fn ipv4_flow_goes_where_its_parsed_frame_goes(
        key in any_key(),
        types in any::<u32>().prop_map(RssHashTypes::from_bits_truncate),
        (src, dst) in any::<([u8; 4], [u8; 4])>(),
        ports in any::<(u16, u16)>(),
        tcp: bool,
    ) {
        let ip = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]).ipv4(src, dst, 64);
        let mut frame = Vec::new();
        let written = match tcp {
            true => ip.tcp(ports.0, ports.1, 1, 1024).write(&mut frame, b"payload"),
            false => ip.udp(ports.0, ports.1).write(&mut frame, b"payload"),
        };
        written.expect("serialisable");
        let conf = RssConf::from_parts(key, types, Reta::new(128, 4).expect("valid reta"));
        let flow = Ipv4Flow::parse(&frame).expect("plain IPv4 frame");
        let meta = PacketMeta::parse(&frame).expect("whole frame");
        prop_assert_eq!(conf.queue_for_ipv4(&flow), conf.queue_for(&meta));
    }
}

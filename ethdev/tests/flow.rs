//! Behaviour of `ethdev::flow`: rte_flow-like rules classifying parsed frames.

use ethdev::error::FlowErrorCause;
use ethdev::flow::{
    EthItem, Fate, FlowAction, FlowAttr, FlowCounters, FlowItem, FlowTable, Ipv4Item, Ipv6Item, ItemSpec, TcpItem,
    UdpItem, Verdict, VlanItem,
};
use ethdev::packet::{IpAddrs, PacketMeta};
use ethdev::rss::RssHashTypes;
use etherparse::{PacketBuilder, VlanId};
use proptest::prelude::*;
use rstest::rstest;

const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0b];
const V6_A: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0a];
const V6_B: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0x0b];
const QUEUES: u16 = 8;
const TCP: u8 = 6;
const UDP: u8 = 17;

// ---------------------------------------------------------------- helpers

fn ipv4_meta(src: [u8; 4], dst: [u8; 4], proto: u8, ports: Option<(u16, u16)>) -> PacketMeta {
    PacketMeta {
        dst_mac: MAC_B,
        src_mac: MAC_A,
        vlan: None,
        ether_type: 0x0800,
        l3_offset: 14,
        ip: Some(IpAddrs::V4 { src, dst }),
        ip_proto: Some(proto),
        fragment: false,
        l4_offset: 34,
        ports,
        tcp_flags: if proto == TCP { 0x02 } else { 0 },
    }
}

fn tcp4(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16) -> PacketMeta {
    ipv4_meta(src, dst, TCP, Some((sport, dport)))
}

fn udp4(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16) -> PacketMeta {
    ipv4_meta(src, dst, UDP, Some((sport, dport)))
}

fn ip6(src: [u8; 16], dst: [u8; 16], proto: u8, ports: (u16, u16)) -> PacketMeta {
    PacketMeta {
        ether_type: 0x86dd,
        ip: Some(IpAddrs::V6 { src, dst }),
        l4_offset: 54,
        ..ipv4_meta([0; 4], [0; 4], proto, Some(ports))
    }
}

fn arp() -> PacketMeta {
    PacketMeta {
        dst_mac: [0xff; 6],
        ether_type: 0x0806,
        ip: None,
        ip_proto: None,
        ports: None,
        tcp_flags: 0,
        ..tcp4([0; 4], 0, [0; 4], 0)
    }
}

fn ipv4(src: [u8; 4], dst: [u8; 4]) -> FlowItem {
    FlowItem::Ipv4(ItemSpec::new(Ipv4Item { src, dst, proto: 0 }))
}

fn tcp_dst(dst_port: u16) -> FlowItem {
    FlowItem::Tcp(
        ItemSpec::new(TcpItem { dst_port, ..TcpItem::default() })
            .with_mask(TcpItem { dst_port: 0xffff, ..TcpItem::default() }),
    )
}

fn udp_dst(dst_port: u16) -> FlowItem {
    FlowItem::Udp(
        ItemSpec::new(UdpItem { dst_port, ..UdpItem::default() })
            .with_mask(UdpItem { dst_port: 0xffff, ..UdpItem::default() }),
    )
}

/// A table with one rule steering `pattern` to queue 1.
fn table_with(pattern: &[FlowItem]) -> FlowTable {
    let mut table = FlowTable::new();
    let created = table.create(&FlowAttr::ingress(0), pattern, &[FlowAction::Queue(1)], QUEUES);
    assert!(created.is_ok(), "rule refused: {created:?}");
    table
}

fn steered(table: &FlowTable, meta: &PacketMeta) -> bool {
    table.classify(meta, 64).fate == Fate::Queue(1)
}

fn matches(pattern: &[FlowItem], meta: &PacketMeta) -> bool {
    steered(&table_with(pattern), meta)
}

fn parse(frame: &[u8]) -> PacketMeta {
    PacketMeta::parse(frame).expect("test frames have an Ethernet header")
}

fn tcp4_frame(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16) -> Vec<u8> {
    let builder = PacketBuilder::ethernet2(MAC_A, MAC_B).ipv4(src, dst, 64).tcp(sport, dport, 1, 1024).syn();
    let mut frame = Vec::with_capacity(builder.size(4));
    builder.write(&mut frame, b"ping").expect("writing to a Vec cannot fail");
    frame
}

fn udp6_vlan_frame(vid: u16, sport: u16, dport: u16) -> Vec<u8> {
    let vid = VlanId::try_new(vid).expect("test VLAN ids are 12-bit");
    let builder = PacketBuilder::ethernet2(MAC_A, MAC_B).single_vlan(vid).ipv6(V6_A, V6_B, 64).udp(sport, dport);
    let mut frame = Vec::with_capacity(builder.size(16));
    builder.write(&mut frame, &[0u8; 16]).expect("writing to a Vec cannot fail");
    frame
}

// ---------------------------------------------------------- default masks

#[rstest]
#[case::same_addresses(tcp4([10, 0, 0, 1], 1, [10, 0, 0, 2], 2), true)]
#[case::other_source(tcp4([10, 0, 0, 9], 1, [10, 0, 0, 2], 2), false)]
#[case::other_destination(tcp4([10, 0, 0, 1], 1, [10, 0, 0, 3], 2), false)]
#[case::proto_not_in_default_mask(udp4([10, 0, 0, 1], 1, [10, 0, 0, 2], 2), true)]
#[case::not_ipv4(ip6(V6_A, V6_B, TCP, (1, 2)), false)]
#[case::not_ip(arp(), false)]
fn ipv4_default_mask_is_both_addresses(#[case] meta: PacketMeta, #[case] expected: bool) {
    let item = FlowItem::Ipv4(ItemSpec::new(Ipv4Item { src: [10, 0, 0, 1], dst: [10, 0, 0, 2], proto: UDP }));
    assert_eq!(matches(&[item], &meta), expected);
}

#[rstest]
#[case::same_macs(MAC_A, MAC_B, true)]
#[case::other_source(MAC_B, MAC_B, false)]
#[case::other_destination(MAC_A, MAC_A, false)]
fn eth_default_mask_is_both_addresses_not_the_type(#[case] src: [u8; 6], #[case] dst: [u8; 6], #[case] expected: bool) {
    let item = FlowItem::Eth(ItemSpec::new(EthItem { dst: MAC_B, src: MAC_A, ether_type: 0x86dd }));
    let meta = PacketMeta { src_mac: src, dst_mac: dst, ..tcp4([1; 4], 1, [2; 4], 2) };
    assert_eq!(matches(&[item], &meta), expected);
}

#[rstest]
#[case::both_ports(1234, 80, true)]
#[case::other_source_port(1235, 80, false)]
#[case::other_destination_port(1234, 81, false)]
fn tcp_default_mask_is_both_ports_not_the_flags(#[case] sport: u16, #[case] dport: u16, #[case] expected: bool) {
    let item = FlowItem::Tcp(ItemSpec::new(TcpItem { src_port: 1234, dst_port: 80, flags: 0x10 }));
    let meta = tcp4([1; 4], sport, [2; 4], dport);
    assert_eq!(matches(&[item], &meta), expected);
}

#[test]
fn ipv6_default_mask_is_both_addresses() {
    let item = FlowItem::Ipv6(ItemSpec::new(Ipv6Item { src: V6_A, dst: V6_B, proto: 0 }));
    assert!(matches(&[item], &ip6(V6_A, V6_B, UDP, (1, 2))));
    assert!(!matches(&[item], &ip6(V6_B, V6_A, UDP, (1, 2))));
    assert!(!matches(&[item], &tcp4([1; 4], 1, [2; 4], 2)));
}

#[test]
fn vlan_default_mask_is_the_vid() {
    let item = FlowItem::Vlan(ItemSpec::new(VlanItem { vid: 100 }));
    let tagged = |vid| PacketMeta { vlan: Some(vid), ..tcp4([1; 4], 1, [2; 4], 2) };
    assert!(matches(&[item], &tagged(100)));
    assert!(!matches(&[item], &tagged(101)));
    assert!(!matches(&[item], &tcp4([1; 4], 1, [2; 4], 2)), "untagged frames have no VLAN item");
}

// ------------------------------------------------- empty specs, zero masks

#[rstest]
#[case::tcp4(tcp4([1; 4], 1, [2; 4], 2), true)]
#[case::udp4(udp4([1; 4], 1, [2; 4], 2), false)]
#[case::tcp6(ip6(V6_A, V6_B, TCP, (1, 2)), false)]
#[case::arp(arp(), false)]
fn items_without_spec_match_their_protocol(#[case] meta: PacketMeta, #[case] expected: bool) {
    let pattern = [FlowItem::Eth(ItemSpec::ANY), FlowItem::Ipv4(ItemSpec::ANY), FlowItem::Tcp(ItemSpec::ANY)];
    assert_eq!(matches(&pattern, &meta), expected);
}

#[test]
fn lower_layers_may_be_skipped() {
    let pattern = [FlowItem::Udp(ItemSpec::ANY)];
    assert!(matches(&pattern, &udp4([1; 4], 1, [2; 4], 2)));
    assert!(matches(&pattern, &ip6(V6_A, V6_B, UDP, (1, 2))));
    assert!(!matches(&pattern, &tcp4([1; 4], 1, [2; 4], 2)));
}

#[test]
fn empty_pattern_matches_every_frame() {
    let table = table_with(&[]);
    for meta in [arp(), tcp4([1; 4], 1, [2; 4], 2), ip6(V6_A, V6_B, UDP, (1, 2))] {
        assert!(steered(&table, &meta));
    }
}

#[test]
fn zero_mask_matches_any_value() {
    let zero = Ipv4Item::default();
    let item =
        FlowItem::Ipv4(ItemSpec::new(Ipv4Item { src: [10, 0, 0, 1], dst: [10, 0, 0, 2], proto: 1 }).with_mask(zero));
    assert!(matches(&[item], &tcp4([192, 168, 7, 7], 1, [172, 16, 0, 1], 2)));
    assert!(!matches(&[item], &ip6(V6_A, V6_B, TCP, (1, 2))), "still only IPv4");
}

#[test]
fn fragments_match_ip_items_but_not_transport_items() {
    let fragment = PacketMeta { fragment: true, ports: None, tcp_flags: 0, ..tcp4([1; 4], 0, [2; 4], 0) };
    assert!(matches(&[ipv4([1; 4], [2; 4])], &fragment));
    assert!(!matches(&[FlowItem::Tcp(ItemSpec::ANY)], &fragment));
}

// ----------------------------------------------------------- partial masks

#[rstest]
#[case::inside_the_prefix([192, 168, 1, 200], true)]
#[case::first_address([192, 168, 1, 0], true)]
#[case::next_prefix([192, 168, 2, 1], false)]
#[case::other_network([10, 168, 1, 1], false)]
fn ipv4_prefix_mask(#[case] dst: [u8; 4], #[case] expected: bool) {
    let spec = Ipv4Item { dst: [192, 168, 1, 77], ..Ipv4Item::default() };
    let mask = Ipv4Item { dst: [255, 255, 255, 0], ..Ipv4Item::default() };
    let item = FlowItem::Ipv4(ItemSpec::new(spec).with_mask(mask));
    assert_eq!(matches(&[item], &tcp4([9; 4], 1, dst, 2)), expected);
}

#[test]
fn ipv6_prefix_mask() {
    let mut mask = [0u8; 16];
    mask[..6].fill(0xff);
    let item = FlowItem::Ipv6(
        ItemSpec::new(Ipv6Item { src: V6_A, ..Ipv6Item::default() })
            .with_mask(Ipv6Item { src: mask, ..Ipv6Item::default() }),
    );
    assert!(matches(&[item], &ip6(V6_B, V6_A, TCP, (1, 2))), "same /48");
    let mut outside = V6_A;
    outside[5] = 1;
    assert!(!matches(&[item], &ip6(outside, V6_A, TCP, (1, 2))));
}

#[rstest]
#[case::syn(0x02, true)]
#[case::syn_ack(0x12, false)]
#[case::syn_with_ecn(0x42, true)]
#[case::ack(0x10, false)]
fn tcp_flags_mask_selects_bare_syns(#[case] flags: u8, #[case] expected: bool) {
    let item = FlowItem::Tcp(
        ItemSpec::new(TcpItem { flags: 0x02, ..TcpItem::default() })
            .with_mask(TcpItem { flags: 0x12, ..TcpItem::default() }),
    );
    let meta = PacketMeta { tcp_flags: flags, ..tcp4([1; 4], 1, [2; 4], 2) };
    assert_eq!(matches(&[item], &meta), expected);
}

#[test]
fn ether_type_matches_when_masked() {
    let item = FlowItem::Eth(
        ItemSpec::new(EthItem { ether_type: 0x0806, ..EthItem::default() })
            .with_mask(EthItem { ether_type: 0xffff, ..EthItem::default() }),
    );
    assert!(matches(&[item], &arp()));
    assert!(!matches(&[item], &tcp4([1; 4], 1, [2; 4], 2)));
}

// ------------------------------------------------------------------ ranges

#[rstest]
#[case::below(999, false)]
#[case::low_bound(1000, true)]
#[case::inside(1500, true)]
#[case::high_bound(2000, true)]
#[case::above(2001, false)]
fn port_range_via_last(#[case] dport: u16, #[case] expected: bool) {
    let item = FlowItem::Udp(
        ItemSpec::new(UdpItem { src_port: 0, dst_port: 1000 })
            .with_last(UdpItem { src_port: 0, dst_port: 2000 })
            .with_mask(UdpItem { src_port: 0, dst_port: 0xffff }),
    );
    assert_eq!(matches(&[item], &udp4([1; 4], 5, [2; 4], dport)), expected);
}

#[test]
fn last_below_spec_means_exact_match_for_that_field() {
    let item = FlowItem::Tcp(ItemSpec::new(TcpItem { src_port: 7, dst_port: 80, flags: 0 }).with_last(TcpItem {
        src_port: 0,
        dst_port: 90,
        flags: 0,
    }));
    assert!(matches(&[item], &tcp4([1; 4], 7, [2; 4], 85)));
    assert!(!matches(&[item], &tcp4([1; 4], 6, [2; 4], 85)), "src_port 7 stays exact");
}

#[test]
fn address_range_via_last() {
    let item = FlowItem::Ipv4(
        ItemSpec::new(Ipv4Item { src: [10, 0, 0, 250], ..Ipv4Item::default() })
            .with_last(Ipv4Item { src: [10, 0, 1, 5], ..Ipv4Item::default() })
            .with_mask(Ipv4Item { src: [0xff; 4], ..Ipv4Item::default() }),
    );
    assert!(matches(&[item], &tcp4([10, 0, 1, 0], 1, [2; 4], 2)), "ranges carry across bytes");
    assert!(!matches(&[item], &tcp4([10, 0, 1, 6], 1, [2; 4], 2)));
    assert!(!matches(&[item], &tcp4([10, 0, 0, 249], 1, [2; 4], 2)));
}

// ------------------------------------------------------ priority, tie-break

#[test]
fn lower_priority_value_wins_whatever_the_creation_order() {
    let mut table = FlowTable::new();
    let any = [FlowItem::Tcp(ItemSpec::ANY)];
    for (priority, queue) in [(5, 5), (1, 1), (3, 3)] {
        assert!(table.create(&FlowAttr::ingress(priority), &any, &[FlowAction::Queue(queue)], QUEUES).is_ok());
    }
    assert_eq!(table.classify(&tcp4([1; 4], 1, [2; 4], 2), 64).fate, Fate::Queue(1));
}

#[test]
fn equal_priority_earlier_rule_wins() {
    let mut table = FlowTable::new();
    let any = [FlowItem::Tcp(ItemSpec::ANY)];
    let first = table.create(&FlowAttr::ingress(2), &any, &[FlowAction::Queue(4)], QUEUES);
    assert!(table.create(&FlowAttr::ingress(2), &any, &[FlowAction::Queue(6)], QUEUES).is_ok());
    let meta = tcp4([1; 4], 1, [2; 4], 2);
    assert_eq!(table.classify(&meta, 64).fate, Fate::Queue(4));
    assert_eq!(first.and_then(|id| table.destroy(id)), Ok(()));
    assert_eq!(table.classify(&meta, 64).fate, Fate::Queue(6));
}

#[test]
fn specific_rule_above_catch_all() {
    let mut table = FlowTable::new();
    let attr = |priority| FlowAttr::ingress(priority);
    assert!(table.create(&attr(0), &[tcp_dst(22)], &[FlowAction::Drop], QUEUES).is_ok());
    assert!(table.create(&attr(1), &[FlowItem::Tcp(ItemSpec::ANY)], &[FlowAction::Queue(3)], QUEUES).is_ok());
    assert_eq!(table.classify(&tcp4([1; 4], 9, [2; 4], 22), 64).fate, Fate::Drop);
    assert_eq!(table.classify(&tcp4([1; 4], 9, [2; 4], 80), 64).fate, Fate::Queue(3));
    assert_eq!(table.classify(&udp4([1; 4], 9, [2; 4], 22), 64).fate, Fate::Default);
}

// ------------------------------------------------------------ fates, isolate

#[test]
fn empty_table_falls_back_to_rss_or_isolation() {
    let mut table = FlowTable::new();
    let meta = tcp4([1; 4], 1, [2; 4], 2);
    assert_eq!(table.classify(&meta, 64), Verdict { fate: Fate::Default, mark: None });
    table.set_isolate(true);
    assert!(table.is_isolated());
    assert_eq!(table.classify(&meta, 64), Verdict { fate: Fate::Isolated, mark: None });
}

#[test]
fn isolate_drops_only_unmatched_traffic() {
    let mut table = table_with(&[tcp_dst(80)]);
    table.set_isolate(true);
    assert!(steered(&table, &tcp4([1; 4], 1, [2; 4], 80)));
    assert_eq!(table.classify(&tcp4([1; 4], 1, [2; 4], 81), 64).fate, Fate::Isolated);
    table.set_isolate(false);
    assert_eq!(table.classify(&tcp4([1; 4], 1, [2; 4], 81), 64).fate, Fate::Default);
}

#[test]
fn isolate_lets_in_traffic_matched_by_a_rule_without_fate() {
    let mut table = FlowTable::new();
    table.set_isolate(true);
    assert!(table.create(&FlowAttr::ingress(0), &[udp_dst(53)], &[FlowAction::Mark(53)], QUEUES).is_ok());
    let verdict = table.classify(&udp4([1; 4], 1, [2; 4], 53), 64);
    assert_eq!(verdict, Verdict { fate: Fate::Default, mark: Some(53) });
}

#[test]
fn rss_fate_borrows_the_rule_queues() {
    let mut table = FlowTable::new();
    let rss = FlowAction::Rss { queues: vec![2, 3, 5], types: RssHashTypes::IPV4_TCP | RssHashTypes::IPV6_TCP };
    assert!(table.create(&FlowAttr::ingress(0), &[FlowItem::Tcp(ItemSpec::ANY)], &[rss], QUEUES).is_ok());
    let fate = table.classify(&ip6(V6_A, V6_B, TCP, (1, 2)), 64).fate;
    let expected = Fate::Rss { queues: &[2, 3, 5], types: RssHashTypes::IPV4_TCP | RssHashTypes::IPV6_TCP };
    assert_eq!(fate, expected);
}

// -------------------------------------------------------------------- MARK

#[rstest]
#[case::with_drop(FlowAction::Drop, Fate::Drop)]
#[case::with_queue(FlowAction::Queue(7), Fate::Queue(7))]
#[case::with_passthru(FlowAction::Passthru, Fate::Default)]
fn mark_is_reported_with_every_fate(#[case] fate_action: FlowAction, #[case] fate: Fate<'static>) {
    let mut table = FlowTable::new();
    let actions = [FlowAction::Mark(0xdead_beef), fate_action];
    assert!(table.create(&FlowAttr::ingress(0), &[tcp_dst(80)], &actions, QUEUES).is_ok());
    let verdict = table.classify(&tcp4([1; 4], 1, [2; 4], 80), 64);
    assert_eq!(verdict, Verdict { fate, mark: Some(0xdead_beef) });
    assert_eq!(table.classify(&tcp4([1; 4], 1, [2; 4], 81), 64).mark, None);
}

#[test]
fn mark_of_the_first_matching_rule_wins() {
    let mut table = FlowTable::new();
    let any = [FlowItem::Ipv4(ItemSpec::ANY)];
    assert!(table.create(&FlowAttr::ingress(0), &any, &[FlowAction::Mark(1)], QUEUES).is_ok());
    assert!(table.create(&FlowAttr::ingress(1), &any, &[FlowAction::Mark(2), FlowAction::Drop], QUEUES).is_ok());
    assert_eq!(table.classify(&udp4([1; 4], 1, [2; 4], 2), 64), Verdict { fate: Fate::Drop, mark: Some(1) });
}

// ------------------------------------------------------------------- COUNT

#[test]
fn count_reports_hits_and_bytes() {
    let mut table = FlowTable::new();
    let actions = [FlowAction::Count, FlowAction::Queue(2)];
    let id = table.create(&FlowAttr::ingress(0), &[udp_dst(4789)], &actions, QUEUES).expect("valid rule");
    for len in [60, 1514, 200] {
        let _ = table.classify(&udp4([1; 4], 1, [2; 4], 4789), len);
    }
    let _ = table.classify(&udp4([1; 4], 1, [2; 4], 4790), 999);
    assert_eq!(table.query(id), Ok(FlowCounters { hits: 3, bytes: 1774 }));
}

#[test]
fn count_is_not_reached_past_a_deciding_rule() {
    let mut table = FlowTable::new();
    let any = [FlowItem::Udp(ItemSpec::ANY)];
    assert!(table.create(&FlowAttr::ingress(0), &any, &[FlowAction::Drop], QUEUES).is_ok());
    let counted = table.create(&FlowAttr::ingress(1), &any, &[FlowAction::Count], QUEUES).expect("valid rule");
    let _ = table.classify(&udp4([1; 4], 1, [2; 4], 2), 64);
    assert_eq!(table.query(counted), Ok(FlowCounters::default()));
}

#[test]
fn counters_update_from_many_threads() {
    let mut table = FlowTable::new();
    let id = table.create(&FlowAttr::ingress(0), &[], &[FlowAction::Count], QUEUES).expect("valid rule");
    let table = &table;
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                for _ in 0..1000 {
                    let _ = table.classify(&arp(), 60);
                }
            });
        }
    });
    assert_eq!(table.query(id), Ok(FlowCounters { hits: 4000, bytes: 240_000 }));
}

#[test]
fn query_refuses_rules_without_count_and_unknown_rules() {
    let mut table = FlowTable::new();
    let id = table.create(&FlowAttr::ingress(0), &[], &[FlowAction::Drop], QUEUES).expect("valid rule");
    assert_eq!(table.query(id).map_err(|e| e.cause), Err(FlowErrorCause::Rule));
    table.flush();
    assert_eq!(table.query(id).map_err(|e| e.cause), Err(FlowErrorCause::Rule));
}

// ------------------------------------------------------- destroy and flush

#[test]
fn destroy_removes_one_rule() {
    let mut table = FlowTable::new();
    let drop_ssh = table.create(&FlowAttr::ingress(0), &[tcp_dst(22)], &[FlowAction::Drop], QUEUES);
    let id = drop_ssh.expect("valid rule");
    assert!(table.create(&FlowAttr::ingress(0), &[tcp_dst(80)], &[FlowAction::Drop], QUEUES).is_ok());
    assert_eq!(table.len(), 2);
    assert_eq!(table.destroy(id), Ok(()));
    assert_eq!(table.len(), 1);
    assert_eq!(table.classify(&tcp4([1; 4], 1, [2; 4], 22), 64).fate, Fate::Default);
    assert_eq!(table.classify(&tcp4([1; 4], 1, [2; 4], 80), 64).fate, Fate::Drop);
    assert_eq!(table.destroy(id).map_err(|e| e.cause), Err(FlowErrorCause::Rule));
}

#[test]
fn flush_removes_every_rule_and_keeps_isolation() {
    let mut table = table_with(&[]);
    table.set_isolate(true);
    table.flush();
    assert!(table.is_empty());
    assert_eq!(table.len(), 0);
    assert_eq!(table.classify(&arp(), 64).fate, Fate::Isolated);
}

// -------------------------------------------------------------- validation

fn any_tcp() -> FlowItem {
    FlowItem::Tcp(ItemSpec::ANY)
}

fn rss(queues: Vec<u16>) -> FlowAction {
    FlowAction::Rss { queues, types: RssHashTypes::IPV4 }
}

fn udp_proto_ipv4() -> FlowItem {
    let spec = Ipv4Item { proto: UDP, ..Ipv4Item::default() };
    FlowItem::Ipv4(ItemSpec::new(spec).with_mask(Ipv4Item { proto: 0xff, ..Ipv4Item::default() }))
}

fn arp_eth() -> FlowItem {
    let spec = EthItem { ether_type: 0x0806, ..EthItem::default() };
    FlowItem::Eth(ItemSpec::new(spec).with_mask(EthItem { ether_type: 0xffff, ..EthItem::default() }))
}

#[rstest]
#[case::egress(FlowAttr { ingress: false, ..FlowAttr::ingress(0) }, vec![], vec![], FlowErrorCause::Attr)]
#[case::group(FlowAttr { group: 1, ..FlowAttr::ingress(0) }, vec![], vec![], FlowErrorCause::Attr)]
#[case::ipv4_after_tcp(FlowAttr::ingress(0), vec![any_tcp(), FlowItem::Ipv4(ItemSpec::ANY)], vec![], FlowErrorCause::Item(1))]
#[case::eth_after_ipv4(FlowAttr::ingress(0), vec![FlowItem::Ipv4(ItemSpec::ANY), FlowItem::Eth(ItemSpec::ANY)], vec![], FlowErrorCause::Item(1))]
#[case::two_l3(FlowAttr::ingress(0), vec![FlowItem::Eth(ItemSpec::ANY), FlowItem::Ipv6(ItemSpec::ANY), FlowItem::Ipv4(ItemSpec::ANY)], vec![], FlowErrorCause::Item(2))]
#[case::two_l4(FlowAttr::ingress(0), vec![any_tcp(), FlowItem::Udp(ItemSpec::ANY)], vec![], FlowErrorCause::Item(1))]
#[case::vlan_after_ipv6(FlowAttr::ingress(0), vec![FlowItem::Ipv6(ItemSpec::ANY), FlowItem::Vlan(ItemSpec::ANY)], vec![], FlowErrorCause::Item(1))]
#[case::tcp_over_udp_proto(FlowAttr::ingress(0), vec![FlowItem::Eth(ItemSpec::ANY), udp_proto_ipv4(), any_tcp()], vec![], FlowErrorCause::Item(2))]
#[case::ipv4_over_arp(FlowAttr::ingress(0), vec![arp_eth(), FlowItem::Ipv4(ItemSpec::ANY)], vec![], FlowErrorCause::Item(1))]
#[case::last_without_spec(FlowAttr::ingress(0), vec![FlowItem::Udp(ItemSpec { last: Some(UdpItem::default()), ..ItemSpec::ANY })], vec![], FlowErrorCause::Item(0))]
#[case::mask_without_spec(FlowAttr::ingress(0), vec![any_tcp(), FlowItem::Eth(ItemSpec { mask: Some(EthItem::default()), ..ItemSpec::ANY })], vec![], FlowErrorCause::Item(1))]
#[case::vid_too_wide(FlowAttr::ingress(0), vec![FlowItem::Eth(ItemSpec::ANY), FlowItem::Vlan(ItemSpec::new(VlanItem { vid: 4096 }))], vec![], FlowErrorCause::Item(1))]
#[case::queue_out_of_range(FlowAttr::ingress(0), vec![], vec![FlowAction::Mark(1), FlowAction::Queue(QUEUES)], FlowErrorCause::Action(1))]
#[case::two_fates(FlowAttr::ingress(0), vec![], vec![FlowAction::Queue(0), FlowAction::Count, FlowAction::Drop], FlowErrorCause::Action(2))]
#[case::passthru_and_queue(FlowAttr::ingress(0), vec![], vec![FlowAction::Passthru, FlowAction::Queue(0)], FlowErrorCause::Action(1))]
#[case::rss_empty(FlowAttr::ingress(0), vec![], vec![FlowAction::Count, rss(vec![])], FlowErrorCause::Action(1))]
#[case::rss_out_of_range(FlowAttr::ingress(0), vec![], vec![rss(vec![0, QUEUES])], FlowErrorCause::Action(0))]
#[case::duplicate_mark(FlowAttr::ingress(0), vec![], vec![FlowAction::Mark(1), FlowAction::Drop, FlowAction::Mark(2)], FlowErrorCause::Action(2))]
#[case::duplicate_count(FlowAttr::ingress(0), vec![], vec![FlowAction::Count, FlowAction::Count], FlowErrorCause::Action(1))]
#[case::attr_before_pattern(FlowAttr { group: 2, ..FlowAttr::ingress(0) }, vec![any_tcp(), any_tcp()], vec![FlowAction::Drop, FlowAction::Drop], FlowErrorCause::Attr)]
#[case::pattern_before_actions(FlowAttr::ingress(0), vec![any_tcp(), any_tcp()], vec![FlowAction::Drop, FlowAction::Drop], FlowErrorCause::Item(1))]
fn refusals_name_the_offending_part(
    #[case] attr: FlowAttr,
    #[case] pattern: Vec<FlowItem>,
    #[case] actions: Vec<FlowAction>,
    #[case] cause: FlowErrorCause,
) {
    let mut table = FlowTable::new();
    let validated = table.validate(&attr, &pattern, &actions, QUEUES);
    assert_eq!(validated.as_ref().map_err(|e| e.cause), Err(cause), "{validated:?}");
    let created = table.create(&attr, &pattern, &actions, QUEUES);
    assert_eq!(created.map_err(|e| e.cause), Err(cause));
    assert!(table.is_empty());
}

#[rstest]
#[case::tcp_over_ipv6(vec![FlowItem::Eth(ItemSpec::ANY), FlowItem::Ipv6(ItemSpec::ANY), any_tcp()])]
#[case::vlan_then_udp(vec![FlowItem::Vlan(ItemSpec::ANY), FlowItem::Udp(ItemSpec::ANY)])]
#[case::eth_then_tcp(vec![FlowItem::Eth(ItemSpec::ANY), any_tcp()])]
#[case::tcp_over_tcp_proto(vec![FlowItem::Ipv4(ItemSpec::new(Ipv4Item { proto: TCP, ..Ipv4Item::default() }).with_mask(Ipv4Item { proto: 0xff, ..Ipv4Item::default() })), any_tcp()])]
fn consistent_stacks_are_accepted(#[case] pattern: Vec<FlowItem>) {
    let actions = [FlowAction::Rss { queues: vec![0, QUEUES - 1], types: RssHashTypes::empty() }];
    assert_eq!(FlowTable::new().validate(&FlowAttr::ingress(0), &pattern, &actions, QUEUES), Ok(()));
}

#[test]
fn validate_does_not_create() {
    let table = FlowTable::new();
    assert_eq!(table.validate(&FlowAttr::ingress(0), &[], &[FlowAction::Drop], QUEUES), Ok(()));
    assert!(table.is_empty());
}

#[test]
fn full_table_refuses_the_rule() {
    let mut table = FlowTable::with_max_rules(1);
    assert!(table.create(&FlowAttr::ingress(0), &[], &[], QUEUES).is_ok());
    let refused = table.create(&FlowAttr::ingress(0), &[], &[], QUEUES);
    assert_eq!(refused.map_err(|e| e.cause), Err(FlowErrorCause::Rule));
}

// -------------------------------------------------- frames from etherparse

#[test]
fn parsed_ipv4_tcp_frame_is_steered_by_its_tuple() {
    let frame = tcp4_frame([10, 0, 0, 1], 40000, [10, 0, 0, 2], 8080);
    let pattern = [
        FlowItem::Eth(ItemSpec::new(EthItem { dst: MAC_B, src: MAC_A, ether_type: 0 })),
        ipv4([10, 0, 0, 1], [10, 0, 0, 2]),
        FlowItem::Tcp(ItemSpec::new(TcpItem { src_port: 40000, dst_port: 8080, flags: 0 })),
    ];
    let table = table_with(&pattern);
    assert!(steered(&table, &parse(&frame)));
    assert!(!steered(&table, &parse(&tcp4_frame([10, 0, 0, 1], 40001, [10, 0, 0, 2], 8080))));
}

#[test]
fn parsed_vlan_ipv6_udp_frame() {
    let pattern = [
        FlowItem::Vlan(ItemSpec::new(VlanItem { vid: 42 })),
        FlowItem::Ipv6(ItemSpec::new(Ipv6Item { src: V6_A, dst: V6_B, proto: 0 })),
        udp_dst(547),
    ];
    let table = table_with(&pattern);
    assert!(steered(&table, &parse(&udp6_vlan_frame(42, 546, 547))));
    assert!(!steered(&table, &parse(&udp6_vlan_frame(43, 546, 547))));
    assert!(!steered(&table, &parse(&udp6_vlan_frame(42, 546, 548))));
}

#[test]
fn parsed_syn_is_marked_by_flags() {
    let syn = FlowItem::Tcp(
        ItemSpec::new(TcpItem { flags: 0x02, ..TcpItem::default() })
            .with_mask(TcpItem { flags: 0x02, ..TcpItem::default() }),
    );
    let mut table = FlowTable::new();
    assert!(table.create(&FlowAttr::ingress(0), &[syn], &[FlowAction::Mark(2)], QUEUES).is_ok());
    let frame = tcp4_frame([1; 4], 1, [2; 4], 2);
    assert_eq!(table.classify(&parse(&frame), frame.len()).mark, Some(2));
}

// -------------------------------------------------------------- properties

fn arb_ip() -> impl Strategy<Value = Option<IpAddrs>> {
    prop_oneof![
        Just(None),
        any::<([u8; 4], [u8; 4])>().prop_map(|(src, dst)| Some(IpAddrs::V4 { src, dst })),
        any::<([u8; 16], [u8; 16])>().prop_map(|(src, dst)| Some(IpAddrs::V6 { src, dst })),
    ]
}

prop_compose! {
    /// Any field values, consistent or not.
    fn arb_meta()(
        macs in any::<([u8; 6], [u8; 6])>(),
        vlan in proptest::option::of(any::<u16>()),
        ether_type in any::<u16>(),
        ip in arb_ip(),
        ip_proto in proptest::option::of(prop_oneof![Just(TCP), Just(UDP), any::<u8>()]),
        fragment in any::<bool>(),
        ports in proptest::option::of(any::<(u16, u16)>()),
        tcp_flags in any::<u8>(),
        offsets in any::<(u16, u16)>(),
    ) -> PacketMeta {
        PacketMeta {
            dst_mac: macs.0, src_mac: macs.1, vlan, ether_type, l3_offset: offsets.0, ip, ip_proto,
            fragment, l4_offset: offsets.1, ports, tcp_flags,
        }
    }
}

fn arb_spec<T: Arbitrary + Copy + std::fmt::Debug>() -> impl Strategy<Value = ItemSpec<T>> {
    (any::<Option<T>>(), any::<Option<T>>(), any::<Option<T>>()).prop_map(|(spec, last, mask)| ItemSpec {
        spec,
        last,
        mask,
    })
}

fn arb_item() -> impl Strategy<Value = FlowItem> {
    prop_oneof![
        arb_spec::<([u8; 6], [u8; 6], u16)>()
            .prop_map(|s| FlowItem::Eth(map_spec(s, |(dst, src, ether_type)| EthItem { dst, src, ether_type }))),
        arb_spec::<u16>().prop_map(|s| FlowItem::Vlan(map_spec(s, |vid| VlanItem { vid: vid & 0x1fff }))),
        arb_spec::<([u8; 4], [u8; 4], u8)>().prop_map(|s| FlowItem::Ipv4(map_spec(s, |(src, dst, proto)| Ipv4Item {
            src,
            dst,
            proto
        }))),
        arb_spec::<([u8; 16], [u8; 16], u8)>()
            .prop_map(|s| FlowItem::Ipv6(map_spec(s, |(src, dst, proto)| Ipv6Item { src, dst, proto }))),
        arb_spec::<(u16, u16, u8)>().prop_map(|s| FlowItem::Tcp(map_spec(s, |(src_port, dst_port, flags)| TcpItem {
            src_port,
            dst_port,
            flags
        }))),
        arb_spec::<(u16, u16)>()
            .prop_map(|s| FlowItem::Udp(map_spec(s, |(src_port, dst_port)| UdpItem { src_port, dst_port }))),
    ]
}

fn map_spec<A: Copy, T>(s: ItemSpec<A>, f: impl Fn(A) -> T) -> ItemSpec<T> {
    ItemSpec { spec: s.spec.map(&f), last: s.last.map(&f), mask: s.mask.map(&f) }
}

/// A pattern that names every field of `meta` under full masks.
fn exact_pattern(meta: &PacketMeta) -> Vec<FlowItem> {
    let eth = EthItem { dst: meta.dst_mac, src: meta.src_mac, ether_type: meta.ether_type };
    let mut pattern = vec![FlowItem::Eth(ItemSpec::new(eth).with_mask(EthItem {
        dst: [0xff; 6],
        src: [0xff; 6],
        ether_type: 0xffff,
    }))];
    if let Some(vid) = meta.vlan {
        pattern.push(FlowItem::Vlan(ItemSpec::new(VlanItem { vid })));
    }
    let proto = meta.ip_proto.unwrap_or(0);
    match meta.ip {
        Some(IpAddrs::V4 { src, dst }) => {
            pattern.push(FlowItem::Ipv4(ItemSpec::new(Ipv4Item { src, dst, proto }).with_mask(Ipv4Item {
                src: [0xff; 4],
                dst: [0xff; 4],
                proto: 0xff,
            })))
        }
        Some(IpAddrs::V6 { src, dst }) => {
            pattern.push(FlowItem::Ipv6(ItemSpec::new(Ipv6Item { src, dst, proto }).with_mask(Ipv6Item {
                src: [0xff; 16],
                dst: [0xff; 16],
                proto: 0xff,
            })))
        }
        None => {}
    }
    if let Some((src_port, dst_port)) = meta.ports {
        pattern.push(match proto {
            TCP => {
                FlowItem::Tcp(ItemSpec::new(TcpItem { src_port, dst_port, flags: meta.tcp_flags }).with_mask(TcpItem {
                    src_port: 0xffff,
                    dst_port: 0xffff,
                    flags: 0xff,
                }))
            }
            _ => FlowItem::Udp(ItemSpec::new(UdpItem { src_port, dst_port })),
        });
    }
    pattern
}

fn flip_ip(ip: Option<IpAddrs>, dst: bool, bit: u8) -> Option<IpAddrs> {
    let flip = |bytes: &mut [u8]| {
        let at = usize::from(bit) % bytes.len();
        bytes[at] ^= 1 << (bit % 8);
    };
    let mut ip = ip?;
    match (&mut ip, dst) {
        (IpAddrs::V4 { src, .. }, false) => flip(src),
        (IpAddrs::V4 { dst, .. }, true) => flip(dst),
        (IpAddrs::V6 { src, .. }, false) => flip(src),
        (IpAddrs::V6 { dst, .. }, true) => flip(dst),
    }
    Some(ip)
}

/// `meta` with one bit of one matched field changed.
fn perturb(mut meta: PacketMeta, field: u8, bit: u8) -> PacketMeta {
    let ports = meta.ports.unwrap_or_default();
    match (field, meta.vlan, meta.ip_proto) {
        (0, ..) => meta.dst_mac[usize::from(bit % 6)] ^= 1,
        (1, ..) => meta.src_mac[usize::from(bit % 6)] ^= 0x80,
        (2, ..) => meta.ip = flip_ip(meta.ip, false, bit),
        (3, ..) => meta.ip = flip_ip(meta.ip, true, bit),
        (4, ..) => meta.ports = Some((ports.0 ^ (1 << (bit % 16)), ports.1)),
        (5, ..) => meta.ports = Some((ports.0, ports.1 ^ (1 << (bit % 16)))),
        (6, _, Some(TCP)) => meta.ip_proto = Some(UDP),
        (6, ..) => meta.ip_proto = Some(TCP),
        (7, Some(vid), _) => meta.vlan = Some(vid ^ (1 << (bit % 12))),
        (8, _, Some(TCP)) => meta.tcp_flags ^= 1 << (bit % 8),
        _ => meta.ether_type ^= 1 << (bit % 16),
    }
    meta
}

prop_compose! {
    /// A frame's metadata as the parser would produce it.
    fn consistent_meta()(
        macs in any::<([u8; 6], [u8; 6])>(),
        vlan in proptest::option::of(0u16..4096),
        ip in arb_ip().prop_filter("IP frames", Option::is_some),
        proto in prop_oneof![Just(TCP), Just(UDP)],
        ports in any::<(u16, u16)>(),
        tcp_flags in any::<u8>(),
    ) -> PacketMeta {
        let ether_type = match ip { Some(IpAddrs::V6 { .. }) => 0x86dd, _ => 0x0800 };
        PacketMeta {
            dst_mac: macs.0, src_mac: macs.1, vlan, ether_type, l3_offset: 14, ip, ip_proto: Some(proto),
            fragment: false, l4_offset: 34, ports: Some(ports), tcp_flags: if proto == TCP { tcp_flags } else { 0 },
        }
    }
}

proptest! {
    #[test]
    fn classify_never_panics(
        rules in proptest::collection::vec((proptest::collection::vec(arb_item(), 0..5), any::<u8>()), 0..6),
        metas in proptest::collection::vec(arb_meta(), 1..8),
        len in any::<usize>(),
    ) {
        let mut table = FlowTable::new();
        for (pattern, priority) in &rules {
            let actions = [FlowAction::Count, FlowAction::Queue(u16::from(*priority) % QUEUES)];
            let _ = table.create(&FlowAttr::ingress(u32::from(*priority % 4)), pattern, &actions, QUEUES);
        }
        for meta in &metas {
            let _ = table.classify(meta, len);
        }
    }

    #[test]
    fn rule_from_a_packets_own_tuple_matches_it(meta in consistent_meta(), field in 0u8..9, bit in any::<u8>()) {
        let pattern = exact_pattern(&meta);
        let table = table_with(&pattern);
        prop_assert!(steered(&table, &meta), "pattern {:?}", pattern);
        let other = perturb(meta, field, bit);
        prop_assert!(!steered(&table, &other), "{:?} still matches", other);
    }

    #[test]
    fn masked_port_range_agrees_with_arithmetic(
        spec in any::<u16>(), last in any::<u16>(), mask in any::<u16>(), port in any::<u16>(),
    ) {
        let item = FlowItem::Udp(
            ItemSpec::new(UdpItem { src_port: 0, dst_port: spec })
                .with_last(UdpItem { src_port: 0, dst_port: last })
                .with_mask(UdpItem { src_port: 0, dst_port: mask }),
        );
        let (lo, hi) = (spec & mask, last & mask);
        let expected = if hi > lo { (lo..=hi).contains(&(port & mask)) } else { port & mask == lo };
        prop_assert_eq!(matches(&[item], &udp4([1; 4], 1, [2; 4], port)), expected);
    }

    #[test]
    fn parsed_frames_match_their_own_tuple(
        src in any::<[u8; 4]>(), dst in any::<[u8; 4]>(), sport in any::<u16>(), dport in any::<u16>(),
    ) {
        let meta = parse(&tcp4_frame(src, sport, dst, dport));
        prop_assert!(steered(&table_with(&exact_pattern(&meta)), &meta));
    }
}

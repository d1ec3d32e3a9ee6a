//! One case per switching rule: learning, ageing, limits, static entries,
//! port down, flooding, hairpin, invalid sources, link-local, VLANs,
//! malformed frames, zero copy.

use std::time::Duration;

use ethdev::stats::DropReason;
use ethdev::Instant;
use rstest::{fixture, rstest};
use user_vbridge::{BridgeConfig, Direction, LimitPolicy, PortConfig};

use crate::common::{frame, mac, ms, tagged, Net, BROADCAST};

const MULTICAST: [u8; 6] = [0x01, 0x00, 0x5e, 0x00, 0x00, 0x01];

#[fixture]
fn net() -> Net {
    Net::new(BridgeConfig::default(), 3)
}

fn switch_drops(net: &Net, reason: DropReason) -> u64 {
    net.bridge.switch_stats().drops.get(reason)
}

fn link_drops(net: &Net, port: usize, direction: Direction, reason: DropReason) -> u64 {
    net.bridge.link_stats(net.ids[port], direction).map_or(0, |s| s.drops.get(reason))
}

#[rstest]
fn source_is_learned_before_forwarding(mut net: Net) {
    net.send_at(0, &frame(mac(1), mac(2)), ms(0));
    assert_eq!(net.rx_counts(), [0, 1, 1], "unknown destination is flooded");
    net.send_at(1, &frame(mac(2), mac(1)), ms(1));
    assert_eq!(net.rx_counts(), [1, 0, 0], "the reply follows the learned entry");
    net.send_at(2, &frame(mac(3), mac(3)), ms(2));
    assert_eq!(net.rx_counts(), [0, 0, 0], "learned first, so the destination is the ingress");
    assert_eq!(switch_drops(&net, DropReason::NoEgress), 1);
    assert_eq!(net.bridge.fdb_stats().learned, 3);
    net.finish();
}

#[rstest]
fn a_station_that_moves_is_followed(mut net: Net) {
    net.send_at(0, &frame(mac(1), BROADCAST), ms(0));
    net.send_at(1, &frame(mac(1), BROADCAST), ms(1));
    net.rx_counts();
    assert_eq!(net.bridge.fdb_entry(mac(1), 0).map(|e| e.port), Some(net.ids[1]));
    net.send_at(2, &frame(mac(2), mac(1)), ms(2));
    assert_eq!(net.rx_counts(), [0, 1, 0]);
    assert_eq!(net.bridge.fdb_stats().moved, 1);
    net.finish();
}

#[rstest]
#[case::linux_default(None, Duration::from_secs(300))]
#[case::configured(Some(Duration::from_secs(2)), Duration::from_secs(2))]
fn learned_entries_age_out(#[case] configured: Option<Duration>, #[case] ageing: Duration) {
    let mut config = BridgeConfig::default();
    config.ageing_time = configured.unwrap_or(config.ageing_time);
    let mut net = Net::new(config, 3);
    net.send_at(0, &frame(mac(1), BROADCAST), Instant::ZERO);
    net.rx_counts();
    let deadline = Instant::ZERO + ageing;
    assert_eq!(net.bridge.poll_at(), Some(deadline));
    net.poll(Instant::from_nanos(deadline.as_nanos() - 1));
    assert!(net.bridge.fdb_entry(mac(1), 0).is_some(), "not yet expired");
    net.poll(deadline);
    assert!(net.bridge.fdb_entry(mac(1), 0).is_none());
    assert_eq!((net.bridge.fdb_stats().aged, net.bridge.poll_at()), (1, None));
    net.send_at(1, &frame(mac(2), mac(1)), deadline);
    assert_eq!(net.rx_counts(), [1, 0, 1], "a forgotten address is flooded again");
    net.finish();
}

#[rstest]
fn refreshed_entries_stay(mut net: Net) {
    net.send_at(0, &frame(mac(1), BROADCAST), Instant::ZERO);
    net.send_at(0, &frame(mac(1), BROADCAST), Instant::from_secs(200));
    net.advance_to(Instant::from_secs(499));
    assert!(net.bridge.fdb_entry(mac(1), 0).is_some());
    net.advance_to(Instant::from_secs(500));
    assert!(net.bridge.fdb_entry(mac(1), 0).is_none());
    net.rx_counts();
    net.finish();
}

#[rstest]
#[case::stop_learning(LimitPolicy::StopLearning, [true, true, false], (1, 0))]
#[case::evict_oldest(LimitPolicy::EvictOldest, [true, false, true], (0, 1))]
fn fdb_size_limit(#[case] policy: LimitPolicy, #[case] present: [bool; 3], #[case] refused_evicted: (u64, u64)) {
    let config = BridgeConfig { fdb_limit: Some(2), limit_policy: policy, ..BridgeConfig::default() };
    let mut net = Net::new(config, 3);
    net.send_at(0, &frame(mac(1), BROADCAST), ms(1));
    net.send_at(0, &frame(mac(2), BROADCAST), ms(2));
    net.send_at(0, &frame(mac(1), BROADCAST), ms(3));
    net.send_at(1, &frame(mac(3), BROADCAST), ms(4));
    assert_eq!([1, 2, 3].map(|n| net.bridge.fdb_entry(mac(n), 0).is_some()), present);
    let stats = net.bridge.fdb_stats();
    assert_eq!((stats.refused, stats.evicted), refused_evicted);
    assert_eq!(stats.size, 2);
    assert_eq!(net.rx_counts(), [1, 3, 4], "frames are forwarded whether learned or not");
    net.finish();
}

#[rstest]
fn static_entries_are_not_moved_aged_or_flushed(mut net: Net) {
    net.bridge.add_static(mac(9), 0, net.ids[2]).unwrap();
    net.send_at(0, &frame(mac(9), BROADCAST), ms(0));
    net.rx_counts();
    let entry = net.bridge.fdb_entry(mac(9), 0).unwrap();
    assert_eq!((entry.port, entry.is_static), (net.ids[2], true), "learning does not override");
    net.bridge.set_port_up(net.ids[2], false, ms(1)).unwrap();
    net.bridge.set_port_up(net.ids[2], true, ms(2)).unwrap();
    net.advance_to(Instant::from_secs(1000));
    net.send_at(1, &frame(mac(1), mac(9)), Instant::from_secs(1000));
    assert_eq!(net.rx_counts(), [0, 0, 1]);
    assert!(net.bridge.add_static(mac(9), 4096, net.ids[0]).is_err());
    assert!(net.bridge.remove_fdb_entry(mac(9), 0));
    net.finish();
}

#[rstest]
#[case::admin_down(true)]
#[case::wire_link_down(false)]
fn port_down_flushes_its_entries_and_stops_traffic(mut net: Net, #[case] admin: bool) {
    net.send_at(0, &frame(mac(1), BROADCAST), ms(0));
    net.send_at(1, &frame(mac(2), BROADCAST), ms(1));
    net.rx_counts();
    match admin {
        true => net.bridge.set_port_up(net.ids[0], false, ms(2)).unwrap(),
        false => {
            net.set_link(0, false);
            net.poll(ms(2));
        }
    }
    assert_eq!(net.bridge.port_up(net.ids[0]), Some(false));
    assert!(net.bridge.fdb_entry(mac(1), 0).is_none() && net.bridge.fdb_entry(mac(2), 0).is_some());
    assert_eq!(net.bridge.fdb_stats().flushed, 1);
    net.send_at(1, &frame(mac(2), mac(1)), ms(3));
    assert_eq!(net.rx_counts(), [0, 0, 1], "flooded, but not to the down port");
    net.send_at(0, &frame(mac(1), mac(2)), ms(4));
    assert_eq!(net.rx_counts(), [0, 0, 0]);
    assert_eq!(link_drops(&net, 0, Direction::Ingress, DropReason::LinkDown), 1);
    assert!(net.bridge.fdb_entry(mac(1), 0).is_none(), "a down port does not learn");
    net.bridge.set_port_up(net.ids[0], true, ms(5)).unwrap();
    net.set_link(0, true);
    net.send_at(0, &frame(mac(1), mac(2)), ms(5));
    assert_eq!(net.rx_counts(), [0, 1, 0]);
    net.finish();
}

#[rstest]
#[case::unknown_unicast(mac(7))]
#[case::broadcast(BROADCAST)]
#[case::multicast(MULTICAST)]
fn floods_to_every_port_but_the_ingress(#[case] dst: [u8; 6]) {
    let mut net = Net::new(BridgeConfig::default(), 4);
    net.send_at(1, &frame(mac(1), dst), ms(0));
    assert_eq!(net.rx_counts(), [1, 0, 1, 1]);
    let stats = net.bridge.switch_stats();
    assert_eq!((stats.flooded, stats.flood_offers, stats.forwarded), (1, 3, 0));
    net.finish();
}

#[rstest]
#[case::off(false, [0, 1, 1], [0, 0, 0], 1)]
#[case::on(true, [1, 1, 1], [1, 0, 0], 0)]
fn hairpin_is_off_unless_the_port_asks(
    #[case] hairpin: bool,
    #[case] flood: [usize; 3],
    #[case] unicast: [usize; 3],
    #[case] no_egress: u64,
) {
    let first = PortConfig { hairpin, ..PortConfig::default() };
    let mut net = Net::with_ports(BridgeConfig::default(), vec![first, PortConfig::default(), PortConfig::default()]);
    net.send_at(0, &frame(mac(1), BROADCAST), ms(0));
    assert_eq!(net.rx_counts(), flood);
    net.send_at(0, &frame(mac(2), mac(1)), ms(1));
    assert_eq!(net.rx_counts(), unicast, "destination learned on the ingress port");
    assert_eq!(switch_drops(&net, DropReason::NoEgress), no_egress);
    net.finish();
}

#[rstest]
#[case::multicast(MULTICAST)]
#[case::broadcast(BROADCAST)]
#[case::zero([0; 6])]
fn invalid_source_is_dropped_and_not_learned(mut net: Net, #[case] src: [u8; 6]) {
    net.send_at(0, &frame(src, BROADCAST), ms(0));
    assert_eq!(net.rx_counts(), [0, 0, 0]);
    assert_eq!(link_drops(&net, 0, Direction::Ingress, DropReason::InvalidSrcMac), 1);
    assert_eq!(net.bridge.fdb_stats().size, 0);
    net.finish();
}

#[rstest]
#[case::stp(0x00, true)]
#[case::lacp(0x02, true)]
#[case::last(0x0f, true)]
#[case::outside_range(0x10, false)]
fn link_local_destinations_are_not_forwarded(mut net: Net, #[case] last: u8, #[case] dropped: bool) {
    net.send_at(0, &frame(mac(1), [0x01, 0x80, 0xc2, 0x00, 0x00, last]), ms(0));
    let expected = if dropped { [0, 0, 0] } else { [0, 1, 1] };
    assert_eq!(net.rx_counts(), expected);
    assert_eq!(link_drops(&net, 0, Direction::Ingress, DropReason::LinkLocal), u64::from(dropped));
    net.finish();
}

#[rstest]
fn vlans_keep_separate_entries(mut net: Net) {
    net.send_at(0, &tagged(mac(1), BROADCAST, 10), ms(0));
    net.send_at(1, &tagged(mac(1), BROADCAST, 20), ms(1));
    net.rx_counts();
    let port_of = |net: &Net, vlan| net.bridge.fdb_entry(mac(1), vlan).map(|e| e.port);
    assert_eq!([10, 20, 0].map(|v| port_of(&net, v)), [Some(net.ids[0]), Some(net.ids[1]), None]);
    assert_eq!(net.bridge.fdb_stats().moved, 0);
    net.send_at(2, &tagged(mac(5), mac(1), 10), ms(2));
    assert_eq!(net.rx_counts(), [1, 0, 0]);
    net.send_at(2, &tagged(mac(5), mac(1), 20), ms(3));
    assert_eq!(net.rx_counts(), [0, 1, 0]);
    net.send_at(2, &frame(mac(5), mac(1)), ms(4));
    assert_eq!(net.rx_counts(), [1, 1, 0], "untagged is VLAN 0, where mac(1) is unknown");
    net.finish();
}

#[rstest]
#[case::empty(Vec::new())]
#[case::one_byte(vec![2])]
#[case::thirteen_bytes(frame(mac(1), BROADCAST)[..13].to_vec())]
#[case::truncated_vlan_tag(tagged(mac(1), BROADCAST, 5)[..17].to_vec())]
fn short_frames_are_malformed(mut net: Net, #[case] bytes: Vec<u8>) {
    net.send_at(0, &bytes, ms(0));
    assert_eq!(net.rx_counts(), [0, 0, 0]);
    assert_eq!(link_drops(&net, 0, Direction::Ingress, DropReason::Malformed), 1);
    net.finish();
}

#[rstest]
fn a_bare_ethernet_header_is_forwarded(mut net: Net) {
    net.send_at(0, &frame(mac(1), BROADCAST)[..14], ms(0));
    assert_eq!(net.rx_counts(), [0, 1, 1]);
    net.finish();
}

#[rstest]
fn unicast_moves_the_buffer_and_flood_copies_all_but_one(mut net: Net) {
    net.send_at(1, &frame(mac(2), BROADCAST), ms(0));
    net.rx_counts();
    let index = net.send(0, &frame(mac(1), mac(2)));
    net.poll(ms(1));
    let got = net.take_rx_mbufs(1);
    assert_eq!(got.len(), 1);
    assert!(net.pool.owns(&got[0]) && got[0].index() == index, "the sender's buffer itself");
    assert_eq!(net.bridge.pool().in_use(), 0);
    drop(got);
    let index = net.send(0, &frame(mac(1), BROADCAST));
    net.poll(ms(2));
    let (to_1, to_2) = (net.take_rx_mbufs(1), net.take_rx_mbufs(2));
    assert!(net.bridge.pool().owns(&to_1[0]), "a copy from the bridge's pool");
    assert!(net.pool.owns(&to_2[0]) && to_2[0].index() == index, "the original goes last");
    assert_eq!(to_1[0].data(), to_2[0].data());
    drop((to_1, to_2));
    net.finish();
}

#[rstest]
fn flood_without_buffers_drops_copies_as_no_mbuf() {
    let config = BridgeConfig { pool_capacity: 1, ..BridgeConfig::default() };
    let mut net = Net::new(config, 4);
    net.send_at(0, &frame(mac(1), BROADCAST), ms(0));
    assert_eq!(net.rx_counts(), [0, 1, 0, 1]);
    assert_eq!(link_drops(&net, 2, Direction::Egress, DropReason::NoMbuf), 1);
    net.finish();
}

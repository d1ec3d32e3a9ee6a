use std::net::{Ipv4Addr, SocketAddr};

use etherparse::PacketBuilder;
use proptest::prelude::*;
use rstest::rstest;

use super::*;

const MAC: MacAddr = MacAddr([2, 0, 0, 0, 4, 1]);
const PEER_MAC: [u8; 6] = [2, 0, 0, 0, 4, 100];
const A: Owner = Owner(10);
const B: Owner = Owner(11);
const LOCAL: Ipv4Addr = Ipv4Addr::new(10, 4, 0, 1);
const REMOTE: Ipv4Addr = Ipv4Addr::new(10, 4, 0, 100);
const T0: Instant = Instant::ZERO;

fn local(port: u16) -> SocketAddr {
    SocketAddr::from((LOCAL, port))
}

fn remote(port: u16) -> SocketAddr {
    SocketAddr::from((REMOTE, port))
}

/// A TCP segment from the remote `sport` to the local `dport`.
fn tcp(sport: u16, dport: u16, syn: bool, ack: bool) -> Vec<u8> {
    let builder = PacketBuilder::ethernet2(PEER_MAC, MAC.0).ipv4(REMOTE.octets(), LOCAL.octets(), 64);
    let mut builder = builder.tcp(sport, dport, 1, 65535);
    if syn {
        builder = builder.syn();
    }
    if ack {
        builder = builder.ack(1);
    }
    let mut frame = Vec::new();
    builder.write(&mut frame, &[]).unwrap();
    frame
}

fn syn(sport: u16, dport: u16) -> Vec<u8> {
    tcp(sport, dport, true, false)
}

fn table() -> Table {
    Table::new(MAC, Limits::default())
}

#[test]
fn a_new_connection_goes_to_the_listener_with_the_fewest() {
    let mut t = table();
    t.register(A, 0, None, local(80)).unwrap();
    t.register(B, 1, None, local(80)).unwrap();
    // Equal counts: the first listener, then the other, then alternately.
    let queues: Vec<_> = (0..4).map(|p| t.classify(&syn(1000 + p, 80), T0)).collect();
    assert_eq!(queues, [0, 1, 0, 1].map(Verdict::Queue));
    // The connection's later segments follow it, and B's first one closing
    // makes B the one with the fewest.
    assert_eq!(t.classify(&tcp(1001, 80, false, true), T0), Verdict::Queue(1));
    let id = t.register(B, 1, Some(remote(1001)), local(80)).unwrap();
    t.unregister(B, id).unwrap();
    assert_eq!(t.classify(&syn(2000, 80), T0), Verdict::Queue(1));
    assert_eq!(t.stats().dispatched, BTreeMap::from([(0, 2), (1, 3)]));
}

#[test]
fn a_confirmed_connection_outlives_the_wait_and_an_unconfirmed_one_expires() {
    let mut t = table();
    t.register(A, 0, None, local(80)).unwrap();
    assert_eq!(t.classify(&syn(1000, 80), T0), Verdict::Queue(0));
    assert_eq!(t.classify(&syn(1001, 80), T0), Verdict::Queue(0));
    t.register(A, 0, Some(remote(1000)), local(80)).unwrap();
    let wait = Limits::default().unconfirmed;
    assert_eq!(t.poll_at(), Some(T0 + wait));
    t.poll(T0 + wait);
    assert_eq!(t.stats().expired, 1);
    assert_eq!(t.classify(&tcp(1000, 80, false, true), T0 + wait), Verdict::Queue(0));
    assert_eq!(t.classify(&tcp(1001, 80, false, true), T0 + wait), Verdict::Drop(Miss::NoConnection));
    assert_eq!(t.poll_at(), None);
    assert_eq!(t.len(), 2, "a listener and a connection");
}

#[test]
fn an_outbound_connection_is_registered_before_its_answer_arrives() {
    let mut t = table();
    t.register(B, 1, Some(remote(7000)), local(40000)).unwrap();
    assert_eq!(t.classify(&tcp(7000, 40000, true, true), T0), Verdict::Queue(1));
    assert_eq!(t.classify(&tcp(7000, 40001, true, true), T0), Verdict::Drop(Miss::NoConnection));
}

#[rstest]
#[case::another_stacks_connection(B, 1, true)]
#[case::the_same_connection_twice(A, 0, true)]
#[case::a_second_listener_on_one_queue(A, 0, false)]
fn conflicting_registrations_are_refused(#[case] owner: Owner, #[case] queue: u16, #[case] conn: bool) {
    let mut t = table();
    t.register(A, 0, None, local(80)).unwrap();
    t.register(A, 0, Some(remote(1)), local(80)).unwrap();
    let src = conn.then(|| remote(1));
    assert!(t.register(owner, queue, src, local(80)).is_err());
    assert_eq!(t.len(), 2);
}

#[test]
fn a_syn_dispatched_to_one_stack_cannot_be_confirmed_by_another() {
    let mut t = table();
    t.register(A, 0, None, local(80)).unwrap();
    assert_eq!(t.classify(&syn(1000, 80), T0), Verdict::Queue(0));
    assert!(t.register(B, 1, Some(remote(1000)), local(80)).is_err());
    assert!(t.register(A, 0, Some(remote(1000)), local(80)).is_ok());
}

#[test]
fn forgetting_an_instance_takes_everything_it_held_or_was_handed() {
    let mut t = table();
    t.register(A, 0, None, local(80)).unwrap();
    t.register(B, 1, None, local(80)).unwrap();
    for p in 0..6 {
        t.classify(&syn(1000 + p, 80), T0);
    }
    t.register(A, 0, Some(remote(1000)), local(80)).unwrap();
    t.register(A, 0, Some(remote(7000)), local(40000)).unwrap();
    // A: its listener, two registered connections, two handed unconfirmed.
    assert_eq!(t.forget(A), 5);
    assert_eq!(t.held_by(A), 0);
    assert_eq!(t.classify(&tcp(1000, 80, false, true), T0), Verdict::Drop(Miss::NoConnection));
    // Every new connection now goes to B, which still has its three.
    assert_eq!(t.classify(&syn(3000, 80), T0), Verdict::Queue(1));
    assert_eq!(t.len(), 1 + 4);
    assert_eq!(t.forget(B), 5);
    assert!(t.is_empty());
    assert!(t.unregister(A, FlowId::from_raw(1)).is_err(), "a forgotten id is nobody's");
}

#[test]
fn an_instance_may_not_remove_anothers_registration() {
    let mut t = table();
    let id = t.register(A, 0, None, local(80)).unwrap();
    assert!(t.unregister(B, id).is_err());
    assert!(t.unregister(A, FlowId::from_raw(999)).is_err());
    t.unregister(A, id).unwrap();
    assert_eq!(t.classify(&syn(1000, 80), T0), Verdict::Drop(Miss::NoListener));
}

#[test]
fn limits_bound_an_instance_and_a_syn_flood() {
    let limits = Limits { per_instance: 2, conns: 3, ..Limits::default() };
    let mut t = Table::new(MAC, limits);
    t.register(A, 0, None, local(80)).unwrap();
    t.register(A, 0, Some(remote(1)), local(80)).unwrap();
    assert!(t.register(A, 0, Some(remote(2)), local(80)).is_err(), "per instance");
    let verdicts: Vec<_> = (0..3).map(|p| t.classify(&syn(1000 + p, 80), T0)).collect();
    assert_eq!(verdicts, [Verdict::Queue(0), Verdict::Queue(0), Verdict::Drop(Miss::TableFull)]);
    assert!(t.register(B, 1, Some(remote(3)), local(81)).is_err(), "the table is full");
    assert_eq!(t.stats().misses, BTreeMap::from([(Miss::TableFull, 1)]));
}

#[test]
fn arp_goes_to_everyone_icmp_to_the_first_and_the_rest_nowhere() {
    let mut t = table();
    let mut arp = vec![0xff; 6];
    arp.extend_from_slice(&PEER_MAC);
    arp.extend_from_slice(&[0x08, 0x06]);
    arp.extend_from_slice(&[0; 28]);
    assert_eq!(t.classify(&arp, T0), Verdict::EveryInstance);
    let mut ping = Vec::new();
    let icmp =
        PacketBuilder::ethernet2(PEER_MAC, MAC.0).ipv4(REMOTE.octets(), LOCAL.octets(), 64).icmpv4_echo_request(1, 1);
    icmp.write(&mut ping, &[0; 8]).unwrap();
    assert_eq!(t.classify(&ping, T0), Verdict::FirstInstance);
    let mut udp = Vec::new();
    PacketBuilder::ethernet2(PEER_MAC, MAC.0)
        .ipv4(REMOTE.octets(), LOCAL.octets(), 64)
        .udp(1, 2)
        .write(&mut udp, &[1])
        .unwrap();
    assert_eq!(t.classify(&udp, T0), Verdict::Drop(Miss::Unsupported));
    let mut other = syn(1000, 80);
    other[..6].copy_from_slice(&[2, 0, 0, 0, 9, 9]);
    assert_eq!(t.classify(&other, T0), Verdict::Drop(Miss::OtherHost));
    assert_eq!(t.classify(&[0; 5], T0), Verdict::Drop(Miss::Unsupported));
}

proptest! {
    /// Junk, truncated or not, never panics, and a frame that is not a
    /// SYN never makes an entry.
    #[test]
    fn junk_is_classified_without_panic(frame in proptest::collection::vec(any::<u8>(), 0..128), cut in 0usize..80) {
        let mut t = table();
        t.register(A, 0, None, local(80)).unwrap();
        let _ = t.classify(&frame, T0);
        let whole = syn(1000, 80);
        let _ = t.classify(&whole[..cut.min(whole.len())], T0);
        prop_assert!(t.len() <= 2);
    }
}

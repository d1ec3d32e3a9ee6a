//! A neighbour is learned before it is answered. Stack 0 of a two-stack
//! RSS host answers a peer's ARP request and hands stack 1 a copy; the
//! peer's echo request then lands on stack 1's queue. When stack 1 next
//! polls, both wait for it: it must take the copy first, or smoltcp
//! answers the echo for a neighbour it does not know yet, which means an
//! ARP request instead of the reply and a lost ping (ping does not retry).
//! This is what a stack thread that was not scheduled between the two
//! frames sees; here the test polls each stack by hand.

use std::net::Ipv4Addr;
use std::sync::Arc;

use ethdev::mempool::{Mempool, MempoolConfig};
use ethdev::packet::PacketMeta;
use ethdev::rss::RssConf;
use ethdev::{Instant, Mbuf, Owner, Wire};
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, Icmpv4Packet,
    Icmpv4Repr, IpProtocol, Ipv4Packet, Ipv4Repr,
};
use stack::{GroupConfig, StackGroup};
use user_veth::{Veth, VethWire};

const MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const PEER_MAC: [u8; 6] = [0x02, 0, 0, 0, 1, 0x10];

fn ethernet(dst: [u8; 6], ethertype: EthernetProtocol, payload_len: usize) -> Vec<u8> {
    let repr = EthernetRepr { src_addr: EthernetAddress(PEER_MAC), dst_addr: EthernetAddress(dst), ethertype };
    let mut buf = vec![0; repr.buffer_len() + payload_len];
    repr.emit(&mut EthernetFrame::new_unchecked(&mut buf[..]));
    buf
}

fn arp_request(peer: Ipv4Addr) -> Vec<u8> {
    let repr = ArpRepr::EthernetIpv4 {
        operation: ArpOperation::Request,
        source_hardware_addr: EthernetAddress(PEER_MAC),
        source_protocol_addr: peer,
        target_hardware_addr: EthernetAddress([0; 6]),
        target_protocol_addr: IP,
    };
    let mut buf = ethernet([0xff; 6], EthernetProtocol::Arp, repr.buffer_len());
    repr.emit(&mut ArpPacket::new_unchecked(&mut buf[14..]));
    buf
}

fn echo_request(peer: Ipv4Addr) -> Vec<u8> {
    let data = [7u8; 8];
    let icmp = Icmpv4Repr::EchoRequest { ident: 1, seq_no: 1, data: &data };
    let ip = Ipv4Repr {
        src_addr: peer,
        dst_addr: IP,
        next_header: IpProtocol::Icmp,
        payload_len: icmp.buffer_len(),
        hop_limit: 64,
    };
    let mut buf = ethernet(MAC, EthernetProtocol::Ipv4, ip.buffer_len() + icmp.buffer_len());
    let caps = ChecksumCapabilities::default();
    ip.emit(&mut Ipv4Packet::new_unchecked(&mut buf[14..34]), &caps);
    icmp.emit(&mut Icmpv4Packet::new_unchecked(&mut buf[34..]), &caps);
    buf
}

fn inject(wire: &mut VethWire, pool: &Mempool, frame: &[u8]) {
    let mut m: Mbuf = pool.alloc(Owner(100)).unwrap();
    assert!(m.extend_from_slice(frame));
    let mut burst = vec![m];
    wire.put_rx(&mut burst);
}

/// What the host sent, as (ethertype, ICMP type if any).
fn sent(wire: &mut VethWire) -> Vec<(u16, Option<u8>)> {
    let mut out = Vec::new();
    wire.take_tx(&mut out, 64);
    let kinds = out.iter().map(|m| {
        let d = m.data();
        let ethertype = u16::from_be_bytes([d[12], d[13]]);
        (ethertype, (ethertype == 0x0800 && d[23] == 1).then(|| d[34]))
    });
    kinds.collect()
}

#[test]
fn a_copied_neighbour_is_learned_before_a_frame_it_brought_about_is_answered() {
    let pool = Mempool::new(MempoolConfig::new("order", 256)).unwrap();
    let (port, mut wire) = Veth::new("order", MAC, pool.clone());
    let group = StackGroup::new(Arc::new(port), pool.clone(), GroupConfig::new(2, MAC, IP)).unwrap();
    // A peer whose echo requests RSS puts on queue 1 (ARP, with no IP
    // header to hash, goes to queue 0).
    let rss = RssConf::new(2).unwrap();
    let on_queue_1 = |peer: &Ipv4Addr| {
        let meta = PacketMeta::parse(&echo_request(*peer)).unwrap();
        rss.queue_for(&meta).map(|(_, q)| q) == Some(1)
    };
    let peer = (10..250).map(|n| Ipv4Addr::new(10, 0, 0, n)).find(on_queue_1).unwrap();
    let now = Instant::from_nanos(1_000_000);

    inject(&mut wire, &pool, &arp_request(peer));
    group.poll(0, now);
    assert_eq!(sent(&mut wire), [(0x0806, None)], "stack 0 answers the ARP request");
    inject(&mut wire, &pool, &echo_request(peer));
    group.poll(1, now);
    assert_eq!(group.stats(1).nic_rx, 1, "the echo request reached stack 1");
    assert_eq!(sent(&mut wire), [(0x0800, Some(0))], "stack 1 answers the echo request, no ARP first");
    for _ in 0..4 {
        (0..2).for_each(|i| _ = group.poll(i, now));
    }
    sent(&mut wire);
    drop(group);
    assert_eq!(pool.in_use(), 0);
}

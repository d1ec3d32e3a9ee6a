//! TCP super-frames (a TSO request sent whole): passed whole to a wire that
//! takes them over perfect links, cut into segments from the bridge's pool
//! for a wire that does not and before an impaired link, and a bad one is
//! a counted drop.

use std::time::Duration;

use ethdev::stats::DropReason;
use ethdev::{Mbuf, Mempool, MempoolConfig, OlFlags, Owner};
use etherparse::{NetSlice, PacketBuilder, SlicedPacket, TransportSlice};
use rstest::rstest;
use user_vbridge::{BridgeConfig, Direction, Impairments, PortConfig};

use crate::common::{mac, ms, Net};

const SEGSZ: u16 = 1460;
const PAYLOAD: usize = 10_000;

fn payload() -> Vec<u8> {
    (0..PAYLOAD).map(|i| (i * 11 % 251) as u8).collect()
}

/// A super-frame from port 0's MAC to port 1's: TCP over IPv4 with
/// `payload`, asking to be cut at [`SEGSZ`].
fn super_frame(pool: &Mempool, payload: &[u8]) -> Mbuf {
    let builder =
        PacketBuilder::ethernet2(mac(1), mac(2)).ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64).tcp(4000, 5000, 1, 65535);
    let mut frame = Vec::new();
    builder.write(&mut frame, payload).unwrap();
    let mut mbuf = pool.alloc(Owner(1)).unwrap();
    assert!(mbuf.extend_from_slice(&frame));
    mbuf.set_flags(OlFlags::TX_TCP_SEG);
    mbuf.request_tso(SEGSZ);
    mbuf
}

fn big_pool() -> Mempool {
    Mempool::new(MempoolConfig::new("super-frames", 8).data_room(16384)).unwrap()
}

/// Reassembles cut segments, checking each one's size and checksums.
fn reassemble(segments: &[Vec<u8>]) -> Vec<u8> {
    let mut out = vec![0; PAYLOAD];
    for segment in segments {
        assert!(segment.len() <= 14 + 20 + 20 + SEGSZ as usize);
        let parsed = SlicedPacket::from_ethernet(segment).unwrap();
        let (Some(NetSlice::Ipv4(ip)), Some(TransportSlice::Tcp(tcp))) = (&parsed.net, &parsed.transport) else {
            panic!("not TCP over IPv4")
        };
        assert_eq!(ip.header().header_checksum(), ip.header().to_header().calc_header_checksum());
        let sum = tcp.to_header().calc_checksum_ipv4(&ip.header().to_header(), tcp.payload()).unwrap();
        assert_eq!(tcp.checksum(), sum);
        let at = tcp.sequence_number().wrapping_sub(1) as usize;
        out[at..at + tcp.payload().len()].copy_from_slice(tcp.payload());
    }
    out
}

#[rstest]
fn a_super_frame_crosses_whole_to_a_wire_that_takes_them_and_is_cut_for_one_that_does_not(
    #[values(true, false)] takes: bool,
) {
    let mut net = Net::new(BridgeConfig::default(), 2);
    net.set_takes_super(1, takes);
    let pool = big_pool();
    let data = payload();
    net.send_mbuf(0, super_frame(&pool, &data));
    net.poll(ms(1));
    let got = net.take_rx_mbufs(1);
    if takes {
        assert_eq!(got.len(), 1);
        assert!(got[0].flags().contains(OlFlags::TX_TCP_SEG) && got[0].tso_segsz() == SEGSZ);
        assert_eq!(&got[0].data()[14 + 20 + 20..], &data[..], "the very frame, whole");
    } else {
        assert_eq!(got.len(), PAYLOAD.div_ceil(SEGSZ as usize));
        assert!(got.iter().all(|m| !m.flags().contains(OlFlags::TX_TCP_SEG)));
        let frames: Vec<Vec<u8>> = got.iter().map(|m| m.data().to_vec()).collect();
        assert_eq!(reassemble(&frames), data);
    }
    drop(got);
    net.finish();
    assert_eq!(pool.in_use(), 0);
}

/// An impaired link acts on wire segments: the bridge cuts a super-frame
/// before it, even for a port that takes super-frames.
#[rstest]
fn a_super_frame_is_cut_before_an_impaired_link(#[values(true, false)] on_ingress: bool) {
    let delayed = Impairments { delay: Duration::from_millis(2), ..Impairments::default() };
    let impaired = match on_ingress {
        true => [PortConfig { ingress: delayed, ..PortConfig::default() }, PortConfig::default()],
        false => [PortConfig::default(), PortConfig { egress: delayed, ..PortConfig::default() }],
    };
    let mut net = Net::with_ports(BridgeConfig::default(), impaired.to_vec());
    net.set_takes_super(1, true);
    let pool = big_pool();
    let data = payload();
    net.send_mbuf(0, super_frame(&pool, &data));
    net.poll(ms(1));
    net.advance_to(ms(10));
    let frames = net.take_rx(1);
    assert_eq!(frames.len(), PAYLOAD.div_ceil(SEGSZ as usize));
    assert_eq!(reassemble(&frames), data);
    net.finish();
    assert_eq!(pool.in_use(), 0);
}

/// A super-frame that cannot be cut (here UDP) is refused on the egress
/// link with its reason, never a panic.
#[test]
fn a_super_frame_that_cannot_be_cut_is_a_counted_drop() {
    let mut net = Net::new(BridgeConfig::default(), 2);
    let pool = big_pool();
    let builder = PacketBuilder::ethernet2(mac(1), mac(2)).ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64).udp(1, 2);
    let mut frame = Vec::new();
    builder.write(&mut frame, &[0; 3000]).unwrap();
    let mut mbuf = pool.alloc(Owner(1)).unwrap();
    assert!(mbuf.extend_from_slice(&frame));
    mbuf.set_flags(OlFlags::TX_TCP_SEG);
    mbuf.request_tso(SEGSZ);
    net.send_mbuf(0, mbuf);
    net.poll(ms(1));
    assert!(net.take_rx(1).is_empty());
    let egress = net.bridge.link_stats(net.ids[1], Direction::Egress).unwrap();
    assert_eq!(egress.drops.get(DropReason::BadOffload), 1);
    net.finish();
    assert_eq!(pool.in_use(), 0);
}

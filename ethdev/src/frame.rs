//! Building Ethernet frames from a flow description.
//!
//! Traffic generators, benchmarks and tests all need well-formed frames
//! for a given tuple; [`FrameSpec`] describes one (MACs, optional VLAN,
//! IPv4/IPv6 addresses, TCP or UDP ports) and etherparse writes it with
//! correct lengths and checksums.

use etherparse::{PacketBuilder, PacketBuilderStep, VlanId};

use crate::mac::MacAddr;
use crate::mbuf::Mbuf;
use crate::packet::IpAddrs;

/// The transport header of a generated frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// TCP with this sequence number; `syn` sets the SYN flag, otherwise ACK is set.
    Tcp {
        /// Sequence number.
        seq: u32,
        /// Whether this is a SYN.
        syn: bool,
    },
    /// UDP.
    Udp,
}

/// A frame to generate: addresses, ports and transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameSpec {
    /// Source MAC.
    pub src_mac: MacAddr,
    /// Destination MAC.
    pub dst_mac: MacAddr,
    /// 802.1Q VLAN id, if tagged.
    pub vlan: Option<u16>,
    /// IP addresses (the version follows).
    pub ip: IpAddrs,
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// TCP or UDP.
    pub transport: Transport,
}

impl FrameSpec {
    /// A TCP (ACK) frame between locally administered MACs 02::01 → 02::02.
    pub fn tcp(ip: IpAddrs, sport: u16, dport: u16) -> FrameSpec {
        FrameSpec {
            src_mac: MacAddr([2, 0, 0, 0, 0, 1]),
            dst_mac: MacAddr([2, 0, 0, 0, 0, 2]),
            vlan: None,
            ip,
            sport,
            dport,
            transport: Transport::Tcp { seq: 1, syn: false },
        }
    }

    /// The same addresses as [`FrameSpec::tcp`], over UDP.
    pub fn udp(ip: IpAddrs, sport: u16, dport: u16) -> FrameSpec {
        FrameSpec { transport: Transport::Udp, ..FrameSpec::tcp(ip, sport, dport) }
    }

    /// With these source and destination MACs.
    pub fn macs(self, src_mac: impl Into<MacAddr>, dst_mac: impl Into<MacAddr>) -> FrameSpec {
        FrameSpec { src_mac: src_mac.into(), dst_mac: dst_mac.into(), ..self }
    }

    /// Tagged with VLAN `vid` (low 12 bits).
    pub fn vlan(self, vid: u16) -> FrameSpec {
        FrameSpec { vlan: Some(vid & 0x0fff), ..self }
    }

    /// Bytes of a frame carrying `payload_len` payload bytes.
    pub fn len(&self, payload_len: usize) -> usize {
        match self.transport {
            Transport::Tcp { seq, .. } => self.ip_step().tcp(self.sport, self.dport, seq, 65535).size(payload_len),
            Transport::Udp => self.ip_step().udp(self.sport, self.dport).size(payload_len),
        }
    }

    /// The frame carrying `payload`.
    pub fn build(&self, payload: &[u8]) -> Vec<u8> {
        let mut frame = Vec::with_capacity(self.len(payload.len()));
        let written = match self.transport {
            Transport::Tcp { seq, syn } => {
                let step = self.ip_step().tcp(self.sport, self.dport, seq, 65535);
                let step = if syn { step.syn() } else { step.ack(1) };
                step.write(&mut frame, payload)
            }
            Transport::Udp => self.ip_step().udp(self.sport, self.dport).write(&mut frame, payload),
        };
        written.expect("payload sizes used by generators fit in one IP packet");
        frame
    }

    /// Writes the frame carrying `payload` into `mbuf` (appending); `false`
    /// if it does not fit.
    pub fn write_to(&self, payload: &[u8], mbuf: &mut Mbuf) -> bool {
        mbuf.extend_from_slice(&self.build(payload))
    }

    fn ip_step(&self) -> PacketBuilderStep<etherparse::IpHeaders> {
        let eth = PacketBuilder::ethernet2(self.src_mac.0, self.dst_mac.0);
        let vid = self.vlan.and_then(|v| VlanId::try_new(v).ok());
        match (vid, self.ip) {
            (None, IpAddrs::V4 { src, dst }) => eth.ipv4(src, dst, 64),
            (None, IpAddrs::V6 { src, dst }) => eth.ipv6(src, dst, 64),
            (Some(vid), IpAddrs::V4 { src, dst }) => eth.single_vlan(vid).ipv4(src, dst, 64),
            (Some(vid), IpAddrs::V6 { src, dst }) => eth.single_vlan(vid).ipv6(src, dst, 64),
        }
    }
}

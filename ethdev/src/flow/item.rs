//! Pattern items: which header fields a rule looks at, and how.
//!
//! Each item is a header description ([`EthItem`], [`Ipv4Item`], ...) wrapped
//! in an [`ItemSpec`] that carries `rte_flow`'s spec / last / mask triple. When a
//! rule is created its pattern is compiled into a flat list of [`Check`]s:
//! "this protocol is present" tests and masked range tests on one integer
//! field each. Matching a packet is then a loop over plain integers that
//! neither allocates nor branches on the item layout.

use crate::error::{FlowError, FlowErrorCause};
use crate::packet::{IpAddrs, PacketMeta};
use crate::proto::{ETHER_TYPE_IPV4, ETHER_TYPE_IPV6, PROTO_TCP, PROTO_UDP};

/// The spec / last / mask triple of one pattern item, over header type `T`.
///
/// A field takes part in matching when its mask is non-zero. It then matches
/// when `packet & mask` equals `spec & mask`, or, if the masked `last` is
/// greater than the masked `spec`, lies in `spec & mask ..= last & mask`.
/// Fields whose `last` is lower than or equal to `spec` match exactly, so a
/// `last` only needs the fields that describe a range.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ItemSpec<T> {
    /// Values to match; `None` matches any packet carrying this header.
    pub spec: Option<T>,
    /// Inclusive upper bounds for range matching; needs `spec`.
    pub last: Option<T>,
    /// Bits of each field that take part; `None` means the header type's
    /// `DEFAULT_MASK`, all zeroes means "any value". Needs `spec`.
    pub mask: Option<T>,
}

impl<T> ItemSpec<T> {
    /// Matches any packet that carries this header.
    pub const ANY: Self = Self { spec: None, last: None, mask: None };

    /// Matches `spec` under the header type's default mask.
    #[must_use]
    pub fn new(spec: T) -> Self {
        Self { spec: Some(spec), last: None, mask: None }
    }

    /// The same item with an explicit mask.
    #[must_use]
    pub fn with_mask(self, mask: T) -> Self {
        Self { mask: Some(mask), ..self }
    }

    /// The same item with inclusive upper bounds.
    #[must_use]
    pub fn with_last(self, last: T) -> Self {
        Self { last: Some(last), ..self }
    }
}

/// Ethernet header fields.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct EthItem {
    /// Destination MAC address.
    pub dst: [u8; 6],
    /// Source MAC address.
    pub src: [u8; 6],
    /// `EtherType` of the payload after any VLAN tags (see
    /// [`PacketMeta::ether_type`]).
    pub ether_type: u16,
}

impl EthItem {
    /// Default mask, as `rte_flow`'s: both addresses; the `EtherType` is not
    /// matched unless a mask asks for it.
    pub const DEFAULT_MASK: Self = Self { dst: [0xff; 6], src: [0xff; 6], ether_type: 0 };
}

/// 802.1Q / 802.1ad tag fields (outermost tag).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct VlanItem {
    /// VLAN id, 12 bits.
    pub vid: u16,
}

impl VlanItem {
    /// Default mask: all 12 bits of the VLAN id.
    pub const DEFAULT_MASK: Self = Self { vid: 0x0fff };
}

/// IPv4 header fields, addresses in network byte order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Ipv4Item {
    /// Source address.
    pub src: [u8; 4],
    /// Destination address.
    pub dst: [u8; 4],
    /// Protocol of the payload.
    pub proto: u8,
}

impl Ipv4Item {
    /// Default mask: both addresses, not the protocol.
    pub const DEFAULT_MASK: Self = Self { src: [0xff; 4], dst: [0xff; 4], proto: 0 };
}

/// IPv6 header fields, addresses in network byte order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Ipv6Item {
    /// Source address.
    pub src: [u8; 16],
    /// Destination address.
    pub dst: [u8; 16],
    /// Transport protocol: the next header after any extension headers.
    pub proto: u8,
}

impl Ipv6Item {
    /// Default mask: both addresses, not the next header.
    pub const DEFAULT_MASK: Self = Self { src: [0xff; 16], dst: [0xff; 16], proto: 0 };
}

/// TCP header fields, host byte order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TcpItem {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Flags byte (FIN=0x01, SYN=0x02, RST=0x04, PSH=0x08, ACK=0x10, ...).
    pub flags: u8,
}

impl TcpItem {
    /// Default mask: both ports, not the flags.
    pub const DEFAULT_MASK: Self = Self { src_port: 0xffff, dst_port: 0xffff, flags: 0 };
}

/// UDP header fields, host byte order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct UdpItem {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
}

impl UdpItem {
    /// Default mask: both ports.
    pub const DEFAULT_MASK: Self = Self { src_port: 0xffff, dst_port: 0xffff };
}

/// One layer of a pattern. Items list layers from the outermost inwards;
/// layers may be skipped (`[Tcp]` alone matches any TCP packet) but never
/// repeated or reordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FlowItem {
    /// Ethernet header; present in every frame.
    Eth(ItemSpec<EthItem>),
    /// VLAN tag; only tagged frames match.
    Vlan(ItemSpec<VlanItem>),
    /// IPv4 header.
    Ipv4(ItemSpec<Ipv4Item>),
    /// IPv6 header.
    Ipv6(ItemSpec<Ipv6Item>),
    /// TCP header; fragments (which carry no readable TCP header) never match.
    Tcp(ItemSpec<TcpItem>),
    /// UDP header; fragments never match.
    Udp(ItemSpec<UdpItem>),
}

/// The protocol an item describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Protocol {
    Eth,
    Vlan,
    Ipv4,
    Ipv6,
    Tcp,
    Udp,
}

impl Protocol {
    /// Stacking order: an item must sit on a strictly lower layer.
    fn layer(self) -> u8 {
        match self {
            Protocol::Eth => 0,
            Protocol::Vlan => 1,
            Protocol::Ipv4 | Protocol::Ipv6 => 2,
            Protocol::Tcp | Protocol::Udp => 3,
        }
    }

    /// Whether the packet carries a readable header of this protocol.
    fn present(self, meta: &PacketMeta) -> bool {
        match self {
            Protocol::Eth => true,
            Protocol::Vlan => meta.vlan.is_some(),
            Protocol::Ipv4 => matches!(meta.ip, Some(IpAddrs::V4 { .. })),
            Protocol::Ipv6 => matches!(meta.ip, Some(IpAddrs::V6 { .. })),
            Protocol::Tcp => meta.ip_proto == Some(PROTO_TCP) && meta.ports.is_some(),
            Protocol::Udp => meta.ip_proto == Some(PROTO_UDP) && meta.ports.is_some(),
        }
    }

    /// The value this protocol requires of a field of the layer below.
    fn implies(self) -> Option<(Field, u128)> {
        match self {
            Protocol::Eth | Protocol::Vlan => None,
            Protocol::Ipv4 => Some((Field::EthType, u128::from(ETHER_TYPE_IPV4))),
            Protocol::Ipv6 => Some((Field::EthType, u128::from(ETHER_TYPE_IPV6))),
            Protocol::Tcp => Some((Field::IpProto, PROTO_TCP.into())),
            Protocol::Udp => Some((Field::IpProto, PROTO_UDP.into())),
        }
    }
}

/// A header field a check reads, widened to `u128`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Field {
    EthDst,
    EthSrc,
    EthType,
    VlanId,
    Ipv4Src,
    Ipv4Dst,
    Ipv6Src,
    Ipv6Dst,
    IpProto,
    SrcPort,
    DstPort,
    TcpFlags,
}

impl Field {
    /// Width of the field in bits; wider spec, last or mask values are refused.
    fn bits(self) -> u32 {
        match self {
            Field::EthDst | Field::EthSrc => 48,
            Field::VlanId => 12,
            Field::Ipv4Src | Field::Ipv4Dst => 32,
            Field::Ipv6Src | Field::Ipv6Dst => 128,
            Field::IpProto | Field::TcpFlags => 8,
            Field::EthType | Field::SrcPort | Field::DstPort => 16,
        }
    }

    /// The field's value in `meta`, or `None` when the packet lacks it.
    fn read(self, meta: &PacketMeta) -> Option<u128> {
        match self {
            Field::EthDst => Some(be(&meta.dst_mac)),
            Field::EthSrc => Some(be(&meta.src_mac)),
            Field::EthType => Some(meta.ether_type.into()),
            Field::VlanId => meta.vlan.map(|tci| (tci & 0x0fff).into()),
            Field::Ipv4Src | Field::Ipv4Dst | Field::Ipv6Src | Field::Ipv6Dst => self.read_ip(meta),
            Field::IpProto => meta.ip_proto.map(u128::from),
            Field::SrcPort => meta.ports.map(|(src, _)| src.into()),
            Field::DstPort => meta.ports.map(|(_, dst)| dst.into()),
            Field::TcpFlags => meta.ports.map(|_| meta.tcp_flags.into()),
        }
    }

    fn read_ip(self, meta: &PacketMeta) -> Option<u128> {
        match (self, meta.ip?) {
            (Field::Ipv4Src, IpAddrs::V4 { src, .. }) => Some(be(&src)),
            (Field::Ipv4Dst, IpAddrs::V4 { dst, .. }) => Some(be(&dst)),
            (Field::Ipv6Src, IpAddrs::V6 { src, .. }) => Some(be(&src)),
            (Field::Ipv6Dst, IpAddrs::V6 { dst, .. }) => Some(be(&dst)),
            _ => None,
        }
    }
}

/// Big-endian bytes (at most 16) as an integer.
fn be(bytes: &[u8]) -> u128 {
    bytes.iter().fold(0, |acc, &b| (acc << 8) | u128::from(b))
}

/// One field's masked inclusive range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FieldCheck {
    field: Field,
    mask: u128,
    lo: u128,
    hi: u128,
}

impl FieldCheck {
    fn accepts(&self, value: u128) -> bool {
        (self.lo..=self.hi).contains(&(value & self.mask))
    }
}

/// One compiled test a packet must pass for its rule to match.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Check {
    /// The packet carries this protocol's header.
    Present(Protocol),
    /// A field, masked, lies in a range.
    Field(FieldCheck),
}

impl Check {
    /// Whether `meta` passes this check.
    #[inline]
    pub(crate) fn matches(&self, meta: &PacketMeta) -> bool {
        match self {
            Check::Present(protocol) => protocol.present(meta),
            Check::Field(check) => check.field.read(meta).is_some_and(|v| check.accepts(v)),
        }
    }
}

/// A header type an item can describe.
trait Header: Copy {
    const PROTOCOL: Protocol;
    fn default_mask() -> Self;
    fn fields(&self) -> Vec<(Field, u128)>;
}

impl Header for EthItem {
    const PROTOCOL: Protocol = Protocol::Eth;
    fn default_mask() -> Self {
        Self::DEFAULT_MASK
    }
    fn fields(&self) -> Vec<(Field, u128)> {
        vec![(Field::EthDst, be(&self.dst)), (Field::EthSrc, be(&self.src)), (Field::EthType, self.ether_type.into())]
    }
}

impl Header for VlanItem {
    const PROTOCOL: Protocol = Protocol::Vlan;
    fn default_mask() -> Self {
        Self::DEFAULT_MASK
    }
    fn fields(&self) -> Vec<(Field, u128)> {
        vec![(Field::VlanId, self.vid.into())]
    }
}

impl Header for Ipv4Item {
    const PROTOCOL: Protocol = Protocol::Ipv4;
    fn default_mask() -> Self {
        Self::DEFAULT_MASK
    }
    fn fields(&self) -> Vec<(Field, u128)> {
        vec![(Field::Ipv4Src, be(&self.src)), (Field::Ipv4Dst, be(&self.dst)), (Field::IpProto, self.proto.into())]
    }
}

impl Header for Ipv6Item {
    const PROTOCOL: Protocol = Protocol::Ipv6;
    fn default_mask() -> Self {
        Self::DEFAULT_MASK
    }
    fn fields(&self) -> Vec<(Field, u128)> {
        vec![(Field::Ipv6Src, be(&self.src)), (Field::Ipv6Dst, be(&self.dst)), (Field::IpProto, self.proto.into())]
    }
}

impl Header for TcpItem {
    const PROTOCOL: Protocol = Protocol::Tcp;
    fn default_mask() -> Self {
        Self::DEFAULT_MASK
    }
    fn fields(&self) -> Vec<(Field, u128)> {
        vec![
            (Field::SrcPort, self.src_port.into()),
            (Field::DstPort, self.dst_port.into()),
            (Field::TcpFlags, self.flags.into()),
        ]
    }
}

impl Header for UdpItem {
    const PROTOCOL: Protocol = Protocol::Udp;
    fn default_mask() -> Self {
        Self::DEFAULT_MASK
    }
    fn fields(&self) -> Vec<(Field, u128)> {
        vec![(Field::SrcPort, self.src_port.into()), (Field::DstPort, self.dst_port.into())]
    }
}

impl FlowItem {
    fn protocol(&self) -> Protocol {
        match self {
            FlowItem::Eth(_) => Protocol::Eth,
            FlowItem::Vlan(_) => Protocol::Vlan,
            FlowItem::Ipv4(_) => Protocol::Ipv4,
            FlowItem::Ipv6(_) => Protocol::Ipv6,
            FlowItem::Tcp(_) => Protocol::Tcp,
            FlowItem::Udp(_) => Protocol::Udp,
        }
    }

    fn compile(&self, index: usize, out: &mut Vec<Check>) -> Result<(), FlowError> {
        match self {
            FlowItem::Eth(item) => compile_item(item, index, out),
            FlowItem::Vlan(item) => compile_item(item, index, out),
            FlowItem::Ipv4(item) => compile_item(item, index, out),
            FlowItem::Ipv6(item) => compile_item(item, index, out),
            FlowItem::Tcp(item) => compile_item(item, index, out),
            FlowItem::Udp(item) => compile_item(item, index, out),
        }
    }
}

/// Compiles a pattern into the checks a matching packet passes, refusing
/// misordered layers, contradictory stacking and malformed items.
pub(crate) fn compile_pattern(pattern: &[FlowItem]) -> Result<Vec<Check>, FlowError> {
    let mut checks = Vec::new();
    let mut below = None;
    for (index, item) in pattern.iter().enumerate() {
        let protocol = item.protocol();
        check_stacking(below, protocol, index)?;
        check_implied(&checks, protocol, index)?;
        item.compile(index, &mut checks)?;
        below = Some(protocol);
    }
    Ok(checks)
}

fn item_error(index: usize, message: impl Into<String>) -> FlowError {
    FlowError::new(FlowErrorCause::Item(index), message)
}

fn check_stacking(below: Option<Protocol>, protocol: Protocol, index: usize) -> Result<(), FlowError> {
    match below {
        Some(lower) if lower.layer() >= protocol.layer() => {
            Err(item_error(index, format!("{protocol:?} cannot follow {lower:?}")))
        }
        _ => Ok(()),
    }
}

/// Refuses e.g. `Ipv4 { proto: 17 }` followed by `Tcp`: no packet matches.
fn check_implied(checks: &[Check], protocol: Protocol, index: usize) -> Result<(), FlowError> {
    let Some((field, value)) = protocol.implies() else {
        return Ok(());
    };
    let contradicted =
        checks.iter().any(|check| matches!(check, Check::Field(c) if c.field == field && !c.accepts(value)));
    if contradicted {
        return Err(item_error(index, format!("{protocol:?} contradicts the {field:?} matched below it")));
    }
    Ok(())
}

fn compile_item<T: Header>(item: &ItemSpec<T>, index: usize, out: &mut Vec<Check>) -> Result<(), FlowError> {
    if T::PROTOCOL != Protocol::Eth {
        out.push(Check::Present(T::PROTOCOL));
    }
    let Some(spec) = &item.spec else {
        return match (item.last, item.mask) {
            (None, None) => Ok(()),
            _ => Err(item_error(index, "last or mask given without spec")),
        };
    };
    let mask = item.mask.unwrap_or_else(T::default_mask).fields();
    let last = item.last.map(|last| last.fields());
    for (n, (&(field, spec), &(_, mask))) in spec.fields().iter().zip(&mask).enumerate() {
        let last = last.as_ref().and_then(|fields| fields.get(n)).map(|&(_, value)| value);
        if let Some(check) = field_check(field, spec, last, mask, index)? {
            out.push(Check::Field(check));
        }
    }
    Ok(())
}

fn field_check(
    field: Field,
    spec: u128,
    last: Option<u128>,
    mask: u128,
    index: usize,
) -> Result<Option<FieldCheck>, FlowError> {
    let limit = u128::MAX.checked_shl(field.bits()).unwrap_or(0);
    if (spec | mask | last.unwrap_or(0)) & limit != 0 {
        return Err(item_error(index, format!("{field:?} is only {} bits wide", field.bits())));
    }
    if mask == 0 {
        return Ok(None);
    }
    let lo = spec & mask;
    let hi = last.map_or(lo, |last| (last & mask).max(lo));
    Ok(Some(FieldCheck { field, mask, lo, hi }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta_v4_tcp() -> PacketMeta {
        PacketMeta {
            dst_mac: [2, 0, 0, 0, 0, 2],
            src_mac: [2, 0, 0, 0, 0, 1],
            vlan: Some(0x2005),
            ether_type: 0x0800,
            l3_offset: 18,
            ip: Some(IpAddrs::V4 { src: [10, 0, 0, 1], dst: [10, 0, 0, 2] }),
            ip_proto: Some(PROTO_TCP),
            fragment: false,
            l4_offset: 38,
            ports: Some((1234, 80)),
            tcp_flags: 0x12,
        }
    }

    #[test]
    fn be_reads_network_order() {
        assert_eq!(be(&[0x0a, 0, 0, 1]), 0x0a00_0001);
        assert_eq!(be(&[0xff; 16]), u128::MAX);
        assert_eq!(be(&[]), 0);
    }

    #[test]
    fn fields_read_from_meta() {
        let meta = meta_v4_tcp();
        assert_eq!(Field::EthDst.read(&meta), Some(0x0200_0000_0002));
        assert_eq!(Field::VlanId.read(&meta), Some(5), "priority bits are not part of the id");
        assert_eq!(Field::Ipv4Src.read(&meta), Some(0x0a00_0001));
        assert_eq!(Field::Ipv6Src.read(&meta), None);
        assert_eq!(Field::DstPort.read(&meta), Some(80));
        assert_eq!(Field::TcpFlags.read(&meta), Some(0x12));
    }

    #[test]
    fn field_check_drops_zero_masks_and_clamps_low_last() {
        assert_eq!(field_check(Field::DstPort, 80, None, 0, 0), Ok(None));
        let check = field_check(Field::DstPort, 80, Some(10), 0xffff, 0);
        assert_eq!(check.map(|c| c.map(|c| (c.lo, c.hi))), Ok(Some((80, 80))));
    }

    #[test]
    fn field_check_refuses_values_wider_than_the_field() {
        let err = field_check(Field::VlanId, 0x1000, None, 0x0fff, 3);
        assert_eq!(err.map_err(|e| e.cause), Err(FlowErrorCause::Item(3)));
        assert!(field_check(Field::Ipv6Src, u128::MAX, None, u128::MAX, 0).is_ok());
    }

    #[test]
    fn eth_item_compiles_without_presence_check() {
        let checks = compile_pattern(&[FlowItem::Eth(ItemSpec::ANY)]);
        assert_eq!(checks, Ok(Vec::new()));
    }

    #[test]
    fn compiled_pattern_matches_its_packet() {
        let meta = meta_v4_tcp();
        let pattern = [
            FlowItem::Vlan(ItemSpec::new(VlanItem { vid: 5 })),
            FlowItem::Ipv4(ItemSpec::new(Ipv4Item { src: [10, 0, 0, 1], dst: [10, 0, 0, 2], proto: 0 })),
            FlowItem::Tcp(ItemSpec::new(TcpItem { src_port: 1234, dst_port: 80, flags: 0 })),
        ];
        let checks = compile_pattern(&pattern).expect("valid pattern");
        assert!(checks.iter().all(|c| c.matches(&meta)));
    }
}

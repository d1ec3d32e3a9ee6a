//! dtnet's flow rules on a DPDK port, as rte_flow rules.
//!
//! A rule in dtnet's model ([`FlowAttr`], [`FlowItem`]s with their spec /
//! last / mask, [`FlowAction`]s) is written into the plain structs of the
//! C shim (`dpdk-sys/csrc/flow.h`), which builds rte_flow's items and
//! actions and calls `rte_flow_validate` / `rte_flow_create`. An item
//! without an explicit mask gets dtnet's default mask of its type, so the
//! device matches exactly what dtnet's own classifier would. A driver that
//! refuses a rule, or has no rte_flow at all (`net_ring`, `net_null`), is
//! [`Error::FlowUnsupported`] with the driver's own message: "unsupported
//! by device", never a silent success.

#![allow(unsafe_code)]

use std::ffi::c_char;
use std::ptr::NonNull;

use dpdk_sys as sys;
use ethdev::flow::{FlowAction, FlowAttr, FlowItem, ItemSpec};

use crate::eal::PortId;
use crate::error::{Error, Result};
use crate::ffi;
use crate::port::{rss_hf, DevInfo};

/// Bytes of a driver's error message kept.
const MESSAGE: usize = 256;

/// A created rte_flow rule, destroyed by [`destroy`] or a flush.
#[derive(Debug)]
pub(crate) struct RteFlow(NonNull<sys::rte_flow>);

// SAFETY: the handle is an opaque pointer DPDK hands back to rte_flow
// calls on the port, which are thread-safe for one caller at a time; the
// adapter keeps it behind its state mutex.
unsafe impl Send for RteFlow {}

/// Checks with the device that it would take the rule.
pub(crate) fn validate(
    port: PortId,
    info: &DevInfo,
    attr: &FlowAttr,
    pattern: &[FlowItem],
    actions: &[FlowAction],
) -> Result<()> {
    apply(port, info, false, attr, pattern, actions).map(drop)
}

/// Creates the rule on the device.
pub(crate) fn create(
    port: PortId,
    info: &DevInfo,
    attr: &FlowAttr,
    pattern: &[FlowItem],
    actions: &[FlowAction],
) -> Result<RteFlow> {
    apply(port, info, true, attr, pattern, actions)?
        .ok_or_else(|| unsupported(port, info, "rte_flow_create returned no rule".into()))
}

/// Destroys a rule made by [`create`] on `port`.
pub(crate) fn destroy(port: PortId, info: &DevInfo, flow: RteFlow) -> Result<()> {
    let mut msg = [0 as c_char; MESSAGE];
    // SAFETY: flow was created on this port and is destroyed once (it is
    // moved in); msg has MESSAGE bytes.
    let rc = unsafe { sys::dtnet_flow_destroy(port.0, flow.0.as_ptr(), msg.as_mut_ptr(), MESSAGE) };
    refusal(port, info, rc, &msg)
}

/// Destroys every rule on `port`.
pub(crate) fn flush(port: PortId, info: &DevInfo) -> Result<()> {
    let mut msg = [0 as c_char; MESSAGE];
    // SAFETY: msg has MESSAGE bytes; the port id is checked by DPDK.
    let rc = unsafe { sys::dtnet_flow_flush(port.0, msg.as_mut_ptr(), MESSAGE) };
    refusal(port, info, rc, &msg)
}

fn apply(
    port: PortId,
    info: &DevInfo,
    create: bool,
    attr: &FlowAttr,
    pattern: &[FlowItem],
    actions: &[FlowAction],
) -> Result<Option<RteFlow>> {
    let items: Vec<sys::dtnet_flow_item> = pattern.iter().map(item).collect();
    let queue_lists: Vec<Vec<u16>> = actions
        .iter()
        .map(|a| match a {
            FlowAction::Rss { queues, .. } => queues.clone(),
            _ => Vec::new(),
        })
        .collect();
    let actions: Vec<sys::dtnet_flow_action> = actions.iter().zip(&queue_lists).map(|(a, q)| action(a, q)).collect();
    let (mut rc, mut msg) = (0, [0 as c_char; MESSAGE]);
    // SAFETY: items and actions hold item_count / action_count entries
    // (the shim checks the limit); the RSS queue lists they point into
    // (queue_lists) outlive the call; rc and msg are valid out-pointers.
    let flow = unsafe {
        sys::dtnet_flow_apply(
            port.0,
            i32::from(create),
            attr.group,
            attr.priority,
            i32::from(attr.ingress),
            items.as_ptr(),
            items.len() as u32,
            actions.as_ptr(),
            actions.len() as u32,
            &mut rc,
            msg.as_mut_ptr(),
            MESSAGE,
        )
    };
    refusal(port, info, rc, &msg)?;
    Ok(NonNull::new(flow).map(RteFlow))
}

/// `Ok` for `rc == 0`, else the driver's refusal.
fn refusal(port: PortId, info: &DevInfo, rc: i32, msg: &[c_char]) -> Result<()> {
    if rc == 0 {
        return Ok(());
    }
    let errno = -rc;
    let reason = format!("{} ({}, errno {errno})", ffi::text(msg), ffi::strerror(errno));
    Err(unsupported(port, info, reason))
}

fn unsupported(port: PortId, info: &DevInfo, reason: String) -> Error {
    Error::FlowUnsupported { port: port.0, driver: info.driver.clone(), reason }
}

/// Spec, last and mask of an item as the shim's flags and fields (a
/// missing mask is the type's default, as in dtnet's classifier).
fn triple<T: Copy>(
    item: &ItemSpec<T>,
    default_mask: T,
    fields: impl Fn(&T) -> sys::dtnet_flow_fields,
) -> (bool, bool, bool, [sys::dtnet_flow_fields; 3]) {
    let none = sys::dtnet_flow_fields::default();
    let spec = item.spec.as_ref().map_or(none, &fields);
    let last = item.last.as_ref().map_or(none, &fields);
    let mask = if item.spec.is_some() { fields(&item.mask.unwrap_or(default_mask)) } else { none };
    (item.spec.is_some(), item.last.is_some(), item.spec.is_some(), [spec, last, mask])
}

fn item(item: &FlowItem) -> sys::dtnet_flow_item {
    use ethdev::flow::{EthItem, Ipv4Item, Ipv6Item, TcpItem, UdpItem, VlanItem};
    let f = sys::dtnet_flow_fields::default;
    let (ty, (has_spec, has_last, has_mask, [spec, last, mask])) = match item {
        FlowItem::Eth(i) => (
            sys::DTNET_FLOW_ITEM_ETH,
            triple(i, EthItem::DEFAULT_MASK, |e| sys::dtnet_flow_fields {
                dst_mac: e.dst,
                src_mac: e.src,
                ether_type: e.ether_type,
                ..f()
            }),
        ),
        FlowItem::Vlan(i) => (
            sys::DTNET_FLOW_ITEM_VLAN,
            triple(i, VlanItem::DEFAULT_MASK, |v| sys::dtnet_flow_fields { vid: v.vid, ..f() }),
        ),
        FlowItem::Ipv4(i) => (
            sys::DTNET_FLOW_ITEM_IPV4,
            triple(i, Ipv4Item::DEFAULT_MASK, |v| sys::dtnet_flow_fields {
                src_ip: widen(&v.src),
                dst_ip: widen(&v.dst),
                proto: v.proto,
                ..f()
            }),
        ),
        FlowItem::Ipv6(i) => (
            sys::DTNET_FLOW_ITEM_IPV6,
            triple(i, Ipv6Item::DEFAULT_MASK, |v| sys::dtnet_flow_fields {
                src_ip: v.src,
                dst_ip: v.dst,
                proto: v.proto,
                ..f()
            }),
        ),
        FlowItem::Tcp(i) => (
            sys::DTNET_FLOW_ITEM_TCP,
            triple(i, TcpItem::DEFAULT_MASK, |t| sys::dtnet_flow_fields {
                src_port: t.src_port,
                dst_port: t.dst_port,
                tcp_flags: t.flags,
                ..f()
            }),
        ),
        FlowItem::Udp(i) => (
            sys::DTNET_FLOW_ITEM_UDP,
            triple(i, UdpItem::DEFAULT_MASK, |u| sys::dtnet_flow_fields {
                src_port: u.src_port,
                dst_port: u.dst_port,
                ..f()
            }),
        ),
    };
    sys::dtnet_flow_item {
        type_: ty as i32,
        has_spec: i32::from(has_spec),
        has_last: i32::from(has_last),
        has_mask: i32::from(has_mask),
        spec,
        last,
        mask,
    }
}

/// An IPv4 address in the first bytes of the shim's 16-byte address field.
fn widen(v4: &[u8; 4]) -> [u8; 16] {
    let mut out = [0; 16];
    out[..4].copy_from_slice(v4);
    out
}

/// An action as the shim's struct; `queues` is the RSS action's list, which
/// must outlive the shim call.
fn action(action: &FlowAction, queues: &[u16]) -> sys::dtnet_flow_action {
    let of = |ty: u32, value: u32| sys::dtnet_flow_action {
        type_: ty as i32,
        value,
        queues: std::ptr::null(),
        queue_count: 0,
        rss_types: 0,
    };
    match action {
        FlowAction::Queue(q) => of(sys::DTNET_FLOW_ACTION_QUEUE, u32::from(*q)),
        FlowAction::Drop => of(sys::DTNET_FLOW_ACTION_DROP, 0),
        FlowAction::Passthru => of(sys::DTNET_FLOW_ACTION_PASSTHRU, 0),
        FlowAction::Mark(mark) => of(sys::DTNET_FLOW_ACTION_MARK, *mark),
        FlowAction::Count => of(sys::DTNET_FLOW_ACTION_COUNT, 0),
        FlowAction::Rss { types, .. } => sys::dtnet_flow_action {
            queues: queues.as_ptr(),
            queue_count: queues.len() as u32,
            rss_types: rss_hf(*types),
            ..of(sys::DTNET_FLOW_ACTION_RSS, 0)
        },
    }
}

//! Semantic checks of a [`StackConfig`]: ranges gazelle enforces in `lstack_cfg.c`, the
//! contradictions gazelle refuses, and dtnet's own rules for `soft_forward`.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use super::de::CPUS_MAX;
use super::{StackConfig, ValidationError};

type Check = fn(&StackConfig) -> Result<(), ValidationError>;

/// Every check, in the order errors are reported.
const CHECKS: &[Check] = &[
    check_cpus,
    check_wakeup,
    check_ipv4,
    check_ipv6,
    check_forwarding,
    check_processes,
    check_counts,
    check_queues,
    check_vlan_and_bond,
    check_strings,
];

/// Runs all checks and returns the first failure.
pub(crate) fn validate(config: &StackConfig) -> Result<(), ValidationError> {
    CHECKS.iter().try_for_each(|check| check(config))
}

/// Largest NUMA node id + 1 (`GAZELLE_MAX_NUMA_NODES`).
const NUMA_NODES_MAX: u32 = 8;
/// Largest `tcp_conn_count` (`GAZELLE_MAX_CLIENTS` in gazelle's lwIP options).
const TCP_CONN_MAX: u32 = 20_000;
/// Upper bound gazelle uses for per-loop counters (they are `int32_t`).
const COUNTER_MAX: u32 = i32::MAX as u32;
/// NIC descriptor ring bounds (`NIC_QUEUE_SIZE_MIN`, `NIC_QUEUE_SIZE_MAX`).
const QUEUE_SIZE: std::ops::RangeInclusive<u32> = 512..=8192;
/// `dpdk_args` must leave room in gazelle's 32-slot argv.
const DPDK_ARGS_MAX: usize = 31;
/// `unix_prefix` must fit gazelle's 128-byte socket name buffer.
const UNIX_PREFIX_MAX: usize = 127;
/// Characters gazelle refuses in `unix_prefix`.
const UNIX_PREFIX_FORBIDDEN: &[char] = &['|', ';', '&', '$', '>', '<', '`', '\\', '!', '\n'];

fn fail(key: &'static str, message: impl Into<String>) -> Result<(), ValidationError> {
    Err(ValidationError::new(key, message))
}

/// A CPU list is non-empty, in range and free of repeats.
fn check_cpu_list(key: &'static str, cpus: &[u32], max: u32) -> Result<(), ValidationError> {
    if cpus.is_empty() {
        return fail(key, "empty list; give at least one id, like \"2\" or \"2-5\"");
    }
    let mut seen = HashSet::new();
    for &cpu in cpus {
        if cpu >= max {
            return fail(key, format!("id {cpu} is out of range 0..{max}"));
        }
        if !seen.insert(cpu) {
            return fail(key, format!("id {cpu} is listed more than once"));
        }
    }
    Ok(())
}

fn check_cpus(c: &StackConfig) -> Result<(), ValidationError> {
    check_cpu_list("num_cpus", &c.num_cpus, CPUS_MAX)
}

fn check_wakeup(c: &StackConfig) -> Result<(), ValidationError> {
    let Some(wakeup) = &c.num_wakeup else { return Ok(()) };
    check_cpu_list("num_wakeup", wakeup, CPUS_MAX)?;
    if wakeup.len() < c.num_cpus.len() {
        return fail(
            "num_wakeup",
            format!("lists {} CPUs, fewer than the {} in num_cpus", wakeup.len(), c.num_cpus.len()),
        );
    }
    Ok(())
}

/// `mask` has its one bits in one contiguous run from the top.
fn is_contiguous_mask(mask: Ipv4Addr) -> bool {
    let inverted = !u32::from(mask);
    inverted & inverted.wrapping_add(1) == 0
}

fn check_ipv4(c: &StackConfig) -> Result<(), ValidationError> {
    let Some(host) = c.host_addr else {
        return match c.host_addr6 {
            Some(_) => Ok(()),
            None => fail("host_addr", "host_addr or host_addr6 must be set"),
        };
    };
    if host.is_multicast() || host.is_broadcast() || host.is_unspecified() {
        return fail("host_addr", format!("{host} is not a unicast host address"));
    }
    let Some(mask) = c.mask_addr else { return fail("mask_addr", "required when host_addr is set") };
    if !is_contiguous_mask(mask) {
        return fail("mask_addr", format!("{mask} is not a contiguous netmask like 255.255.255.0"));
    }
    let Some(gateway) = c.gateway_addr else { return fail("gateway_addr", "required when host_addr is set") };
    if u32::from(host) & u32::from(mask) != u32::from(gateway) & u32::from(mask) {
        let prefix = u32::from(mask).count_ones();
        let net = Ipv4Addr::from(u32::from(gateway) & u32::from(mask));
        return fail("host_addr", format!("{host} is outside {net}/{prefix}, the network of gateway_addr {gateway}"));
    }
    Ok(())
}

fn check_ipv6(c: &StackConfig) -> Result<(), ValidationError> {
    match c.host_addr6 {
        Some(a) if a.is_multicast() || a.is_unspecified() => {
            fail("host_addr6", format!("{a} is not a unicast host address"))
        }
        _ => Ok(()),
    }
}

/// Note for messages about `use_ltran`, which is on unless the file turns it off.
const LTRAN_HINT: &str = "use_ltran=1 (gazelle's default; set use_ltran=0)";

/// The packet distribution switches gazelle (and dtnet) refuse to combine.
fn check_forwarding(c: &StackConfig) -> Result<(), ValidationError> {
    if c.kni_switch && c.use_ltran {
        return fail("kni_switch", format!("kni_switch=1 cannot be used with {LTRAN_HINT}"));
    }
    for (on, key, other) in [
        (c.tuple_filter && c.use_ltran, "tuple_filter", LTRAN_HINT),
        (c.tuple_filter && c.listen_shadow, "tuple_filter", "listen_shadow=1"),
        (c.soft_forward && c.use_ltran, "soft_forward", LTRAN_HINT),
        (c.soft_forward && c.tuple_filter, "soft_forward", "tuple_filter=1"),
        (c.soft_forward && c.listen_shadow, "soft_forward", "listen_shadow=1"),
    ] {
        if on {
            return fail(key, format!("{key}=1 cannot be combined with {other}"));
        }
    }
    Ok(())
}

/// Multi-process (tuple_filter) settings: index within count, primary is index 0.
fn check_processes(c: &StackConfig) -> Result<(), ValidationError> {
    if c.num_process == 0 {
        return fail("num_process", "must be at least 1");
    }
    if c.process_idx >= c.num_process {
        return fail("process_idx", format!("{} is not below num_process {}", c.process_idx, c.num_process));
    }
    if let Some(numa) = &c.process_numa {
        check_cpu_list("process_numa", numa, NUMA_NODES_MAX)?;
    }
    let secondary = c.dpdk_args.iter().any(|a| a == "secondary");
    if !c.dpdk_args.is_empty() && secondary == (c.process_idx == 0) {
        return fail("process_idx", "must be 0 exactly for the DPDK primary process (--proc-type primary)");
    }
    Ok(())
}

fn check_range(key: &'static str, value: u32, range: std::ops::RangeInclusive<u32>) -> Result<(), ValidationError> {
    if range.contains(&value) {
        return Ok(());
    }
    fail(key, format!("{value} is out of range {}..={}", range.start(), range.end()))
}

fn check_counts(c: &StackConfig) -> Result<(), ValidationError> {
    check_range("tcp_conn_count", c.tcp_conn_count, 1..=TCP_CONN_MAX)?;
    check_range("mbuf_count_per_conn", c.mbuf_count_per_conn, 1..=COUNTER_MAX)?;
    check_range("rpc_number", c.rpc_number, 1..=COUNTER_MAX)?;
    check_range("nic_read_number", c.nic_read_number, 1..=COUNTER_MAX)?;
    check_range("send_connect_number", c.send_connect_number, 1..=COUNTER_MAX)?;
    check_range("read_connect_number", c.read_connect_number, 1..=COUNTER_MAX)
}

fn check_queue(key: &'static str, size: u32) -> Result<(), ValidationError> {
    check_range(key, size, QUEUE_SIZE)?;
    if !size.is_power_of_two() {
        return fail(key, format!("{size} is not a power of two"));
    }
    Ok(())
}

fn check_queues(c: &StackConfig) -> Result<(), ValidationError> {
    check_queue("nic_rxqueue_size", c.nic_rxqueue_size)?;
    check_queue("nic_txqueue_size", c.nic_txqueue_size)
}

fn check_vlan_and_bond(c: &StackConfig) -> Result<(), ValidationError> {
    if !(-1..=4094).contains(&c.nic_vlan_mode) {
        return fail("nic_vlan_mode", format!("{} is out of range -1..=4094 (-1 disables VLAN)", c.nic_vlan_mode));
    }
    if !matches!(c.bond_mode, -1 | 1 | 4 | 6) {
        return fail("bond_mode", format!("{} is not one of -1 (off), 1, 4 or 6", c.bond_mode));
    }
    match (&c.bond_slave_mac, c.bond_mode) {
        (_, -1) => Ok(()),
        (None, _) => fail("bond_slave_mac", "required when bond_mode is not -1"),
        (Some(macs), _) if macs.is_empty() || macs.len() > 2 => {
            fail("bond_slave_mac", format!("gives {} MAC addresses; bonding takes 1 or 2", macs.len()))
        }
        _ => Ok(()),
    }
}

fn check_strings(c: &StackConfig) -> Result<(), ValidationError> {
    if c.dpdk_args.len() > DPDK_ARGS_MAX {
        return fail(
            "dpdk_args",
            format!("has {} arguments; gazelle takes at most {DPDK_ARGS_MAX}", c.dpdk_args.len()),
        );
    }
    let Some(prefix) = &c.unix_prefix else { return Ok(()) };
    if prefix.is_empty() || prefix.len() > UNIX_PREFIX_MAX {
        return fail("unix_prefix", format!("must be 1..={UNIX_PREFIX_MAX} bytes long"));
    }
    if prefix.contains(UNIX_PREFIX_FORBIDDEN) || prefix.contains('/') {
        return fail(
            "unix_prefix",
            format!("{prefix:?} contains a character gazelle refuses (one of |;&$><`\\! / or newline)"),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netmask_contiguity() {
        for good in ["255.255.255.0", "255.255.255.255", "0.0.0.0", "255.128.0.0"] {
            assert!(is_contiguous_mask(good.parse().unwrap_or(Ipv4Addr::LOCALHOST)), "{good}");
        }
        for bad in ["255.0.255.0", "0.255.255.255", "255.255.255.1"] {
            assert!(!is_contiguous_mask(bad.parse().unwrap_or(Ipv4Addr::LOCALHOST)), "{bad}");
        }
    }
}

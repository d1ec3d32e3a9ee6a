//! Semantic checks of a [`StackConfig`]: ranges gazelle enforces in `lstack_cfg.c`, the
//! contradictions gazelle refuses, and dtnet's own rules (e.g. for `soft_forward`). The table
//! of keys, defaults and rules is in `keys.rs`.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use super::de::CPUS_MAX;
use super::{StackConfig, ThreadModel, ValidationError};

type Check = fn(&StackConfig) -> Result<(), ValidationError>;

/// Every check, in the order errors are reported.
const CHECKS: &[Check] = &[
    check_cpus,
    check_dpdk_args,
    check_ipv4,
    check_ipv6,
    check_forwarding,
    check_processes,
    check_counts,
    check_queues,
    check_vlan_and_bond,
    check_interrupt,
    check_strings,
];

/// Runs all checks and returns the first failure.
pub(crate) fn validate(config: &StackConfig) -> Result<(), ValidationError> {
    CHECKS.iter().try_for_each(|check| check(config))
}

/// Largest NUMA node id + 1 (`GAZELLE_MAX_NUMA_NODES`).
const NUMA_NODES_MAX: u32 = 8;
/// Most entries in `process_numa` (`PROTOCOL_STACK_MAX`).
const PROCESS_NUMA_MAX: usize = 32;
/// `stack_num`: gazelle's range check allows up to 320, then refuses more than one stack.
const STACK_NUM_MAX: u32 = 1;
/// `mem_cache_num` bounds (`BUF_CACHE_MIN_NUM`, `BUF_CACHE_MAX_NUM`).
const MEM_CACHE: std::ops::RangeInclusive<u32> = 16..=1024;
/// `bond_miimon` bounds, in milliseconds.
const BOND_MIIMON: std::ops::RangeInclusive<i64> = 1..=i32::MAX as i64;
/// Most bonded ports (`GAZELLE_MAX_BOND_NUM`).
const BOND_PORTS_MAX: usize = 2;
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

/// `key` is missing, and `required_by` (set in the file, or by default) needs it.
fn missing(key: &'static str, required_by: &'static str, message: impl Into<String>) -> Result<(), ValidationError> {
    Err(ValidationError::missing(key, required_by, message))
}

/// A CPU list is non-empty, in range and free of repeats.
fn check_cpu_list(key: &'static str, cpus: &[u32], max: u32) -> Result<(), ValidationError> {
    if cpus.is_empty() {
        return fail(key, "empty list; give at least one id, like \"2\" or \"2-5\", or leave the key out");
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

/// `stack_num`, `num_cpus` and `app_exclude_cpus`. An empty `num_cpus` is refused although
/// gazelle then falls back to one stack: gazelle falls back the same way on any list it cannot
/// parse, which dtnet refuses, and an empty list is more likely a mistake than a request.
fn check_cpus(c: &StackConfig) -> Result<(), ValidationError> {
    if c.stack_num > STACK_NUM_MAX {
        return fail(
            "stack_num",
            format!(
                "{} is out of range 0..={STACK_NUM_MAX} (gazelle runs at most one stack bound to a NUMA node; \
                 list the stacks' CPUs in num_cpus instead)",
                c.stack_num
            ),
        );
    }
    if let Some(cpus) = &c.num_cpus {
        check_cpu_list("num_cpus", cpus, CPUS_MAX)?;
    }
    if let Some(cpus) = &c.app_exclude_cpus {
        check_cpu_list("app_exclude_cpus", cpus, CPUS_MAX)?;
    }
    Ok(())
}

/// The position of the first argument starting with `option`, as gazelle finds it.
fn option_index(args: &[String], option: &str) -> Option<usize> {
    args.iter().position(|a| a.starts_with(option))
}

/// The arguments gazelle itself reads in `dpdk_args`.
fn check_dpdk_args(c: &StackConfig) -> Result<(), ValidationError> {
    let args = &c.dpdk_args;
    if args.len() > DPDK_ARGS_MAX {
        return fail("dpdk_args", format!("has {} arguments; gazelle takes at most {DPDK_ARGS_MAX}", args.len()));
    }
    if args.is_empty() {
        return Ok(());
    }
    // With ltran the memory layout is shared, so gazelle needs the socket memory sizes (it
    // fills them in itself only for stack_num > 0).
    let socket_mem = option_index(args, "--socket-mem").is_some_and(|i| i + 1 < args.len());
    if c.use_ltran && c.stack_num == 0 && !socket_mem {
        return fail("dpdk_args", format!("needs \"--socket-mem\" and its value with {LTRAN_HINT}"));
    }
    if let Some(i) = option_index(args, "--vdev") {
        let Some(vdev) = args.get(i + 1) else { return fail("dpdk_args", "\"--vdev\" needs a value after it") };
        let vdev = vdev.trim_start_matches(' ');
        let iface = vdev.split(',').find_map(|part| part.strip_prefix("iface=")).unwrap_or_default();
        if vdev.starts_with("net_af_xdp") && iface.is_empty() {
            return fail("dpdk_args", format!("the AF_XDP device {vdev:?} needs \"iface=NAME\""));
        }
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
    let Some(mask) = c.mask_addr else { return missing("mask_addr", "host_addr", "required when host_addr is set") };
    // Gazelle reads addresses with inet_addr(), which cannot tell 255.255.255.255 from an error.
    if mask.is_broadcast() {
        return fail("mask_addr", "255.255.255.255 is refused by gazelle (it reads as an invalid address)");
    }
    if !is_contiguous_mask(mask) {
        return fail("mask_addr", format!("{mask} is not a contiguous netmask like 255.255.255.0"));
    }
    let Some(gateway) = c.gateway_addr else {
        return missing("gateway_addr", "host_addr", "required when host_addr is set");
    };
    if gateway.is_broadcast() {
        return fail("gateway_addr", "255.255.255.255 is refused by gazelle (it reads as an invalid address)");
    }
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

/// Multi-process (tuple_filter) settings: `process_idx` given when there are several
/// processes, below their count, and 0 exactly for the DPDK primary. Gazelle reads neither
/// `num_process` nor `process_idx` with `use_ltran=1`, so neither is checked then.
fn check_processes(c: &StackConfig) -> Result<(), ValidationError> {
    if let Some(numa) = &c.process_numa {
        check_cpu_list("process_numa", numa, NUMA_NODES_MAX)?;
        if numa.len() > PROCESS_NUMA_MAX {
            return fail(
                "process_numa",
                format!("lists {} nodes; gazelle takes at most {PROCESS_NUMA_MAX}", numa.len()),
            );
        }
    }
    if c.use_ltran {
        return Ok(());
    }
    if c.num_process == 0 {
        return fail("num_process", "must be at least 1");
    }
    let Some(idx) = c.process_idx else {
        if c.num_process > 1 {
            let message = format!("required when num_process is above 1 (it is {})", c.num_process);
            return missing("process_idx", "num_process", message);
        }
        return Ok(());
    };
    if idx >= c.num_process {
        return fail("process_idx", format!("{idx} is not below num_process {}", c.num_process));
    }
    if c.is_secondary() == (idx == 0) {
        let role = if c.is_secondary() {
            "a DPDK secondary process (\"secondary\" in dpdk_args)"
        } else {
            "the DPDK primary process"
        };
        return fail("process_idx", format!("{idx} does not fit {role}; index 0 is the primary and only the primary"));
    }
    Ok(())
}

fn check_range<T>(key: &'static str, value: T, range: std::ops::RangeInclusive<T>) -> Result<(), ValidationError>
where
    T: PartialOrd + std::fmt::Display,
{
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
    check_range("mem_cache_num", c.mem_cache_num, MEM_CACHE)
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
    // Gazelle reads neither bond_miimon nor bond_slave_mac without bonding.
    if c.bond_mode == -1 {
        return Ok(());
    }
    check_range("bond_miimon", c.bond_miimon, BOND_MIIMON)?;
    match &c.bond_slave_mac {
        None => missing("bond_slave_mac", "bond_mode", "required when bond_mode is not -1"),
        Some(ports) if ports.is_empty() || ports.len() > BOND_PORTS_MAX => fail(
            "bond_slave_mac",
            format!("gives {} addresses; bonding takes 1 to {BOND_PORTS_MAX} ports", ports.len()),
        ),
        Some(_) => Ok(()),
    }
}

/// Interrupt-driven stack threads: not with run-to-completion, not with bonding.
fn check_interrupt(c: &StackConfig) -> Result<(), ValidationError> {
    if !c.stack_interrupt {
        return Ok(());
    }
    if c.stack_thread_mode == ThreadModel::RunToCompletion {
        return fail(
            "stack_interrupt",
            "stack_interrupt=1 cannot be used with stack_thread_mode=\"run-to-completion\"",
        );
    }
    if c.bond_mode != -1 {
        return fail(
            "stack_interrupt",
            format!("stack_interrupt=1 cannot be used with bonding (bond_mode={})", c.bond_mode),
        );
    }
    Ok(())
}

fn check_strings(c: &StackConfig) -> Result<(), ValidationError> {
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

//! What dtnet knows about each key gazelle's lstack.conf parser has ever read.
//!
//! Sources: gazelle's `src/lstack/core/lstack_cfg.c` (repository openeuler-mirror/gazelle)
//! at master of 2025-09 (the key set of release 1.0.3) and every earlier revision of that file;
//! release tags 1.0.1 (2022-03), 1.0.2 (2023-06) and 1.0.3 (2025-07).
//!
//! Gazelle's current keys, with the default, range and cross-key rules its parser applies
//! (each is a [`StackConfig`](super::StackConfig) field, checked in `validate.rs`):
//!
//! | key | default | accepted values, rules |
//! |---|---|---|
//! | `use_ltran` | 1 | 0..=1 |
//! | `tcp_conn_count` | 1500 | 1..=20000 (`GAZELLE_MAX_CLIENTS`, defined in gazelle's lwIP) |
//! | `mbuf_count_per_conn` | 170 | 1..=2^31-1 |
//! | `nic_rxqueue_size` | 4096 | 512..=8192, a power of two |
//! | `nic_txqueue_size` | 2048 | 512..=8192, a power of two |
//! | `mem_cache_num` | 32 | 16..=1024 |
//! | `app_bind_numa` | 1 | 0..=1 |
//! | `stack_num` | 0 | 0..=320 in the range check, then more than 1 is refused; when above 0, `num_cpus` is not read and one stack runs on the NUMA node of the starting CPU |
//! | `num_cpus` | none | CPU list, ids below 640; absent (or, in gazelle, unparsable) means one stack |
//! | `dpdk_args` | required by gazelle | 1..=31 strings; an element `"secondary"` makes a DPDK secondary process; with `use_ltran=1` it needs `--socket-mem VALUE` unless `stack_num` > 0 |
//! | `xdp_eth_name` | none | in gazelle's key table but never read from the file: taken from `--vdev net_af_xdp,iface=NAME` in `dpdk_args` |
//! | `host_addr` | none | IPv4, not multicast, not 255.255.255.255 |
//! | `host_addr6` | none | IPv6, not multicast; required when `host_addr` is absent |
//! | `mask_addr` | none | required with `host_addr`; contiguous; not 255.255.255.255 |
//! | `gateway_addr` | none | required with `host_addr`; not 255.255.255.255 |
//! | `devices` | required | a MAC address |
//! | `low_power_mode` | 0 | 0..=1 |
//! | `kni_switch` | 0 | 0..=1; refused with `use_ltran=1`; forced off in a secondary process |
//! | `listen_shadow` | 0 | 0..=1 |
//! | `app_exclude_cpus` | none | CPU list, ids below 640, not empty |
//! | `main_thread_affinity` | 0 | 0..=1 |
//! | `unix_prefix` | none | 1..=127 bytes, none of `\|;&$><\`\\!` or newline |
//! | `rpc_number` | 4 | 1..=2^31-1 |
//! | `nic_read_number` | 128 | 1..=2^31-1 |
//! | `num_process` | 1 | read as an 8-bit number; not read with `use_ltran=1` |
//! | `process_numa` | none | NUMA node list, ids below 8, at most 32 |
//! | `process_idx` | 0 | required when `num_process` > 1; 0 exactly in the DPDK primary process; not read with `use_ltran=1` |
//! | `tuple_filter` | 0 | 0..=1; refused with `use_ltran=1` or `listen_shadow=1` |
//! | `bond_mode` | -1 | -1 (off), 1, 4 or 6 |
//! | `bond_miimon` | 10 | 1..=2^31-1; read only when `bond_mode` is not -1 |
//! | `bond_slave_mac` | none | read only when `bond_mode` is not -1, then required: at most 2 MAC or PCI addresses separated by `;` |
//! | `use_sockmap` | 0 | 0..=1 |
//! | `udp_enable` | 1 | 0..=1 |
//! | `stack_thread_mode` | run-to-wakeup | `"run-to-wakeup"` or `"run-to-completion"` |
//! | `mem_async_mode` | derived | in gazelle's key table but never read from the file: on unless run-to-completion or XDP |
//! | `nic_vlan_mode` | -1 | -1..=4094 |
//! | `send_cache_mode` | 0 | 0..=1 |
//! | `flow_bifurcation` | 0 | 0..=1 |
//! | `stack_interrupt` | 0 | 0..=1; refused with run-to-completion and with bonding |
//!
//! Keys gazelle no longer reads are listed in [`RETIRED`]; gazelle itself silently ignores
//! them (it ignores every unknown key), dtnet accepts them with a warning.

/// A key of an earlier gazelle release.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Retired {
    /// The key.
    pub key: &'static str,
    /// When gazelle's parser stopped reading it (year-month of the commit).
    pub removed: &'static str,
    /// First release tag without it.
    pub absent_since: &'static str,
    /// The key(s) doing its job now.
    pub replaced_by: Option<&'static str>,
    /// What became of it.
    pub note: &'static str,
}

const fn retired(
    key: &'static str,
    removed: &'static str,
    absent_since: &'static str,
    replaced_by: Option<&'static str>,
    note: &'static str,
) -> Retired {
    Retired { key, removed, absent_since, replaced_by, note }
}

/// Every key an earlier revision of gazelle's parser read and the current one does not.
pub(crate) const RETIRED: &[Retired] = &[
    retired(
        "num_weakup",
        "2022-03",
        "1.0.2",
        None,
        "a misspelling of num_wakeup, which was later dropped with gazelle's wake-up threads",
    ),
    retired(
        "numa_bind",
        "2022-03",
        "1.0.2",
        Some("app_bind_numa"),
        "app_bind_numa (added 2022-10) binds application threads to the stack's NUMA node",
    ),
    retired("num_wakeup", "2023-03", "1.0.2", None, "gazelle dropped its separate wake-up threads"),
    retired(
        "mbuf_pool_size",
        "2023-01",
        "1.0.2",
        Some("tcp_conn_count and mbuf_count_per_conn"),
        "the pool now holds tcp_conn_count * mbuf_count_per_conn buffers",
    ),
    retired("send_connect_number", "2023-03", "1.0.2", None, "stack threads no longer batch sends per connection"),
    retired(
        "use_bond4",
        "2023-10",
        "1.0.3",
        Some("bond_mode"),
        "write bond_mode=4 for 802.3ad bonding (bond_mode also offers 1 and 6)",
    ),
    retired(
        "bond4_slave_mac",
        "2023-10",
        "1.0.3",
        Some("bond_slave_mac"),
        "write the bonded ports' addresses as bond_slave_mac=\"MAC1;MAC2\"",
    ),
    retired(
        "slave_mac1",
        "2023-11",
        "1.0.3",
        Some("bond_slave_mac"),
        "write the bonded ports' addresses as bond_slave_mac=\"MAC1;MAC2\"",
    ),
    retired(
        "slave_mac2",
        "2023-11",
        "1.0.3",
        Some("bond_slave_mac"),
        "write the bonded ports' addresses as bond_slave_mac=\"MAC1;MAC2\"",
    ),
    retired("ipv6_enable", "2023-11", "1.0.3", Some("host_addr6"), "IPv6 is on whenever host_addr6 is set"),
    retired("expand_send_ring", "2024-01", "1.0.3", None, "send rings no longer grow when full"),
    retired("nonblock_mode", "2024-10", "1.0.3", None, "the non-blocking default for sockets was removed"),
    retired(
        "seperate_send_recv",
        "2024-11",
        "1.0.3",
        Some("num_cpus"),
        "each stack thread sends and receives; its CPUs are listed in num_cpus",
    ),
    retired(
        "send_num_cpus",
        "2024-11",
        "1.0.3",
        Some("num_cpus"),
        "each stack thread sends and receives; its CPUs are listed in num_cpus",
    ),
    retired(
        "recv_num_cpus",
        "2024-11",
        "1.0.3",
        Some("num_cpus"),
        "each stack thread sends and receives; its CPUs are listed in num_cpus",
    ),
    retired("read_connect_number", "2025-03", "1.0.3", None, "dropped when gazelle's socket layer was rewritten"),
    retired("send_ring_size", "2025-03", "1.0.3", None, "dropped when gazelle's socket layer was rewritten"),
    retired("recv_ring_size", "2025-03", "1.0.3", None, "dropped when gazelle's socket layer was rewritten"),
    retired("rpc_msg_max", "2025-07", "1.0.3", None, "gazelle sizes its RPC message pool itself"),
];

/// The retired key `key`, if it is one.
pub(crate) fn retired_key(key: &str) -> Option<&'static Retired> {
    RETIRED.iter().find(|r| r.key == key)
}

/// Keys in gazelle's key table that gazelle never reads from the file, with what it does
/// instead. They take any value; dtnet, like gazelle, ignores it.
pub(crate) const NOT_READ: &[(&str, &str)] = &[
    (
        "xdp_eth_name",
        "gazelle does not read this key either; it takes the interface from \
         `--vdev net_af_xdp,iface=NAME` in dpdk_args",
    ),
    (
        "mem_async_mode",
        "gazelle does not read this key either; it turns the mode on unless the stack runs to \
         completion or over XDP",
    ),
];

/// What gazelle does instead of reading `key`, if `key` is in [`NOT_READ`].
pub(crate) fn not_read(key: &str) -> Option<&'static str> {
    NOT_READ.iter().find(|(k, _)| *k == key).map(|(_, why)| *why)
}

/// Current gazelle keys that dtnet checks (so a file gazelle refuses is refused) but does not
/// act on, with the reason. Every other current key shapes the simulated stacks.
pub(crate) const IGNORED: &[(&str, &str)] = &[
    ("dpdk_args", "dtnet starts no DPDK; only an argument \"secondary\" matters, for the process_idx rule"),
    ("kni_switch", "dtnet has no kernel NIC interface to hand traffic to"),
    ("flow_bifurcation", "a scenario shares a host's NIC with a kernel host naming it (`nic`), not by this key"),
    ("low_power_mode", "dtnet's stack threads do not sleep for power"),
    ("tcp_conn_count", "dtnet does not cap connections by this count"),
    ("mbuf_count_per_conn", "dtnet has no DPDK mbuf pool"),
    ("rpc_number", "dtnet's stack threads have no RPC batching limit"),
    ("nic_read_number", "dtnet's stack threads have no per-loop read limit"),
    ("nic_rxqueue_size", "dtnet does not size its simulated NIC rings from this key"),
    ("nic_txqueue_size", "dtnet does not size its simulated NIC rings from this key"),
    ("mem_cache_num", "dtnet has no DPDK mempool caches"),
    ("app_bind_numa", "dtnet does not pin threads to NUMA nodes"),
    ("app_exclude_cpus", "dtnet does not pin threads to CPUs"),
    ("main_thread_affinity", "dtnet does not pin threads to CPUs"),
    ("process_numa", "dtnet does not pin processes to NUMA nodes"),
    ("num_process", "dtnet runs one process per host"),
    ("process_idx", "dtnet runs one process per host"),
    ("unix_prefix", "dtnet opens no Unix control sockets"),
    ("bond_mode", "dtnet does not simulate NIC bonding"),
    ("bond_miimon", "dtnet does not simulate NIC bonding"),
    ("bond_slave_mac", "dtnet does not simulate NIC bonding"),
    ("nic_vlan_mode", "dtnet's stacks send untagged frames"),
    ("use_sockmap", "dtnet does not use eBPF sockmap"),
    ("udp_enable", "dtnet's stacks always handle UDP"),
    ("send_cache_mode", "dtnet has no NIC transmit cache"),
    ("stack_interrupt", "dtnet's executors decide how stack threads wait"),
];

/// Why dtnet ignores the current key `key`, if it does.
pub(crate) fn ignored_reason(key: &str) -> Option<&'static str> {
    IGNORED.iter().find(|(k, _)| *k == key).map(|(_, why)| *why)
}

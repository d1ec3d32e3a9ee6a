//! Stack configuration: gazelle's `lstack.conf` keys, read from lstack.conf or TOML.
//!
//! [`StackConfig`] mirrors the per-process settings of gazelle's lstack (names, defaults and
//! ranges taken from gazelle's `lstack_cfg.c`), plus the dtnet extension `soft_forward`. Two
//! front ends produce the same intermediate form, a list of top-level entries each holding its
//! key, the key's line and column, and a [`toml::Value`]: the TOML front end uses the `toml`
//! crate's spanned parser, and the lstack.conf front end is a hand-written tokenizer and parser
//! for the libconfig syntax gazelle uses (no Rust crate handles libconfig well). Both then run
//! the one serde-derived deserialiser (`deny_unknown_fields`) through a small adapter that knows
//! which entry it is reading, and the one [`StackConfig::validate`], so a bad value, an unknown
//! key or a contradiction is reported the same way for both formats: origin, line and key, as in
//! `lstack.conf:7: key "num_cpus": expected a CPU list like "2,3" or "2-5", got "two" (...)`.
//!
//! Every key of gazelle's current parser is accepted with gazelle's default, range and
//! cross-key rules (the list, with its sources, is in `keys.rs`). Keys of earlier gazelle
//! releases are accepted with a [`ConfigWarning`] naming what replaced them; current keys dtnet
//! does not act on are accepted with a warning saying so. Warnings are data, kept on the
//! loaded [`StackConfig`] in file order for the caller to print.

mod de;
mod error;
mod keys;
mod lstack;
mod toml_doc;
mod validate;
mod warning;

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::str::FromStr;

use ethdev::mac::MacAddr;
use serde::Deserialize;

pub use error::{ConfigFileError, KeyPrefix, LineSuffix, ValidationError};
pub use warning::{ConfigWarning, WarningKind};

/// How a protocol stack thread runs (gazelle's `stack_thread_mode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ThreadModel {
    /// `"run-to-wakeup"`: stack threads poll the NIC and wake application threads (default).
    #[default]
    RunToWakeup,
    /// `"run-to-completion"`: the application thread drives the stack itself (gazelle's
    /// `stack_mode_rtc`).
    RunToCompletion,
}

/// How received packets reach the right stack instance, derived from the switches in
/// [`StackConfig::forward_mode`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ForwardMode {
    /// The NIC's RSS hash spreads flows over the stacks' queues (no switch set).
    Rss,
    /// `listen_shadow = 1`: every stack holds a shadow of each listening socket.
    ListenShadow,
    /// dtnet's `soft_forward = 1`: `listen_shadow = 0`, and stacks forward packets of flows
    /// they do not own to the owning stack in software.
    SoftForward,
    /// `tuple_filter = 1`: per-connection NIC flow rules steer packets to queues, which also
    /// lets several processes (`num_process`) share one NIC.
    FlowDirector,
    /// `use_ltran = 1`: a separate ltran process switches packets to lstack instances.
    Ltran,
}

/// A PCI address in DPDK's full form `DDDD:BB:DD.F` (domain, bus, device, function in hex).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PciAddr {
    /// PCI domain.
    pub domain: u16,
    /// Bus number.
    pub bus: u8,
    /// Device number.
    pub device: u8,
    /// Function number.
    pub function: u8,
}

/// Why a string is not a [`PciAddr`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a PCI address like \"0000:03:00.0\"")]
pub struct ParsePciError(pub String);

impl FromStr for PciAddr {
    type Err = ParsePciError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ParsePciError(s.to_owned());
        let hex = |part: &str, len: usize| {
            (part.len() == len && part.bytes().all(|b| b.is_ascii_hexdigit()))
                .then(|| u16::from_str_radix(part, 16).ok())
                .flatten()
                .ok_or_else(bad)
        };
        let (domain, rest) = s.split_once(':').ok_or_else(bad)?;
        let (bus, rest) = rest.split_once(':').ok_or_else(bad)?;
        let (device, function) = rest.split_once('.').ok_or_else(bad)?;
        let narrow = |v: u16| u8::try_from(v).map_err(|_| bad());
        Ok(Self {
            domain: hex(domain, 4)?,
            bus: narrow(hex(bus, 2)?)?,
            device: narrow(hex(device, 2)?)?,
            function: narrow(hex(function, 1)?)?,
        })
    }
}

impl fmt::Display for PciAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04x}:{:02x}:{:02x}.{:x}", self.domain, self.bus, self.device, self.function)
    }
}

/// A NIC port as gazelle's `bond_slave_mac` names it: by MAC address, or by PCI address (a
/// 12-character entry is read as a PCI address, as gazelle does).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DevAddr {
    /// A port named by its MAC address.
    Mac(MacAddr),
    /// A port named by its PCI address.
    Pci(PciAddr),
}

impl fmt::Display for DevAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Mac(mac) => mac.fmt(f),
            Self::Pci(pci) => pci.fmt(f),
        }
    }
}

/// The settings of one lstack process, as in gazelle's `lstack.conf`.
///
/// Field names are gazelle's key names (except [`host_mac`](Self::host_mac), gazelle's
/// `devices`); defaults are gazelle's. On/off switches accept gazelle's `0`/`1` as well as
/// `true`/`false`. Construct it with [`StackConfig::from_lstack_conf`],
/// [`StackConfig::from_toml_str`] or [`StackConfig::load`], which also [`validate`](Self::validate).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StackConfig {
    /// `dpdk_args`: EAL arguments gazelle passes to DPDK (e.g. `--socket-mem`, `--huge-dir`,
    /// `--proc-type primary|secondary`). Gazelle requires it (1 to 31 strings); dtnet allows
    /// it to be absent, and uses it only to tell primary from secondary processes (an element
    /// `"secondary"`). Default: empty.
    #[serde(default)]
    pub dpdk_args: Vec<String>,
    /// `stack_thread_mode`: `"run-to-wakeup"` (default) or `"run-to-completion"`.
    #[serde(default)]
    pub stack_thread_mode: ThreadModel,
    /// `use_ltran`: packets come through the ltran switch process. Gazelle's default is `1`
    /// (its docs call ltran deprecated, so configs normally set `use_ltran=0`). With it on,
    /// gazelle does not read `num_process` or `process_idx`.
    #[serde(default = "yes", deserialize_with = "de::flag")]
    pub use_ltran: bool,
    /// `kni_switch`: forward unhandled traffic to the kernel through KNI. Default `0`; not
    /// allowed together with `use_ltran`.
    #[serde(default, deserialize_with = "de::flag")]
    pub kni_switch: bool,
    /// `flow_bifurcation`: let the kernel keep the traffic the stack does not claim. Default `0`.
    #[serde(default, deserialize_with = "de::flag")]
    pub flow_bifurcation: bool,
    /// `low_power_mode`: sleep when idle instead of busy polling. Default `0`.
    #[serde(default, deserialize_with = "de::flag")]
    pub low_power_mode: bool,
    /// `tcp_conn_count`: maximum TCP connections, `1..=20000`. Default `1500`.
    #[serde(default = "default_tcp_conn_count")]
    pub tcp_conn_count: u32,
    /// `mbuf_count_per_conn`: packet buffers budgeted per connection; the pool holds
    /// `tcp_conn_count * mbuf_count_per_conn`. `1..=2^31-1`, default `170`.
    #[serde(default = "default_mbuf_count_per_conn")]
    pub mbuf_count_per_conn: u32,
    /// `rpc_number`: RPC messages a stack thread handles per loop, `1..=2^31-1`. Default `4`.
    #[serde(default = "default_rpc_number")]
    pub rpc_number: u32,
    /// `nic_read_number`: packets a stack thread reads from the NIC per loop, `1..=2^31-1`.
    /// Default `128`.
    #[serde(default = "default_nic_read_number")]
    pub nic_read_number: u32,
    /// `nic_rxqueue_size`: RX descriptors per queue, a power of two in `512..=8192`. Default `4096`.
    #[serde(default = "default_rxqueue_size")]
    pub nic_rxqueue_size: u32,
    /// `nic_txqueue_size`: TX descriptors per queue, a power of two in `512..=8192`. Default `2048`.
    #[serde(default = "default_txqueue_size")]
    pub nic_txqueue_size: u32,
    /// `mem_cache_num`: per-thread cache of gazelle's memory pools, `16..=1024`. Default `32`.
    #[serde(default = "default_mem_cache_num")]
    pub mem_cache_num: u32,
    /// `stack_num`: when above `0`, run that many stacks on the NUMA node of the starting CPU
    /// instead of binding them to `num_cpus` (which is then not read). Gazelle supports at most
    /// one such stack, so `0..=1`. Default `0`.
    #[serde(default)]
    pub stack_num: u32,
    /// `num_cpus`: the CPUs stack threads are bound to, one stack instance per CPU, written
    /// `"2,3,4"` or `"2-5"` (TOML may also use an array). When absent (and `stack_num` is `0`)
    /// gazelle runs one stack, and so does dtnet.
    #[serde(default, deserialize_with = "de::opt_cpu_list")]
    pub num_cpus: Option<Vec<u32>>,
    /// `app_bind_numa`: bind application epoll/poll threads to the stack's NUMA node. Default `1`.
    #[serde(default = "yes", deserialize_with = "de::flag")]
    pub app_bind_numa: bool,
    /// `app_exclude_cpus`: CPUs application threads are not bound to (with `app_bind_numa`), a
    /// CPU list like `num_cpus`. Optional.
    #[serde(default, deserialize_with = "de::opt_cpu_list")]
    pub app_exclude_cpus: Option<Vec<u32>>,
    /// `main_thread_affinity`: let DPDK set the application main thread's affinity. Default `0`.
    #[serde(default, deserialize_with = "de::flag")]
    pub main_thread_affinity: bool,
    /// `host_addr`: the stack's (and application's) IPv4 address. This or `host_addr6` is required.
    #[serde(default, deserialize_with = "de::opt_ipv4")]
    pub host_addr: Option<Ipv4Addr>,
    /// `mask_addr`: IPv4 netmask; required with `host_addr`, must be contiguous.
    #[serde(default, deserialize_with = "de::opt_ipv4")]
    pub mask_addr: Option<Ipv4Addr>,
    /// `gateway_addr`: IPv4 gateway; required with `host_addr`, must share its network.
    #[serde(default, deserialize_with = "de::opt_ipv4")]
    pub gateway_addr: Option<Ipv4Addr>,
    /// `host_addr6`: the stack's IPv6 address, optional.
    #[serde(default, deserialize_with = "de::opt_ipv6")]
    pub host_addr6: Option<Ipv6Addr>,
    /// gazelle's `devices` key (dtnet also accepts `host_mac`): the MAC address of the NIC the
    /// stack drives. Required.
    #[serde(rename = "devices", alias = "host_mac")]
    pub host_mac: MacAddr,
    /// `tuple_filter`: steer packets with per-connection NIC flow rules (multi-process mode).
    /// Default `0`; excludes `use_ltran` and `listen_shadow`.
    #[serde(default, deserialize_with = "de::flag")]
    pub tuple_filter: bool,
    /// `num_process`: processes sharing the NIC in `tuple_filter` mode. Default `1`.
    #[serde(default = "default_num_process")]
    pub num_process: u8,
    /// `process_numa`: NUMA nodes of the processes, a list like `"0,1"`. Optional.
    #[serde(default, deserialize_with = "de::opt_cpu_list")]
    pub process_numa: Option<Vec<u32>>,
    /// `process_idx`: this process's index, below `num_process`; `0` exactly for the DPDK
    /// primary. Required when `num_process` is above 1; `None` when absent (meaning `0`).
    #[serde(default)]
    pub process_idx: Option<u8>,
    /// `listen_shadow`: give every stack a shadow of each listening socket (for a single
    /// listening thread with several stacks). Default `0`.
    #[serde(default, deserialize_with = "de::flag")]
    pub listen_shadow: bool,
    /// `unix_prefix`: prefix of the Unix socket names under `/var/run/gazelle/`. Optional.
    #[serde(default)]
    pub unix_prefix: Option<String>,
    /// `nic_vlan_mode`: VLAN id `0..=4094`, or `-1` (default) for no VLAN.
    #[serde(default = "minus_one")]
    pub nic_vlan_mode: i32,
    /// `bond_mode`: DPDK bonding mode `1`, `4` or `6`, or `-1` (default) for none.
    #[serde(default = "minus_one")]
    pub bond_mode: i32,
    /// `bond_miimon`: link monitoring interval of the bond in milliseconds, `1..=2^31-1`;
    /// checked only when `bond_mode` is not `-1`. Default `10`.
    #[serde(default = "default_bond_miimon")]
    pub bond_miimon: i64,
    /// `bond_slave_mac`: the one or two bonded ports, `"aa:..;bb:.."` (MAC or PCI addresses);
    /// required when `bond_mode` is not `-1`.
    #[serde(default, deserialize_with = "de::opt_dev_list")]
    pub bond_slave_mac: Option<Vec<DevAddr>>,
    /// `use_sockmap`: let processes talk through an eBPF sockmap. Default `0`.
    #[serde(default, deserialize_with = "de::flag")]
    pub use_sockmap: bool,
    /// `udp_enable`: UDP support. Default `1`.
    #[serde(default = "yes", deserialize_with = "de::flag")]
    pub udp_enable: bool,
    /// `send_cache_mode`: cache packets before handing them to the NIC. Default `0`.
    #[serde(default, deserialize_with = "de::flag")]
    pub send_cache_mode: bool,
    /// `stack_interrupt`: let idle stack threads wait for NIC interrupts. Default `0`; refused
    /// with `stack_thread_mode="run-to-completion"` and with bonding.
    #[serde(default, deserialize_with = "de::flag")]
    pub stack_interrupt: bool,
    /// dtnet extension `soft_forward`: `listen_shadow = 0` with software forwarding between
    /// stacks. Default `0`; excludes `listen_shadow`, `tuple_filter` and `use_ltran`.
    #[serde(default, deserialize_with = "de::flag")]
    pub soft_forward: bool,
    /// What the loader accepted without acting on it as written, in file order: keys of earlier
    /// gazelle releases, keys dtnet ignores, keys another key overrides. Not a configuration
    /// key; empty for a config that was not loaded from text.
    #[serde(skip)]
    pub warnings: Vec<ConfigWarning>,
}

fn yes() -> bool {
    true
}
fn minus_one() -> i32 {
    -1
}
fn default_tcp_conn_count() -> u32 {
    1500
}
fn default_mbuf_count_per_conn() -> u32 {
    170
}
fn default_rpc_number() -> u32 {
    4
}
fn default_nic_read_number() -> u32 {
    128
}
fn default_rxqueue_size() -> u32 {
    4096
}
fn default_txqueue_size() -> u32 {
    2048
}
fn default_num_process() -> u8 {
    1
}
fn default_mem_cache_num() -> u32 {
    32
}
fn default_bond_miimon() -> i64 {
    10
}

/// The accepted alternative spelling of a key, if any.
pub(crate) fn alias_of(key: &str) -> Option<&'static str> {
    (key == "devices").then_some("host_mac")
}

impl Default for StackConfig {
    /// Gazelle's defaults, no warnings. The required keys are left empty (MAC all zero, no
    /// address), so the default alone does not [`validate`](Self::validate).
    fn default() -> Self {
        Self {
            dpdk_args: Vec::new(),
            stack_thread_mode: ThreadModel::default(),
            use_ltran: yes(),
            kni_switch: false,
            flow_bifurcation: false,
            low_power_mode: false,
            tcp_conn_count: default_tcp_conn_count(),
            mbuf_count_per_conn: default_mbuf_count_per_conn(),
            rpc_number: default_rpc_number(),
            nic_read_number: default_nic_read_number(),
            nic_rxqueue_size: default_rxqueue_size(),
            nic_txqueue_size: default_txqueue_size(),
            mem_cache_num: default_mem_cache_num(),
            stack_num: 0,
            num_cpus: None,
            app_bind_numa: yes(),
            app_exclude_cpus: None,
            main_thread_affinity: false,
            host_addr: None,
            mask_addr: None,
            gateway_addr: None,
            host_addr6: None,
            host_mac: MacAddr::default(),
            tuple_filter: false,
            num_process: default_num_process(),
            process_numa: None,
            process_idx: None,
            listen_shadow: false,
            unix_prefix: None,
            nic_vlan_mode: minus_one(),
            bond_mode: minus_one(),
            bond_miimon: default_bond_miimon(),
            bond_slave_mac: None,
            use_sockmap: false,
            udp_enable: yes(),
            send_cache_mode: false,
            stack_interrupt: false,
            soft_forward: false,
            warnings: Vec::new(),
        }
    }
}

impl StackConfig {
    /// Parses and validates a TOML document using the lstack.conf key names; `origin` (usually
    /// the file name) prefixes error messages and warnings (see [`StackConfig::warnings`]).
    ///
    /// # Errors
    ///
    /// [`ConfigFileError::Syntax`] for malformed TOML or binary data (control characters);
    /// [`ConfigFileError::UnknownKey`],
    /// [`ConfigFileError::BadValue`] or [`ConfigFileError::MissingKey`] when the keys do not fit
    /// [`StackConfig`]; [`ConfigFileError::Invalid`] when [`validate`](Self::validate) fails.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<StackConfig, ConfigFileError> {
        de::reject_binary(text, origin)?;
        de::build(&toml_doc::parse(text, origin)?, origin)
    }

    /// Parses and validates gazelle's libconfig `lstack.conf` syntax; `origin` (usually the
    /// file name) prefixes error messages and warnings (see [`StackConfig::warnings`]).
    ///
    /// # Errors
    ///
    /// As [`from_toml_str`](Self::from_toml_str), plus [`ConfigFileError::DuplicateKey`] for a key
    /// set twice (TOML reports that as a syntax error).
    pub fn from_lstack_conf(text: &str, origin: &str) -> Result<StackConfig, ConfigFileError> {
        de::reject_binary(text, origin)?;
        de::build(&lstack::parse(text, origin)?, origin)
    }

    /// Reads `path`: TOML if its extension is `.toml`, lstack.conf syntax otherwise. Errors
    /// name the path as their origin.
    ///
    /// # Errors
    ///
    /// [`ConfigFileError::Io`] if the file cannot be read, [`ConfigFileError::Syntax`] (with line and
    /// column) if it is not UTF-8 or holds binary data, otherwise as the parser for its format.
    pub fn load(path: &Path) -> Result<StackConfig, ConfigFileError> {
        let bytes = std::fs::read(path).map_err(|source| ConfigFileError::Io { path: path.to_owned(), source })?;
        let origin = path.display().to_string();
        let text = utf8(&bytes, &origin)?;
        if path.extension().is_some_and(|ext| ext == "toml") {
            Self::from_toml_str(text, &origin)
        } else {
            Self::from_lstack_conf(text, &origin)
        }
    }

    /// Number of stack instances, as gazelle counts them: `stack_num` when it is above 0,
    /// otherwise one per CPU in `num_cpus`, or one when `num_cpus` is absent.
    #[must_use]
    pub fn stack_count(&self) -> usize {
        match (&self.num_cpus, self.stack_num) {
            (_, n @ 1..) => n as usize,
            (Some(cpus), 0) if !cpus.is_empty() => cpus.len(),
            _ => 1,
        }
    }

    /// This process's index among the processes sharing the NIC (`process_idx`, `0` when absent).
    #[must_use]
    pub fn process_index(&self) -> u8 {
        self.process_idx.unwrap_or(0)
    }

    /// Whether `dpdk_args` makes this a DPDK secondary process (an argument `"secondary"`, as
    /// gazelle checks it); otherwise it is the primary.
    #[must_use]
    pub fn is_secondary(&self) -> bool {
        self.dpdk_args.iter().any(|a| a == "secondary")
    }

    /// The warnings raised while loading, formatted one per line (empty when there are none).
    #[must_use]
    pub fn warnings_text(&self) -> String {
        self.warnings.iter().map(|w| format!("{w}\n")).collect()
    }

    /// The stack threads' run model (`stack_thread_mode`).
    #[must_use]
    pub fn thread_model(&self) -> ThreadModel {
        self.stack_thread_mode
    }

    /// How packets are distributed among stacks. The first set switch wins, in the order
    /// `use_ltran`, `tuple_filter`, `soft_forward`, `listen_shadow`; none set means RSS.
    #[must_use]
    pub fn forward_mode(&self) -> ForwardMode {
        if self.use_ltran {
            ForwardMode::Ltran
        } else if self.tuple_filter {
            ForwardMode::FlowDirector
        } else if self.soft_forward {
            ForwardMode::SoftForward
        } else if self.listen_shadow {
            ForwardMode::ListenShadow
        } else {
            ForwardMode::Rss
        }
    }

    /// Packet buffers the stack needs: `tcp_conn_count * mbuf_count_per_conn`.
    #[must_use]
    pub fn mbuf_count(&self) -> u64 {
        u64::from(self.tcp_conn_count) * u64::from(self.mbuf_count_per_conn)
    }

    /// Checks ranges and contradictions: the ones gazelle rejects (e.g. `tuple_filter` with
    /// `listen_shadow` or `use_ltran`, `kni_switch` with `use_ltran`, `process_idx` missing
    /// when `num_process` > 1, `stack_interrupt` with run-to-completion or bonding, a
    /// non-contiguous `mask_addr`, a queue size that is not a power of two) and dtnet's (e.g.
    /// `soft_forward` with `listen_shadow`, `host_addr` outside the network of `gateway_addr`,
    /// an empty `num_cpus`, `process_idx >= num_process`).
    ///
    /// # Errors
    ///
    /// The first problem found, with the key it is reported against.
    pub fn validate(&self) -> Result<(), ValidationError> {
        validate::validate(self)
    }
}

/// Decodes the bytes of a text file dtnet reads (a stack config, a scenario): refuses invalid
/// UTF-8 and binary junk (control characters other than tab, newline and carriage return, and
/// U+FFFD), naming `origin` and the line and column (in characters) of the first offender, before
/// any parser sees the text.
///
/// # Errors
///
/// [`ConfigFileError::Syntax`] with the line and column of the first invalid byte or character.
pub fn decode_text<'a>(bytes: &'a [u8], origin: &str) -> Result<&'a str, ConfigFileError> {
    let text = utf8(bytes, origin)?;
    de::reject_binary(text, origin)?;
    Ok(text)
}

/// Refuses binary junk in `text` (control characters other than tab, newline and carriage
/// return, and U+FFFD) with `origin` and the line and column of the first one.
///
/// # Errors
///
/// [`ConfigFileError::Syntax`] with the line and column of the first such character.
pub fn reject_binary(text: &str, origin: &str) -> Result<(), ConfigFileError> {
    de::reject_binary(text, origin)
}

/// Decodes a file's bytes, reporting the line and column (in characters) of the first invalid
/// UTF-8 sequence.
fn utf8<'a>(bytes: &'a [u8], origin: &str) -> Result<&'a str, ConfigFileError> {
    std::str::from_utf8(bytes).map_err(|e| {
        let valid = &bytes[..e.valid_up_to()];
        let line = valid.iter().filter(|b| **b == b'\n').count() + 1;
        let line_start = valid.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        // The prefix is valid UTF-8, so this counts characters, not bytes.
        let column = String::from_utf8_lossy(&valid[line_start..]).chars().count() + 1;
        let byte = bytes.get(e.valid_up_to()).copied().unwrap_or_default();
        ConfigFileError::Syntax {
            origin: origin.to_owned(),
            line,
            column,
            key: None,
            message: format!("not valid UTF-8 (byte 0x{byte:02x}); is this a binary file?"),
        }
    })
}

#[cfg(test)]
mod tests;

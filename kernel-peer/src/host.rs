//! A kernel host: a namespace, a TAP device in it configured as the host,
//! and the TAP's wire end for the bridge.
//!
//! [`KernelHost::create`] makes the namespace, then a short-lived thread
//! enters it and opens the TAP there, so the device never appears in this
//! process's own namespace. The device gets the host's MAC, MTU and
//! addresses (IPv6 without duplicate address detection, so it is usable at
//! once; IPv6 switched off on a host without an IPv6 address, so it sends no
//! router solicitations or multicast reports nobody asked for). Dropping the
//! host closes the descriptor (which deletes the device) and deletes the
//! namespace; the [`TapWire`] keeps only a shared handle on the descriptor,
//! so whichever of the two goes last closes it.

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use ethdev::mac::MacAddr;
use ethdev::{Mempool, MempoolConfig};

use crate::netns::{self, unavailable, unique_name, Netns, Unavailable};
use crate::tun::open_tap;
use crate::wire::{TapCounters, TapWire};

/// Buffers of a TAP wire's pool: frames read from the kernel wait in them
/// until the bridge and the receiving port are done with them.
const TAP_POOL: u32 = 4096;
/// Bytes of a buffer beyond the largest frame (headroom and slack).
const BUFFER_SLACK: u32 = 256;
/// Ethernet header bytes in front of the IP MTU.
const ETHERNET_HEADER: u32 = 14;

/// How the kernel host looks on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelHostConfig {
    /// The host's name (reports, the pool).
    pub name: String,
    /// The TAP device's MAC address.
    pub mac: MacAddr,
    /// IPv4 address and prefix length.
    pub ipv4: Option<(Ipv4Addr, u8)>,
    /// IPv6 address and prefix length.
    pub ipv6: Option<(Ipv6Addr, u8)>,
    /// IPv4 default gateway.
    pub gateway: Option<Ipv4Addr>,
    /// IP MTU of the device.
    pub mtu: u16,
}

/// Why a kernel host could not be made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KernelHostError {
    /// This process cannot make namespaces or TAP devices at all.
    Unavailable(Unavailable),
    /// A step of the setup failed: which and why.
    Setup(String),
}

impl fmt::Display for KernelHostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KernelHostError::Unavailable(why) => write!(f, "kernel hosts are unavailable here: {why}"),
            KernelHostError::Setup(why) => write!(f, "kernel host setup failed: {why}"),
        }
    }
}

impl std::error::Error for KernelHostError {}

/// The Linux kernel as a host (see the module doc). Field order is drop
/// order: the descriptor closes before the namespace goes.
pub struct KernelHost {
    fd: Arc<OwnedFd>,
    counters: Arc<TapCounters>,
    pool: Mempool,
    tap: String,
    config: KernelHostConfig,
    netns: Netns,
}

impl KernelHost {
    /// Makes the namespace and its TAP device, configured as `config`;
    /// returns the host and the TAP's wire end for a bridge port.
    pub fn create(config: KernelHostConfig) -> Result<(KernelHost, TapWire), KernelHostError> {
        if let Some(why) = unavailable() {
            return Err(KernelHostError::Unavailable(why));
        }
        let tap = unique_name("k");
        let netns = Netns::create(&format!("dtnet-{tap}")).map_err(KernelHostError::Setup)?;
        let fd = Arc::new(open_in(&netns, &tap)?);
        let room = (u32::from(config.mtu) + ETHERNET_HEADER + BUFFER_SLACK).max(ethdev::mempool::DEFAULT_DATA_ROOM);
        let pool_config = MempoolConfig::new(format!("{}-tap", config.name), TAP_POOL).data_room(room);
        let pool = Mempool::new(pool_config).map_err(|e| KernelHostError::Setup(e.to_string()))?;
        let counters = Arc::new(TapCounters::default());
        let host = KernelHost { fd, counters, pool, tap, config, netns };
        host.configure().map_err(KernelHostError::Setup)?;
        let wire = TapWire::new(Arc::clone(&host.fd), host.config.name.clone(), host.pool.clone(), host.counters());
        Ok((host, wire))
    }

    /// Addresses, MAC, MTU, sysctls, link up, default route.
    fn configure(&self) -> Result<(), String> {
        let (ns, dev, c) = (&self.netns, self.tap.as_str(), &self.config);
        let mac = c.mac.to_string();
        ns.ip(&["link", "set", "dev", dev, "address", &mac, "mtu", &c.mtu.to_string()])?;
        let v6 = c.ipv6.is_some();
        self.sysctl(&format!("net.ipv6.conf.{dev}.disable_ipv6"), if v6 { "0" } else { "1" })?;
        if v6 {
            self.sysctl(&format!("net.ipv6.conf.{dev}.accept_dad"), "0")?;
            self.sysctl(&format!("net.ipv6.conf.{dev}.router_solicitations"), "0")?;
        }
        if let Some((addr, prefix)) = c.ipv4 {
            ns.ip(&["addr", "add", &format!("{addr}/{prefix}"), "dev", dev])?;
        }
        if let Some((addr, prefix)) = c.ipv6 {
            ns.ip(&["addr", "add", &format!("{addr}/{prefix}"), "dev", dev, "nodad"])?;
        }
        ns.ip(&["link", "set", "dev", dev, "up"])?;
        if let Some(gateway) = c.gateway {
            ns.ip(&["route", "add", "default", "via", &gateway.to_string(), "dev", dev])?;
        }
        Ok(())
    }

    /// Sets sysctl `key` inside the namespace.
    fn sysctl(&self, key: &str, value: &str) -> Result<(), String> {
        let sysctl = netns::which("sysctl").map_err(|e| e.to_string())?;
        netns::checked(self.netns.exec(&sysctl).args(["-q", "-w", &format!("{key}={value}")])).map(drop)
    }

    /// The host's configuration.
    pub fn config(&self) -> &KernelHostConfig {
        &self.config
    }

    /// The namespace.
    pub fn netns(&self) -> &Netns {
        &self.netns
    }

    /// The TAP device's name (inside the namespace).
    pub fn tap_name(&self) -> &str {
        &self.tap
    }

    /// What crossed the TAP so far.
    pub fn counters(&self) -> Arc<TapCounters> {
        Arc::clone(&self.counters)
    }

    /// Buffers of the TAP's pool in use (frames from the kernel not yet
    /// freed by whoever received them).
    pub fn buffers_in_use(&self) -> usize {
        self.pool.in_use()
    }

    /// Runs `work` on a new thread inside the namespace: its sockets are
    /// the kernel host's. Fails (in the thread's result) if the thread
    /// cannot enter the namespace.
    pub fn spawn<T, F>(&self, name: String, work: F) -> io::Result<JoinHandle<io::Result<T>>>
    where
        T: Send + 'static,
        F: FnOnce() -> io::Result<T> + Send + 'static,
    {
        let ns = self.netns.name().to_string();
        thread::Builder::new().name(name).spawn(move || {
            netns::enter(&ns)?;
            work()
        })
    }
}

/// Opens TAP `tap` from a thread inside `netns`.
fn open_in(netns: &Netns, tap: &str) -> Result<OwnedFd, KernelHostError> {
    let (ns, name) = (netns.name().to_string(), tap.to_string());
    let opened = thread::spawn(move || {
        netns::enter(&ns)?;
        open_tap(&name)
    })
    .join()
    .map_err(|_| KernelHostError::Setup(format!("the thread opening TAP {tap} panicked")))?;
    opened.map_err(|e| KernelHostError::Setup(format!("cannot open TAP {tap}: {e}")))
}

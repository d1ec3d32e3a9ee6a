//! A DPDK ethdev port: configuration with N rx/tx queues, RSS (hash types,
//! key, RETA), start, statistics, extended statistics and link state.
//!
//! [`Port::configure`] checks the request against the device's limits first,
//! so a queue count, RSS hash type, key length or RETA the device cannot
//! take is a named error rather than a failure deep inside a driver.
//! [`Port::start`] hands out one [`RxQueue`] and one [`TxQueue`] handle per
//! queue, once: a DPDK queue must be polled by one thread at a time, and a
//! unique handle per queue makes that a property of the types. Control
//! operations take `&Port` and a `Port` is not `Sync`, so they run on one
//! thread while the queue handles may move to others; they live in
//! [`PortCtl`] (a `Port` derefs to it), which the `EthDev` adapter
//! ([`crate::ethdev`]) shares. Dropping a `Port` stops and closes the
//! device (a vdev then disappears).

#![allow(unsafe_code)]

use std::cell::Cell;
use std::ffi::CStr;
use std::ptr::NonNull;

use dpdk_sys as sys;
use ethdev::dev::PortStats;
use ethdev::mac::MacAddr;
use ethdev::rss::{RssHashTypes, RssKey};

use crate::eal::{Eal, PortId};
use crate::error::{Error, Result};
use crate::ffi;
use crate::mempool::PktPool;
use crate::queue::{RxQueue, TxQueue};

/// Entries per RETA group in DPDK's RETA calls.
const RETA_GROUP: usize = sys::DTNET_RETA_GROUP_SIZE as usize;

/// How to configure a port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortConf {
    /// Receive queues.
    pub rx_queues: u16,
    /// Transmit queues.
    pub tx_queues: u16,
    /// Descriptors per receive queue.
    pub rx_descs: u16,
    /// Descriptors per transmit queue.
    pub tx_descs: u16,
    /// Receive-side scaling, or none (every frame to queue 0).
    pub rss: Option<RssSetup>,
    /// Receive frames for any destination MAC.
    pub promiscuous: bool,
    /// `RTE_ETH_RX_OFFLOAD_*` bits to enable (see [`Offloads`]).
    pub rx_offloads: u64,
    /// `RTE_ETH_TX_OFFLOAD_*` bits to enable (see [`Offloads`]).
    pub tx_offloads: u64,
}

impl Default for PortConf {
    /// One queue each way, 512 descriptors, no RSS, not promiscuous, no offloads.
    fn default() -> PortConf {
        PortConf {
            rx_queues: 1,
            tx_queues: 1,
            rx_descs: 512,
            tx_descs: 512,
            rss: None,
            promiscuous: false,
            rx_offloads: 0,
            tx_offloads: 0,
        }
    }
}

/// RSS settings: which packet types are hashed, and with which key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RssSetup {
    /// Hash types, as dtnet's RSS model names them.
    pub types: RssHashTypes,
    /// The Toeplitz key, or `None` for the device's default.
    pub key: Option<RssKey>,
}

/// What a device reports about itself (`rte_eth_dev_info_get`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DevInfo {
    /// The driver, e.g. `net_ring`.
    pub driver: String,
    /// Most receive queues.
    pub max_rx_queues: u16,
    /// Most transmit queues.
    pub max_tx_queues: u16,
    /// RETA entries (0: no RETA).
    pub reta_size: u16,
    /// RSS key bytes (0: unknown or none).
    pub hash_key_size: u8,
    /// `RTE_ETH_RSS_*` bits the device hashes on.
    pub rss_offloads: u64,
    /// `RTE_ETH_RX_OFFLOAD_*` bits the device can do.
    pub rx_offload_capa: u64,
    /// `RTE_ETH_TX_OFFLOAD_*` bits the device can do.
    pub tx_offload_capa: u64,
}

/// The DPDK offload bits dtnet translates, by name (`rx_*` are
/// `RTE_ETH_RX_OFFLOAD_*`, `tx_*` are `RTE_ETH_TX_OFFLOAD_*`).
#[derive(Clone, Copy, Debug)]
pub struct Offloads;

impl Offloads {
    /// Verify IPv4 header checksums.
    pub const RX_IPV4_CKSUM: u64 = sys::DTNET_RX_OFFLOAD_IPV4_CKSUM as u64;
    /// Verify UDP checksums.
    pub const RX_UDP_CKSUM: u64 = sys::DTNET_RX_OFFLOAD_UDP_CKSUM as u64;
    /// Verify TCP checksums.
    pub const RX_TCP_CKSUM: u64 = sys::DTNET_RX_OFFLOAD_TCP_CKSUM as u64;
    /// Deliver the RSS hash.
    pub const RX_RSS_HASH: u64 = sys::DTNET_RX_OFFLOAD_RSS_HASH as u64;
    /// Fill in IPv4 header checksums.
    pub const TX_IPV4_CKSUM: u64 = sys::DTNET_TX_OFFLOAD_IPV4_CKSUM as u64;
    /// Fill in UDP checksums.
    pub const TX_UDP_CKSUM: u64 = sys::DTNET_TX_OFFLOAD_UDP_CKSUM as u64;
    /// Fill in TCP checksums.
    pub const TX_TCP_CKSUM: u64 = sys::DTNET_TX_OFFLOAD_TCP_CKSUM as u64;
    /// Segment TCP (TSO).
    pub const TX_TCP_TSO: u64 = sys::DTNET_TX_OFFLOAD_TCP_TSO as u64;
    /// All three receive checksum checks.
    pub const RX_CHECKSUM: u64 = Self::RX_IPV4_CKSUM | Self::RX_UDP_CKSUM | Self::RX_TCP_CKSUM;
    /// TCP and UDP transmit checksums.
    pub const TX_L4_CKSUM: u64 = Self::TX_UDP_CKSUM | Self::TX_TCP_CKSUM;
}

/// Link state (`rte_eth_link_get_nowait`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Link {
    /// Link up.
    pub up: bool,
    /// Speed in Mbit/s (0 if unknown).
    pub speed_mbps: u32,
    /// Full duplex.
    pub full_duplex: bool,
}

/// The queue handles of a started port, each handed out once.
#[derive(Debug)]
pub struct Queues<'p> {
    /// One handle per receive queue, in queue order.
    pub rx: Vec<RxQueue<'p>>,
    /// One handle per transmit queue, in queue order.
    pub tx: Vec<TxQueue<'p>>,
}

/// A configured port, owned by this handle until dropped.
#[derive(Debug)]
pub struct Port<'a> {
    ctl: PortCtl,
    _eal: &'a Eal,
    pool: &'a PktPool<'a>,
    tx_queues: u16,
    /// The configured RSS key: drivers may read it as late as start, so it
    /// stays where `rte_eth_dev_configure` was told it is.
    _rss_key: Option<Box<[u8]>>,
    started: Cell<bool>,
}

impl<'a> Port<'a> {
    /// Configures port `id` with `conf`, receive buffers from `pool`.
    pub fn configure(eal: &'a Eal, id: PortId, pool: &'a PktPool<'a>, conf: &PortConf) -> Result<Port<'a>> {
        let info = dev_info(id)?;
        check_queues(id, &info, "rx", conf.rx_queues, info.max_rx_queues)?;
        check_queues(id, &info, "tx", conf.tx_queues, info.max_tx_queues)?;
        check_offloads(id, &info, conf)?;
        let rss = conf.rss.map(|rss| check_rss(id, &info, &rss)).transpose()?;
        if !eal.claim(id) {
            return Err(Error::PortInUse(id.0));
        }
        let (rss_hf, mut rss_key) = rss.map_or((None, None), |(hf, key)| (Some(hf), key));
        // The port is not closed on failure: a device that failed to
        // configure stays usable for another try.
        if let Err(err) = setup(id, pool.raw(), conf, rss_hf, rss_key.as_deref_mut()) {
            Eal::release(id);
            return Err(err);
        }
        Ok(Port {
            ctl: PortCtl { id, info, rx_queues: conf.rx_queues },
            _eal: eal,
            pool,
            tx_queues: conf.tx_queues,
            _rss_key: rss_key,
            started: Cell::new(false),
        })
    }

    /// The port id.
    pub fn id(&self) -> PortId {
        self.id
    }

    /// What the device reported at configuration.
    pub fn info(&self) -> &DevInfo {
        &self.info
    }

    /// Starts the port and hands out its queue handles; once per port.
    pub fn start(&self) -> Result<Queues<'_>> {
        if self.started.replace(true) {
            return Err(Error::AlreadyStarted(self.id.0));
        }
        self.ctl.start_device()?;
        Ok(Queues {
            rx: (0..self.rx_queues).map(|q| RxQueue::new(self.id, q)).collect(),
            tx: (0..self.tx_queues).map(|q| TxQueue::new(self.id, q, self.pool.raw())).collect(),
        })
    }
}

impl std::ops::Deref for Port<'_> {
    type Target = PortCtl;

    /// A port's control operations are those of its [`PortCtl`].
    fn deref(&self) -> &PortCtl {
        &self.ctl
    }
}

/// The control operations of a configured port, addressed by its id: what
/// [`Port`] and the `EthDev` adapter ([`crate::ethdev`]) share.
#[derive(Debug)]
pub struct PortCtl {
    pub(crate) id: PortId,
    pub(crate) info: DevInfo,
    pub(crate) rx_queues: u16,
}

impl PortCtl {
    /// `rte_eth_dev_start`: the port is configured, its queues set up.
    pub(crate) fn start_device(&self) -> Result<()> {
        // SAFETY: the port is configured and owned by the caller.
        let ret = unsafe { sys::rte_eth_dev_start(self.id.0) };
        ffi::check(ret, || format!("rte_eth_dev_start(port {})", self.id.0)).map(drop)
    }

    /// `rte_eth_dev_stop`; the caller holds no queue handles of the port.
    pub(crate) fn stop_device(&self) -> Result<()> {
        // SAFETY: the port is ours and no queue of it is being polled.
        let ret = unsafe { sys::rte_eth_dev_stop(self.id.0) };
        ffi::check(ret, || format!("rte_eth_dev_stop(port {})", self.id.0)).map(drop)
    }

    /// `rte_eth_dev_close`, ignoring errors (a closed port is the goal);
    /// the caller holds no queue handles and never uses the id again.
    pub(crate) fn close_device(&self) {
        // SAFETY: as stop_device; nothing refers to the port afterwards.
        unsafe { sys::rte_eth_dev_close(self.id.0) };
    }

    /// The port's MAC address.
    pub fn mac(&self) -> Result<MacAddr> {
        let mut addr = sys::rte_ether_addr::default();
        // SAFETY: addr is a valid out-pointer for the call.
        let ret = unsafe { sys::rte_eth_macaddr_get(self.id.0, &mut addr) };
        ffi::check(ret, || format!("rte_eth_macaddr_get(port {})", self.id.0))?;
        Ok(MacAddr(addr.addr_bytes))
    }

    /// The RSS key and `RTE_ETH_RSS_*` hash types the device uses now.
    pub fn rss_conf(&self) -> Result<(Vec<u8>, u64)> {
        let mut key = vec![0u8; usize::from(self.info.hash_key_size.max(40))];
        let mut conf = sys::rte_eth_rss_conf { rss_key: key.as_mut_ptr(), rss_key_len: key.len() as u8, rss_hf: 0 };
        // SAFETY: conf points at a key buffer of rss_key_len bytes, which
        // outlives the call.
        let ret = unsafe { sys::rte_eth_dev_rss_hash_conf_get(self.id.0, &mut conf) };
        ffi::check(ret, || format!("rte_eth_dev_rss_hash_conf_get(port {})", self.id.0))?;
        key.truncate(usize::from(conf.rss_key_len));
        Ok((key, conf.rss_hf))
    }

    /// Sets the RSS hash types and key (while running, if the device can).
    pub fn set_rss(&self, rss: &RssSetup) -> Result<()> {
        let (hf, key) = check_rss(self.id, &self.info, rss)?;
        let mut key = key.unwrap_or_default();
        let mut conf = sys::rte_eth_rss_conf {
            rss_key: if key.is_empty() { std::ptr::null_mut() } else { key.as_mut_ptr() },
            rss_key_len: key.len() as u8,
            rss_hf: hf,
        };
        // SAFETY: conf and its key buffer outlive the call; DPDK copies the key.
        let ret = unsafe { sys::rte_eth_dev_rss_hash_update(self.id.0, &mut conf) };
        ffi::check(ret, || format!("rte_eth_dev_rss_hash_update(port {})", self.id.0)).map(drop)
    }

    /// Programs the RETA: `entries[i]` is the queue of hashes whose low bits
    /// are `i`; there must be exactly as many as the device's RETA has.
    pub fn set_reta(&self, entries: &[u16]) -> Result<()> {
        self.check_reta_size(entries.len())?;
        if let Some((index, &queue)) = entries.iter().enumerate().find(|(_, &q)| q >= self.rx_queues) {
            return Err(Error::RetaQueue { port: self.id.0, index, queue, queues: self.rx_queues });
        }
        let mut groups = reta_groups(entries.len());
        for (i, &queue) in entries.iter().enumerate() {
            groups[i / RETA_GROUP].reta[i % RETA_GROUP] = queue;
        }
        // SAFETY: groups holds reta_size / 64 (rounded up) groups, each with
        // the mask of the entries it sets; it outlives the call.
        let ret = unsafe { sys::rte_eth_dev_rss_reta_update(self.id.0, groups.as_mut_ptr(), entries.len() as u16) };
        ffi::check(ret, || format!("rte_eth_dev_rss_reta_update(port {})", self.id.0)).map(drop)
    }

    /// The RETA as the device holds it now.
    pub fn reta(&self) -> Result<Vec<u16>> {
        let size = usize::from(self.info.reta_size);
        self.check_reta_size(size)?;
        let mut groups = reta_groups(size);
        // SAFETY: as in set_reta; the device fills the masked entries.
        let ret = unsafe { sys::rte_eth_dev_rss_reta_query(self.id.0, groups.as_mut_ptr(), size as u16) };
        ffi::check(ret, || format!("rte_eth_dev_rss_reta_query(port {})", self.id.0))?;
        Ok((0..size).map(|i| groups[i / RETA_GROUP].reta[i % RETA_GROUP]).collect())
    }

    /// The basic counters (`rte_eth_stats_get`), as dtnet's `PortStats`;
    /// per-queue counts are in [`PortCtl::xstats`].
    pub fn stats(&self) -> Result<PortStats> {
        let mut stats = sys::rte_eth_stats::default();
        // SAFETY: stats is a valid out-pointer for the call.
        let ret = unsafe { sys::rte_eth_stats_get(self.id.0, &mut stats) };
        ffi::check(ret, || format!("rte_eth_stats_get(port {})", self.id.0))?;
        Ok(PortStats {
            ipackets: stats.ipackets,
            opackets: stats.opackets,
            ibytes: stats.ibytes,
            obytes: stats.obytes,
            imissed: stats.imissed,
            ierrors: stats.ierrors,
            oerrors: stats.oerrors,
            ..PortStats::default()
        })
    }

    /// The driver's extended counters, by name, in the driver's order.
    pub fn xstats(&self) -> Result<Vec<(String, u64)>> {
        let call = || format!("rte_eth_xstats_get_names(port {})", self.id.0);
        // SAFETY: a NULL array of size 0 asks only for the count.
        let count = ffi::check(unsafe { sys::rte_eth_xstats_get_names(self.id.0, std::ptr::null_mut(), 0) }, call)?;
        let mut names = vec![sys::rte_eth_xstat_name::default(); count as usize];
        // SAFETY: names has room for `count` entries.
        let got = unsafe { sys::rte_eth_xstats_get_names(self.id.0, names.as_mut_ptr(), count as u32) };
        ffi::check(got, call)?;
        let mut values = vec![sys::rte_eth_xstat::default(); count as usize];
        // SAFETY: values has room for `count` entries.
        let got = unsafe { sys::rte_eth_xstats_get(self.id.0, values.as_mut_ptr(), count as u32) };
        let got = ffi::check(got, || format!("rte_eth_xstats_get(port {})", self.id.0))?;
        let got = (got as usize).min(values.len());
        Ok(values[..got]
            .iter()
            .filter_map(|value| names.get(value.id as usize).map(|name| (ffi::text(&name.name), value.value)))
            .collect())
    }

    /// The link state, without waiting for negotiation.
    pub fn link(&self) -> Result<Link> {
        let mut link = sys::rte_eth_link::default();
        // SAFETY: link is a valid out-pointer for the call.
        let ret = unsafe { sys::rte_eth_link_get_nowait(self.id.0, &mut link) };
        ffi::check(ret, || format!("rte_eth_link_get_nowait(port {})", self.id.0))?;
        Ok(Link {
            up: i32::from(link.link_status()) == sys::DTNET_LINK_UP,
            speed_mbps: link.link_speed,
            full_duplex: i32::from(link.link_duplex()) == sys::DTNET_LINK_FULL_DUPLEX,
        })
    }

    fn check_reta_size(&self, requested: usize) -> Result<()> {
        if self.info.reta_size == 0 || requested != usize::from(self.info.reta_size) {
            return Err(Error::RetaSize {
                port: self.id.0,
                driver: self.info.driver.clone(),
                requested,
                device: self.info.reta_size,
            });
        }
        Ok(())
    }
}

impl Drop for Port<'_> {
    fn drop(&mut self) {
        // The queue handles borrowed self and are gone. Errors are ignored:
        // a stopped or closed port is the goal.
        if self.started.get() {
            let _ = self.ctl.stop_device();
        }
        self.ctl.close_device();
        Eal::release(self.id);
    }
}

/// `rte_eth_dev_configure`, the queues, and promiscuous mode.
pub(crate) fn setup(
    id: PortId,
    pool: NonNull<sys::rte_mempool>,
    conf: &PortConf,
    rss_hf: Option<u64>,
    key: Option<&mut [u8]>,
) -> Result<()> {
    let id = id.0;
    let mut eth_conf = sys::rte_eth_conf::default();
    eth_conf.rxmode.offloads = conf.rx_offloads;
    eth_conf.txmode.offloads = conf.tx_offloads;
    if let Some(hf) = rss_hf {
        eth_conf.rxmode.mq_mode = sys::RTE_ETH_MQ_RX_RSS;
        let rss = &mut eth_conf.rx_adv_conf.rss_conf;
        rss.rss_hf = hf;
        if let Some(key) = key {
            rss.rss_key = key.as_mut_ptr();
            rss.rss_key_len = key.len() as u8;
        }
    }
    // SAFETY: eth_conf is valid for the call; DPDK copies it, and the key
    // it points to moves, boxed, into the Port and lives until it closes.
    let ret = unsafe { sys::rte_eth_dev_configure(id, conf.rx_queues, conf.tx_queues, &eth_conf) };
    ffi::check(ret, || format!("rte_eth_dev_configure(port {id})"))?;
    let socket = sys::DTNET_SOCKET_ID_ANY as u32;
    for q in 0..conf.rx_queues {
        // SAFETY: the port is configured with this queue; NULL takes the
        // driver's default rxconf; the pool outlives the port.
        let ret = unsafe { sys::rte_eth_rx_queue_setup(id, q, conf.rx_descs, socket, std::ptr::null(), pool.as_ptr()) };
        ffi::check(ret, || format!("rte_eth_rx_queue_setup(port {id}, queue {q})"))?;
    }
    for q in 0..conf.tx_queues {
        // SAFETY: as above, with the driver's default txconf.
        let ret = unsafe { sys::rte_eth_tx_queue_setup(id, q, conf.tx_descs, socket, std::ptr::null()) };
        ffi::check(ret, || format!("rte_eth_tx_queue_setup(port {id}, queue {q})"))?;
    }
    if conf.promiscuous {
        // SAFETY: the port is configured.
        let ret = unsafe { sys::rte_eth_promiscuous_enable(id) };
        ffi::check(ret, || format!("rte_eth_promiscuous_enable(port {id})"))?;
    }
    Ok(())
}

/// `rte_eth_dev_info_get`, or [`Error::NoSuchPort`].
pub(crate) fn dev_info(id: PortId) -> Result<DevInfo> {
    let mut info = sys::rte_eth_dev_info::default();
    // SAFETY: info is a valid out-pointer; an invalid port id is an error.
    let ret = unsafe { sys::rte_eth_dev_info_get(id.0, &mut info) };
    if ret == -sys::DTNET_ENODEV {
        return Err(Error::NoSuchPort(id.0));
    }
    ffi::check(ret, || format!("rte_eth_dev_info_get(port {})", id.0))?;
    let driver = if info.driver_name.is_null() {
        String::new()
    } else {
        // SAFETY: a non-NULL driver name is a static NUL-terminated string.
        unsafe { CStr::from_ptr(info.driver_name) }.to_string_lossy().into_owned()
    };
    Ok(DevInfo {
        driver,
        max_rx_queues: info.max_rx_queues,
        max_tx_queues: info.max_tx_queues,
        reta_size: info.reta_size,
        hash_key_size: info.hash_key_size,
        rss_offloads: info.flow_type_rss_offloads,
        rx_offload_capa: info.rx_offload_capa,
        tx_offload_capa: info.tx_offload_capa,
    })
}

/// Refuses offloads the device does not list in its capabilities.
pub(crate) fn check_offloads(id: PortId, info: &DevInfo, conf: &PortConf) -> Result<()> {
    for (kind, requested, supported) in
        [("rx", conf.rx_offloads, info.rx_offload_capa), ("tx", conf.tx_offloads, info.tx_offload_capa)]
    {
        if requested & !supported != 0 {
            return Err(Error::OffloadUnsupported {
                port: id.0,
                driver: info.driver.clone(),
                kind,
                requested,
                supported,
            });
        }
    }
    Ok(())
}

pub(crate) fn check_queues(id: PortId, info: &DevInfo, kind: &'static str, requested: u16, max: u16) -> Result<()> {
    if requested == 0 || requested > max {
        return Err(Error::TooManyQueues { port: id.0, driver: info.driver.clone(), kind, requested, max });
    }
    Ok(())
}

/// The `RTE_ETH_RSS_*` bits of `rss` and its key bytes, if the device
/// takes both.
pub(crate) fn check_rss(id: PortId, info: &DevInfo, rss: &RssSetup) -> Result<(u64, Option<Box<[u8]>>)> {
    let hf = rss_hf(rss.types);
    if hf & !info.rss_offloads != 0 || (hf == 0 && !rss.types.is_empty()) {
        return Err(Error::RssUnsupported {
            port: id.0,
            driver: info.driver.clone(),
            requested: hf,
            supported: info.rss_offloads,
        });
    }
    let key = rss.key.map(|key| Box::<[u8]>::from(key.as_bytes()));
    if let Some(key) = &key {
        if info.hash_key_size != 0 && key.len() != usize::from(info.hash_key_size) {
            return Err(Error::RssKeyLength {
                port: id.0,
                driver: info.driver.clone(),
                requested: key.len(),
                device: info.hash_key_size,
            });
        }
    }
    Ok((hf, key))
}

/// dtnet's RSS hash types as `RTE_ETH_RSS_*` bits.
pub fn rss_hf(types: RssHashTypes) -> u64 {
    let map = [
        (RssHashTypes::IPV4, sys::DTNET_RSS_IPV4),
        (RssHashTypes::IPV4_TCP, sys::DTNET_RSS_NONFRAG_IPV4_TCP),
        (RssHashTypes::IPV4_UDP, sys::DTNET_RSS_NONFRAG_IPV4_UDP),
        (RssHashTypes::IPV6, sys::DTNET_RSS_IPV6),
        (RssHashTypes::IPV6_TCP, sys::DTNET_RSS_NONFRAG_IPV6_TCP),
        (RssHashTypes::IPV6_UDP, sys::DTNET_RSS_NONFRAG_IPV6_UDP),
    ];
    map.iter().filter(|(t, _)| types.contains(*t)).fold(0, |hf, &(_, bit)| hf | bit as u64)
}

/// Zeroed RETA groups for `size` entries, each with the mask of its entries.
fn reta_groups(size: usize) -> Vec<sys::rte_eth_rss_reta_entry64> {
    (0..size.div_ceil(RETA_GROUP))
        .map(|g| {
            let entries = (size - g * RETA_GROUP).min(RETA_GROUP);
            let mask = if entries == RETA_GROUP { u64::MAX } else { (1u64 << entries) - 1 };
            sys::rte_eth_rss_reta_entry64 { mask, ..Default::default() }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(hash_key_size: u8, rss_offloads: u64) -> DevInfo {
        DevInfo {
            driver: "test".into(),
            max_rx_queues: 4,
            max_tx_queues: 4,
            reta_size: 128,
            hash_key_size,
            rss_offloads,
            rx_offload_capa: 0,
            tx_offload_capa: 0,
        }
    }

    #[test]
    fn rss_requests_are_checked_against_the_device() {
        let all = rss_hf(RssHashTypes::all());
        let v4 = RssSetup { types: RssHashTypes::IPV4 | RssHashTypes::IPV4_TCP, key: Some(RssKey::DEFAULT) };
        let (hf, key) = check_rss(PortId(0), &info(40, all), &v4).expect("a 40-byte key device takes it");
        assert_eq!(hf, rss_hf(v4.types));
        assert_eq!(key.as_deref(), Some(RssKey::DEFAULT.as_bytes()));
        let long = RssSetup { key: Some(RssKey::new(&[1; 52]).unwrap()), ..v4 };
        let err = check_rss(PortId(0), &info(40, all), &long).unwrap_err();
        assert!(matches!(err, Error::RssKeyLength { requested: 52, device: 40, .. }), "{err}");
        assert!(
            check_rss(PortId(0), &info(0, all), &long).is_ok(),
            "a device that names no key size is not second-guessed"
        );
        let v6 = RssSetup { types: RssHashTypes::IPV6_UDP, key: None };
        let err = check_rss(PortId(0), &info(40, rss_hf(RssHashTypes::IPV4)), &v6).unwrap_err();
        assert!(matches!(err, Error::RssUnsupported { .. }), "{err}");
    }

    #[test]
    fn each_hash_type_maps_to_its_own_dpdk_bit() {
        let bits: Vec<u64> = RssHashTypes::all().iter().map(rss_hf).collect();
        assert_eq!(bits.len(), 6);
        assert!(bits.iter().all(|b| b.count_ones() == 1), "{bits:x?}");
        assert_eq!(bits.iter().fold(0, |acc, b| acc | b).count_ones(), 6, "no two types share a bit");
        assert_eq!(rss_hf(RssHashTypes::IPV4), 1 << 2, "RTE_ETH_RSS_IPV4 is bit 2 in DPDK 22.11");
    }
}

//! Middleware: behaviour for any port, as a wrapper around its `EthDev`.
//!
//! smoltcp layers `PcapWriter<D>` and `FaultInjector<D>` over any
//! `phy::Device`; here [`Capture`] and [`FaultInjector`] wrap any
//! [`EthDev`] the same way. A wrapper forwards every control operation to
//! the device it wraps and wraps the queue handles that device hands out,
//! so the fast path of a wrapped port is the device's own handle plus what
//! the wrapper does per burst, still without a lock. Wrappers nest
//! (`Capture<FaultInjector<VethPort>>`), and `Arc<D>` is an `EthDev`
//! itself, so a wrapper can hold a shared `Arc<dyn EthDev>` of any backend.

use std::sync::Arc;

use crate::dev::EthDev;
use crate::error::DevError;
use crate::queue::{RxQueue, TxQueue};

mod capture;
mod fault;

pub use capture::{BurstHook, BurstLog, Capture, CaptureWire, HookPoint};
pub use fault::{FaultConfig, FaultInjector, FaultStats, Faults};

/// The body of an `EthDev` impl that forwards every control operation
/// (everything but the queue handles) to `self.$inner()`.
macro_rules! forward_control {
    ($inner:ident) => {
        fn info(&self) -> $crate::dev::DevInfo {
            self.$inner().info()
        }
        fn name(&self) -> &str {
            self.$inner().name()
        }
        fn configure(&self, conf: &$crate::dev::PortConf) -> Result<(), $crate::error::DevError> {
            self.$inner().configure(conf)
        }
        fn start(&self) -> Result<(), $crate::error::DevError> {
            self.$inner().start()
        }
        fn stop(&self) -> Result<(), $crate::error::DevError> {
            self.$inner().stop()
        }
        fn rss_hash_update(
            &self,
            key: $crate::rss::RssKey,
            types: $crate::rss::RssHashTypes,
        ) -> Result<(), $crate::error::DevError> {
            self.$inner().rss_hash_update(key, types)
        }
        fn reta_update(&self, reta: $crate::rss::Reta) -> Result<(), $crate::error::DevError> {
            self.$inner().reta_update(reta)
        }
        fn reta_query(&self) -> Result<$crate::rss::Reta, $crate::error::DevError> {
            self.$inner().reta_query()
        }
        fn flow_validate(
            &self,
            attr: &$crate::flow::FlowAttr,
            pattern: &[$crate::flow::FlowItem],
            actions: &[$crate::flow::FlowAction],
        ) -> Result<(), $crate::error::DevError> {
            self.$inner().flow_validate(attr, pattern, actions)
        }
        fn flow_create(
            &self,
            attr: &$crate::flow::FlowAttr,
            pattern: &[$crate::flow::FlowItem],
            actions: &[$crate::flow::FlowAction],
        ) -> Result<$crate::flow::FlowId, $crate::error::DevError> {
            self.$inner().flow_create(attr, pattern, actions)
        }
        fn flow_destroy(&self, id: $crate::flow::FlowId) -> Result<(), $crate::error::DevError> {
            self.$inner().flow_destroy(id)
        }
        fn flow_flush(&self) -> Result<(), $crate::error::DevError> {
            self.$inner().flow_flush()
        }
        fn flow_query(&self, id: $crate::flow::FlowId) -> Result<$crate::flow::FlowCounters, $crate::error::DevError> {
            self.$inner().flow_query(id)
        }
        fn flow_isolate(&self, on: bool) -> Result<(), $crate::error::DevError> {
            self.$inner().flow_isolate(on)
        }
        fn link(&self) -> Result<$crate::dev::LinkStatus, $crate::error::DevError> {
            self.$inner().link()
        }
        fn set_link(&self, up: bool) -> Result<(), $crate::error::DevError> {
            self.$inner().set_link(up)
        }
        fn mac_addr(&self) -> Result<$crate::mac::MacAddr, $crate::error::DevError> {
            self.$inner().mac_addr()
        }
        fn mtu(&self) -> Result<u16, $crate::error::DevError> {
            self.$inner().mtu()
        }
        fn set_mtu(&self, mtu: u16) -> Result<(), $crate::error::DevError> {
            self.$inner().set_mtu(mtu)
        }
        fn promiscuous(&self) -> Result<bool, $crate::error::DevError> {
            self.$inner().promiscuous()
        }
        fn set_promiscuous(&self, on: bool) -> Result<(), $crate::error::DevError> {
            self.$inner().set_promiscuous(on)
        }
        fn stats(&self) -> Result<$crate::dev::PortStats, $crate::error::DevError> {
            self.$inner().stats()
        }
        fn xstats(&self) -> Result<Vec<$crate::dev::XStat>, $crate::error::DevError> {
            self.$inner().xstats()
        }
        fn stats_reset(&self) -> Result<(), $crate::error::DevError> {
            self.$inner().stats_reset()
        }
        fn check_accounting(&self) -> Result<(), $crate::error::DevError> {
            self.$inner().check_accounting()
        }
    };
}
use forward_control;

/// A shared port is a port: the queue handles and every control call go
/// to the device behind the `Arc`.
impl<D: EthDev + ?Sized> EthDev for Arc<D> {
    forward_control!(as_ref);

    fn rx_queue(&self, queue: u16) -> Result<Box<dyn RxQueue>, DevError> {
        self.as_ref().rx_queue(queue)
    }

    fn tx_queue(&self, queue: u16) -> Result<Box<dyn TxQueue>, DevError> {
        self.as_ref().tx_queue(queue)
    }
}

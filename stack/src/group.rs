//! A stack group: the stack instances of one process on one port.
//!
//! gazelle runs one stack per configured CPU, each polling its own NIC
//! queue. [`StackGroup::new`] configures the port with one queue pair per
//! stack, builds what the stacks share (the `Fabric`),
//! gives each stack the consuming ends of its rings, and builds the
//! instances. Executors drive the group by calling [`StackGroup::poll`] for
//! each stack from whichever thread owns it; applications reach it through
//! [`Api`](crate::Api) handles made from it with [`Api::new`](crate::Api::new).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use ethdev::dev::{PortConf, RxOffloads, TxOffloads};
use ethdev::error::DevError;
use ethdev::flow::{FlowAction, FlowAttr, FlowItem, ItemSpec};
use ethdev::ring::{mpsc, Consumer, MpProducer};
use ethdev::rss::RssConf;
use ethdev::{EthDev, Instant, Mempool, MempoolConfig, Wire};

use crate::config::ForwardMode;
use crate::device::TSO_FRAME;
use crate::dispatch::Tables;
use crate::fabric::{Fabric, Inbox, NicQueue, CATCHALL_PRIORITY};
use crate::instance::{Instance, StackStats};
use crate::kernel_share::KernelShare;
use crate::ports::PortTable;

pub use crate::fabric::GroupConfig;

/// Why a group could not be built.
#[derive(Debug, thiserror::Error)]
pub enum GroupError {
    /// The configuration is unusable.
    #[error("stack group: {0}")]
    Config(String),
    /// The port refused its configuration.
    #[error("stack group: port: {0}")]
    Port(#[from] DevError),
}

/// The stacks of one process on one port, and what they share.
#[derive(Clone)]
pub struct StackGroup {
    pub(crate) fabric: Arc<Fabric>,
    pub(crate) stacks: Arc<[Mutex<Instance>]>,
}

impl StackGroup {
    /// Shares the group's NIC with the Linux kernel behind `wire` (gazelle's
    /// `flow_bifurcation`): TCP and UDP frames for ports none of the
    /// group's sockets holds go to the kernel, neighbour messages to both,
    /// and what the kernel sends leaves through the NIC (see the
    /// `kernel_share` module). A group shares its NIC with one kernel only.
    pub fn share_with_kernel(&self, wire: Box<dyn Wire>) -> Result<(), GroupError> {
        let shared = self.fabric.kernel.set(KernelShare::new(wire));
        shared.map_err(|_| GroupError::Config("the NIC is already shared with a kernel".into()))
    }

    /// Configures `port` with one queue pair per stack, starts it, and
    /// builds the stacks. Buffers come from `pool`.
    pub fn new(port: Arc<dyn EthDev>, pool: Mempool, config: GroupConfig) -> Result<StackGroup, GroupError> {
        check(&config)?;
        if config.mode == ForwardMode::Ltran {
            return Err(GroupError::Config("mode ltran: the forwarder configures the port, not its stacks".into()));
        }
        let queues = u16::try_from(config.stacks).map_err(|_| GroupError::Config("too many stacks".into()))?;
        let mut conf = PortConf::new(queues);
        conf.mtu = config.mtu;
        // A device whose RETA has one size (a NIC's 64 or 512) takes that one.
        let reta_sizes = port.info().reta_sizes;
        if let (false, Some(&size)) = (reta_sizes.contains(&conf.reta_size), reta_sizes.first()) {
            conf.reta_size = size;
        }
        let tso_pool = config.tso.then(|| tso_offloads(port.as_ref(), &mut conf, &pool, queues)).transpose()?;
        port.configure(&conf)?;
        if config.mode == ForwardMode::FlowDirector {
            install_syn_catchall(port.as_ref())?;
        }
        port.start()?;
        let rss = RssConf::from_parts(conf.rss_key, conf.rss_types, port.reta_query()?);
        Self::build(port, pool, config, rss, tso_pool)
    }

    /// Builds the stacks on a port another process configured and started:
    /// a shared port of a domain, which only its primary may configure,
    /// while the process running these stacks receives and sends on its
    /// queues (stack `i` on queue `i`, or after the other processes' in
    /// tuple_filter mode: see [`GroupConfig::process`]). `rss` is how that
    /// port spreads frames over its queues, which outbound connections
    /// need to pick local ports whose replies come back to the connecting
    /// stack. Flow-director mode asks the port for a rule per connection
    /// (a shared port forwards the request to its primary), and expects
    /// the configuring process to have turned RSS off; TSO configures the
    /// port, so it is refused here.
    pub fn on_configured_port(
        port: Arc<dyn EthDev>,
        pool: Mempool,
        config: GroupConfig,
        rss: RssConf,
    ) -> Result<StackGroup, GroupError> {
        check(&config)?;
        if config.tso {
            let why = "tso configures the port, which its configuring process does here";
            return Err(GroupError::Config(why.into()));
        }
        let info = port.info();
        let first = usize::from(config.first_queue());
        let queues = usize::from(info.max_rx_queues.min(info.max_tx_queues));
        if first + config.stacks > queues {
            return Err(GroupError::Config(format!(
                "{} stacks from queue {first} need queues up to {}; the port has {queues}",
                config.stacks,
                first + config.stacks - 1
            )));
        }
        Self::build(port, pool, config, rss, None)
    }

    /// The stacks, their rings and what they share, on a started port.
    fn build(
        port: Arc<dyn EthDev>,
        pool: Mempool,
        config: GroupConfig,
        rss: RssConf,
        tso_pool: Option<Mempool>,
    ) -> Result<StackGroup, GroupError> {
        let first = config.first_queue();
        let queues = first..first + config.stacks as u16;
        let nics = queues.map(|q| Ok(NicQueue { rx: port.rx_queue(q)?, tx: port.tx_queue(q)? }));
        let nics = nics.collect::<Result<Vec<_>, DevError>>()?;
        let (soft, soft_ends) = rings(config.stacks, config.ring_size)?;
        let (rpc, rpc_ends) = rings(config.stacks, config.ring_size)?;
        let ports = Mutex::new(PortTable::starting_at(config.ephemeral_start()));
        let fabric = Arc::new(Fabric {
            soft,
            rpc,
            config,
            port,
            pool,
            tso_pool,
            rss,
            tables: Tables::default(),
            ports,
            fds: Mutex::default(),
            kernel: OnceLock::new(),
        });
        let inboxes = soft_ends.into_iter().zip(rpc_ends).map(|(soft, rpc)| Inbox { soft, rpc });
        let stacks = inboxes
            .zip(nics)
            .enumerate()
            .map(|(i, (inbox, nic))| Mutex::new(Instance::new(i, Arc::clone(&fabric), inbox, nic)))
            .collect();
        Ok(StackGroup { fabric, stacks })
    }

    /// Number of stacks.
    pub fn len(&self) -> usize {
        self.stacks.len()
    }

    /// Whether the group has no stacks (never true for a built group).
    pub fn is_empty(&self) -> bool {
        self.stacks.is_empty()
    }

    /// The configuration the group was built with.
    pub fn config(&self) -> &GroupConfig {
        &self.fabric.config
    }

    /// Polls stack `i` at `now`; true if it did any work.
    pub fn poll(&self, i: usize, now: Instant) -> bool {
        self.stack(i).poll(now)
    }

    /// When stack `i` next needs a poll, if it has a deadline.
    pub fn poll_at(&self, i: usize) -> Option<Instant> {
        self.stack(i).poll_at()
    }

    /// Counters of stack `i`.
    pub fn stats(&self, i: usize) -> StackStats {
        self.stack(i).stats()
    }

    /// The stack the NIC's RSS sends frames from `peer` to `local` to.
    pub fn rss_stack(&self, peer: SocketAddr, local: SocketAddr) -> usize {
        usize::from(self.fabric.rss_queue(peer, local))
    }

    /// The group's pool of large buffers for TSO super-frames, if it has
    /// TSO; its buffers in use count towards a host's leak check.
    pub fn tso_pool(&self) -> Option<&Mempool> {
        self.fabric.tso_pool.as_ref()
    }

    /// Number of connection rules in the group's table.
    pub fn rule_count(&self) -> usize {
        self.fabric.tables.conn_count()
    }

    /// Stack `i`, locked.
    pub(crate) fn stack(&self, i: usize) -> MutexGuard<'_, Instance> {
        self.stacks[i].lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A set of MPSC rings as their producing ends (for the fabric) and their
/// consuming ends (one per stack).
type RingEnds<T> = (Vec<MpProducer<T>>, Vec<Consumer<T>>);

/// `n` MPSC rings of `size` slots.
fn rings<T>(n: usize, size: usize) -> Result<RingEnds<T>, GroupError> {
    (0..n).map(|_| mpsc(size).map_err(|e| GroupError::Config(e.to_string()))).collect()
}

fn check(config: &GroupConfig) -> Result<(), GroupError> {
    let bad = |m: &str| Err(GroupError::Config(m.to_string()));
    if config.stacks == 0 {
        return bad("stacks: at least one stack is needed");
    }
    if config.ipv4.is_none() && config.ipv6.is_none() {
        return bad("no IPv4 or IPv6 address");
    }
    if config.mode == ForwardMode::Ltran && config.process.is_none() {
        return bad("mode ltran needs a forwarder process: its stacks run on the forwarder's shared port, as one of its processes (`process`)");
    }
    if !config.ring_size.is_power_of_two() {
        return bad("ring_size must be a power of two");
    }
    if config.process.is_some_and(|p| p.index >= p.count || usize::from(p.count) * config.stacks > 64) {
        return bad("process: index must be below count, and count × stacks at most 64 queues");
    }
    Ok(())
}

/// Enables TSO and the checksum offloads it relies on in `conf`, if the
/// port offers them, and large receive offload and receive checksum
/// offload if it offers those, and makes the pool of large buffers the stacks build
/// super-frames in: [`TSO_BUFFERS_PER_STACK`] for each of the `stacks`,
/// named after `pool`.
fn tso_offloads(port: &dyn EthDev, conf: &mut PortConf, pool: &Mempool, stacks: u16) -> Result<Mempool, GroupError> {
    let wanted = TxOffloads::TCP_TSO | TxOffloads::IPV4_CKSUM | TxOffloads::L4_CKSUM;
    let offered = port.info().tx_offloads;
    if !offered.contains(wanted) {
        let missing = wanted - offered;
        return Err(GroupError::Config(format!("tso: the port does not offer the transmit offloads {missing:?}")));
    }
    conf.tx_offloads |= wanted;
    // Super-frames from a peer that sends them whole go up whole: one
    // large segment for smoltcp instead of dozens. A NIC with TSO also
    // verifies checksums on receive, so smoltcp need not sum 64 KiB again.
    conf.rx_offloads |= port.info().rx_offloads & (RxOffloads::TCP_LRO | RxOffloads::CHECKSUM);
    let buffers = u32::from(stacks) * TSO_BUFFERS_PER_STACK;
    let config = MempoolConfig::new(format!("{}-tso", pool.name()), buffers).data_room(TSO_FRAME as u32);
    Mempool::new(config).map_err(|e| GroupError::Config(e.to_string()))
}

/// Large buffers per stack for TSO super-frames. They live only from the
/// stack's egress to the NIC's segmentation, so a few dozen cover a
/// socket's whole send buffer in 64 KiB frames several times over; when
/// they run out, the stack holds its frames back until the NIC frees some.
pub const TSO_BUFFERS_PER_STACK: u32 = 64;

/// Flow-director mode: TCP frames no connection rule claims go to queue 0,
/// whose stack dispatches new connections by the listen-port table.
fn install_syn_catchall(port: &dyn EthDev) -> Result<(), DevError> {
    let attr = FlowAttr::ingress(CATCHALL_PRIORITY);
    let to_zero = [FlowAction::Queue(0)];
    for ip in [FlowItem::Ipv4(ItemSpec::ANY), FlowItem::Ipv6(ItemSpec::ANY)] {
        port.flow_create(&attr, &[FlowItem::Eth(ItemSpec::ANY), ip, FlowItem::Tcp(ItemSpec::ANY)], &to_zero)?;
    }
    Ok(())
}

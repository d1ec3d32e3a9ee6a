//! gazelle's "one VF per process" across real processes.
//!
//! gazelle's programmer guide runs each lstack process on its own virtual
//! function of an SR-IOV NIC, and the NIC's embedded L2 switch carries
//! traffic between VFs. Here the domain's primary plays the NIC: it makes
//! one shared port per process (`vf<n>`, MAC and pool `vf<n>_pool` of its
//! own, as each process's driver would have its own mempool) and switches
//! between their wire ends with a [`user_vbridge::Bridge`], copying a frame
//! into the receiving VF's pool as a NIC's DMA would. Every process, the
//! primary included, runs a gazelle-style stack on its VF
//! ([`StackGroup::on_configured_port`]): process 0 the echo server, every
//! other process the echo clients (see [`super`] for the run and its
//! checks). A secondary's stacks allocate under the owner id the domain's
//! control channel gave the process, so reclamation after a death finds
//! every buffer it held, and an heir takes the dead's VF again.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use ethdev::dev::PortConf;
use ethdev::mempool::{DeadOwner, MempoolConfig, Owner};
use ethdev::rss::{Reta, RssConf};
use ethdev::shm::control::{ControlEvent, ControlServer, Peer};
use ethdev::shm::Domain;
use ethdev::{EthDev, MacAddr};
use sim::apps::Ledger;
use sim::exec::Spawner;
use stack::{GroupConfig, StackGroup};
use user_vbridge::{Bridge, BridgeConfig};
use user_veth::shared::{PortSpec, SharedPort, SharedVeth};

use super::{register, run_client, supervise, ClientReport, NicTotals, Options, Outcome, Report, Server, PORT};
use crate::bridged::{bridge_drops, BridgedWires};
use crate::hosts::PRIMARY_OWNER;

/// The word the primary sets once its server listens.
const LISTENING: &str = "gazelle_vf.listening";
/// Buffers of each VF's pool.
const VF_BUFFERS: u32 = 4096;

/// VF `n`'s name, MAC, address and pool.
fn vf_name(n: u16) -> String {
    format!("vf{n}")
}

fn vf_mac(n: u16) -> MacAddr {
    MacAddr([2, 0, 0, 0, 2, n as u8])
}

fn vf_ip(n: u16) -> Ipv4Addr {
    Ipv4Addr::new(10, 2, 0, 1 + n as u8)
}

/// VF `n`'s queue pairs, a stack each: the server's VF (process 0) has
/// one, every lstack process's `opts.stacks`, RSS spreading its flows.
fn vf_queues(opts: &Options, n: u16) -> u16 {
    if n == 0 {
        1
    } else {
        opts.stacks
    }
}

/// The port configuration of a VF with `queues` queue pairs.
fn vf_conf(queues: u16) -> PortConf {
    PortConf { rx_ring_size: 1024, tx_ring_size: 1024, ..PortConf::new(queues) }
}

/// RSS as [`vf_conf`] sets it up, which a secondary cannot query.
fn vf_rss(queues: u16) -> Result<RssConf, String> {
    let conf = vf_conf(queues);
    let reta = Reta::new(usize::from(conf.reta_size), queues).map_err(|e| e.to_string())?;
    Ok(RssConf::from_parts(conf.rss_key, conf.rss_types, reta))
}

/// Process `n`'s stack group on its VF `port`, allocating as `owner`.
fn group(opts: &Options, n: u16, port: SharedPort, owner: Owner) -> Result<StackGroup, String> {
    let queues = vf_queues(opts, n);
    let config = GroupConfig {
        model: opts.model,
        owner_base: owner.0,
        // A new process picks new initial sequence numbers and ports, as
        // Linux's would: an heir must not reuse its predecessor's (the
        // server may still hold the dead's connections on those four-tuples).
        seed: u64::from(n) << 32 | u64::from(std::process::id()),
        ephemeral_offset: super::fresh_ports(),
        ..GroupConfig::new(usize::from(queues), vf_mac(n), vf_ip(n))
    };
    let pool = port.pool().clone();
    StackGroup::on_configured_port(Arc::new(port), pool, config, vf_rss(queues)?).map_err(|e| e.to_string())
}

/// Runs process `opts.place.proc_id`: the primary if it is the first, else a
/// client. `say` hears `ready <pid>` once the VFs exist.
pub fn run(opts: &Options, say: &mut dyn FnMut(String)) -> Result<Outcome, String> {
    super::run(opts, say, primary, client)
}

/// The NIC: every VF, started, its wire end on the switch.
struct VfNic {
    ports: Vec<SharedPort>,
    switch: Bridge,
    wires: BridgedWires,
}

impl VfNic {
    fn new(domain: &Domain, opts: &Options) -> Result<VfNic, String> {
        let err = |e: &dyn std::fmt::Display| e.to_string();
        let config = BridgeConfig { name: "nic-switch".into(), ..BridgeConfig::default() };
        let mut nic = VfNic {
            ports: Vec::new(),
            switch: Bridge::new(config).map_err(|e| err(&e))?,
            wires: BridgedWires::default(),
        };
        for n in 0..opts.place.procs {
            let spec = PortSpec {
                name: vf_name(n),
                mac: vf_mac(n),
                conf: vf_conf(vf_queues(opts, n)),
                ring_words: 1024,
                pool: MempoolConfig::new(format!("vf{n}_pool"), VF_BUFFERS),
                owner: PRIMARY_OWNER,
            };
            let (port, wire) = SharedVeth::create(domain, &spec).map_err(|e| err(&e))?;
            port.start().map_err(|e| err(&e))?;
            nic.wires.plug(&mut nic.switch, wire, vf_name(n))?;
            nic.ports.push(port);
        }
        Ok(nic)
    }
}

impl super::Nic for VfNic {
    fn poll(&mut self, now: ethdev::Instant) {
        self.switch.poll(now);
    }

    fn control(&mut self, control: &mut ControlServer) -> Vec<ControlEvent> {
        control.poll()
    }

    fn reclaim(&mut self, peer: &Peer, dead: &DeadOwner) -> (usize, usize) {
        let reclaimed = self.wires.reclaim(dead);
        tracing::warn!(pid = peer.pid, ?reclaimed, "a process died; its VF was reclaimed");
        (reclaimed.held + reclaimed.cached + reclaimed.unsent, reclaimed.left)
    }

    /// Frames still waiting for processes that left go back to their pools
    /// with the switch and the wire ends.
    fn close(self) -> Result<NicTotals, String> {
        self.switch.check_accounting()?;
        let (switched, drops) = (self.switch.switch_stats().switched, bridge_drops(&self.switch));
        let VfNic { ports, switch, wires } = self;
        drop((switch, wires));
        Ok(NicTotals { switched, drops, in_use: ports.iter().map(|p| p.pool().in_use()).sum(), ..NicTotals::default() })
    }
}

fn primary(opts: &Options, domain: &Domain, say: &mut dyn FnMut(String)) -> Result<Report, String> {
    opts.place.first()?;
    if opts.kernel {
        return Err(
            "a kernel sharing the port is tuple_filter's: gazelle_vf's process 0 has no lstack queues to share".into(),
        );
    }
    if opts.inbound {
        return Err("inbound connections are tuple_filter's and ltran's: gazelle_vf's server is process 0".into());
    }
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let nic = VfNic::new(domain, opts)?;
    let listening = domain.reserve(LISTENING, 8).map_err(|e| err(&e))?;
    let control = ControlServer::bind(domain).map_err(|e| err(&e))?;
    let own = SharedPort::attach(domain, &vf_name(0), PRIMARY_OWNER).map_err(|e| err(&e))?;
    let group = group(opts, 0, own, PRIMARY_OWNER)?;
    let expected = usize::from(opts.place.procs - 1) * opts.conns as usize;
    let server = Server::start(&group, listening, opts.bytes, expected);
    say(format!("ready {}", std::process::id()));
    supervise(opts, control, nic, server, std::slice::from_ref(&group), say)
}

/// A client process: its connections, then how many came back intact.
fn client(opts: &Options, domain: &Domain) -> Result<ClientReport, String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let control = Arc::new(register(opts, domain)?);
    let n = opts.place.proc_id;
    let port = SharedPort::attach(domain, &vf_name(n), control.owner()).map_err(|e| err(&e))?;
    let group = group(opts, n, port, control.owner())?;
    let listening = domain.lookup(LISTENING).map_err(|e| err(&e))?;
    let tasks = (Spawner::new(), Arc::new(Ledger::default()));
    run_client(opts, (control, group), &listening, SocketAddr::from((vf_ip(0), PORT)), tasks, opts.conns as usize)
}

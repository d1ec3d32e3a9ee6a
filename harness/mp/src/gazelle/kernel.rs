//! Process 0 sharing its port with the Linux kernel (`--kernel`).
//!
//! gazelle lets its primary process hand what lstack does not serve to the
//! kernel through a virtio-user TAP (`flow_bifurcation`, read by the
//! primary alone), so that the host's own services stay reachable through
//! the NIC the lstack processes share. Here process 0's stacks share the
//! port with a kernel in a namespace of its own whose TAP has the port's
//! MAC and address ([`KernelNode::share`]): the frames that reach process
//! 0's queues (those no flow rule claims) for a port none of its sockets
//! holds go to the kernel, and the kernel's replies leave through process
//! 0's queue. The kernel serves echo on [`KERNEL_PORT`] and the LAN peer
//! makes `conns` echo connections to it, every byte checked, beside the
//! processes' own traffic. Needs root, `ip` and TUN.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use ethdev::MacAddr;
use kernel_peer::KernelHostConfig;
use sim::apps::{echo, Ledger, Workload};
use sim::exec::{RealClock, Spawner};
use sim::kernel::{apps, KernelNode, KernelTasks, StopFlag};
use stack::{Api, StackGroup};

use super::Options;

/// The port the kernel's echo server listens on.
const KERNEL_PORT: u16 = 8000;

/// The kernel behind process 0's port, its server, and the LAN peer's
/// connections to it.
pub(super) struct KernelSide {
    /// The kernel host; its namespace goes when this drops.
    node: KernelNode,
    stop: StopFlag,
    ledger: Arc<Ledger>,
    expected: usize,
    bytes: u64,
}

impl KernelSide {
    /// Shares `own`'s port (MAC `mac`, address `ip`) with a new kernel,
    /// starts its echo server, and spawns the LAN `peer`'s connections to
    /// it on `spawner`'s application thread 0. Application thread
    /// `own_thread + i` keeps polling `own`'s stack `i` until the run ends
    /// (under run-to-completion nothing else would once process 0's own
    /// clients are done, and the kernel's frames pass through its queues).
    pub(super) fn start(
        opts: &Options,
        (own, own_thread): (&StackGroup, usize),
        (mac, ip): (MacAddr, Ipv4Addr),
        peer: &StackGroup,
        spawner: &Spawner,
    ) -> Result<KernelSide, String> {
        let config = KernelHostConfig {
            name: "kernel".into(),
            mac,
            ipv4: Some((ip, 24)),
            ipv6: None,
            gateway: None,
            mtu: own.config().mtu,
        };
        let node = KernelNode::share(own, &config)?;
        let addr = SocketAddr::from((ip, KERNEL_PORT));
        let listening = node.host.spawn("kernel listen".into(), move || apps::listen(addr));
        let listener = listening.map_err(|e| e.to_string())?.join().map_err(|_| "the kernel's listen panicked")?;
        let listener = listener.map_err(|e| format!("the kernel cannot listen on {addr}: {e}"))?;
        let stop = StopFlag::default();
        let tasks = KernelTasks::new(spawner.clone(), 0, stop.clone());
        let served = Arc::new(Ledger::default());
        let server = move |stop| apps::tcp_server(listener, Workload::Echo, served, stop);
        tasks.spawn(&node.host, "kernel echo server".into(), true, server)?;
        for stack in 0..own.len() {
            let api = Api::new(own, stack, Arc::new(RealClock::new()));
            spawner.spawn_daemon(own_thread + stack, format!("polls stack {stack} for the kernel"), async move {
                api.lend_thread().await;
                Ok(())
            });
        }
        let ledger = Arc::new(Ledger::default());
        for c in 0..opts.conns {
            let api = Api::new(peer, 0, Arc::new(RealClock::new()));
            let id = 2 << 48 | u64::from(c);
            spawner.spawn(
                0,
                format!("kernel client {c}"),
                echo::client(api, addr, id, opts.bytes, Arc::clone(&ledger)),
            );
        }
        Ok(KernelSide { node, stop, ledger, expected: opts.conns as usize, bytes: opts.bytes })
    }

    /// Stops the kernel's server; returns the peer's connections to it
    /// echoed intact and those it made, and the buffers of the kernel's
    /// TAP pool still in use.
    pub(super) fn finish(self) -> ((usize, usize), usize) {
        self.stop.stop();
        let intact = self.ledger.records().iter().filter(|r| r.bytes == self.bytes).count();
        ((intact, self.expected), self.node.host.buffers_in_use())
    }
}

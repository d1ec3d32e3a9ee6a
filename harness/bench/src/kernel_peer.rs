//! `kernel.peer.goodput`: one bulk stream from a dtnet stack to the Linux
//! kernel over the TAP port, in Gbit/s. The world is `tcp.goodput.1500`'s
//! with the server replaced by a kernel host (see [`sim::kernel`]): the
//! client is one run-to-completion stack with 256 KiB socket buffers, the
//! server a kernel thread in the host's namespace that verifies every byte;
//! the clock runs from the end of `connect` to the server's receipt, as in
//! `tcp.goodput.1500`, so the two figures compare the kernel with a dtnet
//! stack as the receiving peer. It needs root and TUN; without them it says
//! why on stderr and reports nothing.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ethdev::mac::MacAddr;
use kernel_peer::KernelHostConfig;
use stack::{BufSizes, GroupConfig, ThreadModel};
use user_vbridge::PortConfig;

use crate::tcp::{reported, stream_bytes, timed_bulk, STREAM_BUF};
use crate::{measurement, Budget, Measurement};
use sim::apps::Workload;
use sim::apps::{Ledger, Side};
use sim::exec::{self, RealClock, Spawner};
use sim::kernel::{apps, KernelNode, KernelTasks, StopFlag};
use sim::latch::Latch;
use sim::world::World;

/// The benchmark's name.
pub const NAME: &str = "kernel.peer.goodput";

const PORT: u16 = 5201;
const KERNEL_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x21]);
const CLIENT_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x22]);
const KERNEL_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 1);
const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 2);
/// Give up on a run after this long, and let the stacks finish closing for this long.
const TIMEOUT: Duration = Duration::from_secs(60);
const DRAIN: Duration = Duration::from_millis(20);

/// The registered benchmark: one figure, or none with a note on stderr.
pub(super) fn run(budget: Budget) -> Vec<Measurement> {
    if let Some(why) = kernel_peer::netns::unavailable() {
        eprintln!("dtnet: {NAME} skipped: {why}");
        return Vec::new();
    }
    reported(NAME, goodput(stream_bytes(budget)).map(|g| measurement(NAME, g, "Gbit/s")))
}

/// Goodput in Gbit/s of one `len`-byte bulk stream from a dtnet stack to a
/// kernel host (see the module doc).
pub fn goodput(len: u64) -> Result<f64, String> {
    let mut world = World::new(1)?;
    let client = GroupConfig {
        bufs: BufSizes { rx: STREAM_BUF, tx: STREAM_BUF },
        model: ThreadModel::RunToCompletion,
        ..GroupConfig::new(1, CLIENT_MAC, CLIENT_IP)
    };
    world.add_host_on("client", client, PortConfig::default())?;
    let config = KernelHostConfig {
        name: "kernel".into(),
        mac: KERNEL_MAC,
        ipv4: Some((KERNEL_IP, 24)),
        ipv6: None,
        gateway: None,
        mtu: 1500,
    };
    let kernel = KernelNode::attach(&mut world, &config, PortConfig::default())?;
    let (spawner, ledger, stop) = (Spawner::new(), Arc::new(Ledger::default()), StopFlag::default());
    let server = SocketAddr::new(IpAddr::V4(KERNEL_IP), PORT);
    let listening = Latch::new(1);
    let (ready, server_ledger) = (Arc::clone(&listening), Arc::clone(&ledger));
    let tasks = KernelTasks::new(spawner.clone(), 1, stop.clone());
    tasks.spawn(&kernel.host, "kernel bulk server".into(), true, move |stop| {
        let listener = apps::listen(server)?;
        ready.count_down();
        apps::tcp_server(listener, Workload::Bulk, server_ledger, stop)
    })?;
    let elapsed = Arc::new(Mutex::new(None));
    let (api, timer) = (stack::Api::new(&world.hosts[0].group, 0, Arc::new(RealClock::new())), Arc::clone(&elapsed));
    spawner.spawn(0, "timed bulk client", async move {
        listening.wait().await;
        let took = timed_bulk(api, server, len).await?;
        *timer.lock().unwrap_or_else(PoisonError::into_inner) = Some(took);
        Ok(())
    });
    let outcome = exec::threads::run(&mut world, &spawner, TIMEOUT, DRAIN);
    stop.stop();
    outcome.map_err(|e| e.to_string())?.ok()?;
    let verified: u64 = ledger.side(Side::Server).iter().map(|r| r.bytes).sum();
    if verified != len {
        return Err(format!("the kernel verified {verified} of {len} bytes"));
    }
    let took = elapsed.lock().unwrap_or_else(PoisonError::into_inner).ok_or("the client recorded no time")?;
    Ok(len as f64 * 8.0 / took.as_secs_f64() / 1e9)
}

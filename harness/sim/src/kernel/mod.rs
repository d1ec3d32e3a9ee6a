//! Kernel hosts in a run: the Linux kernel's TCP/IP stack as a peer on
//! the bridge (see the `kernel-peer` crate for the namespace and the TAP).
//!
//! A kernel host's applications ([`apps`]) are blocking `std::net` code on
//! threads inside its namespace. Executors know only tasks, so each such
//! thread is paired with a task that waits for its result
//! ([`KernelTasks::spawn`]): a kernel client counts towards the end of the
//! run like any client, a kernel server is a daemon like any server, and a
//! thread that fails, panics or never enters its namespace fails its task.
//! When the run is over the [`StopFlag`] ends the servers. The kernel runs
//! in real time, so only the `threads` executor can run a kernel host.

pub mod apps;

use std::future::{poll_fn, Future};
use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Poll, Waker};

pub use apps::StopFlag;
use kernel_peer::{KernelHost, KernelHostConfig};
use stack::StackGroup;
use user_vbridge::{PortConfig, PortId};

use crate::exec::Spawner;
use crate::world::World;

/// Why a plan with a kernel host cannot run under the simulation.
pub const SIM_REFUSAL: &str = "a kernel host runs in real time on the Linux kernel and cannot run under the \
                               simulation's virtual clock: set `executor = \"threads\"`";

/// A kernel host plugged into a world's bridge.
pub struct KernelNode {
    /// The host; it is torn down (namespace and TAP removed) when the last
    /// handle drops.
    pub host: Arc<KernelHost>,
    /// The bridge port its TAP is plugged into; `None` for a kernel that
    /// shares a stack host's NIC instead ([`KernelNode::share`]).
    pub bridge_port: Option<PortId>,
}

impl KernelNode {
    /// Makes kernel host `config` and plugs its TAP into `world`'s bridge
    /// on a port configured as `link`.
    pub fn attach(world: &mut World, config: &KernelHostConfig, link: PortConfig) -> Result<KernelNode, String> {
        let (host, wire) = KernelHost::create(config.clone()).map_err(|e| format!("host {}: {e}", config.name))?;
        let bridge_port = world.bridge.add_port(Box::new(wire), link).map_err(|e| e.to_string())?;
        Ok(KernelNode { host: Arc::new(host), bridge_port: Some(bridge_port) })
    }

    /// Makes kernel host `config` (the MAC and addresses of `group`'s
    /// host) and shares `group`'s NIC with it, as gazelle's
    /// `flow_bifurcation` does through virtio-user: its TAP gets what the
    /// group's stacks do not serve, and what it sends leaves through their
    /// NIC ([`StackGroup::share_with_kernel`]).
    pub fn share(group: &StackGroup, config: &KernelHostConfig) -> Result<KernelNode, String> {
        let (host, wire) = KernelHost::create(config.clone()).map_err(|e| format!("host {}: {e}", config.name))?;
        group.share_with_kernel(Box::new(wire)).map_err(|e| format!("host {}: {e}", config.name))?;
        Ok(KernelNode { host: Arc::new(host), bridge_port: None })
    }
}

/// The result of one kernel thread, and the task waiting for it.
#[derive(Default)]
struct Job {
    state: Mutex<(Option<io::Result<()>>, Option<Waker>)>,
}

impl Job {
    fn finish(&self, result: io::Result<()>) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.0.is_none() {
            state.0 = Some(result);
        }
        if let Some(waker) = state.1.take() {
            waker.wake();
        }
    }

    fn wait(self: Arc<Self>) -> impl Future<Output = io::Result<()>> + Send {
        poll_fn(move |cx| {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            match state.0.take() {
                Some(result) => Poll::Ready(result),
                None => {
                    state.1 = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
    }
}

/// Finishes its job with an error if dropped before the thread reported a
/// result (the thread never entered the namespace, or panicked).
struct Finisher(Arc<Job>);

impl Finisher {
    fn finish(self, result: io::Result<()>) {
        self.0.finish(result);
    }
}

impl Drop for Finisher {
    fn drop(&mut self) {
        let lost = io::Error::other("the kernel thread could not enter its namespace or panicked");
        self.0.finish(Err(lost));
    }
}

/// Starts kernel threads and the tasks that wait for them.
#[derive(Clone)]
pub struct KernelTasks {
    spawner: Spawner,
    stop: StopFlag,
    thread: usize,
}

impl KernelTasks {
    /// Waiting tasks go to `spawner` on application thread `thread`; the
    /// threads see `stop`.
    pub fn new(spawner: Spawner, thread: usize, stop: StopFlag) -> KernelTasks {
        KernelTasks { spawner, stop, thread }
    }

    /// The flag that ends the kernel servers.
    pub fn stop_flag(&self) -> &StopFlag {
        &self.stop
    }

    /// Runs `work` on a thread inside `host`'s namespace, and a task named
    /// `name` (a daemon if `daemon`) that ends with its result.
    pub fn spawn<F>(&self, host: &KernelHost, name: String, daemon: bool, work: F) -> Result<(), String>
    where
        F: FnOnce(StopFlag) -> io::Result<()> + Send + 'static,
    {
        let job = Arc::new(Job::default());
        let (finisher, stop) = (Finisher(Arc::clone(&job)), self.stop.clone());
        host.spawn(name.clone(), move || {
            finisher.finish(work(stop));
            Ok(())
        })
        .map_err(|e| format!("cannot start kernel thread {name}: {e}"))?;
        match daemon {
            true => self.spawner.spawn_daemon(self.thread, name, job.wait()),
            false => self.spawner.spawn(self.thread, name, job.wait()),
        }
        Ok(())
    }
}

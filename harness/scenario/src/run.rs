//! Running a built scenario: the executor the plan names, a recording when
//! one is asked for, and progress reports along the way.

use std::sync::Arc;
use std::time::Duration;

use capture::Record;
use ethdev::{EthDev, Instant};

use crate::build::{build, App, Slot, PING_BYTES, UDP_REQUEST_BYTES};
use crate::checks::RunView;
use crate::dpdk_ports::DpdkPorts;
use crate::meter::Meter;
use crate::plan::{Executor, Plan, Traffic};
use crate::{RunOptions, ScenarioError};
use sim::exec::{self, Outcome};
use sim::kernel::KernelNode;
use sim::record::Recording;
use sim::world::World;

/// Virtual time a `sim` run lets the world settle after its tasks finish
/// (closing handshakes), so that buffers return to their pools.
const SIM_DRAIN: Duration = Duration::from_secs(5);
/// Wall time a `threads` run keeps polling after its tasks finish.
const THREADS_DRAIN: Duration = Duration::from_millis(200);

/// Payload bytes the applications of a plan move when everything goes
/// well; frames add theirs once planned.
fn planned_bytes(plan: &Plan) -> u64 {
    plan.traffic
        .iter()
        .map(|t| match t {
            Traffic::Tcp(t) => t.conns * t.bytes,
            Traffic::Udp(u) => u.clients * u64::from(u.requests) * UDP_REQUEST_BYTES,
            Traffic::Ping(p) => u64::from(p.count) * PING_BYTES,
            Traffic::Frames(_) | Traffic::Replay(_) => 0,
        })
        .sum()
}

/// What a run left behind, for the checks and the report.
pub(crate) struct Executed {
    /// The world after the run.
    pub world: World,
    /// How the executor finished.
    pub outcome: Outcome,
    /// Per traffic entry, what its tasks left.
    pub apps: Vec<App>,
    /// Where each plan host went (see `Built::slots`).
    pub slots: Vec<Slot>,
    /// The kernel hosts; dropping the last handle tears them down.
    pub kernels: Vec<KernelNode>,
    /// Frames recorded, if asked.
    pub records: Vec<Record>,
    /// Wall time of the run.
    pub wall: Duration,
    /// The EAL and DPDK ports of DPDK hosts; last, so dropped after the world.
    pub dpdk: Option<DpdkPorts>,
}

impl Executed {
    /// What the checks look at.
    pub(crate) fn view(&self) -> RunView<'_> {
        RunView {
            world: &self.world,
            outcome: &self.outcome,
            apps: &self.apps,
            slots: &self.slots,
            kernels: &self.kernels,
            records: &self.records,
            dpdk: self.dpdk.as_ref(),
        }
    }
}

/// Builds `plan`'s world and spawns its tasks without running them: every
/// refusal `execute` could meet before the first poll.
pub(crate) fn trial_build(name: &str, plan: &Plan) -> Result<(), ScenarioError> {
    let built = build(plan, &Meter::new(0, None));
    built.map(drop).map_err(|message| ScenarioError::Run { name: name.to_owned(), message })
}

/// Builds and runs `plan`; records every host's port and queues if `record`.
pub(crate) fn execute(name: &str, plan: &Plan, options: &RunOptions, record: bool) -> Result<Executed, ScenarioError> {
    let started = std::time::Instant::now();
    let failed = |message: String| ScenarioError::Run { name: name.to_owned(), message };
    let meter = Meter::new(planned_bytes(plan), options.progress.clone());
    let mut built = build(plan, &meter).map_err(failed)?;
    tracing::info!(scenario = name, executor = ?plan.executor, hosts = plan.hosts.len(), "run starts");
    let recording = record.then(|| Recording::attach(&built.world, Arc::clone(&built.clock)));
    let wall = options.wall_limit.unwrap_or(Duration::MAX);
    let outcome = match plan.executor {
        Executor::Sim => {
            let deadline = (Instant::ZERO + plan.duration, SIM_DRAIN);
            exec::sim::run_within(&mut built.world, &built.sim_clock, &built.spawner, deadline, wall)
        }
        Executor::Threads => {
            let limit = plan.duration.min(wall);
            let run = exec::threads::run(&mut built.world, &built.spawner, limit, THREADS_DRAIN);
            let mut outcome = run.map_err(|refusal| failed(refusal.to_string()))?;
            if outcome.timed_out && wall < plan.duration {
                (outcome.timed_out, outcome.wall_limited) = (false, true);
            }
            outcome
        }
        Executor::Procs => return Err(failed("a procs plan runs through mp::procs, not in a world".into())),
    };
    built.kernel_stop.stop();
    let records = recording.map(Recording::finish).unwrap_or_default();
    log_drops(&built.world);
    tracing::info!(
        scenario = name,
        wall_ms = started.elapsed().as_millis() as u64,
        failures = outcome.failures.len(),
        unfinished = outcome.unfinished,
        "run ends"
    );
    let (world, apps, slots, kernels, dpdk) = (built.world, built.apps, built.slots, built.kernels, built.dpdk);
    Ok(Executed { world, outcome, apps, slots, kernels, records, wall: started.elapsed(), dpdk })
}

/// Logs every port's non-zero drop counters, by reason.
fn log_drops(world: &World) {
    for host in &world.hosts {
        let drops: Vec<String> = host
            .port
            .xstats()
            .unwrap_or_default()
            .into_iter()
            .filter(|x| x.name.contains("drop") && x.value > 0)
            .map(|x| format!("{}={}", x.name, x.value))
            .collect();
        if !drops.is_empty() {
            tracing::info!(host = %host.name, drops = %drops.join(" "), "port drops");
        }
    }
}

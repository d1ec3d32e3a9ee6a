//! Scenarios: a topology, its traffic and what must hold afterwards,
//! written as TOML and run by one engine.
//!
//! A scenario file (see `scenarios/README.md` for every key) names a seed,
//! an executor and a deadline, one bridge, hosts (stack groups in any
//! forwarding mode and thread model, from inline keys or a gazelle
//! `lstack.conf`, or bare ports with RSS queues), the impairments of each
//! host's link, traffic (bulk, echo and short TCP connections, UDP
//! request/response, ping, raw frames between bare ports, capture replay)
//! and expectations. Loading goes in three steps, each in its own module:
//! [`spec`] holds the serde types (`deny_unknown_fields` throughout,
//! values checked as they are read by [`units`]), [`load`] parses the TOML
//! and turns every problem into an error naming file, line and key path,
//! and `resolve` turns the spec into a [`Plan`] (names to indices, files
//! read, defaults filled, addresses no host can own refused by [`addr`],
//! the run's memory estimated against the machine's by [`limits`], whose
//! size limits the spec types enforce as they are read). The engine then builds the world and spawns the
//! tasks (`build`, with the raw-frame load in [`frames`] and the DPDK ports
//! of `backend = "dpdk"` hosts in `dpdk_ports`), runs them under
//! the executor the plan names (`run`), judges the expectations
//! ([`checks`]) and reports ([`report`]). Code can build a [`Plan`] directly
//! and run it the same way, as [`TcpRun`](crate::tcp_run::TcpRun) does.
//!
//! This crate is the scenario room of the `harness/` directory: it sits on
//! `sim` (worlds, executors, apps, recording) and below the `dtnet` CLI and
//! the benchmarks; [`tcp_run`] is a scenario written in code, built as a
//! [`Plan`] and run by the same engine.

pub mod addr;
pub(crate) mod build;
pub mod checks;
mod dpdk_ports;
pub mod frames;
pub mod limits;
pub mod load;
mod meter;
pub mod plan;
pub mod report;
mod resolve;
mod run;
pub mod spec;
pub mod tcp_run;
pub mod units;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use checks::Check;
pub use load::ScenarioError;
pub use plan::{DpdkPlan, Executor, Expect, HostNic, HostPlan, Plan, PortBackend, Traffic, Workload};
pub use report::ScenarioReport;
pub use resolve::group_from_stack_config;

pub(crate) use run::execute;
use run::trial_build;

/// Origin of the built-in default scenario in reports and errors.
const BUILTIN_ORIGIN: &str = "scenarios/default.toml";
/// The default scenario's text.
const BUILTIN_TEXT: &str = include_str!("../../../scenarios/default.toml");
/// `RunToCompletion` as the scenario files spell it: `run_to_completion`.
fn snake(camel: &str) -> String {
    let mut out = String::new();
    for (i, c) in camel.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// The forwarding-mode scenarios of [`Scenario::builtin_tour`].
const TOUR: [(&str, &str); 4] = [
    ("scenarios/rss-rtc.toml", include_str!("../../../scenarios/rss-rtc.toml")),
    ("scenarios/listen-shadow-rtc.toml", include_str!("../../../scenarios/listen-shadow-rtc.toml")),
    ("scenarios/soft-forward-rtc.toml", include_str!("../../../scenarios/soft-forward-rtc.toml")),
    ("scenarios/flow-director-rtw.toml", include_str!("../../../scenarios/flow-director-rtw.toml")),
];

/// A loaded scenario, ready to run.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Its name.
    pub name: String,
    /// Where it came from: the file's path, or the built-in's name.
    pub origin: String,
    /// What it shows.
    pub description: String,
    /// What to run.
    pub plan: Plan,
}

impl Scenario {
    /// Reads, parses and validates the scenario file at `path`; files it
    /// names are taken relative to its directory and must exist and parse.
    ///
    /// # Errors
    ///
    /// [`ScenarioError::Io`] if the file cannot be read, [`ScenarioError::Syntax`]
    /// (with line and column) if it is not UTF-8, otherwise as [`Scenario::parse`].
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let bytes = std::fs::read(path).map_err(|source| ScenarioError::Io { path: path.to_owned(), source })?;
        let origin = path.display().to_string();
        let text = load::decode(&bytes, &origin)?;
        let base = path.parent().unwrap_or(Path::new("."));
        Scenario::parse(text, &origin, base)
    }

    /// Parses and validates scenario `text`; `origin` names it in errors and
    /// `base_dir` is where relative file names point.
    ///
    /// # Errors
    ///
    /// [`ScenarioError::Syntax`] for malformed TOML or binary junk (control
    /// characters), with line and column, [`ScenarioError::Invalid`]
    /// for an unknown key, a bad value, a missing or unreadable file, or keys
    /// that contradict each other; each names the line and key path.
    pub fn parse(text: &str, origin: &str, base_dir: &Path) -> Result<Scenario, ScenarioError> {
        let src = load::Source { text, origin };
        let spec = src.deserialize()?;
        let (name, description) = (spec.name.clone(), spec.description.clone());
        let plan = resolve::Resolver { src, base_dir }.plan(spec)?;
        Ok(Scenario { name, origin: origin.to_owned(), description, plan })
    }

    /// The built-in default scenario (`scenarios/default.toml`), what
    /// `dtnet run` runs without a file.
    pub fn builtin_default() -> Scenario {
        // The file is part of the build and a test loads it from disk too,
        // so this parse cannot fail in a released binary.
        Scenario::parse(BUILTIN_TEXT, BUILTIN_ORIGIN, Path::new("scenarios"))
            .unwrap_or_else(|e| panic!("the built-in default scenario does not load: {e}"))
    }

    /// What `dtnet run` runs without a file: the default scenario (the
    /// virtual wire under load), then one short run of real stacks per
    /// forwarding mode (`scenarios/*-rtc.toml`, `flow-director-rtw.toml`),
    /// so a newcomer sees every mode at work and one summary table.
    pub fn builtin_tour() -> Vec<Scenario> {
        let parse = |(origin, text): &(&str, &str)| {
            Scenario::parse(text, origin, Path::new("scenarios"))
                .unwrap_or_else(|e| panic!("the built-in scenario {origin} does not load: {e}"))
        };
        std::iter::once(Scenario::builtin_default()).chain(TOUR.iter().map(parse)).collect()
    }

    /// The first stack host's forwarding mode and thread model, as the
    /// scenario files spell them; `bare ports` if no host has stacks.
    pub fn stack_mode(&self) -> String {
        self.plan
            .hosts
            .iter()
            .find_map(|h| match &h.nic {
                HostNic::Stacks(g) => {
                    Some(format!("{} / {}", snake(&format!("{:?}", g.mode)), snake(&format!("{:?}", g.model))))
                }
                _ => None,
            })
            .unwrap_or_else(|| "bare ports".into())
    }

    /// The same scenario with another seed.
    pub fn with_seed(mut self, seed: u64) -> Scenario {
        self.plan.seed = seed;
        self
    }

    /// What the scenario shows.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// Why the scenario cannot run on this machine, if it cannot: a kernel
    /// host (or a procs run's kernel sharing a port) needs root and TUN, a DPDK host a build with DPDK. Callers skip
    /// it with this reason.
    pub fn unavailable(&self) -> Option<String> {
        if let (Some(_), Some(why)) = (&self.plan.dpdk, dpdk_ports::UNAVAILABLE) {
            return Some(format!("it has a DPDK host, and {why}"));
        }
        let kernel_host = self.plan.hosts.iter().any(|h| h.kernel().is_some());
        let shared =
            self.plan.procs.as_ref().is_some_and(|p| matches!(p.sample, mp::procs::Sample::Gazelle(_, r) if r.kernel));
        let why = (kernel_host || shared).then(kernel_peer::netns::unavailable).flatten()?;
        Some(format!("it has a kernel host, and {why}"))
    }
}

/// How to run a scenario.
#[derive(Clone, Default)]
pub struct RunOptions {
    /// Record every host's port and queues into [`ScenarioReport::records`].
    pub record: bool,
    /// Called now and then with the work done so far.
    pub progress: Option<Arc<dyn Fn(Progress) + Send + Sync>>,
    /// Wall-clock limit of the run (`None`: only the scenario's `duration`
    /// bounds it). A run stopped by it fails, reporting what was unfinished.
    pub wall_limit: Option<Duration>,
    /// The `dtnet` binary an `executor = "procs"` run starts its processes
    /// from (`None`: this process's own executable, if it is `dtnet`).
    pub dtnet: Option<PathBuf>,
}

/// Work done so far: payload bytes verified (TCP, UDP, ping) and frame
/// bytes sent (raw frames), of all that the scenario plans.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Units done.
    pub done: u64,
    /// Units planned.
    pub total: u64,
}

/// Checks that `scenario` can be run: builds its world and spawns its tasks
/// without running them, so whatever `run` would refuse about its
/// configuration is refused here (what `dtnet check` does after loading).
/// Loading already refuses everything it can name a key for; this catches
/// the rest. A scenario this machine cannot run (see
/// [`Scenario::unavailable`]) passes with a warning saying why it was not
/// built, and so does one with DPDK hosts: its EAL arguments and devices
/// are checked when it runs.
///
/// # Errors
///
/// [`ScenarioError::Run`] if the world cannot be built.
pub fn check(scenario: &Scenario) -> Result<(), ScenarioError> {
    if scenario.plan.procs.is_some() {
        // No world to build: loading checked the processes and the faults.
        return Ok(());
    }
    if let Some(why) = scenario.unavailable() {
        // Loading checked every key; what is left is this machine.
        tracing::warn!("{}: not built: {why}", scenario.name);
        return Ok(());
    }
    if scenario.plan.dpdk.is_some() {
        // Opening DPDK ports starts the EAL, which a process can do once:
        // `check` would use up the start the run needs.
        tracing::warn!("{}: not built: its DPDK ports open when it runs (DPDK starts once per process)", scenario.name);
        return Ok(());
    }
    trial_build(&scenario.name, &scenario.plan)
}

/// Runs `scenario` and judges its expectations.
///
/// # Errors
///
/// [`ScenarioError::Run`] if the world cannot be built (a failed
/// expectation is not an error: see [`ScenarioReport::passed`]).
pub fn run(scenario: &Scenario, options: &RunOptions) -> Result<ScenarioReport, ScenarioError> {
    let plan = &scenario.plan;
    if let Some(procs) = &plan.procs {
        return run_procs(scenario, procs, options);
    }
    let record = options.record || plan.expect.golden_trace.is_some();
    let executed = execute(&scenario.name, plan, options, record)?;
    let checks = checks::evaluate(plan, &executed.view());
    Ok(ScenarioReport::new(&scenario.name, &scenario.origin, plan, executed, checks))
}

/// Runs an `executor = "procs"` scenario with real processes.
fn run_procs(
    scenario: &Scenario,
    procs: &mp::procs::ProcsPlan,
    options: &RunOptions,
) -> Result<ScenarioReport, ScenarioError> {
    let failed = |message: String| ScenarioError::Run { name: scenario.name.clone(), message };
    let dtnet = options.dtnet.clone().or_else(|| {
        let exe = std::env::current_exe().ok()?;
        exe.file_name().is_some_and(|n| n == "dtnet").then_some(exe)
    });
    let dtnet =
        dtnet.ok_or_else(|| failed("the procs executor starts the dtnet binary: run it with dtnet run".into()))?;
    let mut procs = procs.clone();
    if let Some(limit) = options.wall_limit {
        procs.deadline = procs.deadline.min(limit);
    }
    let outcome = mp::procs::run(&procs, &dtnet).map_err(failed)?;
    Ok(ScenarioReport::of_procs(&scenario.name, &scenario.origin, &scenario.plan, outcome))
}

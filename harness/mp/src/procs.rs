//! The `procs` executor: a multi-process run with real processes, and
//! crash faults.
//!
//! A [`ProcsPlan`] names one of DPDK's samples, how many processes take
//! part, the traffic, and the processes to kill. The executor owns the
//! processes: it starts the `dtnet` binary in each role (the primary first,
//! the others once it says `ready`), waits until each has joined, signals
//! each victim at its moment (a fixed delay after everyone joined, or one
//! drawn from the plan's seed), waits for the primary to report the death,
//! and starts an heir in the victim's place when asked. Then it waits for
//! every process within the deadline and judges ([`Verdict`]): the
//! primary's own verdict (every frame arrived intact or is a gap the
//! reclaimed buffers account for, the pool at its baseline, nothing still
//! marked as the dead's), every survivor's, the deaths the primary saw,
//! each untouched process's share against the primary's prediction, and
//! that the domain left no file behind. At the deadline every process
//! still running is killed and the run fails, naming who was late.
//!
//! Each process talks through its standard output, one line at a time, as
//! `dtnet mp` prints it; a thread per process forwards the lines, so the
//! executor never blocks on a process that stopped talking.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use rustix::process::{kill_process, Pid, Signal};

use stack::ThreadModel;

use crate::client_server::Distribution;

/// Earliest and latest moment `at = "random"` draws, after every process joined.
pub const RANDOM_KILL: (Duration, Duration) = (Duration::from_millis(1), Duration::from_millis(50));

/// Which sample runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sample {
    /// simple_mp: a primary and one secondary exchanging messages.
    Simple,
    /// symmetric_mp: `processes` processes forwarding their RSS queues.
    Symmetric,
    /// client_server_mp: a server and `processes - 1` clients.
    ClientServer(Distribution),
    /// One of gazelle's modes across processes (see [`crate::gazelle`]).
    Gazelle(GazelleMode, GazelleRun),
}

/// gazelle's modes a procs run can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GazelleMode {
    /// One VF per process: an echo server and `processes - 1` clients.
    Vf,
    /// One shared port, per-connection rules from the primary: a LAN echo
    /// server and `processes` client processes, the primary's included.
    TupleFilter,
    /// ltran: the primary forwards for `processes - 1` lstack instances,
    /// which echo to a LAN server beside it.
    Ltran,
}

impl GazelleMode {
    /// The sample's name (`gazelle_vf`, `tuple_filter`, `ltran`).
    pub fn name(self) -> &'static str {
        match self {
            GazelleMode::Vf => "gazelle_vf",
            GazelleMode::TupleFilter => "tuple_filter",
            GazelleMode::Ltran => "ltran",
        }
    }

    /// Its `dtnet mp` subcommand.
    fn command(self) -> &'static str {
        match self {
            GazelleMode::Vf => "gazelle-vf",
            GazelleMode::TupleFilter => "tuple-filter",
            GazelleMode::Ltran => "ltran",
        }
    }
}

/// The stacks' side of a gazelle run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GazelleRun {
    /// Who polls the stacks.
    pub model: ThreadModel,
    /// Connections per client process.
    pub conns: u32,
    /// Bytes echoed per connection.
    pub bytes: u64,
    /// Stacks per lstack process (gazelle's `num_cpus`).
    pub stacks: u16,
    /// tuple_filter: process 0 shares the port with the Linux kernel.
    pub kernel: bool,
}

impl Sample {
    /// The sample's name, as DPDK calls it.
    pub fn name(self) -> &'static str {
        match self {
            Sample::Simple => "simple_mp",
            Sample::Symmetric => "symmetric_mp",
            Sample::ClientServer(_) => "client_server_mp",
            Sample::Gazelle(mode, _) => mode.name(),
        }
    }

    /// The names of a run's processes, primary first: `primary`,
    /// `secondary` (simple_mp); `proc-0`.. (symmetric_mp); `server`,
    /// `client-0`.. (client_server_mp); `proc-0`.. (gazelle's modes, as
    /// their `--proc-id`s).
    pub fn process_names(self, processes: u16) -> Vec<String> {
        match self {
            Sample::Simple => vec!["primary".into(), "secondary".into()],
            Sample::Symmetric | Sample::Gazelle(..) => (0..processes).map(|n| format!("proc-{n}")).collect(),
            Sample::ClientServer(_) => {
                std::iter::once("server".into()).chain((0..processes - 1).map(|n| format!("client-{n}"))).collect()
            }
        }
    }

    /// The line the primary's report starts with.
    fn report_prefix(self) -> &'static str {
        match self {
            Sample::Simple => "simple_mp primary:",
            Sample::Symmetric => "symmetric_mp primary:",
            Sample::ClientServer(_) => "client_server_mp server:",
            Sample::Gazelle(GazelleMode::Vf, _) => "gazelle-vf primary:",
            Sample::Gazelle(GazelleMode::TupleFilter, _) => "tuple-filter primary:",
            Sample::Gazelle(GazelleMode::Ltran, _) => "ltran primary:",
        }
    }

    /// The line the primary prints when a process has joined.
    fn joined_prefix(self) -> &'static str {
        match self {
            Sample::Simple => "registered",
            _ => "joined",
        }
    }
}

/// When a victim is signalled, after every process joined.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KillAt {
    /// This long after.
    After(Duration),
    /// A moment drawn from the seed in [`RANDOM_KILL`].
    Random,
}

/// Who a crash fault strikes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The process at this index of [`Sample::process_names`] (never 0, the primary).
    Process(usize),
    /// A non-primary process drawn from the seed.
    Random,
}

/// One crash fault: `[[fault.kill]]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kill {
    /// The victim.
    pub target: Target,
    /// When.
    pub at: KillAt,
    /// Which signal (`KILL` by default).
    pub signal: Signal,
    /// Whether an heir takes the victim's place.
    pub restart: bool,
}

/// A run of real processes.
#[derive(Clone, Debug)]
pub struct ProcsPlan {
    /// The sample.
    pub sample: Sample,
    /// Processes, the primary included.
    pub processes: u16,
    /// Frames into each port (messages each way, for simple_mp).
    pub frames: u32,
    /// Crash faults, in any order.
    pub kills: Vec<Kill>,
    /// Seed of `at = "random"`.
    pub seed: u64,
    /// Wall-clock deadline of the whole run.
    pub deadline: Duration,
}

/// One judgement of a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// What was expected.
    pub name: String,
    /// Whether it held.
    pub passed: bool,
    /// The figures behind it, or why it failed.
    pub detail: String,
}

fn verdict(name: impl Into<String>, passed: bool, detail: impl Into<String>) -> Verdict {
    Verdict { name: name.into(), passed, detail: detail.into() }
}

/// What a run did.
#[derive(Clone, Debug, Default)]
pub struct ProcsOutcome {
    /// The judgements, primary's first.
    pub verdicts: Vec<Verdict>,
    /// The primary's report line.
    pub report: String,
    /// Processes started, heirs included.
    pub started: usize,
    /// Wall time of the run.
    pub wall: Duration,
}

/// A process the executor started.
struct Proc {
    name: String,
    child: Child,
    lines: Receiver<String>,
    said: Vec<String>,
    killed: bool,
}

impl Proc {
    fn start(dtnet: &Path, name: &str, args: Vec<String>) -> Result<Proc, String> {
        let mut child = Command::new(dtnet)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start {} for {name}: {e}", dtnet.display()))?;
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().ok_or("no stdout")?;
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Proc { name: name.to_owned(), child, lines, said: Vec::new(), killed: false })
    }

    /// Waits until a line starting with `prefix` comes, keeping every line.
    fn expect(&mut self, prefix: &str, until: Instant) -> Result<String, String> {
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.said.push(line.clone());
                    if line.starts_with(prefix) {
                        return Ok(line);
                    }
                }
                Err(RecvTimeoutError::Timeout) => return Err(format!("{} did not say {prefix:?} in time", self.name)),
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(format!("{} ended without saying {prefix:?} (said {:?})", self.name, self.said))
                }
            }
        }
    }

    /// Waits for the process to end by `until` (killing it then); its
    /// exit status and everything it said.
    fn finish(mut self, until: Instant) -> (bool, Vec<String>) {
        let ended = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() < until => std::thread::sleep(Duration::from_millis(5)),
                _ => break None,
            }
        };
        let Some(status) = ended else {
            let _ = self.child.kill();
            let _ = self.child.wait();
            return (false, vec![format!("{} was still running at the deadline: killed", self.name)]);
        };
        let mut said = std::mem::take(&mut self.said);
        said.extend(self.lines.iter());
        (status.success(), said)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The `dtnet` arguments of process `index` of `plan` in domain `prefix`
/// under `base`.
fn args(plan: &ProcsPlan, index: usize, prefix: &str, base: &Path) -> Vec<String> {
    let base = base.display().to_string();
    let common = ["--prefix".to_owned(), prefix.to_owned(), "--runtime-dir".to_owned(), base];
    let frames = plan.frames.to_string();
    let mut out: Vec<String> = match plan.sample {
        Sample::Simple => {
            let role = if index == 0 { "primary" } else { "secondary" };
            ["mp", "simple", "--proc-type", role, "--messages", &frames].map(str::to_owned).to_vec()
        }
        Sample::Symmetric => {
            let (n, id) = (plan.processes.to_string(), index.to_string());
            ["mp", "symmetric", "--num-procs", &n, "--proc-id", &id, "--frames", &frames].map(str::to_owned).to_vec()
        }
        Sample::ClientServer(distribution) => {
            let clients = (plan.processes - 1).to_string();
            let mut a = ["mp", "client-server", "--clients", &clients, "--frames", &frames].map(str::to_owned).to_vec();
            match index {
                0 => a.extend(["--distribution".to_owned(), distribution.name().to_owned()]),
                n => a.extend(["--client-id".to_owned(), (n - 1).to_string()]),
            }
            a
        }
        Sample::Gazelle(mode, GazelleRun { model, conns, bytes, stacks, kernel }) => {
            let (n, id) = (plan.processes.to_string(), index.to_string());
            let model = if model == ThreadModel::RunToCompletion { "rtc" } else { "rtw" };
            let a = ["mp", mode.command(), "--num-procs", &n, "--proc-id", &id, "--model", model];
            let mut a = a.map(str::to_owned).to_vec();
            a.extend(["--conns".to_owned(), conns.to_string(), "--bytes".to_owned(), bytes.to_string()]);
            a.extend(["--stacks".to_owned(), stacks.to_string()]);
            if kernel {
                a.push("--kernel".to_owned());
            }
            a
        }
    };
    out.extend(common);
    out
}

/// The moment and the victim's index of each kill, in order of the plan.
fn kill_moments(plan: &ProcsPlan) -> Vec<(Duration, usize)> {
    let mut state = plan.seed ^ 0x9e37_79b9_7f4a_7c15;
    plan.kills
        .iter()
        .map(|kill| {
            // splitmix64: one draw per kill, whatever its kind, so adding a
            // fixed kill does not move the random ones after it.
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            let at = match kill.at {
                KillAt::After(at) => at,
                KillAt::Random => {
                    let (lo, hi) = (RANDOM_KILL.0.as_micros() as u64, RANDOM_KILL.1.as_micros() as u64);
                    Duration::from_micros(lo + z % (hi - lo))
                }
            };
            let victim = match kill.target {
                Target::Process(index) => index,
                Target::Random => 1 + (z >> 32) as usize % usize::from(plan.processes - 1),
            };
            (at, victim)
        })
        .collect()
}

/// A fresh private runtime directory for one run.
fn runtime_dir() -> Result<PathBuf, String> {
    static RUNS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("dtnet-procs-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    Ok(dir)
}

/// Runs `plan` with the `dtnet` binary at `dtnet`; `Err` only if the run
/// could not start (a failed run is an outcome with failed verdicts).
pub fn run(plan: &ProcsPlan, dtnet: &Path) -> Result<ProcsOutcome, String> {
    let base = runtime_dir()?;
    let outcome = run_in(plan, dtnet, &base);
    let _ = std::fs::remove_dir_all(&base);
    outcome
}

fn run_in(plan: &ProcsPlan, dtnet: &Path, base: &Path) -> Result<ProcsOutcome, String> {
    let started = Instant::now();
    let until = started + plan.deadline;
    let names = plan.sample.process_names(plan.processes);
    let prefix = plan.sample.name();
    let mut primary = Proc::start(dtnet, &names[0], args(plan, 0, prefix, base))?;
    let mut out = ProcsOutcome { started: 1, ..ProcsOutcome::default() };
    let mut others = Vec::new();
    let mut trouble = primary.expect("ready", until).err();
    for (index, name) in names.iter().enumerate().skip(1).take_while(|_| trouble.is_none()) {
        others.push(Proc::start(dtnet, name, args(plan, index, prefix, base))?);
        out.started += 1;
    }
    for _ in 1..names.len() {
        if trouble.is_none() {
            trouble = primary.expect(plan.sample.joined_prefix(), until).err();
        }
    }
    let joined = Instant::now();
    let mut kills: Vec<((Duration, usize), &Kill)> = kill_moments(plan).into_iter().zip(&plan.kills).collect();
    kills.sort_by_key(|((at, _), _)| *at);
    for ((at, victim), kill) in kills {
        if trouble.is_some() {
            break;
        }
        std::thread::sleep((joined + at).saturating_duration_since(Instant::now()));
        match strike(&names[victim], &mut primary, &mut others, kill.signal, until) {
            Ok(detail) => out.verdicts.push(verdict(format!("kill {} after {at:?}", names[victim]), true, detail)),
            Err(why) => trouble = Some(why),
        }
        if kill.restart && trouble.is_none() {
            others.push(Proc::start(dtnet, &names[victim], args(plan, victim, prefix, base))?);
            out.started += 1;
        }
    }
    if let Some(why) = trouble {
        out.verdicts.push(verdict("processes started and faults struck", false, why));
    }
    judge(plan, primary, others, until, base, &mut out);
    out.wall = started.elapsed();
    Ok(out)
}

/// Signals the live process called `name` and waits until the primary
/// reports its death.
fn strike(
    name: &str,
    primary: &mut Proc,
    others: &mut [Proc],
    signal: Signal,
    until: Instant,
) -> Result<String, String> {
    let victim = others.iter_mut().rev().find(|p| p.name == name && !p.killed).ok_or(format!("no live {name}"))?;
    if let Ok(Some(status)) = victim.child.try_wait() {
        return Err(format!("{name} had already ended ({status}) when its kill was due: the fault did not happen"));
    }
    let pid = Pid::from_raw(victim.child.id() as i32).ok_or("a process without a pid")?;
    kill_process(pid, signal).map_err(|e| format!("cannot signal {name}: {e}"))?;
    victim.killed = true;
    let _ = victim.child.wait();
    let died = primary.expect(&format!("died {}", victim.child.id()), until)?;
    Ok(format!("signal {} to pid {}; the primary said {died:?}", signal.as_raw(), victim.child.id()))
}

/// Waits for every process and judges the run.
fn judge(plan: &ProcsPlan, primary: Proc, others: Vec<Proc>, until: Instant, base: &Path, out: &mut ProcsOutcome) {
    let prefix = plan.sample.report_prefix();
    let (primary_ok, said) = primary.finish(until);
    out.report = said.iter().rev().find(|l| l.starts_with(prefix)).cloned().unwrap_or_default();
    let detail = if out.report.is_empty() { format!("no report; said {said:?}") } else { out.report.clone() };
    out.verdicts.insert(0, verdict("primary: every frame intact or accounted, pool at baseline", primary_ok, detail));
    let kills = plan.kills.len();
    let deaths = said.iter().filter(|l| l.starts_with("died ")).count();
    out.verdicts.push(verdict("deaths seen by the primary", deaths == kills, format!("{deaths} of {kills} killed")));
    if kills > 0 {
        let owned = number_after(&out.report, "dead own ");
        let detail = owned.map_or("no figure in the report".into(), |n| format!("{n} buffers or queues"));
        out.verdicts.push(verdict("nothing belongs to the dead after reclamation", owned == Some(0), detail));
    }
    let victims: Vec<String> = others.iter().filter(|p| p.killed).map(|p| p.name.clone()).collect();
    for p in others.into_iter().filter(|p| !p.killed) {
        let name = p.name.clone();
        let (ok, said) = p.finish(until);
        let last = said.last().cloned().unwrap_or_default();
        out.verdicts.push(verdict(format!("{name} finished its traffic intact"), ok, last.clone()));
        if plan.sample == Sample::Symmetric && !victims.contains(&name) {
            out.verdicts.push(share(&name, &last, &out.report));
        }
    }
    let left = leftovers(base);
    out.verdicts.push(verdict("the runtime directory is empty", left.is_empty(), format!("left {left:?}")));
}

/// symmetric_mp: an untouched process received exactly what the primary predicted.
fn share(name: &str, said: &str, report: &str) -> Verdict {
    let id = name.trim_start_matches("proc-");
    let rx = said.strip_prefix(&format!("symmetric_mp proc {id}: ")).and_then(|s| s.split(" forwarded").next());
    let predicted = format!("predicted proc {id}: {};", rx.unwrap_or("?"));
    let held = rx.is_some() && report.contains(&predicted);
    verdict(format!("{name} received its RSS share"), held, format!("said {said:?}; expected {predicted:?}"))
}

/// The number following `key` in `text`.
fn number_after(text: &str, key: &str) -> Option<u64> {
    let at = text.find(key)? + key.len();
    text[at..].split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

/// Every file left under `base`.
fn leftovers(base: &Path) -> Vec<PathBuf> {
    let mut left = Vec::new();
    let mut dirs = vec![base.to_owned()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path.clone());
            }
            left.push(path);
        }
    }
    left
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(kills: Vec<Kill>, seed: u64) -> ProcsPlan {
        ProcsPlan { sample: Sample::Symmetric, processes: 3, frames: 10, kills, seed, deadline: Duration::from_secs(1) }
    }

    fn random(target: usize) -> Kill {
        Kill { target: Target::Process(target), at: KillAt::Random, signal: Signal::KILL, restart: true }
    }

    #[test]
    fn random_moments_follow_the_seed_and_stay_in_their_window() {
        let kills = vec![random(1), random(2)];
        let a = kill_moments(&plan(kills.clone(), 7));
        assert_eq!(a, kill_moments(&plan(kills.clone(), 7)));
        assert_ne!(a, kill_moments(&plan(kills, 8)));
        let anyone = Kill { target: Target::Random, ..random(1) };
        let many: Vec<(Duration, usize)> =
            (0..1000).flat_map(|s| kill_moments(&plan(vec![anyone.clone()], s))).collect();
        assert!(many.iter().all(|(d, _)| (RANDOM_KILL.0..RANDOM_KILL.1).contains(d)));
        let victims: std::collections::BTreeSet<usize> = many.iter().map(|&(_, v)| v).collect();
        assert_eq!(victims.into_iter().collect::<Vec<_>>(), [1, 2], "never the primary, both others");
        let fixed = Kill { at: KillAt::After(Duration::from_millis(40)), ..random(2) };
        assert_eq!(kill_moments(&plan(vec![fixed], 3)), [(Duration::from_millis(40), 2)]);
    }

    #[test]
    fn each_sample_names_its_processes_as_dpdk_does() {
        assert_eq!(Sample::Simple.process_names(2), ["primary", "secondary"]);
        assert_eq!(Sample::Symmetric.process_names(3), ["proc-0", "proc-1", "proc-2"]);
        let cs = Sample::ClientServer(Distribution::FlowHash).process_names(3);
        assert_eq!(cs, ["server", "client-0", "client-1"]);
        let run = GazelleRun { model: ThreadModel::RunToWakeup, conns: 1, bytes: 1, stacks: 1, kernel: false };
        for mode in [GazelleMode::Vf, GazelleMode::TupleFilter, GazelleMode::Ltran] {
            let names = Sample::Gazelle(mode, run).process_names(3);
            assert_eq!(names, ["proc-0", "proc-1", "proc-2"], "as their --proc-id");
        }
    }

    #[test]
    fn a_missing_binary_is_a_clear_error() {
        let error = run(&plan(Vec::new(), 1), Path::new("/nonexistent/dtnet")).unwrap_err();
        assert!(error.starts_with("cannot start /nonexistent/dtnet for proc-0"), "{error}");
    }
}

//! What a scenario run reports: counters per port, queue and stack, the
//! bridge's, what each traffic entry did, every expectation's verdict, and
//! the run's cost (peak resident memory, wall time). Serialised as JSON for
//! machines (`dtnet run --json`) and shown as a table for people.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::PoisonError;

use capture::Record;
use ethdev::EthDev;
use serde::Serialize;
use user_vbridge::{Direction, LinkStats, PortId};

use crate::build::{App, PING_BYTES, UDP_REQUEST_BYTES};
use crate::checks::{port_drops, Check};
use crate::plan::{Executor, Plan, Traffic};
use crate::run::Executed;
use sim::apps::Side;
use sim::world::World;

/// The result of [`run`](crate::run).
#[derive(Debug, Serialize)]
pub struct ScenarioReport {
    /// The scenario's name.
    pub name: String,
    /// Where it came from (a file, or `<builtin>`).
    pub origin: String,
    /// The seed it ran with.
    pub seed: u64,
    /// The executor that ran it.
    pub executor: Executor,
    /// Time at the end of the run in seconds: virtual under `sim`, since the start under `threads`.
    pub end_s: f64,
    /// Wall time of the run in seconds.
    pub wall_s: f64,
    /// Peak resident memory of the process (`VmHWM`) in KiB, where `/proc` tells it.
    pub peak_memory_kib: Option<u64>,
    /// Every port on the bridge.
    pub ports: Vec<PortRow>,
    /// Every stack of every host.
    pub stacks: Vec<StackRow>,
    /// The bridge's switching counters.
    pub bridge: BridgeRow,
    /// What each traffic entry did.
    pub traffic: Vec<TrafficRow>,
    /// Every expectation and its verdict.
    pub expectations: Vec<Check>,
    /// The frames recorded on every host's port and queues, when recording was asked for.
    #[serde(skip)]
    pub records: Vec<Record>,
}

/// One port's counters.
#[derive(Debug, Serialize)]
pub struct PortRow {
    /// The port's (host's) name.
    pub name: String,
    /// Frames received into its queues.
    pub rx: u64,
    /// Frames it sent to the wire.
    pub tx: u64,
    /// Frames received per queue.
    pub rx_per_queue: Vec<u64>,
    /// Frames sent per queue.
    pub tx_per_queue: Vec<u64>,
    /// The port's own drops, by xstat name (`rx_drop_<reason>`, `tx_drop_<reason>`).
    pub drops: BTreeMap<String, u64>,
    /// Drops on its bridge link towards the bridge, by reason.
    pub link_in_drops: BTreeMap<String, u64>,
    /// Drops on its bridge link from the bridge, by reason.
    pub link_out_drops: BTreeMap<String, u64>,
    /// Frames its links corrupted.
    pub corrupted: u64,
    /// Extra copies its links made.
    pub duplicated: u64,
}

/// One stack's counters.
#[derive(Debug, Serialize)]
pub struct StackRow {
    /// The host.
    pub host: String,
    /// The stack's index.
    pub stack: usize,
    /// Frames taken from its queue.
    pub nic_rx: u64,
    /// Frames put on its queue.
    pub nic_tx: u64,
    /// Frames other stacks handed it.
    pub forwarded_in: u64,
    /// Frames it handed to other stacks.
    pub forwarded_out: u64,
    /// Connections accepted.
    pub accepted: u64,
    /// Connections started.
    pub connected: u64,
    /// Frames lost between stacks (full soft ring, no buffer).
    pub soft_drops: u64,
    /// Duplicate SYNs dropped.
    pub dup_syn_drops: u64,
    /// SYNs dropped for a full accept queue.
    pub backlog_drops: u64,
}

/// The bridge's counters.
#[derive(Debug, Default, Serialize)]
pub struct BridgeRow {
    /// Frames switched.
    pub switched: u64,
    /// Frames forwarded to a learned port.
    pub forwarded: u64,
    /// Frames flooded.
    pub flooded: u64,
    /// The switch's drops by reason.
    pub drops: BTreeMap<String, u64>,
}

/// What one traffic entry did.
#[derive(Debug, Serialize)]
pub struct TrafficRow {
    /// Its description.
    pub name: String,
    /// Units completed.
    pub done: u64,
    /// Units planned.
    pub planned: u64,
    /// What a unit is.
    pub unit: &'static str,
    /// Payload bytes verified (frames: bytes delivered).
    pub bytes: u64,
}

impl ScenarioReport {
    /// Whether every expectation held.
    pub fn passed(&self) -> bool {
        self.expectations.iter().all(|c| c.passed)
    }

    /// The report as one JSON object (what `dtnet run --json` prints), with
    /// the verdict first: `{"passed": true, "name": ..., ...}`.
    pub fn to_json(&self) -> serde_json::Value {
        #[derive(Serialize)]
        struct WithVerdict<'a> {
            passed: bool,
            #[serde(flatten)]
            report: &'a ScenarioReport,
        }
        serde_json::to_value(WithVerdict { passed: self.passed(), report: self }).unwrap_or_default()
    }

    /// The report as JSON without the figures that differ between
    /// identical runs (wall time, peak memory): two runs of a `sim`
    /// scenario with one seed give equal values.
    pub fn comparable(&self) -> serde_json::Value {
        let mut value = self.to_json();
        if let Some(map) = value.as_object_mut() {
            map.remove("wall_s");
            map.remove("peak_memory_kib");
        }
        value
    }

    /// Builds the report of `ex`, whose expectations came out as `checks`.
    pub(crate) fn new(name: &str, origin: &str, plan: &Plan, ex: Executed, checks: Vec<Check>) -> ScenarioReport {
        ScenarioReport {
            name: name.to_owned(),
            origin: origin.to_owned(),
            seed: plan.seed,
            executor: plan.executor,
            end_s: ex.outcome.end.as_nanos() as f64 / 1e9,
            wall_s: ex.wall.as_secs_f64(),
            peak_memory_kib: peak_memory_kib(),
            ports: port_rows(&ex.world),
            stacks: stack_rows(&ex.world),
            bridge: bridge_row(&ex.world),
            traffic: plan.traffic.iter().zip(&ex.apps).map(|(t, app)| traffic_row(plan, t, app, &ex.world)).collect(),
            expectations: checks,
            records: ex.records,
        }
    }
}

impl ScenarioReport {
    /// The report of an `executor = "procs"` run: no ports, stacks or
    /// bridge of its own (the processes report theirs in their lines), the
    /// primary's frames as the one traffic row, and the executor's verdicts.
    pub(crate) fn of_procs(name: &str, origin: &str, plan: &Plan, outcome: mp::procs::ProcsOutcome) -> ScenarioReport {
        let figure = |key: &str| {
            let at = outcome.report.find(key).map(|i| i + key.len());
            at.and_then(|i| outcome.report[i..].split(|c: char| !c.is_ascii_digit()).next()?.parse().ok())
        };
        let stacks = matches!(plan.procs.as_ref().map(|p| p.sample), Some(mp::procs::Sample::Gazelle(..)));
        let (what, done, planned, unit) = match stacks {
            true => ("client connections served in full", "served ", " of ", "connections"),
            false => ("frames through the processes", "received ", "sent ", "frames"),
        };
        let traffic = TrafficRow {
            name: what.into(),
            done: figure(done).unwrap_or(0),
            planned: figure(planned).unwrap_or(0),
            unit,
            bytes: 0,
        };
        ScenarioReport {
            name: name.to_owned(),
            origin: origin.to_owned(),
            seed: plan.seed,
            executor: plan.executor,
            end_s: outcome.wall.as_secs_f64(),
            wall_s: outcome.wall.as_secs_f64(),
            peak_memory_kib: peak_memory_kib(),
            ports: Vec::new(),
            stacks: Vec::new(),
            bridge: BridgeRow::default(),
            traffic: vec![traffic],
            expectations: outcome
                .verdicts
                .into_iter()
                .map(|v| Check { name: v.name, passed: v.passed, detail: v.detail })
                .collect(),
            records: Vec::new(),
        }
    }
}

/// `VmHWM` from `/proc/self/status`, in KiB.
fn peak_memory_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn by_name(counts: impl IntoIterator<Item = (ethdev::stats::DropReason, u64)>) -> BTreeMap<String, u64> {
    counts.into_iter().map(|(r, n)| (r.name().to_owned(), n)).collect()
}

fn port_rows(world: &World) -> Vec<PortRow> {
    let hosts = world.hosts.iter().map(|h| (&h.port as &dyn EthDev, h.bridge_port));
    let nics = world.nics.iter().map(|n| (&n.port as &dyn EthDev, n.bridge_port));
    // Replayers are attached after every host and bare port, so their
    // bridge ports come after those.
    let replay_ports = (0..world.replayers.len()).map(|i| {
        let offset = world.hosts.len() + world.nics.len() + i;
        (world.replayers[i].port() as &dyn EthDev, PortId(offset as u16))
    });
    hosts.chain(nics).chain(replay_ports).map(|(port, bridge_port)| port_row(world, port, bridge_port)).collect()
}

fn port_row(world: &World, port: &dyn EthDev, bridge_port: PortId) -> PortRow {
    let stats = port.stats().unwrap_or_default();
    let link = |d| world.bridge.link_stats(bridge_port, d);
    let link_drops = |l: Option<&LinkStats>| l.map(|l| by_name(l.drops.nonzero())).unwrap_or_default();
    let (ingress, egress) = (link(Direction::Ingress), link(Direction::Egress));
    PortRow {
        name: port.name().to_owned(),
        rx: stats.ipackets,
        tx: stats.opackets,
        rx_per_queue: stats.q_ipackets,
        tx_per_queue: stats.q_opackets,
        drops: port_drops(port).into_iter().collect(),
        link_in_drops: link_drops(ingress),
        link_out_drops: link_drops(egress),
        corrupted: ingress.map_or(0, |l| l.corrupted) + egress.map_or(0, |l| l.corrupted),
        duplicated: ingress.map_or(0, |l| l.duplicated) + egress.map_or(0, |l| l.duplicated),
    }
}

fn stack_rows(world: &World) -> Vec<StackRow> {
    let mut rows = Vec::new();
    for host in &world.hosts {
        for stack in 0..host.group.len() {
            let s = host.group.stats(stack);
            rows.push(StackRow {
                host: host.name.clone(),
                stack,
                nic_rx: s.nic_rx,
                nic_tx: s.nic_tx,
                forwarded_in: s.forwarded_in,
                forwarded_out: s.forwarded_out,
                accepted: s.accepted,
                connected: s.connected,
                soft_drops: s.soft_drops,
                dup_syn_drops: s.dup_syn_drops,
                backlog_drops: s.backlog_drops,
            });
        }
    }
    rows
}

fn bridge_row(world: &World) -> BridgeRow {
    let s = world.bridge.switch_stats();
    BridgeRow { switched: s.switched, forwarded: s.forwarded, flooded: s.flooded, drops: by_name(s.drops.nonzero()) }
}

fn traffic_row(plan: &Plan, traffic: &Traffic, app: &App, world: &World) -> TrafficRow {
    let name = traffic.label(&plan.hosts);
    let row = |done: u64, planned: u64, unit, bytes| TrafficRow { name: name.clone(), done, planned, unit, bytes };
    match (traffic, app) {
        (Traffic::Tcp(t), App::Tcp(ledger)) => {
            let clients = ledger.side(Side::Client);
            row(clients.len() as u64, t.conns, "connections", clients.iter().map(|r| r.bytes).sum())
        }
        (Traffic::Udp(u), App::Udp(done)) => {
            let done = done.load(Ordering::Relaxed);
            row(done, u.clients * u64::from(u.requests), "round trips", done * UDP_REQUEST_BYTES)
        }
        (Traffic::Ping(p), App::Ping(done)) => {
            let done = done.load(Ordering::Relaxed);
            row(done, u64::from(p.count), "echo replies", done * PING_BYTES)
        }
        (Traffic::Frames(_), App::Frames(tally)) => {
            let t = tally.lock().unwrap_or_else(PoisonError::into_inner);
            row(t.delivered, t.planned, "frames delivered", t.delivered_bytes)
        }
        (Traffic::Replay(_), App::Replay(index, _)) => {
            let s = world.replayers[*index].stats();
            row(s.injected, s.planned, "frames injected", 0)
        }
        _ => row(0, 0, "mismatched", 0),
    }
}

fn joined(values: &[u64]) -> String {
    values.iter().map(u64::to_string).collect::<Vec<_>>().join("/")
}

fn drops_text(groups: &[(&str, &BTreeMap<String, u64>)]) -> String {
    let parts: Vec<String> = groups
        .iter()
        .filter(|(_, m)| !m.is_empty())
        .map(|(label, m)| {
            let list: Vec<String> = m.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("{label}{}", list.join(" "))
        })
        .collect();
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join("; ")
    }
}

impl fmt::Display for ScenarioReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "scenario {} ({})", self.name, self.origin)?;
        let memory = self.peak_memory_kib.map_or("unknown".into(), |k| format!("{k} KiB"));
        let executor = match self.executor {
            Executor::Sim => "sim, virtual",
            Executor::Threads => "threads, real",
            Executor::Procs => "procs, real",
        };
        writeln!(
            f,
            "seed {}, {executor} time {:.6} s, wall {:.3} s, peak memory {memory}",
            self.seed, self.end_s, self.wall_s
        )?;
        // A procs run's ports live in its processes, which report them.
        if self.executor != Executor::Procs {
            self.fmt_ports(f)?;
            self.fmt_stacks(f)?;
            let b = &self.bridge;
            let drops = drops_text(&[("", &b.drops)]);
            writeln!(
                f,
                "bridge: switched {} forwarded {} flooded {} drops {drops}",
                b.switched, b.forwarded, b.flooded
            )?;
        }
        writeln!(f)?;
        for t in &self.traffic {
            writeln!(f, "{:<52} {}/{} {}, {} bytes", t.name, t.done, t.planned, t.unit, t.bytes)?;
        }
        writeln!(f)?;
        for c in &self.expectations {
            let detail = if c.detail.is_empty() { String::new() } else { format!(" ({})", c.detail) };
            writeln!(f, "[{}] {}{detail}", if c.passed { "PASS" } else { "FAIL" }, c.name)?;
        }
        writeln!(f, "{}", if self.passed() { "result: PASS" } else { "result: FAIL" })
    }
}

impl ScenarioReport {
    fn fmt_ports(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f)?;
        writeln!(
            f,
            "{:<10} {:>9} {:>9}  {:<24} {:<24} drops, alterations",
            "port", "rx", "tx", "rx per queue", "tx per queue"
        )?;
        for p in &self.ports {
            let altered: BTreeMap<String, u64> = [("corrupted", p.corrupted), ("duplicated", p.duplicated)]
                .into_iter()
                .filter(|(_, n)| *n > 0)
                .map(|(k, n)| (k.to_owned(), n))
                .collect();
            let drops = drops_text(&[
                ("", &p.drops),
                ("link in: ", &p.link_in_drops),
                ("link out: ", &p.link_out_drops),
                ("links: ", &altered),
            ]);
            let (rxq, txq) = (joined(&p.rx_per_queue), joined(&p.tx_per_queue));
            writeln!(f, "{:<10} {:>9} {:>9}  {rxq:<24} {txq:<24} {drops}", p.name, p.rx, p.tx)?;
        }
        Ok(())
    }

    fn fmt_stacks(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.stacks.is_empty() {
            return Ok(());
        }
        writeln!(f)?;
        writeln!(
            f,
            "{:<12} {:>9} {:>9} {:>8} {:>8} {:>8} {:>9}  drops (soft/dup_syn/backlog)",
            "stack", "nic_rx", "nic_tx", "fwd_in", "fwd_out", "accepted", "connected"
        )?;
        for s in &self.stacks {
            writeln!(
                f,
                "{:<12} {:>9} {:>9} {:>8} {:>8} {:>8} {:>9}  {}/{}/{}",
                format!("{}/{}", s.host, s.stack),
                s.nic_rx,
                s.nic_tx,
                s.forwarded_in,
                s.forwarded_out,
                s.accepted,
                s.connected,
                s.soft_drops,
                s.dup_syn_drops,
                s.backlog_drops
            )?;
        }
        Ok(())
    }
}

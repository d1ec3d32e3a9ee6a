//! The expectations of a scenario, judged on what a run left behind.
//!
//! Each expectation becomes one or more [`Check`]s with the figures behind
//! the verdict: delivery per traffic entry (every connection complete with
//! every byte verified, every request answered, every frame delivered
//! intact or counted as dropped on its way), placement (every connection
//! on the stack the host's mode predicts and per-stack counters agreeing
//! with the applications, every frame on the queue its RSS hash selects),
//! balance, drop limits, the loss rate, leaks and accounting, and a golden
//! trace.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::PoisonError;

use capture::Record;

use ethdev::stats::DropReason;
use ethdev::EthDev;
use kernel_peer::TapCounters;
use serde::Serialize;
use stack::{ForwardMode, StackGroup};
use user_vbridge::Direction;

use crate::build::{App, Slot};
use crate::dpdk_ports::DpdkPorts;
use crate::plan::{HostPlan, Plan, TcpTraffic, Traffic};
use sim::apps::{ConnRecord, Side};
use sim::exec::Outcome;
use sim::kernel::KernelNode;
use sim::replay::{check_golden, Golden};
use sim::world::World;

/// One expectation and whether it held.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    /// What was expected, e.g. `delivered: bulk client->server:5201 16x262144B`.
    pub name: String,
    /// Whether it held.
    pub passed: bool,
    /// The figures behind the verdict; the reason when it failed.
    pub detail: String,
}

fn check(name: impl Into<String>, result: Result<String, String>) -> Check {
    let (passed, detail) = match result {
        Ok(detail) => (true, detail),
        Err(detail) => (false, detail),
    };
    Check { name: name.into(), passed, detail }
}

/// What the checks look at after a run.
pub(crate) struct RunView<'a> {
    /// The world after the run.
    pub world: &'a World,
    /// How the executor finished.
    pub outcome: &'a Outcome,
    /// Per traffic entry, what its tasks left.
    pub apps: &'a [App],
    /// Where each plan host went.
    pub slots: &'a [Slot],
    /// The kernel hosts.
    pub kernels: &'a [KernelNode],
    /// Frames recorded, if the run recorded.
    pub records: &'a [Record],
    /// The DPDK ports, if hosts had some.
    pub dpdk: Option<&'a DpdkPorts>,
}

/// What a run stopped by its wall-clock limit left unfinished.
fn unfinished(outcome: &Outcome) -> String {
    let shown: Vec<&str> = outcome.stuck.iter().take(8).map(String::as_str).collect();
    let more = outcome.stuck.len().saturating_sub(shown.len());
    let more = if more > 0 { format!(" and {more} more") } else { String::new() };
    let names = if shown.is_empty() { String::new() } else { format!(": {}{more}", shown.join(", ")) };
    format!("stopped at {} with {} unfinished task(s){names}", outcome.end, outcome.unfinished)
}

/// Every expectation of `plan` on the run `ex`.
pub(crate) fn evaluate(plan: &Plan, ex: &RunView<'_>) -> Vec<Check> {
    let expect = &plan.expect;
    let mut checks = Vec::new();
    if ex.outcome.wall_limited {
        checks.push(check("ended within the wall-clock limit (--timeout)", Err(unfinished(ex.outcome))));
    }
    if expect.delivered {
        checks.push(check(
            "delivered: every task finished",
            ex.outcome.ok().map(|()| format!("ended at {}", ex.outcome.end)),
        ));
        for (t, app) in plan.traffic.iter().zip(ex.apps) {
            checks.push(check(format!("delivered: {}", t.label(&plan.hosts)), delivered(t, app, ex)));
        }
    }
    if expect.placement {
        checks.extend(placement(plan, ex));
    }
    if let Some(tolerance) = expect.balance {
        checks.extend(balance(plan, ex, tolerance));
    }
    checks.extend(drop_limits(plan, ex.world));
    checks.extend(shared_nics(plan, ex));
    if expect.loss_as_configured {
        checks.push(check("losses as configured on every link", loss_as_configured(plan, ex)));
    }
    if expect.no_leaks {
        checks.push(check("no leaks: every buffer back in its pool", leaks(ex)));
        checks.push(check("no leaks: accounting closes", accounting(ex)));
        if let Some(dpdk) = ex.dpdk {
            checks.push(check("no leaks: DPDK mbufs back to their baseline", dpdk.leaks()));
        }
    }
    if let Some(path) = &expect.golden_trace {
        checks.push(check("golden trace", golden(path, ex.records)));
    }
    checks
}

/// The normalised trace of `records` against the golden file at `path`.
fn golden(path: &Path, records: &[Record]) -> Result<String, String> {
    match check_golden(path, &capture::trace_text(records), false) {
        Ok(Golden::Matches | Golden::Updated) => Ok(format!("{} frames as in {}", records.len(), path.display())),
        Ok(Golden::Differs(diff)) => Err(diff),
        Err(e) => Err(e.to_string()),
    }
}

/// Connection records of one side.
fn side(records: &[ConnRecord], side: Side) -> Vec<&ConnRecord> {
    records.iter().filter(|r| r.side == side).collect()
}

fn delivered(traffic: &Traffic, app: &App, ex: &RunView<'_>) -> Result<String, String> {
    match (traffic, app) {
        (Traffic::Tcp(t), App::Tcp(ledger)) => tcp_delivered(t, &ledger.records()),
        (Traffic::Udp(u), App::Udp(done)) => {
            let (done, want) = (done.load(Ordering::Relaxed), u.clients * u64::from(u.requests));
            count(done, want, "round trips")
        }
        (Traffic::Ping(p), App::Ping(done)) => count(done.load(Ordering::Relaxed), u64::from(p.count), "echo replies"),
        (Traffic::Frames(f), App::Frames(tally)) => {
            let tally = tally.lock().unwrap_or_else(PoisonError::into_inner);
            let ports: Vec<usize> = f.hosts.iter().filter_map(|&h| ex.slots[h].nic()).collect();
            let dropped = frame_drops(ex.world, &ports);
            let detail = format!(
                "planned {}, sent {}, delivered {}, dropped on the way {dropped}, damaged {}",
                tally.planned, tally.sent, tally.delivered, tally.damaged
            );
            let missing = tally.sent.saturating_sub(tally.delivered.saturating_sub(tally.damaged));
            let ok = tally.sent == tally.planned && tally.damaged == 0 && missing <= dropped;
            if ok {
                Ok(detail)
            } else {
                Err(detail)
            }
        }
        (Traffic::Replay(_), App::Replay(index, _)) => {
            let stats = ex.world.replayers[*index].stats();
            count(stats.injected, stats.planned, "frames injected")
        }
        _ => Err("internal: traffic and its tasks disagree".into()),
    }
}

fn count(done: u64, want: u64, what: &str) -> Result<String, String> {
    let detail = format!("{done}/{want} {what}");
    if done == want {
        Ok(detail)
    } else {
        Err(detail)
    }
}

fn tcp_delivered(t: &TcpTraffic, records: &[ConnRecord]) -> Result<String, String> {
    let (servers, clients) = (side(records, Side::Server), side(records, Side::Client));
    if servers.len() as u64 != t.conns || clients.len() as u64 != t.conns {
        return Err(format!(
            "{} server and {} client records for {} connections",
            servers.len(),
            clients.len(),
            t.conns
        ));
    }
    if let Some(r) = records.iter().find(|r| r.bytes != t.bytes) {
        return Err(format!("{r:?}: expected {} bytes", t.bytes));
    }
    if let Some(r) = records.iter().find(|r| r.local.is_ipv6() != t.ipv6 || r.peer.is_ipv6() != t.ipv6) {
        return Err(format!("{r:?}: not over the address family the traffic asked for"));
    }
    Ok(format!("{} connections, {} bytes verified", t.conns, t.conns * t.bytes))
}

/// Frames dropped on the bridge links of `nics` and refused by their
/// ports, other than the MAC filter's refusals of flooded copies: every
/// frame sent and not delivered must be among them.
fn frame_drops(world: &World, nics: &[usize]) -> u64 {
    let links: u64 = nics
        .iter()
        .flat_map(|&n| [Direction::Ingress, Direction::Egress].map(|d| (world.nics[n].bridge_port, d)))
        .filter_map(|(port, d)| world.bridge.link_stats(port, d))
        .map(|s| s.drops.total())
        .sum();
    let ports: u64 = nics
        .iter()
        .flat_map(|&n| port_drops(&world.nics[n].port))
        .filter(|(name, _)| name != &format!("rx_drop_{}", DropReason::MacFilter.name()))
        .map(|(_, n)| n)
        .sum();
    links + ports + world.bridge.switch_stats().drops.total()
}

/// A port's non-zero drop counters by xstat name (`rx_drop_<reason>`, `tx_drop_<reason>`).
/// A backend that keeps no xstats has none to show.
pub(crate) fn port_drops(port: &(impl EthDev + ?Sized)) -> Vec<(String, u64)> {
    port.xstats()
        .unwrap_or_default()
        .into_iter()
        .filter(|x| x.name.contains("_drop_") && x.value > 0)
        .map(|x| (x.name, x.value))
        .collect()
}

fn placement(plan: &Plan, ex: &RunView<'_>) -> Vec<Check> {
    let mut checks = Vec::new();
    for (t, app) in plan.traffic.iter().zip(ex.apps) {
        let name = format!("placement: {}", t.label(&plan.hosts));
        match (t, app) {
            (Traffic::Tcp(tcp), App::Tcp(ledger)) => {
                checks.push(check(name, tcp_placement(plan, ex, tcp, &ledger.records())))
            }
            (Traffic::Frames(_), App::Frames(tally)) => {
                let misplaced = tally.lock().unwrap_or_else(PoisonError::into_inner).misplaced;
                let verdict = format!("{misplaced} frames off reta[hash] or without a good L4 checksum");
                checks.push(check(name, if misplaced == 0 { Ok(verdict) } else { Err(verdict) }));
            }
            _ => {}
        }
    }
    for (h, host) in plan.hosts.iter().enumerate() {
        let served = server_records(plan, ex, h);
        if let (Some(slot), false) = (ex.slots[h].host(), served.is_empty()) {
            let name = format!("placement: {} stacks' accept counts match the applications", host.name);
            checks.push(check(name, accept_counts(&ex.world.hosts[slot].group, &served)));
        }
    }
    checks
}

/// Server-side records of every TCP entry (and replay echo server) on host `h`.
fn server_records(plan: &Plan, ex: &RunView<'_>, h: usize) -> Vec<ConnRecord> {
    let mut out = Vec::new();
    for (t, app) in plan.traffic.iter().zip(ex.apps) {
        let ledger = match (t, app) {
            (Traffic::Tcp(tcp), App::Tcp(ledger)) if tcp.server == h => ledger,
            (Traffic::Replay(r), App::Replay(_, ledger)) if r.host == h => ledger,
            _ => continue,
        };
        out.extend(ledger.side(Side::Server));
    }
    out
}

fn group<'w>(ex: &RunView<'w>, host: usize) -> Option<&'w StackGroup> {
    ex.slots[host].host().map(|i| &ex.world.hosts[i].group)
}

fn tcp_placement(plan: &Plan, ex: &RunView<'_>, t: &TcpTraffic, records: &[ConnRecord]) -> Result<String, String> {
    // A kernel end places connections by itself: only dtnet's ends are checked.
    let listen_stack = plan.hosts[t.server].listen_stack();
    if let Some(server) = group(ex, t.server) {
        for r in side(records, Side::Server) {
            let expected = listen_stack.unwrap_or_else(|| server.rss_stack(r.peer, r.local));
            if r.stack != expected {
                return Err(format!("server connection {r:?} served by stack {} instead of {expected}", r.stack));
            }
        }
    }
    if let Some(client) = group(ex, t.client).filter(|_| plan.hosts[t.client].listen_stack().is_none()) {
        if let Some(r) = side(records, Side::Client).into_iter().find(|r| client.rss_stack(r.peer, r.local) != r.stack)
        {
            return Err(format!(
                "client connection {r:?}: replies hash to stack {}",
                client.rss_stack(r.peer, r.local)
            ));
        }
    }
    Ok(match listen_stack {
        Some(s) => format!("every connection on the listening stack {s}"),
        None => "every connection on the stack RSS sends its replies to".into(),
    })
}

fn accept_counts(server: &StackGroup, served: &[ConnRecord]) -> Result<String, String> {
    let mut counts = Vec::new();
    for i in 0..server.len() {
        let accepted = server.stats(i).accepted;
        let recorded = served.iter().filter(|r| r.stack == i).count() as u64;
        if accepted != recorded {
            return Err(format!("stack {i} accepted {accepted} connections, applications saw {recorded}"));
        }
        counts.push(accepted.to_string());
    }
    Ok(format!("accepted per stack {}", counts.join("/")))
}

/// Each RSS-spreading server's accepted connections per stack, and each
/// bare port's frames per queue, within `tolerance` of the even share.
fn balance(plan: &Plan, ex: &RunView<'_>, tolerance: f64) -> Vec<Check> {
    let mut checks = Vec::new();
    for (h, host) in plan.hosts.iter().enumerate() {
        let shares = match ex.slots[h] {
            Slot::Host(i) if spreads(host) && !server_records(plan, ex, h).is_empty() => {
                let g = &ex.world.hosts[i].group;
                (0..g.len()).map(|s| g.stats(s).accepted).collect()
            }
            Slot::Nic(n) => ex.world.nics[n].port.stats().unwrap_or_default().q_ipackets,
            Slot::Host(_) | Slot::Kernel(_) => continue,
        };
        checks.push(check(
            format!("balance: {} within {tolerance} of the even share", host.name),
            even(&shares, tolerance),
        ));
    }
    if checks.is_empty() {
        checks.push(check("balance", Err("no host spreads connections or frames by RSS".into())));
    }
    checks
}

/// Whether a host's mode spreads connections over its stacks by RSS.
fn spreads(host: &HostPlan) -> bool {
    host.group().is_some_and(|g| matches!(g.mode, ForwardMode::Rss | ForwardMode::ListenShadow))
}

fn even(shares: &[u64], tolerance: f64) -> Result<String, String> {
    let mean = shares.iter().sum::<u64>() as f64 / shares.len().max(1) as f64;
    let text = shares.iter().map(u64::to_string).collect::<Vec<_>>().join("/");
    let ok = shares.iter().all(|&s| (s as f64 - mean).abs() <= tolerance * mean);
    if ok {
        Ok(format!("{text}, mean {mean:.1}"))
    } else {
        Err(format!("{text}: some share is more than {tolerance} x {mean:.1} from the mean"))
    }
}

/// Drops by reason across ports, bridge links and the switch.
pub(crate) fn drops_by_reason(world: &World) -> BTreeMap<DropReason, u64> {
    let mut total = BTreeMap::new();
    let ports = world.hosts.iter().map(|h| &h.port).chain(world.nics.iter().map(|n| &n.port));
    for (name, n) in ports.flat_map(port_drops) {
        if let Some(r) = DropReason::ALL.iter().find(|r| name.ends_with(&format!("_drop_{}", r.name()))) {
            *total.entry(*r).or_default() += n;
        }
    }
    let links = (0..world.bridge.port_count() as u16)
        .flat_map(|p| [Direction::Ingress, Direction::Egress].map(|d| (user_vbridge::PortId(p), d)))
        .filter_map(|(p, d)| world.bridge.link_stats(p, d));
    for (r, n) in links.flat_map(|l| l.drops.nonzero()).chain(world.bridge.switch_stats().drops.nonzero()) {
        *total.entry(r).or_default() += n;
    }
    total
}

fn drop_limits(plan: &Plan, world: &World) -> Vec<Check> {
    let drops = drops_by_reason(world);
    let mut checks = Vec::new();
    if let Some(max) = plan.expect.max_drops {
        let total: u64 = drops.values().sum();
        let listed = drops.iter().map(|(r, n)| format!("{}={n}", r.name())).collect::<Vec<_>>().join(" ");
        let detail = format!("{total} drops ({})", if listed.is_empty() { "none" } else { &listed });
        checks.push(check(format!("at most {max} drops"), if total <= max { Ok(detail) } else { Err(detail) }));
    }
    for (&reason, &max) in &plan.expect.max_drops_by_reason {
        let n = drops.get(&reason).copied().unwrap_or(0);
        let detail = format!("{n} {} drops", reason.name());
        checks.push(check(
            format!("at most {max} {} drops", reason.name()),
            if n <= max { Ok(detail) } else { Err(detail) },
        ));
    }
    checks
}

/// Losses on the hosts' links, summed, within five standard deviations of
/// the binomial mean their configured probabilities give (exact at 0 and
/// 1). A link's loss draw sees the frames that passed flap, MTU and rate
/// limit; links with burst loss are left out.
fn loss_as_configured(plan: &Plan, ex: &RunView<'_>) -> Result<String, String> {
    let (mut offered, mut lost, mut mean, mut variance) = (0u64, 0u64, 0.0, 0.0);
    for (h, host) in plan.hosts.iter().enumerate() {
        let port = match ex.slots[h] {
            Slot::Host(i) => ex.world.hosts[i].bridge_port,
            Slot::Nic(n) => ex.world.nics[n].bridge_port,
            // A kernel sharing a stack host's NIC has no link of its own.
            Slot::Kernel(k) => match ex.kernels[k].bridge_port {
                Some(port) => port,
                None => continue,
            },
        };
        for (d, imp) in [(Direction::Ingress, &host.link.ingress), (Direction::Egress, &host.link.egress)] {
            let checked = imp.loss > 0.0 && imp.burst_loss.is_none();
            let Some(s) = ex.world.bridge.link_stats(port, d).filter(|_| checked) else { continue };
            let refused = [DropReason::LinkDown, DropReason::Oversize, DropReason::RateLimit];
            let n = s.frames_in - refused.iter().map(|&r| s.drops.get(r)).sum::<u64>();
            offered += n;
            lost += s.drops.get(DropReason::Loss);
            mean += imp.loss * n as f64;
            variance += imp.loss * (1.0 - imp.loss) * n as f64;
        }
    }
    let detail = format!("{lost} of {offered} frames lost on links, {mean:.1} expected");
    if (lost as f64 - mean).abs() <= 5.0 * variance.sqrt() + 0.5 {
        Ok(detail)
    } else {
        Err(detail)
    }
}

/// Every NIC shared with a kernel (flow bifurcation) carried frames both
/// ways between the wire and the kernel: the kernel's traffic went
/// through the stack host's NIC, not around it.
fn shared_nics(plan: &Plan, ex: &RunView<'_>) -> Vec<Check> {
    let shared = plan.hosts.iter().filter_map(|k| k.shares.map(|h| (k, h)));
    let shared = shared.filter_map(|(k, h)| ex.slots[h].host().map(|i| (k, &plan.hosts[h], &ex.world.hosts[i].group)));
    shared
        .map(|(kernel, host, group)| {
            let stats: Vec<_> = (0..group.len()).map(|i| group.stats(i)).collect();
            let (to, from) = stats.iter().fold((0, 0), |(t, f), s| (t + s.to_kernel, f + s.from_kernel));
            let detail = format!("{to} frames to the kernel, {from} from it");
            let name = format!("shared NIC: {}'s carries {}'s traffic", host.name, kernel.name);
            check(name, if to > 0 && from > 0 { Ok(detail) } else { Err(detail) })
        })
        .collect()
}

/// Ports and bridge close their accounting, and every kernel host's TAP
/// passed every frame both ways (a refused write or a failed read is a
/// frame lost outside the bridge's counts).
fn accounting(ex: &RunView<'_>) -> Result<String, String> {
    ex.world.check_accounting()?;
    for kernel in ex.kernels {
        let c = kernel.host.counters();
        let (writes, reads) = (TapCounters::get(&c.write_errors), TapCounters::get(&c.read_errors));
        if writes + reads > 0 {
            let name = &kernel.host.config().name;
            return Err(format!("{name}: the TAP refused {writes} frames and failed {reads} reads"));
        }
    }
    match ex.kernels.len() {
        0 => Ok("ports and bridge".into()),
        n => Ok(format!("ports, bridge and {n} kernel TAP(s)")),
    }
}

fn leaks(ex: &RunView<'_>) -> Result<String, String> {
    let kernels: usize = ex.kernels.iter().map(|k| k.host.buffers_in_use()).sum();
    match ex.world.buffers_in_use() + kernels {
        0 => Ok("0 buffers in use".into()),
        n => Err(format!("{n} buffers still in use after the run")),
    }
}

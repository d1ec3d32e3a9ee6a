//! From the spec types to a [`Plan`]: host names become indices, files
//! named by the scenario (stack configs, captures, golden traces) are read
//! relative to it, keys that exclude each other are refused, and defaults
//! are filled in. Errors point at the offending key's line through the
//! spans the spec keeps.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kernel_peer::KernelHostConfig;
use mp::client_server::Distribution;
use mp::procs::{GazelleMode, GazelleRun, Kill, KillAt, ProcsPlan, Sample, Target};
use rustix::process::Signal;
use stack::config::StackConfig;
use stack::rpc::BufSizes;
use stack::{ForwardMode, GroupConfig, ThreadModel};
use toml::Spanned;
use user_vbridge::{BridgeConfig, Flap, GilbertElliott, Impairments, LimitPolicy, PortConfig, RateLimit, Reorder};

use crate::addr;
use crate::limits::{
    self, Part, Size, MAX_CAPTURE_BYTES, MAX_FRAMES, MAX_HOSTS, MAX_QUEUES, MAX_STACKS, MAX_UDP_CLIENTS,
};
use crate::load::{ScenarioError, Source};
use crate::plan::{
    DpdkPlan, Executor, Expect, FramesTraffic, HostNic, HostPlan, PingTraffic, Plan, PortBackend, ReplayTraffic,
    TcpTraffic, Traffic, UdpTraffic, Workload,
};
use crate::spec::{
    BackendSpec, BridgeSpec, DirectionSpec, DistributionSpec, ExecutorSpec, ExpectSpec, FramesSpec, HostKindSpec,
    HostSpec, ImpairmentsSpec, KillSpec, LimitPolicySpec, ModeSpec, PaceSpec, PingSpec, ProcsSpec, ReplaySpec,
    SampleSpec, ScenarioSpec, ShortSpec, SignalSpec, TcpSpec, ThreadModelSpec, TrafficSpec, UdpSpec,
};
use crate::units::Bounded;
use sim::replay::read_capture;

/// Default server ports, one per kind so that kinds never collide.
const BULK_PORT: u16 = 5201;
const ECHO_PORT: u16 = 5202;
const SHORT_PORT: u16 = 5203;
const UDP_PORT: u16 = 5300;
/// Defaults of `frames` traffic.
const FRAMES_PACE: Duration = Duration::from_micros(2);
const FRAMES_DRAIN: Duration = Duration::from_millis(100);
/// Longest ring cable name: DPDK's ring and port names it goes into are
/// short (`RTE_RING_NAMESIZE`).
const MAX_CABLE_NAME: usize = 16;
/// Prefix length of an IPv6 address read from a stack config.
const CONFIG_V6_PREFIX: u8 = 64;

type Result<T> = std::result::Result<T, ScenarioError>;

/// Resolves one file's spec.
pub(crate) struct Resolver<'a> {
    pub src: Source<'a>,
    pub base_dir: &'a Path,
}

/// Which kind of host a traffic entry needs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Needs {
    Stacks,
    /// Stacks or a kernel host.
    Sockets,
    Bare,
}

impl Resolver<'_> {
    /// The plan of `spec`.
    pub fn plan(&self, spec: ScenarioSpec) -> Result<Plan> {
        let executor = match spec.executor.as_ref().map(|e| *e.get_ref()) {
            None | Some(ExecutorSpec::Sim) => Executor::Sim,
            Some(ExecutorSpec::Threads) => Executor::Threads,
            Some(ExecutorSpec::Procs) => Executor::Procs,
        };
        let procs = self.procs(&spec, executor)?;
        let hosts = if procs.is_some() { Vec::new() } else { self.hosts(&spec.hosts)? };
        let dpdk = self.dpdk(&spec, executor, &hosts)?;
        let (keys, traffic): (Vec<String>, Vec<Traffic>) = self.traffic(&spec.traffic, &hosts)?.into_iter().unzip();
        if let (Some(_), false) = (&procs, traffic.is_empty()) {
            let message = "a procs scenario has no [traffic]: procs.frames sets the sample's load";
            return Err(self.src.error_in_file("traffic", message));
        }
        let kinds = spec.hosts.iter().enumerate().filter_map(|(i, h)| Some((i, h.get_ref().kind.as_ref()?)));
        if let (Executor::Sim, Some((i, kind))) =
            (executor, kinds.into_iter().find(|(_, k)| k.get_ref() == &HostKindSpec::Kernel))
        {
            return Err(self.src.error(kind.span(), format!("host[{i}].kind"), sim::kernel::SIM_REFUSAL));
        }
        let sim_only = traffic.iter().any(|t| matches!(t, Traffic::Frames(_) | Traffic::Replay(_)));
        if let (Executor::Threads, true, Some(e)) = (executor, sim_only, &spec.executor) {
            let message = "frames and replay traffic run under the sim executor only (under threads no thread \
                           would poll their ports)";
            return Err(self.src.error(e.span(), "executor", message));
        }
        let bridge = bridge(&spec.bridge);
        bridge.validate().map_err(|e| self.src.error_in_file("bridge.ageing", e.reason))?;
        let plan = Plan {
            seed: spec.seed,
            executor,
            duration: spec.duration.0,
            bridge,
            hosts,
            traffic,
            expect: spec.expect.map_or(Ok(Expect::default()), |e| self.expect(e))?,
            procs,
            dpdk,
        };
        self.fits_in_memory(&plan, &keys, limits::machine_memory())?;
        Ok(plan)
    }

    /// The processes of an `executor = "procs"` scenario; refuses a
    /// `[procs]` table or crash faults under another executor, and hosts
    /// or traffic under this one.
    fn procs(&self, spec: &ScenarioSpec, executor: Executor) -> Result<Option<ProcsPlan>> {
        let kills = &spec.fault.kill;
        let Some(table) = spec.procs.as_ref().filter(|_| executor == Executor::Procs) else {
            let needs = "needs executor = \"procs\"";
            if let Some(t) = &spec.procs {
                return Err(self.src.error(t.span(), "procs", format!("a [procs] table {needs}")));
            }
            if let Some(k) = kills.first() {
                return Err(self.src.error(k.span(), "fault.kill[0]", format!("a crash fault {needs}")));
            }
            if let (Executor::Procs, Some(e)) = (executor, &spec.executor) {
                let message = "executor = \"procs\" needs a [procs] table naming the sample";
                return Err(self.src.error(e.span(), "executor", message));
            }
            return Ok(None);
        };
        if let Some(h) = spec.hosts.first() {
            let message = "a procs scenario has no hosts: the sample's primary plays the hosts on its ports";
            return Err(self.src.error(h.span(), "host[0]", message));
        }
        let sample = self.sample(table.get_ref())?;
        let processes = match (sample, &table.get_ref().processes) {
            (Sample::Simple, Some(p)) if p.get_ref().get() != 2 => {
                return Err(self.src.error(p.span(), "procs.processes", "simple_mp runs exactly 2 processes"))
            }
            (_, Some(p)) => p.get_ref().get(),
            (Sample::Simple, None) => 2,
            (_, None) => 3,
        };
        if let Some(stacks) = &table.get_ref().stacks {
            let per_process = stacks.get_ref().get();
            if u64::from(processes) * u64::from(per_process) > MAX_QUEUES {
                let message =
                    format!("{processes} processes × {per_process} stacks need more than {MAX_QUEUES} queues");
                return Err(self.src.error(stacks.span(), "procs.stacks", message));
            }
        }
        let kills = kills.iter().enumerate().map(|(i, k)| self.kill(i, k, sample, processes)).collect::<Result<_>>()?;
        let deadline = spec.duration.0;
        let frames = table.get_ref().frames.get();
        Ok(Some(ProcsPlan { sample, processes, frames, kills, seed: spec.seed, deadline }))
    }

    /// `procs.sample`, with `procs.distribution`, `procs.thread_model`,
    /// `procs.conns` and `procs.bytes` where they apply.
    fn sample(&self, table: &ProcsSpec) -> Result<Sample> {
        let stacks_only = [
            table.thread_model.as_ref().map(|t| (t.span(), "thread_model")),
            table.conns.as_ref().map(|c| (c.span(), "conns")),
            table.bytes.as_ref().map(|b| (b.span(), "bytes")),
            table.stacks.as_ref().map(|s| (s.span(), "stacks")),
            table.kernel.as_ref().map(|k| (k.span(), "kernel")),
        ];
        let gazelle = matches!(table.sample, SampleSpec::GazelleVf | SampleSpec::TupleFilter | SampleSpec::Ltran);
        if let (false, Some((span, key))) = (gazelle, stacks_only.into_iter().flatten().next()) {
            return Err(self.src.error(
                span,
                format!("procs.{key}"),
                "only gazelle_vf, tuple_filter and ltran run stacks",
            ));
        }
        let shares = table.kernel.as_ref().filter(|k| *k.get_ref());
        if let Some(k) = shares.filter(|_| !matches!(table.sample, SampleSpec::TupleFilter)) {
            let message = "only tuple_filter's process 0 has lstack queues to share with a kernel";
            return Err(self.src.error(k.span(), "procs.kernel", message));
        }
        match (table.sample, &table.distribution) {
            (SampleSpec::ClientServerMp, d) => Ok(Sample::ClientServer(match d.as_ref().map(|d| *d.get_ref()) {
                None | Some(DistributionSpec::RoundRobin) => Distribution::RoundRobin,
                Some(DistributionSpec::FlowHash) => Distribution::FlowHash,
            })),
            (_, Some(d)) => {
                Err(self.src.error(d.span(), "procs.distribution", "only client_server_mp distributes frames"))
            }
            (SampleSpec::SimpleMp, None) => Ok(Sample::Simple),
            (SampleSpec::SymmetricMp, None) => Ok(Sample::Symmetric),
            (SampleSpec::GazelleVf, None) => Ok(Sample::Gazelle(GazelleMode::Vf, gazelle_run(table))),
            (SampleSpec::TupleFilter, None) => Ok(Sample::Gazelle(GazelleMode::TupleFilter, gazelle_run(table))),
            (SampleSpec::Ltran, None) => Ok(Sample::Gazelle(GazelleMode::Ltran, gazelle_run(table))),
        }
    }

    /// `fault.kill[i]`: its target must be a non-primary process of the run.
    fn kill(&self, i: usize, spec: &Spanned<KillSpec>, sample: Sample, processes: u16) -> Result<Kill> {
        let k = spec.get_ref();
        let key = format!("fault.kill[{i}].target");
        if sample == Sample::Simple {
            let message = "simple_mp takes no crash faults (its primary waits for the one secondary it has)";
            return Err(self.src.error(spec.span(), format!("fault.kill[{i}]"), message));
        }
        let names = sample.process_names(processes);
        let target = match names.iter().position(|n| n == k.target.get_ref()) {
            None if k.target.get_ref() == "random" => Target::Random,
            Some(0) => {
                let message =
                    format!("{} is the primary: its death ends the domain, so it is no crash fault's target", names[0]);
                return Err(self.src.error(k.target.span(), key, message));
            }
            Some(t) => Target::Process(t),
            None => {
                let message = format!(
                    "no process {:?} in {} with {processes} processes (targets: {}, or random)",
                    k.target.get_ref(),
                    sample.name(),
                    names[1..].join(", ")
                );
                return Err(self.src.error(k.target.span(), key, message));
            }
        };
        let at = match k.at {
            crate::units::KillAt::Random => KillAt::Random,
            crate::units::KillAt::After(d) => KillAt::After(d.0),
        };
        let signal = match k.signal {
            SignalSpec::Kill => Signal::KILL,
            SignalSpec::Term => Signal::TERM,
            SignalSpec::Int => Signal::INT,
            SignalSpec::Segv => Signal::SEGV,
            SignalSpec::Abrt => Signal::ABORT,
        };
        Ok(Kill { target, at, signal, restart: k.restart })
    }

    /// The EAL of a scenario with DPDK hosts: a `[dpdk]` table is needed
    /// exactly when a host has `backend = "dpdk"`, and such a host runs in
    /// real time (`executor = "threads"`), as DPDK ports do.
    fn dpdk(&self, spec: &ScenarioSpec, executor: Executor, hosts: &[HostPlan]) -> Result<Option<DpdkPlan>> {
        let first = hosts.iter().position(|h| matches!(h.port, PortBackend::Dpdk { .. }));
        let backend = |i: usize| spec.hosts[i].get_ref().backend.as_ref().map_or(spec.hosts[i].span(), Spanned::span);
        let (table, i) = match (&spec.dpdk, first) {
            (None, None) => return Ok(None),
            (Some(table), None) => {
                let message = "a [dpdk] table needs a host with backend = \"dpdk\"";
                return Err(self.src.error(table.span(), "dpdk", message));
            }
            (None, Some(i)) => {
                let message = "a DPDK host needs a [dpdk] table with the EAL arguments (eal = [...])";
                return Err(self.src.error(backend(i), format!("host[{i}].backend"), message));
            }
            (Some(table), Some(i)) => (table.get_ref(), i),
        };
        if executor != Executor::Threads {
            let message = "DPDK ports run in real time: a scenario with a DPDK host needs executor = \"threads\"";
            return Err(self.src.error(backend(i), format!("host[{i}].backend"), message));
        }
        let mut cables: Vec<String> = Vec::new();
        for (c, name) in table.ring_cables.iter().enumerate() {
            let text = name.get_ref();
            let ok = (1..=MAX_CABLE_NAME).contains(&text.len())
                && text.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_');
            let message = if !ok {
                format!("{text:?}: a ring cable's name is 1 to {MAX_CABLE_NAME} letters, digits or `_`")
            } else if cables.contains(text) {
                format!("ring cable {text:?} is named twice")
            } else {
                cables.push(text.clone());
                continue;
            };
            return Err(self.src.error(name.span(), format!("dpdk.ring_cables[{c}]"), message));
        }
        Ok(Some(DpdkPlan { eal: table.eal.clone(), ring_cables: cables }))
    }

    /// Refuses `plan` if its estimated memory exceeds `machine` bytes,
    /// naming the estimate and its largest part; `keys` name the traffic
    /// entries.
    fn fits_in_memory(&self, plan: &Plan, keys: &[String], machine: u64) -> Result<()> {
        let estimate = limits::estimate(plan);
        let total = estimate.total();
        let Some((part, bytes)) = estimate.largest().filter(|_| total > machine) else { return Ok(()) };
        let key = match part {
            Part::Bridge => "bridge".to_owned(),
            Part::Host(i) => format!("host[{i}]"),
            Part::Traffic(i) => keys.get(i).cloned().unwrap_or_else(|| "traffic".into()),
        };
        let message = format!(
            "the run needs an estimated {} of memory, more than this machine's {} (the largest part, {key}, needs {})",
            Size(total),
            Size(machine),
            Size(bytes)
        );
        Err(self.src.error_in_file(key, message))
    }

    fn hosts(&self, specs: &[Spanned<HostSpec>]) -> Result<Vec<HostPlan>> {
        if specs.is_empty() {
            return Err(self.src.error_in_file("host", "at least one [[host]] is needed"));
        }
        if let Some(extra) = specs.get(MAX_HOSTS) {
            let message = format!("{} hosts exceed the limit of {MAX_HOSTS}", specs.len());
            return Err(self.src.error(extra.span(), "host", message));
        }
        let mut seen: HashMap<&str, usize> = HashMap::new();
        let mut hosts = Vec::new();
        for (i, spec) in specs.iter().enumerate() {
            let name = &spec.get_ref().name;
            if let Some(first) = seen.insert(name.get_ref(), i) {
                let message = format!("host {:?} is already defined as host[{first}]", name.get_ref());
                return Err(self.src.error(name.span(), format!("host[{i}].name"), message));
            }
            hosts.push(self.host(i, spec)?);
        }
        self.dpdk_ports_once(specs, &hosts)?;
        self.shared_nics(specs, &mut hosts)?;
        let bare = hosts.iter().filter(|h| !h.has_sockets()).count();
        if bare > 0 && bare < hosts.len() {
            let at = specs.iter().zip(&hosts).find(|(_, h)| !h.has_sockets()).map(|(s, _)| s.span());
            let message = "bare hosts (queues) and stack hosts cannot share a bridge: stacks' broadcasts would \
                           reach the bare ports, which only frames traffic reads";
            return Err(self.src.error(at.unwrap_or_default(), "host", message));
        }
        Ok(hosts)
    }

    /// Refuses a DPDK port named by two hosts (or twice by one): a port
    /// has one owner.
    fn dpdk_ports_once(&self, specs: &[Spanned<HostSpec>], hosts: &[HostPlan]) -> Result<()> {
        let mut seen: HashMap<&str, String> = HashMap::new();
        for (i, (spec, host)) in specs.iter().zip(hosts).enumerate() {
            let PortBackend::Dpdk { device, uplink } = &host.port else { continue };
            for (key, name, span) in
                [("device", device, &spec.get_ref().device), ("uplink", uplink, &spec.get_ref().uplink)]
            {
                let key = format!("host[{i}].{key}");
                if let Some(first) = seen.insert(name, key.clone()) {
                    let message = format!("DPDK port {name:?} is already {first}: a port has one owner");
                    return Err(self.src.error(span.as_ref().map_or(spec.span(), Spanned::span), key, message));
                }
            }
        }
        Ok(())
    }

    fn host(&self, i: usize, spanned: &Spanned<HostSpec>) -> Result<HostPlan> {
        let spec = spanned.get_ref();
        let key = |k: &str| format!("host[{i}].{k}");
        let kernel = spec.kind.as_ref().filter(|k| k.get_ref() == &HostKindSpec::Kernel);
        let nic = match (&spec.stacks, &spec.queues, &spec.config) {
            _ if kernel.is_some() => HostNic::Kernel(self.kernel(i, spanned)?),
            (Some(stacks), None, None) => HostNic::Stacks(self.group(i, spanned, stacks)?),
            (None, Some(queues), None) => self.bare(i, spec, queues)?,
            (None, None, Some(path)) => HostNic::Stacks(self.group_from_file(i, spec, path)?),
            _ => {
                let message = "set exactly one of `stacks` (a stack group), `config` (a stack group from a stack \
                               config file) or `queues` (a bare port)";
                return Err(self.src.error(spanned.span(), format!("host[{i}]"), message));
            }
        };
        let link = match &spec.impairments {
            Some(imp) => {
                let link = link(imp.get_ref());
                let checked = validate_link(&link, &key("impairments"));
                checked.map_err(|(field, message)| self.src.error(imp.span(), field, message))?;
                link
            }
            None => PortConfig::default(),
        };
        let port = self.port_backend(i, spanned, &nic)?;
        Ok(HostPlan { name: spec.name.get_ref().clone(), nic, link, port, shares: None })
    }

    /// Resolves every kernel host's `nic`: the stack host (on the bridge,
    /// one kernel each) whose NIC it shares, with that host's MAC and
    /// addresses; such a kernel has no link, so no `impairments`.
    fn shared_nics(&self, specs: &[Spanned<HostSpec>], hosts: &mut [HostPlan]) -> Result<()> {
        let mut taken: HashMap<usize, usize> = HashMap::new();
        for (i, spanned) in specs.iter().enumerate() {
            let spec = spanned.get_ref();
            let Some(nic) = &spec.nic else { continue };
            let key = format!("host[{i}].nic");
            let fail = |message: String| Err(self.src.error(nic.span(), key.clone(), message));
            let HostNic::Kernel(kernel) = &hosts[i].nic else {
                return fail("only a kernel host (kind = \"kernel\") shares another host's NIC".into());
            };
            let Some(t) = hosts.iter().position(|h| &h.name == nic.get_ref()) else {
                return fail(format!("no host {:?}", nic.get_ref()));
            };
            let (HostNic::Stacks(group), PortBackend::Veth) = (&hosts[t].nic, &hosts[t].port) else {
                return fail(format!("host {:?} has no stacks on a user-veth port to share a NIC with", nic.get_ref()));
            };
            if (kernel.mac, kernel.ipv4, kernel.ipv6) != (group.mac, group.ipv4, group.ipv6) {
                return fail(format!("the kernel sharing {:?}'s NIC has its MAC and addresses", nic.get_ref()));
            }
            if let Some(first) = taken.insert(t, i) {
                return fail(format!("host[{first}] already shares {:?}'s NIC", nic.get_ref()));
            }
            if let Some(imp) = &spec.impairments {
                let message = "a kernel sharing a NIC has no link of its own: impair the stack host's";
                return Err(self.src.error(imp.span(), format!("host[{i}].impairments"), message));
            }
            hosts[i].shares = Some(t);
        }
        Ok(())
    }

    /// The port under host `i`: user-veth, or a DPDK `device` reaching the
    /// bridge through its `uplink`.
    fn port_backend(&self, i: usize, spanned: &Spanned<HostSpec>, nic: &HostNic) -> Result<PortBackend> {
        let spec = spanned.get_ref();
        let Some(backend) = spec.backend.as_ref().filter(|b| b.get_ref() == &BackendSpec::Dpdk) else {
            let stray = [("device", &spec.device), ("uplink", &spec.uplink)];
            if let Some((name, Some(value))) = stray.into_iter().find(|(_, v)| v.is_some()) {
                let message = format!("`{name}` names a DPDK port: it needs backend = \"dpdk\"");
                return Err(self.src.error(value.span(), format!("host[{i}].{name}"), message));
            }
            return Ok(PortBackend::Veth);
        };
        if !matches!(nic, HostNic::Stacks(_)) {
            let message = "only a stack host (`stacks` or `config`) runs on a DPDK port";
            return Err(self.src.error(backend.span(), format!("host[{i}].backend"), message));
        }
        let device = spec.device.as_ref().ok_or_else(|| self.missing(i, spanned, "device"))?;
        let uplink = spec.uplink.as_ref().ok_or_else(|| self.missing(i, spanned, "uplink"))?;
        if device.get_ref() == uplink.get_ref() {
            let message = "the uplink must be another port than the device: frames cross from one to the other";
            return Err(self.src.error(uplink.span(), format!("host[{i}].uplink"), message));
        }
        Ok(PortBackend::Dpdk { device: device.get_ref().clone(), uplink: uplink.get_ref().clone() })
    }

    /// A stack group from the host's own keys.
    fn group(
        &self,
        i: usize,
        spanned: &Spanned<HostSpec>,
        stacks: &Spanned<Bounded<usize, 0, MAX_STACKS>>,
    ) -> Result<GroupConfig> {
        let spec = spanned.get_ref();
        let mac = spec.mac.as_ref().ok_or_else(|| self.missing(i, spanned, "mac"))?;
        if spec.ipv4.is_none() && spec.ipv6.is_none() {
            return Err(self.missing(i, spanned, "ipv4` or `ipv6"));
        }
        if stacks.get_ref().get() == 0 {
            return Err(self.src.error(stacks.span(), format!("host[{i}].stacks"), "at least one stack is needed"));
        }
        let mut group = GroupConfig::new(stacks.get_ref().get(), *mac.get_ref(), Ipv4Addr::UNSPECIFIED);
        group.ipv4 = spec.ipv4.as_ref().map(|c| (c.get_ref().0, c.get_ref().1));
        group.ipv6 = spec.ipv6.as_ref().map(|c| (c.get_ref().0, c.get_ref().1));
        group.gateway = spec.gateway.as_ref().map(|g| *g.get_ref());
        group.mode = spec.mode.as_ref().map_or(ForwardMode::Rss, |m| mode(*m.get_ref()));
        group.model = spec.thread_model.as_ref().map_or(ThreadModel::RunToWakeup, |m| model(*m.get_ref()));
        apply_port_keys(&mut group, spec);
        addr::check_group(&group).map_err(|(field, message)| {
            let span = match field {
                "mac" => Some(mac.span()),
                "ipv4" => spec.ipv4.as_ref().map(Spanned::span),
                "ipv6" => spec.ipv6.as_ref().map(Spanned::span),
                _ => spec.gateway.as_ref().map(Spanned::span),
            };
            self.src.error(span.unwrap_or_else(|| spanned.span()), format!("host[{i}].{field}"), message)
        })?;
        Ok(group)
    }

    /// A stack group from a gazelle `lstack.conf` or a `.toml` stack config.
    fn group_from_file(&self, i: usize, spec: &HostSpec, path: &Spanned<String>) -> Result<GroupConfig> {
        let key = format!("host[{i}].config");
        let conflicting = [
            ("mac", spec.mac.as_ref().map(Spanned::span)),
            ("ipv4", spec.ipv4.as_ref().map(Spanned::span)),
            ("ipv6", spec.ipv6.as_ref().map(Spanned::span)),
            ("gateway", spec.gateway.as_ref().map(Spanned::span)),
            ("mode", spec.mode.as_ref().map(Spanned::span)),
            ("thread_model", spec.thread_model.as_ref().map(Spanned::span)),
        ];
        if let Some((name, Some(span))) = conflicting.into_iter().find(|(_, s)| s.is_some()) {
            let message = format!("`{name}` comes from the stack config file `config`; set it there");
            return Err(self.src.error(span, format!("host[{i}].{name}"), message));
        }
        let file = self.file(path, &key)?;
        let config = StackConfig::load(&file).map_err(|e| self.src.error(path.span(), &key, e.to_string()))?;
        for warning in &config.warnings {
            // A key that merely does nothing here is news, not a problem.
            match warning.kind {
                stack::config::WarningKind::Ignored { .. } => tracing::info!("{warning}"),
                _ => tracing::warn!("{warning}"),
            }
        }
        let mut group = group_from_stack_config(&config).map_err(|m| self.src.error(path.span(), &key, m))?;
        if group.stacks as u64 > MAX_STACKS {
            let message = format!("{} stacks exceed the limit of {MAX_STACKS} (a port's queues)", group.stacks);
            return Err(self.src.error(path.span(), &key, message));
        }
        addr::check_group(&group).map_err(|(field, m)| self.src.error(path.span(), &key, format!("{field}: {m}")))?;
        apply_port_keys(&mut group, spec);
        Ok(group)
    }

    fn bare(&self, i: usize, spec: &HostSpec, queues: &Spanned<Bounded<u16, 0, MAX_QUEUES>>) -> Result<HostNic> {
        let stack_only = [
            ("ipv6", spec.ipv6.as_ref().map(Spanned::span)),
            ("gateway", spec.gateway.as_ref().map(Spanned::span)),
            ("mode", spec.mode.as_ref().map(Spanned::span)),
            ("thread_model", spec.thread_model.as_ref().map(Spanned::span)),
        ];
        if let Some((name, Some(span))) = stack_only.into_iter().find(|(_, s)| s.is_some()) {
            let message = format!("a bare host (`queues`) has no stacks, so `{name}` does not apply");
            return Err(self.src.error(span, format!("host[{i}].{name}"), message));
        }
        if spec.rx_buffer.is_some() || spec.tx_buffer.is_some() || spec.mtu.is_some() || spec.tso {
            let message = "a bare host (`queues`) has no stacks: remove rx_buffer, tx_buffer, mtu and tso";
            return Err(self.src.error(queues.span(), format!("host[{i}].queues"), message));
        }
        let key = format!("host[{i}]");
        let bad = |what: &str| self.src.error(queues.span(), &key, format!("a bare host needs `{what}`"));
        let mac = spec.mac.as_ref().ok_or_else(|| bad("mac"))?;
        let ipv4 = spec.ipv4.as_ref().ok_or_else(|| bad("ipv4"))?;
        addr::check_mac(*mac.get_ref()).map_err(|m| self.src.error(mac.span(), format!("host[{i}].mac"), m))?;
        let (addr, prefix) = (ipv4.get_ref().0, ipv4.get_ref().1);
        addr::check_v4(addr, prefix).map_err(|m| self.src.error(ipv4.span(), format!("host[{i}].ipv4"), m))?;
        let queues_n = queues.get_ref().get();
        if queues_n == 0 {
            return Err(self.src.error(queues.span(), format!("host[{i}].queues"), "at least one queue is needed"));
        }
        Ok(HostNic::Bare { mac: *mac.get_ref(), ipv4: addr, queues: queues_n })
    }

    /// A kernel host: its MAC, addresses, gateway and MTU; nothing of stacks.
    fn kernel(&self, i: usize, spanned: &Spanned<HostSpec>) -> Result<KernelHostConfig> {
        let spec = spanned.get_ref();
        let dtnet_only = [
            ("stacks", spec.stacks.as_ref().map(Spanned::span)),
            ("queues", spec.queues.as_ref().map(Spanned::span)),
            ("config", spec.config.as_ref().map(Spanned::span)),
            ("mode", spec.mode.as_ref().map(Spanned::span)),
            ("thread_model", spec.thread_model.as_ref().map(Spanned::span)),
        ];
        if let Some((name, Some(span))) = dtnet_only.into_iter().find(|(_, s)| s.is_some()) {
            let message = format!("a kernel host runs the kernel's own stack, so `{name}` does not apply");
            return Err(self.src.error(span, format!("host[{i}].{name}"), message));
        }
        if spec.rx_buffer.is_some() || spec.tx_buffer.is_some() || spec.tso {
            let message =
                "a kernel host has the kernel's socket buffers and no TSO: remove rx_buffer, tx_buffer and tso";
            return Err(self.src.error(spanned.span(), format!("host[{i}]"), message));
        }
        // The addresses obey the same rules as a stack host's.
        let group = self.group(i, spanned, &Spanned::new(spanned.span(), Bounded(1)))?;
        Ok(KernelHostConfig {
            name: spec.name.get_ref().clone(),
            mac: group.mac,
            ipv4: group.ipv4,
            ipv6: group.ipv6,
            gateway: group.gateway,
            mtu: group.mtu,
        })
    }

    fn missing(&self, i: usize, spanned: &Spanned<HostSpec>, what: &str) -> ScenarioError {
        self.src.error(spanned.span(), format!("host[{i}]"), format!("missing key `{what}`"))
    }

    /// `path` relative to the scenario file; an error if it is not a readable file.
    fn file(&self, path: &Spanned<String>, key: &str) -> Result<PathBuf> {
        let file = self.base_dir.join(path.get_ref());
        match std::fs::metadata(&file) {
            Ok(m) if m.is_file() => Ok(file),
            Ok(_) => Err(self.src.error(path.span(), key, format!("{} is not a file", file.display()))),
            Err(e) => Err(self.src.error(path.span(), key, format!("{}: {e}", file.display()))),
        }
    }

    /// The traffic entries in plan order, each with its key.
    /// `path` as [`file`](Self::file), and a text: UTF-8 without binary
    /// junk, or an error naming its line and column.
    fn text_file(&self, path: &Spanned<String>, key: &str) -> Result<PathBuf> {
        let file = self.file(path, key)?;
        let bytes =
            std::fs::read(&file).map_err(|e| self.src.error(path.span(), key, format!("{}: {e}", file.display())))?;
        stack::config::decode_text(&bytes, &file.display().to_string())
            .map_err(|e| self.src.error(path.span(), key, e.to_string()))?;
        Ok(file)
    }

    fn traffic(&self, spec: &TrafficSpec, hosts: &[HostPlan]) -> Result<Vec<(String, Traffic)>> {
        let mut ports = PortBook::default();
        let mut out = Vec::new();
        for (i, t) in spec.bulk.iter().enumerate() {
            let key = format!("traffic.bulk[{i}]");
            out.push((key.clone(), self.tcp(t, Workload::Bulk, BULK_PORT, &key, hosts, &mut ports)?));
        }
        for (i, t) in spec.echo.iter().enumerate() {
            let key = format!("traffic.echo[{i}]");
            out.push((key.clone(), self.tcp(t, Workload::Echo, ECHO_PORT, &key, hosts, &mut ports)?));
        }
        for (i, t) in spec.short.iter().enumerate() {
            let key = format!("traffic.short[{i}]");
            out.push((key.clone(), self.short(t, &key, hosts, &mut ports)?));
        }
        let mut udp_clients = vec![0; hosts.len()];
        for (i, t) in spec.udp.iter().enumerate() {
            let key = format!("traffic.udp[{i}]");
            let udp = self.udp(t, &key, hosts, &mut ports)?;
            if let Traffic::Udp(u) = &udp {
                udp_clients[u.client] += u.clients;
                if udp_clients[u.client] > MAX_UDP_CLIENTS {
                    let message = format!(
                        "{} UDP client sockets on host {:?} exceed the limit of {MAX_UDP_CLIENTS} (one local port each)",
                        udp_clients[u.client],
                        t.client.get_ref()
                    );
                    return Err(self.src.error(t.client.span(), format!("{key}.clients"), message));
                }
            }
            out.push((key, udp));
        }
        for (i, t) in spec.ping.iter().enumerate() {
            let key = format!("traffic.ping[{i}]");
            out.push((key.clone(), self.ping(t, &key, hosts)?));
        }
        for (i, t) in spec.frames.iter().enumerate() {
            let key = format!("traffic.frames[{i}]");
            out.push((key.clone(), self.frames(t, &key, hosts)?));
        }
        for (i, t) in spec.replay.iter().enumerate() {
            let key = format!("traffic.replay[{i}]");
            out.push((key.clone(), self.replay(t, &key, hosts)?));
        }
        Ok(out)
    }

    /// A replay: its host, and its capture, which must be small enough and
    /// read cleanly (a damaged capture is refused with its byte offset).
    fn replay(&self, t: &ReplaySpec, key: &str, hosts: &[HostPlan]) -> Result<Traffic> {
        let host = self.host_ref(&t.host, &format!("{key}.host"), hosts, Needs::Stacks)?;
        let file_key = format!("{key}.file");
        let file = self.file(&t.file, &file_key)?;
        let size = std::fs::metadata(&file).map_or(0, |m| m.len());
        if size > MAX_CAPTURE_BYTES {
            let message = format!("{}: {size} bytes exceed the limit of {MAX_CAPTURE_BYTES}", file.display());
            return Err(self.src.error(t.file.span(), file_key, message));
        }
        read_capture(&file).map_err(|e| self.src.error(t.file.span(), &file_key, e.to_string()))?;
        let recorded_pace = t.pace == PaceSpec::Recorded;
        Ok(Traffic::Replay(ReplayTraffic { host, file, recorded_pace, echo_port: t.echo_port }))
    }

    fn tcp(
        &self,
        t: &TcpSpec,
        workload: Workload,
        default_port: u16,
        key: &str,
        hosts: &[HostPlan],
        ports: &mut PortBook,
    ) -> Result<Traffic> {
        let ends = Ends { client: &t.client, server: &t.server, port: t.port.as_ref(), ipv6: t.ipv6 };
        let (client, server, port) = self.ends(&ends, ("tcp", default_port), key, hosts, ports)?;
        let (conns, bytes, ipv6) = (t.conns.get(), t.bytes.get().0, t.ipv6);
        let parallel = conns;
        Ok(Traffic::Tcp(TcpTraffic { workload, client, server, port, conns, bytes, parallel, ipv6 }))
    }

    fn short(&self, t: &ShortSpec, key: &str, hosts: &[HostPlan], ports: &mut PortBook) -> Result<Traffic> {
        let ends = Ends { client: &t.client, server: &t.server, port: t.port.as_ref(), ipv6: t.ipv6 };
        let (client, server, port) = self.ends(&ends, ("tcp", SHORT_PORT), key, hosts, ports)?;
        let conns = t.conns.get();
        let parallel = t.parallel.map_or(hosts[client].stacks() as u64, Bounded::get).clamp(1, conns.max(1));
        let (workload, bytes, ipv6) = (Workload::Echo, t.bytes.get().0, t.ipv6);
        Ok(Traffic::Tcp(TcpTraffic { workload, client, server, port, conns, bytes, parallel, ipv6 }))
    }

    fn udp(&self, t: &UdpSpec, key: &str, hosts: &[HostPlan], ports: &mut PortBook) -> Result<Traffic> {
        let ends = Ends { client: &t.client, server: &t.server, port: t.port.as_ref(), ipv6: t.ipv6 };
        let (client, server, port) = self.ends(&ends, ("udp", UDP_PORT), key, hosts, ports)?;
        let (clients, requests) = (t.clients.get(), t.requests.get());
        let udp = UdpTraffic { client, server, port, clients, requests, ipv6: t.ipv6 };
        Ok(Traffic::Udp(udp))
    }

    /// Client, server and server port of a client/server entry.
    fn ends(
        &self,
        ends: &Ends<'_>,
        (proto, default_port): (&'static str, u16),
        key: &str,
        hosts: &[HostPlan],
        ports: &mut PortBook,
    ) -> Result<(usize, usize, u16)> {
        let (client, server) = self.pair(ends.client, ends.server, key, hosts, ends.ipv6)?;
        let port = self.port(ends.port, ends.server, default_port, key, (proto, server), ports)?;
        Ok((client, server, port))
    }

    fn ping(&self, t: &PingSpec, key: &str, hosts: &[HostPlan]) -> Result<Traffic> {
        let from = self.host_ref(&t.from, &format!("{key}.from"), hosts, Needs::Stacks)?;
        let to = self.host_ref(&t.to, &format!("{key}.to"), hosts, Needs::Sockets)?;
        if hosts[to].ipv4().is_none() {
            return Err(self.src.error(t.to.span(), format!("{key}.to"), "ping needs an IPv4 address on the target"));
        }
        Ok(Traffic::Ping(PingTraffic { from, to, count: t.count }))
    }

    fn frames(&self, t: &FramesSpec, key: &str, hosts: &[HostPlan]) -> Result<Traffic> {
        let chosen = match &t.hosts {
            Some(names) => names
                .iter()
                .enumerate()
                .map(|(j, n)| self.host_ref(n, &format!("{key}.hosts[{j}]"), hosts, Needs::Bare))
                .collect::<Result<Vec<_>>>()?,
            None => (0..hosts.len()).filter(|&h| !hosts[h].has_sockets()).collect(),
        };
        if chosen.len() < 2 {
            let message = "frames need at least two bare hosts (`queues = N`) to travel between";
            return Err(self.src.error_in_file(key, message));
        }
        let (flows, frames_per_flow) = (t.flows.get(), t.frames_per_flow.get());
        let frames = u64::from(flows) * u64::from(frames_per_flow);
        if frames > MAX_FRAMES {
            let message = format!("{flows} flows of {frames_per_flow} frames exceed the limit of {MAX_FRAMES} frames");
            return Err(self.src.error_in_file(key, message));
        }
        Ok(Traffic::Frames(FramesTraffic {
            hosts: chosen,
            flows,
            frames_per_flow,
            burst: t.burst.get().max(1),
            pace: t.pace.map_or(FRAMES_PACE, |d| d.0),
            drain: t.drain.map_or(FRAMES_DRAIN, |d| d.0),
        }))
    }

    /// Client and server of a connection-oriented entry: two stack hosts,
    /// with IPv6 addresses if `ipv6`.
    fn pair(
        &self,
        client: &Spanned<String>,
        server: &Spanned<String>,
        key: &str,
        hosts: &[HostPlan],
        ipv6: bool,
    ) -> Result<(usize, usize)> {
        let c = self.host_ref(client, &format!("{key}.client"), hosts, Needs::Sockets)?;
        let s = self.host_ref(server, &format!("{key}.server"), hosts, Needs::Sockets)?;
        for (i, name, side) in [(c, client, "client"), (s, server, "server")] {
            let has = if ipv6 { hosts[i].ipv6().is_some() } else { hosts[i].ipv4().is_some() };
            if !has {
                let family = if ipv6 { "an IPv6" } else { "an IPv4" };
                let message = format!("host {:?} has no {family} address", name.get_ref());
                return Err(self.src.error(name.span(), format!("{key}.{side}"), message));
            }
        }
        Ok((c, s))
    }

    fn host_ref(&self, name: &Spanned<String>, key: &str, hosts: &[HostPlan], needs: Needs) -> Result<usize> {
        let Some(i) = hosts.iter().position(|h| h.name == *name.get_ref()) else {
            let names: Vec<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
            let message = format!("no host named {:?} (hosts: {})", name.get_ref(), names.join(", "));
            return Err(self.src.error(name.span(), key, message));
        };
        let stacks = hosts[i].group().is_some();
        let message = match needs {
            Needs::Sockets if hosts[i].has_sockets() => return Ok(i),
            Needs::Stacks | Needs::Sockets if hosts[i].kernel().is_some() => {
                "this traffic needs a host with dtnet's stacks, not a kernel host"
            }
            Needs::Stacks | Needs::Sockets if !stacks => "this traffic needs a host with stacks, not a bare port",
            Needs::Bare if stacks => "frames traffic needs a bare host (`queues = N`), not one with stacks",
            _ => return Ok(i),
        };
        Err(self.src.error(name.span(), key, format!("host {:?}: {message}", name.get_ref())))
    }

    /// The server port of an entry, refusing one another entry already serves.
    fn port(
        &self,
        port: Option<&Spanned<u16>>,
        server: &Spanned<String>,
        default: u16,
        key: &str,
        (proto, host): (&'static str, usize),
        book: &mut PortBook,
    ) -> Result<u16> {
        let (value, span) = port.map_or((default, server.span()), |p| (*p.get_ref(), p.span()));
        if value == 0 {
            return Err(self.src.error(span, format!("{key}.port"), "port 0 cannot be listened on"));
        }
        match book.0.insert((proto, host, value), key.to_owned()) {
            Some(first) => {
                let message = format!(
                    "{proto} port {value} on host {:?} is already served by {first}; set `port`",
                    server.get_ref()
                );
                Err(self.src.error(span, format!("{key}.port"), message))
            }
            None => Ok(value),
        }
    }

    fn expect(&self, spec: ExpectSpec) -> Result<Expect> {
        let golden_trace = match &spec.golden_trace {
            Some(path) => Some(self.text_file(path, "expect.golden_trace")?),
            None => None,
        };
        Ok(Expect {
            delivered: spec.delivered,
            placement: spec.placement,
            no_leaks: spec.no_leaks,
            balance: spec.balance,
            max_drops: spec.max_drops,
            max_drops_by_reason: spec.max_drops_by_reason.0,
            loss_as_configured: spec.loss_as_configured,
            golden_trace,
        })
    }
}

/// The endpoints of a client/server traffic entry as written.
struct Ends<'a> {
    client: &'a Spanned<String>,
    server: &'a Spanned<String>,
    port: Option<&'a Spanned<u16>>,
    ipv6: bool,
}

/// Server ports taken so far: (protocol, host, port) to the entry serving it.
#[derive(Default)]
struct PortBook(HashMap<(&'static str, usize, u16), String>);

fn bridge(spec: &BridgeSpec) -> BridgeConfig {
    let defaults = BridgeConfig::default();
    BridgeConfig {
        name: "br0".into(),
        ageing_time: spec.ageing.map_or(defaults.ageing_time, |d| d.0),
        fdb_limit: spec.fdb_limit,
        limit_policy: match spec.limit_policy {
            LimitPolicySpec::StopLearning => LimitPolicy::StopLearning,
            LimitPolicySpec::EvictOldest => LimitPolicy::EvictOldest,
        },
        ..defaults
    }
}

fn mode(m: ModeSpec) -> ForwardMode {
    match m {
        ModeSpec::Rss => ForwardMode::Rss,
        ModeSpec::ListenShadow => ForwardMode::ListenShadow,
        ModeSpec::SoftForward => ForwardMode::SoftForward,
        ModeSpec::FlowDirector => ForwardMode::FlowDirector,
    }
}

/// The stack settings of a gazelle mode's run.
fn gazelle_run(table: &ProcsSpec) -> GazelleRun {
    GazelleRun {
        model: table.thread_model.as_ref().map_or(ThreadModel::RunToCompletion, |m| model(*m.get_ref())),
        conns: table.conns.as_ref().map_or(8, |c| c.get_ref().get()),
        bytes: table.bytes.as_ref().map_or(64 * 1024, |b| b.get_ref().get().0),
        stacks: table.stacks.as_ref().map_or(1, |s| s.get_ref().get()),
        kernel: table.kernel.as_ref().is_some_and(|k| *k.get_ref()),
    }
}

fn model(m: ThreadModelSpec) -> ThreadModel {
    match m {
        ThreadModelSpec::RunToWakeup => ThreadModel::RunToWakeup,
        ThreadModelSpec::RunToCompletion => ThreadModel::RunToCompletion,
    }
}

/// The host keys that apply whichever way the stacks were described.
fn apply_port_keys(group: &mut GroupConfig, spec: &HostSpec) {
    if let Some(mtu) = spec.mtu {
        group.mtu = mtu.get();
    }
    group.tso = spec.tso;
    let bufs = group.bufs;
    group.bufs = BufSizes {
        rx: spec.rx_buffer.map_or(bufs.rx, |b| b.get().0 as usize),
        tx: spec.tx_buffer.map_or(bufs.tx, |b| b.get().0 as usize),
    };
}

/// The stack group a gazelle stack config describes: one stack per CPU in
/// `num_cpus`, its forwarding mode and thread model, its addresses.
pub fn group_from_stack_config(c: &StackConfig) -> std::result::Result<GroupConfig, String> {
    let mode = match c.forward_mode() {
        ForwardMode::Ltran => {
            return Err("use_ltran = 1 needs the ltran forwarder process, which a single-process scenario has not: \
                 set use_ltran = 0, or run ltran across processes ([procs] sample = \"ltran\")"
                .into())
        }
        mode => mode,
    };
    let mut group = GroupConfig::new(c.stack_count(), c.host_mac, Ipv4Addr::UNSPECIFIED);
    group.mode = mode;
    group.model = c.thread_model();
    group.ipv4 = c.host_addr.map(|a| (a, c.mask_addr.map_or(24, |m| m.to_bits().count_ones() as u8)));
    group.gateway = c.gateway_addr;
    group.ipv6 = c.host_addr6.map(|a| (a, CONFIG_V6_PREFIX));
    Ok(group)
}

/// The bridge port configuration `spec` describes.
fn link(spec: &ImpairmentsSpec) -> PortConfig {
    let imp = Impairments {
        loss: spec.loss.0,
        burst_loss: spec.burst_loss.as_ref().map(|b| GilbertElliott {
            p_good_to_bad: b.p_good_to_bad.0,
            p_bad_to_good: b.p_bad_to_good.0,
            loss_good: b.loss_good.0,
            loss_bad: b.loss_bad.0,
        }),
        delay: spec.delay.map_or(Duration::ZERO, |d| d.0),
        jitter: spec.jitter.map_or(Duration::ZERO, |d| d.0),
        reorder: spec.reorder.as_ref().map(|r| Reorder { probability: r.probability.0, extra_delay: r.extra_delay.0 }),
        duplicate: spec.duplicate.0,
        corrupt: spec.corrupt.0,
        rate: spec.rate.as_ref().map(|r| RateLimit {
            bits_per_sec: r.bits_per_sec,
            burst_bytes: u32::try_from(r.burst_bytes.0).unwrap_or(u32::MAX),
        }),
        mtu: spec.mtu,
        flap: spec.flap.as_ref().map(|f| Flap { offset: f.offset.0, period: f.period.0, down: f.down.0 }),
    };
    let (ingress, egress) = match spec.direction {
        DirectionSpec::Both => (imp.clone(), imp),
        DirectionSpec::Ingress => (imp, Impairments::default()),
        DirectionSpec::Egress => (Impairments::default(), imp),
    };
    PortConfig { ingress, egress, ..PortConfig::default() }
}

/// Checks both directions of `link`; errors are (key, message).
fn validate_link(link: &PortConfig, key: &str) -> std::result::Result<(), (String, String)> {
    for imp in [&link.ingress, &link.egress] {
        imp.validate(key).map_err(|e| (e.field, e.reason))?;
    }
    Ok(())
}

//! The default scenario behind `dtnet run`: the virtual wire under load.
//!
//! Three hosts, each a veth port with four RSS queues and receive checksum
//! offload, sit on one bridge whose ingress links lose frames with a seeded
//! probability. Seeded flows (TCP and UDP, random ports) send a few frames
//! each between random pairs of hosts, paced in virtual time. Before the
//! bridge has learned a host its frames are flooded, and the other hosts'
//! MAC filters drop the copies.
//!
//! The run checks what must hold on any correct virtual wire:
//! - every frame sent is either delivered byte-identical to its destination,
//!   on the queue its RSS hash selects, or counted as a loss;
//! - the bridge and every port close their accounting;
//! - every buffer is back in its pool.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use ethdev::dev::{PortConf, RxOffloads};
use ethdev::error::ConfigError;
use ethdev::frame::FrameSpec;
use ethdev::mbuf::{Mbuf, OlFlags};
use ethdev::mempool::{Mempool, MempoolConfig, Owner};
use ethdev::packet::IpAddrs;
use ethdev::stats::DropReason;
use ethdev::{EthDev, Instant};
use rand::{RngExt, SeedableRng};
use user_vbridge::{Bridge, BridgeConfig, Direction, Impairments, PortConfig, PortId};
use user_veth::{Veth, VethPort};

const HOSTS: usize = 3;
const QUEUES: u16 = 4;
const FRAMES_PER_FLOW: u32 = 4;
const PACE: Duration = Duration::from_micros(2);
/// How long after the last frame is sent the run waits for frames in flight;
/// later deadlines (FDB ageing) are not part of the traffic.
const DRAIN: Duration = Duration::from_millis(100);

/// Parameters of the default scenario.
#[derive(Debug, Clone)]
pub struct WireRun {
    /// Seed of the traffic and of the impairments.
    pub seed: u64,
    /// Number of flows.
    pub flows: u32,
    /// Loss probability on every port-to-bridge link.
    pub loss: f64,
}

/// One expectation and whether it held.
#[derive(Debug, Clone)]
pub struct Check {
    /// What was expected.
    pub name: &'static str,
    /// Whether it held.
    pub passed: bool,
    /// Figures behind the verdict.
    pub detail: String,
}

/// Counters of one host's port after the run.
#[derive(Debug, Clone)]
pub struct HostRow {
    /// Port name.
    pub name: String,
    /// Frames sent to the wire.
    pub tx: u64,
    /// Frames received into queues.
    pub rx: u64,
    /// Frames received per queue.
    pub per_queue: Vec<u64>,
    /// Receive drops by reason.
    pub drops: Vec<(DropReason, u64)>,
}

/// What `dtnet run` prints.
#[derive(Debug, Clone)]
pub struct Report {
    /// Frames the hosts sent.
    pub sent: u64,
    /// Frames delivered to their destination.
    pub delivered: u64,
    /// Frames the bridge's links lost.
    pub lost: u64,
    /// Virtual time the run covered.
    pub virtual_time: Instant,
    /// Per-host counters.
    pub hosts: Vec<HostRow>,
    /// Every expectation.
    pub checks: Vec<Check>,
}

impl Report {
    /// Whether every expectation held.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.passed)
    }
}

/// A frame on its way: who sends it and what it must look like on arrival.
struct Planned {
    from: usize,
    to: usize,
    bytes: Vec<u8>,
}

/// Runs the scenario to completion in virtual time.
pub fn run(params: &WireRun) -> Result<Report, ConfigError> {
    if !(0.0..=1.0).contains(&params.loss) {
        return Err(ConfigError::new("loss", format!("{} is not a probability", params.loss)));
    }
    let pool = Mempool::new(MempoolConfig::new("wire-run", 8192))?;
    let mut bridge = Bridge::new(BridgeConfig { seed: params.seed, ..BridgeConfig::default() })?;
    let mut hosts = Vec::new();
    for i in 0..HOSTS {
        let (port, wire) = Veth::new(format!("host{i}"), mac(i), pool.clone());
        let mut conf = PortConf::new(QUEUES);
        conf.rx_offloads = RxOffloads::CHECKSUM;
        port.configure(&conf).map_err(|e| ConfigError::new("port", e.to_string()))?;
        port.start().map_err(|e| ConfigError::new("port", e.to_string()))?;
        let link = PortConfig {
            ingress: Impairments { loss: params.loss, ..Impairments::default() },
            ..PortConfig::default()
        };
        bridge.add_port(Box::new(wire), link)?;
        hosts.push(port);
    }
    let plan = plan_traffic(params);
    let mut tally = Tally::expecting(&plan);
    let mut now = Instant::ZERO;
    for chunk in plan.chunks(HOSTS * 8) {
        send(&hosts, &pool, chunk);
        now = now + PACE;
        bridge.poll(now);
        receive(&hosts, &mut tally);
    }
    let last_send = now;
    while let Some(at) = bridge.poll_at().filter(|&at| at <= last_send + DRAIN) {
        now = now.max(at);
        bridge.poll(now);
        receive(&hosts, &mut tally);
    }
    Ok(report(params, &bridge, &hosts, &pool, plan.len() as u64, tally, now))
}

fn mac(host: usize) -> [u8; 6] {
    [2, 0, 0, 0, 0, 0x10 + host as u8]
}

fn ip(host: usize) -> [u8; 4] {
    [10, 0, 0, 1 + host as u8]
}

/// Every frame of every flow, interleaved in sending order.
fn plan_traffic(params: &WireRun) -> Vec<Planned> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(params.seed);
    let flows: Vec<(usize, usize, FrameSpec)> = (0..params.flows)
        .map(|_| {
            let from = rng.random_range(0..HOSTS);
            let to = (from + rng.random_range(1..HOSTS)) % HOSTS;
            let addrs = IpAddrs::V4 { src: ip(from), dst: ip(to) };
            let (sport, dport) = (rng.random_range(1024..65535), rng.random_range(1..1024));
            let spec = if rng.random_bool(0.5) {
                FrameSpec::tcp(addrs, sport, dport)
            } else {
                FrameSpec::udp(addrs, sport, dport)
            };
            (from, to, spec.macs(mac(from), mac(to)))
        })
        .collect();
    (0..FRAMES_PER_FLOW)
        .flat_map(|seq| {
            flows.iter().enumerate().map(move |(id, (from, to, spec))| Planned {
                from: *from,
                to: *to,
                bytes: spec.build(format!("dtnet flow {id} frame {seq}").as_bytes()),
            })
        })
        .collect()
}

fn send(hosts: &[VethPort], pool: &Mempool, frames: &[Planned]) {
    for (i, host) in hosts.iter().enumerate() {
        let mut burst: Vec<Mbuf> = frames
            .iter()
            .filter(|f| f.from == i)
            .filter_map(|f| {
                let mut m = pool.alloc(Owner(i as u32 + 1))?;
                m.extend_from_slice(&f.bytes).then_some(m)
            })
            .collect();
        host.tx_burst(0, &mut burst);
    }
}

/// What the receivers saw.
#[derive(Default)]
struct Tally {
    delivered: u64,
    misplaced: u64,
    damaged: u64,
    /// Frames still expected: bytes → (destination host, copies left).
    expected: HashMap<Vec<u8>, (usize, u64)>,
}

impl Tally {
    fn expecting(plan: &[Planned]) -> Tally {
        let mut tally = Tally::default();
        for p in plan {
            tally.expected.entry(p.bytes.clone()).or_insert((p.to, 0)).1 += 1;
        }
        tally
    }
}

fn receive(hosts: &[VethPort], tally: &mut Tally) {
    let mut buf = Vec::new();
    for (i, host) in hosts.iter().enumerate() {
        let reta = host.reta_query();
        for q in 0..QUEUES {
            while host.rx_burst(q, &mut buf, 32) > 0 {
                for m in buf.drain(..) {
                    let expected_queue = m.flags().contains(OlFlags::RX_RSS_HASH).then(|| reta.queue(m.rss_hash()));
                    if expected_queue != Some(q) || !m.flags().contains(OlFlags::RX_L4_CKSUM_GOOD) {
                        tally.misplaced += 1;
                    }
                    match tally.expected.get_mut(m.data()) {
                        Some((to, left)) if *left > 0 && *to == i => *left -= 1,
                        _ => tally.damaged += 1,
                    }
                    tally.delivered += 1;
                }
            }
        }
    }
}

fn report(
    params: &WireRun,
    bridge: &Bridge,
    hosts: &[VethPort],
    pool: &Mempool,
    sent: u64,
    tally: Tally,
    now: Instant,
) -> Report {
    let lost: u64 = (0..HOSTS)
        .filter_map(|i| bridge.link_stats(PortId(i as u16), Direction::Ingress))
        .map(|s| s.drops.get(DropReason::Loss))
        .sum();
    let rows: Vec<HostRow> = hosts.iter().map(host_row).collect();
    let port_accounting: Result<(), String> = hosts.iter().try_for_each(|h| h.check_accounting());
    let leaked = pool.in_use() + bridge.pool().in_use();
    let checks = vec![
        check(
            "every frame delivered or counted lost",
            sent == tally.delivered + lost,
            format!("sent {sent}, delivered {}, lost {lost}", tally.delivered),
        ),
        check(
            "delivered frames are byte-identical and go to their destination",
            tally.damaged == 0,
            format!("{} unexpected frames", tally.damaged),
        ),
        check(
            "each frame on reta[hash] with a good L4 checksum",
            tally.misplaced == 0,
            format!("{} misplaced", tally.misplaced),
        ),
        check(
            "bridge accounting closes",
            bridge.check_accounting().is_ok(),
            bridge.check_accounting().err().unwrap_or_default(),
        ),
        check("port accounting closes", port_accounting.is_ok(), port_accounting.err().unwrap_or_default()),
        check("every buffer back in its pool", leaked == 0, format!("{leaked} buffers in use")),
        check("loss near the configured rate", loss_plausible(params.loss, sent, lost), format!("{lost} of {sent}")),
    ];
    Report { sent, delivered: tally.delivered, lost, virtual_time: now, hosts: rows, checks }
}

/// Within five standard deviations of the binomial mean (or exact at 0 and 1).
fn loss_plausible(p: f64, sent: u64, lost: u64) -> bool {
    let mean = p * sent as f64;
    let sd = (sent as f64 * p * (1.0 - p)).sqrt();
    (lost as f64 - mean).abs() <= 5.0 * sd + 0.5
}

fn check(name: &'static str, passed: bool, detail: String) -> Check {
    Check { name, passed, detail }
}

fn host_row(port: &VethPort) -> HostRow {
    let stats = port.stats();
    let xstats = port.xstats();
    let drops = DropReason::ALL
        .iter()
        .filter_map(|&r| {
            let name = format!("rx_drop_{}", r.name());
            let value = xstats.iter().find(|x| x.name == name)?.value;
            (value > 0).then_some((r, value))
        })
        .collect();
    HostRow {
        name: port.name().to_string(),
        tx: stats.opackets,
        rx: stats.ipackets,
        per_queue: stats.q_ipackets,
        drops,
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "dtnet run: {} hosts x {QUEUES} RSS queues on one bridge, virtual time {}",
            HOSTS, self.virtual_time
        )?;
        writeln!(f, "sent {}  delivered {}  lost on links {}", self.sent, self.delivered, self.lost)?;
        writeln!(f)?;
        writeln!(f, "{:<8} {:>8} {:>8}  {:<28} drops", "port", "tx", "rx", "rx per queue")?;
        for h in &self.hosts {
            let queues = h.per_queue.iter().map(u64::to_string).collect::<Vec<_>>().join("/");
            let drops = h.drops.iter().map(|(r, n)| format!("{}={n}", r.name())).collect::<Vec<_>>().join(" ");
            writeln!(
                f,
                "{:<8} {:>8} {:>8}  {:<28} {}",
                h.name,
                h.tx,
                h.rx,
                queues,
                if drops.is_empty() { "-" } else { &drops }
            )?;
        }
        writeln!(f)?;
        for c in &self.checks {
            let detail = if c.detail.is_empty() { String::new() } else { format!(" ({})", c.detail) };
            writeln!(f, "[{}] {}{detail}", if c.passed { "PASS" } else { "FAIL" }, c.name)?;
        }
        writeln!(f, "{}", if self.passed() { "result: PASS" } else { "result: FAIL" })
    }
}

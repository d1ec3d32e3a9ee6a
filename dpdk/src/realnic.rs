//! The real-NIC suite as a library: checks a DPDK device (an SR-IOV VF,
//! a PF, or a vdev) against dtnet's model of it, and measures it.
//!
//! [`run`] sends test frames from one port to another (or to itself on a
//! loopback device) through dtnet's `EthDev` adapter ([`DpdkEthDev`]) and
//! checks what arrives:
//! - `rss_queue`: each test flow lands on the queue dtnet's softrss and the
//!   device's RETA predict, and a hash the device reports equals softrss;
//! - `flow_steering`: a flow rule (TCP to one port -> the last queue) sends
//!   its frames to that queue and no others;
//! - `rx_checksum`: good and bad IPv4 / TCP / UDP checksums get the right
//!   GOOD / BAD flags;
//! - `tx_checksum`: frames sent with zeroed checksums and the offload
//!   flags arrive with valid checksums;
//! - `tso`: a TCP frame sent with TSO arrives as MSS-sized segments with
//!   valid checksums, carrying the payload in order;
//!
//! then measures receive throughput per queue with 64-byte frames, and TCP
//! goodput per receive queue of dtnet's stacks, a group on each port
//! ([`tcp`]). A check
//! the device cannot do (no RSS or RETA, no rte_flow, no such offload) is
//! [`Outcome::Unsupported`] with the reason, never `Passed`, and so is a
//! TCP run the ports cannot carry ([`TcpOutcome::Unsupported`]). The suite is
//! sans-CLI: `dtnet real-nic` parses EAL arguments and [`Options`], calls
//! [`run`] and prints the [`Report`] (its `Display`); the exit status
//! follows [`Report::failed`]. Frames are told apart by a tag in their
//! payload, so stray traffic (a kernel bridge's own frames) is ignored.

mod tcp;

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ethdev::dev::{EthDev, PortConf, RxOffloads, TxOffloads};
use ethdev::error::DevError;
use ethdev::flow::{FlowAction, FlowAttr, FlowItem, ItemSpec, TcpItem};
use ethdev::frame::FrameSpec;
use ethdev::packet::{IpAddrs, PacketMeta};
use ethdev::rss::{Reta, RssConf, RssHashTypes, RssKey};
use ethdev::{MacAddr, Mbuf, Mempool, MempoolConfig, OlFlags, Owner};
use user_veth::offload::verify_checksums;

use crate::eal::Eal;
use crate::error::Error;
use crate::mempool::{PktPool, PoolConf};
use crate::DpdkEthDev;

pub use tcp::{TcpOutcome, TcpQueueRate, TcpThroughput, CONNS_PER_STACK};

/// Marks a test frame's payload; the frame's index follows.
const TAG: &[u8; 4] = b"dtRN";
/// How long to wait for frames after the last one arrived.
const IDLE: Duration = Duration::from_millis(300);
/// Times an exchange sends its frames when none arrive.
const ROUNDS: usize = 3;
/// The longest wait for one exchange.
const EXCHANGE: Duration = Duration::from_secs(5);
/// The longest wait for a port's link to come up after a start.
const LINK_WAIT: Duration = Duration::from_secs(5);
/// Payload size of TSO segments in the `tso` check.
const TSO_SEGMENT: u16 = 400;
/// The TCP destination port the `flow_steering` rule matches.
const STEERED_PORT: u16 = 5001;
/// Bytes of a minimum-size frame without its FCS.
const MIN_FRAME: usize = 60;

/// What to test and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// The port test frames are sent from (a vdev name, or a PCI address
    /// given to the EAL with `-a`).
    pub tx_port: String,
    /// The port they arrive on; the same as `tx_port` for a loopback device.
    pub rx_port: String,
    /// Receive queues for the RSS, flow and throughput checks.
    pub queues: u16,
    /// Test flows in the RSS check.
    pub flows: usize,
    /// Length of the throughput run.
    pub duration: Duration,
    /// Seed of the flows and the RSS key.
    pub seed: u64,
    /// Payload bytes of each TCP connection in the TCP run.
    pub tcp_bytes: u64,
}

impl Options {
    /// Four queues, 256 flows, one second of throughput, seed 1, 32 MiB
    /// per TCP connection.
    pub fn new(tx_port: impl Into<String>, rx_port: impl Into<String>) -> Options {
        Options {
            tx_port: tx_port.into(),
            rx_port: rx_port.into(),
            queues: 4,
            flows: 256,
            duration: Duration::from_secs(1),
            seed: 1,
            tcp_bytes: 32 << 20,
        }
    }
}

/// How one check went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The device did what dtnet's model says; how it was shown.
    Passed(String),
    /// It did not; what went wrong.
    Failed(String),
    /// The device cannot do what the check needs; why.
    Unsupported(String),
}

impl Outcome {
    /// The verdict as reports print it: `passed`, `FAILED` or
    /// `unsupported by device`.
    pub fn verdict(&self) -> &'static str {
        match self {
            Outcome::Passed(_) => "passed",
            Outcome::Failed(_) => "FAILED",
            Outcome::Unsupported(_) => "unsupported by device",
        }
    }

    /// How it was shown, what went wrong, or why the device cannot.
    pub fn detail(&self) -> &str {
        match self {
            Outcome::Passed(d) | Outcome::Failed(d) | Outcome::Unsupported(d) => d,
        }
    }
}

/// One named check and its outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    /// `rss_queue`, `flow_steering`, `rx_checksum`, `tx_checksum` or `tso`.
    pub name: &'static str,
    /// How it went.
    pub outcome: Outcome,
}

/// Frames one receive queue took during the throughput run.
#[derive(Clone, Debug, PartialEq)]
pub struct QueueRate {
    /// The queue.
    pub queue: u16,
    /// Test frames it received.
    pub frames: u64,
    /// Millions of frames per second.
    pub mpps: f64,
}

/// The throughput run: 64-byte frames (60 without FCS) over many flows.
#[derive(Clone, Debug, PartialEq)]
pub struct Throughput {
    /// Seconds the run lasted.
    pub seconds: f64,
    /// Frames the transmit queue took.
    pub sent: u64,
    /// Each receive queue's share.
    pub queues: Vec<QueueRate>,
}

/// What [`run`] found.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// Driver of the transmitting port.
    pub tx_driver: String,
    /// Driver of the receiving port.
    pub rx_driver: String,
    /// Every check, in the order run.
    pub checks: Vec<Check>,
    /// The throughput run, or why it could not run.
    pub throughput: Result<Throughput, String>,
    /// The TCP run.
    pub tcp: TcpOutcome,
}

impl Report {
    /// Whether any check failed (unsupported checks do not fail the suite).
    pub fn failed(&self) -> bool {
        self.checks.iter().any(|c| matches!(c.outcome, Outcome::Failed(_)))
            || self.throughput.is_err()
            || matches!(self.tcp, TcpOutcome::Failed(_))
    }

    /// The outcome of check `name`.
    pub fn outcome(&self, name: &str) -> Option<&Outcome> {
        self.checks.iter().find(|c| c.name == name).map(|c| &c.outcome)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "real-NIC suite: tx {} -> rx {}", self.tx_driver, self.rx_driver)?;
        for check in &self.checks {
            writeln!(f, "  {:<14} {}: {}", check.name, check.outcome.verdict(), check.outcome.detail())?;
        }
        match &self.throughput {
            Ok(t) => {
                let total: f64 = t.queues.iter().map(|q| q.mpps).sum();
                writeln!(
                    f,
                    "  throughput     {total:.3} Mpps received at 64 bytes ({} sent in {:.2} s)",
                    t.sent, t.seconds
                )?;
                for q in &t.queues {
                    writeln!(f, "    queue {:<3} {:.3} Mpps ({} frames)", q.queue, q.mpps, q.frames)?;
                }
            }
            Err(why) => writeln!(f, "  throughput     FAILED: {why}")?,
        }
        match &self.tcp {
            TcpOutcome::Measured(t) => {
                writeln!(
                    f,
                    "  tcp            {:.3} Gbit/s received over {} connections of {} bytes in {:.2} s",
                    t.gbps(),
                    t.conns(),
                    t.bytes_per_conn,
                    t.seconds
                )?;
                for q in &t.queues {
                    writeln!(f, "    queue {:<3} {:.3} Gbit/s TCP ({} connections)", q.queue, q.gbps, q.conns)?;
                }
                Ok(())
            }
            TcpOutcome::Failed(why) => writeln!(f, "  tcp            FAILED: {why}"),
            TcpOutcome::Unsupported(why) => writeln!(f, "  tcp            unsupported by device: {why}"),
        }
    }
}

/// Runs the suite on the ports `options` names (see the module docs). An
/// error is a set-up failure (a missing port, a pool the EAL cannot make,
/// a port that cannot be configured at all); everything a device cannot do
/// is in the report.
pub fn run(eal: &Eal, options: &Options) -> Result<Report, Error> {
    if options.queues == 0 || options.flows == 0 {
        return Err(Error::BadArgument("real-NIC suite: queues and flows must be at least 1".into()));
    }
    // Pools live as long as the EAL: each run makes its own.
    static RUNS: AtomicU32 = AtomicU32::new(0);
    let run = RUNS.fetch_add(1, Ordering::Relaxed);
    // Room for a NIC's filled receive rings on both ports (the stack groups'
    // 1024 descriptors a queue) besides the frames in flight.
    let mbufs = 4096 + 2048 * u32::from(options.queues);
    let pool = PktPool::new(eal, &format!("dtnet_realnic{run}"), PoolConf { mbufs, ..PoolConf::default() })?;
    let mbufs = Mempool::new(MempoolConfig::new(format!("dtnet-realnic{run}"), 4096))
        .map_err(|e| Error::BadArgument(format!("real-NIC suite: dtnet pool: {e}")))?;
    let tx_id = eal.port_by_name(&options.tx_port)?;
    let rx_id = eal.port_by_name(&options.rx_port)?;
    let tx = Arc::new(DpdkEthDev::new(eal, tx_id, &pool, mbufs.clone())?);
    let rx =
        if rx_id == tx_id { Arc::clone(&tx) } else { Arc::new(DpdkEthDev::new(eal, rx_id, &pool, mbufs.clone())?) };
    let mut bench = Bench { tx, rx, mbufs, started: false, options: options.clone() };
    let checks = vec![
        Check { name: "rss_queue", outcome: bench.rss_queue() },
        Check { name: "flow_steering", outcome: bench.flow_steering() },
        Check { name: "rx_checksum", outcome: bench.rx_checksum() },
        Check { name: "tx_checksum", outcome: bench.tx_checksum() },
        Check { name: "tso", outcome: bench.tso() },
    ];
    let throughput = bench.throughput().map_err(|e| e.to_string());
    let tcp = bench.tcp();
    Ok(Report {
        tx_driver: bench.tx.info().driver.to_owned(),
        rx_driver: bench.rx.info().driver.to_owned(),
        checks,
        throughput,
        tcp,
    })
}

/// A frame that arrived, with what the device said about it.
struct Received {
    queue: u16,
    frame: Vec<u8>,
    flags: OlFlags,
    rss_hash: Option<u32>,
}

/// The two ports under test.
struct Bench {
    tx: Arc<DpdkEthDev>,
    rx: Arc<DpdkEthDev>,
    mbufs: Mempool,
    started: bool,
    options: Options,
}

impl Bench {
    /// The rx queues the checks use: as many as asked for and the device has.
    /// Every check polls them all: a device (or a kernel tap) may hold frames
    /// in any queue it has.
    fn queues(&self) -> u16 {
        self.options.queues.min(self.rx.info().max_rx_queues).max(1)
    }

    fn same_port(&self) -> bool {
        Arc::ptr_eq(&self.tx, &self.rx)
    }

    /// (Re)configures and starts the ports: the receiving one with
    /// `rx_conf`, the transmitting one with one queue and `tx_offloads`.
    fn setup(&mut self, rx_conf: &PortConf, tx_offloads: TxOffloads) -> Result<(), DevError> {
        self.stop()?;
        // On a loopback device the one port also transmits.
        let rx_tx_offloads = if self.same_port() { tx_offloads } else { TxOffloads::empty() };
        self.rx.configure(&PortConf { tx_offloads: rx_tx_offloads, ..rx_conf.clone() })?;
        if !self.same_port() {
            let tx_conf = PortConf { rss_types: RssHashTypes::empty(), tx_offloads, ..PortConf::new(1) };
            self.tx.configure(&tx_conf)?;
            self.tx.start()?;
        }
        self.rx.start()?;
        self.started = true;
        // Frames sent before a link is up may be lost or held back (a real
        // NIC negotiates for a while; a tap comes up with its interface).
        for port in [&self.tx, &self.rx] {
            let start = Instant::now();
            while !port.link()?.up && start.elapsed() < LINK_WAIT {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        Ok(())
    }

    /// Stops the ports, if started.
    fn stop(&mut self) -> Result<(), DevError> {
        if self.started {
            self.rx.stop()?;
            if !self.same_port() {
                self.tx.stop()?;
            }
            self.started = false;
        }
        Ok(())
    }

    /// The TCP run ([`tcp`]): two ports, a stack group on each.
    fn tcp(&mut self) -> TcpOutcome {
        if self.same_port() {
            let why = "a loopback port (--tx = --rx) cannot carry TCP between two stack groups: name two ports";
            return TcpOutcome::Unsupported(why.into());
        }
        if let Err(e) = self.stop() {
            return TcpOutcome::Failed(format!("stopping the ports: {e}"));
        }
        let stacks = tcp::stacks(&self.tx, &self.rx, self.queues());
        // The stack groups configure and start the ports.
        self.started = true;
        tcp::run(&self.tx, &self.rx, &self.mbufs, stacks, self.options.tcp_bytes)
    }

    /// A plain receive configuration with `queues` queues and no RSS.
    fn plain(queues: u16) -> PortConf {
        PortConf { rss_types: RssHashTypes::empty(), rx_ring_size: 512, tx_ring_size: 512, ..PortConf::new(queues) }
    }

    /// The MACs test frames carry: from the tx port to the rx port.
    fn macs(&self) -> Result<(MacAddr, MacAddr), DevError> {
        Ok((self.tx.mac_addr()?, self.rx.mac_addr()?))
    }

    /// Sends `frames` (mbufs whose payloads carry [`TAG`]) from tx queue 0
    /// and collects every tagged frame that arrives on any rx queue, until
    /// `expected` have arrived or the port stays quiet.
    fn exchange(&self, frames: Vec<Mbuf>, expected: usize) -> Result<Vec<Received>, DevError> {
        self.exchange_where(frames, expected, tagged)
    }

    /// [`Bench::exchange`], keeping the frames `keep` picks. If nothing at
    /// all arrives, the frames are sent again (up to [`ROUNDS`] times): a
    /// link that just came up may lose or hold back the first frames. A
    /// frame that arrives twice (a late first copy) is kept once.
    fn exchange_where(
        &self,
        frames: Vec<Mbuf>,
        expected: usize,
        keep: fn(&[u8]) -> bool,
    ) -> Result<Vec<Received>, DevError> {
        let mut tx = self.tx.tx_queue(0)?;
        let mut rxs = (0..self.queues()).map_while(|q| self.rx.rx_queue(q).ok()).collect::<Vec<_>>();
        let (mut got, mut burst): (Vec<Received>, Vec<Mbuf>) = (Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            let mut pending = frames.iter().map(|m| self.copy(m)).collect::<Result<Vec<_>, _>>()?;
            let start = Instant::now();
            let mut last = start;
            while start.elapsed() < EXCHANGE && (got.len() < expected || !pending.is_empty()) {
                if !pending.is_empty() && tx.tx_burst(&mut pending) > 0 {
                    last = Instant::now();
                }
                for (q, rx) in rxs.iter_mut().enumerate() {
                    rx.rx_burst(&mut burst, 64);
                    for mbuf in burst.drain(..) {
                        last = Instant::now();
                        if keep(mbuf.data()) && !got.iter().any(|r| r.frame == mbuf.data()) {
                            let rss_hash = mbuf.flags().contains(OlFlags::RX_RSS_HASH).then(|| mbuf.rss_hash());
                            let frame = mbuf.data().to_vec();
                            got.push(Received { queue: q as u16, frame, flags: mbuf.flags(), rss_hash });
                        }
                    }
                }
                if pending.is_empty() && last.elapsed() > IDLE {
                    break;
                }
            }
            if !got.is_empty() {
                break;
            }
        }
        Ok(got)
    }

    /// A copy of `mbuf`, data and metadata (offload requests included).
    fn copy(&self, mbuf: &Mbuf) -> Result<Mbuf, DevError> {
        let mut copy = self.mbuf(mbuf.data(), mbuf.flags())?;
        copy.copy_metadata_from(mbuf);
        Ok(copy)
    }

    fn rss_queue(&mut self) -> Outcome {
        let info = self.rx.info();
        let queues = self.options.queues;
        if queues < 2 || info.max_rx_queues < queues {
            let max = info.max_rx_queues;
            return Outcome::Unsupported(format!(
                "RSS needs 2 or more rx queues: {queues} asked for, the device has {max}"
            ));
        }
        let Some(&reta_size) = info.reta_sizes.first() else {
            return Outcome::Unsupported("the device reports no RETA".into());
        };
        let types = info.rss_types & RssHashTypes::all();
        if types.is_empty() {
            return Outcome::Unsupported("the device hashes on no IPv4/IPv6 TCP/UDP type".into());
        }
        let key = match info.rss_key_sizes.first() {
            Some(&len) => random_key(self.options.seed, len),
            None => RssKey::DEFAULT,
        };
        let conf = PortConf { rss_types: types, rss_key: key, reta_size, ..Bench::plain(queues) };
        let reta = match self.setup(&conf, TxOffloads::empty()).and_then(|()| self.rx.reta_query()) {
            Ok(reta) => reta,
            Err(DevError::Unsupported(why)) => return Outcome::Unsupported(why),
            Err(e) => return Outcome::Failed(format!("set-up: {e}")),
        };
        self.check_rss(key, types, reta)
    }

    fn check_rss(&self, key: RssKey, types: RssHashTypes, reta: Reta) -> Outcome {
        let rss = RssConf::from_parts(key, types, reta);
        let frames = match self.macs().and_then(|macs| self.flow_frames(macs)) {
            Ok(frames) => frames,
            Err(e) => return Outcome::Failed(e.to_string()),
        };
        let expected = frames.len();
        let got = match self.exchange(frames, expected) {
            Ok(got) => got,
            Err(e) => return Outcome::Failed(e.to_string()),
        };
        rss_verdict(&rss, &got, expected)
    }

    /// `options.flows` TCP and UDP frames over IPv4 and IPv6, random tuples.
    fn flow_frames(&self, (src, dst): (MacAddr, MacAddr)) -> Result<Vec<Mbuf>, DevError> {
        let mut rng = Lcg(self.options.seed);
        (0..self.options.flows)
            .map(|i| {
                let ip = if i % 2 == 0 {
                    IpAddrs::V4 { src: rng.bytes(), dst: rng.bytes() }
                } else {
                    IpAddrs::V6 { src: rng.bytes(), dst: rng.bytes() }
                };
                let (sport, dport) = (rng.next() as u16, rng.next() as u16);
                let spec = if i % 4 < 2 { FrameSpec::tcp(ip, sport, dport) } else { FrameSpec::udp(ip, sport, dport) };
                self.mbuf(&spec.macs(src, dst).build(&payload(i)), OlFlags::empty())
            })
            .collect()
    }

    /// `frame` in a dtnet mbuf asking for `flags`.
    fn mbuf(&self, frame: &[u8], flags: OlFlags) -> Result<Mbuf, DevError> {
        let mut mbuf = self.mbufs.alloc(Owner::NONE).ok_or_else(|| DevError::Unsupported("dtnet pool empty".into()))?;
        if !mbuf.extend_from_slice(frame) {
            return Err(DevError::Unsupported(format!("a {}-byte test frame does not fit a dtnet mbuf", frame.len())));
        }
        mbuf.set_flags(flags);
        Ok(mbuf)
    }

    fn flow_steering(&mut self) -> Outcome {
        let queues = self.queues();
        if queues < 2 {
            return Outcome::Unsupported("steering needs two rx queues".into());
        }
        if let Err(e) = self.setup(&Bench::plain(queues), TxOffloads::empty()) {
            return Outcome::Failed(format!("set-up: {e}"));
        }
        let target = queues - 1;
        let pattern = [
            FlowItem::Eth(ItemSpec::ANY),
            FlowItem::Ipv4(ItemSpec::ANY),
            FlowItem::Tcp(ItemSpec::new(TcpItem { dst_port: STEERED_PORT, ..TcpItem::default() })),
        ];
        let rule = match self.rx.flow_create(&FlowAttr::ingress(0), &pattern, &[FlowAction::Queue(target)]) {
            Ok(rule) => rule,
            Err(DevError::Unsupported(why)) => return Outcome::Unsupported(why),
            Err(e) => return Outcome::Failed(format!("flow_create: {e}")),
        };
        let outcome = self.check_steering(target);
        if let Err(e) = self.rx.flow_destroy(rule) {
            return Outcome::Failed(format!("flow_destroy: {e}"));
        }
        outcome
    }

    fn check_steering(&self, target: u16) -> Outcome {
        let ip = IpAddrs::V4 { src: [10, 9, 0, 1], dst: [10, 9, 0, 2] };
        let frames: Result<Vec<Mbuf>, DevError> = self.macs().and_then(|(src, dst)| {
            (0..64)
                .map(|i| {
                    let dport = if i % 2 == 0 { STEERED_PORT } else { STEERED_PORT + 1 };
                    let spec = FrameSpec::tcp(ip, 1024 + i as u16, dport).macs(src, dst);
                    self.mbuf(&spec.build(&payload(i)), OlFlags::empty())
                })
                .collect()
        });
        let got = match frames.and_then(|frames| self.exchange(frames, 64)) {
            Ok(got) => got,
            Err(e) => return Outcome::Failed(e.to_string()),
        };
        let steered =
            |r: &Received| PacketMeta::parse(&r.frame).ok().and_then(|m| m.ports).map(|p| p.1) == Some(STEERED_PORT);
        let (hits, misses): (Vec<&Received>, Vec<&Received>) = got.iter().partition(|r| steered(r));
        let astray = hits.iter().filter(|r| r.queue != target).count();
        if hits.len() != 32 {
            Outcome::Failed(format!("{} of 32 matching frames arrived", hits.len()))
        } else if astray > 0 {
            Outcome::Failed(format!("{astray} of 32 matching frames missed queue {target}"))
        } else {
            Outcome::Passed(format!("32 matching frames on queue {target}, {} others elsewhere", misses.len()))
        }
    }

    fn rx_checksum(&mut self) -> Outcome {
        if !self.rx.info().rx_offloads.contains(RxOffloads::CHECKSUM) {
            return Outcome::Unsupported("the device verifies no receive checksums".into());
        }
        let conf = PortConf { rx_offloads: RxOffloads::CHECKSUM, ..Bench::plain(self.queues()) };
        if let Err(e) = self.setup(&conf, TxOffloads::empty()) {
            return Outcome::Failed(format!("set-up: {e}"));
        }
        // (frame, expected flags) for good and corrupted checksums.
        let cases = match self.checksum_cases() {
            Ok(cases) => cases,
            Err(e) => return Outcome::Failed(e.to_string()),
        };
        let expected: Vec<OlFlags> = cases.iter().map(|c| c.1).collect();
        let frames: Result<Vec<Mbuf>, DevError> = cases.iter().map(|(f, _)| self.mbuf(f, OlFlags::empty())).collect();
        let got = match frames.and_then(|frames| self.exchange(frames, expected.len())) {
            Ok(got) => got,
            Err(e) => return Outcome::Failed(e.to_string()),
        };
        let mask =
            OlFlags::RX_IP_CKSUM_GOOD | OlFlags::RX_IP_CKSUM_BAD | OlFlags::RX_L4_CKSUM_GOOD | OlFlags::RX_L4_CKSUM_BAD;
        let mut wrong = Vec::new();
        for r in &got {
            let Some(i) = tag_index(&r.frame) else { continue };
            let Some(&want) = expected.get(i) else { continue };
            if r.flags & mask != want {
                wrong.push(format!("case {i}: {:?}, expected {want:?}", r.flags & mask));
            }
        }
        match wrong.first() {
            _ if got.len() != expected.len() => {
                Outcome::Failed(format!("{} of {} frames arrived", got.len(), expected.len()))
            }
            None => Outcome::Passed(format!("{} good and bad checksums flagged right", got.len())),
            Some(first) => Outcome::Failed(format!("{} wrong flags, e.g. {first}", wrong.len())),
        }
    }

    /// Frames with good and corrupted checksums, each with the flags a
    /// device must report for it.
    fn checksum_cases(&self) -> Result<Vec<(Vec<u8>, OlFlags)>, DevError> {
        let (src, dst) = self.macs()?;
        let ip = IpAddrs::V4 { src: [10, 8, 0, 1], dst: [10, 8, 0, 2] };
        let tcp = FrameSpec::tcp(ip, 1000, 80).macs(src, dst);
        let udp = FrameSpec::udp(ip, 1001, 53).macs(src, dst);
        let good = OlFlags::RX_IP_CKSUM_GOOD | OlFlags::RX_L4_CKSUM_GOOD;
        let mut cases = vec![
            (tcp.build(&payload(0)), good),
            (udp.build(&payload(1)), good),
            (tcp.build(&payload(2)), OlFlags::RX_IP_CKSUM_BAD),
            (tcp.build(&payload(3)), OlFlags::RX_IP_CKSUM_GOOD | OlFlags::RX_L4_CKSUM_BAD),
            (udp.build(&payload(4)), OlFlags::RX_IP_CKSUM_GOOD | OlFlags::RX_L4_CKSUM_BAD),
        ];
        // Corrupt the IPv4 checksum of case 2 and the L4 checksums of 3 and 4.
        cases[2].0[14 + 10] ^= 0x5a;
        cases[3].0[14 + 20 + 16] ^= 0x5a;
        cases[4].0[14 + 20 + 6] ^= 0x5a;
        // A device may leave L4 unchecked when the IP header is bad; the
        // GOOD/BAD L4 verdict of case 2 is taken as the frame has it.
        let l4 = verify_checksums(
            &cases[2].0,
            &PacketMeta::parse(&cases[2].0).map_err(|e| DevError::Unsupported(e.to_string()))?,
        );
        cases[2].1 |= l4 & (OlFlags::RX_L4_CKSUM_GOOD | OlFlags::RX_L4_CKSUM_BAD);
        Ok(cases)
    }

    fn tx_checksum(&mut self) -> Outcome {
        let wanted = TxOffloads::IPV4_CKSUM | TxOffloads::L4_CKSUM;
        if !self.tx.info().tx_offloads.contains(wanted) {
            return Outcome::Unsupported("the device fills in no IPv4 and TCP/UDP checksums".into());
        }
        if let Err(e) = self.setup(&Bench::plain(self.queues()), wanted) {
            return Outcome::Failed(format!("set-up: {e}"));
        }
        let cases = match self.checksum_cases() {
            Ok(cases) => cases,
            Err(e) => return Outcome::Failed(e.to_string()),
        };
        let frames: Result<Vec<Mbuf>, DevError> = cases
            .iter()
            .map(|(frame, _)| {
                let mut frame = frame.clone();
                zero_checksums(&mut frame);
                self.mbuf(&frame, OlFlags::TX_IP_CKSUM | OlFlags::TX_L4_CKSUM)
            })
            .collect();
        let got = match frames.and_then(|frames| self.exchange(frames, cases.len())) {
            Ok(got) => got,
            Err(e) => return Outcome::Failed(e.to_string()),
        };
        let bad = got.iter().filter(|r| !checksums_valid(&r.frame)).count();
        if got.len() != cases.len() {
            Outcome::Failed(format!("{} of {} frames arrived", got.len(), cases.len()))
        } else if bad > 0 {
            Outcome::Failed(format!("{bad} of {} frames arrived with wrong checksums", got.len()))
        } else {
            Outcome::Passed(format!("{} frames sent with zeroed checksums arrived valid", got.len()))
        }
    }

    fn tso(&mut self) -> Outcome {
        let wanted = TxOffloads::IPV4_CKSUM | TxOffloads::L4_CKSUM | TxOffloads::TCP_TSO;
        if !self.tx.info().tx_offloads.contains(wanted) {
            return Outcome::Unsupported("the device has no TCP segmentation offload".into());
        }
        if let Err(e) = self.setup(&Bench::plain(self.queues()), wanted) {
            return Outcome::Failed(format!("set-up: {e}"));
        }
        let data: Vec<u8> = payload(0).into_iter().chain((0..4 * usize::from(TSO_SEGMENT)).map(|i| i as u8)).collect();
        let frame = self.macs().map(|(src, dst)| {
            let ip = IpAddrs::V4 { src: [10, 7, 0, 1], dst: [10, 7, 0, 2] };
            FrameSpec::tcp(ip, 4000, 80).macs(src, dst).build(&data)
        });
        let mbuf = frame.and_then(|f| self.mbuf(&f, OlFlags::TX_IP_CKSUM | OlFlags::TX_L4_CKSUM)).map(|mut m| {
            m.request_tso(TSO_SEGMENT);
            m
        });
        // Only the first segment carries the tag: keep the flow's frames.
        let of_flow = |f: &[u8]| PacketMeta::parse(f).ok().and_then(|m| m.ports) == Some((4000, 80));
        let got = match mbuf.and_then(|m| self.exchange_where(vec![m], 5, of_flow)) {
            Ok(got) => got,
            Err(e) => return Outcome::Failed(e.to_string()),
        };
        let segments: Vec<&Vec<u8>> = got.iter().map(|r| &r.frame).collect();
        let carried: Vec<u8> = segments.iter().flat_map(|s| tcp_payload(s).to_vec()).collect();
        if segments.iter().any(|s| !checksums_valid(s)) {
            Outcome::Failed("a segment arrived with wrong checksums".into())
        } else if carried != data || segments.len() != 5 {
            Outcome::Failed(format!(
                "{} segments carrying {} of {} bytes in order",
                segments.len(),
                carried.len(),
                data.len()
            ))
        } else {
            Outcome::Passed(format!("one {}-byte TCP payload arrived as 5 valid segments", data.len()))
        }
    }

    fn throughput(&mut self) -> Result<Throughput, DevError> {
        let info = self.rx.info();
        let queues = self.queues();
        let rss = info.rss_types & RssHashTypes::all();
        let reta_size = info.reta_sizes.first().copied().unwrap_or(128);
        let conf = PortConf {
            rss_types: if queues > 1 { rss } else { RssHashTypes::empty() },
            reta_size,
            ..Bench::plain(queues)
        };
        self.setup(&conf, TxOffloads::empty()).or_else(|_| self.setup(&Bench::plain(1), TxOffloads::empty()))?;
        let (src, dst) = self.macs()?;
        let templates: Vec<Vec<u8>> = (0..64u16)
            .map(|i| {
                let ip = IpAddrs::V4 { src: [10, 6, 0, i as u8], dst: [10, 6, 1, 1] };
                let mut frame = FrameSpec::udp(ip, 2000 + i, 9).macs(src, dst).build(TAG);
                frame.resize(MIN_FRAME.max(frame.len()), 0);
                frame
            })
            .collect();
        let mut tx = self.tx.tx_queue(0)?;
        let mut rxs: Vec<_> = (0..queues).map_while(|q| self.rx.rx_queue(q).ok()).collect();
        let mut counts = vec![0u64; rxs.len()];
        let (mut burst, mut out, mut sent) = (Vec::new(), Vec::new(), 0u64);
        let start = Instant::now();
        while start.elapsed() < self.options.duration {
            while burst.len() < 32 {
                let frame = &templates[(sent as usize + burst.len()) % templates.len()];
                burst.push(self.mbuf(frame, OlFlags::empty())?);
            }
            sent += tx.tx_burst(&mut burst) as u64;
            for (q, rx) in rxs.iter_mut().enumerate() {
                rx.rx_burst(&mut out, 64);
                counts[q] += out.drain(..).filter(|m| tagged(m.data())).count() as u64;
            }
        }
        let seconds = start.elapsed().as_secs_f64();
        let queues = counts
            .iter()
            .enumerate()
            .map(|(q, &frames)| QueueRate { queue: q as u16, frames, mpps: frames as f64 / seconds / 1e6 })
            .collect();
        Ok(Throughput { seconds, sent, queues })
    }
}

/// Whether each of `got` (of `expected` flows) arrived on the queue, and
/// with the hash, that `rss` predicts.
fn rss_verdict(rss: &RssConf, got: &[Received], expected: usize) -> Outcome {
    let mut wrong = Vec::new();
    for r in got {
        let Ok(meta) = PacketMeta::parse(&r.frame) else { continue };
        let Some((hash, queue)) = rss.queue_for(&meta) else { continue };
        if r.queue != queue || r.rss_hash.is_some_and(|h| h != hash) {
            wrong.push(format!(
                "{:?}: queue {} (predicted {queue}), hash {:?} (softrss {hash:#x})",
                meta.ip, r.queue, r.rss_hash
            ));
        }
    }
    match (got.len(), wrong.first()) {
        (0, _) => Outcome::Failed(format!("none of {expected} test flows arrived")),
        (n, None) if n == expected => Outcome::Passed(format!("{n} flows on their predicted queues")),
        (n, None) => Outcome::Failed(format!("{n} of {expected} flows arrived, each on its predicted queue")),
        (_, Some(first)) => {
            Outcome::Failed(format!("{} of {} flows mispredicted, e.g. {first}", wrong.len(), got.len()))
        }
    }
}

/// The payload of test frame `index`: the tag, the index, padding.
fn payload(index: usize) -> Vec<u8> {
    let mut bytes = TAG.to_vec();
    bytes.extend_from_slice(&(index as u32).to_be_bytes());
    bytes.resize(32, 0xa5);
    bytes
}

/// The TCP/UDP payload of `frame` (empty if it has none).
fn tcp_payload(frame: &[u8]) -> &[u8] {
    let Ok(meta) = PacketMeta::parse(frame) else { return &[] };
    let l4 = usize::from(meta.l4_offset);
    let header = match meta.ip_proto {
        Some(6) => frame.get(l4 + 12).map_or(0, |b| usize::from(b >> 4) * 4),
        Some(17) => 8,
        _ => return &[],
    };
    let end = match meta.ip {
        Some(IpAddrs::V4 { .. }) => frame.get(meta.l3_offset as usize + 2..meta.l3_offset as usize + 4),
        _ => None,
    }
    .map_or(frame.len(), |len| usize::from(meta.l3_offset) + usize::from(u16::from_be_bytes([len[0], len[1]])));
    frame.get(l4 + header..end.min(frame.len())).unwrap_or(&[])
}

/// Whether `frame` is one of the suite's (its payload starts with [`TAG`]).
fn tagged(frame: &[u8]) -> bool {
    tcp_payload(frame).starts_with(TAG)
}

/// The index a test frame carries after its tag.
fn tag_index(frame: &[u8]) -> Option<usize> {
    let index = tcp_payload(frame).get(4..8)?;
    Some(u32::from_be_bytes(index.try_into().ok()?) as usize)
}

/// Zeroes the IPv4 header and TCP/UDP checksums of an untagged IPv4 frame.
fn zero_checksums(frame: &mut [u8]) {
    let Ok(meta) = PacketMeta::parse(frame) else { return };
    let (l3, l4) = (usize::from(meta.l3_offset), usize::from(meta.l4_offset));
    frame[l3 + 10..l3 + 12].fill(0);
    let field = l4 + if meta.ip_proto == Some(6) { 16 } else { 6 };
    frame[field..field + 2].fill(0);
}

/// Whether the IPv4 header and TCP/UDP checksums of `frame` are valid.
fn checksums_valid(frame: &[u8]) -> bool {
    let Ok(meta) = PacketMeta::parse(frame) else { return false };
    let flags = verify_checksums(frame, &meta);
    flags.contains(OlFlags::RX_IP_CKSUM_GOOD | OlFlags::RX_L4_CKSUM_GOOD)
}

/// A key of `len` bytes from `seed`.
fn random_key(seed: u64, len: usize) -> RssKey {
    let mut rng = Lcg(seed ^ 0x006b_6579);
    let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
    RssKey::new(&bytes).unwrap_or(RssKey::DEFAULT)
}

/// A small deterministic generator for test tuples (no dependency needed
/// for a few hundred random addresses).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn bytes<const N: usize>(&mut self) -> [u8; N] {
        std::array::from_fn(|_| self.next() as u8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frames of `flows` random flows, each as a device following `rss`
    /// would deliver it (its queue, its hash), then `tamper`ed with.
    fn delivered(rss: &RssConf, flows: usize, tamper: impl Fn(usize, &mut Received)) -> Vec<Received> {
        let mut rng = Lcg(9);
        (0..flows)
            .map(|i| {
                let ip = IpAddrs::V4 { src: rng.bytes(), dst: rng.bytes() };
                let frame = FrameSpec::tcp(ip, rng.next() as u16, rng.next() as u16).build(&payload(i));
                let (hash, queue) = rss.queue_for(&PacketMeta::parse(&frame).unwrap()).unwrap();
                let mut r = Received { queue, frame, flags: OlFlags::RX_RSS_HASH, rss_hash: Some(hash) };
                tamper(i, &mut r);
                r
            })
            .collect()
    }

    #[test]
    fn the_rss_check_passes_only_when_every_flow_lands_where_softrss_says() {
        let rss = RssConf::from_parts(random_key(3, 40), RssHashTypes::all(), Reta::new(128, 4).unwrap());
        let right = delivered(&rss, 64, |_, _| {});
        assert!(matches!(rss_verdict(&rss, &right, 64), Outcome::Passed(_)));
        let queue = delivered(&rss, 64, |i, r| {
            if i == 5 {
                r.queue = (r.queue + 1) % 4
            }
        });
        assert!(matches!(rss_verdict(&rss, &queue, 64), Outcome::Failed(m) if m.contains("1 of 64")));
        let hash = delivered(&rss, 64, |i, r| {
            if i == 7 {
                r.rss_hash = r.rss_hash.map(|h| h ^ 1)
            }
        });
        assert!(matches!(rss_verdict(&rss, &hash, 64), Outcome::Failed(_)));
        assert!(matches!(rss_verdict(&rss, &right[..10], 64), Outcome::Failed(m) if m.contains("10 of 64")));
        assert!(matches!(rss_verdict(&rss, &[], 64), Outcome::Failed(_)));
    }

    #[test]
    fn payload_tags_are_found_in_tcp_and_udp_frames() {
        let ip = IpAddrs::V6 { src: [1; 16], dst: [2; 16] };
        for frame in [FrameSpec::tcp(ip, 1, 2).build(&payload(42)), FrameSpec::udp(ip, 1, 2).build(&payload(42))] {
            assert!(tagged(&frame));
            assert_eq!(tag_index(&frame), Some(42));
        }
        assert!(!tagged(&FrameSpec::udp(ip, 1, 2).build(b"other")));
        assert!(!tagged(&[0u8; 10]), "a runt is no test frame");
    }
}

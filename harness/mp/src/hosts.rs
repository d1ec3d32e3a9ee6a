//! The two hosts of the samples' shared ports, played by the primary:
//! numbered UDP frames of many flows into each port, and every frame that
//! comes out of the other port checked. Host p sits at port p's cable end
//! (the port's wire itself), or on a bridge with it ([`crate::lan`]): the
//! [`Links`] between hosts and ports say which. Host p addresses its frames
//! to host p^1, so the ports take them in promiscuous mode, as DPDK's
//! samples set their ports.
//!
//! Frame `i` sent into port `p` belongs to flow `i % FLOWS` with sequence
//! `i / FLOWS`, and its payload says so: it is the flow's template
//! ([`Templates`], built once) with the sequence written in, so the sink
//! checks every byte against the template without building anything. In ordered mode (each flow crosses one process, as with
//! RSS or flow-hash distribution) the sink also checks flow order and counts
//! each missing sequence number as a gap; in unordered mode (round-robin
//! distribution reorders a flow) it checks that no frame arrives twice.
//! The sink also records which process forwarded each flow (the mark the
//! forwarder sets). Sending is paced so that the frames in flight never
//! exceed a window, which the samples size below what their rings hold.

use ethdev::frame::FrameSpec;
use ethdev::mbuf::Mbuf;
use ethdev::mempool::{Mempool, MempoolConfig, Owner};
use ethdev::packet::IpAddrs;
use ethdev::Wire;
use user_veth::shared::{PortSpec, SharedPort, SharedVeth, SharedWire};

/// DPDK's name for the pool of the samples' ports.
pub const POOL: &str = "MProc_pktmbuf_pool";
/// The ports' names.
pub const PORTS: [&str; 2] = ["port0", "port1"];
/// Flows per port.
pub const FLOWS: u32 = 64;
/// The primary's owner id.
pub const PRIMARY_OWNER: Owner = Owner(1);
/// Frames moved per step at most.
pub const BURST: usize = 32;
const POOL_BUFFERS: u32 = 4096;
const RING_WORDS: u32 = 256;
const PAYLOAD: usize = 18;

/// Makes both ports in `domain` with `conf`, started.
pub fn make_ports(
    domain: &ethdev::shm::Domain,
    conf: &ethdev::dev::PortConf,
) -> Result<(Vec<SharedPort>, Vec<SharedWire>), String> {
    let (mut ports, mut wires) = (Vec::new(), Vec::new());
    for (i, name) in PORTS.iter().enumerate() {
        let spec = PortSpec {
            name: (*name).into(),
            mac: mac(i).into(),
            conf: conf.clone(),
            ring_words: RING_WORDS,
            pool: MempoolConfig::new(POOL, POOL_BUFFERS),
            owner: PRIMARY_OWNER,
        };
        let (port, wire) = SharedVeth::create(domain, &spec).map_err(|e| e.to_string())?;
        ethdev::EthDev::set_promiscuous(&port, true).map_err(|e| e.to_string())?;
        ethdev::EthDev::start(&port).map_err(|e| e.to_string())?;
        ports.push(port);
        wires.push(wire);
    }
    Ok((ports, wires))
}

/// Port `port`'s MAC.
pub fn mac(port: usize) -> [u8; 6] {
    [2, 0, 0, 0, 0, 0x10 + port as u8]
}

/// The MAC of the host at port `port`.
pub fn host_mac(port: usize) -> [u8; 6] {
    [2, 0, 0, 0, 1, port as u8]
}

/// How the hosts reach the ports.
pub trait Links {
    /// Hands `frames` from host `port` towards port `port`; what is left in
    /// `frames` did not go.
    fn send(&mut self, port: usize, frames: &mut Vec<Mbuf>);
    /// Takes up to `max` frames that reached host `port` from port `port`.
    fn take(&mut self, port: usize, out: &mut Vec<Mbuf>, max: usize) -> usize;
}

/// Each host at its port's cable end: the port's wire.
impl Links for [SharedWire] {
    fn send(&mut self, port: usize, frames: &mut Vec<Mbuf>) {
        if let Some(wire) = self.get_mut(port) {
            wire.put_rx(frames);
        }
    }

    fn take(&mut self, port: usize, out: &mut Vec<Mbuf>, max: usize) -> usize {
        self.get_mut(port).map_or(0, |wire| wire.take_tx(out, max))
    }
}

/// The frame of `flow` sent into `port`, with sequence 0 and no UDP
/// checksum (zero: none, which IPv4 allows), so that a sequence number can
/// be written into a copy without touching anything else.
pub fn template(port: usize, flow: u16) -> Vec<u8> {
    let ip = IpAddrs::V4 { src: [10, 0, port as u8, 1], dst: [10, 0, port as u8, 2] };
    let spec = FrameSpec::udp(ip, 1000 + flow, 2000 + port as u16).macs(host_mac(port), host_mac(port ^ 1));
    let mut payload = vec![port as u8];
    payload.extend_from_slice(&flow.to_be_bytes());
    payload.resize(PAYLOAD, 0xa5);
    let mut frame = spec.build(&payload);
    let udp_checksum = frame.len() - PAYLOAD - 2;
    frame[udp_checksum..udp_checksum + 2].fill(0);
    frame
}

/// Where the sequence number sits in a frame (after the port and flow bytes).
fn seq_at(frame_len: usize) -> std::ops::Range<usize> {
    let at = frame_len - PAYLOAD + 3;
    at..at + 4
}

/// Every flow's template, per port: frame `i` sent into port `p` is
/// `templates[p][i % FLOWS]` with sequence `i / FLOWS` written in.
pub struct Templates(Vec<Vec<Vec<u8>>>);

impl Templates {
    /// The templates of both ports.
    pub fn new() -> Templates {
        Templates(PORTS.iter().enumerate().map(|(p, _)| (0..FLOWS as u16).map(|f| template(p, f)).collect()).collect())
    }

    /// Writes frame `i` of `port` into `m`; `false` if it does not fit.
    fn write(&self, port: usize, i: u64, m: &mut Mbuf) -> bool {
        let bytes = &self.0[port][(i % u64::from(FLOWS)) as usize];
        if !m.extend_from_slice(bytes) {
            return false;
        }
        m.data_mut()[seq_at(bytes.len())].copy_from_slice(&((i / u64::from(FLOWS)) as u32).to_be_bytes());
        true
    }

    /// The flow and sequence of `bytes` if they are exactly a frame sent
    /// into `port`.
    fn read(&self, port: usize, bytes: &[u8]) -> Option<(usize, u32)> {
        let payload = &bytes[bytes.len().checked_sub(PAYLOAD)?..];
        let flow = usize::from(u16::from_be_bytes([payload[1], payload[2]]));
        let template = self.0.get(port)?.get(flow)?;
        let at = seq_at(bytes.len());
        let same = template.len() == bytes.len()
            && template[..at.start] == bytes[..at.start]
            && template[at.end..] == bytes[at.end..];
        same.then(|| (flow, u32::from_be_bytes(bytes[at].try_into().expect("four bytes"))))
    }
}

impl Default for Templates {
    fn default() -> Templates {
        Templates::new()
    }
}

/// The primary's two hosts.
pub struct Hosts {
    pool: Mempool,
    templates: Templates,
    frames: u64,
    window: u64,
    ordered: bool,
    /// Frames sent into each port.
    pub sent: [u64; 2],
    /// Frames that arrived intact from each port.
    pub received: [u64; 2],
    /// Frames that arrived damaged, unknown, twice or out of order.
    pub bad: u64,
    /// Ordered mode: sequence numbers missing from flow order.
    pub gaps: u64,
    /// Frames that will never arrive: held by dead processes, or dropped
    /// and counted on the way (the sample adds them as it learns of them).
    pub lost: u64,
    /// Per port sent into, per flow: the next sequence expected.
    next: [Vec<u32>; 2],
    /// Unordered mode: which frames arrived.
    seen: [Vec<bool>; 2],
    /// Per port sent into, per flow: the marks of the forwarders seen.
    marks: [Vec<u64>; 2],
}

impl Hosts {
    /// Hosts that send `frames` frames into each port, at most `window` in
    /// flight per port.
    pub fn new(frames: u64, window: u64, ordered: bool) -> Result<Hosts, String> {
        let pool = Mempool::new(MempoolConfig::new("hosts", 2048)).map_err(|e| e.to_string())?;
        let flows = || vec![0; FLOWS as usize];
        let seen = if ordered { Vec::new() } else { vec![false; frames as usize] };
        Ok(Hosts {
            pool,
            templates: Templates::new(),
            frames,
            window,
            ordered,
            sent: [0; 2],
            received: [0; 2],
            bad: 0,
            gaps: 0,
            lost: 0,
            next: [flows(), flows()],
            seen: [seen.clone(), seen],
            marks: [vec![0; FLOWS as usize], vec![0; FLOWS as usize]],
        })
    }

    /// Sends a burst into each port whose window has room; whether any went.
    pub fn send(&mut self, links: &mut (impl Links + ?Sized)) -> bool {
        let mut moved = false;
        let in_flight = (self.sent[0] + self.sent[1]).saturating_sub(self.received[0] + self.received[1] + self.lost);
        for port in 0..PORTS.len() {
            let room = (self.window * 2).saturating_sub(in_flight).min(self.frames - self.sent[port]);
            let mut burst = Vec::new();
            for i in self.sent[port]..self.sent[port] + room.min(BURST as u64) {
                let Some(mut m) = self.pool.alloc(Owner::NONE) else { break };
                if self.templates.write(port, i, &mut m) {
                    burst.push(m);
                }
            }
            let made = burst.len();
            links.send(port, &mut burst);
            // Frames not taken are made again, with the same numbers, next time.
            let went = made - burst.len();
            self.sent[port] += went as u64;
            moved |= went > 0;
        }
        moved
    }

    /// Takes what each port transmitted and checks it; whether any came.
    pub fn receive(&mut self, links: &mut (impl Links + ?Sized)) -> bool {
        let mut moved = false;
        for port in 0..PORTS.len() {
            let mut out = Vec::new();
            moved |= links.take(port, &mut out, BURST * 4) > 0;
            for m in out {
                self.check(port ^ 1, &m);
            }
        }
        moved
    }

    fn check(&mut self, from: usize, m: &Mbuf) {
        let known = self.templates.read(from, m.data());
        let fresh = known.filter(|&(flow, seq)| {
            u64::from(seq) * u64::from(FLOWS) + (flow as u64) < self.frames && self.in_order(from, flow, seq)
        });
        let Some((flow, _)) = fresh else {
            self.bad += 1;
            return;
        };
        self.marks[from][flow] |= 1 << (m.mark() % 64);
        self.received[from] += 1;
    }

    /// Ordered: `seq` is not behind its flow (gaps counted). Unordered: the
    /// frame did not arrive before.
    fn in_order(&mut self, from: usize, flow: usize, seq: u32) -> bool {
        if self.ordered {
            let next = &mut self.next[from][flow];
            let fine = *next <= seq;
            if fine {
                self.gaps += u64::from(seq - *next);
                *next = seq + 1;
            }
            return fine;
        }
        let seen = &mut self.seen[from][seq as usize * FLOWS as usize + flow];
        !std::mem::replace(seen, true)
    }

    /// Every frame sent, and each arrived, was counted lost, or was bad.
    pub fn done(&self) -> bool {
        let accounted = self.received[0] + self.received[1] + self.lost + self.bad;
        self.sent == [self.frames; 2] && accounted >= 2 * self.frames
    }

    /// Ordered mode: frames missing after the last arrival of their flow
    /// (a loss the sink cannot see as a gap).
    pub fn missing_at_end(&self) -> u64 {
        let per_flow =
            |flow: usize| self.frames / u64::from(FLOWS) + u64::from((flow as u64) < self.frames % u64::from(FLOWS));
        let tail = |next: &Vec<u32>| next.iter().enumerate().map(|(f, &n)| per_flow(f) - u64::from(n)).sum::<u64>();
        self.next.iter().map(tail).sum()
    }

    /// Flows (of either port) whose frames more than one forwarder marked.
    pub fn split_flows(&self) -> usize {
        self.marks.iter().flatten().filter(|m| m.count_ones() > 1).count()
    }

    /// Each port's frames sent in total.
    pub fn total_sent(&self) -> u64 {
        self.sent[0] + self.sent[1]
    }

    /// Frames received in total.
    pub fn total_received(&self) -> u64 {
        self.received[0] + self.received[1]
    }
}

/// Once the primary is alone: after a death, puts back free slots missing
/// from the free list (a process killed inside a free-list operation leaves
/// one; no walk finds it); returns how many. Without deaths it sweeps
/// nothing, so a slot lost any other way still shows as in use.
pub fn sweep_after_deaths(pool: &ethdev::mempool::Mempool, deaths: usize) -> usize {
    if deaths == 0 {
        return 0;
    }
    let swept = pool.sweep_lost();
    if swept > 0 {
        tracing::warn!(swept, "free slots missing from the free list after a death were put back");
    }
    swept
}

//! Raw frames between bare ports: the virtual wire under load, with no
//! stack in the way.
//!
//! Seeded flows (TCP and UDP headers, random ports of the dynamic range, which
//! no Wireshark dissector claims) send a few frames each
//! between random pairs of bare hosts; a task sends them in bursts paced in
//! virtual time and, after each step, drains every receive queue. Before the
//! bridge has learned a host its frames are flooded, and the other hosts'
//! MAC filters drop the copies. The [`FrameTally`] then tells the checks
//! whether every frame arrived byte-identical at its destination or was
//! counted as dropped, and whether each arrived on the queue its RSS hash
//! selects with a good L4 checksum.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ethdev::error::DevError;
use ethdev::frame::FrameSpec;
use ethdev::mac::MacAddr;
use ethdev::mbuf::{Mbuf, OlFlags};
use ethdev::mempool::{Mempool, Owner};
use ethdev::packet::IpAddrs;
use ethdev::{EthDev, RxQueue, TxQueue};
use rand::{RngExt, SeedableRng};

use crate::meter::Meter;
use crate::plan::FramesTraffic;
use sim::exec::{sleep_until, TaskClock};
use sim::world::{Nic, Port};

/// Time between receive passes while waiting for frames in flight.
const DRAIN_STEP: Duration = Duration::from_millis(1);
/// Frames taken per receive burst.
const RX_BURST: usize = 32;

/// A frame on its way: who sends it and what it must look like on arrival.
struct Planned {
    from: usize,
    to: usize,
    bytes: Vec<u8>,
}

/// What the receivers saw.
#[derive(Debug, Default)]
pub struct FrameTally {
    /// Frames planned.
    pub planned: u64,
    /// Frames the sending ports accepted.
    pub sent: u64,
    /// Frames received by any of the ports.
    pub delivered: u64,
    /// Bytes of the frames received.
    pub delivered_bytes: u64,
    /// Frames received on a queue other than `reta[hash]`, or without a good L4 checksum.
    pub misplaced: u64,
    /// Frames received that were not expected there (altered, duplicated or misdelivered).
    pub damaged: u64,
    /// Frames still expected: bytes → (destination, copies left).
    expected: HashMap<Vec<u8>, (usize, u64)>,
}

/// The frames of one `frames` entry, ready to be sent by [`FrameLoad::run`].
pub(crate) struct FrameLoad {
    ports: Vec<Endpoint>,
    plan: Vec<Planned>,
    traffic: FramesTraffic,
}

impl FrameLoad {
    /// Plans the frames of `traffic` between `nics` (each with its number
    /// of queues, indexed as `traffic.hosts`), drawing flows from `seed`,
    /// and takes the ports' queue handles.
    pub fn new(nics: &[(&Nic, u16)], traffic: &FramesTraffic, seed: u64) -> Result<FrameLoad, String> {
        let ports = nics.iter().map(|(n, queues)| Endpoint::new(n, *queues)).collect::<Result<Vec<_>, _>>()?;
        let macs: Vec<MacAddr> = ports.iter().map(|p| p.mac).collect();
        let ips: Vec<[u8; 4]> = nics.iter().map(|(n, _)| n.ipv4.octets()).collect();
        Ok(FrameLoad { ports, plan: plan(&macs, &ips, traffic, seed), traffic: traffic.clone() })
    }

    /// Bytes of all planned frames.
    pub fn bytes(&self) -> u64 {
        self.plan.iter().map(|p| p.bytes.len() as u64).sum()
    }

    /// Sends the plan step by step, receiving after each step, then keeps
    /// receiving for the drain time; `tally` holds the result.
    pub async fn run(
        mut self,
        clock: Arc<dyn TaskClock>,
        tally: Arc<Mutex<FrameTally>>,
        meter: Meter,
    ) -> io::Result<()> {
        lock(&tally).expect(&self.plan);
        let mut next = clock.now();
        let plan = std::mem::take(&mut self.plan);
        for chunk in plan.chunks(self.traffic.burst) {
            let sent = self.send(chunk);
            lock(&tally).sent += sent;
            meter.add(chunk.iter().map(|p| p.bytes.len() as u64).sum());
            next = next + self.traffic.pace;
            sleep_until(clock.as_ref(), next).await;
            self.receive(&tally)?;
        }
        let end = next + self.traffic.drain;
        while next < end {
            next = (next + DRAIN_STEP).min(end);
            sleep_until(clock.as_ref(), next).await;
            self.receive(&tally)?;
        }
        Ok(())
    }

    /// Sends `frames` from their ports; returns how many the ports took.
    fn send(&mut self, frames: &[Planned]) -> u64 {
        let mut sent = 0;
        for (i, Endpoint { pool, tx, .. }) in self.ports.iter_mut().enumerate() {
            let mut burst: Vec<Mbuf> = frames
                .iter()
                .filter(|f| f.from == i)
                .filter_map(|f| {
                    let mut m = pool.alloc(Owner(i as u32 + 1))?;
                    m.extend_from_slice(&f.bytes).then_some(m)
                })
                .collect();
            sent += tx.tx_burst(&mut burst) as u64;
        }
        sent
    }

    fn receive(&mut self, tally: &Mutex<FrameTally>) -> io::Result<()> {
        let mut tally = lock(tally);
        let mut buf = Vec::new();
        for (i, Endpoint { port, rx, .. }) in self.ports.iter_mut().enumerate() {
            let reta = port.reta_query().map_err(io::Error::other)?;
            for (q, rx) in (0..).zip(rx.iter_mut()) {
                while rx.rx_burst(&mut buf, RX_BURST) > 0 {
                    for m in buf.drain(..) {
                        let hashed = m.flags().contains(OlFlags::RX_RSS_HASH).then(|| reta.queue(m.rss_hash()));
                        if hashed != Some(q) || !m.flags().contains(OlFlags::RX_L4_CKSUM_GOOD) {
                            tally.misplaced += 1;
                        }
                        tally.arrived(i, m.data());
                    }
                }
            }
        }
        Ok(())
    }
}

/// One bare port as the load drives it: its queue handles, taken once.
struct Endpoint {
    port: Port,
    mac: MacAddr,
    pool: Mempool,
    tx: Box<dyn TxQueue>,
    rx: Vec<Box<dyn RxQueue>>,
}

impl Endpoint {
    /// The handles of `nic`'s transmit queue 0 and of its first `queues` receive queues.
    fn new(nic: &Nic, queues: u16) -> Result<Endpoint, String> {
        let named = |e: DevError| format!("{}: {e}", nic.name);
        let rx = (0..queues).map(|q| nic.port.rx_queue(q)).collect::<Result<_, _>>().map_err(named)?;
        let tx = nic.port.tx_queue(0).map_err(named)?;
        let mac = nic.port.mac_addr().map_err(named)?;
        Ok(Endpoint { port: nic.port.clone(), mac, pool: nic.pool.clone(), tx, rx })
    }
}

impl FrameTally {
    fn expect(&mut self, plan: &[Planned]) {
        self.planned += plan.len() as u64;
        for p in plan {
            self.expected.entry(p.bytes.clone()).or_insert((p.to, 0)).1 += 1;
        }
    }

    fn arrived(&mut self, at: usize, data: &[u8]) {
        match self.expected.get_mut(data) {
            Some((to, left)) if *left > 0 && *to == at => *left -= 1,
            _ => self.damaged += 1,
        }
        self.delivered += 1;
        self.delivered_bytes += data.len() as u64;
    }
}

/// IANA's dynamic ports: well-known or registered ports would make Wireshark
/// decode the synthetic payload as that protocol and call it malformed.
const DYNAMIC_PORTS: std::ops::RangeInclusive<u16> = 49152..=65535;

fn lock(tally: &Mutex<FrameTally>) -> std::sync::MutexGuard<'_, FrameTally> {
    tally.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Every frame of every flow, interleaved in sending order.
fn plan(macs: &[MacAddr], ips: &[[u8; 4]], traffic: &FramesTraffic, seed: u64) -> Vec<Planned> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let hosts = macs.len();
    let flows: Vec<(usize, usize, FrameSpec)> = (0..traffic.flows)
        .map(|_| {
            let from = rng.random_range(0..hosts);
            let to = (from + rng.random_range(1..hosts)) % hosts;
            let addrs = IpAddrs::V4 { src: ips[from], dst: ips[to] };
            let (sport, dport) = (rng.random_range(DYNAMIC_PORTS), rng.random_range(DYNAMIC_PORTS));
            let spec = if rng.random_bool(0.5) {
                FrameSpec::tcp(addrs, sport, dport)
            } else {
                FrameSpec::udp(addrs, sport, dport)
            };
            (from, to, spec.macs(macs[from], macs[to]))
        })
        .collect();
    (0..traffic.frames_per_flow)
        .flat_map(|seq| {
            flows.iter().enumerate().map(move |(id, (from, to, spec))| Planned {
                from: *from,
                to: *to,
                bytes: spec.build(format!("dtnet flow {id} frame {seq}").as_bytes()),
            })
        })
        .collect()
}

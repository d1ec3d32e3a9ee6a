//! A veth port in a shared-memory domain, within one process: the primary's
//! wire end and a secondary's queues on two mappings of the same domain
//! (a second open contends exactly as another process would; killed
//! holders and their reclamation need real processes, and the multi-process
//! samples in `harness/` exercise them).

use std::time::Duration;

use ethdev::dev::PortConf;
use ethdev::frame::FrameSpec;
use ethdev::mbuf::Mbuf;
use ethdev::mempool::{Mempool, MempoolConfig, Owner};
use ethdev::packet::{IpAddrs, PacketMeta};
use ethdev::rss::{Reta, RssConf};
use ethdev::shm::{Domain, DomainOptions, Role};
use ethdev::{EthDev, Wire};
use user_veth::shared::{PortSpec, SharedPort, SharedVeth, SharedWire, Side};

const MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];
const PRIMARY: Owner = Owner(1);
const SECONDARY: Owner = Owner(2);

struct Rig {
    _base: tempfile::TempDir,
    _primary: Domain,
    secondary: Domain,
    port: SharedPort,
    wire: SharedWire,
    /// A host's own pool, outside the domain.
    host: Mempool,
    conf: PortConf,
}

fn rig(queues: u16, ring_words: u32) -> Rig {
    let base = tempfile::tempdir().unwrap();
    let opts = DomainOptions { base: base.path().to_owned(), size: 8 << 20, wait: Duration::ZERO };
    let primary = Domain::open("veth", Role::Primary, &opts).unwrap();
    let conf = PortConf { rx_ring_size: 256, ..PortConf::new(queues) };
    let spec = PortSpec {
        name: "p0".into(),
        mac: MAC.into(),
        conf: conf.clone(),
        ring_words,
        pool: MempoolConfig::new("P0_POOL", 1024),
        owner: PRIMARY,
    };
    let (port, wire) = SharedVeth::create(&primary, &spec).unwrap();
    port.start().unwrap();
    let secondary = Domain::open("veth", Role::Secondary, &opts).unwrap();
    let host = Mempool::new(MempoolConfig::new("host", 1024)).unwrap();
    Rig { _base: base, _primary: primary, secondary, port, wire, host, conf }
}

impl Rig {
    fn attach(&self) -> SharedPort {
        SharedPort::attach(&self.secondary, "p0", SECONDARY).unwrap()
    }

    /// UDP frames of `flows` flows from the host's pool, flow number in the payload.
    fn frames(&self, flows: u16) -> Vec<Mbuf> {
        (0..flows).map(|f| self.mbuf(&spec(f).build(&f.to_be_bytes()))).collect()
    }

    fn mbuf(&self, bytes: &[u8]) -> Mbuf {
        let mut m = self.host.alloc(Owner::NONE).unwrap();
        assert!(m.extend_from_slice(bytes));
        m
    }

    /// The rx queue RSS puts `frame` in, by this test's own Toeplitz.
    fn predicted(&self, frame: &[u8]) -> u16 {
        let reta = Reta::new(usize::from(self.conf.reta_size), self.conf.rx_queues).unwrap();
        let rss = RssConf::from_parts(self.conf.rss_key, self.conf.rss_types, reta);
        rss.queue_for(&PacketMeta::parse(frame).unwrap()).unwrap().1
    }
}

fn spec(flow: u16) -> FrameSpec {
    FrameSpec::udp(IpAddrs::V4 { src: [10, 0, 0, 1], dst: [10, 0, 0, 2] }, 1000 + flow, 80)
        .macs([2, 0, 0, 0, 0, 1], MAC)
}

/// Polls every queue of `rx` until `want` frames came or nothing moves.
fn receive_all(rx: &mut [Box<dyn ethdev::queue::RxQueue>], wire: &mut SharedWire, want: usize) -> Vec<(u16, Mbuf)> {
    let mut got = Vec::new();
    for _ in 0..100 {
        wire.take_tx(&mut Vec::new(), 0);
        for (q, queue) in (0u16..).zip(rx.iter_mut()) {
            let mut burst = Vec::new();
            queue.rx_burst(&mut burst, 64);
            got.extend(burst.into_iter().map(|m| (q, m)));
        }
        if got.len() >= want {
            break;
        }
    }
    got
}

/// Frames from a host outside the domain reach a secondary's queues on the
/// queue RSS predicts, with their bytes, copied once into the domain pool;
/// what the secondary sends comes out of the wire intact; and both pools
/// end at their baselines.
#[test]
fn frames_cross_the_domain_both_ways_on_the_predicted_queues() {
    let mut rig = rig(4, 64);
    let port = rig.attach();
    let mut rx: Vec<_> = (0..4).map(|q| port.rx_queue(q).unwrap()).collect();
    let mut frames = rig.frames(100);
    let expected: Vec<(u16, Vec<u8>)> = frames.iter().map(|m| (rig.predicted(m.data()), m.data().to_vec())).collect();
    rig.wire.put_rx(&mut frames);
    let mut got = receive_all(&mut rx, &mut rig.wire, 100);
    assert_eq!(rig.host.in_use(), 0, "the host's buffers were copied and freed at the port");
    assert!(got.iter().all(|(_, m)| port.pool().owns(m) && m.owner() == SECONDARY));
    got.sort_by_key(|(_, m)| m.data().to_vec());
    let mut seen: Vec<(u16, Vec<u8>)> = got.iter().map(|(q, m)| (*q, m.data().to_vec())).collect();
    let mut expected = expected;
    expected.sort_by(|a, b| a.1.cmp(&b.1));
    seen.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(seen, expected);
    let copied: u64 = (0..4).map(|q| port.queue_counters(Side::Rx, q).unwrap()[2]).sum();
    assert_eq!(copied, 100);

    // Back out through tx queue 1, by reference: no copy.
    let mut tx = port.tx_queue(1).unwrap();
    let mut burst: Vec<Mbuf> = got.into_iter().map(|(_, m)| m).collect();
    let sent_bytes: Vec<Vec<u8>> = burst.iter().map(|m| m.data().to_vec()).collect();
    assert_eq!(tx.tx_burst(&mut burst), 64, "the ring takes what it has room for");
    let mut out = Vec::new();
    while rig.wire.take_tx(&mut out, 64) > 0 || tx.tx_burst(&mut burst) > 0 {}
    assert!(burst.is_empty());
    assert_eq!(out.iter().map(|m| m.data().to_vec()).collect::<Vec<_>>(), sent_bytes);
    assert_eq!(
        port.queue_counters(Side::Tx, 1).unwrap()[..3],
        [100, sent_bytes.iter().map(|b| b.len() as u64).sum(), 0]
    );
    drop(out);
    assert_eq!(port.pool().in_use(), 0);
    rig.port.check_accounting().unwrap();
}

/// One holder per queue side; a queue let go can be taken again.
#[test]
fn a_queue_has_one_holder_at_a_time() {
    let rig = rig(2, 64);
    let port = rig.attach();
    let rx = port.rx_queue(0).unwrap();
    assert_eq!(port.holder(Side::Rx, 0), Some(SECONDARY));
    let other = SharedPort::attach(&rig.secondary, "p0", Owner(3)).unwrap();
    let refused = other.rx_queue(0).err().unwrap().to_string();
    assert!(refused.contains("queue 0 of port \"p0\" is held by owner 2"), "{refused}");
    assert!(other.rx_queue(7).err().unwrap().to_string().contains("does not exist (the port has 2)"));
    other.tx_queue(0).unwrap();
    drop(rx);
    assert_eq!(port.holder(Side::Rx, 0), None);
    other.rx_queue(0).unwrap();
}

/// A secondary may not reconfigure the port, and is told who may; the
/// primary may, within the queues the domain holds, and the new RETA
/// steers what the secondary receives.
#[test]
fn only_the_primary_configures_and_its_changes_steer_the_secondaries_queues() {
    let mut rig = rig(2, 64);
    let port = rig.attach();
    let refused = port.reta_update(Reta::new(128, 2).unwrap()).unwrap_err().to_string();
    let pid = std::process::id();
    assert!(refused.contains(&format!("configured by the primary process (pid {pid})")), "{refused}");
    assert!(port.configure(&rig.conf).is_err());
    assert_eq!(port.mac_addr().unwrap(), MAC);
    rig.port.stop().unwrap();
    let wider = rig.port.configure(&PortConf::new(4)).unwrap_err().to_string();
    assert!(wider.contains("keeps the 2 queues"), "{wider}");
    rig.port.start().unwrap();

    rig.port.reta_update(Reta::from_entries(vec![1; 128], 2).unwrap()).unwrap();
    let mut rx: Vec<_> = (0..2).map(|q| port.rx_queue(q).unwrap()).collect();
    let mut frames = rig.frames(40);
    rig.wire.put_rx(&mut frames);
    let got = receive_all(&mut rx, &mut rig.wire, 40);
    assert_eq!(got.len(), 40);
    assert!(got.iter().all(|(q, _)| *q == 1), "every entry of the RETA names queue 1");
}

/// A queue whose holder does not keep up fills its domain ring, then the
/// veth's, which counts the rest as `ring_full`; nothing goes missing.
#[test]
fn a_slow_holder_costs_counted_drops_only() {
    let mut rig = rig(1, 16);
    let port = rig.attach();
    let mut rx = vec![port.rx_queue(0).unwrap()];
    for _ in 0..4 {
        let mut frames = rig.frames(100);
        rig.wire.put_rx(&mut frames);
    }
    rig.wire.publish_stats();
    let totals = port.totals();
    assert_eq!(totals.ipackets + totals.imissed, 400);
    assert_eq!(totals.imissed, 400 - 256 - 16, "the veth's ring and the domain ring hold the rest");
    let got = receive_all(&mut rx, &mut rig.wire, 272);
    assert_eq!(got.len(), 272);
    drop(got);
    assert_eq!((port.pool().in_use(), rig.host.in_use()), (0, 0));
    rig.port.check_accounting().unwrap();
}

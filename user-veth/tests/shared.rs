//! A veth port in a shared-memory domain, within one process: the primary's
//! wire end and a secondary's queues on two mappings of the same domain
//! (a second open contends exactly as another process would, and the
//! control channel's two ends talk over a real socket; killed
//! holders and their reclamation need real processes, and the multi-process
//! samples in `harness/` exercise them).

use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ethdev::dev::PortConf;
use ethdev::flow::{FlowAction, FlowAttr, FlowItem, Ipv4Item, ItemSpec, TcpItem};
use ethdev::frame::{FrameSpec, Transport};
use ethdev::mbuf::{Mbuf, OlFlags};
use ethdev::mempool::{Mempool, MempoolConfig, Owner};
use ethdev::packet::{IpAddrs, PacketMeta};
use ethdev::rss::{Reta, RssConf};
use ethdev::shm::control::{ControlClient, ControlEvent, ControlServer};
use ethdev::shm::rules::TupleRule;
use ethdev::shm::{Domain, DomainOptions, Role};
use ethdev::{EthDev, Wire};
use user_veth::shared::{PortRules, PortSpec, SharedPort, SharedVeth, SharedWire, Side};

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

/// Runs `ask` (a secondary's blocking request) on a thread while the
/// primary's control server serves `rules`; returns what `ask` returned.
fn served<T: Send>(server: &mut ControlServer, rules: &mut PortRules, ask: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        let asking = s.spawn(ask);
        while !asking.is_finished() {
            server.poll_serving(rules);
            std::thread::sleep(Duration::from_millis(1));
        }
        asking.join().unwrap()
    })
}

/// The queue a TCP frame (an ACK) from 10.0.0.1:`sport` to port 80 arrives on.
fn tcp_arrives_on(rig: &mut Rig, rx: &mut [Box<dyn ethdev::queue::RxQueue>], sport: u16) -> u16 {
    segment_arrives_on(rig, rx, sport, false)
}

/// The queue a TCP segment from 10.0.0.1:`sport` to port 80 arrives on,
/// a SYN if `syn`, else an ACK.
fn segment_arrives_on(rig: &mut Rig, rx: &mut [Box<dyn ethdev::queue::RxQueue>], sport: u16, syn: bool) -> u16 {
    let ip = IpAddrs::V4 { src: [10, 0, 0, 1], dst: [10, 0, 0, 2] };
    let spec = FrameSpec { transport: Transport::Tcp { seq: 1, syn }, ..FrameSpec::tcp(ip, sport, 80) };
    let frame = spec.macs([2, 0, 0, 0, 0, 1], MAC).build(b"data");
    rig.wire.put_rx(&mut vec![rig.mbuf(&frame)]);
    let got = receive_all(rx, &mut rig.wire, 1);
    assert_eq!(got.len(), 1, "the frame arrived once");
    got[0].0
}

/// A secondary steers a connection to its own queue with a rule it asks
/// the primary for through the port's ordinary `flow_create`; the primary
/// refuses a queue the asker does not hold, a rule of another shape, and
/// rules beyond the per-process limit; `flow_destroy` and the process's
/// leaving both take the rule away, and its frames go back where RSS puts them.
#[test]
fn a_secondary_steers_its_connections_with_rules_the_primary_makes_and_drops() {
    let mut rig = rig(3, 64);
    let mut server = ControlServer::bind(&rig._primary).unwrap();
    let mut rules = PortRules::new(vec![rig.port.clone()], 1);
    let client = served(&mut server, &mut rules, || ControlClient::register(&rig.secondary, "steerer").unwrap());
    let client = Arc::new(client);
    let owner = client.owner();
    let port = SharedPort::attach(&rig.secondary, "p0", owner).unwrap().with_rules_from(Arc::clone(&client));
    let mut rx: Vec<_> = (0..2).map(|q| port.rx_queue(q).unwrap()).collect();
    // A flow RSS puts on queue 0 or 1, and the other of the two.
    let sport = (5000..).find(|&p| tcp_arrives_on(&mut rig, &mut rx, p) < 2).unwrap();
    let by_rss = tcp_arrives_on(&mut rig, &mut rx, sport);
    let other = 1 - by_rss;

    let rule = |queue: u16| {
        let ip = FlowItem::Ipv4(ItemSpec::new(Ipv4Item { src: [10, 0, 0, 1], dst: [10, 0, 0, 2], proto: 0 }));
        let tcp = FlowItem::Tcp(ItemSpec::new(TcpItem { src_port: sport, dst_port: 80, flags: 0 }));
        ([FlowItem::Eth(ItemSpec::ANY), ip, tcp], [FlowAction::Queue(queue)])
    };
    let (pattern, to_other) = rule(other);
    let attr = FlowAttr::ingress(0);
    let id = served(&mut server, &mut rules, || port.flow_create(&attr, &pattern, &to_other)).unwrap();
    assert_eq!(rules.held_by(owner), 1);
    assert_eq!(tcp_arrives_on(&mut rig, &mut rx, sport), other, "the rule steers the connection");

    let (_, to_unheld) = rule(2);
    let e = served(&mut server, &mut rules, || port.flow_create(&attr, &pattern, &to_unheld)).unwrap_err();
    assert!(e.to_string().contains("receive queue 2 of port \"p0\" is not this process's"), "{e}");
    let e = served(&mut server, &mut rules, || port.flow_create(&attr, &pattern, &to_other)).unwrap_err();
    assert!(e.to_string().contains("holds 1 rules, the most one process may"), "{e}");
    let udp = [FlowItem::Eth(ItemSpec::ANY), FlowItem::Udp(ItemSpec::ANY)];
    let e = port.flow_create(&attr, &udp, &to_other).unwrap_err();
    assert!(e.to_string().contains("may only ask for connection or listener rules"), "{e}");

    served(&mut server, &mut rules, || port.flow_destroy(id)).unwrap();
    assert_eq!(tcp_arrives_on(&mut rig, &mut rx, sport), by_rss, "a destroyed rule steers nothing");
    let e = served(&mut server, &mut rules, || port.flow_destroy(id)).unwrap_err();
    assert!(e.to_string().contains("is not this process's"), "{e}");

    served(&mut server, &mut rules, || port.flow_create(&attr, &pattern, &to_other)).unwrap();
    drop((port, rx));
    Arc::into_inner(client).unwrap().logout();
    let events = (0..500)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(2));
            server.poll_serving(&mut rules)
        })
        .find(|e| !e.is_empty())
        .unwrap();
    assert!(matches!(&events[..], [ControlEvent::LoggedOut(p)] if p.owner == owner), "{events:?}");
    assert_eq!(rules.forget(owner), 1, "the leaver's rule is destroyed");
    let mut rx: Vec<_> = (0..2).map(|q| rig.attach().rx_queue(q).unwrap()).collect();
    assert_eq!(tcp_arrives_on(&mut rig, &mut rx, sport), by_rss, "its frames go back where RSS puts them");
}

/// Request lines the primary cannot read, or cannot grant, are denied with
/// the reason, and the connection stays usable.
#[test]
fn malformed_rule_requests_are_denied_and_the_connection_stays() {
    let rig = rig(2, 64);
    let mut server = ControlServer::bind(&rig._primary).unwrap();
    let mut rules = PortRules::new(vec![rig.port.clone()], 4);
    let mut stream = std::os::unix::net::UnixStream::connect(server.path()).unwrap();
    let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
    let mut say = |line: &str| {
        stream.write_all(format!("{line}\n").as_bytes()).unwrap();
        let mut answer = String::new();
        while answer.is_empty() {
            server.poll_serving(&mut rules);
            let _ = stream.set_read_timeout(Some(Duration::from_millis(5)));
            let _ = reader.read_line(&mut answer);
        }
        answer
    };
    assert!(say("HELLO junk").starts_with("WELCOME "));
    for (line, why) in [
        ("FLOW ADD p0 0 1 10.0.0.1:1 [::1]:2", "one address family"),
        ("FLOW ADD p0 0 99999 10.0.0.1:1 10.0.0.2:2", "bad queue"),
        ("FLOW ADD p0 0 1 10.0.0.1 10.0.0.2:2", "bad address"),
        ("FLOW ADD nope 0 1 10.0.0.1:1 10.0.0.2:2", "no shared port named \"nope\""),
        ("FLOW ADD p0 0 1 10.0.0.1:1 10.0.0.2:2", "is not this process's"),
        ("FLOW DEL p0 x", "bad id"),
        ("FLOW DEL p0 7", "is not this process's"),
        ("FLOW \u{1}\u{2}", "expected FLOW ADD"),
    ] {
        let answer = say(line);
        assert!(answer.starts_with("DENIED ") && answer.contains(why), "{line:?}: {answer:?}");
    }
    assert_eq!(server.peers().count(), 1, "the asker is still registered");
}

/// A frame a holder sends flagged `TX_LOOPBACK` comes back on the receive
/// queue it names, bytes intact and never on the wire, in order; one that
/// names no queue of the port is dropped and counted; the pool ends at its
/// baseline.
#[test]
fn a_looped_back_frame_reaches_the_queue_it_names_and_not_the_wire() {
    let mut rig = rig(3, 64);
    let port = rig.attach();
    let mut rx: Vec<_> = (0..3).map(|q| port.rx_queue(q).unwrap()).collect();
    let mut tx = port.tx_queue(0).unwrap();
    let looped = |target: u16, flow: u16| {
        let mut m = port.pool().alloc(SECONDARY).unwrap();
        assert!(m.extend_from_slice(&spec(flow).build(&flow.to_be_bytes())));
        m.set_flags(OlFlags::TX_LOOPBACK);
        m.set_queue(target);
        m
    };
    let mut burst: Vec<Mbuf> = (0..6).map(|f| looped(2 - f % 2, f)).chain([looped(9, 99)]).collect();
    assert_eq!(tx.tx_burst(&mut burst), 7);
    let mut wire_out = Vec::new();
    rig.wire.take_tx(&mut wire_out, 64);
    assert!(wire_out.is_empty(), "nothing reaches the wire");
    let got = receive_all(&mut rx, &mut rig.wire, 6);
    let seen: Vec<(u16, Vec<u8>)> = got.iter().map(|(q, m)| (*q, m.data().to_vec())).collect();
    let want: Vec<(u16, Vec<u8>)> =
        [1u16, 3, 5, 0, 2, 4].iter().map(|&f| (2 - f % 2, spec(f).build(&f.to_be_bytes()))).collect();
    assert_eq!(seen, want, "each frame on the queue it named, in order per queue");
    assert!(got.iter().all(|(_, m)| !m.flags().contains(OlFlags::TX_LOOPBACK)));
    assert_eq!(port.queue_counters(Side::Tx, 0).unwrap()[3], 1, "the frame naming queue 9 is a counted drop");
    drop(got);
    assert_eq!(port.pool().in_use(), 0);
}

/// A listener's rule (any source, SYN without ACK) brings its port's new
/// connections to the asker's queue while the rest of their segments go
/// where RSS (or their own rules) put them; a second process may not
/// listen on the same address and port, though it may on another.
#[test]
fn a_listeners_rule_takes_its_ports_syns_and_only_one_process_listens_per_port() {
    let mut rig = rig(3, 64);
    let mut server = ControlServer::bind(&rig._primary).unwrap();
    let mut rules = PortRules::new(vec![rig.port.clone()], 8);
    let secondary = &rig.secondary;
    let a = Arc::new(served(&mut server, &mut rules, || ControlClient::register(secondary, "a").unwrap()));
    let b = Arc::new(served(&mut server, &mut rules, || ControlClient::register(secondary, "b").unwrap()));
    let port_of = |c: &Arc<ControlClient>| {
        SharedPort::attach(&rig.secondary, "p0", c.owner()).unwrap().with_rules_from(Arc::clone(c))
    };
    let (port_a, port_b) = (port_of(&a), port_of(&b));
    let mut rx: Vec<_> = [&port_b, &port_b, &port_a].iter().zip(0..).map(|(p, q)| p.rx_queue(q).unwrap()).collect();
    let sport = (6000..).find(|&p| tcp_arrives_on(&mut rig, &mut rx, p) < 2).unwrap();
    let by_rss = tcp_arrives_on(&mut rig, &mut rx, sport);

    let listener = |queue: u16, port: u16| TupleRule {
        port: "p0".into(),
        priority: 1,
        queue,
        src: None,
        dst: SocketAddr::from(([10, 0, 0, 2], port)),
    };
    let ask =
        |port: &SharedPort, rule: &TupleRule| port.flow_create(&rule.attr(), &rule.pattern().unwrap(), &rule.actions());
    served(&mut server, &mut rules, || ask(&port_a, &listener(2, 80))).unwrap();
    assert_eq!(segment_arrives_on(&mut rig, &mut rx, sport, true), 2, "a SYN goes to the listener's queue");
    assert_eq!(segment_arrives_on(&mut rig, &mut rx, sport, false), by_rss, "an ACK does not");
    let e = served(&mut server, &mut rules, || ask(&port_b, &listener(0, 80))).unwrap_err();
    assert!(e.to_string().contains("another process listens on 10.0.0.2:80 of port \"p0\""), "{e}");
    served(&mut server, &mut rules, || ask(&port_b, &listener(0, 81))).unwrap();
    assert_eq!((rules.held_by(a.owner()), rules.held_by(b.owner()), rules.granted()), (1, 1, 2));
}

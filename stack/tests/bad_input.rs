//! Hostile input: a stack group with listeners on port 80 is fed random
//! garbage frames, truncated copies of valid frames, and random TCP
//! segments (random flags, sequence and acknowledgment numbers, window and
//! payload, with valid checksums) through the wire end of its veth port.
//! Nothing may panic, the port's accounting must close, and once the
//! transmitted frames are taken off the wire every buffer must be back in
//! the pool, both with the group alive and after everything is dropped.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use ethdev::mempool::{Mempool, MempoolConfig};
use ethdev::{EthDev, Instant, Mbuf, Owner, Wire};
use proptest::prelude::*;
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, IpProtocol,
    Ipv4Packet, Ipv4Repr, TcpPacket, UdpPacket,
};
use stack::{Api, Fd, GroupConfig, SockOpt, SockType, StackGroup};
use user_veth::{Veth, VethPort, VethWire};

const MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const PORT: u16 = 80;
/// Peers the random segments come from; the stack learns their MACs first,
/// so that it really answers them.
const PEERS: u8 = 4;
const PEER_PORTS: [u16; 3] = [1000, 2000, 3000];
/// Injected frames' mbuf owner (the stacks own 1 and 2).
const INJECT: Owner = Owner(100);

fn peer_ip(i: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 0, 10 + i % PEERS)
}

fn peer_mac(i: u8) -> [u8; 6] {
    [0x02, 0, 0, 0, 1, 10 + i % PEERS]
}

#[derive(Default)]
struct TestClock(AtomicU64);

impl stack::Clock for TestClock {
    fn now(&self) -> Instant {
        Instant::from_nanos(self.0.load(Ordering::Acquire))
    }
}

struct Bench {
    pool: Mempool,
    port: VethPort,
    wire: VethWire,
    group: StackGroup,
    clock: Arc<TestClock>,
    apis: Vec<Api>,
    listeners: Vec<Fd>,
    accepted: u64,
    /// SYN-ACKs seen, by peer IP and port: (the peer's next sequence number, ours).
    synacks: HashMap<(Ipv4Addr, u16), (u32, u32)>,
    /// ICMP echo replies the stacks sent.
    echo_replies: u64,
}

impl Bench {
    fn new() -> Bench {
        let pool = Mempool::new(MempoolConfig::new("bad-input", 4096)).unwrap();
        let (port, wire) = Veth::new("veth-bad", MAC, pool.clone());
        let group = StackGroup::new(Arc::new(port.clone()), pool.clone(), GroupConfig::new(2, MAC, IP)).unwrap();
        let clock = Arc::new(TestClock::default());
        let mut bench = Bench {
            pool,
            port,
            wire,
            group,
            clock,
            apis: Vec::new(),
            listeners: Vec::new(),
            accepted: 0,
            synacks: HashMap::new(),
            echo_replies: 0,
        };
        // One listener per stack on port 80, as an RSS application does.
        for home in 0..2 {
            let api = Api::new(&bench.group, home, bench.clock.clone());
            let fd = api.socket(SockType::Stream).unwrap();
            bench.block_on(api.setsockopt(fd, SockOpt::ReuseAddr(true))).unwrap();
            bench.block_on(api.setsockopt(fd, SockOpt::NonBlocking(true))).unwrap();
            bench.block_on(api.bind(fd, SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), PORT))).unwrap();
            bench.block_on(api.listen(fd, 8)).unwrap();
            bench.apis.push(api);
            bench.listeners.push(fd);
        }
        // Teach the stacks the peers' MAC addresses.
        let arps: Vec<Vec<u8>> = (0..PEERS).map(arp_reply).collect();
        bench.inject(&arps);
        bench.poll();
        bench
    }

    fn now(&self) -> Instant {
        stack::Clock::now(&*self.clock)
    }

    fn advance(&self, by: Duration) {
        self.clock.0.fetch_add(by.as_nanos() as u64, Ordering::AcqRel);
    }

    /// Polls `fut` to completion, polling the stacks between tries.
    fn block_on<T>(&mut self, fut: impl Future<Output = T>) -> T {
        let mut fut = pin!(fut);
        let mut cx = Context::from_waker(Waker::noop());
        for _ in 0..10_000 {
            if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
                return v;
            }
            self.poll();
        }
        panic!("a stack call never completed");
    }

    /// Polls every stack until they are idle, dropping what they transmit.
    fn poll(&mut self) {
        let now = self.now();
        for _ in 0..1000 {
            let mut busy = false;
            for i in 0..self.group.len() {
                busy |= self.group.poll(i, now);
            }
            self.drain_tx();
            if !busy {
                return;
            }
        }
        panic!("stacks still busy after 1000 rounds");
    }

    fn drain_tx(&mut self) {
        let mut out = Vec::new();
        while self.wire.take_tx(&mut out, 256) > 0 {
            // Whatever the stack sent must at least be an Ethernet frame from us.
            for m in &out {
                let frame = EthernetFrame::new_checked(m.data()).expect("stack sent a runt frame");
                assert_eq!(frame.src_addr(), EthernetAddress(MAC), "stack sent a frame with a foreign source MAC");
                let Ok(ip) = Ipv4Packet::new_checked(frame.payload()) else { continue };
                if ip.next_header() == IpProtocol::Icmp && ip.payload().first() == Some(&0) {
                    self.echo_replies += 1;
                }
                let Ok(tcp) = TcpPacket::new_checked(ip.payload()) else { continue };
                if tcp.syn() && tcp.ack() {
                    let next = (tcp.ack_number().0 as u32, (tcp.seq_number().0 as u32).wrapping_add(1));
                    self.synacks.insert((ip.dst_addr(), tcp.dst_port()), next);
                }
            }
            out.clear(); // dropping the mbufs returns them to the pool
        }
    }

    fn inject(&mut self, frames: &[Vec<u8>]) {
        let mut mbufs: Vec<Mbuf> = frames
            .iter()
            .map(|f| {
                let mut m = self.pool.alloc(INJECT).expect("pool exhausted while injecting");
                assert!(m.extend_from_slice(f), "frame of {} bytes does not fit an mbuf", f.len());
                m
            })
            .collect();
        self.wire.put_rx(&mut mbufs);
        assert!(mbufs.is_empty(), "put_rx must drain its input");
    }

    /// Accepts (and closes) whatever the listeners have, as an application would.
    fn accept_all(&mut self) {
        for k in 0..self.apis.len() {
            let api = self.apis[k].clone();
            let fd = self.listeners[k];
            loop {
                match self.block_on(api.accept(fd)) {
                    Ok((conn, _peer)) => {
                        self.accepted += 1;
                        // recv on the fresh connection must answer, whatever its state.
                        let _ = self.block_on(api.setsockopt(conn, SockOpt::NonBlocking(true)));
                        let _ = self.block_on(api.recv(conn, 4096));
                        self.block_on(api.close(conn)).expect("closing an accepted connection");
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) => panic!("accept failed: {e}"),
                }
            }
        }
    }

    /// Lets the stacks run their timers for `span` of time.
    fn run_timers(&mut self, span: Duration) {
        let end = self.now() + span;
        while self.now() < end {
            self.poll();
            let next = (0..self.group.len()).filter_map(|i| self.group.poll_at(i)).min();
            match next {
                Some(t) if t > self.now() && t <= end => {
                    let step = t.as_nanos() - self.now().as_nanos();
                    self.advance(Duration::from_nanos(step));
                }
                Some(t) if t <= self.now() => self.advance(Duration::from_millis(1)),
                _ => break,
            }
        }
        self.poll();
    }

    fn check_at_rest(&self, when: &str) {
        self.port.check_accounting().unwrap_or_else(|e| panic!("{when}: port accounting: {e}"));
        for q in 0..self.group.len() as u16 {
            assert_eq!(self.port.rx_queue_len(q), 0, "{when}: receive queue {q} not drained");
        }
        assert_eq!(self.pool.in_use(), 0, "{when}: mbufs still in use");
    }
}

fn ethernet(dst: [u8; 6], src: [u8; 6], ethertype: EthernetProtocol, payload_len: usize) -> (Vec<u8>, EthernetRepr) {
    let repr = EthernetRepr { src_addr: EthernetAddress(src), dst_addr: EthernetAddress(dst), ethertype };
    let mut buf = vec![0; repr.buffer_len() + payload_len];
    repr.emit(&mut EthernetFrame::new_unchecked(&mut buf[..]));
    (buf, repr)
}

fn arp_reply(i: u8) -> Vec<u8> {
    let repr = ArpRepr::EthernetIpv4 {
        operation: ArpOperation::Reply,
        source_hardware_addr: EthernetAddress(peer_mac(i)),
        source_protocol_addr: peer_ip(i),
        target_hardware_addr: EthernetAddress(MAC),
        target_protocol_addr: IP,
    };
    let (mut buf, _) = ethernet(MAC, peer_mac(i), EthernetProtocol::Arp, repr.buffer_len());
    repr.emit(&mut ArpPacket::new_unchecked(&mut buf[14..]));
    buf
}

/// An IPv4 frame from peer `i` to the stack carrying `proto` with `l4_len` bytes, L4 left zeroed.
fn ipv4_frame(i: u8, proto: IpProtocol, l4_len: usize) -> Vec<u8> {
    let ip = Ipv4Repr { src_addr: peer_ip(i), dst_addr: IP, next_header: proto, payload_len: l4_len, hop_limit: 64 };
    let (mut buf, _) = ethernet(MAC, peer_mac(i), EthernetProtocol::Ipv4, ip.buffer_len() + l4_len);
    let mut packet = Ipv4Packet::new_unchecked(&mut buf[14..]);
    ip.emit(&mut packet, &smoltcp::phy::ChecksumCapabilities::default());
    buf
}

/// A random TCP segment to port 80 (or another port) with a valid checksum.
#[derive(Clone, Debug)]
struct Segment {
    peer: u8,
    src_port: u16,
    to_listener: bool,
    flags: u8,
    seq: u32,
    ack: u32,
    window: u16,
    urgent: u16,
    /// Use the sequence numbers of the connection the stack offered this
    /// peer (from its last SYN-ACK), so the segment lands in the window.
    in_window: bool,
    /// Extra option bytes (data offset grows by their length / 4).
    options: Vec<u8>,
    payload: Vec<u8>,
}

impl Segment {
    fn frame(&self) -> Vec<u8> {
        let options_len = self.options.len() / 4 * 4;
        let header = 20 + options_len;
        let l4_len = header + self.payload.len();
        let mut buf = ipv4_frame(self.peer, IpProtocol::Tcp, l4_len);
        {
            let mut tcp = TcpPacket::new_unchecked(&mut buf[34..]);
            tcp.set_src_port(self.src_port);
            tcp.set_dst_port(if self.to_listener { PORT } else { 81 });
            tcp.set_seq_number(smoltcp::wire::TcpSeqNumber(self.seq as i32));
            tcp.set_ack_number(smoltcp::wire::TcpSeqNumber(self.ack as i32));
            tcp.set_header_len(header as u8);
            // Flags by hand: the low byte of the 16-bit offset/flags word.
            tcp.set_window_len(self.window);
            tcp.set_urgent_at(self.urgent);
        }
        buf[34 + 13] = self.flags;
        buf[34 + 20..34 + header].copy_from_slice(&self.options[..options_len]);
        buf[34 + header..].copy_from_slice(&self.payload);
        let mut tcp = TcpPacket::new_unchecked(&mut buf[34..]);
        tcp.fill_checksum(&peer_ip(self.peer).into(), &IP.into());
        buf
    }
}

fn valid_templates() -> Vec<Vec<u8>> {
    let syn = Segment {
        peer: 0,
        src_port: 1000,
        to_listener: true,
        flags: 0x02,
        seq: 1,
        ack: 0,
        window: 1024,
        urgent: 0,
        in_window: false,
        options: vec![2, 4, 0x05, 0xb4], // MSS 1460
        payload: vec![],
    };
    let mut udp = ipv4_frame(1, IpProtocol::Udp, 8 + 16);
    {
        let mut p = UdpPacket::new_unchecked(&mut udp[34..]);
        p.set_src_port(5000);
        p.set_dst_port(53);
        p.set_len(24);
        p.fill_checksum(&peer_ip(1).into(), &IP.into());
    }
    let mut icmp = ipv4_frame(2, IpProtocol::Icmp, 8 + 32);
    {
        let l4 = &mut icmp[34..];
        l4[0] = 8; // echo request
        l4[4..6].copy_from_slice(&7u16.to_be_bytes());
        let sum = internet_checksum(l4);
        l4[2..4].copy_from_slice(&sum.to_be_bytes());
    }
    vec![syn.frame(), arp_reply(3), udp, icmp]
}

fn internet_checksum(data: &[u8]) -> u16 {
    let mut sum = 0u32;
    for chunk in data.chunks(2) {
        let word = u16::from_be_bytes([chunk[0], *chunk.get(1).unwrap_or(&0)]);
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[derive(Clone, Debug)]
enum Input {
    /// Random bytes; `ours` rewrites the header so the port accepts the frame.
    Garbage { bytes: Vec<u8>, ours: Option<u16> },
    /// A valid frame cut short.
    Truncated { template: usize, keep: usize },
    /// A random TCP segment with valid checksums.
    Tcp(Segment),
}

impl Input {
    fn frame(&self, templates: &[Vec<u8>], synacks: &HashMap<(Ipv4Addr, u16), (u32, u32)>) -> Vec<u8> {
        match self {
            Input::Garbage { bytes, ours } => {
                let mut f = bytes.clone();
                if let Some(ethertype) = ours {
                    f.resize(f.len().max(14), 0);
                    f[..6].copy_from_slice(&MAC);
                    f[12..14].copy_from_slice(&ethertype.to_be_bytes());
                }
                f
            }
            Input::Truncated { template, keep } => {
                let t = &templates[template % templates.len()];
                t[..keep % t.len()].to_vec()
            }
            Input::Tcp(seg) => match synacks.get(&(peer_ip(seg.peer), seg.src_port)) {
                Some(&(seq, ack)) if seg.in_window => {
                    Segment { seq: seq.wrapping_add(seg.seq % 3), ack, flags: seg.flags | 0x10, ..seg.clone() }.frame()
                }
                _ => seg.frame(),
            },
        }
    }
}

fn flags() -> impl Strategy<Value = u8> {
    prop_oneof![
        Just(0x02),  // SYN
        Just(0x10),  // ACK
        Just(0x18),  // PSH|ACK
        Just(0x11),  // FIN|ACK
        Just(0x04),  // RST
        Just(0x14),  // RST|ACK
        Just(0x12),  // SYN|ACK
        Just(0x03),  // SYN|FIN
        Just(0x00),  // no flags
        any::<u8>(), // anything, ECE/CWR included
    ]
}

fn segment() -> impl Strategy<Value = Segment> {
    (
        (0..PEERS, prop::sample::select(&PEER_PORTS[..]), prop::bool::weighted(0.9), flags()),
        (
            prop_oneof![any::<u32>(), 0u32..4, Just(u32::MAX)],
            prop_oneof![any::<u32>(), 0u32..4, Just(u32::MAX)],
            any::<u16>(),
            any::<u16>(),
        ),
        prop::collection::vec(any::<u8>(), 0..24),
        prop::collection::vec(any::<u8>(), 0..1400),
        any::<bool>(),
    )
        .prop_map(
            |((peer, src_port, to_listener, flags), (seq, ack, window, urgent), options, payload, in_window)| Segment {
                in_window,
                peer,
                src_port,
                to_listener,
                flags,
                seq,
                ack,
                window,
                urgent,
                options,
                payload,
            },
        )
}

fn input() -> impl Strategy<Value = Input> {
    prop_oneof![
        2 => (prop::collection::vec(any::<u8>(), 0..1514), prop::option::of(prop_oneof![
            Just(0x0800u16), Just(0x0806), Just(0x86dd), any::<u16>()
        ]))
            .prop_map(|(bytes, ours)| Input::Garbage { bytes, ours }),
        2 => (any::<usize>(), any::<usize>()).prop_map(|(template, keep)| Input::Truncated { template, keep }),
        5 => segment().prop_map(Input::Tcp),
    ]
}

fn run(batches: Vec<(Vec<Input>, u16)>) {
    let templates = valid_templates();
    let mut bench = Bench::new();
    for (batch, advance_ms) in batches {
        let frames: Vec<Vec<u8>> = batch.iter().map(|i| i.frame(&templates, &bench.synacks)).collect();
        bench.inject(&frames);
        bench.poll();
        bench.accept_all();
        bench.advance(Duration::from_millis(u64::from(advance_ms)));
        bench.poll();
    }
    // Let retransmission and keep-alive timers run out, then check the
    // stack still serves its listeners after all that.
    bench.run_timers(Duration::from_secs(600));
    bench.accept_all();
    bench.poll();
    bench.check_at_rest("after draining");
    let rx: u64 = (0..bench.group.len()).map(|i| bench.group.stats(i).nic_rx).sum();
    if std::env::var_os("BAD_INPUT_VERBOSE").is_some() {
        eprintln!("accepted {} connections, {rx} frames in", bench.accepted);
    }
    assert!(rx >= PEERS as u64, "the stacks took frames from their queues ({rx})");
    let Bench { pool, port, wire, group, apis, .. } = bench;
    drop((apis, group, wire, port));
    assert_eq!(pool.in_use(), 0, "mbufs still in use after dropping the group and the port");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn hostile_frames_do_not_panic_or_leak(
        batches in prop::collection::vec((prop::collection::vec(input(), 1..32), 0u16..2000), 1..12)
    ) {
        run(batches);
    }
}

/// A handshake by hand, then garbage on the established connection: the
/// stack still delivers the connection and accounts for every buffer.
#[test]
fn established_connection_survives_random_segments() {
    let mut bench = Bench::new();
    let mut seg = Segment {
        peer: 0,
        src_port: 1000,
        to_listener: true,
        flags: 0x02,
        seq: 1000,
        ack: 0,
        window: 65535,
        urgent: 0,
        in_window: false,
        options: vec![],
        payload: vec![],
    };
    bench.inject(&[seg.frame()]);
    // Capture the SYN-ACK to learn the stack's sequence number.
    let now = bench.now();
    for i in 0..bench.group.len() {
        bench.group.poll(i, now);
    }
    let mut out = Vec::new();
    bench.wire.take_tx(&mut out, 64);
    let synack = out
        .iter()
        .find_map(|m| {
            let eth = EthernetFrame::new_checked(m.data()).ok()?;
            let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
            let tcp = TcpPacket::new_checked(ip.payload()).ok()?;
            (tcp.syn() && tcp.ack() && tcp.dst_port() == 1000).then(|| tcp.seq_number().0 as u32)
        })
        .expect("the stack answers a SYN to its listener with a SYN-ACK");
    drop(out);
    seg.flags = 0x10;
    seg.seq = 1001;
    seg.ack = synack.wrapping_add(1);
    bench.inject(&[seg.frame()]);
    seg.flags = 0x18;
    seg.payload = b"hello".to_vec();
    bench.inject(&[seg.frame()]);
    bench.poll();
    // Accept by hand to see the data.
    let (api, listener) = (bench.apis.clone(), bench.listeners.clone());
    let mut got = None;
    for (api, fd) in api.iter().zip(&listener) {
        if let Ok((conn, peer)) = bench.block_on(api.accept(*fd)) {
            assert_eq!(peer, SocketAddr::new(IpAddr::V4(peer_ip(0)), 1000));
            got = Some(bench.block_on(api.recv(conn, 100)).unwrap());
            // Now garbage on this connection: random flags and numbers.
            for k in 0..200u32 {
                let junk = Segment {
                    flags: [0x10, 0x18, 0x11, 0x04, 0x02, 0x12, 0xff][k as usize % 7],
                    seq: 1006u32.wrapping_add(k.wrapping_mul(0x9e37_79b9)),
                    ack: synack.wrapping_add(k.wrapping_mul(7919)),
                    window: (k * 331) as u16,
                    payload: vec![k as u8; (k as usize * 37) % 1400],
                    ..seg.clone()
                };
                bench.inject(&[junk.frame()]);
                bench.poll();
                bench.advance(Duration::from_millis(3));
            }
            let _ = bench.block_on(api.close(conn));
        }
    }
    assert_eq!(got.as_deref(), Some(&b"hello"[..]), "the connection delivers the payload sent in the handshake");
    bench.run_timers(Duration::from_secs(600));
    bench.check_at_rest("after the connection");
}

/// An echo request from peer 0 to `dst` (Ethernet broadcast unless `dst`
/// is the stack's own address), or, with `fragment`, a UDP datagram's first
/// fragment to the stack.
fn special(dst: Ipv4Addr, fragment: bool) -> Vec<u8> {
    let proto = if fragment { IpProtocol::Udp } else { IpProtocol::Icmp };
    let mut frame = ipv4_frame(0, proto, 16);
    let mac = if dst == IP { MAC } else { [0xff; 6] };
    frame[..6].copy_from_slice(&mac);
    let mut ip = Ipv4Packet::new_unchecked(&mut frame[14..]);
    ip.set_dst_addr(dst);
    ip.set_more_frags(fragment);
    ip.fill_checksum();
    let l4 = &mut frame[34..];
    if !fragment {
        l4[..8].copy_from_slice(&[8, 0, 0, 0, 0x12, 0x34, 0, 1]);
        let sum = internet_checksum(l4);
        l4[2..4].copy_from_slice(&sum.to_be_bytes());
    }
    frame
}

#[test]
fn fragments_and_broadcast_echoes_are_counted_not_answered() {
    let mut bench = Bench::new();
    let total = |bench: &Bench, f: fn(&stack::StackStats) -> u64| (0..2).map(|i| f(&bench.group.stats(i))).sum::<u64>();
    bench.inject(&[special(IP, false)]);
    bench.poll();
    assert_eq!(bench.echo_replies, 1, "a unicast echo request is answered");
    let groups = [Ipv4Addr::BROADCAST, Ipv4Addr::new(10, 0, 0, 255), Ipv4Addr::new(224, 0, 0, 1)];
    bench.inject(&groups.map(|dst| special(dst, false)));
    bench.inject(&[special(IP, true), special(IP, true)]);
    bench.poll();
    assert_eq!(bench.echo_replies, 1, "echo requests to a group address are not answered");
    assert_eq!(total(&bench, |s| s.broadcast_echo_ignored), 3);
    assert_eq!(total(&bench, |s| s.fragment_drops), 2);
    bench.check_at_rest("after the special frames");
}

//! Test bench for the bridge: an in-memory `Wire`, a small network of them
//! around one bridge, and frame builders.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use ethdev::{Instant, Mbuf, Mempool, MempoolConfig, Owner, Wire};
use etherparse::{PacketBuilder, VlanId};
use user_vbridge::{Bridge, BridgeConfig, PortConfig, PortId};

/// Frames a test port has queued for transmission and has received.
#[derive(Default)]
pub struct WireState {
    /// Frames the port transmits, oldest first.
    pub tx: VecDeque<Mbuf>,
    /// Frames the bridge delivered, in order.
    pub rx: Vec<Mbuf>,
    /// The port's link state.
    pub link_up: bool,
    /// Whether the port takes TCP super-frames whole.
    pub takes_super: bool,
}

/// A port whose two ends are plain queues shared with the test.
pub struct TestWire {
    name: String,
    state: Arc<Mutex<WireState>>,
}

impl TestWire {
    /// A wire with its link up, and the state the test keeps.
    pub fn new(name: String) -> (TestWire, Arc<Mutex<WireState>>) {
        let state = Arc::new(Mutex::new(WireState { link_up: true, ..WireState::default() }));
        (TestWire { name, state: Arc::clone(&state) }, state)
    }
}

impl Wire for TestWire {
    fn take_tx(&mut self, out: &mut Vec<Mbuf>, max: usize) -> usize {
        let mut state = lock(&self.state);
        let n = max.min(state.tx.len());
        out.extend(state.tx.drain(..n));
        n
    }

    fn put_rx(&mut self, frames: &mut Vec<Mbuf>) {
        lock(&self.state).rx.append(frames);
    }

    fn link_up(&self) -> bool {
        lock(&self.state).link_up
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn takes_super_frames(&self) -> bool {
        lock(&self.state).takes_super
    }
}

fn lock(state: &Mutex<WireState>) -> MutexGuard<'_, WireState> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// A bridge with test ports and a pool for the frames the test sends.
pub struct Net {
    pub bridge: Bridge,
    pub pool: Mempool,
    pub wires: Vec<Arc<Mutex<WireState>>>,
    pub ids: Vec<PortId>,
}

impl Net {
    /// `ports` perfect ports on a bridge with `config`.
    pub fn new(config: BridgeConfig, ports: usize) -> Net {
        Net::with_ports(config, vec![PortConfig::default(); ports])
    }

    /// One port per entry of `ports`.
    pub fn with_ports(config: BridgeConfig, ports: Vec<PortConfig>) -> Net {
        let mut net = Net {
            bridge: Bridge::new(config).expect("valid bridge config"),
            pool: Mempool::new(MempoolConfig::new("test-frames", 4096)).expect("pool"),
            wires: Vec::new(),
            ids: Vec::new(),
        };
        for config in ports {
            net.add_port(config);
        }
        net
    }

    /// Adds a port with `config`.
    pub fn add_port(&mut self, config: PortConfig) -> PortId {
        let (wire, state) = TestWire::new(format!("test{}", self.wires.len()));
        let id = self.bridge.add_port(Box::new(wire), config).expect("valid port config");
        self.wires.push(state);
        self.ids.push(id);
        id
    }

    /// Queues `frame` for transmission by `port`; returns the buffer's
    /// index in the test pool.
    pub fn send(&self, port: usize, frame: &[u8]) -> u32 {
        let mut mbuf = self.pool.alloc(Owner(1)).expect("test pool has room");
        assert!(mbuf.extend_from_slice(frame));
        let index = mbuf.index();
        lock(&self.wires[port]).tx.push_back(mbuf);
        index
    }

    /// Polls the bridge at `t`.
    pub fn poll(&mut self, t: Instant) {
        self.bridge.poll(t);
    }

    /// Polls at every pending event up to `t`, then at `t`.
    pub fn advance_to(&mut self, t: Instant) {
        for _ in 0..1_000_000 {
            match self.bridge.poll_at() {
                Some(at) if at < t => self.bridge.poll(at),
                _ => break,
            }
        }
        self.bridge.poll(t);
    }

    /// Advances to `t`, then sends one frame and polls at `t`.
    pub fn send_at(&mut self, port: usize, frame: &[u8], t: Instant) {
        self.advance_to(t);
        self.send(port, frame);
        self.poll(t);
    }

    /// The bytes of every frame `port` received since the last call.
    pub fn take_rx(&self, port: usize) -> Vec<Vec<u8>> {
        lock(&self.wires[port]).rx.drain(..).map(|m| m.data().to_vec()).collect()
    }

    /// The received buffers themselves.
    pub fn take_rx_mbufs(&self, port: usize) -> Vec<Mbuf> {
        lock(&self.wires[port]).rx.drain(..).collect()
    }

    /// How many frames each port received since the last call (and frees
    /// them).
    pub fn rx_counts(&self) -> Vec<usize> {
        (0..self.wires.len()).map(|p| self.take_rx(p).len()).collect()
    }

    /// Sets whether the port's wire takes super-frames whole.
    pub fn set_takes_super(&self, port: usize, on: bool) {
        lock(&self.wires[port]).takes_super = on;
    }

    /// Queues `mbuf` for transmission by `port`.
    pub fn send_mbuf(&self, port: usize, mbuf: Mbuf) {
        lock(&self.wires[port]).tx.push_back(mbuf);
    }

    /// Sets the link state the port's wire reports.
    pub fn set_link(&self, port: usize, up: bool) {
        lock(&self.wires[port]).link_up = up;
    }

    /// Checks accounting, drops every frame and checks both pools are back
    /// to zero buffers in use.
    pub fn finish(self) {
        self.bridge.check_accounting().expect("accounting closes");
        let (bridge_pool, test_pool) = (self.bridge.pool().clone(), self.pool.clone());
        drop(self.bridge);
        for wire in &self.wires {
            let mut state = lock(wire);
            state.tx.clear();
            state.rx.clear();
        }
        assert_eq!(bridge_pool.in_use(), 0, "bridge pool leaked");
        assert_eq!(test_pool.in_use(), 0, "test pool leaked");
    }
}

/// A locally administered unicast MAC ending in `n`.
pub fn mac(n: u8) -> [u8; 6] {
    [2, 0, 0, 0, 0, n]
}

/// The broadcast MAC.
pub const BROADCAST: [u8; 6] = [0xff; 6];

/// Offset of the sequence number in frames built by [`numbered`].
const SEQ_OFFSET: usize = 14 + 20 + 8;

/// A 64-byte UDP/IPv4 frame from `src` to `dst`.
pub fn frame(src: [u8; 6], dst: [u8; 6]) -> Vec<u8> {
    numbered(src, dst, 0, 64)
}

/// A UDP/IPv4 frame of `len` bytes (at least 46) carrying `seq`.
pub fn numbered(src: [u8; 6], dst: [u8; 6], seq: u32, len: usize) -> Vec<u8> {
    let builder = PacketBuilder::ethernet2(src, dst).ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64).udp(1000, 2000);
    let mut payload = vec![0u8; len - SEQ_OFFSET];
    payload[..4].copy_from_slice(&seq.to_be_bytes());
    let mut out = Vec::with_capacity(len);
    builder.write(&mut out, &payload).expect("frame builds");
    out
}

/// A 64-byte UDP/IPv4 frame with one 802.1Q tag.
pub fn tagged(src: [u8; 6], dst: [u8; 6], vlan: u16) -> Vec<u8> {
    let builder = PacketBuilder::ethernet2(src, dst)
        .single_vlan(VlanId::try_new(vlan).expect("vlan id"))
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .udp(1000, 2000);
    let mut out = Vec::new();
    builder.write(&mut out, &[0u8; 18]).expect("frame builds");
    out
}

/// The sequence number of a frame built by [`numbered`].
pub fn seq_of(frame: &[u8]) -> u32 {
    u32::from_be_bytes(frame[SEQ_OFFSET..SEQ_OFFSET + 4].try_into().expect("4 bytes"))
}

/// Milliseconds as an `Instant`.
pub fn ms(n: u64) -> Instant {
    Instant::from_millis(n)
}

//! Random traffic on randomly impaired ports, with ports going up and down:
//! the bridge never panics, its accounting always closes, and every buffer
//! comes back.

use std::time::Duration;

use ethdev::Instant;
use proptest::collection::vec;
use proptest::prelude::*;
use user_vbridge::{BridgeConfig, Direction, Flap, Impairments, LimitPolicy, PortConfig, RateLimit, Reorder};

use crate::common::{mac, tagged, Net, BROADCAST};

const PORTS: usize = 4;

#[derive(Clone, Debug)]
enum Op {
    Send { port: usize, bytes: Vec<u8> },
    Advance { micros: u64 },
    Admin { port: usize, up: bool },
    Link { port: usize, up: bool },
    Drain { port: usize },
}

fn address() -> impl Strategy<Value = [u8; 6]> {
    prop_oneof![
        (1u8..6).prop_map(mac),
        Just(BROADCAST),
        Just([0x01, 0x80, 0xc2, 0, 0, 0]),
        Just([0; 6]),
        any::<[u8; 6]>(),
    ]
}

/// Random bytes of any length (including shorter than a header), or a
/// well-formed tagged frame between a few addresses, possibly truncated.
fn frame_bytes() -> impl Strategy<Value = Vec<u8>> {
    let cut = prop_oneof![Just(0usize), 0usize..70];
    let structured = (address(), address(), 0u16..3, cut).prop_map(|(src, dst, vlan, cut)| {
        let mut bytes = tagged(src, dst, vlan);
        bytes.truncate(bytes.len().saturating_sub(cut));
        bytes
    });
    prop_oneof![vec(any::<u8>(), 0..80), structured]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..PORTS, frame_bytes()).prop_map(|(port, bytes)| Op::Send { port, bytes }),
        3 => (0u64..20_000).prop_map(|micros| Op::Advance { micros }),
        1 => (0..PORTS, any::<bool>()).prop_map(|(port, up)| Op::Admin { port, up }),
        1 => (0..PORTS, any::<bool>()).prop_map(|(port, up)| Op::Link { port, up }),
        1 => (0..PORTS).prop_map(|port| Op::Drain { port }),
    ]
}

fn impairments() -> impl Strategy<Value = Impairments> {
    let probability = prop_oneof![Just(0.0), 0.0..=1.0f64];
    let delay = (0u64..5_000).prop_map(Duration::from_micros);
    (probability.clone(), probability.clone(), probability.clone(), delay.clone(), delay, any::<[bool; 4]>()).prop_map(
        |(loss, duplicate, corrupt, delay, jitter, [reorder, rate, mtu, flap])| Impairments {
            loss,
            duplicate,
            corrupt,
            delay,
            jitter,
            reorder: reorder.then_some(Reorder { probability: 0.3, extra_delay: Duration::from_millis(2) }),
            rate: rate.then_some(RateLimit { bits_per_sec: 10_000_000, burst_bytes: 200 }),
            mtu: mtu.then_some(40),
            flap: flap.then_some(Flap {
                offset: Duration::from_millis(3),
                period: Duration::from_millis(20),
                down: Duration::from_millis(5),
            }),
            ..Impairments::default()
        },
    )
}

fn port_config() -> impl Strategy<Value = PortConfig> {
    let maybe = prop_oneof![Just(Impairments::default()), impairments()];
    (any::<bool>(), maybe.clone(), maybe).prop_map(|(hairpin, ingress, egress)| PortConfig { hairpin, ingress, egress })
}

fn bridge_config() -> impl Strategy<Value = BridgeConfig> {
    let policy = prop_oneof![Just(LimitPolicy::StopLearning), Just(LimitPolicy::EvictOldest)];
    (any::<u64>(), 1u32..16, proptest::option::of(0usize..4), policy).prop_map(|(seed, pool, limit, policy)| {
        BridgeConfig {
            seed,
            pool_capacity: pool,
            fdb_limit: limit,
            limit_policy: policy,
            ageing_time: Duration::from_millis(30),
            ..BridgeConfig::default()
        }
    })
}

fn apply(net: &mut Net, op: Op, now: &mut Instant) {
    match op {
        Op::Send { port, bytes } => {
            net.send(port, &bytes);
        }
        Op::Advance { micros } => *now = *now + Duration::from_micros(micros),
        Op::Admin { port, up } => net.bridge.set_port_up(net.ids[port], up, *now).expect("port exists"),
        Op::Link { port, up } => net.set_link(port, up),
        Op::Drain { port } => {
            net.take_rx(port);
        }
    }
    net.poll(*now);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn random_traffic_keeps_accounting_closed_and_leaks_nothing(
        config in bridge_config(),
        ports in vec(port_config(), PORTS),
        ops in vec(op(), 0..150),
    ) {
        let mut net = Net::with_ports(config, ports);
        let mut now = Instant::ZERO;
        for op in ops {
            apply(&mut net, op, &mut now);
            prop_assert_eq!(net.bridge.check_accounting(), Ok(()));
            prop_assert!(net.bridge.poll_at().is_none_or(|at| at >= now));
        }
        net.advance_to(now + Duration::from_secs(1));
        for &port in &net.ids {
            prop_assert_eq!(net.bridge.in_flight(port, Direction::Ingress), 0);
            prop_assert_eq!(net.bridge.in_flight(port, Direction::Egress), 0);
        }
        prop_assert_eq!(net.bridge.fdb_stats().size, 0, "everything aged out");
        net.finish();
    }
}

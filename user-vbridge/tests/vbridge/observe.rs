//! What a caller observes: taps, `poll_at`, accounting, configuration
//! errors and per-poll limits.

use std::time::Duration;

use ethdev::Instant;
use rstest::{fixture, rstest};
use user_vbridge::{Bridge, BridgeConfig, Direction, Flap, Impairments, PortConfig, PortId, TapFilter};

use crate::common::{frame, mac, ms, Net, TestWire, BROADCAST};

#[fixture]
fn net() -> Net {
    Net::new(BridgeConfig::default(), 3)
}

fn delayed(delay_ms: u64) -> Impairments {
    Impairments { delay: Duration::from_millis(delay_ms), ..Impairments::default() }
}

#[rstest]
fn taps_record_the_frames_crossing_their_points(mut net: Net) {
    let all = net.bridge.add_tap(TapFilter::default());
    let one = net.bridge.add_tap(TapFilter { port: Some(net.ids[1]), direction: Some(Direction::Egress) });
    let ingress = net.bridge.add_tap(TapFilter { port: None, direction: Some(Direction::Ingress) });
    let sent = frame(mac(1), BROADCAST);
    net.send_at(0, &sent, ms(5));
    net.send_at(0, &[1, 2, 3], ms(6));
    net.rx_counts();
    let seen: Vec<_> = net.bridge.take_captures(all).into_iter().map(|c| (c.port.0, c.direction, c.time)).collect();
    let expected = [
        (0, Direction::Ingress, ms(5)),
        (1, Direction::Egress, ms(5)),
        (2, Direction::Egress, ms(5)),
        (0, Direction::Ingress, ms(6)),
    ];
    assert_eq!(seen, expected, "ingress as transmitted (even if dropped), egress as delivered");
    let one_frames = net.bridge.take_captures(one);
    assert_eq!((one_frames.len(), &one_frames[0].data), (1, &sent));
    assert_eq!(net.bridge.take_captures(ingress).len(), 2);
    assert!(net.bridge.take_captures(all).is_empty(), "taking empties the tap");
    assert!(net.bridge.remove_tap(all) && !net.bridge.remove_tap(all));
    net.send_at(0, &sent, ms(7));
    net.rx_counts();
    assert!(net.bridge.take_captures(all).is_empty());
    assert_eq!(net.bridge.take_captures(one).len(), 1);
    net.finish();
}

#[rstest]
fn poll_at_names_the_next_event_and_is_none_when_idle(mut net: Net) {
    assert_eq!(net.bridge.poll_at(), None);
    net.poll(ms(1));
    assert_eq!(net.bridge.poll_at(), None, "idle is not 'now'");
    net.bridge.set_impairments(net.ids[1], Direction::Egress, delayed(5)).unwrap();
    net.send_at(0, &frame(mac(1), BROADCAST), ms(10));
    assert_eq!(net.bridge.poll_at(), Some(ms(15)));
    assert_eq!(net.rx_counts(), [0, 0, 1]);
    assert_eq!(net.bridge.in_flight(net.ids[1], Direction::Egress), 1);
    net.poll(ms(15));
    assert_eq!(net.rx_counts(), [0, 1, 0]);
    assert_eq!(net.bridge.poll_at(), Some(ms(10) + Duration::from_secs(300)), "then the ageing deadline");
    net.finish();
}

#[rstest]
fn a_busy_port_is_served_in_slices(mut net: Net) {
    for _ in 0..600 {
        net.send(0, &frame(mac(1), BROADCAST));
    }
    net.poll(ms(1));
    assert_eq!(net.rx_counts(), [0, 512, 512]);
    assert_eq!(net.bridge.poll_at(), Some(ms(1)), "frames are still waiting");
    net.poll(ms(1));
    assert_eq!(net.rx_counts(), [0, 88, 88]);
    assert_eq!(net.bridge.poll_at(), Some(ms(1) + Duration::from_secs(300)));
    net.finish();
}

#[rstest]
fn accounting_closes_with_frames_in_flight_and_drops_of_every_kind() {
    let lossy = Impairments { loss: 0.3, duplicate: 0.2, delay: Duration::from_millis(3), ..Impairments::default() };
    let ports = vec![
        PortConfig { ingress: lossy, ..PortConfig::default() },
        PortConfig { egress: delayed(10), ..PortConfig::default() },
        PortConfig::default(),
    ];
    let config = BridgeConfig { pool_capacity: 8, ..BridgeConfig::default() };
    let mut net = Net::with_ports(config, ports);
    let mut in_flight_seen = false;
    for step in 0..200u64 {
        let from = (step % 3) as usize;
        let dst = if step % 5 == 0 { BROADCAST } else { mac((step % 4) as u8 + 1) };
        net.send(from, &frame(mac(from as u8 + 1), dst));
        net.send(from, &[0xff; 10]);
        net.poll(ms(step));
        in_flight_seen |= net.bridge.in_flight(net.ids[1], Direction::Egress) > 0;
        net.bridge.check_accounting().unwrap();
        if step % 7 == 0 {
            net.rx_counts();
        }
    }
    assert!(in_flight_seen);
    net.rx_counts();
    net.finish();
}

#[rstest]
fn invalid_configuration_is_refused_naming_the_field() {
    let zero_ageing = BridgeConfig { ageing_time: Duration::ZERO, ..BridgeConfig::default() };
    assert_eq!(Bridge::new(zero_ageing).unwrap_err().field, "bridge.ageing_time");
    let no_pool = BridgeConfig { pool_capacity: 0, ..BridgeConfig::default() };
    assert_eq!(Bridge::new(no_pool).unwrap_err().field, "mempool.capacity");
    let mut bridge = Bridge::new(BridgeConfig::default()).unwrap();
    let flap = Flap { offset: Duration::ZERO, period: Duration::ZERO, down: Duration::ZERO };
    let bad =
        PortConfig { ingress: Impairments { flap: Some(flap), ..Impairments::default() }, ..PortConfig::default() };
    let (wire, _state) = TestWire::new("bad".into());
    assert_eq!(bridge.add_port(Box::new(wire), bad).unwrap_err().field, "vbridge.port0.ingress.flap");
    assert_eq!(bridge.port_count(), 0);
    assert!(bridge.set_port_up(PortId(3), false, Instant::ZERO).is_err());
    let (wire, _state) = TestWire::new("good".into());
    let id = bridge.add_port(Box::new(wire), PortConfig::default()).unwrap();
    assert_eq!(bridge.port_name(id), Some("good"));
    assert_eq!(bridge.ageing_time(), Duration::from_secs(300));
}

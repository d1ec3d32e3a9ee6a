//! Each impairment's effect, checked statistically or exactly, and
//! reproducibility from the seed.

use std::collections::BTreeMap;
use std::time::Duration;

use ethdev::stats::DropReason;
use ethdev::Instant;
use rstest::rstest;
use user_vbridge::{
    BridgeConfig, Captured, Direction, Flap, GilbertElliott, Impairments, LinkStats, PortConfig, RateLimit, Reorder,
    TapFilter,
};

use crate::common::{mac, ms, numbered, seq_of, Net};

const GAP: Duration = Duration::from_millis(1);
const LEN: usize = 64;

/// Three ports; `impairments` on port 0's ingress or port 1's egress, the
/// two links the test stream (mac(1) on port 0 to mac(2) on port 1)
/// crosses. mac(2) and mac(9) are static on ports 1 and 0.
fn impaired(direction: Direction, impairments: Impairments, seed: u64) -> Net {
    let mut ports = vec![PortConfig::default(); 3];
    match direction {
        Direction::Ingress => ports[0].ingress = impairments,
        Direction::Egress => ports[1].egress = impairments,
    }
    Net::with_ports(BridgeConfig { seed, ..BridgeConfig::default() }, ports).with_statics()
}

impl Net {
    fn with_statics(mut self) -> Net {
        self.bridge.add_static(mac(2), 0, self.ids[1]).unwrap();
        self.bridge.add_static(mac(9), 0, self.ids[0]).unwrap();
        self
    }

    fn stats(&self, port: usize, direction: Direction) -> &LinkStats {
        self.bridge.link_stats(self.ids[port], direction).unwrap()
    }
}

/// Sends `count` numbered frames of `len` bytes from port 0 to port 1, one
/// every `gap` from time zero, and returns what port 1 received, with
/// times. With `crosstalk`, port 2 sends as many frames to port 0 alongside.
fn stream(net: &mut Net, count: u32, gap: Duration, len: usize, crosstalk: bool) -> Vec<Captured> {
    let tap = net.bridge.add_tap(TapFilter { port: Some(net.ids[1]), direction: Some(Direction::Egress) });
    let mut t = Instant::ZERO;
    for seq in 0..count {
        net.advance_to(t);
        net.send(0, &numbered(mac(1), mac(2), seq, len));
        if crosstalk {
            net.send(2, &numbered(mac(3), mac(9), seq, len));
        }
        net.poll(t);
        net.rx_counts();
        t = t + gap;
    }
    net.advance_to(t + Duration::from_secs(1));
    net.rx_counts();
    net.bridge.take_captures(tap)
}

/// Latency of each received frame: capture time minus send time.
fn latencies(got: &[Captured]) -> Vec<Duration> {
    got.iter().map(|c| c.time - (Instant::ZERO + GAP * seq_of(&c.data))).collect()
}

#[rstest]
#[case::ingress(Direction::Ingress)]
#[case::egress(Direction::Egress)]
fn uniform_loss_drops_its_share(#[case] direction: Direction) {
    let mut net = impaired(direction, Impairments { loss: 0.1, ..Impairments::default() }, 1);
    let got = stream(&mut net, 10_000, GAP, LEN, false);
    let lost = 10_000 - got.len() as u64;
    assert!((800..=1200).contains(&lost), "lost {lost}");
    let link = if direction == Direction::Ingress { 0 } else { 1 };
    assert_eq!(net.stats(link, direction).drops.get(DropReason::Loss), lost);
    net.finish();
}

#[rstest]
fn burst_loss_comes_in_runs() {
    let ge = GilbertElliott { p_good_to_bad: 0.01, p_bad_to_good: 0.1, loss_good: 0.0, loss_bad: 1.0 };
    let impairments = Impairments { burst_loss: Some(ge), ..Impairments::default() };
    let mut net = impaired(Direction::Ingress, impairments, 2);
    let got = stream(&mut net, 20_000, GAP, LEN, false);
    let mut received = vec![false; 20_000];
    got.iter().for_each(|c| received[seq_of(&c.data) as usize] = true);
    let lost = received.iter().filter(|r| !**r).count();
    let runs = received.windows(2).filter(|w| w[0] && !w[1]).count() + usize::from(!received[0]);
    let mean_run = lost as f64 / runs as f64;
    assert!((1200..=2400).contains(&lost), "stationary loss is 1/11 of 20000, lost {lost}");
    assert!((7.0..=14.0).contains(&mean_run), "mean burst is 1/p_bad_to_good = 10, got {mean_run}");
    net.finish();
}

#[rstest]
fn delay_without_jitter_is_exact_and_keeps_order() {
    let impairments = Impairments { delay: Duration::from_millis(10), ..Impairments::default() };
    let mut net = impaired(Direction::Egress, impairments, 3);
    let got = stream(&mut net, 500, GAP, LEN, false);
    assert_eq!(got.iter().map(|c| seq_of(&c.data)).collect::<Vec<_>>(), (0..500).collect::<Vec<_>>());
    assert!(latencies(&got).iter().all(|&l| l == Duration::from_millis(10)));
    net.finish();
}

#[rstest]
fn jitter_spreads_latency_within_bounds() {
    let (delay, jitter) = (Duration::from_millis(10), Duration::from_millis(2));
    let mut net = impaired(Direction::Ingress, Impairments { delay, jitter, ..Impairments::default() }, 4);
    let got = stream(&mut net, 4000, GAP, LEN, false);
    assert_eq!(got.len(), 4000);
    let lat = latencies(&got);
    let (min, max) = (lat.iter().min().unwrap(), lat.iter().max().unwrap());
    assert!(*min >= delay - jitter && *max <= delay + jitter, "latency {min:?}..{max:?}");
    assert!(*min < Duration::from_micros(8_200) && *max > Duration::from_micros(11_800));
    let mean = lat.iter().sum::<Duration>() / lat.len() as u32;
    assert!(mean > Duration::from_micros(9_900) && mean < Duration::from_micros(10_100), "mean {mean:?}");
    net.finish();
}

#[rstest]
fn reorder_holds_frames_back_so_others_overtake() {
    let reorder = Reorder { probability: 0.2, extra_delay: Duration::from_millis(5) };
    let impairments = Impairments { delay: Duration::from_millis(1), reorder: Some(reorder), ..Impairments::default() };
    let mut net = impaired(Direction::Egress, impairments, 5);
    let got = stream(&mut net, 5000, GAP, LEN, false);
    let mut seqs: Vec<u32> = got.iter().map(|c| seq_of(&c.data)).collect();
    let overtaken = seqs.windows(2).filter(|w| w[1] < w[0]).count();
    let held = latencies(&got).iter().filter(|&&l| l == Duration::from_millis(6)).count();
    assert!((800..=1200).contains(&held), "held back {held}");
    assert!(overtaken > 500, "only {overtaken} inversions");
    seqs.sort_unstable();
    assert_eq!(seqs, (0..5000).collect::<Vec<_>>(), "nothing lost or duplicated");
    net.finish();
}

#[rstest]
#[case::ingress(Direction::Ingress)]
#[case::egress(Direction::Egress)]
fn duplicate_sends_some_frames_twice(#[case] direction: Direction) {
    let mut net = impaired(direction, Impairments { duplicate: 0.05, ..Impairments::default() }, 6);
    let got = stream(&mut net, 10_000, GAP, LEN, false);
    let extra = got.len() as u64 - 10_000;
    assert!((400..=600).contains(&extra), "duplicated {extra}");
    let link = if direction == Direction::Ingress { 0 } else { 1 };
    assert_eq!(net.stats(link, direction).duplicated, extra);
    let mut copies = BTreeMap::new();
    got.iter().for_each(|c| *copies.entry(seq_of(&c.data)).or_insert(0) += 1);
    assert!(copies.len() == 10_000 && copies.values().all(|&n| n == 1 || n == 2));
    net.finish();
}

#[rstest]
fn corruption_flips_one_bit_after_the_ethernet_header() {
    let mut net = impaired(Direction::Ingress, Impairments { corrupt: 0.1, ..Impairments::default() }, 7);
    let got = stream(&mut net, 10_000, GAP, LEN, false);
    assert_eq!(got.len(), 10_000, "corrupted frames are delivered");
    let mut corrupted = 0;
    for (seq, captured) in got.iter().enumerate() {
        let sent = numbered(mac(1), mac(2), seq as u32, LEN);
        let flipped: Vec<(usize, u32)> = sent
            .iter()
            .zip(&captured.data)
            .enumerate()
            .map(|(i, (a, b))| (i, (a ^ b).count_ones()))
            .filter(|&(_, bits)| bits > 0)
            .collect();
        match flipped.as_slice() {
            [] => {}
            [(at, 1)] if *at >= 14 => corrupted += 1,
            other => panic!("frame {seq}: unexpected damage {other:?}"),
        }
    }
    assert!((800..=1200).contains(&corrupted), "corrupted {corrupted}");
    assert_eq!(net.stats(0, Direction::Ingress).corrupted, corrupted);
    net.finish();
}

#[rstest]
fn rate_limit_caps_throughput() {
    let rate = RateLimit { bits_per_sec: 1_000_000, burst_bytes: 1000 };
    let mut net = impaired(Direction::Egress, Impairments { rate: Some(rate), ..Impairments::default() }, 8);
    let got = stream(&mut net, 4000, GAP / 2, 125, false);
    let passed = got.len();
    assert!((2000..=2010).contains(&passed), "1000 frames/s for 2 s plus the burst, got {passed}");
    assert_eq!(net.stats(1, Direction::Egress).drops.get(DropReason::RateLimit), 4000 - passed as u64);
    let mut per_100ms = BTreeMap::new();
    got.iter().for_each(|c| *per_100ms.entry(c.time.as_nanos() / 100_000_000).or_insert(0) += 1);
    assert!(per_100ms.values().all(|&n| n <= 108), "{per_100ms:?}");
    net.finish();
}

#[rstest]
#[case::fits(1514, true)]
#[case::one_byte_over(1515, false)]
fn mtu_limits_the_layer3_payload(#[case] len: usize, #[case] passes: bool) {
    let mut net = impaired(Direction::Egress, Impairments { mtu: Some(1500), ..Impairments::default() }, 9);
    let got = stream(&mut net, 3, GAP, len, false);
    assert_eq!(got.len(), if passes { 3 } else { 0 });
    assert_eq!(net.stats(1, Direction::Egress).drops.get(DropReason::Oversize), if passes { 0 } else { 3 });
    net.finish();
}

#[rstest]
fn flap_drops_frames_in_down_windows_and_flushes_the_port() {
    let flap =
        Flap { offset: Duration::from_millis(10), period: Duration::from_millis(100), down: Duration::from_millis(30) };
    let mut net = impaired(Direction::Ingress, Impairments { flap: Some(flap), ..Impairments::default() }, 10);
    net.poll(ms(0));
    assert_eq!(net.bridge.poll_at(), Some(ms(10)), "the next down window is a pending event");
    let got = stream(&mut net, 1000, GAP, LEN, false);
    assert_eq!(got.len(), 700);
    assert!(got.iter().all(|c| seq_of(&c.data) % 100 < 10 || seq_of(&c.data) % 100 >= 40));
    assert_eq!(net.stats(0, Direction::Ingress).drops.get(DropReason::LinkDown), 300);
    let flushed = net.bridge.fdb_stats().flushed;
    assert_eq!(flushed, 11, "mac(1) relearned after every window, flushed when the next opens (up to 1010 ms)");
    net.finish();
}

/// Every impairment at once, on both links the stream crosses and on the
/// links of the crosstalk.
fn noisy_run(seed: u64, crosstalk: bool) -> Vec<Captured> {
    let impairments = Impairments {
        loss: 0.05,
        delay: Duration::from_millis(2),
        jitter: Duration::from_millis(1),
        reorder: Some(Reorder { probability: 0.1, extra_delay: Duration::from_millis(3) }),
        duplicate: 0.05,
        corrupt: 0.05,
        ..Impairments::default()
    };
    let noisy = PortConfig { ingress: impairments.clone(), egress: impairments, hairpin: false };
    let config = BridgeConfig { seed, ..BridgeConfig::default() };
    let mut net = Net::with_ports(config, vec![noisy; 3]).with_statics();
    let got = stream(&mut net, 2000, GAP, LEN, crosstalk);
    net.finish();
    got
}

#[rstest]
fn the_seed_decides_the_run() {
    let first = noisy_run(42, false);
    assert_eq!(first, noisy_run(42, false), "same seed, same frames at the same times");
    assert_ne!(first, noisy_run(43, false));
}

#[rstest]
fn traffic_on_other_links_does_not_shift_a_links_draws() {
    assert_eq!(noisy_run(7, false), noisy_run(7, true));
}

#[rstest]
fn impairments_change_at_run_time_and_are_validated() {
    let mut net = impaired(Direction::Egress, Impairments::default(), 11);
    let bad = Impairments { loss: 2.0, ..Impairments::default() };
    let err = net.bridge.set_impairments(net.ids[1], Direction::Egress, bad).unwrap_err();
    assert_eq!(err.field, "vbridge.port1.egress.loss");
    let lossy = Impairments { loss: 1.0, ..Impairments::default() };
    net.bridge.set_impairments(net.ids[1], Direction::Egress, lossy).unwrap();
    assert!(stream(&mut net, 10, GAP, LEN, false).is_empty());
    net.bridge.set_impairments(net.ids[1], Direction::Egress, Impairments::default()).unwrap();
    assert_eq!(stream(&mut net, 10, GAP, LEN, false).len(), 10);
    net.finish();
}

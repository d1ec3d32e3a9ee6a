//! RSS configuration on a net_null port (a vdev with a 128-entry RETA and
//! a 40-byte key it does not announce): hash types and key round-trip through the device, the
//! RETA reads back as programmed, and requests the device cannot take are
//! named errors. net_null also makes up frames, which the counters see.
#![cfg(feature = "dpdk")]

mod common;

use dpdk::port::rss_hf;
use dpdk::{Error, PktPool, PoolConf, Port, PortConf, RssSetup};
use ethdev::rss::{RssHashTypes, RssKey};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn rss_types() -> RssHashTypes {
    RssHashTypes::IPV4 | RssHashTypes::IPV4_TCP | RssHashTypes::IPV6_UDP
}

#[test]
fn rss_key_types_and_reta_round_trip_through_the_device() {
    let eal = common::eal("rss-null", &["--vdev=net_null0"]);
    let pool = PktPool::new(&eal, "rss_null_pool", PoolConf::default()).expect("pool");
    let id = eal.port_by_name("net_null0").expect("net_null0");
    let conf = PortConf {
        rx_queues: 4,
        tx_queues: 1,
        rss: Some(RssSetup { types: rss_types(), key: None }),
        ..PortConf::default()
    };
    let port = Port::configure(&eal, id, &pool, &conf).expect("configure with RSS");
    assert_eq!(port.info().reta_size, 128);

    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let key_bytes: Vec<u8> = (0..40).map(|_| rng.random()).collect();
    let key = RssKey::new(&key_bytes).expect("40-byte key");
    port.set_rss(&RssSetup { types: rss_types(), key: Some(key) }).expect("set RSS");
    let (got_key, got_hf) = port.rss_conf().expect("rss_conf");
    assert_eq!(got_key, key_bytes, "the device holds the key it was given");
    assert_eq!(got_hf, rss_hf(rss_types()), "and the hash types");
    assert_ne!(got_hf, 0);

    let reta: Vec<u16> = (0..128).map(|_| rng.random_range(0..4)).collect();
    port.set_reta(&reta).expect("set RETA");
    assert_eq!(port.reta().expect("query RETA"), reta);

    let mut bad = reta.clone();
    bad[77] = 4;
    assert_eq!(port.set_reta(&bad), Err(Error::RetaQueue { port: id.0, index: 77, queue: 4, queues: 4 }));
    assert!(matches!(port.set_reta(&reta[..64]), Err(Error::RetaSize { requested: 64, device: 128, .. })));
    assert_eq!(port.reta().expect("query RETA"), reta, "refused updates changed nothing");
}

#[test]
fn counters_see_the_frames_net_null_makes_up() {
    let eal = common::eal("stats-null", &["--vdev=net_null0,size=128"]);
    let pool = PktPool::new(&eal, "stats_null_pool", PoolConf::default()).expect("pool");
    let id = eal.port_by_name("net_null0").expect("net_null0");
    let port = Port::configure(&eal, id, &pool, &PortConf::default()).expect("configure");
    let mut queues = port.start().expect("start");
    let mut lens = Vec::new();
    let got = queues.rx[0].rx_burst(16, |frame, _| lens.push(frame.len()));
    assert_eq!(got, 16, "net_null always has frames");
    assert_eq!(lens, vec![128; 16], "of the size its devargs say");
    let sent = queues.tx[0].tx_burst(&[vec![0u8; 60], vec![1u8; 70]]).expect("tx");
    assert_eq!(sent, 2);
    let stats = port.stats().expect("stats");
    // net_null counts frames, not bytes.
    assert_eq!((stats.ipackets, stats.opackets), (16, 2));
    assert!(port.link().expect("link").up);
    assert_eq!(pool.in_use(), 0, "rx and tx mbufs are back");
}

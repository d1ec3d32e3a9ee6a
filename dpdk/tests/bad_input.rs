//! Bad input to the DPDK wrapper: each case is a named error, never a panic,
//! and leaves the pool at its baseline.
#![cfg(feature = "dpdk")]

mod common;

use dpdk::{Eal, Error, PktPool, PoolConf, Port, PortConf, PortId, RssSetup};
use ethdev::rss::RssHashTypes;

#[test]
fn a_second_eal_init_in_one_process_is_refused() {
    let eal = common::eal("second-init", &[]);
    let again = Eal::init(["--no-huge", "--no-pci", "--file-prefix=dtnet-never"]);
    assert_eq!(again.unwrap_err(), Error::EalAlreadyInitialised);
    drop(eal);
    let after = Eal::init(["--no-huge", "--no-pci", "--file-prefix=dtnet-never"]);
    assert_eq!(after.unwrap_err(), Error::EalAlreadyInitialised, "nor after cleanup");
}

#[test]
fn a_bad_eal_argument_is_an_error_naming_rte_eal_init() {
    assert!(matches!(Eal::init(["--no-huge", "bad\0arg"]), Err(Error::BadArgument(_))));
    assert!(matches!(Eal::init(["--help"]), Err(Error::BadArgument(m)) if m.contains("exit")), "--help would exit");
    let err = Eal::init(["--no-huge", "--no-pci", "--file-prefix=dtnet-bad-arg", "--no-such-eal-option"]).unwrap_err();
    let Error::EalInit { errno, said, .. } = &err else { panic!("not an EAL start failure: {err}") };
    assert_eq!(*errno, 22, "EINVAL: {err}");
    assert!(said.contains("unrecognized option '--no-such-eal-option'"), "EAL's cause is quoted: {err}");
    assert!(!said.contains("Usage") && !said.contains("EAL common options"), "the usage text is not: {err}");
    assert!(err.to_string().starts_with("rte_eal_init failed"), "{err}");
    assert_eq!(Eal::init(["--no-huge"]).unwrap_err(), Error::EalAlreadyInitialised, "EAL is tried once");
}

#[test]
fn missing_devices_and_excess_queues_are_named() {
    let eal = common::eal("missing", &[]);
    assert_eq!(eal.port_by_name("net_ring9"), Err(Error::NoSuchDevice("net_ring9".into())));
    let pool = PktPool::new(&eal, "missing_pool", PoolConf::default()).expect("pool");
    assert!(matches!(Port::configure(&eal, PortId(31), &pool, &PortConf::default()), Err(Error::NoSuchPort(31))));
    let (a, _) = eal.ring_cable("one", 1).expect("cable");
    let two = PortConf { rx_queues: 2, ..PortConf::default() };
    let err = Port::configure(&eal, a, &pool, &two).unwrap_err();
    assert!(matches!(&err, Error::TooManyQueues { kind: "rx", requested: 2, max: 1, .. }), "{err}");
    let rss = PortConf { rss: Some(RssSetup { types: RssHashTypes::IPV4, key: None }), ..PortConf::default() };
    let err = Port::configure(&eal, a, &pool, &rss).unwrap_err();
    assert!(matches!(&err, Error::RssUnsupported { supported: 0, .. }), "{err}");
    assert!(err.to_string().contains("unsupported by device"), "{err}");

    let port = Port::configure(&eal, a, &pool, &PortConf::default()).expect("the refusals left the port usable");
    assert_eq!(Port::configure(&eal, a, &pool, &PortConf::default()).unwrap_err(), Error::PortInUse(a.0));
    let _queues = port.start().expect("start");
    assert_eq!(port.start().unwrap_err(), Error::AlreadyStarted(a.0));
    assert!(matches!(port.reta(), Err(Error::RetaSize { device: 0, .. })), "net_ring has no RETA");
}

#[test]
fn oversized_frames_and_an_empty_pool_refuse_the_burst() {
    let eal = common::eal("tx-refusals", &[]);
    let pool = PktPool::new(&eal, "small_pool", PoolConf { mbufs: 32, cache: 0, data_room: 256 }).expect("pool");
    assert_eq!(pool.data_room(), 256);
    let (a, b) = eal.ring_cable("small", 1).expect("cable");
    let port_a = Port::configure(&eal, a, &pool, &PortConf::default()).expect("a");
    let port_b = Port::configure(&eal, b, &pool, &PortConf::default()).expect("b");
    let mut qa = port_a.start().expect("start a");
    let mut qb = port_b.start().expect("start b");

    let burst = [vec![1u8; 100], vec![2u8; 257]];
    assert_eq!(qa.tx[0].tx_burst(&burst), Err(Error::FrameTooLong { index: 1, len: 257, room: 256 }));
    assert_eq!(qa.tx[0].tx_burst(&vec![vec![3u8; 60]; 33]), Err(Error::PoolExhausted(33)));
    assert_eq!(port_a.stats().expect("stats").opackets, 0, "a refused burst sends nothing");
    assert_eq!(pool.in_use(), 0, "and holds no mbufs");

    assert_eq!(qa.tx[0].tx_burst(&vec![vec![4u8; 60]; 32]), Ok(32), "the whole pool, in flight");
    assert_eq!(qa.tx[0].tx_burst(&[vec![5u8; 60]]), Err(Error::PoolExhausted(1)));
    assert_eq!(qb.rx[0].rx_burst(64, |frame, _| assert_eq!(frame, &[4u8; 60][..])), 32);
    assert_eq!(pool.in_use(), 0);
}

//! Shared-memory domains within one process: roles, the object registry,
//! refusals, and cleanup. (flock locks belong to open files, so a second
//! open in the same process contends exactly as another process would;
//! `harness/cli/tests/domain.rs` repeats the essentials across real processes.)

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use ethdev::shm::{Domain, DomainOptions, Role, ShmError};

fn options(base: &tempfile::TempDir) -> DomainOptions {
    DomainOptions { base: base.path().to_owned(), size: 1 << 20, wait: Duration::ZERO }
}

#[test]
fn secondary_sees_what_primary_made_at_the_same_offsets() {
    let base = tempfile::tempdir().unwrap();
    let opts = options(&base);
    let primary = Domain::open("d0", Role::Primary, &opts).unwrap();
    assert!(primary.is_primary());
    let ring = primary.reserve("PRI_2_SEC", 4096).unwrap();
    ring.u64s()[3].store(42, Ordering::Release);
    let secondary = Domain::open("d0", Role::Auto, &opts).unwrap();
    assert!(!secondary.is_primary());
    let seen = secondary.lookup("PRI_2_SEC").unwrap();
    assert_eq!((seen.offset(), seen.len()), (ring.offset(), 4096));
    assert_eq!(seen.u64s()[3].load(Ordering::Acquire), 42);
    seen.u64s()[4].store(7, Ordering::Release);
    assert_eq!(ring.u64s()[4].load(Ordering::Acquire), 7);
    let made = secondary.reserve("SEC_2_PRI", 100).unwrap();
    assert_eq!(made.offset() % 64, 0);
    assert!(made.offset() >= ring.offset() + 4096, "objects do not overlap");
    let names: Vec<String> = primary.objects().unwrap().into_iter().map(|e| e.name).collect();
    assert_eq!(names, ["PRI_2_SEC", "SEC_2_PRI"]);
}

#[test]
fn a_second_primary_is_refused_naming_the_first() {
    let base = tempfile::tempdir().unwrap();
    let _first = Domain::open("d1", Role::Primary, &options(&base)).unwrap();
    let err = Domain::open("d1", Role::Primary, &options(&base)).unwrap_err();
    assert!(matches!(err, ShmError::PrimaryRunning { pid, .. } if pid == std::process::id()), "{err}");
    let text = err.to_string();
    assert!(text.contains("\"d1\"") && text.contains(&std::process::id().to_string()), "{text}");
}

#[test]
fn a_secondary_without_primary_is_refused_after_its_wait() {
    let base = tempfile::tempdir().unwrap();
    let opts = DomainOptions { wait: Duration::from_millis(50), ..options(&base) };
    let started = Instant::now();
    let err = Domain::open("nobody", Role::Secondary, &opts).unwrap_err();
    assert!(started.elapsed() >= Duration::from_millis(50));
    assert!(matches!(err, ShmError::NoPrimary { .. }), "{err}");
    assert!(err.to_string().contains("no primary process"), "{err}");
}

#[test]
fn a_secondary_may_wait_for_its_primary() {
    let base = tempfile::tempdir().unwrap();
    let opts = DomainOptions { wait: Duration::from_secs(10), ..options(&base) };
    let late = std::thread::spawn({
        let opts = opts.clone();
        move || Domain::open("late", Role::Secondary, &opts).map(|d| d.is_primary())
    });
    std::thread::sleep(Duration::from_millis(30));
    let _primary = Domain::open("late", Role::Primary, &opts).unwrap();
    assert!(!late.join().unwrap().unwrap(), "the late process attached as secondary");
}

#[test]
fn lookups_and_reservations_name_what_is_wrong() {
    let base = tempfile::tempdir().unwrap();
    let d = Domain::open("d2", Role::Primary, &options(&base)).unwrap();
    let missing = d.lookup("MSG_POOL").unwrap_err().to_string();
    assert!(missing.contains("no object named \"MSG_POOL\""), "{missing}");
    d.reserve("MSG_POOL", 64).unwrap();
    assert!(matches!(d.reserve("MSG_POOL", 64), Err(ShmError::Exists { .. })));
    for bad in ["", "has space", &"n".repeat(40)] {
        assert!(matches!(d.reserve(bad, 8), Err(ShmError::BadName { .. })), "{bad:?}");
    }
    let full = d.reserve("huge", 1 << 30).unwrap_err().to_string();
    assert!(full.contains("full") && full.contains("huge"), "{full}");
    assert!(matches!(Domain::open("../up", Role::Primary, &options(&base)), Err(ShmError::BadPrefix { .. })));
}

#[test]
fn a_domain_of_another_layout_version_is_refused() {
    let base = tempfile::tempdir().unwrap();
    let primary = Domain::open("d3", Role::Primary, &options(&base)).unwrap();
    // Rewrite the version word (the second of the file) as a newer dtnet would.
    let path = primary.dir().join("memory");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[8..16].copy_from_slice(&99u64.to_le_bytes());
    std::fs::write(&path, &bytes).unwrap();
    let err = Domain::open("d3", Role::Secondary, &options(&base)).unwrap_err();
    assert!(matches!(err, ShmError::Version { found: 99, expected: 1 }), "{err}");
}

#[test]
fn garbage_in_the_object_table_is_refused_not_followed() {
    let base = tempfile::tempdir().unwrap();
    let primary = Domain::open("d4", Role::Primary, &options(&base)).unwrap();
    primary.reserve("ring", 64).unwrap();
    let path = primary.dir().join("memory");
    let mut bytes = std::fs::read(&path).unwrap();
    // Entry 0 starts at byte 64: name (40 bytes), then offset, then length.
    bytes[104..112].copy_from_slice(&u64::MAX.to_le_bytes());
    // And a count far beyond the table.
    bytes[32..40].copy_from_slice(&u64::MAX.to_le_bytes());
    std::fs::write(&path, &bytes).unwrap();
    let err = primary.lookup("ring").unwrap_err().to_string();
    assert!(err.contains("corrupt") && err.contains("ring"), "{err}");
    assert!(primary.objects().is_err());
}

#[test]
fn the_last_process_out_removes_the_domain_and_clean_refuses_while_attached() {
    let base = tempfile::tempdir().unwrap();
    let opts = options(&base);
    let primary = Domain::open("d5", Role::Primary, &opts).unwrap();
    let secondary = Domain::open("d5", Role::Secondary, &opts).unwrap();
    let dir = primary.dir().to_owned();
    let err = Domain::clean("d5", &opts).unwrap_err();
    assert!(matches!(err, ShmError::InUse { primary: Some(pid), .. } if pid == std::process::id()), "{err}");
    let listed = Domain::list(base.path());
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].prefix.as_str(), listed[0].primary, listed[0].attached),
        ("d5", Some(std::process::id()), true)
    );
    drop(primary);
    assert!(dir.exists(), "the secondary still holds the domain");
    assert!(!secondary.primary_alive(), "the secondary sees its primary gone");
    drop(secondary);
    assert!(!dir.exists(), "the last one out cleaned up");
    assert!(Domain::list(base.path()).is_empty());
}

/// Two handles attached to one zone are one pool: each owns the other's
/// buffers, so a frame moving between ports that attached it separately is
/// never copied. Another pool owns none of them.
#[test]
fn handles_attached_to_one_zone_own_each_others_buffers() {
    use ethdev::mempool::{Mempool, MempoolConfig, Owner};
    let base = tempfile::tempdir().unwrap();
    let primary = Domain::open("p2", Role::Primary, &options(&base)).unwrap();
    let config = MempoolConfig::new("MSG_POOL", 8);
    let zone = primary.reserve("MSG_POOL", config.region_size().unwrap()).unwrap();
    let first = Mempool::create_in(&zone, config).unwrap();
    let second = Mempool::attach(&zone).unwrap();
    let stranger = Mempool::new(MempoolConfig::new("other", 8)).unwrap();
    let (a, b) = (first.alloc(Owner(1)).unwrap(), second.alloc(Owner(1)).unwrap());
    assert!(first.owns(&b) && second.owns(&a) && first.owns(&a));
    assert!(!stranger.owns(&a) && !first.owns(&stranger.alloc(Owner(1)).unwrap()));
}

/// A pool laid out in a domain is one pool for every mapping: buffers a
/// secondary takes show in the primary's counts and walk under the
/// secondary's owner, stashed ones as "cached by" their cache's owner.
#[test]
fn a_pool_in_a_domain_is_one_pool_for_every_mapping() {
    use ethdev::mempool::{Mempool, MempoolConfig, Owner};
    let base = tempfile::tempdir().unwrap();
    let opts = options(&base);
    let primary = Domain::open("p0", Role::Primary, &opts).unwrap();
    let config = MempoolConfig::new("MSG_POOL", 32).data_room(256);
    let zone = primary.reserve("MSG_POOL", config.region_size().unwrap()).unwrap();
    let made = Mempool::create_in(&zone, config).unwrap();
    let secondary = Domain::open("p0", Role::Secondary, &opts).unwrap();
    let seen = Mempool::attach(&secondary.lookup("MSG_POOL").unwrap()).unwrap();
    assert_eq!((seen.capacity(), seen.data_room()), (32, 256));

    let mut held = Vec::new();
    assert!(seen.alloc_bulk(&mut held, 3, Owner(7)));
    held[0].extend_from_slice(b"hello");
    assert_eq!(made.in_use(), 3);
    let mut owners = Vec::new();
    made.walk(|_, owner| owners.push(owner));
    assert_eq!(owners, [Owner(7); 3]);

    let mut cache = seen.cache(Owner(9), 4);
    let m = cache.alloc().unwrap();
    cache.free(m);
    let mut cached = Vec::new();
    made.walk_cached(|_, owner| cached.push(owner));
    assert_eq!(cached, [Owner(9); 4], "the secondary's stash is visible to the primary");
    drop(cache);
    Mempool::free_bulk(&mut held);
    assert_eq!((made.in_use(), seen.in_use()), (0, 0));
    made.walk_cached(|i, o| panic!("slot {i} still cached by {o:?}"));
}

/// A zone that does not hold a pool of this layout is refused with the
/// reason, never followed.
#[test]
fn attaching_a_pool_checks_magic_version_and_size() {
    use ethdev::mempool::{Mempool, MempoolConfig};
    let base = tempfile::tempdir().unwrap();
    let primary = Domain::open("p1", Role::Primary, &options(&base)).unwrap();
    let junk = primary.reserve("JUNK", 4096).unwrap();
    junk.u64s().iter().for_each(|w| w.store(0x5a5a_5a5a_5a5a_5a5a, Ordering::Relaxed));
    let err = Mempool::attach(&junk).unwrap_err().to_string();
    assert!(err.contains("JUNK") && err.contains("magic"), "{err}");

    let config = MempoolConfig::new("P", 8).data_room(64);
    let zone = primary.reserve("P", config.region_size().unwrap()).unwrap();
    Mempool::create_in(&zone, config.clone()).unwrap();
    zone.u32s()[2].store(99, Ordering::Relaxed);
    let err = Mempool::attach(&zone).unwrap_err().to_string();
    assert!(err.contains("layout version 99"), "{err}");
    zone.u32s()[2].store(1, Ordering::Relaxed);
    zone.u32s()[3].store(1 << 30, Ordering::Relaxed);
    let err = Mempool::attach(&zone).unwrap_err().to_string();
    assert!(err.contains("does not fit"), "{err}");

    let small = primary.reserve("SMALL", 1024).unwrap();
    let err = Mempool::create_in(&small, config).unwrap_err().to_string();
    assert!(err.contains("needs"), "{err}");
}

/// simple_mp's two rings between two mappings: every word arrives once and
/// in order across wrap-around, a full ring takes only what fits, and a
/// consumer that takes over resumes at the published tail.
#[test]
fn rings_in_a_domain_carry_words_between_mappings_in_order() {
    use ethdev::shm::ring::{self, ShmConsumer, ShmProducer};
    let base = tempfile::tempdir().unwrap();
    let opts = options(&base);
    let primary = Domain::open("r0", Role::Primary, &opts).unwrap();
    let zone = primary.reserve("PRI_2_SEC", ring::ring_bytes(8)).unwrap();
    ring::create(&zone, 8).unwrap();
    let secondary = Domain::open("r0", Role::Secondary, &opts).unwrap();
    let mut tx = ShmProducer::attach(&zone).unwrap();
    let mut rx = ShmConsumer::attach(&secondary.lookup("PRI_2_SEC").unwrap()).unwrap();
    let mut got = Vec::new();
    for round in 0..10u64 {
        let items: Vec<u64> = (0..5).map(|i| round * 100 + i).collect();
        assert_eq!(tx.enqueue_burst(&items), 5);
        assert_eq!(rx.dequeue_burst(&mut got, 3), 3);
        assert_eq!(rx.dequeue_burst(&mut got, 64), 2);
    }
    let expected: Vec<u64> = (0..10u64).flat_map(|r| (0..5).map(move |i| r * 100 + i)).collect();
    assert_eq!(got, expected);
    assert_eq!(tx.free_count(), 8);
    assert_eq!(tx.enqueue_burst(&[1; 12]), 8, "only what fits");
    assert_eq!((tx.enqueue_burst(&[2]), tx.free_count()), (0, 0));
    got.clear();
    rx.dequeue_burst(&mut got, 3);
    assert_eq!(tx.free_count(), 3, "room comes back as the consumer publishes");
    drop(rx);
    let heir = ShmConsumer::attach(&zone).unwrap();
    assert_eq!(heir.len(), 5, "the heir resumes where the dead consumer published");
}

/// A peer that writes nonsense positions or headers is refused and
/// counted, never followed.
#[test]
fn a_ring_refuses_positions_and_headers_it_cannot_trust() {
    use ethdev::shm::ring::{self, ShmConsumer, ShmProducer};
    let base = tempfile::tempdir().unwrap();
    let primary = Domain::open("r1", Role::Primary, &options(&base)).unwrap();
    let zone = primary.reserve("R", ring::ring_bytes(4)).unwrap();
    assert!(ring::create(&zone, 3).is_err(), "not a power of two");
    assert!(ShmConsumer::attach(&zone).unwrap_err().to_string().contains("magic"));
    ring::create(&zone, 4).unwrap();
    let (mut tx, mut rx) = (ShmProducer::attach(&zone).unwrap(), ShmConsumer::attach(&zone).unwrap());
    zone.u64s()[8].store(1000, Ordering::Release); // a head far past the tail
    let mut out = Vec::new();
    assert_eq!((rx.dequeue_burst(&mut out, 8), rx.refused(), rx.len()), (0, 1, 0));
    zone.u64s()[8].store(0, Ordering::Release);
    zone.u64s()[16].store(77, Ordering::Release); // a tail the producer never reached
    assert_eq!((tx.enqueue_burst(&[1]), tx.refused(), tx.free_count()), (0, 1, 0));
    zone.u64s()[2].store(1 << 40, Ordering::Release);
    assert!(ShmProducer::attach(&zone).unwrap_err().to_string().contains("does not fit"));
}

/// Taking over a dead consumer's ring: buffers still in transit are put
/// back in order (or freed), words naming buffers it had claimed are
/// removed before anybody could free and reuse those slots.
#[test]
fn a_dead_consumers_ring_is_taken_over_without_its_claimed_words() {
    use ethdev::handover;
    use ethdev::mempool::{MbufRef, Owner, PoolTable};
    use ethdev::shm::ring::{self, ShmConsumer, ShmProducer};
    use ethdev::{Mempool, MempoolConfig};
    let base = tempfile::tempdir().unwrap();
    let primary = Domain::open("h0", Role::Primary, &options(&base)).unwrap();
    let config = MempoolConfig::new("P", 16).data_room(64);
    let pool = Mempool::create_in(&primary.reserve("P", config.region_size().unwrap()).unwrap(), config).unwrap();
    let mut table = PoolTable::new();
    table.add(pool.clone());
    let zone = primary.reserve("R", ring::ring_bytes(8)).unwrap();
    ring::create(&zone, 8).unwrap();
    let mut tx = ShmProducer::attach(&zone).unwrap();
    let words: Vec<u64> = (0..3u8)
        .map(|i| {
            let mut m = pool.alloc(Owner(1)).unwrap();
            m.extend_from_slice(&[i]);
            m.into_ref(0).to_word()
        })
        .collect();
    tx.enqueue_burst(&words);
    tx.enqueue_burst(&[u64::MAX]);
    // The consumer claimed the second buffer, then died before its tail moved.
    let claimed = table.claim(MbufRef::from_word(words[1]), Owner(2)).unwrap();
    let found = handover::requeue(&zone, &mut tx, &table, Owner(1), 0).unwrap();
    assert_eq!((found.in_transit, found.stale), (2, 2));
    let mut heir = ShmConsumer::attach(&zone).unwrap();
    let mut got = Vec::new();
    heir.consume(8, |w| got.push(table.claim(MbufRef::from_word(w), Owner(3)).unwrap().data()[0]));
    assert_eq!(got, [0, 2], "in order, without the dead's claimed buffer");
    drop(claimed);
    let mut again = Mempool::alloc(&pool, Owner(1)).unwrap();
    again.extend_from_slice(b"x");
    tx.enqueue_burst(&[again.into_ref(0).to_word(), 12345]);
    assert_eq!(handover::drain(&zone, &table, Owner(1)).unwrap(), handover::Takeover { in_transit: 1, stale: 1 });
    assert_eq!(pool.in_use(), 0);
}

/// Objects belong to their domain: a name made under one prefix is not
/// found under another, and the error names the domain looked in.
#[test]
fn a_name_made_in_one_domain_is_not_found_in_another() {
    let base = tempfile::tempdir().unwrap();
    let left = Domain::open("left", Role::Primary, &options(&base)).unwrap();
    let right = Domain::open("right", Role::Primary, &options(&base)).unwrap();
    left.reserve("MProc_pktmbuf_pool", 64).unwrap();
    right.reserve("MProc_pktmbuf_pool", 128).unwrap();
    assert_eq!(left.lookup("MProc_pktmbuf_pool").unwrap().len(), 64);
    assert_eq!(right.lookup("MProc_pktmbuf_pool").unwrap().len(), 128);
    left.reserve("only_left", 8).unwrap();
    let err = right.lookup("only_left").unwrap_err();
    assert!(matches!(&err, ShmError::NotFound { prefix, name } if prefix == "right" && name == "only_left"), "{err}");
}

//! Shared-memory domains within one process: roles, the object registry,
//! refusals, and cleanup. (flock locks belong to open files, so a second
//! open in the same process contends exactly as another process would;
//! `harness/tests/domain.rs` repeats the essentials across real processes.)

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

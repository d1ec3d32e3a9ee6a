//! Shared-memory domains across real processes, through `dtnet domain`:
//! one primary per prefix, secondaries that attach (or wait), a secondary
//! that notices its primary's `kill -9` within a second, `clean` refused
//! while anyone holds the domain, and no files left behind.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn dtnet(base: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dtnet"));
    cmd.arg("domain").args(args).env("DTNET_RUNTIME_DIR", base).stdin(Stdio::null());
    cmd
}

fn run(base: &Path, args: &[&str]) -> Output {
    dtnet(base, args).output().unwrap()
}

/// Starts a long-lived domain process and waits for its first line.
fn hold(base: &Path, args: &[&str]) -> (Child, String) {
    let mut child =
        dtnet(base, args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
    (child, line)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn one_primary_per_prefix_and_secondaries_see_its_objects() {
    let base = tempfile::tempdir().unwrap();
    let (mut primary, ready) =
        hold(base.path(), &["primary", "mp", "--object", "PRI_2_SEC:4096", "--object", "MSG_POOL:65536"]);
    assert_eq!(ready.trim(), format!("ready {}", primary.id()));

    let second = run(base.path(), &["primary", "mp"]);
    assert_eq!(second.status.code(), Some(2));
    let err = text(&second.stderr);
    assert!(err.contains("already running") && err.contains(&primary.id().to_string()), "{err}");

    let attach = run(base.path(), &["attach", "mp"]);
    assert!(attach.status.success(), "{}", text(&attach.stderr));
    let objects = text(&attach.stdout);
    assert!(objects.contains("PRI_2_SEC") && objects.contains("MSG_POOL"), "{objects}");

    let listed = text(&run(base.path(), &["list"]).stdout);
    assert!(listed.contains(&format!("mp  primary {}  attached yes", primary.id())), "{listed}");

    let clean = run(base.path(), &["clean", "mp"]);
    assert_eq!(clean.status.code(), Some(2));
    assert!(text(&clean.stderr).contains("in use"), "{}", text(&clean.stderr));

    drop(primary.stdin.take());
    assert!(primary.wait().unwrap().success());
    assert!(!base.path().join("mp").exists(), "the last process out removed the domain");
}

#[test]
fn a_secondary_before_its_primary_is_refused_or_waits() {
    let base = tempfile::tempdir().unwrap();
    let early = run(base.path(), &["attach", "late"]);
    assert_eq!(early.status.code(), Some(2));
    assert!(text(&early.stderr).contains("no primary process is running"), "{}", text(&early.stderr));

    let waiting = dtnet(base.path(), &["attach", "late", "--wait", "20"]).stdout(Stdio::piped()).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let (mut primary, _) = hold(base.path(), &["primary", "late", "--object", "SEC_2_PRI:64"]);
    let out = waiting.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(text(&out.stdout).contains("SEC_2_PRI"));
    drop(primary.stdin.take());
    primary.wait().unwrap();
}

#[test]
fn a_killed_primary_is_noticed_within_a_second_and_its_domain_cleaned() {
    let base = tempfile::tempdir().unwrap();
    let (mut primary, _) = hold(base.path(), &["primary", "crash"]);
    let (mut secondary, attached) = hold(base.path(), &["attach", "crash", "--hold"]);
    assert!(attached.starts_with("attached"), "{attached}");
    // Keep the secondary's stdin open: only the primary's death may end it.
    let _stdin = secondary.stdin.take();
    primary.kill().unwrap(); // SIGKILL: no chance to clean up
    primary.wait().unwrap();
    let killed = Instant::now();
    let out = secondary.wait_with_output().unwrap();
    let noticed = killed.elapsed();
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out.stderr).contains("primary process died"), "{}", text(&out.stderr));
    assert!(noticed < Duration::from_secs(1), "noticed after {noticed:?}");
    assert!(!base.path().join("crash").exists(), "the secondary, last out, removed the domain");
}

#[test]
fn a_crashed_lone_primary_leaves_files_that_clean_removes() {
    let base = tempfile::tempdir().unwrap();
    let (mut primary, _) = hold(base.path(), &["primary", "left", "--object", "ring:64"]);
    primary.kill().unwrap();
    primary.wait().unwrap();
    assert!(base.path().join("left").exists());
    let listed = text(&run(base.path(), &["list"]).stdout);
    assert!(listed.contains("left  primary none  attached no") && listed.contains("ring"), "{listed}");
    // A new primary takes the prefix over from the dead one.
    let (mut again, ready) = hold(base.path(), &["primary", "left"]);
    assert!(ready.starts_with("ready"));
    again.kill().unwrap();
    again.wait().unwrap();
    assert!(run(base.path(), &["clean", "left"]).status.success());
    assert!(!base.path().join("left").exists());
}

#[test]
fn runtime_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let base = tempfile::tempdir().unwrap();
    let (mut primary, _) = hold(base.path(), &["primary", "modes"]);
    let dir = base.path().join("modes");
    assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
    for f in std::fs::read_dir(&dir).unwrap().flatten() {
        assert_eq!(f.metadata().unwrap().permissions().mode() & 0o777, 0o600, "{:?}", f.path());
    }
    drop(primary.stdin.take());
    primary.wait().unwrap();
}

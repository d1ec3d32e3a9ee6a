//! The `procs` executor end to end: shipped multi-process scenarios run by
//! `dtnet run`, seeded crash trials, and a run that must fail.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn scenarios() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios")
}

/// `dtnet run --json` on `files` with `extra` arguments.
fn run(files: &[PathBuf], extra: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dtnet"));
    cmd.args(["run", "--json", "-q"]).args(extra).args(files).output().unwrap()
}

/// Each JSON report `out` printed.
fn reports(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

/// The failed expectations of `report`, with their details.
fn failures(report: &serde_json::Value) -> Vec<String> {
    let checks = report["expectations"].as_array().cloned().unwrap_or_default();
    checks.iter().filter(|c| c["passed"] != true).map(|c| format!("{}: {}", c["name"], c["detail"])).collect()
}

/// Every shipped scenario with `executor = "procs"` passes under `dtnet run`.
#[test]
fn every_shipped_procs_scenario_passes() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(scenarios())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .filter(|p| std::fs::read_to_string(p).is_ok_and(|t| t.contains("executor = \"procs\"")))
        // A kernel sharing a port needs root and TUN; `dtnet run` skips it without.
        .filter(|p| {
            kernel_peer::netns::unavailable().is_none()
                || !std::fs::read_to_string(p).unwrap().contains("kernel = true")
        })
        .collect();
    files.sort();
    assert!(files.len() >= 4, "simple, symmetric and client_server samples are shipped: {files:?}");
    let out = run(&files, &[]);
    let reports = reports(&out);
    assert_eq!(reports.len(), files.len(), "{}", String::from_utf8_lossy(&out.stderr));
    for report in &reports {
        assert_eq!(report["passed"], true, "{}: {:?}", report["name"], failures(report));
        assert_eq!(report["executor"], "procs");
    }
    assert!(out.status.success());
}

/// Seeded `kill -9` trials: each seed picks the victim among the
/// non-primary processes and the moment during the traffic. After each,
/// the survivors finished intact, reclamation left nothing marked as the
/// dead's, the pool is back at its baseline and the runtime directory is
/// empty (the executor's verdicts, every one of which must hold).
fn seeded_kills(file: &str, seeds: std::ops::Range<u64>) {
    for seed in seeds {
        let out = run(&[scenarios().join(file)], &["--seed", &seed.to_string()]);
        let report =
            reports(&out).pop().unwrap_or_else(|| panic!("seed {seed}: {}", String::from_utf8_lossy(&out.stderr)));
        assert_eq!(report["passed"], true, "seed {seed}: {:?}", failures(&report));
        let names: Vec<&str> =
            report["expectations"].as_array().unwrap().iter().filter_map(|c| c["name"].as_str()).collect();
        assert!(names.iter().any(|n| n.starts_with("kill ")), "seed {seed}: the fault struck: {names:?}");
        assert!(names.contains(&"nothing belongs to the dead after reclamation"), "{names:?}");
    }
}

#[test]
fn ten_seeded_kills_in_symmetric_mp_are_reclaimed_in_full() {
    seeded_kills("mp-symmetric-kill.toml", 1..11);
}

#[test]
fn ten_seeded_kills_in_client_server_mp_are_reclaimed_in_full() {
    seeded_kills("mp-client-server-kill.toml", 1..11);
}

/// gazelle with one VF per process, both thread models: the victim's VF
/// is reclaimed and its heir echoes every connection intact.
#[test]
fn seeded_kills_in_gazelle_vf_are_reclaimed_under_both_thread_models() {
    seeded_kills("mp-gazelle-vf-kill.toml", 1..4);
    seeded_kills("mp-gazelle-vf-kill-rtw.toml", 1..4);
}

/// gazelle's tuple_filter mode, both thread models: the victim's queue,
/// buffers and flow rules are reclaimed and its heir echoes every
/// connection intact.
#[test]
fn seeded_kills_in_tuple_filter_are_reclaimed_under_both_thread_models() {
    seeded_kills("mp-tuple-filter-kill.toml", 1..4);
    seeded_kills("mp-tuple-filter-kill-rtw.toml", 1..4);
}

/// tuple_filter with process 0 sharing the port with the kernel: a killed
/// secondary is reclaimed as without the kernel, its heir echoes every
/// connection intact, and the LAN peer's connections to the kernel all
/// come back intact (the primary's report fails otherwise). Needs root
/// and TUN: without them it says why and passes.
#[test]
fn seeded_kills_beside_a_kernel_sharing_the_port_are_reclaimed() {
    if let Some(why) = kernel_peer::netns::unavailable() {
        eprintln!("skipped: {why}");
        return;
    }
    seeded_kills("mp-tuple-filter-kernel.toml", 2..5);
}

/// gazelle's ltran mode, run to completion: the victim's queue and
/// buffers are reclaimed, the forwarder forgets its entries, and its heir
/// echoes every connection intact. (Each run lasts the server's 10 s
/// user timeout: the forwarder drops the dead's segments, never resets,
/// so fewer seeds than the other modes, and one test per thread model.)
#[test]
fn seeded_kills_in_ltran_are_reclaimed_run_to_completion() {
    seeded_kills("mp-ltran-kill.toml", 2..4);
}

/// The same, a thread per stack.
#[test]
fn seeded_kills_in_ltran_are_reclaimed_run_to_wakeup() {
    seeded_kills("mp-ltran-kill-rtw.toml", 2..3);
}

/// A victim nobody replaces leaves its queues unserved: the run cannot
/// finish, and the executor ends it at the deadline as a failure naming
/// the late processes, instead of hanging.
#[test]
fn a_run_that_cannot_finish_fails_at_its_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("orphan.toml");
    let text = "name = \"orphan\"\nexecutor = \"procs\"\nduration = \"3s\"\n[procs]\nsample = \"symmetric_mp\"\n\
                processes = 3\nframes = 100000\n[[fault.kill]]\ntarget = \"proc-2\"\nat = \"5ms\"\nrestart = false\n";
    std::fs::write(&file, text).unwrap();
    let started = std::time::Instant::now();
    let out = run(&[file], &[]);
    assert!(!out.status.success());
    let report = reports(&out).pop().unwrap();
    assert_eq!(report["passed"], false);
    let failed = failures(&report);
    assert!(failed.iter().any(|f| f.contains("still running at the deadline")), "{failed:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(60), "ended by its deadline");
}

/// Faults that cannot apply are refused when the file is loaded, naming
/// the line, the key and what would do.
#[test]
fn impossible_faults_are_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let refuse = |body: &str, expected: &str| {
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, format!("name = \"bad\"\n{body}")).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_dtnet")).arg("check").arg(&file).output().unwrap();
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && said.contains(expected), "{body}: {said}");
    };
    let procs = "executor = \"procs\"\n[procs]\nsample = \"symmetric_mp\"\nprocesses = 3\n";
    refuse(
        &format!("{procs}[[fault.kill]]\ntarget = \"proc-9\"\nat = \"1ms\"\n"),
        "key \"fault.kill[0].target\": no process \"proc-9\" in symmetric_mp with 3 processes (targets: proc-1, proc-2, or random)",
    );
    refuse(&format!("{procs}[[fault.kill]]\ntarget = \"proc-0\"\nat = \"1ms\"\n"), "proc-0 is the primary");
    refuse(
        &format!("{procs}[[fault.kill]]\ntarget = \"proc-1\"\nat = \"soon\"\n"),
        "expected \"random\" or a duration",
    );
    refuse(&format!("{procs}[[fault.kill]]\ntarget = \"proc-1\"\nat = \"1ms\"\nsignal = \"HUP\"\n"), "signal");
    refuse(
        "[[host]]\nname = \"a\"\nmac = \"02:00:00:00:00:01\"\n[[fault.kill]]\ntarget = \"a\"\nat = \"1ms\"\n",
        "a crash fault needs executor = \"procs\"",
    );
    refuse("executor = \"procs\"\n", "needs a [procs] table");
    refuse(&format!("{procs}[[host]]\nname = \"a\"\nmac = \"02:00:00:00:00:01\"\n"), "a procs scenario has no hosts");
    refuse(
        "executor = \"procs\"\n[procs]\nsample = \"simple_mp\"\nprocesses = 3\n",
        "simple_mp runs exactly 2 processes",
    );
    refuse(
        &format!("{procs}thread_model = \"run_to_wakeup\"\n"),
        "key \"procs.thread_model\": only gazelle_vf, tuple_filter and ltran run stacks",
    );
    refuse(
        &format!("{procs}bytes = \"1MiB\"\n"),
        "key \"procs.bytes\": only gazelle_vf, tuple_filter and ltran run stacks",
    );
    refuse(&format!("{procs}stacks = 2\n"), "key \"procs.stacks\": only gazelle_vf, tuple_filter and ltran run stacks");
    refuse(
        "executor = \"procs\"\n[procs]\nsample = \"ltran\"\nprocesses = 9\nstacks = 8\n",
        "key \"procs.stacks\": 9 processes × 8 stacks need more than 64 queues",
    );
    refuse("executor = \"procs\"\n[procs]\nsample = \"ltran\"\nstacks = 9\n", "procs.stacks");
    refuse(
        "executor = \"procs\"\n[procs]\nsample = \"gazelle_vf\"\nkernel = true\n",
        "key \"procs.kernel\": only tuple_filter's process 0 has lstack queues to share with a kernel",
    );
    refuse(
        &format!("{procs}kernel = true\n"),
        "key \"procs.kernel\": only gazelle_vf, tuple_filter and ltran run stacks",
    );
}

/// The procs executor needs no privilege: as root the gate also runs a
/// crash scenario as an ordinary user (uid 65534), whose domain lives in
/// that user's own runtime directory.
#[test]
fn procs_scenarios_run_as_an_ordinary_user_too() {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dtnet"));
    cmd.args(["run", "--json", "-q"]).arg(scenarios().join("mp-symmetric-kill.toml"));
    if rustix::process::geteuid().is_root() {
        cmd.uid(65534).gid(65534).env("TMPDIR", "/tmp").env_remove("XDG_RUNTIME_DIR");
    }
    let out = cmd.output().unwrap();
    let report = reports(&out).pop().unwrap_or_else(|| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(report["passed"], true, "{:?}", failures(&report));
}

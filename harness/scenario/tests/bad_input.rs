//! Bad input is a clear error, never a crash or an endless run (issue 9
//! §2): every shipped scenario, mutated (lines deleted or duplicated,
//! values replaced by random or huge numbers and strings, bytes flipped or
//! inserted, invalid UTF-8 and NUL among them), is fed to the loader and,
//! when it loads, to `check` and to the runner under a short wall-clock
//! limit. No mutant may panic or abort; every refusal of the loader names a
//! line or a key; a scenario the loader accepts is never refused by
//! `check`, nor by the runner on its configuration; and every run ends
//! within its wall-clock limit. The mutants live in a scratch directory
//! beside links to the files the shipped scenarios name.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use scenario::{limits, Executor, RunOptions, Scenario, Traffic};

const SCENARIOS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scenarios");
/// The directories of files the shipped scenarios name.
const LINKED: [&str; 2] = ["configs", "replay"];
/// Wall-clock limit of each mutant's run.
const WALL_LIMIT: Duration = Duration::from_millis(200);
/// How long a run may take past its limit (building, judging).
const WALL_SLACK: Duration = Duration::from_secs(5);
/// Most payload bytes a mutant may plan and still be run.
const MAX_RUN_WORK: u64 = 32 << 20;
/// Most memory a mutant's run may be estimated at and still be run.
const MAX_RUN_MEMORY: u64 = 512 << 20;
/// Values a mutation writes in place of another: limits and just past
/// them, the largest integers, empty and wrong-typed values, addresses no
/// host can own.
const NASTY_VALUES: &[&str] = &[
    "0",
    "-1",
    "65",
    "1000001",
    "100000000",
    "4294967296",
    "18446744073709551615",
    "99999999999999999999999",
    "1e400",
    "nan",
    "-inf",
    "\"\"",
    "\"0s\"",
    "\"25h\"",
    "\"584942417y\"",
    "\"2048GiB\"",
    "\"18446744073709551615\"",
    "\"ff:ff:ff:ff:ff:ff\"",
    "\"01:00:5e:00:00:01\"",
    "\"00:00:00:00:00:00\"",
    "\"10.0.0.0/24\"",
    "\"10.0.0.255\"",
    "\"255.255.255.255\"",
    "\"::\"",
    "\"ff02::1\"",
    "[]",
    "{}",
    "true",
];

/// The shipped scenarios: file name and bytes.
fn shipped() -> &'static [(String, Vec<u8>)] {
    static FILES: OnceLock<Vec<(String, Vec<u8>)>> = OnceLock::new();
    FILES.get_or_init(|| {
        let mut files: Vec<_> = std::fs::read_dir(SCENARIOS)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
            .collect();
        files.sort();
        assert!(files.len() > 10, "found {} scenarios", files.len());
        files
    })
}

/// A scratch directory with links to the files scenarios name.
fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("dtnet-bad-input-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for name in LINKED {
            std::os::unix::fs::symlink(Path::new(SCENARIOS).join(name), dir.join(name)).unwrap();
        }
        dir
    })
}

/// One change to a file's bytes; indices are taken modulo the lines or bytes.
#[derive(Clone, Debug)]
enum Mutation {
    DeleteLine(usize),
    DuplicateLine(usize),
    /// The value of the `n`th `key = value` line becomes this text.
    ReplaceValue(usize, String),
    FlipByte(usize, u8),
    InsertBytes(usize, Vec<u8>),
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(NASTY_VALUES).prop_map(String::from),
        2 => (0u64..300).prop_map(|n| n.to_string()),
        1 => any::<i64>().prop_map(|n| n.to_string()),
        1 => any::<u64>().prop_map(|n| n.to_string()),
        1 => any::<f64>().prop_map(|x| format!("{x:?}")),
        1 => "[ -~]{0,12}".prop_map(|s| format!("{s:?}")),
        1 => "[0-9]{1,6}(ns|us|ms|s|m|h|B|KiB|MiB|GiB)".prop_map(|s| format!("{s:?}")),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let junk = prop_oneof![any::<u8>(), Just(0u8), Just(0xff), Just(0xc3), Just(b'\n'), Just(b'"'), Just(b'[')];
    prop_oneof![
        12 => (any::<usize>(), value()).prop_map(|(i, v)| Mutation::ReplaceValue(i, v)),
        1 => any::<usize>().prop_map(Mutation::DeleteLine),
        1 => any::<usize>().prop_map(Mutation::DuplicateLine),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::FlipByte(i, b)),
        1 => (any::<usize>(), prop::collection::vec(junk, 1..4)).prop_map(|(i, b)| Mutation::InsertBytes(i, b)),
    ]
}

/// `bytes` with `m` applied.
fn mutate(bytes: &[u8], m: &Mutation) -> Vec<u8> {
    let mut lines: Vec<Vec<u8>> = bytes.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
    let n = lines.len();
    match m {
        Mutation::DeleteLine(i) => _ = lines.remove(i % n),
        Mutation::DuplicateLine(i) => lines.insert(i % n, lines[i % n].clone()),
        Mutation::ReplaceValue(i, value) => {
            let assignments: Vec<usize> = (0..n).filter(|&l| lines[l].contains(&b'=')).collect();
            if let Some(&l) = assignments.get(i % assignments.len().max(1)) {
                let eq = lines[l].iter().position(|&b| b == b'=').unwrap_or(0);
                lines[l].truncate(eq + 1);
                lines[l].extend_from_slice(format!(" {value}").as_bytes());
            }
        }
        Mutation::FlipByte(i, b) => {
            let mut out = bytes.to_vec();
            let at = i % out.len().max(1);
            out[at] ^= b.max(&1);
            return out;
        }
        Mutation::InsertBytes(i, junk) => {
            let mut out = bytes.to_vec();
            let at = i % (out.len() + 1);
            out.splice(at..at, junk.iter().copied());
            return out;
        }
    }
    lines.join(&b'\n')
}

/// Payload bytes `scenario` plans to move (frames count as 128 bytes each).
fn planned_work(scenario: &Scenario) -> u64 {
    let work = scenario.plan.traffic.iter().map(|t| match t {
        Traffic::Tcp(t) => t.conns.saturating_mul(t.bytes),
        Traffic::Udp(u) => u.clients.saturating_mul(u64::from(u.requests)).saturating_mul(64),
        Traffic::Ping(p) => u64::from(p.count) * 64,
        Traffic::Frames(f) => u64::from(f.flows) * u64::from(f.frames_per_flow) * 128,
        Traffic::Replay(_) => 0,
    });
    work.fold(0, u64::saturating_add)
}

/// Loads `bytes` as a scenario file and, if it loads, checks and runs it;
/// fails on any broken promise of the loader, `check` or the runner.
fn feed(name: &str, bytes: &[u8]) -> Result<(), TestCaseError> {
    let path = scratch().join(format!("mutant-{name}"));
    std::fs::write(&path, bytes).unwrap();
    let scenario = match Scenario::load(&path) {
        Ok(scenario) => scenario,
        Err(e) => {
            let message = e.to_string();
            prop_assert!(e.line().is_some() || e.key().is_some(), "names neither line nor key: {message}");
            prop_assert!(message.starts_with(&path.display().to_string()), "names no file: {message}");
            return Ok(());
        }
    };
    let checked = scenario::check(&scenario);
    prop_assert!(
        checked.is_ok(),
        "loaded, but check refuses: {}",
        checked.err().map(|e| e.to_string()).unwrap_or_default()
    );
    let small = planned_work(&scenario) <= MAX_RUN_WORK && limits::estimate(&scenario.plan).total() <= MAX_RUN_MEMORY;
    if scenario.plan.executor != Executor::Sim || !small {
        return Ok(());
    }
    let started = Instant::now();
    let ran = scenario::run(&scenario, &RunOptions { wall_limit: Some(WALL_LIMIT), ..RunOptions::default() });
    prop_assert!(ran.is_ok(), "checked, but run refuses: {}", ran.err().map(|e| e.to_string()).unwrap_or_default());
    prop_assert!(started.elapsed() < WALL_LIMIT + WALL_SLACK, "ran for {:?}", started.elapsed());
    Ok(())
}

/// Mutants per run: `PROPTEST_CASES` if set (for a deeper search), else 128.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(128)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), max_shrink_iters: 64, ..ProptestConfig::default() })]

    #[test]
    fn mutated_scenarios_are_refused_clearly_or_run_to_an_end(
        file in any::<prop::sample::Index>(),
        mutations in prop::collection::vec(mutation(), 1..3),
    ) {
        let (name, original) = &shipped()[file.index(shipped().len())];
        let bytes = mutations.iter().fold(original.clone(), |b, m| mutate(&b, m));
        feed(name, &bytes)?;
    }
}

/// Every value of every shipped scenario replaced in turn by each of
/// [`NASTY_VALUES`] and loaded: an exhaustive sweep of the loader over what
/// the random mutations sample (which also check and run what loads;
/// building thousands of worlds here would take minutes).
#[test]
fn every_value_of_every_scenario_replaced_by_a_nasty_one_loads_or_is_refused_clearly() {
    for (name, original) in shipped() {
        let assignments = original.split(|&b| b == b'\n').filter(|l| l.contains(&b'=')).count();
        for i in 0..assignments {
            for value in NASTY_VALUES {
                let bytes = mutate(original, &Mutation::ReplaceValue(i, (*value).to_owned()));
                let path = scratch().join(format!("sweep-{name}"));
                std::fs::write(&path, &bytes).unwrap();
                if let Err(e) = Scenario::load(&path) {
                    assert!(e.line().is_some() || e.key().is_some(), "{name} #{i} = {value}: {e}");
                }
            }
        }
    }
}

/// The mutations do what they say, so the properties above test something.
#[test]
fn mutations_change_what_they_name() {
    let text = b"name = \"x\"\nstacks = 2\n";
    assert_eq!(mutate(text, &Mutation::DeleteLine(1)), b"name = \"x\"\n");
    assert_eq!(mutate(text, &Mutation::DuplicateLine(1)), b"name = \"x\"\nstacks = 2\nstacks = 2\n");
    assert_eq!(mutate(text, &Mutation::ReplaceValue(1, "65".into())), b"name = \"x\"\nstacks = 65\n");
    assert_eq!(mutate(text, &Mutation::FlipByte(0, 0xff))[0], b'n' ^ 0xff);
    assert_eq!(mutate(text, &Mutation::InsertBytes(4, vec![0])), b"name\0 = \"x\"\nstacks = 2\n");
}

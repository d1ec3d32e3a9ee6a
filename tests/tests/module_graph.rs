//! No crate of the workspace has a module cycle.
//!
//! Every crate's `src/` tree is read and its module graph built (top-level
//! modules, and the children of each directory module; see
//! `dtnet_tests::module_graph`); the test fails naming every cycle, with
//! the file and line of each edge on it.

use std::path::{Path, PathBuf};

use dtnet_tests::module_graph::{cycles, graphs, read_tree};

/// The workspace's crates: directories beside `tests/`, or inside
/// `harness/` (the harness's rooms), with a manifest and a `src/` tree.
fn crates() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ sits in the workspace");
    let mut found: Vec<PathBuf> = [root.to_path_buf(), root.join("harness")]
        .iter()
        .flat_map(|dir| std::fs::read_dir(dir).expect("workspace directory is readable"))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.join("Cargo.toml").is_file() && p.join("src").is_dir())
        .collect();
    found.sort();
    found
}

#[test]
fn no_crate_has_a_module_cycle() {
    let crates = crates();
    let names: Vec<String> = crates.iter().map(|c| c.file_name().unwrap().to_string_lossy().into_owned()).collect();
    let expected =
        ["ethdev", "user-veth", "user-vbridge", "stack", "capture", "sim", "scenario", "bench", "mp", "cli", "tests"];
    for expected in expected {
        assert!(names.iter().any(|n| n == expected), "crate {expected} not found among {names:?}");
    }
    let mut report = Vec::new();
    for dir in &crates {
        let files = read_tree(&dir.join("src")).expect("src/ is readable");
        let found = cycles(&files).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for (graph, cycle) in found {
            report.push(format!("{} ({graph}): {cycle}", dir.file_name().unwrap().to_string_lossy()));
        }
    }
    assert!(report.is_empty(), "module cycles:\n{}", report.join("\n"));
}

/// The checker sees the real trees' dependencies, so a pass means something.
#[test]
fn the_graphs_of_the_layered_crates_have_their_known_edges() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let (stack, stack_dirs) = graphs(&read_tree(&root.join("stack/src")).unwrap()).unwrap();
    assert!(stack.has_edge("api", "group") && stack.has_edge("group", "instance"), "{stack:?}");
    assert!(stack.has_edge("instance", "fabric") && !stack.has_edge("rpc", "api"), "{stack:?}");
    assert!(stack_dirs["instance"].has_edge("instance/sockets", "instance/listener"), "{stack_dirs:?}");
    let (sim, _) = graphs(&read_tree(&root.join("harness/sim/src")).unwrap()).unwrap();
    assert!(sim.has_edge("world", "replayer") && sim.has_edge("record", "world"), "{sim:?}");
    let (scenario, _) = graphs(&read_tree(&root.join("harness/scenario/src")).unwrap()).unwrap();
    assert!(scenario.has_edge("tcp_run", "plan") && scenario.has_edge("run", "build"), "{scenario:?}");
    let (cli, _) = graphs(&read_tree(&root.join("harness/cli/src")).unwrap()).unwrap();
    assert!(cli.has_edge("run", "runner") && !cli.has_edge("runner", "run"), "{cli:?}");
}

//! No crate of the workspace has a module cycle.
//!
//! Every crate's `src/` tree is read and its module graph built (top-level
//! modules, and the children of each directory module; see
//! `dtnet_tests::module_graph`); the test fails naming every cycle, with
//! the file and line of each edge on it.

use std::path::{Path, PathBuf};

use dtnet_tests::module_graph::{cycles, graphs, read_tree};

/// The workspace's crates: directories beside `tests/` with a manifest and
/// a `src/` tree.
fn crates() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ sits in the workspace");
    let mut found: Vec<PathBuf> = std::fs::read_dir(root)
        .expect("workspace root is readable")
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
    for expected in ["ethdev", "user-veth", "user-vbridge", "stack", "capture", "harness", "tests"] {
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
    assert!(stack_dirs["instance"].has_edge("instance/datapath", "instance/sockets"), "{stack_dirs:?}");
    let (harness, harness_dirs) = graphs(&read_tree(&root.join("harness/src")).unwrap()).unwrap();
    assert!(harness.has_edge("tcp_run", "scenario") && harness.has_edge("world", "replayer"), "{harness:?}");
    assert!(harness_dirs["scenario"].has_edge("scenario/run", "scenario/build"), "{harness_dirs:?}");
}

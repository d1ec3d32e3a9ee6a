//! The module dependency graph of a crate, and the cycles in it.
//!
//! The team's rule is "dependencies point down, no module cycles inside a
//! crate". This module checks it from the source alone: it parses every
//! file of a crate's `src/` tree with `syn`, collects each module's paths
//! into the crate (`use crate::…`, `super::…`, `self::…`, a child module's
//! name, also inside macro calls), resolves them through the modules'
//! `use` bindings (so `crate::Api`, re-exported at the root from `api`,
//! counts as a use of `api`), and builds two kinds of graph:
//!
//! - the crate's graph, whose nodes are its top-level modules (a file or a
//!   directory directly under `src/`), and
//! - for each directory module, the graph of its children (`scenario/build`,
//!   `scenario/plan`, …), whose nodes are the files and directories inside.
//!
//! An edge A → B means some code of A names an item of B. The crate root
//! (`lib.rs`, `main.rs`) and a directory's own `mod.rs` are the facades
//! that declare and re-export the nodes; they are not nodes themselves, so
//! a child naming an item its parent defines is not an edge, while one
//! naming an item its parent re-exports from a sibling is an edge to that
//! sibling. [`find_cycles`] reports each strongly connected set of nodes
//! as one cycle through them, with the file and line of every edge.
//!
//! Glob imports (`use x::*`) are followed to the module they import from,
//! not to the items it re-exports; the tree's code does not re-export
//! through globs.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use proc_macro2::{TokenStream, TokenTree};
use syn::visit::Visit;

/// A module path inside a crate, from the root (`[]` is the root).
type ModPath = Vec<String>;

/// One source file: its path relative to `src/` and its text.
#[derive(Clone, Debug)]
pub struct SourceFile {
    /// Path under `src/`, e.g. `scenario/build.rs`.
    pub path: PathBuf,
    /// The file's text.
    pub text: String,
}

/// Every `.rs` file under `src`, sorted by path.
pub fn read_tree(src: &Path) -> std::io::Result<Vec<SourceFile>> {
    let mut files = Vec::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path)?;
                let rel = path.strip_prefix(src).unwrap_or(&path).to_path_buf();
                files.push(SourceFile { path: rel, text });
            }
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

/// Where an edge comes from: the first reference found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Site {
    /// The file, relative to `src/`.
    pub file: PathBuf,
    /// Its line.
    pub line: usize,
    /// The path as written, e.g. `crate::tcp_run::listen`.
    pub path: String,
}

impl fmt::Display for Site {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{} names {}", self.file.display(), self.line, self.path)
    }
}

/// A directed graph of modules, named as `a` (top level) or `a/b` (inside
/// directory `a`), with the first site of each edge.
#[derive(Clone, Debug, Default)]
pub struct Graph {
    /// Edges from each node to each node it depends on.
    pub edges: BTreeMap<String, BTreeMap<String, Site>>,
}

impl Graph {
    fn add(&mut self, from: String, to: String, site: &Site) {
        self.edges.entry(from).or_default().entry(to).or_insert_with(|| site.clone());
    }

    /// Whether `from` depends on `to` directly.
    pub fn has_edge(&self, from: &str, to: &str) -> bool {
        self.edges.get(from).is_some_and(|e| e.contains_key(to))
    }
}

/// A cycle: nodes in order, each depending on the next and the last on the
/// first, with the site of each of those edges.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cycle {
    /// The nodes.
    pub nodes: Vec<String>,
    /// `sites[i]` is where `nodes[i]` names `nodes[(i + 1) % n]`.
    pub sites: Vec<Site>,
}

impl fmt::Display for Cycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ring = self.nodes.clone();
        ring.push(self.nodes[0].clone());
        write!(f, "{}", ring.join(" -> "))?;
        for site in &self.sites {
            write!(f, "\n    {site}")?;
        }
        Ok(())
    }
}

/// Why a tree could not be analysed.
#[derive(Debug)]
pub struct ParseError {
    /// The file.
    pub file: PathBuf,
    /// What syn said.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file.display(), self.message)
    }
}

/// The module path a file under `src/` defines (`None` for a file that is
/// not a module of the tree, such as `src/bin/x.rs`'s own root).
fn module_of(path: &Path) -> ModPath {
    let mut parts: Vec<String> = path.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    let file = parts.pop().unwrap_or_default();
    let stem = file.trim_end_matches(".rs");
    let is_root = parts.is_empty() && (stem == "lib" || stem == "main");
    if !(stem == "mod" || is_root) {
        parts.push(stem.to_string());
    }
    parts
}

/// A path the code names, in the module it appears in.
#[derive(Clone, Debug)]
struct Reference {
    scope: ModPath,
    segments: Vec<String>,
    site: Site,
}

/// What one module binds with `use`: name → absolute path (before
/// resolution through further bindings), or globs.
#[derive(Debug, Default)]
struct Scope {
    bindings: HashMap<String, Vec<String>>,
}

/// What the files of a tree say.
#[derive(Default)]
struct Facts {
    /// Every module (file or inline), by path.
    modules: BTreeSet<ModPath>,
    /// `use` bindings per module, with paths as written.
    scopes: HashMap<ModPath, Scope>,
    references: Vec<Reference>,
}

struct Collector<'a> {
    facts: &'a mut Facts,
    file: &'a Path,
    scope: ModPath,
}

impl Collector<'_> {
    fn site(&self, span: proc_macro2::Span, path: &[String]) -> Site {
        Site { file: self.file.to_path_buf(), line: span.start().line, path: path.join("::") }
    }

    fn reference(&mut self, segments: Vec<String>, span: proc_macro2::Span) {
        let site = self.site(span, &segments);
        self.facts.references.push(Reference { scope: self.scope.clone(), segments, site });
    }

    /// Records the leaves of a use tree below `prefix` as references and
    /// as bindings of the current module.
    fn use_tree(&mut self, prefix: &[String], tree: &syn::UseTree) {
        let with = |name: &syn::Ident| [prefix, &[name.to_string()]].concat();
        let (path, bound) = match tree {
            syn::UseTree::Path(p) => return self.use_tree(&with(&p.ident), &p.tree),
            syn::UseTree::Group(g) => return g.items.iter().for_each(|t| self.use_tree(prefix, t)),
            syn::UseTree::Name(n) if n.ident == "self" => (prefix.to_vec(), prefix.last().cloned()),
            syn::UseTree::Name(n) => (with(&n.ident), Some(n.ident.to_string())),
            syn::UseTree::Rename(r) => (with(&r.ident), Some(r.rename.to_string())),
            syn::UseTree::Glob(g) => {
                self.reference(prefix.to_vec(), g.star_token.spans[0]);
                return;
            }
        };
        let span = match tree {
            syn::UseTree::Name(n) => n.ident.span(),
            syn::UseTree::Rename(r) => r.ident.span(),
            _ => proc_macro2::Span::call_site(),
        };
        self.reference(path.clone(), span);
        if let Some(name) = bound.filter(|n| n != "_") {
            self.facts.scopes.entry(self.scope.clone()).or_default().bindings.insert(name, path);
        }
    }

    /// Paths of the form `a::b::c` inside macro tokens (which syn leaves
    /// unparsed): `crate`/`super`/`self` chains and child-module paths.
    fn macro_tokens(&mut self, tokens: TokenStream) {
        let flat: Vec<TokenTree> = tokens.into_iter().collect();
        let mut i = 0;
        while i < flat.len() {
            match &flat[i] {
                TokenTree::Group(g) => self.macro_tokens(g.stream()),
                TokenTree::Ident(first) => {
                    let (segments, next) = path_at(&flat, i);
                    if segments.len() > 1 {
                        self.reference(segments, first.span());
                        i = next;
                        continue;
                    }
                }
                _ => {}
            }
            i += 1;
        }
    }
}

/// The `ident :: ident :: …` path starting at `flat[i]`, and the index after it.
fn path_at(flat: &[TokenTree], mut i: usize) -> (Vec<String>, usize) {
    let mut segments = Vec::new();
    while let Some(TokenTree::Ident(id)) = flat.get(i) {
        segments.push(id.to_string());
        let colons = matches!((flat.get(i + 1), flat.get(i + 2)),
            (Some(TokenTree::Punct(a)), Some(TokenTree::Punct(b))) if a.as_char() == ':' && b.as_char() == ':');
        if !colons {
            return (segments, i + 1);
        }
        i += 3;
    }
    (segments, i)
}

impl<'ast> Visit<'ast> for Collector<'_> {
    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        let mut child = self.scope.clone();
        child.push(m.ident.to_string());
        self.facts.modules.insert(child.clone());
        if m.content.is_some() {
            let outer = std::mem::replace(&mut self.scope, child);
            syn::visit::visit_item_mod(self, m);
            self.scope = outer;
        }
    }

    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        self.use_tree(&[], &u.tree);
    }

    fn visit_path(&mut self, p: &'ast syn::Path) {
        if (p.leading_colon.is_none() && p.segments.len() > 1) || is_relative(p) {
            let segments = p.segments.iter().map(|s| s.ident.to_string()).collect();
            self.reference(segments, p.segments[0].ident.span());
        }
        syn::visit::visit_path(self, p);
    }

    fn visit_macro(&mut self, m: &'ast syn::Macro) {
        self.macro_tokens(m.tokens.clone());
        syn::visit::visit_macro(self, m);
    }
}

/// `super`, `self` or `crate` alone (as in `pub(super)`).
fn is_relative(p: &syn::Path) -> bool {
    p.segments.first().is_some_and(|s| s.ident == "super" || s.ident == "self" || s.ident == "crate")
}

impl Facts {
    fn collect(files: &[SourceFile]) -> Result<Facts, ParseError> {
        let mut facts = Facts::default();
        for file in files {
            let parsed = syn::parse_file(&file.text)
                .map_err(|e| ParseError { file: file.path.clone(), message: e.to_string() })?;
            let scope = module_of(&file.path);
            facts.modules.insert(scope.clone());
            Collector { facts: &mut facts, file: &file.path, scope }.visit_file(&parsed);
        }
        Ok(facts)
    }

    /// The absolute path `segments` names in module `scope`, if it names
    /// something of this crate.
    fn absolute(&self, scope: &[String], segments: &[String]) -> Option<ModPath> {
        let first = segments.first()?;
        match first.as_str() {
            "crate" => Some(segments[1..].to_vec()),
            "self" => Some([scope, &segments[1..]].concat()),
            "super" => {
                let ups = segments.iter().take_while(|s| *s == "super").count();
                let base = scope.get(..scope.len().checked_sub(ups)?)?;
                Some([base, &segments[ups..]].concat())
            }
            _ => {
                let child = [scope, &segments[..1]].concat();
                self.modules.contains(&child).then(|| [scope, segments].concat())
            }
        }
    }

    /// The module an absolute path ends in: the deepest module on it,
    /// following `use` bindings of re-exported names.
    fn target(&self, mut path: ModPath) -> ModPath {
        for _ in 0..16 {
            let depth = (0..=path.len()).rev().find(|&d| self.modules.contains(&path[..d])).unwrap_or(0);
            let module = path[..depth].to_vec();
            let Some(name) = path.get(depth) else { return module };
            let Some(bound) = self.scopes.get(&module).and_then(|s| s.bindings.get(name)) else { return module };
            let Some(next) = self.absolute(&module, bound) else { return module };
            path = [next, path[depth + 1..].to_vec()].concat();
        }
        path
    }
}

/// The graph nodes a module belongs to: its top-level module and, inside a
/// directory module, its child of that directory.
fn nodes(module: &[String], dirs: &BTreeSet<String>) -> (Option<String>, Option<String>) {
    let top = module.first().cloned();
    let inner = match module {
        [dir, child, ..] if dirs.contains(dir) => Some(format!("{dir}/{child}")),
        _ => None,
    };
    (top, inner)
}

/// The graphs of a crate's tree: the top-level one, and one per directory
/// module keyed by the directory's name.
pub fn graphs(files: &[SourceFile]) -> Result<(Graph, BTreeMap<String, Graph>), ParseError> {
    let facts = Facts::collect(files)?;
    let dirs: BTreeSet<String> =
        files.iter().filter(|f| f.path.components().count() > 1).map(|f| module_of(&f.path)[0].clone()).collect();
    let mut top = Graph::default();
    let mut inner: BTreeMap<String, Graph> = BTreeMap::new();
    for r in &facts.references {
        let Some(abs) = facts.absolute(&r.scope, &r.segments) else { continue };
        let to = facts.target(abs);
        let (from_top, from_inner) = nodes(&r.scope, &dirs);
        let (to_top, to_inner) = nodes(&to, &dirs);
        if let (Some(a), Some(b)) = (&from_top, &to_top) {
            if a != b {
                top.add(a.clone(), b.clone(), &r.site);
            }
        }
        if let (Some(a), Some(b), true) = (from_inner, to_inner, from_top == to_top) {
            if a != b {
                inner.entry(from_top.unwrap_or_default()).or_default().add(a, b, &r.site);
            }
        }
    }
    Ok((top, inner))
}

/// Every cycle of `graph`: one per strongly connected set of two or more
/// nodes, as a shortest cycle through its smallest node.
pub fn find_cycles(graph: &Graph) -> Vec<Cycle> {
    let mut seen = BTreeSet::new();
    let mut cycles = Vec::new();
    for start in graph.edges.keys() {
        if seen.contains(start) {
            continue;
        }
        if let Some(nodes) = shortest_cycle(graph, start) {
            let component = component_of(graph, start);
            seen.extend(component);
            let sites =
                (0..nodes.len()).map(|i| graph.edges[&nodes[i]][&nodes[(i + 1) % nodes.len()]].clone()).collect();
            cycles.push(Cycle { nodes, sites });
        }
    }
    cycles
}

fn successors<'g>(graph: &'g Graph, node: &str) -> impl Iterator<Item = &'g String> {
    graph.edges.get(node).into_iter().flat_map(|e| e.keys())
}

/// Nodes reachable from `from` (itself included).
fn reachable(graph: &Graph, from: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::from([from.to_string()]);
    let mut stack = vec![from.to_string()];
    while let Some(n) = stack.pop() {
        for s in successors(graph, &n) {
            if seen.insert(s.clone()) {
                stack.push(s.clone());
            }
        }
    }
    seen
}

/// The nodes on a cycle with `node`: those it reaches that reach it back.
fn component_of(graph: &Graph, node: &str) -> BTreeSet<String> {
    reachable(graph, node).into_iter().filter(|n| reachable(graph, n).contains(node)).collect()
}

/// A shortest cycle from `start` back to itself (breadth first), if any.
fn shortest_cycle(graph: &Graph, start: &str) -> Option<Vec<String>> {
    let mut parent: BTreeMap<String, String> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start.to_string()]);
    while let Some(n) = queue.pop_front() {
        for s in successors(graph, &n) {
            if s == start {
                let mut path = vec![n.clone()];
                while let Some(p) = parent.get(path.last()?) {
                    path.push(p.clone());
                }
                path.reverse();
                return Some(path);
            }
            if !parent.contains_key(s) && s != start {
                parent.insert(s.clone(), n.clone());
                queue.push_back(s.clone());
            }
        }
    }
    None
}

/// Every cycle in the tree of `files`, top level first, each named with
/// its graph (`crate` or the directory).
pub fn cycles(files: &[SourceFile]) -> Result<Vec<(String, Cycle)>, ParseError> {
    let (top, inner) = graphs(files)?;
    let mut out: Vec<(String, Cycle)> = find_cycles(&top).into_iter().map(|c| ("crate".to_string(), c)).collect();
    for (dir, graph) in &inner {
        out.extend(find_cycles(graph).into_iter().map(|c| (format!("{dir}/"), c)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> Vec<SourceFile> {
        files.iter().map(|(p, t)| SourceFile { path: PathBuf::from(p), text: t.to_string() }).collect()
    }

    #[test]
    fn a_use_cycle_between_top_level_modules_is_found_with_its_sites() {
        let files = tree(&[
            ("lib.rs", "mod a;\nmod b;\nmod c;\n"),
            ("a.rs", "use crate::b::B;\npub struct A;\n"),
            ("b.rs", "pub struct B;\nfn f() -> crate::c::C { todo!() }\n"),
            ("c.rs", "pub struct C;\nfn g(_: super::a::A) {}\n"),
        ]);
        let found = cycles(&files).unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        let (graph, cycle) = &found[0];
        assert_eq!(graph, "crate");
        assert_eq!(cycle.nodes, ["a", "b", "c"]);
        assert_eq!(cycle.sites[0].to_string(), "a.rs:1 names crate::b::B");
        assert_eq!(cycle.sites[1].to_string(), "b.rs:2 names crate::c::C");
        assert_eq!(cycle.sites[2].to_string(), "c.rs:2 names super::a::A");
        assert!(cycle.to_string().starts_with("a -> b -> c -> a"), "{cycle}");
    }

    #[test]
    fn a_tree_whose_edges_point_one_way_has_no_cycle() {
        let files = tree(&[
            ("lib.rs", "pub mod a;\npub mod b;\npub use a::A;\n"),
            ("a.rs", "pub struct A;\n"),
            ("b.rs", "use crate::a::A;\nfn f(_: A) {}\n"),
        ]);
        assert!(cycles(&files).unwrap().is_empty());
        let (top, _) = graphs(&files).unwrap();
        assert!(top.has_edge("b", "a") && !top.has_edge("a", "b"));
    }

    #[test]
    fn re_exports_at_the_root_and_macro_paths_count_as_edges() {
        let files = tree(&[
            ("lib.rs", "mod a;\nmod b;\npub use b::Thing;\n"),
            ("a.rs", "pub fn f() { let _ = crate::Thing::new(); }\npub const N: usize = 1;\n"),
            ("b.rs", "pub struct Thing;\nfn g() { println!(\"{}\", crate::a::N); }\n"),
        ]);
        let found = cycles(&files).unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].1.nodes, ["a", "b"]);
        assert_eq!(found[0].1.sites[1].path, "crate::a::N");
    }

    #[test]
    fn siblings_in_a_directory_form_their_own_graph() {
        let files = tree(&[
            ("lib.rs", "mod d;\n"),
            ("d/mod.rs", "mod x;\nmod y;\npub use y::Y;\npub struct Parent;\n"),
            ("d/x.rs", "use super::Y;\nuse super::Parent;\npub struct X;\n"),
            ("d/y.rs", "pub struct Y;\n#[cfg(test)]\nmod tests {\n    use super::*;\n    use super::super::x::X;\n}\n"),
        ]);
        let found = cycles(&files).unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].0, "d/");
        assert_eq!(found[0].1.nodes, ["d/x", "d/y"]);
        // Naming what the parent itself defines is not an edge.
        let (_, inner) = graphs(&files).unwrap();
        assert_eq!(inner["d"].edges.len(), 2);
    }

    #[test]
    fn paths_to_other_crates_and_comments_are_not_edges() {
        let files = tree(&[
            ("lib.rs", "mod a;\nmod b;\n"),
            (
                "a.rs",
                "//! See [`b`](crate::b::B).\nuse std::b::Z;\nuse other::b::B;\n/// [`crate::b::B`]\npub struct A;\n",
            ),
            ("b.rs", "use crate::a::A;\npub struct B(A);\n"),
        ]);
        assert!(cycles(&files).unwrap().is_empty());
    }

    #[test]
    fn a_file_that_does_not_parse_is_an_error_naming_it() {
        let files = tree(&[("lib.rs", "mod a;\n"), ("a.rs", "fn (")]);
        let err = cycles(&files).unwrap_err();
        assert_eq!(err.file, PathBuf::from("a.rs"));
    }
}

//! The hub's dependency rule (docs/architecture.md, "The hub's layout and its dependency
//! rule"), checked on the sources: each top-level module of `hub/src` names only the modules
//! it may use (`crate::...` paths), and no modules one level down import each other in a circle.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
};

/// Each top-level module and the top-level modules it may use; `lib.rs` and `main.rs` only
/// re-export and start, so they are left out.
const ALLOWED: &[(&str, &[&str])] = &[
    (
        "app",
        &["api", "ingest", "ops", "security", "error", "store", "util"],
    ),
    (
        "api",
        &["ingest", "ops", "security", "error", "store", "util"],
    ),
    ("ops", &["ingest", "error", "store", "util"]),
    ("ingest", &["error", "store", "util"]),
    ("security", &["util"]),
    ("error", &["store"]),
    ("store", &["util"]),
    ("util", &[]),
];

/// A module graph: each module and the modules its files name.
type Graph = BTreeMap<String, BTreeSet<String>>;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module a file belongs to, as at most `depth` segments (`ops/alerts/rules.rs` at
/// depth 2 is `ops::alerts`).
fn module_of(file: &Path, depth: usize) -> Vec<String> {
    let rel = file.strip_prefix(src()).unwrap().with_extension("");
    let mut segments: Vec<String> = rel
        .iter()
        .map(|s| s.to_string_lossy().into_owned())
        .collect();
    if segments.last().is_some_and(|s| s == "mod") {
        segments.pop();
    }
    segments.truncate(depth);
    segments
}

/// The longest prefix of `path` (at most `depth` segments) that is a module of `hub/src`:
/// `store::InstanceKey` is in `store`, `util::clock::now_ns` in `util::clock`.
fn module_named(path: &[String], depth: usize) -> Vec<String> {
    let mut module = Vec::new();
    let mut dir = src();
    for segment in path.iter().take(depth) {
        if !dir.join(segment).is_dir() && !dir.join(format!("{segment}.rs")).is_file() {
            break;
        }
        dir = dir.join(segment);
        module.push(segment.clone());
    }
    module
}

/// The paths a `crate::` path or use tree starting at `text` names, e.g. `{a::b, c}` gives
/// `a::b` and `c`.
fn use_tree(text: &str) -> Vec<Vec<String>> {
    let chars: Vec<char> = text.chars().collect();
    let mut at = 0;
    tree(&chars, &mut at)
}

fn skip_space(chars: &[char], at: &mut usize) {
    while chars.get(*at).is_some_and(|c| c.is_whitespace()) {
        *at += 1;
    }
}

fn ident(chars: &[char], at: &mut usize) -> Option<String> {
    let start = *at;
    while chars
        .get(*at)
        .is_some_and(|c| c.is_alphanumeric() || *c == '_')
    {
        *at += 1;
    }
    (*at > start).then(|| chars[start..*at].iter().collect())
}

fn tree(chars: &[char], at: &mut usize) -> Vec<Vec<String>> {
    skip_space(chars, at);
    if chars.get(*at) == Some(&'{') {
        *at += 1;
        let mut paths = Vec::new();
        loop {
            skip_space(chars, at);
            match chars.get(*at) {
                Some('}') => {
                    *at += 1;
                    return paths;
                }
                Some(',') => *at += 1,
                None => return paths,
                _ => {
                    let before = *at;
                    paths.extend(tree(chars, at));
                    if *at == before {
                        *at += 1;
                    }
                }
            }
        }
    }
    let Some(head) = ident(chars, at) else {
        return Vec::new();
    };
    if chars[*at..].starts_with(&[':', ':']) {
        *at += 2;
        let rest = tree(chars, at);
        if rest.is_empty() {
            return vec![vec![head]];
        }
        return rest
            .into_iter()
            .map(|tail| std::iter::once(head.clone()).chain(tail).collect())
            .collect();
    }
    if head == "self" {
        return vec![Vec::new()];
    }
    vec![vec![head]]
}

/// The module graph at `depth` segments, from the `crate::` paths outside comments.
fn graph(depth: usize) -> Graph {
    let mut files = Vec::new();
    sources(&src(), &mut files);
    let mut graph = Graph::new();
    for file in files {
        let from = module_of(&file, depth);
        if from == ["lib"] || from == ["main"] {
            continue;
        }
        let from_name = from.join("::");
        let edges = graph.entry(from_name.clone()).or_default();
        let text = fs::read_to_string(&file).unwrap();
        let code: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        for (at, _) in code.match_indices("crate::") {
            for path in use_tree(&code[at + "crate::".len()..]) {
                let to = module_named(&path, depth).join("::");
                if !to.is_empty() && to != from_name {
                    edges.insert(to);
                }
            }
        }
    }
    graph
}

/// A circle in `graph`, if there is one, as the modules along it.
fn circle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &Graph,
        done: &mut BTreeSet<String>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|n| n == node) {
            let mut found = path[start..].to_vec();
            found.push(node.to_owned());
            return Some(found);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(found) = visit(next, graph, done, path) {
                return Some(found);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut done, &mut Vec::new()))
}

#[test]
fn top_level_modules_use_only_the_layers_the_rule_allows() {
    let graph = graph(1);
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let mut broken = Vec::new();
    for (from, uses) in &graph {
        let Some(may_use) = allowed.get(from.as_str()) else {
            broken.push(format!("{from}: a top-level module the rule does not list"));
            continue;
        };
        for to in uses {
            if !may_use.contains(&to.as_str()) {
                broken.push(format!("{from} -> {to}"));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "arrows the dependency rule (docs/architecture.md) does not allow: {broken:?}"
    );
    assert_eq!(
        circle(&graph),
        None,
        "an import circle between top-level modules"
    );
}

#[test]
fn modules_one_level_down_import_each_other_in_no_circle() {
    let graph = graph(2);
    assert!(
        graph.contains_key("ingest::validate") && graph.contains_key("store"),
        "the modules were not found: {:?}",
        graph.keys()
    );
    assert_eq!(circle(&graph), None, "an import circle");
}

#[test]
fn use_trees_are_read_to_the_modules_they_name() {
    let names = |text: &str| {
        use_tree(text)
            .into_iter()
            .map(|p| p.join("::"))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names("{util::clock::{self, now_ns}, store::X};"),
        ["util::clock", "util::clock::now_ns", "store::X"]
    );
    assert_eq!(names("ops::alerts::load(path)?;"), ["ops::alerts::load"]);
}

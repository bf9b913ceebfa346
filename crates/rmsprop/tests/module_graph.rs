//! The library's module dependencies run one way: optimizers → driver → kernels → options, with
//! no cycle anywhere. Read from the source: every `crate::` and `super::` path outside comments,
//! names re-exported at the root resolved through `lib.rs`, at the granularity of files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// `kernel/rmsprop.rs` → `kernel/rmsprop`; `kernel/mod.rs` → `kernel`.
fn module_of(path: &Path) -> String {
    let rel = path.strip_prefix(src()).unwrap().with_extension("");
    let name = rel.to_string_lossy().replace('\\', "/");
    name.strip_suffix("/mod").unwrap_or(&name).to_string()
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The code without comments (line comments and doc comments).
fn code(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Every path that follows `prefix` (`crate::` or `super::`), braces expanded:
/// `crate::{a::B, C}` gives `a::B` and `C`.
fn paths_after(text: &str, prefix: &str) -> Vec<String> {
    fn group(chars: &[char], mut i: usize, base: &str, out: &mut Vec<String>) -> usize {
        let mut current = String::new();
        while i < chars.len() {
            let c = chars[i];
            if c.is_alphanumeric() || c == '_' || c == ':' {
                current.push(c);
                i += 1;
            } else if c == '{' {
                i = group(chars, i + 1, &format!("{base}{current}"), out);
                current.clear();
            } else if c == ',' || c == '}' {
                if !current.trim_matches(':').is_empty() {
                    out.push(format!("{base}{current}"));
                }
                current.clear();
                i += 1;
                if c == '}' {
                    return i;
                }
            } else if c.is_whitespace() {
                i += 1;
            } else {
                break;
            }
        }
        if !current.trim_matches(':').is_empty() {
            out.push(format!("{base}{current}"));
        }
        i
    }
    let mut out = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let p: Vec<char> = prefix.chars().collect();
    let mut i = 0;
    while i + p.len() <= chars.len() {
        let boundary = i == 0 || !(chars[i - 1].is_alphanumeric() || chars[i - 1] == '_');
        if boundary && chars[i..i + p.len()] == p[..] {
            let start = i + p.len();
            if chars.get(start) == Some(&'{') {
                i = group(&chars, start + 1, "", &mut out);
            } else {
                let mut path = String::new();
                let mut j = start;
                while j < chars.len() && (chars[j].is_alphanumeric() || "_:".contains(chars[j])) {
                    path.push(chars[j]);
                    j += 1;
                }
                if chars.get(j) == Some(&'{') {
                    j = group(&chars, j + 1, &path, &mut out);
                } else {
                    out.push(path);
                }
                i = j;
            }
        } else {
            i += 1;
        }
    }
    out
}

/// The file module a path names: the longest prefix of its segments that is a module.
fn resolve(
    segments: &[&str],
    modules: &BTreeSet<String>,
    reexports: &BTreeMap<String, String>,
) -> Option<String> {
    for n in (1..=segments.len()).rev() {
        let candidate = segments[..n].join("/");
        if modules.contains(&candidate) {
            return Some(candidate);
        }
    }
    reexports.get(segments[0]).cloned()
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut all = Vec::new();
    files(&src(), &mut all);
    let modules: BTreeSet<String> = all.iter().map(|p| module_of(p)).collect();
    // Names `lib.rs` re-exports, and the module each comes from.
    let lib = code(&src().join("lib.rs"));
    let mut reexports = BTreeMap::new();
    for path in paths_after(&lib.replace("pub use ", "pub use crate::"), "crate::") {
        let segments: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
        if let (Some(last), Some(m)) = (
            segments.last(),
            resolve(&segments[..segments.len() - 1], &modules, &BTreeMap::new()),
        ) {
            reexports.insert(last.to_string(), m);
        }
    }
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &all {
        let me = module_of(file);
        if me == "lib" {
            continue;
        }
        let text = code(file);
        let parent = match me.rsplit_once('/') {
            Some((p, _)) if !file.ends_with("mod.rs") => p.to_string(),
            _ => me
                .rsplit_once('/')
                .map_or(String::new(), |(p, _)| p.to_string()),
        };
        let mut targets = Vec::new();
        for path in paths_after(&text, "crate::") {
            let segments: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
            if !segments.is_empty() {
                targets.extend(resolve(&segments, &modules, &reexports));
            }
        }
        for path in paths_after(&text, "super::") {
            let full = if parent.is_empty() {
                path.clone()
            } else {
                format!("{parent}::{path}")
            };
            let segments: Vec<&str> = full.split([':', '/']).filter(|s| !s.is_empty()).collect();
            // `super::` inside an inline `mod` of a file names the file itself.
            if let Some(m) = resolve(&segments, &modules, &BTreeMap::new()) {
                targets.push(m);
            } else if !parent.is_empty() {
                targets.push(parent.clone());
            }
        }
        let entry = graph.entry(me.clone()).or_default();
        for t in targets {
            if t != me && t != "lib" {
                entry.insert(t);
            }
        }
    }
    graph
}

/// A cycle in the graph, if there is one.
fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = stack.iter().position(|n| n == node) {
            let mut c = stack[i..].to_vec();
            c.push(node.to_string());
            return Some(c);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, graph, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

#[test]
fn the_module_graph_has_no_cycle_and_runs_one_way() {
    let g = graph();
    assert_eq!(cycle(&g), None, "module dependency cycle");
    let deps = |m: &str| g.get(m).cloned().unwrap_or_default();
    // Kernels depend on the options and the element type only, never on optimizers or the driver.
    for (m, d) in &g {
        if m.starts_with("kernel") {
            for x in d {
                assert!(
                    x.starts_with("kernel") || ["options", "float"].contains(&x.as_str()),
                    "{m} depends on {x}"
                );
            }
        }
    }
    // The options are a leaf; the driver does not know the optimizers.
    assert_eq!(deps("options"), BTreeSet::new());
    assert!(!deps("exec").iter().any(|d| d.starts_with("optim")));
    assert!(deps("optim").contains("exec") || deps("optim").contains("algorithm"));
}

#[test]
fn the_checker_sees_a_cycle_when_there_is_one() {
    // The same reader on a made-up graph: a -> b -> a.
    let mut g = BTreeMap::new();
    g.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    g.insert("b".to_string(), BTreeSet::from(["a".to_string()]));
    assert!(cycle(&g).is_some());
    // And the path reader expands braces.
    let p = paths_after("use crate::{kernel::fast::Isa, Error};", "crate::");
    assert_eq!(p, ["kernel::fast::Isa", "Error"]);
    // The real graph has the edges the layout promises.
    let real = graph();
    assert!(real["optim/rmsprop"].contains("kernel/rmsprop"));
    assert!(real["kernel/rmsprop"].contains("options"));
    assert!(real["exec"].contains("kernel/fast"));
}

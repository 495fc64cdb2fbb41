//! The file tree stays a tree a newcomer can read top to bottom: no two source files import each
//! other, directly or in a circle, in either crate.
//!
//! Each `use crate::…` / `use super::…` / `crate::…::` path in a file is resolved to the file
//! that defines the module it names (`a/b.rs` or `a/b/mod.rs`); a re-export through a parent's
//! `mod.rs` counts as an import of that `mod.rs`, so a type used by siblings belongs in a file of
//! its own, not in a sibling. A path naming an item (`crate::detect::Limits`) resolves to the
//! deepest module file it reaches. The check then looks for a cycle in the graph of files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The module files of a crate rooted at `src`: module path (`["detect", "head"]`) to file.
fn modules(src: &Path) -> BTreeMap<Vec<String>, PathBuf> {
    let mut out = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(src).expect("inside src");
            let mut parts: Vec<String> = rel
                .iter()
                .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_owned())
                .collect();
            if parts
                .last()
                .is_some_and(|p| p == "mod" || p == "lib" || p == "main")
            {
                parts.pop();
            }
            if rel == Path::new("main.rs") {
                continue; // the binary is a crate of its own
            }
            out.insert(parts, path);
        }
    }
    out
}

/// The module paths `text` (the file of module `here`) imports from its own crate. `super` is
/// the parent module, for `a/b.rs` and `a/b/mod.rs` alike. A `mod.rs` re-exporting its children
/// (`pub use head::…`) is how a folder declares its modules, and is not followed.
fn imports(text: &str, here: &[String]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for (i, _) in text
        .match_indices("crate::")
        .chain(text.match_indices("super::"))
    {
        // Skip what is not code: comments and strings are rare enough here to accept.
        let line_start = text[..i].rfind('\n').map_or(0, |p| p + 1);
        let line = text[line_start..i].trim_start();
        if line.starts_with("//") || line.starts_with("#[doc") {
            continue;
        }
        if i > 0 && text.as_bytes()[i - 1].is_ascii_alphanumeric() {
            continue;
        }
        let rest = &text[i..];
        let mut path: Vec<String> = Vec::new();
        let mut segments = rest.split("::");
        let first = segments.next().unwrap_or_default();
        if first == "super" {
            path = here.to_vec();
            path.pop();
        }
        for segment in segments {
            if segment == "super" {
                path.pop();
                continue;
            }
            let name: String = segment
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if name.is_empty() || name == "self" {
                break;
            }
            path.push(name);
            if !segment
                .trim_start_matches(|c: char| c.is_alphanumeric() || c == '_')
                .is_empty()
            {
                break; // `{`, `;`, `,`, `(`: the path ends at this segment
            }
        }
        out.push(path);
    }
    out
}

/// Checks one crate: `Err` with a cycle, as file names.
fn check_crate(src: &Path) -> Result<(), String> {
    let modules = modules(src);
    let mut graph: BTreeMap<PathBuf, BTreeSet<PathBuf>> = BTreeMap::new();
    for (here, file) in &modules {
        let text = std::fs::read_to_string(file).expect("read a source file");
        // Tests inside a file are not part of the tree.
        let text = text.split("#[cfg(test)]").next().unwrap_or_default();
        for path in imports(text, here) {
            // The deepest module the path reaches.
            let mut target = None;
            for len in (0..=path.len()).rev() {
                if let Some(f) = modules.get(&path[..len]) {
                    target = Some(f.clone());
                    break;
                }
            }
            if let Some(target) = target
                && &target != file
            {
                graph.entry(file.clone()).or_default().insert(target);
            }
        }
    }
    // Every strongly connected group of more than one file is a circle of imports.
    let nodes: Vec<&PathBuf> = graph
        .keys()
        .chain(graph.values().flatten())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let reach = |from: &PathBuf| {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.clone()];
        while let Some(n) = todo.pop() {
            for next in graph.get(&n).into_iter().flatten() {
                if seen.insert(next.clone()) {
                    todo.push(next.clone());
                }
            }
        }
        seen
    };
    let reachable: BTreeMap<&PathBuf, BTreeSet<PathBuf>> =
        nodes.iter().map(|n| (*n, reach(n))).collect();
    let mut groups: BTreeSet<Vec<String>> = BTreeSet::new();
    for n in &nodes {
        let group: Vec<String> = nodes
            .iter()
            .filter(|m| reachable[*n].contains(**m) && reachable[**m].contains(*n))
            .map(|m| m.strip_prefix(src).unwrap_or(m).display().to_string())
            .collect();
        if group.len() > 1 {
            groups.insert(group);
        }
    }
    if groups.is_empty() {
        Ok(())
    } else {
        Err(groups
            .iter()
            .map(|g| g.join(" <-> "))
            .collect::<Vec<_>>()
            .join("\n  "))
    }
}

#[test]
fn no_two_files_import_each_other_in_either_crate() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut cycles = Vec::new();
    for src in [root.join("src"), root.join("executor/src")] {
        if let Err(cycle) = check_crate(&src) {
            cycles.push(format!("{}: {cycle}", src.display()));
        }
    }
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

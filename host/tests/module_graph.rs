//! The host's top-level modules depend on each other without cycles: the data flows one
//! way (sources → chain → sinks, with engine and the shared types below), so each module
//! can be read, and changed, knowing only the ones under it.
//!
//! A module "uses" another when its code (doc comments and tests left out) names
//! `crate::<other>`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top-level module → the top-level modules its code names.
fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let relative = path.strip_prefix(&src).unwrap();
            let top = relative
                .components()
                .next()
                .unwrap()
                .as_os_str()
                .to_string_lossy()
                .trim_end_matches(".rs")
                .to_string();
            if top == "lib" || top == "main" {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap_or("");
            let uses = graph.entry(top.clone()).or_default();
            for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
                for (i, _) in line.match_indices("crate::") {
                    let name: String = line[i + 7..]
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    if !name.is_empty() && name != top {
                        uses.insert(name);
                    }
                }
            }
        }
    }
    graph
}

#[test]
fn the_host_modules_form_no_cycle() {
    let graph = module_graph();
    assert!(graph.contains_key("chain") && graph.contains_key("engine"));
    // Depth-first search for a path back to where it started.
    fn cycle_from(
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        let last = path.last().unwrap().clone();
        for next in graph.get(&last).into_iter().flatten() {
            if *next == path[0] {
                let mut cycle = path.clone();
                cycle.push(next.clone());
                return Some(cycle);
            }
            if !path.contains(next) {
                path.push(next.clone());
                if let Some(cycle) = cycle_from(graph, path) {
                    return Some(cycle);
                }
                path.pop();
            }
        }
        None
    }
    for start in graph.keys() {
        if let Some(cycle) = cycle_from(&graph, &mut vec![start.clone()]) {
            panic!("a cycle between host modules: {}", cycle.join(" → "));
        }
    }
}

//! The folders of `src/` are the architecture: each layer imports only the layers below it.
//! This test reads every source file and fails on a `crate::` path that reaches upward.

use std::path::{Path, PathBuf};

/// The layers, lowest first. `experiment` and `bench` sit side by side at the top.
const LAYERS: &[&[&str]] = &[
    &["error"],
    &["kernels", "simd_dispatch"],
    &["params"],
    &["cell"],
    &["recurrent"],
    &["model"],
    &["data"],
    &["io"],
    &["tasks"],
    &["explain"],
    &["pages"],
    &["experiment", "bench"],
];

fn level(name: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&name))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without its comments (doc links may point anywhere).
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.split("//").next().unwrap_or("")))
}

#[test]
fn no_layer_imports_a_higher_one() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(files.len() > 30, "found only {} files", files.len());
    let mut upward = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(&src).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let top = top.trim_end_matches(".rs");
        if top == "lib" {
            continue; // the crate root re-exports from every layer
        }
        let own = level(top).unwrap_or_else(|| panic!("{} is in no layer", rel.display()));
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in code_lines(&text) {
            for (i, _) in line.match_indices("crate::") {
                let rest = &line[i + "crate::".len()..];
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if name.is_empty() {
                    continue;
                }
                // `Error`/`Result` re-exported at the root belong to the bottom layer
                let theirs = match name.as_str() {
                    "Error" | "Result" => 0,
                    _ => level(&name).unwrap_or_else(|| {
                        panic!("{}:{n}: crate::{name} is in no layer", rel.display())
                    }),
                };
                if theirs > own {
                    upward.push(format!(
                        "{}:{n}: {top} imports crate::{name}",
                        rel.display()
                    ));
                }
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports that reach upward:\n{}",
        upward.join("\n")
    );
}

#[test]
fn the_check_sees_an_upward_import() {
    // the scan itself: a model file naming tasks would be caught
    let line = "use crate::tasks::settings::Settings;";
    let (_, code) = code_lines(line).next().unwrap();
    assert!(code.contains("crate::tasks"));
    assert!(level("tasks").unwrap() > level("model").unwrap());
    // and a comment is not code
    let (_, code) = code_lines("/// see crate::tasks").next().unwrap();
    assert!(!code.contains("crate::tasks"));
}

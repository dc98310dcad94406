//! Output paths checked against what a command reads, so that no command destroys its input.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

/// `path` made absolute through its nearest existing folder (the file itself may not exist).
pub fn resolved(path: &Path) -> PathBuf {
    let mut tail = Vec::new();
    let mut cur = path.to_path_buf();
    loop {
        if let Ok(c) = cur.canonicalize() {
            return tail
                .iter()
                .rev()
                .fold(c, |acc, n: &std::ffi::OsString| acc.join(n));
        }
        match (cur.file_name(), cur.parent()) {
            (Some(n), Some(p)) => {
                tail.push(n.to_os_string());
                cur = if p.as_os_str().is_empty() {
                    PathBuf::from(".")
                } else {
                    p.to_path_buf()
                };
            }
            _ => return path.to_path_buf(),
        }
    }
}

/// Whether two output paths name the same file (`sub/../x.csv` and `x.csv`; the review,
/// 2026-12-07: only their absolute spellings were compared).
pub fn same_file_target(a: &Path, b: &Path) -> bool {
    resolved(a) == resolved(b)
}

/// Refuses an `--out` file inside the model directory `model`, or equal to one of `inputs`.
pub fn check_out_file(out: &Path, model: Option<&Path>, inputs: &[&Path]) -> Result<()> {
    check_output("--out", out, model, inputs)
}

/// Refuses an output file `out` (given as `flag`) inside the model directory `model`, or
/// equal to one of `inputs`.
pub fn check_output(flag: &str, out: &Path, model: Option<&Path>, inputs: &[&Path]) -> Result<()> {
    let o = resolved(out);
    if let Some(m) = model {
        if o.starts_with(resolved(m)) {
            bail!(
                "{flag} {} is inside the model directory {}; write it somewhere else",
                out.display(),
                m.display()
            );
        }
    }
    if let Some(i) = inputs.iter().find(|i| resolved(i) == o) {
        bail!(
            "{flag} {} is the input file {}; write it somewhere else",
            out.display(),
            i.display()
        );
    }
    Ok(())
}

/// Refuses an output file `out` (given as `flag`) that is a directory or whose folder does not
/// exist, before anything is computed or written.
pub fn check_file_target(flag: &str, out: &Path) -> Result<()> {
    if out.is_dir() {
        bail!("{flag} {} is a directory; name a file in it", out.display());
    }
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if parent.exists() && !parent.is_dir() {
        bail!(
            "{flag} {}: {} is a file, not a folder; name a file in a folder",
            out.display(),
            parent.display()
        );
    }
    if !parent.is_dir() {
        bail!(
            "{flag} {}: the folder {} does not exist; create it first",
            out.display(),
            parent.display()
        );
    }
    Ok(())
}

//! Shared by the CLI test files: their temporary directories, the binary and the bundled data.
//! Not every test file uses every helper, hence the `dead_code` allowances.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `lstm` binary built for these tests.
#[allow(dead_code)]
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_lstm"))
}

/// A file of the repository's `data/` folder.
#[allow(dead_code)]
pub fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../data")
        .join(name)
}

/// Runs `lstm args...` to its end.
#[allow(dead_code)]
pub fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("the binary runs")
}

/// Runs `lstm args...`, which must succeed without a panic, and returns its standard output.
#[allow(dead_code)]
pub fn ok(args: &[&str]) -> String {
    let o = run(args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "lstm {args:?} failed: {err}");
    assert!(!err.contains("panicked"), "{err}");
    String::from_utf8(o.stdout).unwrap()
}

/// A fresh temporary directory, removed when the test passes (kept for a look when it fails).
pub struct Tmp(PathBuf);

impl std::ops::Deref for Tmp {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for Tmp {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Tmp {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// An empty directory `{prefix}-{name}-{pid}` in the system's temporary directory.
pub fn tmp_dir(prefix: &str, name: &str) -> Tmp {
    let d = std::env::temp_dir().join(format!("{prefix}-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    Tmp(d)
}

//! Shared by the CLI test files: their temporary directories.

use std::path::{Path, PathBuf};

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

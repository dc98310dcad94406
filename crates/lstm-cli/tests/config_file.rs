//! A `--config` TOML file sets what it names and nothing else: settings it leaves out keep the
//! job's own defaults, including the options that are unset (no budget in minutes for classify).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

/// 40 rows of two classes, `text` and `label`, written into `dir`.
fn two_class_tsv(dir: &Path) -> PathBuf {
    let mut tsv = String::from("text\tlabel\n");
    for i in 0..40 {
        let (t, l) = if i % 2 == 0 {
            ("good fine", "pos")
        } else {
            ("bad poor", "neg")
        };
        tsv.push_str(&format!("{t}\t{l}\n"));
    }
    let data = dir.join("d.tsv");
    std::fs::write(&data, tsv).unwrap();
    data
}

/// Trains a classifier on [`two_class_tsv`] in `dir` with `toml` as its `--config` and the
/// `flags`; returns its model directory and its saved `settings`.
fn train_with_config(dir: &Path, toml: &str, flags: &[&str]) -> (PathBuf, serde_json::Value) {
    let data = two_class_tsv(dir);
    let cfg = dir.join("c.toml");
    std::fs::write(&cfg, toml).unwrap();
    let m = dir.join("m");
    let o = Command::new(env!("CARGO_BIN_EXE_lstm"))
        .args([
            "train",
            "classify",
            "--data",
            data.to_str().unwrap(),
            "--out",
            m.to_str().unwrap(),
            "--config",
            cfg.to_str().unwrap(),
            "--quiet",
        ])
        .args(flags)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let c: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(m.join("config.json")).unwrap()).unwrap();
    (m, c["settings"].clone())
}

#[test]
fn a_config_file_keeps_the_jobs_unset_options() {
    let dir = common::tmp_dir("lstm-config-file", "classify");
    let (_, s) = train_with_config(&dir, "hidden = 8\n", &["--epochs", "1", "--members", "1"]);
    assert_eq!(s["hidden"], 8, "the file's value");
    assert!(
        s["minutes"].is_null(),
        "no minutes budget: {}",
        s["minutes"]
    );
    assert_eq!(s["embedding"], 100, "classify's default, not text's");
    assert_eq!(s["epochs"], 1.0);
}

/// A budget in the file is a new budget, as `--steps` is: the job's default one (8 epochs for
/// classify, 4 minutes for text) is not kept beside it (a review, 2026-12-07: a classify run
/// with `steps = 100` in its file stopped at the default epochs' 45 steps).
#[test]
fn a_budget_in_the_config_file_replaces_the_jobs_default_budget() {
    let dir = common::tmp_dir("lstm-config-file", "budget");
    // 40 rows less a tenth held out, batch 32: 8 epochs are 16 steps
    let (m, s) = train_with_config(&dir, "steps = 20\nhidden = 8\nmembers = 1\n", &[]);
    assert_eq!(s["steps"], 20);
    assert!(s["epochs"].is_null(), "{}", s["epochs"]);
    assert!(s["minutes"].is_null(), "{}", s["minutes"]);
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(m.join("training_state.json")).unwrap())
            .unwrap();
    assert_eq!(state["step"], 20, "{state}");
}

//! `lstm train classify --members N` through the real binary: a bad count is a clear error,
//! the help names the flag, a directory of several models classifies and exports (the first
//! model, with a note saying so).

mod common;

use common::{run, Tmp};
use std::path::{Path, PathBuf};

fn tmp(name: &str) -> Tmp {
    common::tmp_dir("lstm-cli-members", name)
}

fn tsv(dir: &Path) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data");
    let full = std::fs::read_to_string(root.join("movie_review_sentiment.tsv")).unwrap();
    let head: String = full.lines().take(201).map(|l| format!("{l}\n")).collect();
    let p = dir.join("reviews.tsv");
    std::fs::write(&p, head).unwrap();
    p
}

#[test]
fn members_zero_is_refused_and_the_help_names_the_flag() {
    let dir = tmp("zero");
    let data = tsv(&dir);
    let out = dir.join("m");
    let o = run(&[
        "train",
        "classify",
        "--data",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--members",
        "0",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        err.contains("members (--members) must be at least 1"),
        "{err}"
    );
    assert!(!out.join("config.json").exists());

    // the default --help states is the library's
    let help = run(&["train", "classify", "--help"]);
    let text = String::from_utf8_lossy(&help.stdout);
    let members =
        lstm::tasks::settings::Settings::defaults(lstm::tasks::modeldir::Task::Classify).members;
    assert!(text.contains("--members"), "{text}");
    assert!(text.contains(&format!("[default: {members}]")), "{text}");
}

#[test]
fn several_members_classify_and_export_the_first_with_a_note() {
    let dir = tmp("export");
    let data = tsv(&dir);
    let out = dir.join("m");
    let o = run(&[
        "train",
        "classify",
        "--data",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--members",
        "2",
        "--hidden",
        "8",
        "--embedding",
        "8",
        "--steps",
        "10",
        "--threads",
        "1",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("2 models from different seeds, 10 steps each"),
        "{err}"
    );
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("steps in "),
        "no summary"
    );
    assert!(out.join("member1.safetensors").is_file());
    assert!(!out.join("member2.safetensors").exists());

    // the models together on the validation rows, as `lstm eval` scores the directory there
    // (the validation split is the last 10%, what `--tail 0.1` scores)
    let stdout = String::from_utf8_lossy(&o.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("the 2 models averaged: validation loss "))
        .unwrap_or_else(|| panic!("{stdout}"));
    let figure = |text: &str, after: &str, until: char| -> f64 {
        let i = text
            .find(after)
            .unwrap_or_else(|| panic!("{after} in {text}"))
            + after.len();
        let rest = &text[i..];
        rest[..rest.find(until).unwrap()].trim().parse().unwrap()
    };
    let o = run(&[
        "eval",
        "--model",
        out.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--tail",
        "0.1",
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let eval: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let (loss, accuracy) = (
        eval["loss"].as_f64().unwrap(),
        100.0 * eval["accuracy"].as_f64().unwrap(),
    );
    assert_eq!(eval["n"], 20, "{eval}");
    assert!(
        (figure(line, "validation loss ", ',') - loss).abs() < 1e-4,
        "{line} / {eval}"
    );
    assert!(
        (figure(line, "accuracy ", '%') - accuracy).abs() < 0.006,
        "{line} / {eval}"
    );

    let o = run(&["classify", "--model", out.to_str().unwrap(), "a fine film"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let pt = dir.join("m.safetensors");
    let o = run(&[
        "export",
        "pytorch",
        "--model",
        out.to_str().unwrap(),
        "--out",
        pt.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("averages the class probabilities of 2 models")
            && err.contains("the first one's weights alone")
            && err.contains("member1.safetensors"),
        "{err}"
    );
    // the first model's weights, as model.safetensors holds them
    let exported =
        lstm::io::checkpoint::TensorFile::from_bytes(&std::fs::read(&pt).unwrap(), "").unwrap();
    let first = lstm::io::checkpoint::TensorFile::from_bytes(
        &std::fs::read(out.join("model.safetensors")).unwrap(),
        "",
    )
    .unwrap();
    let member = lstm::io::checkpoint::TensorFile::from_bytes(
        &std::fs::read(out.join("member1.safetensors")).unwrap(),
        "",
    )
    .unwrap();
    let name = "lstm.weight_hh_l0";
    assert_eq!(exported.f32(name).unwrap(), first.f32(name).unwrap());
    assert_ne!(exported.f32(name).unwrap(), member.f32(name).unwrap());
}

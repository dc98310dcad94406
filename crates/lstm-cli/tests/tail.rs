//! Evaluation hygiene: `lstm train --tail F` never reads the last fraction of its data (neither
//! to train nor to validate), the validation split is carved before it, and `lstm eval` says
//! when the rows it scores are ones the model's training read.

mod common;

use common::{ok, run};

use std::path::{Path, PathBuf};
use std::process::Command;

fn config(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap()
}

fn json(out: &str) -> serde_json::Value {
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// 2,000 characters of `ab` text, then 500 in which `Z` (nowhere else) appears.
fn text_file(dir: &Path) -> PathBuf {
    let mut t = "ab ba abba\n".repeat(200)[..2000].to_string();
    t.push_str(&"aZb ".repeat(125));
    assert_eq!(t.chars().count(), 2500);
    let p = dir.join("t.txt");
    std::fs::write(&p, t).unwrap();
    p
}

const TINY: &[&str] = &[
    "--hidden",
    "8",
    "--layers",
    "1",
    "--seq-len",
    "16",
    "--batch",
    "4",
    "--steps",
    "3",
    "--quiet",
];

/// Trains a [`TINY`] text model on `data` into `m`, with `extra` options.
fn train_tiny_text(data: &Path, m: &Path, extra: &[&str]) {
    let mut args = vec![
        "train",
        "text",
        "--data",
        data.to_str().unwrap(),
        "--out",
        m.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    args.extend_from_slice(TINY);
    ok(&args);
}

#[test]
fn text_tail_is_never_read_and_eval_says_what_training_saw() {
    let dir = common::tmp_dir("lstm-tail", "text");
    let data = text_file(&dir);
    let m = dir.join("m");
    train_tiny_text(&data, &m, &["--tail", "0.2"]);
    // the last 20% (500 characters) hold the only `Z`: not in the vocabulary, so never read
    let cfg = config(&m);
    let vocab = cfg["vocab"].to_string();
    assert!(!vocab.contains('Z'), "{vocab}");
    assert!(vocab.contains('a'));
    // the 2,000 characters before it: 1,800 trained on, the last 200 validated on
    let seen = &cfg["seen"][0];
    assert_eq!(seen["units"], 2500);
    assert_eq!(seen["trained"], serde_json::json!([0, 1800]));
    assert_eq!(seen["validated"], serde_json::json!([1800, 2000]));

    let eval = |tail: Option<&str>| {
        let mut a = vec![
            "eval",
            "--model",
            m.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
            "--json",
        ];
        if let Some(t) = tail {
            a.extend_from_slice(&["--tail", t]);
        }
        json(&ok(&a))
    };
    // the same tail: rows training never read, no note
    assert!(eval(Some("0.2"))["seen_by_training"].is_null());
    // 30%: 250 more characters, 200 of the validation split and 50 trained on
    let s = eval(Some("0.3"))["seen_by_training"].clone();
    assert_eq!(
        s,
        serde_json::json!({"scored": 750, "trained": 50, "validated": 200})
    );
    // the whole file
    let s = eval(None)["seen_by_training"].clone();
    assert_eq!(
        s,
        serde_json::json!({"scored": 2500, "trained": 1800, "validated": 200})
    );
    // the text report says it in words
    let out = ok(&[
        "eval",
        "--model",
        m.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--tail",
        "0.3",
    ]);
    assert!(out.contains("not a held-out figure"), "{out}");
    // another file (the same text with one character changed) is not recognised
    let other = dir.join("other.txt");
    let mut t = std::fs::read_to_string(&data).unwrap();
    t.replace_range(0..1, "b");
    std::fs::write(&other, t).unwrap();
    let out = ok(&[
        "eval",
        "--model",
        m.to_str().unwrap(),
        "--data",
        other.to_str().unwrap(),
        "--json",
    ]);
    assert!(json(&out)["seen_by_training"].is_null());
}

#[test]
fn without_tail_eval_tail_is_the_validation_split() {
    let dir = common::tmp_dir("lstm-tail", "text-val");
    let data = text_file(&dir);
    let m = dir.join("m");
    train_tiny_text(&data, &m, &[]);
    let out = ok(&[
        "eval",
        "--model",
        m.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--tail",
        "0.1",
        "--json",
    ]);
    let s = json(&out)["seen_by_training"].clone();
    assert_eq!(
        s,
        serde_json::json!({"scored": 250, "trained": 0, "validated": 250})
    );
}

#[test]
fn classify_tail_rows_are_never_read() {
    let dir = common::tmp_dir("lstm-tail", "classify");
    let mut tsv = String::from("text\tlabel\n");
    for i in 0..80 {
        let (t, l) = if i % 2 == 0 {
            ("good fine nice", "pos")
        } else {
            ("bad awful poor", "neg")
        };
        tsv.push_str(&format!("{t} row{}\t{l}\n", i % 7));
    }
    // the last 20 rows (25%) hold the only `zebra`s
    for i in 0..20 {
        let l = if i % 2 == 0 { "pos" } else { "neg" };
        tsv.push_str(&format!("zebra zebra good\t{l}\n"));
    }
    let data = dir.join("d.tsv");
    std::fs::write(&data, tsv).unwrap();
    let m = dir.join("m");
    ok(&[
        "train",
        "classify",
        "--data",
        data.to_str().unwrap(),
        "--out",
        m.to_str().unwrap(),
        "--tail",
        "0.2",
        "--hidden",
        "8",
        "--steps",
        "3",
        "--quiet",
    ]);
    let cfg = config(&m);
    assert!(!cfg["vocab"].to_string().contains("zebra"));
    // 100 rows: the last 20 never read; of the 80 before, 72 trained on and 8 validated on
    let seen = &cfg["seen"][0];
    assert_eq!(seen["units"], 100);
    assert_eq!(seen["trained"], serde_json::json!([0, 72]));
    assert_eq!(seen["validated"], serde_json::json!([72, 80]));
    let eval = |tail: &str| {
        json(&ok(&[
            "eval",
            "--model",
            m.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
            "--tail",
            tail,
            "--json",
        ]))["seen_by_training"]
            .clone()
    };
    assert!(eval("0.2").is_null());
    assert_eq!(
        eval("0.25"),
        serde_json::json!({"scored": 25, "trained": 0, "validated": 5})
    );
    // a label the model does not know is named by its row in the file, not in the tail
    let text = std::fs::read_to_string(&data).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    lines[96] = "zebra good\tmaybe".into();
    let other = dir.join("other.tsv");
    std::fs::write(&other, lines.join("\n") + "\n").unwrap();
    for tail in [None, Some("0.1")] {
        let mut args = vec![
            "eval",
            "--model",
            m.to_str().unwrap(),
            "--data",
            other.to_str().unwrap(),
        ];
        args.extend(tail.map(|t| ["--tail", t]).into_iter().flatten());
        let o = run(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            !o.status.success() && err.contains("row 96: label `maybe` is not one the model knows"),
            "{tail:?}: {err}"
        );
    }
}

#[test]
fn forecast_refuses_tail() {
    let dir = common::tmp_dir("lstm-tail", "forecast");
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/airline_passengers.csv");
    let o = run(&[
        "train",
        "forecast",
        "--data",
        data.to_str().unwrap(),
        "--column",
        "passengers",
        "--out",
        dir.join("m").to_str().unwrap(),
        "--tail",
        "0.1",
        "--quiet",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("--holdout"), "{err}");
    assert!(!dir.join("m").exists());
}

#[test]
fn tail_out_of_range_is_refused() {
    let dir = common::tmp_dir("lstm-tail", "range");
    let data = text_file(&dir);
    for t in ["0.95", "-0.1"] {
        let o = run(&[
            "train",
            "text",
            "--data",
            data.to_str().unwrap(),
            "--out",
            dir.join("m").to_str().unwrap(),
            "--tail",
            t,
            "--quiet",
        ]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success());
        assert!(err.contains("tail (--tail) must be in [0, 0.9)"), "{err}");
        assert!(!err.contains("panicked"));
    }
}

#[test]
fn a_closed_pipe_is_not_a_panic() {
    use std::process::Stdio;
    let dir = common::tmp_dir("lstm-tail", "pipe");
    let data = text_file(&dir);
    let m = dir.join("m");
    train_tiny_text(&data, &m, &[]);
    // `lstm eval ... | head -0`: the reader is gone before the report is written
    let mut child = Command::new(env!("CARGO_BIN_EXE_lstm"))
        .args([
            "eval",
            "--model",
            m.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn classify_eval_knows_training_texts_in_other_files() {
    let dir = common::tmp_dir("lstm-tail", "classify-copies");
    // 100 distinct rows: 90 trained on, the last 10 the validation split
    let rows: Vec<String> = (0..100)
        .map(|i| {
            let (t, l) = if i % 2 == 0 {
                ("good", "pos")
            } else {
                ("bad", "neg")
            };
            format!("{t} film number {i}\t{l}")
        })
        .collect();
    let file = |name: &str, rows: &[String]| {
        let p = dir.join(name);
        std::fs::write(&p, format!("text\tlabel\n{}\n", rows.join("\n"))).unwrap();
        p
    };
    let data = file("d.tsv", &rows);
    let m = dir.join("m");
    let train = |data: &Path, m: &Path, extra: &[&str]| {
        let mut args = vec![
            "train",
            "classify",
            "--data",
            data.to_str().unwrap(),
            "--out",
            m.to_str().unwrap(),
            "--hidden",
            "8",
            "--steps",
            "3",
            "--members",
            "1",
        ];
        args.extend_from_slice(extra);
        let o = run(&args);
        assert!(o.status.success());
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
    };
    train(&data, &m, &[]);
    let eval = |p: &Path| {
        json(&ok(&[
            "eval",
            "--model",
            m.to_str().unwrap(),
            "--data",
            p.to_str().unwrap(),
            "--json",
        ]))["seen_by_training"]
            .clone()
    };
    // some training rows copied out (columns reordered, a new row among them)
    let mut some: Vec<String> = rows[10..30]
        .iter()
        .map(|r| {
            let (t, l) = r.split_once('\t').unwrap();
            format!("{l}\t{t}")
        })
        .collect();
    some.push("neg\ta film never seen".into());
    let p = dir.join("some.tsv");
    std::fs::write(&p, format!("label\ttext\n{}\n", some.join("\n"))).unwrap();
    assert_eq!(
        eval(&p),
        serde_json::json!({"scored": 21, "trained": 20, "validated": 0, "by_text": true})
    );
    // the same rows under other column names: named on the command line
    let renamed = dir.join("renamed.tsv");
    std::fs::write(
        &renamed,
        std::fs::read_to_string(&p)
            .unwrap()
            .replacen("label\ttext", "sentiment\treview", 1),
    )
    .unwrap();
    let o = run(&[
        "eval",
        "--model",
        m.to_str().unwrap(),
        "--data",
        renamed.to_str().unwrap(),
    ]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("no column `text`"));
    let v = json(&ok(&[
        "eval",
        "--model",
        m.to_str().unwrap(),
        "--data",
        renamed.to_str().unwrap(),
        "--text-column",
        "review",
        "--label-column",
        "sentiment",
        "--json",
    ]));
    assert_eq!(v["n"], 21);
    assert_eq!(v["seen_by_training"]["trained"], 20);
    let out = ok(&[
        "classify",
        "--model",
        m.to_str().unwrap(),
        "--data",
        renamed.to_str().unwrap(),
        "--text-column",
        "review",
    ]);
    assert_eq!(out.lines().count(), 21);
    // the validation rows copied out
    assert_eq!(
        eval(&file("val.tsv", &rows[90..])),
        serde_json::json!({"scored": 10, "trained": 0, "validated": 10, "by_text": true})
    );
    // rows it never read: no note
    let new: Vec<String> = (0..10).map(|i| format!("another film {i}\tpos")).collect();
    assert!(eval(&file("new.tsv", &new)).is_null());
    let o = run(&[
        "eval",
        "--model",
        m.to_str().unwrap(),
        "--data",
        p.to_str().unwrap(),
    ]);
    let said =
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    assert!(
        said.contains("note: 20 of these 21 rows repeat a text the model's training read")
            && said.contains("this is not a held-out figure"),
        "{said}"
    );
    // validating on the training file is named
    let out = train(&data, &dir.join("m2"), &["--val", data.to_str().unwrap()]);
    assert!(
        out.contains("warning: 100 of the 100 validation rows repeat a text of the training rows"),
        "{out}"
    );
}

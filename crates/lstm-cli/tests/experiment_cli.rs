//! `lstm experiment ...` end to end on the real binary: tiny runs, the JSON lines, the files
//! written, and clear messages for bad input.

mod common;

use common::run;

use common::Tmp;
use std::path::Path;

fn tmp(name: &str) -> Tmp {
    common::tmp_dir("lstm-exp-test", name)
}

fn ok(args: &[&str]) -> String {
    let o = run(args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "lstm {args:?} failed: {err}");
    String::from_utf8(o.stdout).unwrap()
}

fn fails(args: &[&str], needle: &str) {
    let o = run(args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "lstm {args:?} should fail");
    assert!(!err.contains("panicked"), "panic: {err}");
    assert!(err.contains(needle), "stderr lacks {needle:?}: {err}");
}

fn json_lines(out: &str) -> Vec<serde_json::Value> {
    out.lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

fn exists(dir: &Path, name: &str) {
    let p = dir.join(name);
    assert!(
        std::fs::metadata(&p)
            .map(|m| m.len() > 100)
            .unwrap_or(false),
        "{} missing",
        p.display()
    );
}

#[test]
fn adding_json_and_files() {
    let d = tmp("adding");
    let out = d.to_str().unwrap();
    let args = [
        "experiment",
        "adding",
        "--cell",
        "lstm,rnn",
        "--length",
        "12",
        "--steps",
        "20",
        "--eval-every",
        "10",
        "--hidden",
        "8",
        "--test-size",
        "50",
        "--threads",
        "1",
        "--json",
        "--quiet",
        "--out",
        out,
    ];
    let runs = json_lines(&ok(&args));
    assert_eq!(runs.len(), 2);
    for r in &runs {
        for key in ["test_mse", "baseline_mse", "steps", "seconds"] {
            assert!(r[key].is_number(), "{key} missing in {r}");
        }
        assert_eq!(r["steps"], 20);
    }
    assert_eq!(runs[0]["config"]["arch"], "lstm");
    assert_eq!(runs[1]["config"]["arch"], "rnn");
    exists(&d, "adding.md");
    exists(&d, "adding.svg");
    // same seed, same numbers
    let again = json_lines(&ok(&args));
    assert_eq!(runs[0]["test_mse"], again[0]["test_mse"]);
    // the table without --json
    let table = ok(&args[..args.len() - 4]
        .iter()
        .chain(&["--quiet", "--png", "--out", out])
        .copied()
        .collect::<Vec<_>>());
    assert!(table.contains("| lstm | 12 |"), "{table}");
    exists(&d, "adding.png");
}

#[test]
fn gradients_order_variants_run() {
    let d = tmp("others");
    let out = d.to_str().unwrap();
    let g = json_lines(&ok(&[
        "experiment",
        "gradients",
        "--cell",
        "lstm,rnn",
        "--length",
        "30",
        "--steps",
        "5",
        "--hidden",
        "8",
        "--probe-batch",
        "4",
        "--batch",
        "4",
        "--threads",
        "1",
        "--json",
        "--quiet",
        "--out",
        out,
    ]));
    assert_eq!(g.len(), 2);
    assert_eq!(g[0]["untrained"].as_array().unwrap().len(), 30);
    assert_eq!(g[0]["trained"].as_array().unwrap().len(), 30);
    exists(&d, "gradients.svg");
    let o = json_lines(&ok(&[
        "experiment",
        "order",
        "--cell",
        "gru",
        "--length",
        "10",
        "--steps",
        "10",
        "--eval-every",
        "5",
        "--hidden",
        "8",
        "--test-size",
        "20",
        "--threads",
        "1",
        "--json",
        "--quiet",
        "--out",
        out,
    ]));
    assert_eq!(o[0]["chance"], 0.25);
    exists(&d, "order.md");
    let text = d.join("t.txt");
    let s = "The quick brown fox jumps over the lazy dog. ".repeat(60);
    std::fs::write(&text, s).unwrap();
    let table = ok(&[
        "experiment",
        "variants",
        "--data",
        text.to_str().unwrap(),
        "--variants",
        "standard,gru",
        "--seeds",
        "1",
        "--steps",
        "5",
        "--eval-every",
        "5",
        "--hidden",
        "8",
        "--seq-len",
        "16",
        "--batch",
        "4",
        "--threads",
        "1",
        "--quiet",
        "--out",
        out,
    ]);
    assert!(table.contains("| gru |"), "{table}");
    exists(&d, "variants.svg");
}

#[test]
fn bad_experiment_input_gets_a_clear_message() {
    let d = tmp("bad");
    let out = d.to_str().unwrap();
    fails(
        &["experiment", "adding", "--length", "1", "--out", out],
        "sequence length must be at least 2",
    );
    fails(
        &[
            "experiment",
            "variants",
            "--variants",
            "lstm9",
            "--out",
            out,
        ],
        "unknown variant `lstm9`",
    );
    fails(
        &["experiment", "order", "--length", "5", "--out", out],
        "at least 10",
    );
    fails(
        &[
            "experiment",
            "variants",
            "--data",
            "/nonexistent/x.txt",
            "--out",
            out,
        ],
        "cannot read the text",
    ); // sizes past memory: one message, no panic or abort, and no --out directory left
    let new = d.join("new");
    let n = new.to_str().unwrap();
    let max = u64::MAX.to_string();
    for args in [
        vec!["adding", "--length", &max],
        vec!["adding", "--batch", &max],
        vec!["adding", "--batch", "1000000000"],
        vec!["order", "--test-size", &max],
        vec!["gradients", "--probe-batch", &max],
    ] {
        let mut a = vec!["experiment"];
        a.extend(args);
        a.extend(["--hidden", "4", "--steps", "1", "--out", n]);
        fails(&a, "GB are available");
        assert!(!new.exists(), "{a:?} left {n}");
    }
    let text = d.join("t.txt");
    std::fs::write(
        &text,
        "to be or not to be, that is the question. ".repeat(20),
    )
    .unwrap();
    fails(
        &[
            "experiment",
            "variants",
            "--data",
            text.to_str().unwrap(),
            "--variants",
            "standard",
            "--seeds",
            "1",
            "--steps",
            "1",
            "--hidden",
            "4",
            "--seq-len",
            &max,
            "--out",
            n,
        ],
        "lower --seq-len",
    );
    assert!(!new.exists());
    // a name or seed twice (counted as one architecture's two seeds before)
    let t = text.to_str().unwrap();
    let tiny = [
        "--steps",
        "1",
        "--eval-every",
        "1",
        "--hidden",
        "4",
        "--out",
        n,
    ];
    for (extra, needle) in [
        (
            ["--variants", "standard,standard", "--seeds", "1"],
            "named twice",
        ),
        (
            ["--variants", "standard,gru", "--seeds", "1,1"],
            "seed 1 is named twice",
        ),
    ] {
        let mut a = vec!["experiment", "variants", "--data", t];
        a.extend(extra);
        a.extend(tiny);
        fails(&a, needle);
        assert!(!new.exists());
    }
    // a cell or seed twice in the other experiments
    fails(
        &[
            "experiment",
            "adding",
            "--cell",
            "lstm,lstm",
            "--steps",
            "1",
            "--out",
            n,
        ],
        "--cell names lstm twice",
    );
    fails(
        &[
            "experiment",
            "order",
            "--seed",
            "1,1",
            "--steps",
            "1",
            "--out",
            n,
        ],
        "--seed names 1 twice",
    );
    assert!(!new.exists());
    // an --out that cannot be created is refused before the runs, and leaves nothing
    let file = d.join("a-file");
    std::fs::write(&file, "x").unwrap();
    let under = file.join("sub");
    fails(
        &[
            "experiment",
            "adding",
            "--steps",
            "1",
            "--hidden",
            "4",
            "--out",
            under.to_str().unwrap(),
        ],
        "cannot create the output directory",
    );
    let deep = d.join("x/y/z");
    ok(&[
        "experiment",
        "adding",
        "--steps",
        "1",
        "--hidden",
        "4",
        "--length",
        "10",
        "--quiet",
        "--out",
        deep.to_str().unwrap(),
    ]);
    assert!(deep.join("adding.md").exists());
    // an LSTM variant for another cell (a plain GRU ran before)
    fails(
        &[
            "experiment",
            "gradients",
            "--cell",
            "lstm,gru",
            "--variant",
            "peephole",
            "--out",
            n,
        ],
        "a gru cell has none",
    );
    assert!(!new.exists());
    // a table that cannot be written is refused before the runs, and an existing --out keeps
    // no partial plot
    std::fs::create_dir_all(new.join("adding.md")).unwrap();
    fails(
        &[
            "experiment",
            "adding",
            "--steps",
            "1",
            "--hidden",
            "4",
            "--length",
            "10",
            "--out",
            n,
        ],
        "adding.md exists and is not a file",
    );
    let left: Vec<_> = std::fs::read_dir(&new)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(left, ["adding.md"]);
}

//! `lstm explain` and `lstm explore` on the real binary, without a browser: the files they
//! write, and clear messages (never a panic) for what a user can get wrong.

mod common;

use common::{run, Tmp};
use std::path::Path;

fn tmp(name: &str) -> Tmp {
    common::tmp_dir("lstm-explain-cli", name)
}

fn fails(args: &[&str], needle: &str) {
    let o = run(args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "lstm {args:?} should fail");
    assert!(!err.contains("panicked"), "panic: {err}");
    assert!(
        err.contains(needle),
        "stderr of {args:?} lacks {needle:?}: {err}"
    );
}

fn train(dir: &Path, cell: &str) -> String {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/tinyshakespeare.txt"),
    )
    .unwrap();
    let data = dir.join("small.txt");
    std::fs::write(&data, &text[..10_000]).unwrap();
    let out = dir.join(cell);
    let o = run(&[
        "train",
        "text",
        "--data",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--cell",
        cell,
        "--hidden",
        "8",
        "--layers",
        "1",
        "--seq-len",
        "16",
        "--batch",
        "4",
        "--steps",
        "5",
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    out.to_str().unwrap().to_string()
}

#[test]
fn explain_and_explore_write_pages_and_refuse_bad_input() {
    let dir = tmp("all");
    let lstm_model = train(&dir, "lstm");
    let page = dir.join("e.html");
    let p = page.to_str().unwrap();
    let text_file = dir.join("t.txt");
    std::fs::write(
        &text_file,
        "To be, or not to be: that is the question.\n".repeat(10),
    )
    .unwrap();
    let o = run(&[
        "explain",
        "--model",
        &lstm_model,
        "--text",
        text_file.to_str().unwrap(),
        "--max-tokens",
        "50",
        "--out",
        p,
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("explaining the first 50"), "{err}");
    let html = std::fs::read_to_string(&page).unwrap();
    let data = lstm::pages::html::embedded_json(&html, "explain-data").unwrap();
    assert_eq!(data["trace"]["tokens"].as_array().unwrap().len(), 50);
    assert!(
        html.contains("<h2>Training</h2>"),
        "the model's loss.svg is shown"
    );

    let ex = dir.join("x.html");
    let o = run(&[
        "explore",
        "--model",
        &lstm_model,
        "--unit",
        "7",
        "--out",
        ex.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let data =
        lstm::pages::html::embedded_json(&std::fs::read_to_string(&ex).unwrap(), "explore-data")
            .unwrap();
    assert!(data["unit"]["source"].as_str().unwrap().contains("unit 7"));

    fails(&["explain", "--model", &lstm_model, "--out", p], "--text");
    fails(
        &["explain", "--model", &lstm_model, "--prime", "", "--out", p],
        "empty",
    );
    fails(
        &[
            "explain",
            "--model",
            &lstm_model,
            "--text",
            "/nonexistent/x.txt",
            "--out",
            p,
        ],
        "cannot read the text file",
    );
    fails(
        &[
            "explain",
            "--model",
            "/nonexistent/model",
            "--prime",
            "a",
            "--out",
            p,
        ],
        "cannot load the model",
    );
    fails(
        &["explore", "--model", &lstm_model, "--unit", "8", "--out", p],
        "unit 8 does not exist",
    );
    fails(
        &[
            "explore",
            "--model",
            &lstm_model,
            "--layer",
            "1",
            "--out",
            p,
        ],
        "layer 1 does not exist",
    );
    fails(&["explore", "--unit", "3", "--out", p], "--model");
    // a page in a folder that does not exist is refused before the work (after, before), and
    // one under a file is named as such (it was "the folder ... does not exist")
    let plain = dir.join("plain.txt");
    std::fs::write(&plain, "not a folder").unwrap();
    for (out, says) in [
        (
            dir.join("no/such/folder/e.html"),
            "does not exist; create it first",
        ),
        (plain.join("e.html"), "is a file, not a folder"),
    ] {
        fails(
            &[
                "explain",
                "--model",
                &lstm_model,
                "--prime",
                "abc",
                "--out",
                out.to_str().unwrap(),
            ],
            says,
        );
    }
    // a text that is not UTF-8 is named with the offset of its first bad byte
    let latin1 = dir.join("latin1.txt");
    std::fs::write(&latin1, b"caf\xe9 au lait").unwrap();
    fails(
        &[
            "explain",
            "--model",
            &lstm_model,
            "--text",
            latin1.to_str().unwrap(),
            "--out",
            p,
        ],
        "invalid byte at offset 3",
    );
    let gru = train(&dir, "gru");
    fails(
        &["explain", "--model", &gru, "--prime", "abc", "--out", p],
        "only LSTM models",
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn report_shows_the_loss_curve_and_given_plots() {
    let dir = tmp("report");
    let model = train(&dir, "lstm");
    let png = dir.join("forecast.png");
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.extend_from_slice(b"not really an image, but the page only embeds it");
    std::fs::write(&png, &bytes).unwrap();
    let page = dir.join("r.html");
    let o = run(&[
        "report",
        "--model",
        &model,
        "--plot",
        png.to_str().unwrap(),
        "--out",
        page.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(
        html.contains("<h2>Loss</h2>") && html.contains("data:image/svg+xml;base64,"),
        "loss.svg shown"
    );
    assert!(html.contains(&format!(
        "data:image/png;base64,{}",
        lstm::pages::html::base64(&bytes)
    )));
    assert!(html.contains("steps trained"));
    let txt = dir.join("x.txt");
    std::fs::write(&txt, "hello").unwrap();
    fails(
        &[
            "report",
            "--model",
            &model,
            "--plot",
            txt.to_str().unwrap(),
            "--out",
            page.to_str().unwrap(),
        ],
        "neither a PNG nor an SVG",
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn pages_run_no_script_from_a_model_directory_and_destroy_nothing() {
    let dir = tmp("unsafe");
    let model = train(&dir, "lstm");
    let m = Path::new(&model);
    // a model directory anyone may have edited: its loss.svg carries script
    std::fs::write(
        m.join("loss.svg"),
        "junk</div><svg onload=\"alert(5)\"><script>alert(6)</script></svg>",
    )
    .unwrap();
    let plot = dir.join("p.svg");
    std::fs::write(&plot, "<svg><script>alert(7)</script></svg>").unwrap();
    let page = dir.join("r.html");
    let p = page.to_str().unwrap();
    let ok = |args: &[&str]| {
        let o = run(args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let html = std::fs::read_to_string(&page).unwrap();
        assert!(
            !html.contains("alert(") && html.contains("data:image/svg+xml;base64,"),
            "script from an SVG in the page of {args:?}"
        );
    };
    ok(&[
        "report",
        "--model",
        &model,
        "--plot",
        plot.to_str().unwrap(),
        "--out",
        p,
    ]);
    ok(&["explain", "--model", &model, "--prime", "abc", "--out", p]);
    // an --out that would destroy an input, the model or a file that is not a page
    let config = m.join("config.json");
    let before = std::fs::read(&config).unwrap();
    for cmd in [
        vec!["report", "--model", &model, "--out"],
        vec!["explain", "--model", &model, "--prime", "abc", "--out"],
        vec!["explore", "--model", &model, "--out"],
    ] {
        let mut a = cmd.clone();
        a.push(config.to_str().unwrap());
        fails(&a, "inside the model directory");
    }
    assert_eq!(std::fs::read(&config).unwrap(), before);
    let q = plot.to_str().unwrap();
    fails(
        &["report", "--model", &model, "--plot", q, "--out", q],
        "is the input file",
    );
    let text = dir.join("t.txt");
    std::fs::write(&text, "hello there").unwrap();
    let t = text.to_str().unwrap();
    fails(
        &["explain", "--model", &model, "--text", t, "--out", t],
        "is the input file",
    );
    fails(&["explore", "--out", t], "is not an .html page");
    assert_eq!(std::fs::read_to_string(&text).unwrap(), "hello there");
    let _ = std::fs::remove_dir_all(&dir);
}

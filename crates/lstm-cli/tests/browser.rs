//! The pages in a real browser: `lstm explain` and `lstm explore` write pages that headless
//! Chromium opens; the test sets sliders (and the explain page's unit picker) through the
//! URL fragment, which the pages read through the same code path as the controls' input
//! events, dumps the DOM after the scripts ran and compares the numbers the page computed or
//! shows with the library's. It also takes a screenshot of each page.
//!
//! `lstm report`'s page of training plots is opened and photographed too.
//!
//! Needs a `chromium` (or `chromium-browser`, `google-chrome`) binary; `.ci/run` installs
//! Debian's `chromium` when it is missing. Without one these tests print why and pass.

mod common;

use common::Tmp;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lstm::explain::{single_unit, trace, unit_weights};
use lstm::tasks::modeldir;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_lstm"))
}

fn tmp(name: &str) -> Tmp {
    common::tmp_dir("lstm-browser", name)
}

fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    for name in [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ] {
        for dir in std::env::split_paths(&path) {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// Runs headless Chromium with `args` and a fresh profile, killing it after 60 s.
fn run_chromium(exe: &Path, profile: &Path, args: &[String]) -> String {
    let mut child = Command::new(exe)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--hide-scrollbars",
            "--virtual-time-budget=3000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium starts");
    let start = Instant::now();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut s).ok();
        s
    });
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("chromium did not finish within 60 s: {args:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    reader.join().unwrap()
}

fn url(page: &Path, fragment: &str) -> String {
    format!(
        "file://{}#{fragment}",
        page.canonicalize().unwrap().display()
    )
}

/// `data-value` of the element with `id` in a dumped DOM.
fn data_value(dom: &str, id: &str) -> f64 {
    let at = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no element `{id}` in the page"));
    let rest = &dom[at..dom[at..].find('>').map(|e| at + e).unwrap()];
    let v = rest
        .find("data-value=\"")
        .unwrap_or_else(|| panic!("element `{id}` has no data-value"));
    let s = &rest[v + 12..];
    s[..s.find('"').unwrap()]
        .parse()
        .unwrap_or_else(|e| panic!("data-value of `{id}`: {e}"))
}

fn screenshot(exe: &Path, profile: &Path, page_url: &str, png: &Path) {
    run_chromium(
        exe,
        profile,
        &[
            format!("--screenshot={}", png.display()),
            "--window-size=1280,1000".into(),
            page_url.to_string(),
        ],
    );
    let bytes = std::fs::read(png).expect("chromium wrote the screenshot");
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    assert!(
        bytes.len() > 20_000,
        "the screenshot is suspiciously small ({} bytes)",
        bytes.len()
    );
}

fn tiny_model(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/tinyshakespeare.txt"),
    )
    .unwrap();
    let data = dir.join("small.txt");
    std::fs::write(&data, &text[..20_000]).unwrap();
    let out = dir.join("m");
    let o = bin()
        .args([
            "train",
            "text",
            "--data",
            data.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .args([
            "--hidden",
            "16",
            "--layers",
            "2",
            "--seq-len",
            "24",
            "--batch",
            "8",
            "--steps",
            "30",
            "--quiet",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    out
}

#[test]
fn pages_in_headless_chromium() {
    let Some(exe) = chromium() else {
        println!("SKIPPED pages_in_headless_chromium: no chromium binary on PATH (install Debian's `chromium`; .ci/run does)");
        return;
    };
    let dir = tmp("pages");
    let profile = dir.join("profile");
    let model = tiny_model(&dir);
    let loaded = modeldir::load(&model).unwrap();
    let vocab = loaded.meta.vocab.clone().unwrap();

    // explore, a trained unit: move the sliders and pick a token, read what the page computed
    let explore = dir.join("explore.html");
    let o = bin()
        .args([
            "explore",
            "--model",
            model.to_str().unwrap(),
            "--layer",
            "0",
            "--unit",
            "3",
        ])
        .args(["--out", explore.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let unit = unit_weights(&loaded.model, Some(&vocab), 0, 3).unwrap();
    let tok = vocab.id("e").unwrap() as usize;
    for fragment in [
        format!("z=0.7&c=-1.3&wf=2.5&tok={tok}"),
        "z=-2.2&c=2.9&wi=-4&bo=1.5&bg=-0.3".to_string(),
    ] {
        let dom = run_chromium(
            &exe,
            &profile,
            &["--dump-dom".into(), url(&explore, &fragment)],
        );
        let given: HashMap<&str, f64> = fragment
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .filter(|(k, _)| *k != "tok")
            .map(|(k, v)| (k, v.parse().unwrap()))
            .collect();
        let read = |k: &str| data_value(&dom, &format!("v-{k}"));
        for (k, v) in &given {
            assert!(
                (read(k) - v).abs() < 1e-9,
                "slider {k}: page uses {}, asked {v}",
                read(k)
            );
        }
        let (mut w, mut b) = ([0.0f32; 4], [0.0f32; 4]);
        for (k, g) in ["i", "f", "g", "o"].iter().enumerate() {
            w[k] = read(&format!("w{g}")) as f32;
            b[k] = read(&format!("b{g}")) as f32;
            // the sliders start at the trained unit's weights (plus the token's input)
            if !given.contains_key(format!("w{g}").as_str()) {
                assert!((w[k] - unit.w[k]).abs() < 1e-6, "w_{g}");
            }
            if !given.contains_key(format!("b{g}").as_str()) {
                let extra = if fragment.contains("tok=") {
                    unit.token_input[tok][k]
                } else {
                    0.0
                };
                assert!((b[k] - (unit.b[k] + extra)).abs() < 1e-5, "b_{g}");
            }
        }
        let lib = single_unit(w, b, false, read("z") as f32, read("c") as f32);
        for (name, want) in [
            ("i", lib.i),
            ("f", lib.f),
            ("g", lib.g),
            ("o", lib.o),
            ("c", lib.c),
            ("h", lib.h),
        ] {
            let got = data_value(&dom, &format!("out-{name}"));
            assert!(
                (got - want as f64).abs() < 1e-5,
                "{fragment}: page computed {name} = {got}, library {want}"
            );
        }
        assert!(
            dom.contains("id=\"row-4\""),
            "the forget/learn table is filled"
        );
    }
    screenshot(
        &exe,
        &profile,
        &url(&explore, &format!("z=0.7&c=-1.3&tok={tok}")),
        &dir.join("explore.png"),
    );

    // the made-up unit of the tutorials
    let plain = dir.join("plain.html");
    assert!(bin()
        .args(["explore", "--out", plain.to_str().unwrap()])
        .status()
        .unwrap()
        .success());
    let dom = run_chromium(
        &exe,
        &profile,
        &["--dump-dom".into(), url(&plain, "z=1.5&c=0.25")],
    );
    let lib = single_unit([1.0; 4], [0.0, 1.0, 0.0, 0.0], false, 1.5, 0.25);
    assert!((data_value(&dom, "out-h") - lib.h as f64).abs() < 1e-5);

    // explain: pick a layer, unit and gate through the fragment; the coloured spans carry the
    // library's values
    let text =
        "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n";
    let page = dir.join("explain.html");
    let o = bin()
        .args([
            "explain",
            "--model",
            model.to_str().unwrap(),
            "--prime",
            text,
        ])
        .args(["--out", page.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let tr = trace(&loaded.model, &vocab, text).unwrap();
    let h = tr.hidden;
    for (layer, unit, q) in [(1usize, 5usize, "f"), (0, 11, "c")] {
        let dom = run_chromium(
            &exe,
            &profile,
            &[
                "--dump-dom".into(),
                url(&page, &format!("layer={layer}&unit={unit}&q={q}")),
            ],
        );
        assert!(
            dom.contains(&format!(">layer {layer}, unit {unit}, ")),
            "the picker shows the unit"
        );
        let quantity = lstm::explain::Quantity::parse(q).unwrap();
        let values = tr.layers[layer].get(quantity);
        for t in 0..tr.tokens.len() {
            let shown = data_value(&dom, &format!("tok-{t}"));
            let lib = values[t * h + unit] as f64;
            assert!(
                (shown - lib).abs() <= 5.1e-5,
                "position {t}: page {shown}, library {lib}"
            );
        }
    }
    screenshot(
        &exe,
        &profile,
        &url(&page, "layer=1&unit=5&q=c&tip=20"),
        &dir.join("explain.png"),
    );
    // the training plots in the same style
    let report = dir.join("report.html");
    let o = bin()
        .args([
            "report",
            "--model",
            model.to_str().unwrap(),
            "--out",
            report.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let dom = run_chromium(&exe, &profile, &["--dump-dom".into(), url(&report, "")]);
    assert!(dom.contains("<h2>Loss</h2>") && dom.contains("data:image/svg+xml;base64,"));
    screenshot(&exe, &profile, &url(&report, ""), &dir.join("report.png"));
    if let Ok(keep) = std::env::var("LSTM_KEEP_SCREENSHOTS") {
        for f in ["explore.png", "explain.png", "report.png"] {
            std::fs::copy(dir.join(f), Path::new(&keep).join(f)).unwrap();
        }
    }
}

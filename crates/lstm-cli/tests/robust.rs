//! "Nothing lost, nothing crashes", proved on the real `lstm` binary: every kind of bad input
//! gets one clear message and leaves no file created or changed; training survives Ctrl-C,
//! SIGTERM, SIGKILL at any instant, a full disk and a diverging loss without losing its last
//! checkpoint; and resuming after any of these ends bit-identical to an uninterrupted run.

mod common;

use common::{bin, data, ok, run};

use common::Tmp;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::Duration;

fn tmp(name: &str) -> Tmp {
    common::tmp_dir("lstm-robust", name)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Every file under `dir` with its contents (empty map if `dir` does not exist).
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// Runs `lstm args` and checks the contract for bad input: a non-zero exit, a message on
/// stderr that contains every needle (the file, the line, what to do), no panic, and nothing
/// under `watch` created or changed.
fn rejects(args: &[&str], needles: &[&str], watch: &Path) -> String {
    let before = snapshot(watch);
    let o = run(args);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(!o.status.success(), "lstm {args:?} should fail");
    assert!(!err.contains("panicked"), "panic in {args:?}: {err}");
    assert!(
        err.starts_with("error: "),
        "one error message for {args:?}: {err}"
    );
    for n in needles {
        assert!(err.contains(n), "stderr of {args:?} lacks {n:?}: {err}");
    }
    assert!(
        snapshot(watch) == before,
        "lstm {args:?} created or changed files under {}",
        watch.display()
    );
    err
}

/// Runs `lstm args` under the shell limits `limits` (`ulimit -f 20`, `trap '' XFSZ`...).
fn limited(limits: &str, args: &[&str]) -> Output {
    std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{limits}; exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_lstm"))
        .args(args)
        .output()
        .unwrap()
}

fn small_text(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(data("tinyshakespeare.txt")).unwrap();
    let p = dir.join("small.txt");
    std::fs::write(&p, &text[..20_000]).unwrap();
    p
}

const TINY: &[&str] = &[
    "--hidden",
    "16",
    "--layers",
    "1",
    "--seq-len",
    "16",
    "--batch",
    "4",
    "--threads",
    "2",
    "--seed",
    "3",
    "--dropout",
    "0.1",
];

fn text_args<'a>(txt: &'a Path, out: &'a Path, steps: &'a str) -> Vec<&'a str> {
    let mut v = vec![
        "train",
        "text",
        "--data",
        s(txt),
        "--out",
        s(out),
        "--steps",
        steps,
    ];
    v.extend(TINY);
    v
}

/// The bundled movie reviews' header and first `rows` rows, written to `dir/name`.
fn reviews(dir: &Path, name: &str, rows: usize) -> PathBuf {
    let full = std::fs::read_to_string(data("movie_review_sentiment.tsv")).unwrap();
    let head: String = full
        .lines()
        .take(rows + 1)
        .map(|l| format!("{l}\n"))
        .collect();
    let tsv = dir.join(name);
    std::fs::write(&tsv, head).unwrap();
    tsv
}

fn train_tiny_text(dir: &Path, name: &str, steps: &str) -> PathBuf {
    let txt = small_text(dir);
    let out = dir.join(name);
    let mut a = text_args(&txt, &out, steps);
    a.push("--quiet");
    ok(&a);
    out
}

fn step_of(dir: &Path) -> u64 {
    lstm::tasks::modeldir::load(dir).unwrap().state.step
}

fn weights(dir: &Path) -> Vec<u8> {
    std::fs::read(dir.join("model.safetensors")).unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        if e.path().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

// ------------------------------------------------------------------ bad input: text

#[test]
fn bad_text_files_are_refused_with_the_file_named() {
    let dir = tmp("text");
    let out = dir.join("out");
    let out_s = s(&out).to_string();
    let train = |data: &Path| -> Vec<String> {
        [
            "train",
            "text",
            "--data",
            s(data),
            "--out",
            &out_s,
            "--steps",
            "2",
        ]
        .iter()
        .map(|x| x.to_string())
        .collect()
    };
    let check = |data: &Path, needles: &[&str]| {
        let a = train(data);
        rejects(
            &a.iter().map(|x| x.as_str()).collect::<Vec<_>>(),
            needles,
            &dir,
        );
    };
    check(
        &dir.join("missing.txt"),
        &["missing.txt", "no such file", "check the path"],
    );
    let empty = dir.join("empty.txt");
    std::fs::write(&empty, "").unwrap();
    check(&empty, &["empty.txt", "empty", "give a text file"]);
    let sub = dir.join("sub");
    std::fs::create_dir_all(&sub).unwrap();
    check(&sub, &["sub", "is a directory", "give a text file"]);
    let latin1 = dir.join("latin1.txt");
    std::fs::write(&latin1, b"na\xefve caf\xe9").unwrap();
    check(&latin1, &["latin1.txt", "not UTF-8", "offset 2", "iconv"]);
    let short = dir.join("short.txt");
    std::fs::write(&short, "to be or not to be").unwrap();
    check(
        &short,
        &["short.txt", "one training sequence needs", "--seq-len"],
    );
    // one character: the split that left none for training is said
    let one = dir.join("one.txt");
    std::fs::write(&one, "a").unwrap();
    check(
        &one,
        &["the first 0 for training, the last 1 for validation"],
    );
    // the validation file gets the same checks
    let good = small_text(&dir);
    let a = train(&good);
    let mut a: Vec<&str> = a.iter().map(|x| x.as_str()).collect();
    a.extend(["--val", s(&latin1)]);
    rejects(&a, &["latin1.txt", "offset 2"], &dir);
    assert!(!out.exists());
}

// ------------------------------------------------------------------ bad input: CSV/TSV

#[test]
fn bad_tables_are_refused_with_file_line_and_column() {
    let dir = tmp("tables");
    let out = dir.join("out");
    let write = |name: &str, text: &str| -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let rows: String = (1..=60)
        .map(|i| {
            format!(
                "2000-{:02}-{:02},{}\n",
                (i - 1) / 28 + 1,
                (i - 1) % 28 + 1,
                100 + i
            )
        })
        .collect();
    let good = write("good.csv", &format!("day,sales\n{rows}"));
    let forecast = |csv: &Path, extra: &[&str], needles: &[&str]| {
        let mut a = vec![
            "train",
            "forecast",
            "--forecaster",
            "window",
            "--data",
            s(csv),
            "--column",
            "sales",
            "--date-column",
            "day",
            "--window",
            "8",
            "--out",
            s(&out),
            "--steps",
            "2",
        ];
        a.extend(extra);
        rejects(&a, needles, &dir);
    };
    forecast(
        &good,
        &["--column", "price"],
        &["good.csv", "no column `price`", "`day`, `sales`"],
    );
    let text = write(
        "text.csv",
        "day,sales\n2000-01-01,100\n2000-01-02,ten\n2000-01-03,102\n",
    );
    forecast(&text, &[], &["text.csv", "line 3", "`ten` is not a number"]);
    let empty = write(
        "emptycell.csv",
        "day,sales\n2000-01-01,100\n2000-01-02,\n2000-01-03,102\n",
    );
    forecast(&empty, &[], &["emptycell.csv", "line 3", "empty cell"]);
    let nan = write("nan.csv", "day,sales\n2000-01-01,100\n2000-01-02,NaN\n");
    forecast(
        &nan,
        &[],
        &[
            "nan.csv",
            "line 3",
            "`NaN` is a missing value",
            "takes no missing values",
        ],
    );
    let inf = write(
        "inf.csv",
        "day,sales\n2000-01-01,100\n2000-01-02,101\n2000-01-03,inf\n",
    );
    forecast(
        &inf,
        &[],
        &["inf.csv", "line 4", "not a finite 32-bit number"],
    );
    let short = write(
        "short.csv",
        "day,sales\n2000-01-01,100\n2000-01-02,101\n2000-01-03,102\n",
    );
    forecast(&short, &[], &["short.csv", "window 8", "Lower --window"]);
    let dup = write(
        "dup.csv",
        "day,sales\n2000-01-01,100\n2000-01-02,101\n2000-01-02,102\n",
    );
    forecast(&dup, &[], &["dup.csv", "line 4", "appears twice"]);
    let unsorted = write(
        "unsorted.csv",
        "day,sales\n2000-01-02,100\n2000-01-01,101\n2000-01-03,102\n",
    );
    forecast(
        &unsorted,
        &[],
        &["unsorted.csv", "line 3", "sort the file by date"],
    );
    let ragged = write(
        "ragged.csv",
        "day,sales\n2000-01-01,100\n2000-01-02,101,7\n2000-01-03,102\n",
    );
    forecast(&ragged, &[], &["ragged.csv", "line 3"]);
    let blank = write("blank.csv", "");
    forecast(&blank, &[], &["blank.csv", "empty"]);
    forecast(&dir, &[], &["is a directory"]);

    let classify = |tsv: &Path, needles: &[&str]| {
        rejects(
            &[
                "train",
                "classify",
                "--data",
                s(tsv),
                "--out",
                s(&out),
                "--steps",
                "2",
            ],
            needles,
            &dir,
        );
    };
    let one = write("one.tsv", "label\ttext\npos\tgood\npos\tgreat\npos\tfine\n");
    classify(&one, &["one.tsv", "single class", "at least two"]);
    let nolabel = write("nolabel.tsv", "text\tstars\ngood\t5\n");
    classify(&nolabel, &["nolabel.tsv", "no column `label`"]);
    let ragged = write("ragged.tsv", "label\ttext\npos\tgood\nneg\tbad\textra\n");
    classify(&ragged, &["ragged.tsv", "line 3"]);
    let emptylabel = write("emptylabel.tsv", "label\ttext\npos\tgood\n\tbad\n");
    classify(&emptylabel, &["emptylabel.tsv", "line 3", "empty label"]);
    let latin1 = dir.join("latin1.tsv");
    std::fs::write(&latin1, b"label\ttext\npos\tcaf\xe9\n").unwrap();
    classify(&latin1, &["latin1.tsv", "not UTF-8", "offset 18"]);
    // a class only in the last rows: sorted by label, not a wrong label column
    let sorted: String = (0..40)
        .map(|i| format!("{}\tfilm {i}\n", ["pos", "neg"][i % 2]))
        .chain((0..4).map(|i| format!("meh\tfilm {i}\n")))
        .collect();
    let sorted = write("sorted.tsv", &format!("label\ttext\n{sorted}"));
    classify(
        &sorted,
        &[
            "sorted.tsv row 41",
            "label `meh`",
            "its 4 rows are all in the validation split",
        ],
    );
    assert!(!out.exists());
}

#[test]
fn classifier_training_warns_of_a_one_class_validation_split_and_case_variants() {
    let dir = tmp("clswarn");
    let train = |name: &str, rows: &str| -> String {
        let data = dir.join(name);
        std::fs::write(&data, format!("label\ttext\n{rows}")).unwrap();
        let o = run(&[
            "train",
            "classify",
            "--data",
            s(&data),
            "--out",
            s(&dir.join(format!("m-{name}"))),
            "--hidden",
            "4",
            "--steps",
            "1",
            "--members",
            "1",
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stderr).into_owned() + &String::from_utf8_lossy(&o.stdout)
    };
    // sorted: the last 10% are all `pos`
    let sorted: String = (0..200)
        .map(|i| format!("{}\tfilm {i}\n", if i < 100 { "neg" } else { "pos" }))
        .collect();
    let said = train("sorted.tsv", &sorted);
    assert!(
        said.contains(
            "warning: the validation split (rows 181-200 of the file) holds one class (`pos`)"
        ) && said.contains("the rows are sorted by label"),
        "{said}"
    );
    // shuffled but rare: the last 20 rows hold no `spam`, and sorting is not blamed
    let rare: String = (0..200)
        .map(|i| {
            format!(
                "{}\tmail {i}\n",
                if i % 30 == 7 && i < 180 {
                    "spam"
                } else {
                    "ham"
                }
            )
        })
        .collect();
    let said = train("rare.tsv", &rare);
    assert!(
        said.contains("holds one class (`ham`)")
            && !said.contains("sorted")
            && said.contains("--val-fraction"),
        "{said}"
    );
    // one rare row first is no sorting
    let first: String = (0..200)
        .map(|i| format!("{}\tmail {i}\n", if i == 0 { "spam" } else { "ham" }))
        .collect();
    let said = train("first.tsv", &first);
    assert!(!said.contains("sorted"), "{said}");
    // a small file sorted in blocks: named, though its validation split is short
    let blocks: String = (0..60)
        .map(|i| format!("{}\tfilm {i}\n", ["a", "b", "c"][i / 20]))
        .collect();
    let said = train("blocks.tsv", &blocks);
    assert!(
        said.contains("holds one class (`c`)") && said.contains("sorted by label"),
        "{said}"
    );
    // a small file: a validation split of one row is one class, without a word
    let small: String = (0..15)
        .map(|i| format!("{}\tfilm {i}\n", ["neg", "pos"][i % 2]))
        .collect();
    assert!(!train("small.tsv", &small).contains("holds one class"));
    // mixed: no such warning; `Pos` and `pos` named
    let mixed: String = (0..40)
        .map(|i| format!("{}\tfilm {i}\n", ["neg", "pos", "Pos"][i % 3]))
        .collect();
    let said = train("mixed.tsv", &mixed);
    assert!(!said.contains("holds one class"), "{said}");
    assert!(
        said.contains("warning: the labels `Pos` and `pos` differ only in case"),
        "{said}"
    );
}

// ------------------------------------------------------------------ generation, classification

#[test]
fn generation_and_classification_follow_documented_rules() {
    let dir = tmp("use");
    let m = train_tiny_text(&dir, "m", "3");
    let ms = s(&m);
    // characters the vocabulary never saw are read as the unknown token, with a note
    let o = run(&[
        "generate",
        "--model",
        ms,
        "--prime",
        "Zebra€漢字",
        "--length",
        "20",
    ]);
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("not in the model's vocabulary"), "{err}");
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("Zebra€漢字"));
    // top-k 0 means "no restriction" (documented in --help)
    ok(&["generate", "--model", ms, "--top-k", "0", "--length", "10"]);
    rejects(
        &["generate", "--model", ms, "--prime", ""],
        &["--prime is empty"],
        &dir,
    );
    for t in ["0", "-1", "nan", "1e300", "1e-46"] {
        rejects(
            &["generate", "--model", ms, "--temperature", t],
            &["--temperature must be greater than 0"],
            &dir,
        );
    }

    let tsv = reviews(&dir, "reviews.tsv", 200);
    let c = dir.join("c");
    ok(&[
        "train",
        "classify",
        "--data",
        s(&tsv),
        "--out",
        s(&c),
        "--hidden",
        "8",
        "--embedding",
        "8",
        "--steps",
        "3",
        "--quiet",
    ]);
    // unknown words and an empty text are the unknown token: a label, not a crash
    let res = ok(&["classify", "--model", s(&c), "qwxzzy blorptastic", ""]);
    assert_eq!(res.lines().count(), 2, "{res}");
    rejects(
        &["classify", "--model", s(&c)],
        &["nothing to classify"],
        &dir,
    );
    // an embedding whose vocabulary was swapped for a smaller one
    let c2 = dir.join("c2");
    copy_dir(&c, &c2);
    let p = c2.join("config.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    v["vocab"]["tokens"].as_array_mut().unwrap().truncate(3);
    std::fs::write(&p, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    rejects(
        &["classify", "--model", s(&c2), "good"],
        &[
            "c2/config.json",
            "the vocabulary has 4 tokens",
            "input takes",
        ],
        &dir,
    );
    rejects(
        &["classify", "--model", s(&c), "text", "--data", s(&tsv)],
        &["not both"],
        &dir,
    );
}

// ------------------------------------------------------------------ damaged model directories

/// The header length and the JSON header of a safetensors file.
fn st_header(bytes: &[u8]) -> (usize, serde_json::Value) {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    (n, serde_json::from_slice(&bytes[8..8 + n]).unwrap())
}

fn st_with_header(bytes: &[u8], header: &serde_json::Value) -> Vec<u8> {
    let (n, _) = st_header(bytes);
    let mut h = serde_json::to_vec(header).unwrap();
    while !h.len().is_multiple_of(8) {
        h.push(b' ');
    }
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend(h);
    out.extend(&bytes[8 + n..]);
    out
}

#[test]
fn damaged_model_directories_are_refused_and_left_alone() {
    let dir = tmp("damaged");
    let m = train_tiny_text(&dir, "m", "3");
    let txt = dir.join("small.txt");
    let case = |name: &str, damage: &dyn Fn(&Path), needles: &[&str]| {
        let d = dir.join(name);
        copy_dir(&m, &d);
        damage(&d);
        for cmd in [
            vec!["generate", "--model", s(&d), "--length", "5"],
            vec!["eval", "--model", s(&d), "--data", s(&txt)],
            vec!["train", "--resume", s(&d), "--steps", "5"],
        ] {
            rejects(&cmd, needles, &d);
        }
    };
    let edit_json = |d: &Path, f: &dyn Fn(&mut serde_json::Value)| {
        let p = d.join("config.json");
        let mut v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        f(&mut v);
        std::fs::write(&p, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    };
    rejects(
        &["generate", "--model", s(&dir.join("nowhere"))],
        &["nowhere", "no such model directory"],
        &dir,
    );
    rejects(
        &["generate", "--model", s(&txt)],
        &["small.txt", "not a model directory"],
        &dir,
    );
    case(
        "no-config",
        &|d| std::fs::remove_file(d.join("config.json")).unwrap(),
        &["config.json", "missing"],
    );
    case(
        "header-flip",
        &|d| {
            let p = d.join("model.safetensors");
            let mut b = std::fs::read(&p).unwrap();
            b[12] ^= 0x55; // inside the JSON header
            std::fs::write(&p, b).unwrap();
        },
        &["model.safetensors"],
    );
    case(
        "data-flip",
        &|d| {
            let p = d.join("model.safetensors");
            let mut b = std::fs::read(&p).unwrap();
            let n = b.len();
            b[n - 3] ^= 0x01; // inside a weight
            std::fs::write(&p, b).unwrap();
        },
        &["model.safetensors", "checksum", "corrupted"],
    );
    case(
        "nan-weight",
        &|d| {
            let p = d.join("model.safetensors");
            let mut b = std::fs::read(&p).unwrap();
            let n = b.len();
            b[n - 4..].copy_from_slice(&f32::NAN.to_le_bytes());
            std::fs::write(&p, b).unwrap();
            // without the manifest, whose checksum would name the change first
            std::fs::remove_file(d.join("checkpoint.json")).unwrap();
        },
        &["model.safetensors", "NaN or infinite"],
    );
    case(
        "truncated",
        &|d| {
            let p = d.join("model.safetensors");
            let b = std::fs::read(&p).unwrap();
            std::fs::write(&p, &b[..b.len() - 100]).unwrap();
        },
        &["model.safetensors"],
    );
    case(
        "truncated-optimizer",
        &|d| {
            let p = d.join("optimizer_v.safetensors");
            let b = std::fs::read(&p).unwrap();
            std::fs::write(&p, &b[..b.len() / 2]).unwrap();
        },
        &["optimizer_v.safetensors"],
    );
    case(
        "wrong-shape",
        &|d| {
            let p = d.join("model.safetensors");
            let b = std::fs::read(&p).unwrap();
            let (_, mut h) = st_header(&b);
            // same bytes, another shape
            let shape = h["head.weight"]["shape"].as_array().unwrap().clone();
            let (r, c) = (shape[0].as_u64().unwrap(), shape[1].as_u64().unwrap());
            h["head.weight"]["shape"] = serde_json::json!([c, r]);
            std::fs::write(&p, st_with_header(&b, &h)).unwrap();
            std::fs::remove_file(d.join("checkpoint.json")).unwrap();
        },
        &["model.safetensors", "head.weight", "has shape"],
    );
    case(
        "wrong-dtype",
        &|d| {
            let p = d.join("model.safetensors");
            let b = std::fs::read(&p).unwrap();
            let (_, mut h) = st_header(&b);
            h["head.bias"]["dtype"] = "I32".into();
            std::fs::write(&p, st_with_header(&b, &h)).unwrap();
            std::fs::remove_file(d.join("checkpoint.json")).unwrap();
        },
        &["model.safetensors", "head.bias", "I32"],
    );
    case(
        "newer-version",
        &|d| edit_json(d, &|v| v["format_version"] = 99.into()),
        &["config.json", "newer version", "format 99", "upgrade lstm"],
    );
    case(
        "vocab-mismatch",
        &|d| {
            edit_json(d, &|v| {
                v["vocab"]["tokens"].as_array_mut().unwrap().pop();
            })
        },
        &["config.json", "vocabulary has", "input takes"],
    );
    case(
        "huge-config",
        &|d| edit_json(d, &|v| v["model"]["hidden_size"] = 10_000_000.into()),
        &["config.json", "GB", "would need"],
    );
    case(
        "not-json",
        &|d| std::fs::write(d.join("config.json"), "{ this is not json").unwrap(),
        &["config.json", "not valid JSON"],
    );
    case(
        "hand-edited",
        &|d| edit_json(d, &|v| v["settings"]["seq_len"] = 17.into()),
        &["config.json", "checkpoint.json", "restore it"],
    );
    // a text model given to the forecast and classify commands
    rejects(
        &["forecast", "--model", s(&m), "--data", s(&txt)],
        &[
            "text model",
            "`lstm forecast` needs a forecast model",
            "lstm generate",
        ],
        &m,
    );
    rejects(
        &["classify", "--model", s(&m), "hello"],
        &["text model", "lstm generate"],
        &m,
    );
    rejects(
        &["train", "forecast", "--resume", s(&m), "--steps", "9"],
        &["holds a text model", "lstm train text --resume"],
        &m,
    );
}

/// A classifier's outputs stay one line per text and bounded in size: labels with tabs or line
/// breaks are escaped, a model of many classes reports its most frequent confusions rather
/// than a matrix that grows with the square of the classes; a column in two roles, and options
/// of another task, are refused; a vocabulary left empty is said.
#[test]
fn classifier_reports_stay_readable_and_bounded() {
    let dir = tmp("clsreports");
    let train = |data: &Path, out: &Path| -> String {
        let o = run(&[
            "train",
            "classify",
            "--data",
            s(data),
            "--out",
            s(out),
            "--hidden",
            "4",
            "--embedding",
            "4",
            "--steps",
            "1",
            "--members",
            "1",
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stderr).into_owned() + &String::from_utf8_lossy(&o.stdout)
    };
    // a quoted label holding a tab and a line break
    let csv = dir.join("odd.csv");
    let rows: String = (0..20)
        .map(|i| {
            format!(
                "\"good film {i}\",\"{}\"\n",
                if i % 5 == 0 { "neg" } else { "pos\titive\nyes" }
            )
        })
        .collect();
    std::fs::write(&csv, format!("text,label\n{rows}")).unwrap();
    let m = dir.join("m");
    // trained until it predicts the majority label, the odd one
    ok(&[
        "train",
        "classify",
        "--data",
        s(&csv),
        "--out",
        s(&m),
        "--hidden",
        "4",
        "--embedding",
        "4",
        "--steps",
        "30",
        "--lr",
        "0.05",
        "--members",
        "1",
        "--quiet",
    ]);
    let out = ok(&["classify", "--model", s(&m), "good film", "bad film"]);
    assert_eq!(out.lines().count(), 2, "{out}");
    for line in out.lines() {
        assert!(line.starts_with("pos\\titive\\nyes\t"), "{line}");
        assert_eq!(line.split('\t').count(), 3, "{line}");
    }
    let report = ok(&["eval", "--model", s(&m), "--data", s(&csv)]);
    assert!(report.contains("pos\\titive\\nyes"), "{report}");
    assert!(!report.lines().any(|l| l.starts_with("yes")), "{report}");
    // 150 classes: the confusions, not a 150 × 150 matrix
    let many = dir.join("many.tsv");
    let rows: String = (0..300)
        .map(|i| format!("w{} o\tc{}\n", i % 7, i % 150))
        .collect();
    std::fs::write(&many, format!("text\tlabel\n{rows}")).unwrap();
    let mm = dir.join("mm");
    train(&many, &mm);
    let report = ok(&["eval", "--model", s(&mm), "--data", s(&many)]);
    assert!(
        report.contains("150 classes: the most frequent confusions"),
        "{report}"
    );
    assert!(report.lines().count() < 40, "{report}");
    let json: serde_json::Value = serde_json::from_str(&ok(&[
        "eval",
        "--model",
        s(&mm),
        "--data",
        s(&many),
        "--json",
    ]))
    .unwrap();
    assert!(json["confusion"].is_null());
    let top = json["top_confusions"].as_array().unwrap();
    assert!(!top.is_empty() && top.len() <= 20, "{top:?}");
    assert!(top[0]["count"].as_u64().unwrap() >= top[top.len() - 1]["count"].as_u64().unwrap());
    rejects(
        &[
            "eval",
            "--model",
            s(&mm),
            "--data",
            s(&many),
            "--windows",
            "3",
        ],
        &["--windows does not apply to a classify model"],
        &mm,
    );
    rejects(
        &["eval", "--model", s(&mm), "--data", s(&many), "--stream"],
        &["--stream does not apply to a classify model"],
        &mm,
    );
    // one column as both text and label
    rejects(
        &[
            "train",
            "classify",
            "--data",
            s(&many),
            "--text-column",
            "label",
            "--label-column",
            "label",
            "--out",
            s(&dir.join("same")),
        ],
        &["are both \"label\"", "would read its own label"],
        &dir,
    );
    rejects(
        &[
            "train",
            "classify",
            "--data",
            s(&many),
            "--text-column",
            "label",
            "--label-column",
            " label",
            "--out",
            s(&dir.join("same")),
        ],
        &["would read its own label"],
        &dir,
    );
    // every word once: nothing in the vocabulary, said
    let rare = dir.join("rare.tsv");
    let rows: String = (0..12).map(|i| format!("word{i}\t{}\n", i % 2)).collect();
    std::fs::write(&rare, format!("text\tlabel\n{rows}")).unwrap();
    let said = train(&rare, &dir.join("rare"));
    assert!(
        said.contains("no word of the training texts is in the vocabulary"),
        "{said}"
    );
    // a label only the validation split has: its row of the file is named
    let split = dir.join("split.tsv");
    let rows: String = (0..18)
        .map(|i| format!("w{} o\t{}\n", i % 3, i % 2))
        .collect();
    std::fs::write(&split, format!("text\tlabel\n{rows}zz\t7\nyy\t1\n")).unwrap();
    rejects(
        &[
            "train",
            "classify",
            "--data",
            s(&split),
            "--val-fraction",
            "0.1",
            "--out",
            s(&dir.join("split")),
        ],
        &[
            "split.tsv row 19 (in the validation split",
            "label `7` never appears",
        ],
        &dir,
    );
}

/// Rewrites a model directory's `config.json` through `f` and removes its manifest (as the
/// loader's message says to do to accept edited files).
fn edit_config(d: &Path, f: &dyn Fn(&mut serde_json::Value)) {
    let p = d.join("config.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(&p, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    let _ = std::fs::remove_file(d.join("checkpoint.json"));
}

/// A configuration edited (or made by `import --config`) with values no training writes is
/// refused when the model is loaded, naming the value, rather than reaching a panic, a wrap
/// or a wrong forecast later.
#[test]
fn edited_configurations_of_every_task_are_refused_when_loaded() {
    let dir = tmp("edited");
    let refused = |m: &Path,
                   name: &str,
                   edit: &dyn Fn(&mut serde_json::Value),
                   cmd: &[&str],
                   needles: &[&str]| {
        let d = dir.join(name);
        copy_dir(m, &d);
        edit_config(&d, edit);
        let mut a: Vec<&str> = cmd.to_vec();
        a.extend(["--model", s(&d)]);
        rejects(&a, needles, &d);
    };
    // text
    let txt = small_text(&dir);
    let t = train_tiny_text(&dir, "t", "2");
    let eval_txt = ["eval", "--data", s(&txt)];
    refused(
        &t,
        "t-seq",
        &|v| v["settings"]["seq_len"] = 0.into(),
        &eval_txt,
        &["config.json", "seq_len (--seq-len) must be at least 1"],
    );
    refused(
        &t,
        "t-head",
        &|v| v["model"]["head"]["kind"] = "last_step".into(),
        &["generate"],
        &["config.json", "a text model cannot have a last_step head"],
    );
    // a classifier
    let tsv = reviews(&dir, "reviews.tsv", 60);
    let c = dir.join("c");
    ok(&[
        "train",
        "classify",
        "--data",
        s(&tsv),
        "--out",
        s(&c),
        "--hidden",
        "4",
        "--embedding",
        "4",
        "--steps",
        "2",
        "--members",
        "1",
        "--quiet",
    ]);
    refused(
        &c,
        "c-head",
        &|v| v["model"]["head"]["kind"] = "per_step".into(),
        &["classify", "a fine film"],
        &[
            "config.json",
            "a classify model cannot have a per_step head",
        ],
    );
    // finite weights so large that the outputs are not finite numbers: refused where they are
    // met, not "training diverged", NaN scores or the same text for every seed
    let huge = dir.join("t-huge");
    copy_dir(&t, &huge);
    let p = huge.join("model.safetensors");
    let mut b = std::fs::read(&p).unwrap();
    let (n, h) = st_header(&b);
    for (name, info) in h.as_object().unwrap() {
        if name == "head.weight" || name.starts_with("lstm.bias_ih") {
            let off = info["data_offsets"].as_array().unwrap();
            let (a, e) = (
                off[0].as_u64().unwrap() as usize,
                off[1].as_u64().unwrap() as usize,
            );
            for k in (8 + n + a..8 + n + e).step_by(4) {
                b[k..k + 4].copy_from_slice(&3e38f32.to_le_bytes());
            }
        }
    }
    std::fs::write(&p, b).unwrap();
    std::fs::remove_file(huge.join("checkpoint.json")).unwrap();
    for cmd in [
        vec!["eval", "--model", s(&huge), "--data", s(&txt)],
        vec![
            "eval",
            "--model",
            s(&huge),
            "--data",
            s(&txt),
            "--generator",
            "f32",
        ],
        vec!["generate", "--model", s(&huge), "--length", "20"],
    ] {
        rejects(&cmd, &["outputs are not finite numbers", "retrain"], &huge);
    }
    // a bidirectional text model is refused before training
    let cfg = dir.join("bi.toml");
    std::fs::write(&cfg, "bidirectional = true\n").unwrap();
    let bi = dir.join("bi");
    let mut a = text_args(&txt, &bi, "2");
    a.extend(["--config", s(&cfg)]);
    rejects(&a, &["a text model cannot be bidirectional"], &dir);
    // the window forecaster
    let air = data("airline_passengers.csv");
    let w = dir.join("w");
    ok(&[
        "train",
        "forecast",
        "--forecaster",
        "window",
        "--data",
        s(&air),
        "--column",
        "passengers",
        "--date-column",
        "month",
        "--window",
        "8",
        "--hidden",
        "4",
        "--steps",
        "2",
        "--out",
        s(&w),
        "--quiet",
    ]);
    let fc = dir.join("fc.csv");
    let forecast = ["forecast", "--data", s(&air), "--out", s(&fc)];
    refused(
        &w,
        "w-window",
        &|v| v["series"]["window"] = u64::MAX.into(),
        &forecast,
        &[
            "config.json",
            "window 18446744073709551615",
            "at most 10000000 steps",
        ],
    );
    refused(
        &w,
        "w-head",
        &|v| v["model"]["head"]["kind"] = "per_step".into(),
        &forecast,
        &["config.json", "a last_step head", "per_step head"],
    );
    // the global forecaster
    let g = dir.join("g");
    ok(&[
        "train",
        "forecast",
        "--data",
        s(&air),
        "--column",
        "passengers",
        "--time-column",
        "month",
        "--scaling",
        "mean-abs",
        "--hidden",
        "4",
        "--steps",
        "2",
        "--out",
        s(&g),
        "--quiet",
    ]);
    refused(
        &g,
        "g-horizon",
        &|v| v["global"]["horizon"] = (u64::MAX - 9).into(),
        &forecast,
        &[
            "config.json",
            "horizon 18446744073709551606",
            "between 1 and 10000000 steps",
        ],
    );
    refused(
        &g,
        "g-calendar",
        &|v| {
            v["global"]["calendar"] = 3.into();
            v["global"]["lags"] = serde_json::json!([12]);
        },
        &forecast,
        &["config.json", "reads 3 calendar features", "gives 1"],
    );
    assert!(!fc.exists());
    // a run of 0 values in the record of what training read (no training writes one) matches
    // nothing, and other data is scored (a panic audit, 2026-12-07: an index past the end)
    let g0 = dir.join("g-run0");
    copy_dir(&g, &g0);
    edit_config(&g0, &|v| {
        v["global"]["trained_until"][0]["values"]["run"] = 0.into();
    });
    let other = dir.join("other.csv");
    let doubled: String = std::fs::read_to_string(&air)
        .unwrap()
        .lines()
        .enumerate()
        .map(|(i, l)| match (i, l.split_once(',')) {
            (0, _) | (_, None) => format!("{l}\n"),
            (_, Some((m, v))) => format!("{m},{}\n", 2.0 * v.parse::<f64>().unwrap() + 1.0),
        })
        .collect();
    std::fs::write(&other, doubled).unwrap();
    let o = run(&["eval", "--model", s(&g0), "--data", s(&other)]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success() && !err.contains("panicked"), "{err}");
}

/// The window forecaster on a long series under `ulimit -v` of 2 GB: its validation ran all
/// 20,000 windows as one batch (3.2 GB, an allocation failure's abort; in chunks now, 150 MB),
/// and windows past the memory are refused before they are copied (a review, 2026-12-07).
#[test]
fn a_long_series_trains_the_window_forecaster_within_its_memory() {
    let dir = tmp("window-long");
    let long = dir.join("long.csv");
    let rows: String = (0..200_000)
        .map(|i| {
            format!(
                "{i},{:.4}\n",
                10.0 + (i as f64 / 4.0).sin() + 0.001 * i as f64
            )
        })
        .collect();
    std::fs::write(&long, format!("t,y\n{rows}")).unwrap();
    let args = |window: &'static str, out: &Path| -> Vec<String> {
        [
            "train",
            "forecast",
            "--forecaster",
            "window",
            "--data",
            s(&long),
            "--column",
            "y",
            "--window",
            window,
            "--hidden",
            "64",
            "--steps",
            "5",
            "--eval-every",
            "5",
            "--threads",
            "2",
            "--quiet",
            "--out",
            s(out),
        ]
        .map(String::from)
        .to_vec()
    };
    let m = dir.join("m");
    let a = args("24", &m);
    let o = limited(
        "ulimit -v 2000000",
        &a.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(String::from_utf8_lossy(&o.stdout).contains("validation loss"));
    // 200,000 windows of 3,000 rows: 2.4 GB
    let big = dir.join("big");
    let a = args("3000", &big);
    let o = limited(
        "ulimit -v 2000000",
        &a.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("the training and validation windows would take about 2.4 GB")
            && err.contains("--window or --horizon"),
        "{err}"
    );
    assert!(!big.exists());
}

/// Window and horizon sizes near the largest integer wrapped round to small ones, passed the
/// length check and panicked (a panic audit, 2026-12-07): refused, naming the sizes.
#[test]
fn window_forecaster_sizes_near_the_largest_integer_are_refused() {
    let dir = tmp("window-huge");
    let air = data("airline_passengers.csv");
    let out = dir.join("w");
    let max = "18446744073709551615";
    for (flag, value, extra) in [
        ("--window", "9223372036854775807", "--horizon"),
        ("--window", max, "--horizon"),
        ("--horizon", max, "--window"),
        ("--holdout", max, "--window"),
    ] {
        rejects(
            &[
                "train",
                "forecast",
                "--forecaster",
                "window",
                "--data",
                s(&air),
                "--column",
                "passengers",
                flag,
                value,
                extra,
                "2",
                "--steps",
                "2",
                "--out",
                s(&out),
            ],
            &[
                "the series has 144 rows",
                // a holdout is named among what to lower
                if flag == "--holdout" {
                    "Lower --window or --horizon (or --holdout)"
                } else {
                    "Lower --window or --horizon"
                },
            ],
            &dir,
        );
    }
    // scoring another file with a holdout past its length
    ok(&[
        "train",
        "forecast",
        "--forecaster",
        "window",
        "--data",
        s(&air),
        "--column",
        "passengers",
        "--window",
        "8",
        "--hidden",
        "4",
        "--steps",
        "2",
        "--out",
        s(&out),
        "--quiet",
    ]);
    let other = dir.join("other.csv");
    let rows: String = (0..100)
        .map(|i| format!("{i},{}\n", 50.0 + (i as f64 / 5.0).cos() * 3.0))
        .collect();
    std::fs::write(&other, format!("t,passengers\n{rows}")).unwrap();
    rejects(
        &[
            "eval",
            "--model",
            s(&out),
            "--data",
            s(&other),
            "--holdout",
            max,
        ],
        &["100 rows are too few to score the last 18446744073709551615"],
        &out,
    );
}

// ------------------------------------------------------------------ configuration

#[test]
fn bad_configuration_is_refused_before_anything_is_written() {
    let dir = tmp("config");
    let txt = small_text(&dir);
    let out = dir.join("out");
    let text = |extra: &[&str], needles: &[&str]| {
        let mut a = vec!["train", "text", "--data", s(&txt), "--out", s(&out)];
        if !extra.contains(&"--steps") {
            a.extend(["--steps", "2"]);
        }
        a.extend(extra);
        rejects(&a, needles, &dir);
    };
    for flag in [
        "--hidden",
        "--layers",
        "--batch",
        "--seq-len",
        "--steps",
        "--save-every",
    ] {
        text(&[flag, "0"], &["at least 1"]);
    }
    text(&["--hidden", "-5"], &["-5"]);
    text(&["--lr", "-0.1"], &["lr (--lr) must be a positive number"]);
    text(
        &["--dropout", "1.5"],
        &["dropout (--dropout) must be in [0, 1)"],
    );
    text(&["--hidden", "1000000", "--layers", "50"], &["GB"]);
    text(&["--batch", "100000000", "--hidden", "64"], &["GB"]);
    text(
        &["--cell", "gru", "--variant", "peephole"],
        &["needs cell = lstm"],
    );
    text(
        &["--cell", "gru", "--proj", "4"],
        &["proj (--proj) needs cell = lstm"],
    );
    let cfg = dir.join("run.toml");
    std::fs::write(&cfg, "hidden = 16\nhiden = 32\n").unwrap();
    text(&["--config", s(&cfg)], &["run.toml", "hiden"]);
    std::fs::write(&cfg, "hidden = -16\n").unwrap();
    text(&["--config", s(&cfg)], &["run.toml"]);
    std::fs::write(&cfg, "hidden = [\n").unwrap();
    text(&["--config", s(&cfg)], &["run.toml", "not valid TOML"]);
    // an embedding table too large for the machine, known only once the vocabulary is read
    let tsv = reviews(&dir, "r.tsv", 100);
    rejects(
        &[
            "train",
            "classify",
            "--data",
            s(&tsv),
            "--out",
            s(&out),
            "--embedding",
            "50000000",
            "--hidden",
            "4",
        ],
        &["would need about", "GB", "--embedding"],
        &dir,
    );
    // contradictory flags
    let m = train_tiny_text(&dir, "m", "2");
    rejects(
        &["train", "--resume", s(&m), "--hidden", "32", "--lr", "0.1"],
        &[
            "--hidden 32 differs from the saved model's 16",
            "--lr 0.1 differs from the saved model's 0.002",
            "--resume",
        ],
        &dir,
    );
    // data is compared by contents (`cli::resume_gives_the_same_weights_as_one_run`); a file
    // that is not there is named
    let elsewhere = dir.join("other.txt");
    rejects(
        &["train", "text", "--resume", s(&m), "--data", s(&elsewhere)],
        &[&format!("--data {}: no such file", elsewhere.display())],
        &dir,
    );
    let other = dir.join("other");
    copy_dir(&m, &other);
    rejects(
        &[
            "train",
            "--resume",
            s(&m),
            "--out",
            s(&other),
            "--steps",
            "4",
        ],
        &["already holds a model"],
        &dir,
    );
    assert!(!out.exists());
}

#[test]
fn a_new_run_writes_only_into_a_new_or_empty_directory_and_a_failed_save_leaves_none() {
    let dir = tmp("outdir");
    let txt = small_text(&dir);
    // a folder of the user's own files: the model's would replace same-named ones
    let mine = dir.join("project");
    std::fs::create_dir(&mine).unwrap();
    std::fs::write(mine.join("loss.svg"), "my notes").unwrap();
    rejects(
        &text_args(&txt, &mine, "3"),
        &[
            "project is a directory that is not empty",
            "choose another --out",
        ],
        &dir,
    );
    // an empty one is fine
    let empty = dir.join("empty");
    std::fs::create_dir(&empty).unwrap();
    let mut a = text_args(&txt, &empty, "3");
    a.push("--quiet");
    ok(&a);
    // the first save fails (the file size limit): no directory is left behind
    let out = dir.join("new").join("m");
    let mut args = text_args(&txt, &out, "3");
    args.push("--quiet");
    let o = limited("trap '' XFSZ; ulimit -f 20", &args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && !err.contains("panicked"), "{err}");
    assert!(err.contains("no checkpoint had been written"), "{err}");
    assert!(!out.exists(), "a directory was left behind: {err}");
}

#[test]
fn text_of_no_known_character_is_refused_not_scored_as_zero() {
    let dir = tmp("unknown-chars");
    let m = train_tiny_text(&dir, "m", "3");
    let unk = dir.join("unk.txt");
    std::fs::write(&unk, "日本語".repeat(100)).unwrap();
    rejects(
        &["eval", "--model", s(&m), "--data", s(&unk)],
        &["unk.txt", "nothing to score"],
        &dir,
    );
    let txt = small_text(&dir);
    let out = dir.join("v");
    let mut a = text_args(&txt, &out, "3");
    a.extend(["--val", s(&unk)]);
    rejects(&a, &["validation text", "vocabulary"], &dir);
}

#[test]
fn a_model_past_the_address_space_limit_is_refused_before_allocating() {
    // about 4 GB of parameters, gradients and moments under `ulimit -v` of 2 GB: an error, not
    // an allocation failure's abort
    let dir = tmp("ulimit");
    let txt = small_text(&dir);
    let out = dir.join("m");
    let o = limited(
        "ulimit -v 2000000",
        &[
            "train",
            "text",
            "--data",
            s(&txt),
            "--out",
            s(&out),
            "--hidden",
            "4000",
            "--layers",
            "2",
            "--steps",
            "1",
            "--quiet",
        ],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("would need about") && err.contains("GB are available"),
        "{err}"
    );
    assert!(!out.exists());
}

#[test]
fn near_the_address_space_limit_training_is_refused_or_runs_never_aborts() {
    // limits around what 2 x 512 and 2 x 1024 text models need: the memory check counted 16
    // bytes a parameter and none of glibc's 64 MiB heap reservation per thread, and these
    // aborted on an allocation failure (while training, or saving) after passing it
    let dir = tmp("ulimit-near");
    let txt = small_text(&dir);
    for (hidden, kb) in [("512", 500_000), ("1024", 700_000), ("1024", 1_000_000)] {
        let out = dir.join(format!("m{hidden}-{kb}"));
        let o = limited(
            &format!("ulimit -v {kb}"),
            &[
                "train",
                "text",
                "--data",
                s(&txt),
                "--out",
                s(&out),
                "--hidden",
                hidden,
                "--steps",
                "1",
                "--quiet",
            ],
        );
        let err = String::from_utf8_lossy(&o.stderr);
        match o.status.code() {
            Some(0) => assert!(out.join("config.json").is_file(), "{err}"),
            Some(1) => {
                assert!(err.contains("would need about"), "{hidden} {kb}: {err}");
                assert!(!out.exists());
            }
            c => panic!("--hidden {hidden} under ulimit -v {kb}: {c:?} {err}"),
        }
    }
}

#[test]
fn an_explanation_past_the_address_space_limit_is_refused_before_tracing() {
    // the whole of Shakespeare explained unit by unit: about 4 GB of trace and page under
    // `ulimit -v` of 2 GB (an allocation failure's abort before)
    let dir = tmp("explain-ulimit");
    let m = train_tiny_text(&dir, "m", "2");
    let page = dir.join("e.html");
    let text = data("tinyshakespeare.txt");
    let o = limited(
        "ulimit -v 2000000",
        &[
            "explain",
            "--model",
            s(&m),
            "--text",
            s(&text),
            "--max-tokens",
            "18446744073709551615",
            "--out",
            s(&page),
        ],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("GB of memory") && err.contains("--max-tokens"),
        "{err}"
    );
    assert!(!page.exists());
}

#[test]
fn a_truncated_weights_file_is_named_as_such() {
    let dir = tmp("truncated");
    let m = train_tiny_text(&dir, "m", "2");
    let w = m.join("model.safetensors");
    let bytes = std::fs::read(&w).unwrap();
    std::fs::write(&w, &bytes[..100]).unwrap();
    let gen = ["generate", "--model", s(&m), "--length", "3"];
    rejects(
        &gen,
        &["model.safetensors", "truncated or was replaced"],
        &dir,
    );
    std::fs::remove_file(m.join("checkpoint.json")).unwrap();
    rejects(
        &gen,
        &["not a readable safetensors file", "truncated"],
        &dir,
    );
}

#[test]
fn a_failed_write_leaves_no_partial_file() {
    let dir = tmp("partial");
    let m = train_tiny_text(&dir, "m", "2");
    let out = dir.join("pages");
    std::fs::create_dir(&out).unwrap();
    for (cmd, file) in [
        (vec!["export", "pytorch", "--model", s(&m)], "m.safetensors"),
        (vec!["export", "onnx", "--model", s(&m)], "m.onnx"),
        (vec!["report", "--model", s(&m)], "r.html"),
    ] {
        let target = out.join(file);
        let mut args = cmd.clone();
        args.extend(["--out", s(&target)]);
        let o = limited("trap '' XFSZ; ulimit -f 2", &args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            !o.status.success() && !err.contains("panicked"),
            "{cmd:?}: {err}"
        );
        let left: Vec<_> = std::fs::read_dir(&out)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        assert!(left.is_empty(), "{cmd:?} left {left:?}");
    }
    // an export replaces a file of its own format or an empty one, never another file
    let empty = out.join("empty.tmp");
    std::fs::write(&empty, "").unwrap();
    ok(&["export", "pytorch", "--model", s(&m), "--out", s(&empty)]);
    let notes = out.join("notes.txt");
    std::fs::write(&notes, "my notes").unwrap();
    for format in ["onnx", "pytorch", "keras"] {
        rejects(
            &["export", format, "--model", s(&m), "--out", s(&notes)],
            &["notes.txt exists", "refusing to replace it"],
            &dir,
        );
    }
    for (format, file) in [
        ("onnx", "m.onnx"),
        ("pytorch", "m.safetensors"),
        ("keras", "m.weights.h5"),
        ("keras", "k.safetensors"),
    ] {
        let target = s(&out.join(file)).to_string();
        for _ in 0..2 {
            ok(&["export", format, "--model", s(&m), "--out", &target]);
        }
    }
    rejects(
        &[
            "export",
            "onnx",
            "--model",
            s(&m),
            "--out",
            s(&out.join("m.weights.h5")),
        ],
        &["refusing to replace it"],
        &dir,
    );
}

#[test]
fn a_run_whose_data_changed_is_not_resumed() {
    let dir = tmp("changed-data");
    let m = train_tiny_text(&dir, "m", "2");
    let txt = dir.join("small.txt");
    let mut text = std::fs::read_to_string(&txt).unwrap();
    text = text.replace('e', "a");
    std::fs::write(&txt, &text).unwrap();
    rejects(
        &["train", "--resume", s(&m), "--steps", "4"],
        &[
            "small.txt is not the data this run was trained on",
            "restore the file",
        ],
        &dir,
    );
    let wd = dir.join("wd");
    let mut a = text_args(&txt, &wd, "2");
    a.extend(["--weight-decay", "-1"]);
    rejects(
        &a,
        &["weight_decay (--weight-decay) must be a finite number >= 0"],
        &dir,
    );
    let th = dir.join("th");
    let mut a = text_args(&txt, &th, "2");
    let at = a.iter().position(|x| *x == "--threads").unwrap();
    a[at + 1] = "100000";
    rejects(&a, &["threads (--threads) must be at most 4096"], &dir);
    // an epoch count no run reaches (it printed u64::MAX steps)
    let ep = dir.join("ep");
    let mut a = text_args(&txt, &ep, "2");
    let at = a.iter().position(|x| *x == "--steps").unwrap();
    a[at] = "--epochs";
    a[at + 1] = "1e30";
    rejects(
        &a,
        &["epochs (--epochs) must be at most 1000000", "--minutes"],
        &dir,
    );
}

#[test]
fn resuming_a_spent_budget_changes_nothing_and_toml_values_are_named() {
    let dir = tmp("spent");
    let m = train_tiny_text(&dir, "m", "4");
    let before = snapshot(&m);
    for steps in ["4", "2"] {
        let o = run(&["train", "--resume", s(&m), "--steps", steps]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{err}");
        assert!(
            err.contains("already at step 4") && err.contains("nothing to train"),
            "{err}"
        );
    }
    assert!(snapshot(&m) == before, "the checkpoint was written again");
    // into another --out: that directory is not made, and not named as if it held the model
    // (a probe, 2026-12-07: "DST is already at step 4")
    let dst = dir.join("dst");
    let o = run(&["train", "--resume", s(&m), "--steps", "4", "--out", s(&dst)]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("the model resumed is already at step 4")
            && err.contains(&format!("nothing was written to {}", dst.display())),
        "{err}"
    );
    assert!(!dst.exists());
    let txt = small_text(&dir);
    // a budget in --config is a new budget, as --steps is
    let budget = dir.join("budget.toml");
    std::fs::write(&budget, "steps = 6\n").unwrap();
    let o = ok(&[
        "train",
        "--resume",
        s(&m),
        "--config",
        s(&budget),
        "--quiet",
    ]);
    assert!(o.contains("done: 6 steps"), "{o}");
    let cfg = dir.join("run.toml");
    let out = dir.join("t");
    for (toml, needle) in [
        (
            "minutes = inf\n",
            "`minutes = inf`: a setting must be a finite number",
        ),
        (
            "clip = nan\n",
            "`clip = NaN`: a setting must be a finite number",
        ),
        ("hidden = \"16\"\n", "`hidden = \"16\"`: invalid type"),
    ] {
        std::fs::write(&cfg, toml).unwrap();
        rejects(
            &[
                "train",
                "text",
                "--data",
                s(&txt),
                "--config",
                s(&cfg),
                "--out",
                s(&out),
            ],
            &["run.toml", needle],
            &dir,
        );
    }
}

// ------------------------------------------------------------------ signals

fn spawn(args: &[&str]) -> Child {
    spawn_ignoring(args, &[])
}

/// [`spawn`] with the signals `ignored` set to be ignored, as `nohup` sets SIGHUP.
fn spawn_ignoring(args: &[&str], ignored: &'static [i32]) -> Child {
    let mut cmd = bin();
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    // SAFETY: between fork and exec, signal(2) only, which is async-signal-safe: the signals
    // at their defaults even where the tests run as a background job (SIGINT ignored), which
    // training rightly keeps ignoring, then those asked for ignored; and prctl(2), also
    // async-signal-safe: the child is killed when the test's thread ends, so a failed test
    // does not leave a million-step run training beside the rest of the suite
    unsafe {
        cmd.pre_exec(move || {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
                libc::signal(sig, libc::SIG_DFL);
            }
            for &sig in ignored {
                libc::signal(sig, libc::SIG_IGN);
            }
            Ok(())
        });
    }
    cmd.spawn().expect("the binary starts")
}

/// Waits for the line announcing training (the signal handler is installed before it).
fn wait_for_training(child: &mut Child) -> BufReader<std::process::ChildStdout> {
    let mut r = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        assert!(r.read_line(&mut line).unwrap() > 0, "no training line");
        if line.starts_with("training a") {
            return r;
        }
    }
}

/// `nohup lstm train ...`: the SIGHUP of a closed terminal, set to be ignored, stays ignored
/// (the handler took it and training stopped); SIGTERM still stops and saves.
#[test]
fn an_ignored_sighup_does_not_stop_training() {
    let dir = tmp("nohup");
    let txt = small_text(&dir);
    let m = dir.join("m");
    let mut args = text_args(&txt, &m, "1000000");
    args.extend(["--sample-every", "0", "--eval-every", "100000"]);
    let mut child = spawn_ignoring(&args, &[libc::SIGHUP]);
    let _stdout = wait_for_training(&mut child);
    signal(&child, libc::SIGHUP);
    std::thread::sleep(Duration::from_millis(700));
    assert!(child.try_wait().unwrap().is_none(), "SIGHUP stopped it");
    signal(&child, libc::SIGTERM);
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(143), "{err}");
    assert!(err.contains("interrupted at step"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: kill(2) on our own child's pid
    assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
}

#[test]
fn sigint_and_sigterm_stop_save_and_resume_bit_identically() {
    let dir = tmp("signals");
    let txt = small_text(&dir);
    let m = dir.join("m");
    let mut args = text_args(&txt, &m, "1000000");
    args.extend(["--sample-every", "0", "--eval-every", "100000"]);
    let mut resumed_at = Vec::new();
    for (round, sig) in [libc::SIGINT, libc::SIGTERM].into_iter().enumerate() {
        let mut child = if round == 0 {
            spawn(&args)
        } else {
            spawn(&["train", "--resume", s(&m), "--steps", "1000000"])
        };
        let _stdout = wait_for_training(&mut child);
        std::thread::sleep(Duration::from_millis(300));
        signal(&child, sig);
        let o = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        // as a shell reports a command the signal ended: 130 for SIGINT, 143 for SIGTERM
        assert_eq!(o.status.code(), Some(128 + sig), "signal {sig}: {err}");
        assert!(!err.contains("panicked"));
        assert!(
            err.contains("interrupted at step")
                && err.contains(&format!("lstm train --resume {}", s(&m))),
            "{err}"
        );
        let step = step_of(&m);
        assert!(
            step > *resumed_at.last().unwrap_or(&0),
            "training went on after the resume"
        );
        resumed_at.push(step);
    }
    // finish, and compare with one uninterrupted run of the same length
    let total = (resumed_at[1] + 5).to_string();
    let out = ok(&["train", "--resume", s(&m), "--steps", &total, "--quiet"]);
    assert!(out.contains(&format!("done: {total} steps")), "{out}");
    let reference = dir.join("reference");
    let mut a = text_args(&txt, &reference, &total);
    a.push("--quiet");
    ok(&a);
    assert!(
        weights(&m) == weights(&reference),
        "interrupted by SIGINT at step {} and SIGTERM at step {}, resumed: weights differ from one run",
        resumed_at[0],
        resumed_at[1]
    );
}

#[test]
fn sigint_while_a_classifier_builds_its_further_models_writes_nothing() {
    // the further models train before the first one's progress: Ctrl-C there stops the build
    let dir = tmp("sigint-build");
    let mut rows = String::from("label\ttext\n");
    for i in 0..200 {
        rows.push_str(&format!(
            "pos\tgood film number {i}\nneg\tbad film number {i}\n"
        ));
    }
    let data = dir.join("reviews.tsv");
    std::fs::write(&data, rows).unwrap();
    let out = dir.join("m");
    let child = spawn(&[
        "train",
        "classify",
        "--data",
        s(&data),
        "--out",
        s(&out),
        "--members",
        "10",
        "--steps",
        "1000000",
        "--threads",
        "1",
    ]);
    std::thread::sleep(Duration::from_millis(1500));
    signal(&child, libc::SIGINT);
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(130), "{err}");
    assert!(
        err.contains("interrupted before the main model's training began")
            && !err.contains("panicked"),
        "{err}"
    );
    assert!(!out.exists(), "a model directory was written");
}

#[test]
fn sigint_while_the_data_is_read_writes_nothing() {
    // a 55 MB text takes seconds to read and encode: Ctrl-C then writes no untrained model
    let dir = tmp("sigint-read");
    let text = std::fs::read_to_string(data("tinyshakespeare.txt")).unwrap();
    let big = dir.join("big.txt");
    std::fs::write(&big, text.repeat(50)).unwrap();
    let out = dir.join("m");
    let child = spawn(&[
        "train",
        "text",
        "--data",
        s(&big),
        "--out",
        s(&out),
        "--hidden",
        "8",
        "--seq-len",
        "8",
        "--batch",
        "2",
        "--steps",
        "100",
        "--threads",
        "1",
        "--quiet",
    ]);
    std::thread::sleep(Duration::from_millis(300));
    signal(&child, libc::SIGINT);
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(130), "{err}");
    assert!(
        err.contains("interrupted before the main model's training began"),
        "{err}"
    );
    assert!(!out.exists(), "a model directory was written");
}

/// Runs `args` with every atomic write held open for 20 s, waits until a new entry of `dir`
/// appears, sends `sig`: the command ends by that signal and `dir` is as before.
fn interrupted_write_leaves_nothing(dir: &Path, args: &[&str], sig: i32) {
    let entries = || -> Vec<std::ffi::OsString> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect()
    };
    let before = entries();
    let mut cmd = bin();
    cmd.args(args)
        .env(lstm::tasks::modeldir::SLOW_WRITE_ENV, "20000")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: between fork and exec, signal(2) only, which is async-signal-safe: the signal
    // at its default even where the tests run as a background job (SIGINT ignored), which
    // the command would rightly keep ignoring
    unsafe {
        cmd.pre_exec(move || {
            libc::signal(sig, libc::SIG_DFL);
            Ok(())
        });
    }
    let child = cmd.spawn().expect("the binary starts");
    let t0 = std::time::Instant::now();
    let new_entry = loop {
        let now: Vec<_> = entries()
            .into_iter()
            .filter(|n| !before.contains(n))
            .collect();
        if let Some(n) = now.first() {
            break n.clone();
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "{args:?}: nothing was being written"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    // the temporary file exists; the write is held before its rename
    std::thread::sleep(Duration::from_millis(200));
    signal(&child, sig);
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        t0.elapsed() < Duration::from_secs(15),
        "{args:?}: did not stop at once"
    );
    // ended by the signal, as without the handler: a shell loop around it stops
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        o.status.signal(),
        Some(sig),
        "{args:?}: {:?} {err}",
        o.status
    );
    assert!(
        err.contains("the file being written was removed"),
        "{args:?}: {err}"
    );
    let after = entries();
    assert_eq!(
        after,
        before,
        "{args:?}: {} was left behind",
        new_entry.to_string_lossy()
    );
}

#[test]
fn ctrl_c_during_export_import_or_forecast_out_leaves_no_temporary_file() {
    let dir = tmp("interrupted-write");
    let m = train_tiny_text(&dir, "m", "2");
    let w = dir.join("w");
    std::fs::create_dir(&w).unwrap();
    let st = w.join("m.safetensors");
    interrupted_write_leaves_nothing(
        &w,
        &["export", "pytorch", "--model", s(&m), "--out", s(&st)],
        libc::SIGINT,
    );
    ok(&["export", "pytorch", "--model", s(&m), "--out", s(&st)]);
    let imported = w.join("imported");
    interrupted_write_leaves_nothing(
        &w,
        &[
            "import",
            "pytorch",
            "--weights",
            s(&st),
            "--out",
            s(&imported),
        ],
        libc::SIGTERM,
    );
    let series = w.join("s.csv");
    let rows: String = (0..60)
        .map(|i| format!("{}\n", (i % 7) as f32 + 1.0))
        .collect();
    std::fs::write(&series, format!("y\n{rows}")).unwrap();
    let f = w.join("f");
    ok(&[
        "train",
        "forecast",
        "--data",
        s(&series),
        "--column",
        "y",
        "--out",
        s(&f),
        "--steps",
        "2",
        "--scaling",
        "mean-abs",
        "--quiet",
    ]);
    let fc = w.join("fc.csv");
    interrupted_write_leaves_nothing(
        &w,
        &[
            "forecast",
            "--model",
            s(&f),
            "--data",
            s(&series),
            "--steps",
            "3",
            "--out",
            s(&fc),
        ],
        libc::SIGINT,
    );
}

/// A small deterministic generator for the kill moments (seeded from the clock, printed).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

fn kill_test(kills: usize) {
    let dir = tmp(&format!("kill{kills}"));
    let txt = small_text(&dir);
    let m = dir.join("m");
    let seed = std::env::var("LSTM_KILL_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("kill test: {kills} kills, LSTM_KILL_SEED={seed}");
    let mut rng = Lcg(seed);
    let mut fresh = text_args(&txt, &m, "1000000");
    fresh.extend(["--save-every", "1", "--sample-every", "0", "--quiet"]);
    let (mut last_step, mut mid_save, mut before_first) = (0u64, 0usize, 0usize);
    for k in 0..kills {
        let has_checkpoint = lstm::tasks::modeldir::load(&m).is_ok();
        let child = if has_checkpoint {
            spawn(&[
                "train",
                "--resume",
                s(&m),
                "--steps",
                "1000000",
                "--save-every",
                "1",
                "--quiet",
            ])
        } else {
            spawn(&fresh)
        };
        std::thread::sleep(Duration::from_millis(30 + rng.below(300)));
        signal(&child, libc::SIGKILL);
        let o = child.wait_with_output().unwrap();
        assert!(!String::from_utf8_lossy(&o.stderr).contains("panicked"));
        if m.join(lstm::tasks::modeldir::STAGING).exists() {
            mid_save += 1;
        }
        match lstm::tasks::modeldir::load(&m) {
            Ok(l) => {
                assert!(
                    l.state.step >= last_step,
                    "kill {k}: the checkpoint went back from step {last_step} to {}",
                    l.state.step
                );
                last_step = l.state.step;
            }
            Err(e) => {
                assert!(
                    !has_checkpoint && last_step == 0,
                    "kill {k}: checkpoint lost: {e}"
                );
                before_first += 1;
            }
        }
    }
    eprintln!(
        "kill test: {kills} kills, {mid_save} during a save, {before_first} before the first checkpoint, last step {last_step}"
    );
    assert!(last_step > 0, "no checkpoint was ever written");
    // the newest checkpoint resumes to the end, bit-identical to a run never killed
    let total = (last_step + 3).to_string();
    ok(&["train", "--resume", s(&m), "--steps", &total, "--quiet"]);
    let reference = dir.join("reference");
    let mut a = text_args(&txt, &reference, &total);
    a.extend(["--sample-every", "0", "--quiet"]);
    ok(&a);
    assert!(
        weights(&m) == weights(&reference),
        "killed and resumed run differs from one run"
    );
    assert!(
        mid_save > 0,
        "no kill landed during a save; the test did not test that"
    );
}

#[test]
fn sigkill_at_random_moments_never_loses_the_checkpoint() {
    kill_test(15);
}

/// The long version: `cargo test --release --test robust -- --ignored` (200 kills by default,
/// `LSTM_KILLS=N` for more). Ignored because it takes minutes; CI runs the 15-kill version above.
#[test]
#[ignore = "minutes long: 200+ SIGKILLs; the 15-kill test above runs in CI"]
fn sigkill_many_times() {
    kill_test(
        std::env::var("LSTM_KILLS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(200),
    );
}

// ------------------------------------------------------------------ divergence

#[test]
fn nonfinite_loss_stops_at_the_step_keeping_the_last_checkpoint() {
    let dir = tmp("nonfinite");
    let txt = small_text(&dir);
    // injected NaN at step 4: stop, name the step and the likely cause, keep step 3
    let m = dir.join("m");
    let mut a = text_args(&txt, &m, "8");
    a.extend(["--save-every", "1", "--quiet"]);
    let o = bin()
        .args(&a)
        .env(lstm::tasks::train::FAULT_ENV, "4")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && !err.contains("panicked"), "{err}");
    for n in [
        "step 4",
        "loss is NaN",
        "--lr",
        "--clip",
        "--on-nonfinite skip",
        "(step 3) is intact",
    ] {
        assert!(err.contains(n), "lacks {n:?}: {err}");
    }
    assert_eq!(step_of(&m), 3);
    let kept = snapshot(&m);
    // resuming with --on-nonfinite skip gets past it
    let o = bin()
        .args([
            "train",
            "--resume",
            s(&m),
            "--on-nonfinite",
            "skip",
            "--quiet",
        ])
        .env(lstm::tasks::train::FAULT_ENV, "4,6")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("warning: step 4") && err.contains("warning: step 6"),
        "{err}"
    );
    let l = lstm::tasks::modeldir::load(&m).unwrap();
    assert_eq!((l.state.step, l.state.skipped.clone()), (8, vec![4, 6]));
    assert!(snapshot(&m) != kept);
    // ten skips in a row give up, also across a resume (a probe, 2026-12-07: the count began
    // at 0 again, and 3 to 12 went through): 6 in a row by step 8, 4 more after it
    let r = dir.join("run");
    let mut a = text_args(&txt, &r, "8");
    a.extend(["--on-nonfinite", "skip", "--quiet"]);
    let faults = "3,4,5,6,7,8,9,10,11,12";
    let o = bin()
        .args(&a)
        .env(lstm::tasks::train::FAULT_ENV, faults)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = bin()
        .args(["train", "--resume", s(&r), "--steps", "16", "--quiet"])
        .env(lstm::tasks::train::FAULT_ENV, faults)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(
        err.contains("step 12") && err.contains("10 batches in a row"),
        "{err}"
    );
    // a skipped batch does not touch the weights: skipping step 1 of a 1-step run keeps them
    let w0 = dir.join("w0");
    let mut a0 = text_args(&txt, &w0, "1");
    a0.extend(["--quiet", "--on-nonfinite", "skip"]);
    let o = bin()
        .args(&a0)
        .env(lstm::tasks::train::FAULT_ENV, "1")
        .output()
        .unwrap();
    assert!(o.status.success());
    let l0 = lstm::tasks::modeldir::load(&w0).unwrap();
    let fresh = lstm::model::SequenceModel::new(&l0.meta.model, 3).unwrap();
    assert!(
        l0.model.store.values == fresh.store.values,
        "a skipped batch changed the weights"
    );

    // a real divergence: an absurd learning rate without clipping
    let d = dir.join("diverged");
    let mut a = text_args(&txt, &d, "50");
    a.extend([
        "--lr",
        "1e38",
        "--clip",
        "0",
        "--optimizer",
        "sgd",
        "--save-every",
        "1",
        "--quiet",
    ]);
    let o = bin().args(&a).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && !err.contains("panicked"), "{err}");
    assert!(
        err.contains("training diverged: step ")
            && err.contains("--lr")
            && err.contains("i.e. off"),
        "{err}"
    );
    // the last checkpoint, if one was written before, is whole and finite
    if let Ok(l) = lstm::tasks::modeldir::load(&d) {
        assert!(l.model.store.values.iter().all(|v| v.is_finite()));
    }
    // skipping cannot rescue weights that have diverged: it gives up after 10 in a row
    let e = dir.join("diverged-skip");
    let mut a = text_args(&txt, &e, "50");
    a.extend([
        "--lr",
        "1e38",
        "--clip",
        "0",
        "--optimizer",
        "sgd",
        "--on-nonfinite",
        "skip",
        "--quiet",
    ]);
    let o = bin().args(&a).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("10 batches in a row"),
        "{err}"
    );
}

/// Divergence with finite losses is saved but said (a probe, 2026-12-08: `--lr 10` and `--lr
/// 1e36` were "done" with nothing said); a non-finite loss names the cause the numbers point
/// to: the data when no update has reached the weights, the weight decay when it overshoots.
#[test]
fn divergence_is_said_and_blamed_on_its_cause() {
    let dir = tmp("diverging");
    let txt = small_text(&dir);
    // a text model worse than guessing uniformly
    let m = dir.join("lr10");
    let mut a = text_args(&txt, &m, "30");
    a.extend(["--lr", "10", "--quiet"]);
    let o = bin().args(&a).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("warning: the validation loss") && err.contains("guessing each of the"),
        "{err}"
    );
    // a forecaster whose weights blew up: 120 months of a yearly sine
    let csv = dir.join("sin.csv");
    let rows: String = (0..120)
        .map(|i| {
            format!(
                "{i},{}\n",
                10.0 + (i as f64 * std::f64::consts::PI / 6.0).sin()
            )
        })
        .collect();
    std::fs::write(&csv, format!("t,y\n{rows}")).unwrap();
    let f = dir.join("f");
    let forecast = |lr: &str, out: &Path, data: &Path| {
        bin()
            .args([
                "train",
                "forecast",
                "--data",
                s(data),
                "--column",
                "y",
                "--time-column",
                "t",
                "--season",
                "12",
                "--steps",
                "40",
                "--lr",
                lr,
                "--threads",
                "1",
                "--quiet",
                "--out",
                s(out),
            ])
            .output()
            .unwrap()
    };
    let o = forecast("1e36", &f, &csv);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("warning: a weight has grown to"), "{err}");
    // a healthy run says nothing of the kind
    let o = forecast("0.001", &dir.join("ok"), &csv);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.success() && !err.contains("warning: a weight"),
        "{err}"
    );
    // data that overflows: the data is blamed, not the (tiny) learning rate
    let edge = dir.join("edge.csv");
    let rows: String = (0..120)
        .map(|i| format!("{i},{}\n", if i % 2 == 1 { "3.4e38" } else { "-3.4e38" }))
        .collect();
    std::fs::write(&edge, format!("t,y\n{rows}")).unwrap();
    let o = forecast("1e-6", &dir.join("edge"), &edge);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(
        err.contains("step 1:")
            && err.contains("no update had reached the weights yet")
            && !err.contains("lower --lr"),
        "{err}"
    );
    // a weight decay that overshoots is named
    let w = dir.join("wd");
    let mut a = text_args(&txt, &w, "200");
    a.extend(["--optimizer", "adamw", "--weight-decay", "10000", "--quiet"]);
    let o = bin().args(&a).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(err.contains("lower --weight-decay"), "{err}");
}

// ------------------------------------------------------------------ disk full

/// Runs the binary with files limited to `max_bytes` (RLIMIT_FSIZE, SIGXFSZ ignored so a
/// write that would pass the limit fails with EFBIG like on a full disk).
fn run_with_file_limit(args: &[&str], max_bytes: u64) -> Output {
    let mut c = bin();
    c.args(args);
    // SAFETY: only async-signal-safe calls between fork and exec
    unsafe {
        c.pre_exec(move || {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let lim = libc::rlimit {
                rlim_cur: max_bytes as libc::rlim_t,
                rlim_max: max_bytes as libc::rlim_t,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    c.output().unwrap()
}

#[test]
fn disk_full_while_saving_keeps_the_previous_checkpoint() {
    let dir = tmp("diskfull");
    let m = train_tiny_text(&dir, "m", "4");
    let before = snapshot(&m);
    let size = std::fs::metadata(m.join("model.safetensors"))
        .unwrap()
        .len();
    let o = run_with_file_limit(
        &["train", "--resume", s(&m), "--steps", "8", "--quiet"],
        size / 2,
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && !err.contains("panicked"), "{err}");
    assert!(
        err.contains("File too large") && err.contains(".saving"),
        "{err}"
    );
    assert!(
        err.contains("(step 4) is intact") && err.contains("free some space"),
        "{err}"
    );
    assert!(snapshot(&m) == before, "the previous checkpoint changed");
    assert!(
        !m.join(lstm::tasks::modeldir::STAGING).exists(),
        "half-written files left behind"
    );
    // and it still resumes to the same weights as one run
    ok(&["train", "--resume", s(&m), "--steps", "8", "--quiet"]);
    let r = train_tiny_text(&dir, "reference", "8");
    assert!(weights(&m) == weights(&r));
}

/// A build without MPI started as one of several MPI processes refuses before it reads
/// anything or trains a classifier's further models (it refused after them before).
#[cfg(not(feature = "mpi"))]
#[test]
fn a_build_without_mpi_refuses_mpirun_before_any_work() {
    let dir = tmp("no-mpi");
    let out = dir.join("m");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_lstm"))
        .args(["train", "classify", "--data", "/nonexistent/reviews.tsv"])
        .args(["--members", "5", "--out", s(&out)])
        .env("OMPI_COMM_WORLD_SIZE", "2")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("built without MPI") && !err.contains("nonexistent"),
        "{err}"
    );
    assert!(!out.exists());
}

/// A second `lstm train` into a directory a run is training into is refused before it trains
/// (the two used to replace each other's checkpoints, and could leave a directory that does
/// not load), and loads meanwhile read one checkpoint whole (about one in twenty failed while
/// a save was under way, with advice that would have damaged a healthy directory).
#[test]
fn one_run_trains_into_a_directory_and_loads_meanwhile_read_whole_checkpoints() {
    let dir = tmp("lock");
    let m = train_tiny_text(&dir, "m", "2");
    let mut child = spawn(&[
        "train",
        "--resume",
        s(&m),
        "--steps",
        "1000000",
        "--save-every",
        "1",
    ]);
    let _stdout = wait_for_training(&mut child);
    let o = run(&["train", "--resume", s(&m), "--steps", "2000000", "--quiet"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("another lstm process is training into"),
        "{err}"
    );
    // at least 100 loads, and on until the run has saved meanwhile (a busy machine can take
    // longer than 100 loads for one step), within a minute
    let mut steps = Vec::new();
    let started = std::time::Instant::now();
    while steps.len() < 100 || (steps.first() == steps.last() && started.elapsed().as_secs() < 60) {
        let l = lstm::load(&m).unwrap_or_else(|e| panic!("a load while saving failed: {e}"));
        steps.push(l.state.step);
    }
    steps.dedup();
    assert!(
        steps.first() < steps.last(),
        "the run saved meanwhile: {steps:?}"
    );
    signal(&child, libc::SIGTERM);
    let o = child.wait_with_output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(128 + libc::SIGTERM),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // the lock ended with the run
    let last = step_of(&m);
    ok(&[
        "train",
        "--resume",
        s(&m),
        "--steps",
        &(last + 2).to_string(),
        "--quiet",
    ]);
    assert_eq!(step_of(&m), last + 2);
}

/// Standard output that cannot be written (a full disk) is an error naming it, not a panic;
/// a training run says its model was saved all the same.
#[test]
fn standard_output_that_cannot_be_written_is_an_error() {
    let dir = tmp("dev-full");
    let txt = small_text(&dir);
    let m = dir.join("m");
    let mut a = text_args(&txt, &m, "2");
    a.push("--quiet");
    let full = || {
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap()
    };
    let o = bin().args(&a).stdout(full()).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("the model was saved in") && err.contains("cannot write to standard output"),
        "{err}"
    );
    assert!(lstm::load(&m).is_ok());
    // without --quiet the progress lines fail too: dropped, the run trains and saves all the
    // same (it used to stop at its first line), and says so
    let m2 = dir.join("m2");
    let o = bin()
        .args(text_args(&txt, &m2, "2"))
        .stdout(full())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("the model was saved in"), "{err}");
    assert!(lstm::load(&m2).is_ok());
    for args in [
        vec!["eval", "--model", s(&m), "--data", s(&txt)],
        vec!["eval", "--model", s(&m), "--data", s(&txt), "--json"],
    ] {
        let o = bin().args(&args).stdout(full()).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains("cannot write to standard output"), "{err}");
    }
}

#[test]
fn a_training_whose_reader_goes_away_trains_on_and_saves() {
    // `lstm train | head -1`: the pipe closes after the first line; the run used to die of
    // SIGPIPE at its next progress line, with no checkpoint and an empty directory left
    use std::io::BufRead;
    let dir = tmp("sigpipe");
    let txt = small_text(&dir);
    let out = dir.join("m");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_lstm"))
        .args(text_args(&txt, &out, "3000"))
        // a line a step: more than a pipe holds (64 KiB), so that writes meet the closed pipe
        .args(["--eval-every", "1"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("training a text model"), "{first}");
    // the reader is dropped here: the pipe is closed
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.code().is_some(), "killed by a signal: {err}");
    let state = std::fs::read_to_string(out.join("training_state.json")).unwrap();
    assert!(state.contains("\"step\": 3000"), "{state}");
    if o.status.code() != Some(0) {
        assert!(err.contains("the model was saved in"), "{err}");
    }
    // a reader gone before the first line (`lstm train | true`): the same
    let out2 = dir.join("m2");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_lstm"))
        .args(text_args(&txt, &out2, "50"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.code().is_some(), "killed by a signal: {err}");
    let state = std::fs::read_to_string(out2.join("training_state.json")).unwrap();
    assert!(state.contains("\"step\": 50"), "{err} {state}");
}

#[test]
fn a_model_saved_into_out_while_a_run_prepares_is_not_replaced() {
    // run A builds its classifier's further models (seconds) before it takes `--out`; run B
    // trains and saves a small text model there meanwhile. A used to replace B's model when
    // it finished; one of the two is refused now, whichever the timing, and the directory
    // holds the other's model
    let dir = tmp("prepare-race");
    let tsv = reviews(&dir, "r.tsv", 3000);
    let txt = small_text(&dir);
    let out = dir.join("m");
    let a = bin()
        .args(["train", "classify", "--data", s(&tsv), "--out", s(&out)])
        .args(["--epochs", "3", "--threads", "1", "--quiet"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(800));
    let b = bin()
        .args(text_args(&txt, &out, "1"))
        .arg("--quiet")
        .output()
        .unwrap();
    let a = a.wait_with_output().unwrap();
    let (a_err, b_err) = (
        String::from_utf8_lossy(&a.stderr),
        String::from_utf8_lossy(&b.stderr),
    );
    assert!(
        a.status.success() != b.status.success(),
        "both or neither saved: A {a_err} B {b_err}"
    );
    let task = lstm::load(&out).unwrap().meta.task;
    if b.status.success() {
        assert!(
            a_err.contains("received a model from another lstm process"),
            "{a_err}"
        );
        assert_eq!(task, lstm::Task::Text);
    } else {
        assert_eq!(task, lstm::Task::Classify);
    }
}

#[test]
fn a_classifier_left_without_rows_by_tail_or_split_is_refused_by_name() {
    let dir = tmp("classify-no-rows");
    let one = dir.join("one.tsv");
    std::fs::write(&one, "label\ttext\n1\tgood\n").unwrap();
    let two = dir.join("two.tsv");
    std::fs::write(&two, "label\ttext\n1\tgood\n0\tbad\n").unwrap();
    let out = dir.join("o");
    let base = |data: &Path| {
        vec![
            "train".to_string(),
            "classify".into(),
            "--data".into(),
            s(data).into(),
            "--out".into(),
            s(&out).into(),
            "--steps".into(),
            "1".into(),
            "--members".into(),
            "1".into(),
            "--threads".into(),
            "1".into(),
            "--quiet".into(),
        ]
    };
    // --tail leaving no row panicked (an index past the end); one row or an empty training
    // split was called "a single class ("")"
    for (data, extra, needles) in [
        (&one, vec!["--tail", "0.5"], vec!["0 rows left", "--tail"]),
        (&one, vec![], vec!["1 row left", "one to validate on"]),
        (&two, vec!["--tail", "0.5"], vec!["1 row left", "--tail"]),
    ] {
        let mut a = base(data);
        a.extend(extra.iter().map(|x| x.to_string()));
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        rejects(&a, &needles, &out);
    }
}

/// A Windows text (a byte-order mark, `\r\n` line ends) trains a model that learns neither, and
/// the same command line resumes it (its files read the same way again); its `--val` file too.
#[test]
fn a_windows_text_trains_without_its_line_ends_and_resumes() {
    let dir = tmp("crlf");
    let text = std::fs::read_to_string(data("tinyshakespeare.txt")).unwrap();
    let windows = |t: &str| format!("\u{feff}{}", t.replace('\n', "\r\n"));
    let (txt, val) = (dir.join("w.txt"), dir.join("v.txt"));
    std::fs::write(&txt, windows(&text[..20_000])).unwrap();
    std::fs::write(&val, windows(&text[20_000..24_000])).unwrap();
    let out = dir.join("m");
    let mut a = text_args(&txt, &out, "2");
    a.extend(["--val", s(&val), "--quiet"]);
    ok(&a);
    let meta = lstm::tasks::modeldir::load(&out).unwrap().meta;
    let vocab = meta.vocab.unwrap();
    assert!(vocab.line_ends_read);
    assert!(vocab.id("\r").is_none() && vocab.id("\u{feff}").is_none());
    let mut a = text_args(&txt, &out, "3");
    a.extend(["--val", s(&val), "--quiet", "--resume", s(&out)]);
    ok(&a);
    assert_eq!(step_of(&out), 3);
}

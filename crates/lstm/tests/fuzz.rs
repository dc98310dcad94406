//! Property-based fuzzing of everything that reads a user's file: the model-directory
//! (checkpoint) loader, the text loader and the CSV/TSV loaders. Each target feeds mutated
//! valid files and random bytes to the loader and to what runs on its output, and passes when
//! nothing panics (an `Err` is the expected outcome for most inputs).
//!
//! In CI each target runs a few hundred cases in seconds. For a campaign:
//!
//! ```sh
//! LSTM_FUZZ_SECONDS=600 cargo test --release --test fuzz -- --nocapture --test-threads 1
//! ```
//!
//! runs each target for that many seconds and prints its executions; `LSTM_FUZZ_CASES=N`
//! sets the cases of a CI run, `LSTM_FUZZ_SEED=S` replays a campaign, and a
//! `LSTM_FUZZ_STOP_FILE` that appears stops a campaign between batches.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use lstm::data::series::{self, SeriesSpec, Transform};
use lstm::data::vocab::Vocab;
use lstm::model::{Head, InputKind, ModelConfig, SequenceModel};
use lstm::tasks::modeldir::{self, ModelMeta, Task, TrainingState, FORMAT, FORMAT_VERSION};
use lstm::tasks::settings::Settings;
use lstm::tasks::text::{self, Encoded, TextData};
use lstm::tasks::train::TrainTask;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use rand::SeedableRng;

/// Runs `body` on values of `strategy`: a fixed number of cases, or batches until
/// `LSTM_FUZZ_SECONDS` have passed. Panics (with the smallest failing input) on a panic.
/// `body` returns whether the input was accepted by the loader (counted and printed, so a
/// campaign shows how much of it went past the first checks).
fn campaign<S: Strategy>(name: &str, strategy: S, body: impl Fn(S::Value) -> bool)
where
    S::Value: std::fmt::Debug,
{
    lstm::kernels::set_num_threads(1);
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u64>().ok());
    let seconds = env("LSTM_FUZZ_SECONDS").unwrap_or(0);
    let cases = env("LSTM_FUZZ_CASES").unwrap_or(200) as u32;
    let seed = env("LSTM_FUZZ_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
    });
    let stop_file = std::env::var("LSTM_FUZZ_STOP_FILE").ok().map(PathBuf::from);
    let start = Instant::now();
    let mut executions = 0u64;
    let accepted = std::sync::atomic::AtomicU64::new(0);
    let mut batch = 0u64;
    loop {
        let config = Config {
            cases: if seconds > 0 { 500 } else { cases },
            failure_persistence: None,
            max_shrink_iters: 2000,
            ..Config::default()
        };
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&seed.to_le_bytes());
        bytes[8..16].copy_from_slice(&batch.to_le_bytes());
        let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &bytes);
        let mut runner = TestRunner::new_with_rng(config, rng);
        let result = runner.run(&strategy, |v| {
            if body(v) {
                accepted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            Ok(())
        });
        if let Err(e) = result {
            panic!("fuzz {name} (LSTM_FUZZ_SEED={seed}, batch {batch}): {e}");
        }
        executions += config_cases(seconds, cases);
        batch += 1;
        let stop = stop_file.as_ref().is_some_and(|f| f.exists());
        if seconds == 0 || start.elapsed() >= Duration::from_secs(seconds) || stop {
            break;
        }
    }
    eprintln!(
        "fuzz {name}: {executions} executions in {:.1} s, no panic ({} accepted by the loader; LSTM_FUZZ_SEED={seed})",
        start.elapsed().as_secs_f64(),
        accepted.into_inner()
    );
}

fn config_cases(seconds: u64, cases: u32) -> u64 {
    if seconds > 0 {
        500
    } else {
        cases as u64
    }
}

/// One edit of a byte string.
#[derive(Clone, Debug)]
enum Mutation {
    Flip { at: usize, bit: u8 },
    Set { at: usize, byte: u8 },
    Truncate { at: usize },
    Insert { at: usize, bytes: Vec<u8> },
    Delete { at: usize, len: usize },
    Duplicate { at: usize, len: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Mutation::Flip { at, bit }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Set { at, byte }),
        any::<usize>().prop_map(|at| Mutation::Truncate { at }),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        (any::<usize>(), 1usize..64).prop_map(|(at, len)| Mutation::Delete { at, len }),
        (any::<usize>(), 1usize..64).prop_map(|(at, len)| Mutation::Duplicate { at, len }),
    ]
}

fn mutate(mut b: Vec<u8>, muts: &[Mutation]) -> Vec<u8> {
    for m in muts {
        let n = b.len();
        let pos = |at: usize| if n == 0 { 0 } else { at % (n + 1) };
        match m {
            Mutation::Flip { at, bit } if n > 0 => b[at % n] ^= 1 << bit,
            Mutation::Set { at, byte } if n > 0 => b[at % n] = *byte,
            Mutation::Truncate { at } => b.truncate(pos(*at)),
            Mutation::Insert { at, bytes } => {
                let p = pos(*at);
                b.splice(p..p, bytes.iter().copied());
            }
            Mutation::Delete { at, len } => {
                let p = pos(*at);
                b.drain(p..(p + len).min(n));
            }
            Mutation::Duplicate { at, len } => {
                let p = pos(*at);
                let piece = b[p..(p + len).min(n)].to_vec();
                b.splice(p..p, piece);
            }
            _ => {}
        }
    }
    b
}

/// Replaces the `k`-th number of a JSON document (counted modulo their number) by `v`.
fn replace_number(json: &[u8], k: usize, v: &serde_json::Value) -> Vec<u8> {
    fn numbers(x: &mut serde_json::Value, out: &mut Vec<*mut serde_json::Value>) {
        match x {
            serde_json::Value::Number(_) => out.push(x as *mut _),
            serde_json::Value::Array(a) => a.iter_mut().for_each(|y| numbers(y, out)),
            serde_json::Value::Object(o) => o.values_mut().for_each(|y| numbers(y, out)),
            _ => {}
        }
    }
    let Ok(mut doc) = serde_json::from_slice::<serde_json::Value>(json) else {
        return json.to_vec();
    };
    let mut ptrs = Vec::new();
    numbers(&mut doc, &mut ptrs);
    if let Some(&p) = ptrs.get(k % ptrs.len().max(1)) {
        // SAFETY: the pointers come from `doc`, which is not otherwise touched meanwhile
        unsafe { *p = v.clone() };
    }
    serde_json::to_vec(&doc).unwrap()
}

fn json_number() -> impl Strategy<Value = serde_json::Value> {
    prop_oneof![
        (0u64..8).prop_map(serde_json::Value::from),
        (-3i64..0).prop_map(serde_json::Value::from),
        Just(serde_json::Value::from(100u64)),
        Just(serde_json::Value::from(1u64 << 40)),
        Just(serde_json::Value::from(u64::MAX)),
        Just(serde_json::Value::from(0.5)),
        Just(serde_json::Value::from(1e300)),
    ]
}

// ------------------------------------------------------------------ checkpoint loader

/// The files of a small saved text model.
fn model_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let vocab = Vocab::chars_from("abcde\n");
    let v = vocab.len();
    let mut s = Settings::defaults(Task::Text);
    s.hidden = 4;
    s.layers = 2;
    let cfg = ModelConfig {
        input: InputKind::OneHot { vocab: v },
        hidden_size: 4,
        num_layers: 2,
        head: Head::PerStep { outputs: v },
        ..Default::default()
    };
    let meta = ModelMeta {
        format: FORMAT.into(),
        format_version: FORMAT_VERSION,
        task: Task::Text,
        model: cfg.clone(),
        vocab: Some(vocab),
        labels: None,
        series: None,
        global: None,
        settings: s,
        seen: Vec::new(),
        texts_seen: None,
        label_values: None,
    };
    let mut model = SequenceModel::new(&cfg, 1).unwrap();
    model
        .train_step_text(&[0, 1, 2, 3], &[1, 2, 3, 4], 1, 4)
        .unwrap();
    let state = TrainingState {
        step: 1,
        ..Default::default()
    };
    modeldir::save(dir, &meta, &model, &state).unwrap();
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| {
            (
                e.file_name().to_string_lossy().to_string(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

#[derive(Clone, Debug)]
enum FileEdit {
    Bytes(Vec<Mutation>),
    Number(usize, serde_json::Value),
    Remove,
    Random(Vec<u8>),
}

fn file_edit() -> impl Strategy<Value = FileEdit> {
    prop_oneof![
        6 => prop::collection::vec(mutation(), 1..6).prop_map(FileEdit::Bytes),
        3 => (any::<usize>(), json_number()).prop_map(|(k, v)| FileEdit::Number(k, v)),
        1 => Just(FileEdit::Remove),
        1 => prop::collection::vec(any::<u8>(), 0..256).prop_map(FileEdit::Random),
    ]
}

#[test]
fn fuzz_checkpoint_loader() {
    let base = std::env::temp_dir().join(format!("lstm-fuzz-ckpt-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let files = model_files(&base.join("seed"));
    let work = base.join("work");
    let n = files.len();
    let strategy = prop::collection::vec((0..n, file_edit()), 1..4);
    campaign("checkpoint loader", strategy, |edits| {
        let mut current = files.clone();
        let mut removed = vec![false; n];
        for (i, e) in &edits {
            match e {
                FileEdit::Bytes(m) => current[*i].1 = mutate(current[*i].1.clone(), m),
                FileEdit::Number(k, v) => current[*i].1 = replace_number(&current[*i].1, *k, v),
                FileEdit::Remove => removed[*i] = true,
                FileEdit::Random(b) => current[*i].1 = b.clone(),
            }
        }
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(&work).unwrap();
        for (k, (name, bytes)) in current.iter().enumerate() {
            if !removed[k] {
                std::fs::write(work.join(name), bytes).unwrap();
            }
            if name.ends_with(".safetensors") {
                let _ = lstm::io::checkpoint::TensorFile::from_bytes(bytes, name);
            }
        }
        match modeldir::load(&work) {
            Ok(mut l) => {
                // whatever loads must be usable
                let v = l.meta.vocab.clone().unwrap();
                let enc = Encoded::new(&v, "abcabcde\nxyz");
                let _ = text::evaluate(&mut l.model, &enc, 4, 2);
                true
            }
            Err(_) => false,
        }
    });
    let _ = std::fs::remove_dir_all(&base);
}

// ------------------------------------------------------------------ text loader

fn text_bytes() -> impl Strategy<Value = Vec<u8>> {
    let sample = "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll: Speak, speak. — café ☃ 漢字\r\n";
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..200),
        ".{0,200}".prop_map(|s: String| s.into_bytes()),
        prop::collection::vec(mutation(), 0..6)
            .prop_map(move |m| mutate(sample.as_bytes().to_vec(), &m)),
    ]
}

#[test]
fn fuzz_text_loader() {
    let strategy = (
        text_bytes(),
        0.0f32..0.5,
        1usize..8,
        1usize..5,
        any::<u64>(),
    );
    campaign(
        "text loader",
        strategy,
        |(bytes, fraction, seq_len, batch, seed)| {
            let Ok(text) = lstm::data::text::decode_text(bytes, "fuzz.txt") else {
                return false;
            };
            let mut accepted = false;
            let (train, val) = lstm::data::text::split_validation(&text, fraction);
            assert_eq!(format!("{train}{val}"), text);
            for vocab in [
                Vocab::chars_from(&train),
                Vocab::words_from(std::iter::once(train.as_str()), 1, 50),
            ] {
                let (tr, va) = (Encoded::new(&vocab, &train), Encoded::new(&vocab, &val));
                let _ = vocab.decode(&tr.input);
                let Ok(mut data) = TextData::new(tr, va, seq_len, batch) else {
                    continue;
                };
                accepted = true;
                let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
                let b = data.next_batch(&mut rng, 0);
                assert_eq!(b.tokens.len(), seq_len * batch);
                let cfg = ModelConfig {
                    input: InputKind::OneHot { vocab: vocab.len() },
                    hidden_size: 3,
                    head: Head::PerStep {
                        outputs: vocab.len(),
                    },
                    ..Default::default()
                };
                let mut model = SequenceModel::new(&cfg, seed).unwrap();
                let loss = data.validate(&mut model).unwrap();
                assert!(loss.is_finite());
                model.train_step(&b.as_batch()).unwrap();
            }
            accepted
        },
    );
}

// ------------------------------------------------------------------ CSV/TSV loaders

fn table_bytes() -> impl Strategy<Value = Vec<u8>> {
    let csv = "month,passengers,other\n1949-01,112,1.5\n1949-02,118,2\n1949-03,132,-3e2\n1949-04,129,4\n1949-05,121,5\n1949-06,135,6\n1949-07,148,7\n1949-08,148,8\n";
    let tsv = "label\ttext\n1\tA wonderful, \"quoted\" film.\n0\tDull.\n1\tcafé ☃\n0\t\n";
    prop_oneof![
        prop::collection::vec(mutation(), 0..6)
            .prop_map(move |m| mutate(csv.as_bytes().to_vec(), &m)),
        prop::collection::vec(mutation(), 0..6)
            .prop_map(move |m| mutate(tsv.as_bytes().to_vec(), &m)),
        "[a-z0-9,\t\n\r\" .eE+-]{0,200}".prop_map(|s: String| s.into_bytes()),
        prop::collection::vec(any::<u8>(), 0..200),
    ]
}

#[test]
fn fuzz_csv_tsv_loaders() {
    let strategy = (
        table_bytes(),
        any::<bool>(),
        prop_oneof![4 => 1usize..3, 1 => 0usize..5],
        1usize..6,
        1usize..3,
        0u8..4,
    );
    campaign(
        "csv/tsv loaders",
        strategy,
        |(bytes, tsv, cols, window, horizon, transform)| {
            let labelled = lstm::data::labelled::parse_labelled(
                bytes.clone(),
                "fuzz.tsv",
                tsv,
                "text",
                "label",
            );
            let mut accepted = labelled.is_ok();
            if let Ok(l) = labelled {
                assert_eq!(l.texts.len(), l.labels.len());
                if let Ok(classes) = lstm::data::labelled::classes(&l.labels, "fuzz.tsv", "label") {
                    assert!(classes.len() >= 2);
                    let vocab = Vocab::words_from(l.texts.iter().map(|t| t.as_str()), 1, 100);
                    let tokens = lstm::data::labelled::encode_texts(&vocab, &l.texts, 16);
                    assert!(tokens.iter().all(|t| !t.is_empty() && t.len() <= 16));
                }
            }
            let columns: Vec<String> = ["passengers", "other", "month", "label"][..cols.min(4)]
                .iter()
                .map(|s| s.to_string())
                .collect();
            for date in [None, Some("month")] {
                let Ok(table) = series::parse_table(bytes.clone(), "fuzz.csv", tsv, &columns, date)
                else {
                    continue;
                };
                accepted = true;
                assert!(table.rows() > 0);
                assert!(table.columns.iter().flatten().all(|v| v.is_finite()));
                let mut spec = SeriesSpec {
                    columns: columns.clone(),
                    date_column: date.map(String::from),
                    transform: [
                        Transform::None,
                        Transform::Log,
                        Transform::Diff,
                        Transform::LogDiff,
                    ][transform as usize],
                    mean: vec![],
                    std: vec![],
                    window,
                    horizon,
                    trained: None,
                    freq: None,
                };
                let Ok(tr) = spec.transformed(&table) else {
                    continue;
                };
                let n = tr[0].len();
                // the training/validation split of `lstm train forecast`
                if let Ok((train_rows, usable)) =
                    series::split_rows(n, "fuzz.csv", window, horizon, 1, 0.2, spec.transform)
                {
                    assert!(window + horizon <= train_rows && train_rows + horizon <= usable);
                    assert!(usable < n);
                }
                spec.fit_scaler(&tr, n);
                let scaled = spec.scaled_rows(&tr);
                let _ = series::make_windows(&scaled, columns.len(), window, horizon, 0, n);
                let cfg = ModelConfig {
                    input: InputKind::Dense {
                        features: columns.len(),
                    },
                    hidden_size: 3,
                    head: Head::LastStep { outputs: horizon },
                    ..Default::default()
                };
                let mut model = SequenceModel::new(&cfg, 1).unwrap();
                let _ = spec.forecast(&mut model, &table, 3);
                if let Some(d) = &table.dates {
                    let _ = series::next_dates(d, 3);
                }
            }
            accepted
        },
    );
}

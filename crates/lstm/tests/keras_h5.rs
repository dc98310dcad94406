//! Keras 3's own `.weights.h5`, against files made by real Keras.
//!
//! Each folder of `tests/keras/` holds a small model built, filled with random weights and run
//! by Keras 3.15 (TensorFlow backend): its `model.weights.h5` (`model.save_weights`), our
//! `config.json` of the same network, and `expected.json` with a fixed input and Keras' own
//! output for it. `make_fixtures.py` there wrote them (by hand, outside CI); these tests need no
//! Python. They read every file through [`import_keras_h5`] and compare our forward pass with
//! Keras' numbers, write it back with [`export_keras_h5`] and compare with Keras' file dataset by
//! dataset, and feed the reader damaged files.

use std::path::{Path, PathBuf};

use lstm::io::interop::{export_keras, export_keras_h5, import_keras, import_keras_h5};
use lstm::model::{Inputs, SequenceModel};
use lstm::tasks::modeldir::ModelMeta;
use serde_json::Value;

/// The fixture folders, by name.
fn fixtures() -> Vec<(String, PathBuf)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/keras");
    let mut v: Vec<(String, PathBuf)> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("model.weights.h5").exists())
        .map(|p| (p.file_name().unwrap().to_string_lossy().to_string(), p))
        .collect();
    v.sort();
    v
}

fn meta(dir: &Path) -> ModelMeta {
    serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap()
}

/// The model of a fixture, loaded from Keras' file.
fn load(dir: &Path) -> SequenceModel {
    let mut m = SequenceModel::new(&meta(dir).model, 0).unwrap();
    let path = dir.join("model.weights.h5");
    let bytes = std::fs::read(&path).unwrap();
    import_keras_h5(&bytes, &path.display().to_string(), &mut m).unwrap();
    m
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

/// The datasets of an HDF5 file under `layers/`: path, shape and values.
fn datasets(bytes: &[u8]) -> Vec<(String, Vec<u64>, Vec<f32>)> {
    let f = hdf5_pure::File::from_bytes(bytes.to_vec()).unwrap();
    let mut out = Vec::new();
    let mut stack = vec!["layers".to_string()];
    while let Some(p) = stack.pop() {
        let g = f.group(&p).unwrap();
        for d in g.datasets().unwrap() {
            let ds = g.dataset(&d).unwrap();
            out.push((
                format!("{p}/{d}"),
                ds.shape().unwrap(),
                ds.read_f32().unwrap(),
            ));
        }
        stack.extend(g.groups().unwrap().into_iter().map(|s| format!("{p}/{s}")));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Every fixture loaded from Keras' `.weights.h5` gives Keras' own outputs for the same input:
/// LSTM with an embedding, GRU (`reset_after`) on one-hot input, two stacked LSTMs, two stacked
/// bidirectional LSTMs with a last-step classifier head, LSTM and SimpleRNN forecasters, and a
/// two-layer ReLU SimpleRNN without biases.
#[test]
fn keras_files_give_keras_outputs() {
    let all = fixtures();
    assert!(all.len() >= 7, "fixtures missing: {all:?}");
    let mut worst_all = 0.0f32;
    for (name, dir) in &all {
        let mut m = load(dir);
        let e: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap())
                .unwrap();
        let (b, t) = (
            e["batch"].as_u64().unwrap() as usize,
            e["steps"].as_u64().unwrap() as usize,
        );
        let want = floats(&e["keras_output"]);
        let got = if let Some(tok) = e.get("tokens") {
            let tok: Vec<u32> = tok
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap() as u32)
                .collect();
            m.predict(Inputs::Tokens(&tok), b, t, None)
                .unwrap()
                .to_vec()
        } else {
            let x = floats(&e["features"]);
            m.predict(Inputs::Dense(&x), b, t, None).unwrap().to_vec()
        };
        assert_eq!(got.len(), want.len(), "{name}");
        let worst = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(worst < 1e-5, "{name}: differs from Keras by {worst}");
        // the outputs change with the input far beyond the tolerance (a wrong layout would show)
        let out = e["output_shape"].as_array().unwrap().last().unwrap();
        let out = out.as_u64().unwrap() as usize;
        let spread = (0..out)
            .map(|o| {
                let col = want.iter().skip(o).step_by(out);
                let hi = col.clone().fold(f32::MIN, |a, &b| a.max(b));
                hi - col.fold(f32::MAX, |a, &b| a.min(b))
            })
            .fold(0.0f32, f32::max);
        assert!(spread > 0.02, "{name}: outputs hardly depend on the input");
        worst_all = worst_all.max(worst);
    }
    println!("largest difference from Keras: {worst_all:e}");
}

/// Writing a model loaded from Keras gives Keras' file back, dataset by dataset: the same paths
/// (`layers/lstm/cell/vars/0`, `layers/lstm_1/...`, `layers/bidirectional/forward_layer/...`),
/// shapes and bit-identical values.
#[test]
fn written_files_hold_what_keras_wrote() {
    for (name, dir) in fixtures() {
        let m = load(&dir);
        let ours = datasets(&export_keras_h5(&m).unwrap());
        let keras = datasets(&std::fs::read(dir.join("model.weights.h5")).unwrap());
        assert_eq!(ours.len(), keras.len(), "{name}");
        for (a, b) in ours.iter().zip(&keras) {
            assert_eq!(a.0, b.0, "{name}");
            assert_eq!(a.1, b.1, "{name}: {}", a.0);
            let same =
                a.2.iter()
                    .zip(&b.2)
                    .all(|(x, y)| x.to_bits() == y.to_bits());
            assert!(same && a.2.len() == b.2.len(), "{name}: {} differs", a.0);
        }
    }
}

/// h5 → model → h5 → model: bit-identical parameters, and the same bytes written twice. The
/// safetensors exchange file of the same model holds the same variables.
#[test]
fn h5_round_trip_is_bit_identical() {
    for (name, dir) in fixtures() {
        let a = load(&dir);
        let bytes = export_keras_h5(&a).unwrap();
        let mut b = SequenceModel::new(a.config(), 7).unwrap();
        assert_ne!(a.store.values, b.store.values);
        import_keras_h5(&bytes, "round trip", &mut b).unwrap();
        assert_eq!(a.store.values, b.store.values, "{name}");
        assert_eq!(
            export_keras_h5(&b).unwrap(),
            bytes,
            "{name}: not deterministic"
        );
        let st =
            lstm::io::checkpoint::TensorFile::from_bytes(&export_keras(&a).unwrap(), "st").unwrap();
        let mut c = SequenceModel::new(a.config(), 8).unwrap();
        import_keras(&st, &mut c).unwrap();
        assert_eq!(a.store.values, c.store.values, "{name}");
    }
}

fn fixture(name: &str) -> (PathBuf, Vec<u8>) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/keras")
        .join(name);
    let bytes = std::fs::read(dir.join("model.weights.h5")).unwrap();
    (dir, bytes)
}

fn import_err(bytes: &[u8], cfg: &lstm::model::ModelConfig) -> String {
    let mut m = SequenceModel::new(cfg, 0).unwrap();
    match import_keras_h5(bytes, "bad.weights.h5", &mut m) {
        Ok(()) => panic!("accepted"),
        Err(e) => {
            let msg = e.to_string();
            assert!(
                msg.contains("bad.weights.h5"),
                "does not name the file: {msg}"
            );
            msg
        }
    }
}

/// Damaged and foreign files give an error naming the file, never a panic: empty, garbage,
/// a safetensors file, truncated Keras files, an HDF5 file of other things, and a Keras file with
/// a configuration of another network (cell, size, depth).
#[test]
fn malformed_files_are_refused_by_name() {
    let (dir, bytes) = fixture("lstm_2layer_text");
    let cfg = meta(&dir).model;
    let e = import_err(&[], &cfg);
    assert!(e.contains("not an HDF5 file"), "{e}");
    let e = import_err(&[7u8; 3000], &cfg);
    assert!(e.contains("not an HDF5 file"), "{e}");
    let m = SequenceModel::new(&cfg, 0).unwrap();
    let e = import_err(&export_keras(&m).unwrap(), &cfg);
    assert!(e.contains("not an HDF5 file"), "{e}");
    // truncated anywhere: the signature survives, the rest does not
    for cut in [8, 100, 512, 2048, 4096, bytes.len() / 2, bytes.len() - 1] {
        import_err(&bytes[..cut], &cfg);
    }
    // cut anywhere past the superblock, Keras' file and ours are found short of the end their
    // superblock records, as h5py finds them (a cut in a part the weights do not need was read)
    let ours = export_keras_h5(&SequenceModel::new(&cfg, 0).unwrap()).unwrap();
    for b in [&bytes, &ours] {
        for k in 1..40 {
            let cut = (b.len() * k / 40).max(200);
            let e = import_err(&b[..cut], &cfg);
            assert!(e.contains("truncated"), "cut at {cut} of {}: {e}", b.len());
        }
    }
    // an HDF5 file without Keras' layout, with and without a user block before it (whose end
    // address counts the block: not a truncated file)
    for block in [0, 512] {
        let mut fb = hdf5_pure::FileBuilder::new();
        fb.with_userblock(block);
        fb.create_dataset("temperature").with_f32_data(&[1.0, 2.0]);
        let e = import_err(&fb.finish().unwrap(), &cfg);
        assert!(e.contains("no `layers` group"), "user block {block}: {e}");
    }
    // Keras' legacy HDF5 format (what `model.save("m.h5")` writes)
    let mut fb = hdf5_pure::FileBuilder::new();
    let mut g = fb.create_group("model_weights");
    g.create_dataset("x").with_f32_data(&[1.0]);
    fb.add_group(g.finish());
    fb.set_attr(
        "keras_version",
        hdf5_pure::AttrValue::VarLenString("3.15.1".into()),
    );
    let e = import_err(&fb.finish().unwrap(), &cfg);
    assert!(e.contains("legacy HDF5 format"), "{e}");
    // the wrong configuration: a GRU, other sizes, one layer fewer, no embedding
    let gru = lstm::model::ModelConfig {
        mode: lstm::cell::Mode::Gru,
        ..cfg.clone()
    };
    let e = import_err(&bytes, &gru);
    assert!(
        e.contains("layers/gru/cell/vars/0") && e.contains("\"lstm\""),
        "{e}"
    );
    let wide = lstm::model::ModelConfig {
        hidden_size: 5,
        ..cfg.clone()
    };
    let e = import_err(&bytes, &wide);
    assert!(e.contains("shape"), "{e}");
    let shallow = lstm::model::ModelConfig {
        num_layers: 1,
        ..cfg.clone()
    };
    let e = import_err(&bytes, &shallow);
    assert!(e.contains("no place for") && e.contains("lstm_1"), "{e}");
    let onehot = lstm::model::ModelConfig {
        input: lstm::model::InputKind::OneHot { vocab: 5 },
        ..cfg.clone()
    };
    import_err(&bytes, &onehot);
    // a peephole LSTM has no Keras layer
    let peep = lstm::model::ModelConfig {
        peephole: true,
        ..cfg
    };
    let mut m = SequenceModel::new(&peep, 0).unwrap();
    assert!(import_keras_h5(&bytes, "x", &mut m).is_err());
    assert!(export_keras_h5(&m).is_err());
}

/// Bytes changed anywhere in a Keras file: an error or a file that reads, never a panic; and a
/// file that reads has the shapes the configuration asks for.
#[test]
fn damaged_bytes_never_panic() {
    for name in ["lstm_text_embedding", "bilstm_classify"] {
        let (dir, bytes) = fixture(name);
        let cfg = meta(&dir).model;
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let (mut ok, mut err) = (0, 0);
        for _ in 0..400 {
            let mut b = bytes.clone();
            for _ in 0..3 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let i = (state % b.len() as u64) as usize;
                b[i] = (state >> 40) as u8;
            }
            let mut m = SequenceModel::new(&cfg, 0).unwrap();
            match import_keras_h5(&b, "damaged", &mut m) {
                Ok(()) => ok += 1,
                Err(e) => {
                    assert!(e.to_string().contains("damaged"), "{e}");
                    err += 1
                }
            }
        }
        assert!(ok > 0 && err > 0, "{name}: {ok} read, {err} refused");
    }
}

/// For the check by real Keras outside the test suite (`tests/keras/check_keras_load.py`): with
/// `LSTM_KERAS_DUMP=DIR`, every model directory in `DIR` gets `keras_check.json` with a fixed
/// input and our outputs for it, for Keras to compare with after `model.load_weights` of the
/// file `lstm export keras` wrote. Without the variable this test does nothing.
#[test]
fn dump_for_keras_check() {
    let Ok(root) = std::env::var("LSTM_KERAS_DUMP") else {
        return;
    };
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for entry in std::fs::read_dir(&root).unwrap() {
        let dir = entry.unwrap().path();
        if !dir.join("config.json").exists() {
            continue;
        }
        let mut l = lstm::tasks::modeldir::load(&dir).unwrap();
        let (b, t) = (3usize, 7usize);
        let (input, out) = match l.model.config().input {
            lstm::model::InputKind::OneHot { vocab }
            | lstm::model::InputKind::Embedding { vocab, .. } => {
                let tok: Vec<u32> = (0..b * t).map(|_| (next() % vocab as u64) as u32).collect();
                let y = l
                    .model
                    .predict(Inputs::Tokens(&tok), b, t, None)
                    .unwrap()
                    .to_vec();
                (format!("\"tokens\": {tok:?}"), y)
            }
            lstm::model::InputKind::Dense { features } => {
                let x: Vec<f32> = (0..b * t * features)
                    .map(|_| (next() >> 11) as f32 / (1u64 << 53) as f32 * 2.0 - 1.0)
                    .collect();
                let y = l
                    .model
                    .predict(Inputs::Dense(&x), b, t, None)
                    .unwrap()
                    .to_vec();
                (format!("\"features\": {x:?}"), y)
            }
            lstm::model::InputKind::DenseWithIds { .. } => {
                unreachable!("Keras' layout has no sequence id embedding")
            }
        };
        std::fs::write(
            dir.join("keras_check.json"),
            format!("{{\"batch\": {b}, \"steps\": {t}, {input}, \"ours\": {out:?}}}"),
        )
        .unwrap();
        println!("{}: {} outputs", dir.display(), out.len());
    }
}

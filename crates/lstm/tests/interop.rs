//! Models in and out of other frameworks: round trips through the PyTorch and Keras layouts,
//! the Keras layout checked against its definition, and exported ONNX graphs run by an
//! independent runtime (`tract-onnx`) against our own forward pass.

use lstm::cell::Mode;
use lstm::io::checkpoint::TensorFile;
use lstm::io::interop::{
    export_keras, export_keras_h5, export_pytorch, import_keras, import_keras_h5, import_pytorch,
};
use lstm::io::onnx::{export, Graph as OnnxGraph};
use lstm::model::{Head, InputKind, Inputs, ModelConfig, SequenceModel};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn base(input: InputKind, head: Head) -> ModelConfig {
    ModelConfig {
        input,
        hidden_size: 12,
        head,
        ..Default::default()
    }
}

/// Every layer option, with the graph kind that fits it.
fn configs() -> Vec<(&'static str, ModelConfig, OnnxGraph)> {
    let text = |input| base(input, Head::PerStep { outputs: 9 });
    let fc = || {
        base(
            InputKind::Dense { features: 3 },
            Head::LastStep { outputs: 2 },
        )
    };
    let cls = || {
        base(
            InputKind::Embedding { vocab: 9, dim: 5 },
            Head::LastStep { outputs: 3 },
        )
    };
    vec![
        (
            "lstm one-hot 2 layers",
            ModelConfig {
                num_layers: 2,
                ..text(InputKind::OneHot { vocab: 9 })
            },
            OnnxGraph::Text,
        ),
        (
            "lstm embedding",
            text(InputKind::Embedding { vocab: 9, dim: 4 }),
            OnnxGraph::Text,
        ),
        (
            "lstm bidirectional 2 layers",
            ModelConfig {
                bidirectional: true,
                num_layers: 2,
                ..text(InputKind::OneHot { vocab: 9 })
            },
            OnnxGraph::Text,
        ),
        (
            "lstm no bias",
            ModelConfig {
                bias: false,
                ..fc()
            },
            OnnxGraph::Forecast,
        ),
        (
            "lstm peephole",
            ModelConfig {
                peephole: true,
                ..fc()
            },
            OnnxGraph::Forecast,
        ),
        (
            "lstm coupled",
            ModelConfig {
                coupled: true,
                ..fc()
            },
            OnnxGraph::Forecast,
        ),
        (
            "lstm peephole coupled",
            ModelConfig {
                peephole: true,
                coupled: true,
                ..fc()
            },
            OnnxGraph::Forecast,
        ),
        (
            "lstm forecast bidirectional",
            ModelConfig {
                bidirectional: true,
                ..fc()
            },
            OnnxGraph::Forecast,
        ),
        (
            "gru 2 layers",
            ModelConfig {
                mode: Mode::Gru,
                num_layers: 2,
                ..fc()
            },
            OnnxGraph::Forecast,
        ),
        (
            "gru bidirectional text",
            ModelConfig {
                mode: Mode::Gru,
                bidirectional: true,
                ..text(InputKind::OneHot { vocab: 9 })
            },
            OnnxGraph::Text,
        ),
        (
            "rnn tanh",
            ModelConfig {
                mode: Mode::RnnTanh,
                ..fc()
            },
            OnnxGraph::Forecast,
        ),
        (
            "rnn relu 2 layers",
            ModelConfig {
                mode: Mode::RnnRelu,
                num_layers: 2,
                ..fc()
            },
            OnnxGraph::Forecast,
        ),
        ("lstm classify", cls(), OnnxGraph::Classify),
        (
            "gru classify bidirectional",
            ModelConfig {
                mode: Mode::Gru,
                bidirectional: true,
                ..cls()
            },
            OnnxGraph::Classify,
        ),
        (
            "lstm projection",
            ModelConfig {
                proj_size: 5,
                ..fc()
            },
            OnnxGraph::Forecast,
        ),
    ]
}

/// A model with every parameter (biases, peepholes included) random and non-trivial.
fn model(cfg: &ModelConfig, seed: u64) -> SequenceModel {
    let mut m = SequenceModel::new(cfg, seed).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(seed + 100);
    for v in m.store.values.iter_mut() {
        *v += rng.gen_range(-0.2..0.2);
    }
    m
}

#[test]
fn pytorch_round_trip_is_bit_identical() {
    for (name, cfg, _) in configs() {
        let a = model(&cfg, 1);
        let bytes = export_pytorch(&a, Some("{}")).unwrap();
        let file = TensorFile::from_bytes(&bytes, name).unwrap();
        assert_eq!(
            file.metadata
                .get(lstm::io::interop::CONFIG_KEY)
                .map(|s| s.as_str()),
            Some("{}")
        );
        let mut b = SequenceModel::new(&cfg, 2).unwrap();
        assert_ne!(a.store.values, b.store.values);
        import_pytorch(&file, &mut b).unwrap();
        assert_eq!(a.store.values, b.store.values, "{name}");
        // the same model gives the same bytes: the metadata's two keys were written in hash
        // order, different from run to run (and from call to call)
        for _ in 0..20 {
            assert!(export_pytorch(&a, Some("{}")).unwrap() == bytes, "{name}");
        }
        assert_eq!(file.metadata.get("format").map(|s| s.as_str()), Some("pt"));
    }
}

#[test]
fn pytorch_import_refuses_a_different_architecture() {
    let small = base(InputKind::OneHot { vocab: 9 }, Head::PerStep { outputs: 9 });
    let big = ModelConfig {
        num_layers: 2,
        ..small.clone()
    };
    let bytes = export_pytorch(&model(&big, 1), None).unwrap();
    let file = TensorFile::from_bytes(&bytes, "big").unwrap();
    let err = import_pytorch(&file, &mut SequenceModel::new(&small, 0).unwrap()).unwrap_err();
    assert!(err.to_string().contains("no place for"), "{err}");
    let err = import_pytorch(
        &TensorFile::from_bytes(&export_pytorch(&model(&small, 1), None).unwrap(), "s").unwrap(),
        &mut SequenceModel::new(&big, 0).unwrap(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("l1"), "{err}");
    let wide = ModelConfig {
        hidden_size: 13,
        ..small
    };
    assert!(import_pytorch(&file, &mut SequenceModel::new(&wide, 0).unwrap()).is_err());
}

/// Keras has no peephole, coupled or projected LSTM; every other option round-trips (through
/// the safetensors exchange file and through Keras' `.weights.h5`, which give the same model) to
/// the same function (LSTM and RNN biases merge into Keras' single bias), and bit-identically
/// once the recurrent bias is zero (a model that came from Keras).
#[test]
fn keras_round_trip() {
    for (name, cfg, _) in configs() {
        let mut a = model(&cfg, 1);
        let bytes = match export_keras(&a) {
            Ok(b) => b,
            Err(e) => {
                assert!(
                    cfg.peephole || cfg.coupled || cfg.proj_size > 0,
                    "{name}: {e}"
                );
                continue;
            }
        };
        let file = TensorFile::from_bytes(&bytes, name).unwrap();
        let mut b = SequenceModel::new(&cfg, 2).unwrap();
        import_keras(&file, &mut b).unwrap();
        // Keras' own .weights.h5 holds the same variables
        let mut h = SequenceModel::new(&cfg, 4).unwrap();
        import_keras_h5(&export_keras_h5(&a).unwrap(), name, &mut h).unwrap();
        assert_eq!(b.store.values, h.store.values, "{name}: .weights.h5");
        let (x, bt) = inputs(&cfg, 3, 5, 4);
        let ya = a.predict(x.as_inputs(), bt.0, bt.1, None).unwrap().to_vec();
        let yb = b.predict(x.as_inputs(), bt.0, bt.1, None).unwrap().to_vec();
        for (p, q) in ya.iter().zip(&yb) {
            assert!((p - q).abs() < 1e-5, "{name}: {p} vs {q}");
        }
        // b came from Keras: exporting and importing it again changes nothing
        let again = TensorFile::from_bytes(&export_keras(&b).unwrap(), name).unwrap();
        let mut c = SequenceModel::new(&cfg, 3).unwrap();
        import_keras(&again, &mut c).unwrap();
        assert_eq!(b.store.values, c.store.values, "{name}");
        if cfg.mode == Mode::Gru {
            assert_eq!(
                a.store.values, b.store.values,
                "{name}: GRU keeps both biases"
            );
        }
    }
}

/// The Keras layout from its definition, on one unit: LSTM kernel columns i, f, c, o; GRU
/// columns z, r, h (ours r, z, n); kernel `(I, G·H)` is our `W_ih` transposed; Dense kernel
/// `(in, out)`.
#[test]
fn keras_layout_follows_its_definition() {
    for (mode, keras_cols, ours) in [
        (
            Mode::Lstm,
            vec![1.0, 2.0, 3.0, 4.0],
            vec![1.0, 2.0, 3.0, 4.0],
        ),
        (Mode::Gru, vec![1.0, 2.0, 3.0], vec![2.0, 1.0, 3.0]),
    ] {
        let cfg = ModelConfig {
            mode,
            input: InputKind::Dense { features: 1 },
            hidden_size: 1,
            head: Head::LastStep { outputs: 2 },
            ..Default::default()
        };
        let mut m = SequenceModel::new(&cfg, 0).unwrap();
        let g = keras_cols.len();
        let mut st = lstm::params::ParamStore::default();
        let mut put = |n: &str, shape: &[usize], v: &[f32]| {
            st.add(n, shape);
            st.set(n, shape, v).unwrap();
        };
        put("0/x/x_cell/kernel", &[1, g], &keras_cols);
        put(
            "0/x/x_cell/recurrent_kernel",
            &[1, g],
            &keras_cols.iter().map(|v| v * 10.0).collect::<Vec<_>>(),
        );
        if mode == Mode::Gru {
            let b: Vec<f32> = keras_cols
                .iter()
                .chain(&keras_cols)
                .map(|v| v * 100.0)
                .collect();
            put("0/x/x_cell/bias", &[2, g], &b);
        } else {
            put(
                "0/x/x_cell/bias",
                &[g],
                &keras_cols.iter().map(|v| v * 100.0).collect::<Vec<_>>(),
            );
        }
        put("1/dense/kernel", &[1, 2], &[5.0, 6.0]);
        put("1/dense/bias", &[2], &[7.0, 8.0]);
        let bytes = lstm::io::checkpoint::to_bytes(&st, &Default::default()).unwrap();
        import_keras(&TensorFile::from_bytes(&bytes, "keras").unwrap(), &mut m).unwrap();
        assert_eq!(m.store.get("lstm.weight_ih_l0").unwrap(), &ours[..]);
        let hh: Vec<f32> = ours.iter().map(|v| v * 10.0).collect();
        assert_eq!(m.store.get("lstm.weight_hh_l0").unwrap(), &hh[..]);
        let b: Vec<f32> = ours.iter().map(|v| v * 100.0).collect();
        assert_eq!(m.store.get("lstm.bias_ih_l0").unwrap(), &b[..]);
        let bh = if mode == Mode::Gru {
            b.clone()
        } else {
            vec![0.0; g]
        };
        assert_eq!(m.store.get("lstm.bias_hh_l0").unwrap(), &bh[..]);
        assert_eq!(m.store.get("head.weight").unwrap(), &[5.0, 6.0]);
        assert_eq!(m.store.get("head.bias").unwrap(), &[7.0, 8.0]);
    }
}

/// Inputs for a model: tokens or dense features, `(batch, time)`.
enum X {
    Tokens(Vec<u32>),
    Dense(Vec<f32>),
}

impl X {
    fn as_inputs(&self) -> Inputs<'_> {
        match self {
            X::Tokens(t) => Inputs::Tokens(t),
            X::Dense(d) => Inputs::Dense(d),
        }
    }
}

fn inputs(cfg: &ModelConfig, b: usize, t: usize, seed: u64) -> (X, (usize, usize)) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let x = match cfg.input {
        InputKind::OneHot { vocab } | InputKind::Embedding { vocab, .. } => {
            X::Tokens((0..b * t).map(|_| rng.gen_range(0..vocab as u32)).collect())
        }
        InputKind::Dense { features } => X::Dense(
            (0..b * t * features)
                .map(|_| rng.gen_range(-1.0..1.0))
                .collect(),
        ),
        InputKind::DenseWithIds { .. } => unreachable!("no case here reads sequence ids"),
    };
    (x, (b, t))
}

/// Each exported graph, run by tract, gives our outputs within 1e-5. The options tract does not
/// implement are listed (and must fail to load or run, not give wrong numbers silently).
#[test]
fn onnx_export_runs_in_tract() {
    use tract_onnx::prelude::*;
    let mut unsupported = Vec::new();
    for (name, cfg, graph) in configs() {
        let mut m = model(&cfg, 1);
        let bytes = match export(&m, graph) {
            Ok(b) => b,
            Err(e) => {
                assert!(cfg.proj_size > 0, "{name}: {e}");
                continue;
            }
        };
        let (b, t) = (3usize, 5usize);
        let (x, _) = inputs(&cfg, b, t, 4);
        let lengths = vec![t as i64; b];
        let want = m.predict(x.as_inputs(), b, t, None).unwrap().to_vec();
        if let Ok(dir) = std::env::var("LSTM_ONNX_DUMP") {
            // for a check by another runtime (ONNX Runtime, outside the test suite): the
            // graph, its inputs and our outputs; classify graphs with ragged lengths
            let lens: Vec<usize> = if graph == OnnxGraph::Classify {
                vec![5, 3, 1]
            } else {
                vec![t; b]
            };
            let ours = m
                .predict(
                    x.as_inputs(),
                    b,
                    t,
                    (graph == OnnxGraph::Classify).then_some(&lens[..]),
                )
                .unwrap()
                .to_vec();
            let xs: Vec<f64> = match &x {
                X::Tokens(v) => v.iter().map(|&a| a as f64).collect(),
                X::Dense(v) => v.iter().map(|&a| a as f64).collect(),
            };
            let json = format!(
                "{{\"b\":{b},\"t\":{t},\"x\":{xs:?},\"lengths\":{lens:?},\"want\":{ours:?}}}"
            );
            let stem = name.replace(' ', "_");
            std::fs::write(format!("{dir}/{stem}.onnx"), &bytes).unwrap();
            std::fs::write(format!("{dir}/{stem}.json"), json).unwrap();
        }
        let run = || -> TractResult<Vec<f32>> {
            let mut model = tract_onnx::onnx().model_for_read(&mut &bytes[..])?;
            let input: Tensor = match &x {
                X::Tokens(v) => {
                    let v: Vec<i64> = v.iter().map(|&x| x as i64).collect();
                    tract_ndarray::Array2::from_shape_vec((b, t), v)?.into()
                }
                X::Dense(v) => {
                    let f = v.len() / (b * t);
                    tract_ndarray::Array3::from_shape_vec((b, t, f), v.clone())?.into()
                }
            };
            model = model.with_input_fact(
                0,
                InferenceFact::dt_shape(input.datum_type(), input.shape()),
            )?;
            if graph == OnnxGraph::Classify {
                // tract runs sequence_lens only when it is a constant equal to the length
                let l: Tensor = tract_ndarray::Array1::from_vec(lengths.clone()).into();
                model = model.with_input_fact(1, l.into())?;
            }
            let plan = model.into_optimized()?.into_runnable()?;
            let mut feed: TVec<TValue> = tvec!(input.into());
            if graph == OnnxGraph::Classify {
                let l: Tensor = tract_ndarray::Array1::from_vec(lengths.clone()).into();
                feed.push(l.into());
            }
            let out = plan.run(feed)?;
            Ok(out[0].to_array_view::<f32>()?.iter().copied().collect())
        };
        if cfg.coupled || cfg.mode == Mode::Gru || cfg.mode == Mode::RnnRelu {
            // tract ignores the LSTM's input_forget, the GRU's linear_before_reset (PyTorch's
            // GRU) and the RNN's activations (always tanh), computing other cells: it cannot
            // check these; ONNX Runtime did (README)
            unsupported.push(format!(
                "{name}: input_forget / linear_before_reset / activations ignored by tract"
            ));
            continue;
        }
        match run() {
            Ok(got) => {
                assert_eq!(got.len(), want.len(), "{name}");
                let worst = got
                    .iter()
                    .zip(&want)
                    .map(|(a, b)| (a - b).abs() / (1.0 + b.abs()))
                    .fold(0.0f32, f32::max);
                assert!(worst < 1e-5, "{name}: tract differs by {worst}");
            }
            Err(e) => unsupported.push(format!("{name}: {e}")),
        }
    }
    println!("not checked by tract: {unsupported:#?}");
    assert!(
        unsupported.len() <= 7,
        "too many options tract could not run: {unsupported:#?}"
    );
}

/// A one-hot input past 16,384 tokens is refused, before its identity matrix is allocated
/// (a panic audit, 2026-12-07), as is a model past ONNX's 2 GB; a small one is written (one at
/// the bound would take a GiB in the test).
#[test]
fn onnx_refuses_one_hot_vocabularies_past_its_bound() {
    let cfg = |vocab| ModelConfig {
        hidden_size: 2,
        ..base(InputKind::OneHot { vocab }, Head::PerStep { outputs: 3 })
    };
    let e = export(
        &model(&cfg(lstm::io::onnx::MAX_ONE_HOT + 1), 1),
        OnnxGraph::Text,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("16385 tokens one-hot") && e.contains("--embedding"),
        "{e}"
    );
    assert!(export(&model(&cfg(300), 1), OnnxGraph::Text).is_ok());
}

#[test]
fn onnx_metadata_holds_the_config() {
    use tract_onnx::prelude::*;
    let (_, cfg, graph) = configs().remove(0);
    let m = model(&cfg, 3);
    let bytes =
        lstm::io::onnx::export_with_metadata(&m, graph, &[("lstm_config", "{\"a\": 1}")]).unwrap();
    // read back by another implementation of ONNX's protobuf (tract's)
    let proto = tract_onnx::onnx()
        .proto_model_for_read(&mut &bytes[..])
        .unwrap();
    let props: Vec<(String, String)> = proto
        .metadata_props
        .iter()
        .map(|p| (p.key.clone(), p.value.clone()))
        .collect();
    assert_eq!(
        props,
        [("lstm_config".to_string(), "{\"a\": 1}".to_string())]
    );
    // and the plain export has none
    let plain = tract_onnx::onnx()
        .proto_model_for_read(&mut &export(&m, graph).unwrap()[..])
        .unwrap();
    assert!(plain.metadata_props.is_empty());
}

#[test]
fn a_missing_tensor_suggests_a_renaming_only_when_one_key_fits() {
    // an embedding model's head saved as `fc.*`: `weight` ends several keys, so no renaming
    // is suggested (`embedding.weight` would be a wrong one)
    let (_, cfg, _) = configs()
        .into_iter()
        .find(|(_, c, _)| matches!(c.input, InputKind::Embedding { .. }))
        .unwrap();
    let m = model(&cfg, 5);
    let mut file =
        TensorFile::from_bytes(&export_pytorch(&m, None).unwrap(), "fc.safetensors").unwrap();
    file.tensors = file
        .tensors
        .into_iter()
        .map(|(k, v)| (k.replace("head.", "fc."), v))
        .collect();
    let mut other = model(&cfg, 6);
    let e = import_pytorch(&file, &mut other).unwrap_err().to_string();
    assert!(
        e.contains("missing tensor `head.") && e.contains("the file holds"),
        "{e}"
    );
    assert!(!e.contains("looks like it"), "{e}");
    // the recurrent layer under another module: one key fits, and its renaming is given
    let mut file =
        TensorFile::from_bytes(&export_pytorch(&m, None).unwrap(), "rnn.safetensors").unwrap();
    file.tensors = file
        .tensors
        .into_iter()
        .map(|(k, v)| (k.replace("lstm.", "encoder.rnn."), v))
        .collect();
    let e = import_pytorch(&file, &mut other).unwrap_err().to_string();
    assert!(e.contains("k.replace(\"encoder.rnn.\", \"lstm.\")"), "{e}");
}

//! Conformance against PyTorch and ONNX Runtime reference cases (see `conformance/FORMAT.md`).
//!
//! Reads every `*.safetensors` case in `$LSTM_CONFORMANCE_DIR` (default: the copy in
//! `tests/conformance`), checks outputs, final states, all gradients, and for training cases
//! every loss and the final weights, with each file's tolerances. Fails if any case fails or if
//! no case is found; prints `conformance: N cases passed`.

#![allow(clippy::needless_range_loop)]

mod common;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use common::rel_err;
use lstm::cell::Mode;
use lstm::io::checkpoint::TensorFile;
use lstm::kernels::amx::Bf16Backend;
use lstm::kernels::{with_threads, Precision};
use lstm::model::optim::OptimizerConfig;
use lstm::model::{Batch, Head, InputKind, Inputs, ModelConfig, SequenceModel, Targets};
use lstm::recurrent::{Input, RecurrentCache, RecurrentConfig, RecurrentState, SequenceBatch};
use lstm::testing::{with_team_min_weights, with_transposed_min_gates};

type R<T> = Result<T, String>;

struct Tol {
    atol: f32,
    rtol: f32,
}

/// Compares two tensors; returns an error describing the worst element.
fn compare(what: &str, got: &[f32], want: &[f32], tol: &Tol) -> R<()> {
    if got.len() != want.len() {
        return Err(format!(
            "{what}: length {} != expected {}",
            got.len(),
            want.len()
        ));
    }
    let mut worst: Option<(usize, f32)> = None;
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let excess = (g - w).abs() - (tol.atol + tol.rtol * w.abs());
        let bad = excess > 0.0 || !g.is_finite();
        if bad && worst.is_none_or(|(_, e)| excess > e) {
            worst = Some((i, excess));
        }
    }
    match worst {
        None => Ok(()),
        Some((i, _)) => Err(format!(
            "{what}: element {i} is {} but PyTorch says {} (atol {}, rtol {})",
            got[i], want[i], tol.atol, tol.rtol
        )),
    }
}

fn meta_usize(f: &TensorFile, k: &str) -> R<usize> {
    let v = f.meta(k).map_err(|e| e.to_string())?;
    v.trim()
        .parse()
        .map_err(|_| format!("metadata {k}={v} is not a size"))
}

fn meta_f32(f: &TensorFile, k: &str) -> R<f32> {
    let v = f.meta(k).map_err(|e| e.to_string())?;
    v.trim()
        .parse()
        .map_err(|_| format!("metadata {k}={v} is not a number"))
}

fn meta_bool(f: &TensorFile, k: &str) -> R<bool> {
    match f.meta(k).map_err(|e| e.to_string())?.trim() {
        "true" | "True" | "1" => Ok(true),
        "false" | "False" | "0" => Ok(false),
        v => Err(format!("metadata {k}={v} is not a boolean")),
    }
}

fn tolerances(f: &TensorFile) -> R<Tol> {
    Ok(Tol {
        atol: meta_f32(f, "atol")?,
        rtol: meta_f32(f, "rtol")?,
    })
}

fn get(f: &TensorFile, name: &str) -> R<Vec<f32>> {
    f.f32(name).map_err(|e| e.to_string())
}

/// Bound on [`rel_err`] of every tensor of a layer case run in bf16 (the products' inputs
/// rounded to 8 bits: about 2⁻⁹ each).
const BF16_REL: f64 = 3e-2;

/// Checks a layer case: against the case's tolerances in `f32`, or with `bf16` against
/// [`BF16_REL`], adding each tensor's relative error to `errors`.
fn check_layer(f: &TensorFile, bf16: bool, errors: &mut Vec<f64>) -> R<usize> {
    let tol = tolerances(f)?;
    let mut compare = |what: &str, got: &[f32], want: &[f32], tol: &Tol| -> R<()> {
        if !bf16 {
            return compare(what, got, want, tol);
        }
        if got.len() != want.len() {
            return Err(format!("{what}: length {} != {}", got.len(), want.len()));
        }
        let e = rel_err(got, want);
        errors.push(e);
        if e.is_nan() || e > BF16_REL {
            return Err(format!(
                "{what}: relative error {e:.2e} in bf16 (bound {BF16_REL})"
            ));
        }
        Ok(())
    };
    let mode_s = f.meta("mode").map_err(|e| e.to_string())?;
    let mode = Mode::parse(mode_s).ok_or(format!("unknown mode {mode_s}"))?;
    let variant = f
        .metadata
        .get("variant")
        .map(|s| s.as_str())
        .unwrap_or("standard");
    let cfg = RecurrentConfig {
        mode,
        peephole: variant.contains("peephole"),
        coupled: variant.contains("coupled"),
        input_size: meta_usize(f, "input_size")?,
        hidden_size: meta_usize(f, "hidden_size")?,
        num_layers: meta_usize(f, "num_layers")?,
        proj_size: meta_usize(f, "proj_size").unwrap_or(0),
        bias: meta_bool(f, "bias")?,
        batch_first: meta_bool(f, "batch_first")?,
        bidirectional: meta_bool(f, "bidirectional")?,
        ..Default::default()
    };
    // the parameters go through the PyTorch importer (as a bare nn.LSTM/GRU/RNN state_dict):
    // the case's other tensors (input, states, outputs, gradients) are set aside first
    let mut weights = f.clone();
    weights.tensors.retain(|name, _| {
        !matches!(
            name.as_str(),
            "input" | "h0" | "c0" | "lengths" | "output" | "h_n" | "c_n" | "dout" | "dh_n" | "dc_n"
        ) && !name.starts_with("grad.")
    });
    let (mut rnn, mut store) = lstm::io::interop::import_recurrent_pytorch(&weights, cfg.clone())
        .map_err(|e| e.to_string())?;
    if bf16 {
        rnn.set_precision(Precision::Bf16)
            .map_err(|e| e.to_string())?;
    }
    let names: Vec<String> = store.tensors().iter().map(|t| t.name.clone()).collect();
    let in_shape = f.shape("input").map_err(|e| e.to_string())?.to_vec();
    let (t, b) = if cfg.batch_first {
        (in_shape[1], in_shape[0])
    } else {
        (in_shape[0], in_shape[1])
    };
    let input = get(f, "input")?;
    let lengths: Option<Vec<usize>> = if f.has("lengths") {
        Some(
            f.i64("lengths")
                .map_err(|e| e.to_string())?
                .iter()
                .map(|&l| l as usize)
                .collect(),
        )
    } else {
        None
    };
    let init = RecurrentState {
        h: if f.has("h0") {
            get(f, "h0")?
        } else {
            vec![0.0; cfg.directions() * cfg.num_layers * b * cfg.hidden_out()]
        },
        c: if mode != Mode::Lstm {
            Vec::new()
        } else if f.has("c0") {
            get(f, "c0")?
        } else {
            vec![0.0; cfg.directions() * cfg.num_layers * b * cfg.hidden_size]
        },
    };
    let mut cache = RecurrentCache::default();
    rnn.forward(
        &store.values,
        SequenceBatch {
            lengths: lengths.as_deref(),
            ..SequenceBatch::new(Input::Dense(&input), t, b).with_initial_state(&init)
        },
        &mut cache,
    )
    .map_err(|e| e.to_string())?;
    let mut checked = 0;
    compare("output", cache.output(), &get(f, "output")?, &tol)?;
    checked += 1;
    if f.has("h_n") {
        compare("h_n", &cache.final_state().h, &get(f, "h_n")?, &tol)?;
        checked += 1;
    }
    if f.has("c_n") {
        compare("c_n", &cache.final_state().c, &get(f, "c_n")?, &tol)?;
        checked += 1;
    }
    if meta_bool(f, "has_grad").unwrap_or(false) {
        let d_final = RecurrentState {
            h: if f.has("dh_n") {
                get(f, "dh_n")?
            } else {
                vec![0.0; init.h.len()]
            },
            c: if f.has("dc_n") {
                get(f, "dc_n")?
            } else {
                vec![0.0; init.c.len()]
            },
        };
        rnn.backward(
            &store.values,
            &mut store.grads,
            &mut cache,
            &get(f, "dout")?,
            Some(&d_final),
        )
        .map_err(|e| e.to_string())?;
        compare("grad.input", cache.d_input(), &get(f, "grad.input")?, &tol)?;
        checked += 1;
        if f.has("grad.h0") {
            compare(
                "grad.h0",
                &cache.d_initial_state().h,
                &get(f, "grad.h0")?,
                &tol,
            )?;
            checked += 1;
        }
        if f.has("grad.c0") {
            compare(
                "grad.c0",
                &cache.d_initial_state().c,
                &get(f, "grad.c0")?,
                &tol,
            )?;
            checked += 1;
        }
        for name in &names {
            let key = format!("grad.{name}");
            if f.has(&key) {
                compare(
                    &key,
                    store.grad(name).expect("registered"),
                    &get(f, &key)?,
                    &tol,
                )?;
                checked += 1;
            } else {
                return Err(format!("case has gradients but no {key}"));
            }
        }
    }
    Ok(checked)
}

fn check_train(f: &TensorFile) -> R<usize> {
    let tol = tolerances(f)?;
    let task = f.meta("task").map_err(|e| e.to_string())?;
    let steps = meta_usize(f, "steps")?;
    let hidden = meta_usize(f, "hidden_size")?;
    let layers = meta_usize(f, "num_layers")?;
    let lr = meta_f32(f, "lr")?;
    let wd = meta_f32(f, "weight_decay").unwrap_or(0.0);
    let optimizer = match f.meta("optimizer").map_err(|e| e.to_string())? {
        "adam" | "adamw" => {
            let betas = f.meta("betas").map_err(|e| e.to_string())?;
            let b: Vec<f32> = betas
                .split(',')
                .map(|s| s.trim().parse().unwrap_or(f32::NAN))
                .collect();
            if b.len() != 2 || b.iter().any(|x| x.is_nan()) {
                return Err(format!("bad betas {betas}"));
            }
            let (beta1, beta2, eps) = (b[0], b[1], meta_f32(f, "eps")?);
            if f.meta("optimizer").unwrap() == "adamw" {
                OptimizerConfig::AdamW {
                    lr,
                    beta1,
                    beta2,
                    eps,
                    weight_decay: wd,
                }
            } else {
                OptimizerConfig::Adam {
                    lr,
                    beta1,
                    beta2,
                    eps,
                    weight_decay: wd,
                }
            }
        }
        "sgd" => OptimizerConfig::Sgd {
            lr,
            momentum: meta_f32(f, "momentum").unwrap_or(0.0),
            weight_decay: wd,
            nesterov: false,
        },
        o => return Err(format!("unknown optimizer {o}")),
    };
    let clip = meta_f32(f, "clip_grad_norm").unwrap_or(0.0);
    let (input, head) = match task {
        "text" => {
            let vocab = meta_usize(f, "vocab_size")?;
            let dim = meta_usize(f, "embedding_size").unwrap_or(0);
            let input = if dim > 0 {
                InputKind::Embedding { vocab, dim }
            } else {
                InputKind::OneHot { vocab }
            };
            (input, Head::PerStep { outputs: vocab })
        }
        "series" => {
            let features = f.shape("inputs").map_err(|e| e.to_string())?[3];
            let outputs = f.shape("targets").map_err(|e| e.to_string())?[2];
            (InputKind::Dense { features }, Head::LastStep { outputs })
        }
        other => return Err(format!("unknown task {other}")),
    };
    let cfg = ModelConfig {
        input,
        hidden_size: hidden,
        num_layers: layers,
        head,
        optimizer,
        clip_grad_norm: clip,
        ..Default::default()
    };
    let mut model = SequenceModel::new(&cfg, 0).map_err(|e| e.to_string())?;
    let names: Vec<(String, Vec<usize>)> = model
        .store
        .tensors()
        .iter()
        .map(|t| (t.name.clone(), t.shape.clone()))
        .collect();
    for (name, shape) in &names {
        let v = get(f, &format!("init.{name}"))?;
        model
            .store
            .set(name, shape, &v)
            .map_err(|e| e.to_string())?;
    }
    let want_losses = get(f, "losses")?;
    let in_shape = f.shape("inputs").map_err(|e| e.to_string())?.to_vec();
    let (b, t) = (in_shape[1], in_shape[2]);
    let mut losses = Vec::new();
    for s in 0..steps {
        let out = if task == "text" {
            let x = f.i64("inputs").map_err(|e| e.to_string())?;
            let y = f.i64("targets").map_err(|e| e.to_string())?;
            let n = b * t;
            let xs: Vec<u32> = x[s * n..(s + 1) * n].iter().map(|&v| v as u32).collect();
            let ys: Vec<u32> = y[s * n..(s + 1) * n].iter().map(|&v| v as u32).collect();
            let batch = Batch {
                inputs: Inputs::Tokens(&xs),
                targets: Targets::Classes(&ys),
                batch: b,
                seq_len: t,
                lengths: None,
            };
            model.train_step(&batch)
        } else {
            let x = get(f, "inputs")?;
            let y = get(f, "targets")?;
            let (nx, ny) = (x.len() / steps, y.len() / steps);
            let batch = Batch {
                inputs: Inputs::Dense(&x[s * nx..(s + 1) * nx]),
                targets: Targets::Values(&y[s * ny..(s + 1) * ny]),
                batch: b,
                seq_len: t,
                lengths: None,
            };
            model.train_step(&batch)
        }
        .map_err(|e| e.to_string())?;
        losses.push(out.loss);
    }
    compare("losses", &losses, &want_losses, &tol)?;
    let mut checked = 1;
    for (name, _) in &names {
        compare(
            &format!("final.{name}"),
            model.store.get(name).expect("registered"),
            &get(f, &format!("final.{name}"))?,
            &tol,
        )?;
        checked += 1;
    }
    Ok(checked)
}

fn check_case(path: &Path) -> R<usize> {
    let f = TensorFile::read(path).map_err(|e| e.to_string())?;
    match f.meta("kind").map_err(|e| e.to_string())? {
        "layer" => check_layer(&f, false, &mut Vec::new()),
        "train" => check_train(&f),
        k => Err(format!("unknown kind {k}")),
    }
}

fn main() -> ExitCode {
    let dir: PathBuf = std::env::var_os("LSTM_CONFORMANCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance"));
    let mut cases: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
            .collect(),
        Err(e) => {
            eprintln!("conformance: cannot read {}: {e}", dir.display());
            return ExitCode::FAILURE;
        }
    };
    cases.sort();
    if cases.is_empty() {
        eprintln!("conformance: no *.safetensors case in {}", dir.display());
        return ExitCode::FAILURE;
    }
    let (mut passed, mut failed) = (0, 0);
    // every case as the library runs it by default, then with each LSTM layer direction run by
    // two threads splitting the units, then with the backward pass keeping dgᵀ for the weight
    // gradients (by default only large layers do either)
    for how in ["", " [units split]", " [dgT]"] {
        for case in &cases {
            let name = case.file_name().unwrap_or_default().to_string_lossy();
            let run = || check_case(case);
            let result = match how {
                " [units split]" => with_threads(2, || with_team_min_weights(0, run)),
                " [dgT]" => with_transposed_min_gates(0, run),
                _ => run(),
            };
            match result {
                Ok(n) => {
                    passed += 1;
                    println!("ok   {name}{how} ({n} tensors checked)");
                }
                Err(e) => {
                    failed += 1;
                    println!("FAIL {name}{how}: {e}");
                }
            }
        }
    }
    println!(
        "conformance: {passed} cases passed, {failed} failed ({})",
        dir.display()
    );
    // bf16's error against the references: the layer cases with the products in bf16
    if Bf16Backend::best() != Bf16Backend::Scalar {
        let (mut n, mut errors) = (0, Vec::new());
        for case in &cases {
            let name = case.file_name().unwrap_or_default().to_string_lossy();
            let f = match TensorFile::read(case) {
                Ok(f) if f.meta("kind").is_ok_and(|k| k == "layer") => f,
                _ => continue,
            };
            let mut errs = Vec::new();
            match check_layer(&f, true, &mut errs) {
                Ok(_) => {
                    n += 1;
                    let worst = errs.iter().cloned().fold(0.0, f64::max);
                    println!("ok   {name} [bf16] (worst tensor: relative error {worst:.2e})");
                }
                Err(e) => {
                    failed += 1;
                    println!("FAIL {name} [bf16]: {e}");
                }
            }
            errors.extend(errs);
        }
        errors.sort_by(f64::total_cmp);
        println!(
            "conformance in bf16: {n} layer cases within {BF16_REL:e} of the references; \
             tensors' relative errors: median {:.2e}, largest {:.2e}",
            errors.get(errors.len() / 2).copied().unwrap_or(0.0),
            errors.last().copied().unwrap_or(0.0)
        );
    } else {
        println!("conformance in bf16: SKIPPED (this CPU has neither AMX nor AVX-512 BF16)");
    }
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

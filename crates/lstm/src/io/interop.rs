//! Weights in and out of other frameworks, converted at the border in one place.
//!
//! Inside, every model keeps PyTorch's names, shapes and gate order (LSTM i, f, g, o; GRU r,
//! z, n). The other layouts:
//!
//! | framework | LSTM gates | GRU gates | weights | biases |
//! |---|---|---|---|---|
//! | PyTorch (ours) | i, f, g, o | r, z, n | `weight_ih (G·H, I)`, `weight_hh (G·H, H)` | `bias_ih`, `bias_hh` |
//! | Keras 3 | i, f, c, o | z, r, h | `kernel (I, G·H)`, `recurrent_kernel (H, G·H)` | LSTM/RNN one `bias (G·H)`; GRU (`reset_after`) `(2, 3H)` |
//! | ONNX | i, o, f, c | z, r, h | `W (D, G·H, I)`, `R (D, G·H, H)` | `B (D, 2·G·H)` |
//!
//! PyTorch files ([`export_pytorch`], [`import_pytorch`]) hold the model's own tensor names:
//! `embedding.weight`, `lstm.weight_ih_l0`, ..., `head.weight`, `head.bias` (the names of the
//! training cases in the conformance files), and `id_embedding.weight` `(N, E)` for dense input
//! with sequence ids (a global forecaster's series embedding; Keras' layout has no place for it). A bare `nn.LSTM`/`nn.GRU`/`nn.RNN` state_dict
//! (`weight_ih_l0`, ...) is read with [`import_recurrent_pytorch`].
//!
//! Keras 3 files are its own `.weights.h5` (`export_keras_h5`, `import_keras_h5`: HDF5,
//! written and read by the pure-Rust `hdf5-pure` crate), laid out as `model.save_weights`
//! writes them for a `Sequential([Embedding?, LSTM|GRU|SimpleRNN (or Bidirectional(...))...,
//! Dense])`: one group per layer named by class and order (`layers/lstm`, `layers/lstm_1`,
//! `layers/bidirectional/forward_layer`, ...; the names given to the layers play no part, in
//! Keras' loading either), variables `vars/0, 1, 2` in the order Keras creates them. The file
//! holds no architecture: the model's configuration says what to expect, and every dataset is
//! checked against it. The same variables also travel as safetensors under
//! `"{layer index}/{variable path}"` ([`export_keras`], [`import_keras`]), for the Python lines
//! in the README.
//!
//! ```
//! use lstm::io::interop::{export_pytorch, import_pytorch};
//! use lstm::io::checkpoint::TensorFile;
//! use lstm::model::{Head, InputKind, ModelConfig, SequenceModel};
//! let cfg = ModelConfig {
//!     input: InputKind::OneHot { vocab: 5 },
//!     hidden_size: 8,
//!     head: Head::PerStep { outputs: 5 },
//!     ..Default::default()
//! };
//! let a = SequenceModel::new(&cfg, 1).unwrap();
//! let bytes = export_pytorch(&a, None).unwrap();
//! let mut b = SequenceModel::new(&cfg, 2).unwrap();
//! import_pytorch(&TensorFile::from_bytes(&bytes, "mem").unwrap(), &mut b).unwrap();
//! assert_eq!(a.store.values, b.store.values);
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::cell::Mode;
use crate::error::{Error, Result};
use crate::io::checkpoint::{to_bytes, TensorData, TensorFile};
use crate::model::{InputKind, ModelConfig, SequenceModel};
use crate::params::ParamStore;
use crate::recurrent::{Recurrent, RecurrentConfig};

#[cfg(feature = "keras")]
mod keras_h5;

/// The metadata key under which [`export_pytorch`] stores the model's `config.json`.
pub const CONFIG_KEY: &str = "lstm_config";

/// The weights of `model` as a safetensors file in PyTorch's names and layout, with
/// `config_json` (the model directory's `config.json`) under [`CONFIG_KEY`] when given.
///
/// # Errors
/// [`Error::Format`] if the encoder refuses (it should not).
pub fn export_pytorch(model: &SequenceModel, config_json: Option<&str>) -> Result<Vec<u8>> {
    let mut meta = HashMap::new();
    meta.insert("format".to_string(), "pt".to_string());
    if let Some(c) = config_json {
        meta.insert(CONFIG_KEY.to_string(), c.to_string());
    }
    to_bytes(&model.store, &meta)
}

/// Copies every parameter of `model` from `file` (PyTorch names and shapes). A recurrent
/// tensor may also appear under its bare `nn.LSTM` name (`weight_ih_l0` for
/// `lstm.weight_ih_l0`).
///
/// # Errors
/// [`Error::MissingTensor`] for a parameter the file lacks; [`Error::Shape`] for a shape
/// that differs; [`Error::Format`] for a tensor that is not `F32` or for tensors in the file
/// the model has no place for (a different architecture), or for a non-finite value.
pub fn import_pytorch(file: &TensorFile, model: &mut SequenceModel) -> Result<()> {
    load_named(file, &mut model.store, |name| {
        let mut v = vec![name.to_string()];
        if let Some(bare) = name.strip_prefix("lstm.") {
            v.push(bare.to_string());
        }
        v
    })
}

/// Builds a recurrent stack from a bare `nn.LSTM`/`nn.GRU`/`nn.RNN` state_dict (`weight_ih_l0`,
/// ..., suffix `_reverse`; peephole vectors `peephole_{i,f,o}_l{k}` for that variant).
///
/// # Errors
/// As [`import_pytorch`], and [`Error::Config`] for an invalid configuration.
pub fn import_recurrent_pytorch(
    file: &TensorFile,
    cfg: RecurrentConfig,
) -> Result<(Recurrent, ParamStore)> {
    let mut store = ParamStore::default();
    let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(0);
    let rnn = Recurrent::new(cfg, &mut store, "", &mut rng)?;
    load_named(file, &mut store, |name| vec![name.to_string()])?;
    Ok((rnn, store))
}

/// Loads every tensor of `store` from the first of `candidates(name)` present in `file`, and
/// refuses files with tensors left over.
fn load_named(
    file: &TensorFile,
    store: &mut ParamStore,
    candidates: impl Fn(&str) -> Vec<String>,
) -> Result<()> {
    let fmt = |reason: String| Error::Format {
        path: file.source.clone(),
        reason,
    };
    let mut used = BTreeSet::new();
    let tensors: Vec<(String, Vec<usize>)> = store
        .tensors()
        .iter()
        .map(|t| (t.name.clone(), t.shape.clone()))
        .collect();
    for (name, shape) in tensors {
        let wanted = candidates(&name);
        let Some(key) = wanted.iter().find(|k| file.has(k)).cloned() else {
            // the user's own module names (`encoder.rnn.weight_ih_l0`, `fc.weight`): show what
            // the file holds, and the name it would need
            let held: Vec<&str> = file.tensors.keys().map(String::as_str).take(8).collect();
            // one key alone ending as the tensor does (`weight` alone is no clue: several
            // modules have one)
            let mut alike = file.tensors.keys().filter(|k| {
                wanted
                    .iter()
                    .any(|w| k.ends_with(&format!(".{}", w.rsplit('.').next().unwrap_or(w))))
            });
            let like = match (alike.next(), alike.next()) {
                (Some(k), None) => Some(k),
                _ => None,
            };
            return Err(fmt(format!(
                "missing tensor `{name}`: the file holds {}{}{}",
                held.iter().map(|h| format!("`{h}`")).collect::<Vec<_>>().join(", "),
                if file.tensors.len() > held.len() { ", ..." } else { "" },
                match like {
                    Some(k) => format!(
                        "; `{k}` looks like it under another module's name: save the state_dict with the names `lstm.…`, `embedding.…` and `head.…` (docs/interop.md), e.g. {{k.replace(\"{}\", \"{}\"): v for k, v in sd.items()}}",
                        k.strip_suffix(name.rsplit('.').next().unwrap_or(&name)).unwrap_or(k),
                        name.strip_suffix(name.rsplit('.').next().unwrap_or(&name)).unwrap_or("")
                    ),
                    None => String::new(),
                }
            )));
        };
        let (s, data) = &file.tensors[&key];
        if *s != shape {
            return Err(Error::shape(key, format!("{shape:?}"), format!("{s:?}")));
        }
        let TensorData::F32(v) = data else {
            return Err(fmt(format!(
                "tensor `{key}` is not F32 (save it with `.float()` first)"
            )));
        };
        if let Some(bad) = v.iter().find(|x| !x.is_finite()) {
            return Err(fmt(format!("tensor `{key}` holds {bad}")));
        }
        store.set(&name, &shape, v)?;
        used.insert(key);
    }
    let extra: Vec<&String> = file.tensors.keys().filter(|k| !used.contains(*k)).collect();
    if !extra.is_empty() {
        return Err(fmt(format!(
            "tensors the model has no place for (is the configuration the one the weights were \
             trained with?): {}",
            extra
                .iter()
                .take(8)
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(())
}

/// Keras' gate blocks in our order: the block of ours that Keras puts at position `k`.
fn keras_blocks(mode: Mode) -> &'static [usize] {
    match mode {
        // i, f, c, o = i, f, g, o
        Mode::Lstm => &[0, 1, 2, 3],
        // z, r, h from r, z, n
        Mode::Gru => &[1, 0, 2],
        Mode::RnnTanh | Mode::RnnRelu => &[0],
    }
}

/// The Keras layer class name of a mode.
fn keras_class(mode: Mode) -> &'static str {
    match mode {
        Mode::Lstm => "lstm",
        Mode::Gru => "gru",
        Mode::RnnTanh | Mode::RnnRelu => "simple_rnn",
    }
}

/// Checks that `cfg` has a Keras equivalent.
fn keras_supported(cfg: &ModelConfig) -> Result<()> {
    if cfg.peephole || cfg.coupled || cfg.proj_size > 0 {
        return Err(Error::Config(
            "Keras has no peephole, coupled or projected LSTM layer; this model cannot be \
             written in Keras' layout"
                .into(),
        ));
    }
    if matches!(cfg.input, InputKind::DenseWithIds { .. }) {
        return Err(Error::Config(
            "the model reads a learned embedding of each sequence's id, which a Keras \
             Sequential of Embedding, recurrent and Dense layers has no place for; export its \
             weights with `lstm export pytorch`"
                .into(),
        ));
    }
    Ok(())
}

/// The weights of `model` in Keras 3's layout, as safetensors under
/// `"{layer index}/{variable path}"` for a `Sequential([Embedding?, LSTM..., Dense])` (a
/// bidirectional layer as `Bidirectional(LSTM)`). The LSTM and RNN biases are summed into
/// Keras' single bias (`b_ih + b_hh`); the GRU keeps both (`reset_after=True`).
/// `export_keras_h5` writes the same variables as Keras' own `.weights.h5`.
///
/// # Errors
/// [`Error::Config`] for peephole, coupled or projected LSTMs (Keras has none).
pub fn export_keras(model: &SequenceModel) -> Result<Vec<u8>> {
    let (out, _) = keras_store(model)?;
    let mut meta = HashMap::new();
    meta.insert("format".to_string(), "keras-weights".to_string());
    to_bytes(&out, &meta)
}

/// Where [`keras_store`] puts a variable: its key in the safetensors exchange file
/// (`"{layer index}/{variable path}"`) and its dataset in Keras' `.weights.h5`.
#[cfg_attr(not(feature = "keras"), allow(dead_code))]
struct KerasVar {
    key: String,
    h5: String,
}

/// The variables of `model` in Keras' layout (under their safetensors keys), with the
/// `.weights.h5` dataset of each.
fn keras_store(model: &SequenceModel) -> Result<(ParamStore, Vec<KerasVar>)> {
    let cfg = model.config();
    keras_supported(cfg)?;
    let rc = cfg.recurrent();
    let (g, h) = (rc.mode.gates(), rc.hidden_size);
    let blocks = keras_blocks(rc.mode);
    let mut out = ParamStore::default();
    let mut vars = Vec::new();
    let get = |n: &str| -> Result<Vec<f32>> {
        model
            .store
            .get(n)
            .map(|v| v.to_vec())
            .ok_or_else(|| Error::MissingTensor(n.to_string()))
    };
    let mut put = |name: String, h5: String, shape: &[usize], data: &[f32]| {
        out.add(&name, shape);
        vars.push(KerasVar {
            key: name.clone(),
            h5,
        });
        out.set(&name, shape, data)
    };
    let mut layer = 0;
    if let InputKind::Embedding { vocab, dim } = cfg.input {
        put(
            "0/embedding/embeddings".into(),
            "layers/embedding/vars/0".into(),
            &[vocab, dim],
            &get("embedding.weight")?,
        )?;
        layer += 1;
    }
    let class = keras_class(rc.mode);
    for l in 0..rc.num_layers {
        for d in 0..rc.directions() {
            let sfx = if d == 0 { "" } else { "_reverse" };
            let path = keras_path(layer, class, rc.bidirectional, d);
            let h5 = keras_h5_cell(l, class, rc.bidirectional, d);
            let w_ih = get(&format!("lstm.weight_ih_l{l}{sfx}"))?;
            let w_hh = get(&format!("lstm.weight_hh_l{l}{sfx}"))?;
            let input = w_ih.len() / (g * h);
            // kernel (I, G·H): column block k = our block blocks[k], transposed
            let kernel = to_keras_kernel(&w_ih, input, h, blocks);
            let recurrent = to_keras_kernel(&w_hh, h, h, blocks);
            put(
                format!("{path}/kernel"),
                format!("{h5}/0"),
                &[input, g * h],
                &kernel,
            )?;
            put(
                format!("{path}/recurrent_kernel"),
                format!("{h5}/1"),
                &[h, g * h],
                &recurrent,
            )?;
            if rc.bias {
                let b_ih = reorder(&get(&format!("lstm.bias_ih_l{l}{sfx}"))?, h, blocks);
                let b_hh = reorder(&get(&format!("lstm.bias_hh_l{l}{sfx}"))?, h, blocks);
                if rc.mode == Mode::Gru {
                    let both: Vec<f32> = b_ih.iter().chain(&b_hh).copied().collect();
                    put(
                        format!("{path}/bias"),
                        format!("{h5}/2"),
                        &[2, g * h],
                        &both,
                    )?;
                } else {
                    let sum: Vec<f32> = b_ih.iter().zip(&b_hh).map(|(a, b)| a + b).collect();
                    put(format!("{path}/bias"), format!("{h5}/2"), &[g * h], &sum)?;
                }
            }
        }
        layer += 1;
    }
    let hw = get("head.weight")?;
    let outs = cfg.head.outputs();
    let feat = hw.len() / outs;
    let mut kernel = vec![0.0; feat * outs];
    for o in 0..outs {
        for f in 0..feat {
            kernel[f * outs + o] = hw[o * feat + f];
        }
    }
    put(
        format!("{layer}/dense/kernel"),
        "layers/dense/vars/0".into(),
        &[feat, outs],
        &kernel,
    )?;
    put(
        format!("{layer}/dense/bias"),
        "layers/dense/vars/1".into(),
        &[outs],
        &get("head.bias")?,
    )?;
    Ok((out, vars))
}

/// The weights of `model` as Keras 3's own `.weights.h5` file: the variables of
/// [`export_keras`] at the places `model.save_weights` puts them for the same
/// `Sequential([Embedding?, LSTM|GRU|SimpleRNN (or Bidirectional(...))..., Dense])`
/// (`layers/lstm/cell/vars/0`, ...), so that `model.load_weights("m.weights.h5")` loads them.
///
/// # Errors
/// [`Error::Config`] for peephole, coupled or projected LSTMs (Keras has none);
/// [`Error::Format`] if the HDF5 encoder refuses (it should not).
#[cfg(feature = "keras")]
pub fn export_keras_h5(model: &SequenceModel) -> Result<Vec<u8>> {
    let (store, vars) = keras_store(model)?;
    keras_h5::write(&store, &vars, keras_class(model.config().mode))
}

/// Copies the weights of a Keras 3 `.weights.h5` file (`bytes`, as written by
/// `model.save_weights`; `source` names it in errors) into `model`, whose configuration must
/// describe the same network. The datasets are found where Keras puts them for that network
/// (layers named by class and order: `layers/lstm`, `layers/lstm_1`, ...), then converted as
/// [`import_keras`] does. An optimizer state saved with the weights is ignored.
///
/// # Errors
/// [`Error::Config`] if the model has no Keras equivalent; [`Error::Format`] naming `source` if
/// the bytes are not HDF5, not Keras 3's layout, or a layer or shape differs from the
/// configuration, for weights the configuration has no place for, and for non-finite or
/// non-float values.
#[cfg(feature = "keras")]
pub fn import_keras_h5(bytes: &[u8], source: &str, model: &mut SequenceModel) -> Result<()> {
    let (want, vars) = keras_store(model)?;
    let file = keras_h5::read(bytes, source, &want, &vars)?;
    import_keras(&file, model)
}

/// Whether `bytes` start like an HDF5 file (the signature at one of the offsets HDF5 allows).
#[cfg(feature = "keras")]
pub fn is_hdf5(bytes: &[u8]) -> bool {
    hdf5_pure::is_hdf5_bytes(bytes)
}

/// The `.weights.h5` group holding the variables of recurrent layer `l` (direction `d`).
/// Keras names a model's layers by class, numbering repeats (`lstm`, `lstm_1`, ...), whatever
/// names they were given.
fn keras_h5_cell(l: usize, class: &str, bidirectional: bool, d: usize) -> String {
    let n = if l == 0 {
        String::new()
    } else {
        format!("_{l}")
    };
    if bidirectional {
        let side = if d == 0 { "forward" } else { "backward" };
        format!("layers/bidirectional{n}/{side}_layer/cell/vars")
    } else {
        format!("layers/{class}{n}/cell/vars")
    }
}

/// The variable path of a recurrent layer's weights as Keras 3 names them.
fn keras_path(layer: usize, class: &str, bidirectional: bool, d: usize) -> String {
    if bidirectional {
        let side = if d == 0 { "forward" } else { "backward" };
        format!("{layer}/bidirectional/{side}_{class}/{class}_cell")
    } else {
        format!("{layer}/{class}/{class}_cell")
    }
}

/// `W (G·H, I)` in our block order to a Keras kernel `(I, G·H)` in Keras' block order.
fn to_keras_kernel(w: &[f32], input: usize, h: usize, blocks: &[usize]) -> Vec<f32> {
    let gh = blocks.len() * h;
    let mut k = vec![0.0; input * gh];
    for (kb, &ob) in blocks.iter().enumerate() {
        for u in 0..h {
            for c in 0..input {
                k[c * gh + kb * h + u] = w[(ob * h + u) * input + c];
            }
        }
    }
    k
}

/// A Keras kernel `(I, G·H)` back to `W (G·H, I)` in our block order.
fn from_keras_kernel(k: &[f32], input: usize, h: usize, blocks: &[usize]) -> Vec<f32> {
    let gh = blocks.len() * h;
    let mut w = vec![0.0; gh * input];
    for (kb, &ob) in blocks.iter().enumerate() {
        for u in 0..h {
            for c in 0..input {
                w[(ob * h + u) * input + c] = k[c * gh + kb * h + u];
            }
        }
    }
    w
}

/// A bias in our block order to Keras' block order.
fn reorder(b: &[f32], h: usize, blocks: &[usize]) -> Vec<f32> {
    blocks
        .iter()
        .flat_map(|&ob| b[ob * h..(ob + 1) * h].iter().copied())
        .collect()
}

/// Keras' block order back to ours.
fn unorder(b: &[f32], h: usize, blocks: &[usize]) -> Vec<f32> {
    let mut out = vec![0.0; b.len()];
    for (kb, &ob) in blocks.iter().enumerate() {
        out[ob * h..(ob + 1) * h].copy_from_slice(&b[kb * h..(kb + 1) * h]);
    }
    out
}

/// Copies a Keras model's weights (the layout of [`export_keras`]) into `model`, whose
/// configuration must describe the same network. An LSTM or RNN bias becomes `b_ih` (and
/// `b_hh = 0`): the same function, since only their sum matters.
///
/// # Errors
/// [`Error::Config`] if the model has no Keras equivalent; [`Error::Format`] if the file's
/// layers do not match the configuration (their count, kind, shapes) or hold non-finite or
/// non-`F32` values.
pub fn import_keras(file: &TensorFile, model: &mut SequenceModel) -> Result<()> {
    let cfg = model.config().clone();
    keras_supported(&cfg)?;
    let rc = cfg.recurrent();
    let (g, h) = (rc.mode.gates(), rc.hidden_size);
    let blocks = keras_blocks(rc.mode);
    let fmt = |reason: String| Error::Format {
        path: file.source.clone(),
        reason,
    };
    // group the file's variables by layer index
    let mut layers: BTreeMap<usize, Vec<&str>> = BTreeMap::new();
    for name in file.tensors.keys() {
        let (idx, _) = name
            .split_once('/')
            .ok_or_else(|| fmt(format!("`{name}` is not named `<layer>/<path>`")))?;
        let idx: usize = idx
            .parse()
            .map_err(|_| fmt(format!("`{name}` does not start with a layer number")))?;
        layers.entry(idx).or_default().push(name);
    }
    let layers: Vec<Vec<&str>> = layers.into_values().collect();
    let want = rc.num_layers + 1 + matches!(cfg.input, InputKind::Embedding { .. }) as usize;
    if layers.len() != want {
        return Err(fmt(format!(
            "{} layers with weights, the configuration has {want} (embedding, {} recurrent, dense)",
            layers.len(),
            rc.num_layers
        )));
    }
    let find = |names: &[&str], suffix: &str, side: Option<&str>| -> Result<Vec<f32>> {
        let hit: Vec<&&str> = names
            .iter()
            .filter(|n| n.ends_with(suffix) && side.is_none_or(|s| n.contains(s)))
            .collect();
        match hit.as_slice() {
            [one] => {
                let v = file.f32(one)?;
                if v.iter().any(|x| !x.is_finite()) {
                    return Err(fmt(format!("`{one}` holds a non-finite value")));
                }
                Ok(v)
            }
            [] => Err(Error::MissingTensor(format!(
                "a variable ending in `{suffix}`{} among {names:?}",
                side.map(|s| format!(" under `{s}`")).unwrap_or_default()
            ))),
            _ => Err(fmt(format!("several variables end in `{suffix}`: {hit:?}"))),
        }
    };
    let mut set = |name: String, data: Vec<f32>| -> Result<()> {
        let shape = model
            .store
            .info(&name)
            .map(|t| t.shape.clone())
            .ok_or_else(|| Error::MissingTensor(name.clone()))?;
        if shape.iter().product::<usize>() != data.len() {
            return Err(Error::shape(
                name,
                format!("{shape:?}"),
                format!("{} values", data.len()),
            ));
        }
        model.store.set(&name, &shape, &data)
    };
    let mut li = 0;
    if matches!(cfg.input, InputKind::Embedding { .. }) {
        set(
            "embedding.weight".into(),
            find(&layers[0], "/embeddings", None)?,
        )?;
        li = 1;
    }
    for l in 0..rc.num_layers {
        let names = &layers[li + l];
        for d in 0..rc.directions() {
            let sfx = if d == 0 { "" } else { "_reverse" };
            let side = rc
                .bidirectional
                .then_some(if d == 0 { "/forward_" } else { "/backward_" });
            let kernel = find(names, "/kernel", side)?;
            let recurrent = find(names, "/recurrent_kernel", side)?;
            let input = kernel.len() / (g * h);
            if input * g * h != kernel.len() || recurrent.len() != h * g * h {
                return Err(fmt(format!(
                    "layer {}: kernel of {} and recurrent kernel of {} values do not fit {} \
                     units of a {:?} layer",
                    li + l,
                    kernel.len(),
                    recurrent.len(),
                    h,
                    rc.mode
                )));
            }
            set(
                format!("lstm.weight_ih_l{l}{sfx}"),
                from_keras_kernel(&kernel, input, h, blocks),
            )?;
            set(
                format!("lstm.weight_hh_l{l}{sfx}"),
                from_keras_kernel(&recurrent, h, h, blocks),
            )?;
            if rc.bias {
                let b = find(names, "/bias", side)?;
                let (bi, bh) = if rc.mode == Mode::Gru {
                    if b.len() != 2 * g * h {
                        return Err(fmt(format!(
                            "layer {}: a GRU bias of {} values; Keras' reset_after=True \
                             layout has {}",
                            li + l,
                            b.len(),
                            2 * g * h
                        )));
                    }
                    (
                        unorder(&b[..g * h], h, blocks),
                        unorder(&b[g * h..], h, blocks),
                    )
                } else {
                    (unorder(&b, h, blocks), vec![0.0; g * h])
                };
                set(format!("lstm.bias_ih_l{l}{sfx}"), bi)?;
                set(format!("lstm.bias_hh_l{l}{sfx}"), bh)?;
            }
        }
    }
    let names = &layers[li + rc.num_layers];
    let kernel = find(names, "/kernel", None)?;
    let outs = cfg.head.outputs();
    let feat = kernel.len() / outs.max(1);
    let mut hw = vec![0.0; kernel.len()];
    for o in 0..outs {
        for f in 0..feat {
            hw[o * feat + f] = kernel[f * outs + o];
        }
    }
    set("head.weight".into(), hw)?;
    set("head.bias".into(), find(names, "/bias", None)?)?;
    Ok(())
}

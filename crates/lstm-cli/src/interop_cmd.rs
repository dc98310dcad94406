//! `lstm import` and `lstm export`: models in and out of PyTorch, Keras and ONNX.

use std::path::Path;

use anyhow::{bail, Context, Result};
use lstm::io::checkpoint::TensorFile;
use lstm::io::interop;
use lstm::model::SequenceModel;
use lstm::tasks::modeldir::{self, ModelMeta, Task, TrainingState};

use crate::args::{ExportArgs, ExportFormat, ImportArgs, ImportFormat};

/// Whether the file `out` may be replaced by an export in `format`: an empty file (from
/// `mktemp`, `touch`) or a file of what the export writes (safetensors, HDF5, or ONNX: a
/// `.onnx` name or a protobuf's first field), not another file that happens to be named as
/// `--out`.
fn replaceable(out: &Path, format: ExportFormat) -> bool {
    use std::io::Read;
    if std::fs::metadata(out).is_ok_and(|m| m.len() == 0) {
        return true;
    }
    let mut head = [0u8; 9];
    let n = std::fs::File::open(out)
        .and_then(|f| f.take(9).read(&mut head))
        .unwrap_or(0);
    let safetensors = n == 9 && head[8] == b'{';
    let hdf5 = interop::is_hdf5(&head[..n]);
    let onnx = out
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("onnx"))
        || (n > 0 && head[0] == 0x08);
    match format {
        ExportFormat::Pytorch => safetensors,
        ExportFormat::Keras => safetensors || hdf5,
        ExportFormat::Onnx => onnx,
    }
}

pub fn export(a: &ExportArgs) -> Result<()> {
    // Keras reads a `.keras` name as a whole-model zip archive, which this does not write
    if matches!(a.format, ExportFormat::Keras)
        && a.out
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("keras"))
    {
        bail!(
            "--out {}: Keras reads a .keras file as a whole saved model (a zip archive), which this does not write; name the weights file NAME.weights.h5 and load it with model.load_weights",
            a.out.display()
        );
    }
    crate::paths::check_out_file(&a.out, Some(&a.model), &[])?;
    crate::paths::check_file_target("--out", &a.out)?;
    if a.out.exists() && !(a.out.is_file() && replaceable(&a.out, a.format)) {
        bail!(
            "--out {} exists and is not a file this export writes ({}); refusing to replace it: \
             choose another --out, or remove it first",
            a.out.display(),
            match a.format {
                ExportFormat::Pytorch => "safetensors",
                ExportFormat::Keras => "safetensors or HDF5",
                ExportFormat::Onnx => "ONNX",
            }
        );
    }
    let l = modeldir::load_for_use(&a.model)
        .with_context(|| format!("cannot load the model in {}", a.model.display()))?;
    // a format that cannot hold the model refuses it before any note about it
    let bytes = match a.format {
        ExportFormat::Pytorch => {
            let cfg = shared_config(&a.model)?;
            interop::export_pytorch(&l.model, Some(&cfg))?
        }
        ExportFormat::Keras if is_h5_name(&a.out) => interop::export_keras_h5(&l.model)?,
        ExportFormat::Keras => interop::export_keras(&l.model)?,
        ExportFormat::Onnx => {
            let graph = match l.meta.task {
                Task::Text => lstm::io::onnx::Graph::Text,
                Task::Forecast => lstm::io::onnx::Graph::Forecast,
                Task::Classify => lstm::io::onnx::Graph::Classify,
            };
            // the config (scaler, transform, vocabulary, labels) travels with the graph
            let cfg = shared_config(&a.model)?;
            lstm::io::onnx::export_with_metadata(&l.model, graph, &[("lstm_config", &cfg)])?
        }
    };
    // nn.LSTM has neither variant: a coupled model's tensors load into it without an error and
    // compute another function (its input gate from weights this model never uses), a
    // peephole model's extra tensors are refused by a strict load_state_dict
    let c = l.model.config();
    if matches!(a.format, ExportFormat::Pytorch) && (c.coupled || c.peephole) {
        eprintln!(
            "warning: a {} LSTM has no nn.LSTM equivalent: {}; the file is for `lstm import pytorch` or a cell of your own (docs/interop.md), and `lstm export onnx` holds the whole cell",
            match (c.coupled, c.peephole) {
                (true, true) => "peephole and coupled",
                (true, false) => "coupled (i = 1 - f)",
                _ => "peephole",
            },
            if c.coupled {
                "nn.LSTM loads these weights without an error and computes another function (its input gate from the rows this model does not use)"
            } else {
                "nn.LSTM's load_state_dict refuses its lstm.peephole_* tensors (and strict=False drops them, computing another function)"
            }
        );
    }
    // a model of several networks: every format holds the first one (said here, once)
    if !l.members.is_empty() {
        let n = l.members.len() + 1;
        let how = if l.meta.task == Task::Classify {
            format!("this classifier averages the class probabilities of {n} models")
        } else {
            format!("this forecaster combines the forecasts of {n} models by their median")
        };
        eprintln!(
            "note: {how}; the export holds the first one's weights alone (it predicts as that model alone would), the others are {} in the model directory (safetensors under the same PyTorch names)",
            (1..=l.members.len())
                .map(modeldir::member_file)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if matches!(a.format, ExportFormat::Keras) {
        if matches!(l.model.config().head, lstm::model::Head::Pooled { .. }) {
            eprintln!(
                "note: this classifier's Dense reads the last step's, the largest and the mean output of the last recurrent layer, concatenated (3 x its units): in Keras a functional model with Concatenate([last step, GlobalMaxPooling1D(), GlobalAveragePooling1D()]) before the Dense holds it, a Sequential one cannot"
            );
        }
        if l.meta.global.is_some() {
            eprintln!(
                "note: a global forecaster's inputs (scaled values, lags, calendar and flags) and its distribution's parameters are computed by lstm, not by Keras layers: the file holds the network's weights alone"
            );
        }
    }
    modeldir::write_atomic(&a.out, &bytes)
        .with_context(|| format!("cannot write {}", a.out.display()))?;
    eprintln!(
        "wrote {} ({} bytes, {} model)",
        a.out.display(),
        bytes.len(),
        l.meta.task
    );
    Ok(())
}

/// The model's `config.json` as an exported file carries it: without the record of the data
/// it trained on (`seen`, `texts_seen`: a hash of each training text would tell whether a
/// given text was in it) and without the local paths of its data files.
fn shared_config(model: &Path) -> Result<String> {
    let text = std::fs::read_to_string(model.join("config.json"))
        .with_context(|| format!("cannot read {}/config.json", model.display()))?;
    let mut v: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("cannot read {}/config.json", model.display()))?;
    if let Some(o) = v.as_object_mut() {
        o.remove("seen");
        o.remove("texts_seen");
        if let Some(s) = o.get_mut("settings").and_then(|s| s.as_object_mut()) {
            for k in ["data", "val"] {
                if s.contains_key(k) {
                    s.insert(k.into(), serde_json::Value::Null);
                }
            }
        }
    }
    Ok(serde_json::to_string_pretty(&v)?)
}

pub fn import(a: &ImportArgs) -> Result<()> {
    if a.out.join("config.json").exists() {
        bail!(
            "{} already holds a model; choose another --out (nothing was changed)",
            a.out.display()
        );
    }
    let bytes = std::fs::read(&a.weights)
        .map_err(|e| lstm::Error::read(&a.weights.display().to_string(), e))
        .with_context(|| format!("cannot read the weights in {}", a.weights.display()))?;
    // Keras' own .weights.h5 (by its name, or by its HDF5 signature), else safetensors
    let h5 = matches!(a.format, ImportFormat::Keras)
        && (is_h5_name(&a.weights) || interop::is_hdf5(&bytes));
    if matches!(a.format, ImportFormat::Pytorch) && interop::is_hdf5(&bytes) {
        bail!(
            "{} is an HDF5 file, not safetensors; for Keras' .weights.h5 use `lstm import keras`",
            a.weights.display()
        );
    }
    let file = if h5 {
        None
    } else {
        Some(
            TensorFile::from_bytes(&bytes, &a.weights.display().to_string())
                .with_context(|| format!("cannot read the weights in {}", a.weights.display()))?,
        )
    };
    let config_json = match &a.config {
        Some(p) => std::fs::read_to_string(p)
            .with_context(|| format!("cannot read the configuration {}", p.display()))?,
        None => match file
            .as_ref()
            .and_then(|f| f.metadata.get(interop::CONFIG_KEY))
        {
            Some(c) => c.clone(),
            None if h5 => bail!(
                "{} is a Keras .weights.h5, which holds only the weights, not the network's \
                 shape; pass --config with a config.json that describes the same network (layer \
                 kind, sizes, vocabulary or series; see docs/interop.md)",
                a.weights.display()
            ),
            None => bail!(
                "{} carries no configuration; pass --config with a config.json that describes the \
                 network (see docs/interop.md)",
                a.weights.display()
            ),
        },
    };
    // read as a model directory's is (the format and version first; a forecaster's
    // `forecaster` made the one its description is of: a review, 2026-12-07, found an import
    // of a window forecaster saying "global")
    let mut meta: ModelMeta = modeldir::meta_from_json(config_json.as_bytes()).map_err(|why| {
        anyhow::anyhow!("the configuration is not a valid lstm config.json: {why}")
    })?;
    let mut model =
        SequenceModel::new(&meta.model, 0).context("invalid network in the configuration")?;
    let what = match &a.config {
        Some(c) => format!(
            "the weights in {} do not fit the network of {}",
            a.weights.display(),
            c.display()
        ),
        None => format!(
            "the weights in {} do not fit the configuration they carry",
            a.weights.display()
        ),
    };
    let imported = match (a.format, &file) {
        (ImportFormat::Pytorch, Some(f)) => interop::import_pytorch(f, &mut model),
        (ImportFormat::Keras, Some(f)) => interop::import_keras(f, &mut model),
        (_, None) => interop::import_keras_h5(&bytes, &a.weights.display().to_string(), &mut model),
    };
    if let Err(e) = imported {
        // a vocabulary's size off by one: lstm's unknown token, the last id, which the
        // other framework's model was not trained with
        let vocab = meta.vocab.as_ref().map(|v| v.len());
        let dims = |s: &str| -> Vec<usize> {
            s.split(|c: char| !c.is_ascii_digit())
                .filter_map(|d| d.parse().ok())
                .collect()
        };
        let hint = match (&e, vocab) {
            (lstm::Error::Shape { expected, got, .. }, Some(n))
                if dims(expected).contains(&n) && dims(got).contains(&(n - 1)) =>
            {
                format!(
                " (this configuration's vocabulary has {n} ids: its {} tokens and, last, lstm's unknown token; a model trained elsewhere over {} tokens needs a zero column added to its input weights or a row to its embedding{}, for that id: docs/interop.md)",
                    n - 1,
                    n - 1,
                    // a classifier's outputs are its labels, not its tokens
                    if meta.task == Task::Text {
                        ", and a row to its output layer"
                    } else {
                        ""
                    }
                )
            }
            _ => String::new(),
        };
        return Err(anyhow::Error::from(e).context(format!("{what}{hint}")));
    }
    // a file holds one network: a model of several (a classifier's or a small forecaster's
    // further models) is imported as its first alone
    let further = modeldir::further_models(&meta);
    if further > 0 {
        match meta.task {
            Task::Classify => meta.settings.members = 1,
            _ => {
                if let Some(g) = meta.global.as_mut() {
                    g.members = 0;
                }
            }
        }
        eprintln!(
            "note: the configuration names {} models combined; the file holds one network, imported alone (it predicts as the first model would)",
            further + 1
        );
    }
    // written beside --out and loaded back with every check a model directory gets, then moved
    // into place: a configuration that does not fit the weights leaves nothing behind
    let out = crate::paths::resolved(&a.out);
    let name = out
        .file_name()
        .map_or_else(|| "model".into(), |n| n.to_string_lossy().into_owned());
    let staging = out.with_file_name(format!(".{name}.import-{}", std::process::id()));
    let pending = modeldir::Pending::new(&staging);
    let checked = modeldir::save(&staging, &meta, &model, &TrainingState::default())
        .with_context(|| format!("cannot write the model into {}", a.out.display()))
        .and_then(|()| {
            // the checks name the staged copy, which is removed: name the user's files
            let config_name = match &a.config {
                Some(c) => c.display().to_string(),
                None => format!("the configuration in {}", a.weights.display()),
            };
            modeldir::load(&staging)
                .map_err(|e| {
                    anyhow::anyhow!(e
                        .to_string()
                        .replace(
                            &staging.join("config.json").display().to_string(),
                            &config_name
                        )
                        .replace(&staging.display().to_string(), &a.out.display().to_string()))
                })
                .with_context(|| {
                    format!(
                        "the configuration does not fit the weights of {}; nothing was written",
                        a.weights.display()
                    )
                })
        })
        .and_then(|_| {
            modeldir::while_writing(|| move_into(&staging, &out, pending))
                .with_context(|| format!("cannot write the model into {}", a.out.display()))
        });
    if let Err(e) = checked {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e);
    }
    eprintln!("imported a {} model into {}", meta.task, a.out.display());
    Ok(())
}

/// Moves the checked model directory `staging` to `out`: renamed when `out` does not exist,
/// else its files moved in (the manifest last), none of them replacing a file already there.
fn move_into(staging: &Path, out: &Path, pending: modeldir::Pending) -> Result<()> {
    if !out.exists() {
        return Ok(std::fs::rename(staging, out)?);
    }
    // once files move into an existing --out, a signal leaves the staging directory (the
    // manifest is moved last) rather than removing the rest of the model
    drop(pending);
    let mut names: Vec<std::ffi::OsString> = std::fs::read_dir(staging)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<std::io::Result<_>>()?;
    if let Some(n) = names.iter().find(|n| out.join(n).exists()) {
        bail!(
            "{} already holds a file named {}: import into a new or empty directory (nothing was written)",
            out.display(),
            n.to_string_lossy()
        );
    }
    // the manifest last: until it is there the directory does not claim to be complete
    names.sort_by_key(|n| n == modeldir::MANIFEST);
    for n in &names {
        std::fs::rename(staging.join(n), out.join(n))?;
    }
    std::fs::remove_dir(staging)?;
    Ok(())
}

/// Whether a file name asks for HDF5 (`.h5`, `.hdf5`; Keras' `NAME.weights.h5`).
fn is_h5_name(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("h5") || e.eq_ignore_ascii_case("hdf5"))
}

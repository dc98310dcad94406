//! A model directory: everything needed to use a trained model or resume its training.
//!
//! ```text
//! DIR/config.json            format, task, model config, vocabulary/labels/scaler, settings
//! DIR/model.safetensors      the weights, under PyTorch's names
//! DIR/training_state.json    step, RNG states, loss history (for --resume)
//! DIR/optimizer.safetensors  the optimizer moments, under the weights' names
//! ```
//!
//! Every file is written atomically (temporary file, flush and sync, rename), so an
//! interrupted save leaves the previous version whole.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::checkpoint::{to_bytes, TensorFile};
use crate::error::{Error, Result};
use crate::model::{ModelConfig, SequenceModel};
use crate::params::ParamStore;
use crate::series::SeriesSpec;
use crate::settings::Settings;
use crate::vocab::Vocab;

/// The `format` field of every `config.json` this library writes.
pub const FORMAT: &str = "lstm-model";
/// The current format version; files from a newer version are refused.
pub const FORMAT_VERSION: u32 = 1;

/// The job a model was trained for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    /// Character (or word) language model.
    Text,
    /// Time-series forecaster.
    Forecast,
    /// Sequence classifier.
    Classify,
}

impl std::fmt::Display for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Task::Text => "text",
            Task::Forecast => "forecast",
            Task::Classify => "classify",
        })
    }
}

/// Contents of `config.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelMeta {
    /// Always [`FORMAT`].
    pub format: String,
    /// [`FORMAT_VERSION`] at the time of writing.
    pub format_version: u32,
    /// What the model does.
    pub task: Task,
    /// The network.
    pub model: ModelConfig,
    /// Vocabulary (text, classify).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vocab: Option<Vocab>,
    /// Class labels by id (classify).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<String>>,
    /// Columns, transform and scaler (forecast).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series: Option<SeriesSpec>,
    /// The resolved training settings.
    pub settings: Settings,
}

/// Contents of `training_state.json`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TrainingState {
    /// Optimizer steps taken.
    pub step: u64,
    /// Training items (tokens, windows, examples) seen.
    pub items_seen: u64,
    /// Wall-clock seconds spent training so far.
    pub seconds: f64,
    /// RNG for dropout masks.
    pub model_rng: Option<ChaCha8Rng>,
    /// RNG for batch sampling and shuffling.
    pub data_rng: Option<ChaCha8Rng>,
    /// Data position (task-specific: epoch order offset).
    pub data_position: u64,
    /// `(step, training loss)` history (smoothed per logging interval).
    pub train_loss: Vec<(u64, f32)>,
    /// `(step, validation loss)` history.
    pub val_loss: Vec<(u64, f32)>,
}

/// Writes `bytes` to `path` atomically: temporary file in the same directory, flush, fsync,
/// rename.
///
/// # Errors
/// [`Error::Io`] naming the file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let io = |source| Error::Io {
        path: path.display().to_string(),
        source,
    };
    let tmp: PathBuf = {
        let mut name = path.file_name().unwrap_or_default().to_os_string();
        name.push(format!(".tmp{}", std::process::id()));
        path.with_file_name(name)
    };
    {
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(bytes).map_err(io)?;
        f.sync_all().map_err(io)?;
    }
    std::fs::rename(&tmp, path).map_err(io)?;
    if let Some(dir) = path.parent() {
        if let Ok(d) = std::fs::File::open(if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        }) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.display().to_string(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| Error::Format {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

fn optimizer_store(model: &SequenceModel, which: &[f32]) -> ParamStore {
    let mut s = ParamStore::default();
    for t in model.store.tensors() {
        let r = s.add(&t.name, &t.shape);
        s.values[r].copy_from_slice(&which[t.range()]);
    }
    s
}

/// Saves a model, its metadata and its training state into `dir` (created if needed).
///
/// # Errors
/// [`Error::Io`] if the directory or a file cannot be written.
pub fn save(
    dir: &Path,
    meta: &ModelMeta,
    model: &SequenceModel,
    state: &TrainingState,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|source| Error::Io {
        path: dir.display().to_string(),
        source,
    })?;
    // one metadata entry: the safetensors header is a JSON map written in hash order, so a
    // single key keeps checkpoint files byte-identical for identical weights
    let mut m = HashMap::new();
    m.insert(
        "format".to_string(),
        format!("{FORMAT}/{FORMAT_VERSION} {}", meta.task),
    );
    write_atomic(&dir.join("model.safetensors"), &to_bytes(&model.store, &m)?)?;
    let mut om = HashMap::new();
    om.insert("step".to_string(), model.optimizer.step.to_string());
    let moments = optimizer_store(model, &model.optimizer.m);
    write_atomic(
        &dir.join("optimizer_m.safetensors"),
        &to_bytes(&moments, &om)?,
    )?;
    if !model.optimizer.v.is_empty() {
        let v = optimizer_store(model, &model.optimizer.v);
        write_atomic(&dir.join("optimizer_v.safetensors"), &to_bytes(&v, &om)?)?;
    }
    let json = |v: &dyn erased::Json| v.to_json();
    write_atomic(&dir.join("training_state.json"), json(state).as_bytes())?;
    write_atomic(&dir.join("config.json"), json(meta).as_bytes())?;
    Ok(())
}

mod erased {
    pub trait Json {
        fn to_json(&self) -> String;
    }
    impl<T: serde::Serialize> Json for T {
        fn to_json(&self) -> String {
            serde_json::to_string_pretty(self).expect("plain data serialises") + "\n"
        }
    }
}

/// A loaded model directory.
#[derive(Debug)]
pub struct Loaded {
    /// `config.json`.
    pub meta: ModelMeta,
    /// The model with its weights (and optimizer moments when present).
    pub model: SequenceModel,
    /// `training_state.json` (default if absent).
    pub state: TrainingState,
}

/// Loads a model directory, checking format, version and every tensor's shape.
///
/// # Errors
/// [`Error::Io`] if a file is missing, [`Error::Format`] if a file is malformed, from a newer
/// version or does not match the configuration.
pub fn load(dir: &Path) -> Result<Loaded> {
    if !dir.is_dir() {
        return Err(Error::Format {
            path: dir.display().to_string(),
            reason: "not a model directory (it does not exist or is not a directory)".into(),
        });
    }
    let cfg_path = dir.join("config.json");
    let raw: serde_json::Value = read_json(&cfg_path)?;
    let fmt = |reason: String| Error::Format {
        path: cfg_path.display().to_string(),
        reason,
    };
    if raw.get("format").and_then(|v| v.as_str()) != Some(FORMAT) {
        return Err(fmt(format!(
            "not an `{FORMAT}` config (no \"format\": \"{FORMAT}\")"
        )));
    }
    let version = raw
        .get("format_version")
        .and_then(|v| v.as_u64())
        .unwrap_or(0);
    if version > FORMAT_VERSION as u64 {
        return Err(fmt(format!(
            "written by a newer version of lstm (format {version}; this build reads up to {FORMAT_VERSION}): upgrade lstm"
        )));
    }
    let mut meta: ModelMeta = serde_json::from_value(raw).map_err(|e| fmt(e.to_string()))?;
    if let Some(v) = meta.vocab.as_mut() {
        v.rebuild_index();
    }
    let mut model =
        SequenceModel::new(&meta.model, meta.settings.seed).map_err(|e| fmt(e.to_string()))?;
    let wpath = dir.join("model.safetensors");
    let weights = TensorFile::read(&wpath)?;
    for t in model.store.tensors().to_vec() {
        let shape = weights.shape(&t.name).map_err(|_| Error::Format {
            path: wpath.display().to_string(),
            reason: format!("tensor `{}` is missing", t.name),
        })?;
        if shape != t.shape.as_slice() {
            return Err(Error::Format {
                path: wpath.display().to_string(),
                reason: format!(
                    "tensor `{}` has shape {:?}, the config needs {:?}",
                    t.name, shape, t.shape
                ),
            });
        }
        let v = weights.f32(&t.name).map_err(|e| Error::Format {
            path: wpath.display().to_string(),
            reason: e.to_string(),
        })?;
        if v.iter().any(|x| !x.is_finite()) {
            return Err(Error::Format {
                path: wpath.display().to_string(),
                reason: format!("tensor `{}` holds NaN or infinite values", t.name),
            });
        }
        model.store.set(&t.name, &t.shape, &v)?;
    }
    let state_path = dir.join("training_state.json");
    let state: TrainingState = if state_path.exists() {
        read_json(&state_path)?
    } else {
        TrainingState::default()
    };
    for (file, is_m) in [
        ("optimizer_m.safetensors", true),
        ("optimizer_v.safetensors", false),
    ] {
        let p = dir.join(file);
        if !p.exists() {
            continue;
        }
        let f = TensorFile::read(&p)?;
        let mut buf = vec![0.0f32; model.store.len()];
        for t in model.store.tensors() {
            if let Ok(v) = f.f32(&t.name) {
                if v.len() == t.len() {
                    buf[t.range()].copy_from_slice(&v);
                }
            }
        }
        if is_m {
            model.optimizer.m = buf;
            model.optimizer.step = f
                .metadata
                .get("step")
                .and_then(|s| s.parse().ok())
                .unwrap_or(state.step);
        } else if model.optimizer.v.len() == buf.len() {
            model.optimizer.v = buf;
        }
    }
    if let Some(r) = &state.model_rng {
        model.rng = r.clone();
    }
    Ok(Loaded { meta, model, state })
}

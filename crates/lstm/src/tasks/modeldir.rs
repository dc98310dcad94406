//! A model directory: everything needed to use a trained model or resume its training.
//!
//! ```text
//! DIR/config.json               format, task, model config, vocabulary/labels/scaler, settings
//! DIR/model.safetensors         the weights, under PyTorch's names
//! DIR/optimizer_m.safetensors   the optimizer's first moments (momentum), under the weights' names
//! DIR/optimizer_v.safetensors   Adam's second moments
//! DIR/training_state.json       step, RNG states, data position, loss history (for --resume)
//! DIR/loss.svg                  the loss curves
//! DIR/checkpoint.json           the manifest: every file above with its size and CRC-32
//! ```
//!
//! The directory holds one checkpoint, the newest. [`save_with`] writes a new one into the
//! staging directory `DIR/.saving`, writes the manifest last, and only then moves the files into
//! place; [`load`] reads the staged files while such a move is under way and checks every file
//! against the manifest. Killing the process at any instant therefore leaves a directory that
//! loads as either the previous checkpoint or the new one, never a mix of the two.
//!
//! ```
//! use lstm::tasks::modeldir::{live_path, MANIFEST};
//! let dir = std::path::Path::new("models/m");
//! assert_eq!(live_path(dir, MANIFEST), dir.join("checkpoint.json"));
//! ```

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::data::series::SeriesSpec;
use crate::data::vocab::Vocab;
use crate::error::{Error, Result};
use crate::io::checkpoint::{to_bytes, values_to_bytes, TensorFile};
use crate::model::{ModelConfig, SequenceModel};
use crate::tasks::settings::Settings;
pub use crate::tasks::settings::Task;

/// The `format` field of every `config.json` this library writes.
pub const FORMAT: &str = "lstm-model";
/// The current format version; files from a newer version are refused, older ones are read.
///
/// 1: the first; 2: adds the manifest [`MANIFEST`] and `settings.on_nonfinite` (a version 1
/// directory, without them, loads as before); 3: adds [`ModelMeta::label_values`]. A directory
/// is written with the lowest version that reads it ([`ModelMeta::written_version`]): 2 unless
/// it has `label_values`, so that builds that read version 2 and know its fields read every
/// other directory (fields were added within version 2 until 2026-12-06, which builds from
/// before them refuse as unknown).
pub const FORMAT_VERSION: u32 = 3;

/// What a classifier's labels stand for, when they were not given as text: Python's
/// `Classifier.fit` given integers or booleans records it, so that a model loaded from its
/// directory gives its labels back as such (the labels themselves are kept as text, as the
/// binary reads them from a file, and every command still prints them so).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LabelValues {
    /// Integers, written in decimal (`-1`, `0`, `12`: no sign but a minus, no leading zero).
    Integer,
    /// Booleans, written `True` and `False` (as Python and pandas write them).
    Boolean,
}

impl LabelValues {
    /// Its name in `config.json` and in Python (`integer`, `boolean`).
    pub fn name(self) -> &'static str {
        match self {
            LabelValues::Integer => "integer",
            LabelValues::Boolean => "boolean",
        }
    }

    /// The kind named `name` ([`Self::name`]); `None` for any other name.
    pub fn parse(name: &str) -> Option<LabelValues> {
        match name {
            "integer" => Some(LabelValues::Integer),
            "boolean" => Some(LabelValues::Boolean),
            _ => None,
        }
    }

    /// Whether `label` is a value of this kind as written above: the text Python's `str()`
    /// gives an `int` or a `bool`.
    pub fn admits(self, label: &str) -> bool {
        match self {
            LabelValues::Boolean => label == "True" || label == "False",
            LabelValues::Integer => {
                let digits = label.strip_prefix('-').unwrap_or(label);
                !digits.is_empty()
                    && digits.bytes().all(|b| b.is_ascii_digit())
                    && (digits == "0" || !digits.starts_with('0'))
                    && label != "-0"
            }
        }
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
    /// The global forecaster's description (forecast, `--forecaster global`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global: Option<crate::tasks::global::GlobalSpec>,
    /// The resolved training settings.
    pub settings: Settings,
    /// The data files training read, by content, and which of their characters or rows it
    /// trained and validated on: `lstm eval` says when it scores any of them (text and
    /// classify; a forecaster records its file alone, with empty ranges, so that a resumed run
    /// refuses changed data; empty for models saved before it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seen: Vec<Seen>,
    /// A classifier's training and validation texts, each by a 64-bit hash, so that `lstm
    /// eval` knows them in any file (a copy of some rows, the user's own split); `None` for
    /// other jobs, models saved before it, and more than [`TextsSeen::MAX`] texts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub texts_seen: Option<TextsSeen>,
    /// A classifier's labels as integers or booleans ([`LabelValues`]; format version 3);
    /// `None`: text, as for every model the binary trains.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_values: Option<LabelValues>,
}

impl ModelMeta {
    /// The format version this description is written with: the lowest that reads all of it
    /// (3 with [`Self::label_values`], else 2), so that older builds read what they can.
    pub fn written_version(&self) -> u32 {
        if self.label_values.is_some() {
            3
        } else {
            2
        }
    }
}

/// The texts a classifier's training read, by [`crate::data::labelled::text_hash`]: sorted,
/// distinct, written as 16 hex digits each.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextsSeen {
    /// The hashes of the texts trained on.
    pub trained: String,
    /// The hashes of the validation texts.
    pub validated: String,
}

impl TextsSeen {
    /// Texts (trained and validated) recorded at most: 16 bytes of `config.json` each.
    pub const MAX: usize = 200_000;

    /// The record of `trained` and `validated` texts; `None` above [`Self::MAX`].
    pub fn new(trained: &[String], validated: &[String]) -> Option<TextsSeen> {
        if trained.len() + validated.len() > Self::MAX {
            return None;
        }
        let hex = |texts: &[String]| {
            let mut h: Vec<u64> = texts
                .iter()
                .map(|t| crate::data::labelled::text_hash(t))
                .collect();
            h.sort_unstable();
            h.dedup();
            h.iter().map(|x| format!("{x:016x}")).collect::<String>()
        };
        Some(TextsSeen {
            trained: hex(trained),
            validated: hex(validated),
        })
    }

    /// The hashes of one list, sorted (a damaged record reads as the hashes it still holds).
    fn hashes(hex: &str) -> Vec<u64> {
        hex.as_bytes()
            .chunks_exact(16)
            .filter_map(|c| u64::from_str_radix(std::str::from_utf8(c).ok()?, 16).ok())
            .collect()
    }

    /// For each of `texts`: whether training trained on it (`Some(true)`), validated on it
    /// (`Some(false)`), or never read it (`None`).
    pub fn lookup(&self, texts: &[String]) -> Vec<Option<bool>> {
        let (trained, validated) = (Self::hashes(&self.trained), Self::hashes(&self.validated));
        texts
            .iter()
            .map(|t| {
                let h = crate::data::labelled::text_hash(t);
                if trained.binary_search(&h).is_ok() {
                    Some(true)
                } else if validated.binary_search(&h).is_ok() {
                    Some(false)
                } else {
                    None
                }
            })
            .collect()
    }
}

/// A data file a model was trained on: its [`crate::data::fingerprint`], its length in units
/// (text: characters; classify: rows), and the half-open unit ranges training fitted and
/// validated on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    /// [`crate::data::fingerprint`] of the file's bytes.
    pub fingerprint: String,
    /// Units in the file (characters or rows).
    pub units: usize,
    /// Units trained on, `[start, end)`.
    pub trained: (usize, usize),
    /// Units of the validation split, `[start, end)` (empty when validation read another file).
    pub validated: (usize, usize),
}

impl Seen {
    /// A file of `units` units whose first `trained` were trained on, followed by the
    /// validation split up to `kept` (none when `val_file`: validation read another file).
    pub fn split(
        fingerprint: String,
        units: usize,
        trained: usize,
        kept: usize,
        val_file: bool,
    ) -> Seen {
        Seen {
            fingerprint,
            units,
            trained: (0, trained),
            validated: if val_file { (0, 0) } else { (trained, kept) },
        }
    }

    /// How many of the units `[start, end)` of the same file were trained on and how many were
    /// validated on.
    pub fn overlap(&self, start: usize, end: usize) -> (usize, usize) {
        let over = |(a, b): (usize, usize)| b.min(end).saturating_sub(a.max(start));
        (over(self.trained), over(self.validated))
    }
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
    /// Steps whose batch was skipped for a non-finite loss or gradient.
    #[serde(default)]
    pub skipped: Vec<u64>,
}

/// Files and directories this process is writing under a temporary name, removed by
/// [`remove_pending`] when the process is stopped half-way.
static PENDING: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

/// A temporary file or directory being written, listed for [`remove_pending`] while this
/// guard lives. Dropping it only takes it off the list; the writer removes or renames the
/// path itself.
#[derive(Debug)]
pub struct Pending(PathBuf);

impl Pending {
    /// Lists `path` as being written.
    pub fn new(path: &Path) -> Pending {
        if let Ok(mut p) = PENDING.lock() {
            p.push(path.to_path_buf());
        }
        Pending(path.to_path_buf())
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Ok(mut p) = PENDING.lock() {
            if let Some(i) = p.iter().rposition(|q| *q == self.0) {
                p.swap_remove(i);
            }
        }
    }
}

/// Held while a file or directory under a [`Pending`] name is made, filled or renamed
/// ([`while_writing`]); [`remove_pending`] takes it first, so it never removes a path while a
/// write is making it (which would make it again before the process ends).
static GATE: std::sync::Mutex<()> = std::sync::Mutex::new(());

thread_local! {
    /// Whether this thread holds [`GATE`] (a write inside another one takes it once).
    static IN_GATE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f`, one step of writing a file or directory listed as [`Pending`] (creating,
/// filling, renaming it), so that [`remove_pending`] comes before or after it, never during
/// it. Keep `f` short: a signal waits for it.
pub fn while_writing<T>(f: impl FnOnce() -> T) -> T {
    if IN_GATE.with(|g| g.get()) {
        return f();
    }
    let _gate = GATE.lock().unwrap_or_else(|p| p.into_inner());
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            IN_GATE.with(|g| g.set(false));
        }
    }
    IN_GATE.with(|g| g.set(true));
    let _reset = Reset;
    f()
}

/// Removes every temporary file and directory being written ([`Pending`]); for a signal
/// handler that then ends the process, so an interrupted `export` or `forecast --out` leaves
/// no `NAME.tmpPID` behind. Returns how many paths it removed. It waits for a write step under
/// way ([`while_writing`]), and both locks stay taken after it, so a write that starts then
/// waits instead of leaving a file: call it only to end the process.
pub fn remove_pending() -> usize {
    let gate = GATE.lock().unwrap_or_else(|p| p.into_inner());
    std::mem::forget(gate);
    let Ok(p) = PENDING.lock() else { return 0 };
    let removed = p
        .iter()
        .filter(|q| match std::fs::symlink_metadata(q) {
            Ok(m) if m.is_dir() => std::fs::remove_dir_all(q).is_ok(),
            Ok(_) => std::fs::remove_file(q).is_ok(),
            Err(_) => false,
        })
        .count();
    std::mem::forget(p);
    removed
}

/// Environment variable that makes [`write_atomic`] wait this many milliseconds between
/// writing its temporary file and renaming it. For tests of an interrupted write only.
pub const SLOW_WRITE_ENV: &str = "LSTM_TEST_SLOW_WRITE_MS";

/// Writes `bytes` to `path` atomically: temporary file in the same directory, flush, fsync,
/// rename ([`stage_atomic`], [`Staged::commit`]: through a symbolic link to the file it
/// names; to a pipe or device directly).
///
/// # Errors
/// [`Error::Io`] naming the file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    stage_atomic(path, bytes)?.commit()
}

/// A file written beside its target under a temporary name ([`stage_atomic`]), waiting to
/// be renamed into place ([`Staged::commit`]); dropped uncommitted, it is removed. Several
/// files staged first and committed after are all written or none is (but for a rename
/// failing, which does not happen on one file system short of a crash). A pipe or a device
/// (`/dev/stdout`, a shell's `>(...)`) is not renamed over: its bytes are held and written to
/// it on commit.
#[derive(Debug)]
pub struct Staged {
    kind: StagedKind,
    /// The path as the caller named it, for messages.
    path: PathBuf,
    done: bool,
}

#[derive(Debug)]
enum StagedKind {
    /// A temporary file beside `target` (the path, or the file a link at the path names).
    File {
        tmp: PathBuf,
        target: PathBuf,
        _pending: Pending,
    },
    /// Bytes for a pipe, socket or device, written on commit: to the path opened for
    /// writing (appending), or to standard output or error when it names them.
    Stream(Vec<u8>, Option<Named>),
}

/// Where a write to `path` lands: the path itself, or through a symbolic link (and links to
/// links) the file it names, so that writing replaces that file and keeps the link.
/// ([`stage_atomic`] first reaches the file through the system, whose protections, such as
/// `fs.protected_symlinks`, then apply.)
///
/// # Errors
/// The system's error naming `path` for a link loop or a link the system will not follow; a
/// link to nothing is refused, as `cp` refuses to write through one.
pub fn link_target(path: &Path) -> Result<PathBuf> {
    let io = |source| Error::Io {
        path: path.display().to_string(),
        source,
    };
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {}
        _ => return Ok(path.to_path_buf()),
    }
    match std::fs::canonicalize(path) {
        Ok(p) => Ok(p),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(io(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!(
                "it is a symbolic link to {}, which does not exist: not written through; give the path of a file to write",
                std::fs::read_link(path).unwrap_or_default().display()
            ),
        ))),
        Err(e) => Err(io(e)),
    }
}

/// A descriptor a path names: standard output or error (`/dev/stdout`, `/dev/fd/1`,
/// `/proc/self/fd/1`, with any spelling of the path, or through links to such a name), written
/// through this process's own handle at its offset: reopened by its path, a redirected standard
/// output would be replaced or written over. Another descriptor (`/dev/fd/3`) is reopened by
/// its path for appending.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Named {
    Stdout,
    Stderr,
    /// Another descriptor (`/dev/fd/3`): its path opened for appending, never replaced.
    Other,
}

/// [`Named`] for `path` or a link on the way from it; `None` for a plain path.
fn named_descriptor(path: &Path) -> Option<Named> {
    let own = format!("/proc/{}", std::process::id());
    let name = |p: &Path| -> Option<Named> {
        // `/dev//stdout` and `/dev/./stdout` are `/dev/stdout`
        let p: PathBuf = p.components().collect();
        let s = p.to_str()?;
        let fd = match s {
            "/dev/stdout" => return Some(Named::Stdout),
            "/dev/stderr" => return Some(Named::Stderr),
            _ => ["/dev/fd/", "/proc/self/fd/", "/proc/thread-self/fd/"]
                .iter()
                .find_map(|pre| s.strip_prefix(pre))
                .or_else(|| s.strip_prefix(own.as_str())?.strip_prefix("/fd/"))?,
        };
        match fd {
            "1" => Some(Named::Stdout),
            "2" => Some(Named::Stderr),
            _ => Some(Named::Other),
        }
    };
    let mut cur = path.to_path_buf();
    for _ in 0..40 {
        if let Some(n) = name(&cur) {
            return Some(n);
        }
        let to = std::fs::read_link(&cur).ok()?;
        cur = match cur.parent() {
            Some(dir) if to.is_relative() => dir.join(to),
            _ => to,
        };
    }
    None
}

/// Distinguishes the temporary files of one process (two outputs staged at once).
static STAGED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The first half of [`write_atomic`]: `bytes` written and synced to a temporary file beside
/// `path`, not yet in its place. A symbolic link is followed ([`link_target`]: the file it
/// names is replaced, keeping its permissions); a pipe or a device gets the bytes on commit,
/// and so does a descriptor named as one (`/dev/stdout`, `/dev/fd/3`), written as it is.
///
/// # Errors
/// [`Error::Io`] naming the file, also when `path` is a directory, a link to nothing, or a
/// link the system does not follow.
pub fn stage_atomic(path: &Path, bytes: &[u8]) -> Result<Staged> {
    let io = |source| Error::Io {
        path: path.display().to_string(),
        source,
    };
    if let Some(named) = named_descriptor(path) {
        return Ok(Staged {
            kind: StagedKind::Stream(bytes.to_vec(), Some(named)),
            path: path.to_path_buf(),
            done: false,
        });
    }
    // the system follows the links (and applies its protections)
    let mode = match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => {
            return Err(io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "it is a directory; give the path of a file to write",
            )))
        }
        Ok(m) if !m.is_file() => {
            return Ok(Staged {
                kind: StagedKind::Stream(bytes.to_vec(), None),
                path: path.to_path_buf(),
                done: false,
            })
        }
        Ok(m) => Some(m.permissions()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io(e)),
    };
    let target = link_target(path)?;
    let tmp: PathBuf = {
        let mut name = target.file_name().unwrap_or_default().to_os_string();
        name.push(format!(
            ".tmp{}-{}",
            std::process::id(),
            STAGED.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        target.with_file_name(name)
    };
    let staged = Staged {
        kind: StagedKind::File {
            _pending: Pending::new(&tmp),
            tmp: tmp.clone(),
            target,
        },
        path: path.to_path_buf(),
        done: false,
    };
    while_writing(|| {
        std::fs::File::create(&tmp).and_then(|mut f| {
            // the replaced file's permissions are kept (as an editor or `cp` keeps them), set
            // before its contents are written
            if let Some(p) = mode {
                f.set_permissions(p)?;
            }
            f.write_all(bytes)?;
            f.sync_all()
        })
    })
    .map_err(io)?;
    Ok(staged)
}

impl Staged {
    /// Whether this goes to a pipe, socket or device (written on commit, not renamed).
    pub fn is_stream(&self) -> bool {
        matches!(self.kind, StagedKind::Stream(..))
    }

    /// Renames the staged file into its place and syncs its directory (or writes the bytes
    /// to the pipe or device).
    ///
    /// # Errors
    /// [`Error::Io`] naming the file (the staged file is removed).
    pub fn commit(mut self) -> Result<()> {
        if let Some(ms) = std::env::var(SLOW_WRITE_ENV)
            .ok()
            .and_then(|v| v.parse().ok())
        {
            std::thread::sleep(std::time::Duration::from_millis(ms));
        }
        let io = |path: &Path| {
            let path = path.display().to_string();
            move |source| Error::Io { path, source }
        };
        match &self.kind {
            StagedKind::Stream(bytes, named) => {
                let written = match named {
                    Some(Named::Stdout) => {
                        let mut out = std::io::stdout().lock();
                        out.write_all(bytes).and_then(|_| out.flush())
                    }
                    Some(Named::Stderr) => std::io::stderr().lock().write_all(bytes),
                    // appending: a file behind a descriptor (`3>> f`) keeps what it holds
                    Some(Named::Other) | None => std::fs::OpenOptions::new()
                        .append(true)
                        .open(&self.path)
                        .and_then(|mut f| f.write_all(bytes).and_then(|_| f.flush())),
                };
                written.map_err(io(&self.path))?;
                self.done = true;
            }
            StagedKind::File { tmp, target, .. } => {
                while_writing(|| std::fs::rename(tmp, target)).map_err(io(&self.path))?;
                self.done = true;
                if let Some(dir) = target.parent() {
                    if let Ok(d) = std::fs::File::open(if dir.as_os_str().is_empty() {
                        Path::new(".")
                    } else {
                        dir
                    }) {
                        let _ = d.sync_all();
                    }
                }
            }
        }
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if let (false, StagedKind::File { tmp, .. }) = (self.done, &self.kind) {
            // a full disk or a file size limit leaves no partial file behind
            let _ = std::fs::remove_file(tmp);
        }
    }
}

/// Reads a file of a model directory, refusing anything but a regular file (or a link to
/// one) before opening it: reading a FIFO put in a file's place would wait for a writer forever.
fn read_regular(path: &Path) -> std::io::Result<Vec<u8>> {
    let kind = std::fs::metadata(path)?.file_type();
    if !kind.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "not a regular file but {}: a model directory holds plain files only; move it away",
                if kind.is_dir() {
                    "a directory"
                } else {
                    "a pipe, socket or device"
                }
            ),
        ));
    }
    std::fs::read(path)
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let bytes = read_regular(path).map_err(|source| Error::Io {
        path: path.display().to_string(),
        source,
    })?;
    let text = String::from_utf8(bytes).map_err(|_| Error::Format {
        path: path.display().to_string(),
        reason: "not UTF-8 text".into(),
    })?;
    serde_json::from_str(&text).map_err(|e| Error::Format {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

/// The manifest of a checkpoint, written last: the files of the set with their sizes and
/// CRC-32 checksums.
pub const MANIFEST: &str = "checkpoint.json";
/// The staging directory inside a model directory where the next checkpoint is written before
/// it replaces the current one.
pub const STAGING: &str = ".saving";

/// One file of a checkpoint, as listed in [`MANIFEST`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestEntry {
    /// File name inside the model directory.
    pub name: String,
    /// Size in bytes.
    pub bytes: u64,
    /// CRC-32 (IEEE) of the contents.
    pub crc32: u32,
}

/// Contents of [`MANIFEST`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Optimizer steps of the checkpoint.
    pub step: u64,
    /// Every file of the checkpoint.
    pub files: Vec<ManifestEntry>,
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.display().to_string(),
        source,
    }
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Writes `bytes` to a new file (no rename: the caller's directory is not live yet).
fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    while_writing(|| {
        let mut f = std::fs::File::create(path).map_err(io_err(path))?;
        f.write_all(bytes).map_err(io_err(path))?;
        f.sync_all().map_err(io_err(path))
    })
}

/// Finishes or discards a save that was interrupted: a staging directory with its manifest
/// is complete and is moved into place; one without is deleted.
fn recover(dir: &Path) -> Result<()> {
    let staging = dir.join(STAGING);
    if !staging.exists() {
        return Ok(());
    }
    if staging.join(MANIFEST).is_file() {
        publish(dir)
    } else {
        std::fs::remove_dir_all(&staging).map_err(io_err(&staging))
    }
}

/// Moves every file of the complete staging directory into `dir`, the manifest last, then
/// removes the staging directory. Each move is one `rename`, so a reader at any moment finds
/// every file either still staged (new) or already moved (new): see [`live_path`].
fn publish(dir: &Path) -> Result<()> {
    let staging = dir.join(STAGING);
    // the files the new checkpoint lists, read before anything moves: a staged manifest that
    // does not parse stops here (its load names it), never decides what to remove
    let new: Vec<String> = read_json::<Manifest>(&staging.join(MANIFEST))
        .map_err(|e| damaged_staging(dir, e))?
        .files
        .into_iter()
        .map(|f| f.name)
        .collect();
    // and the replaced checkpoint's (none when it has no readable manifest)
    let old: Vec<String> = read_json::<Manifest>(&dir.join(MANIFEST))
        .map(|m| m.files.into_iter().map(|f| f.name).collect())
        .unwrap_or_default();
    let mut names: Vec<std::ffi::OsString> = std::fs::read_dir(&staging)
        .map_err(io_err(&staging))?
        .filter_map(|e| e.ok().map(|e| e.file_name()))
        .filter(|n| n != MANIFEST)
        .collect();
    names.sort();
    names.push(MANIFEST.into());
    for n in &names {
        let from = staging.join(n);
        let to = dir.join(n);
        std::fs::rename(&from, &to).map_err(|source| {
            // a directory of the file's name in the way (rename cannot replace it): named as
            // what the user must move, not as the staged file that could not be moved
            if to.is_dir() && !from.is_dir() {
                Error::Format {
                    path: to.display().to_string(),
                    reason: "a directory is where the model's file of this name goes; move it away and save again".into(),
                }
            } else {
                io_err(&from)(source)
            }
        })?;
    }
    sync_dir(dir);
    std::fs::remove_dir(&staging).map_err(io_err(&staging))?;
    // files of a replaced checkpoint that the new one has not (a model of more further
    // models, Adam's second moments after SGD): those the replaced manifest listed, and any
    // checkpoint file of ours lying there (a version 1 directory, a crash before this step),
    // never a name the new manifest lists; a loader would still read and check them
    let ours = |n: &str| {
        n == "optimizer_v.safetensors"
            || n.strip_prefix("member")
                .and_then(|r| r.strip_suffix(".safetensors"))
                .is_some_and(|k| !k.is_empty() && k.bytes().all(|b| b.is_ascii_digit()))
    };
    let present: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| ours(n))
                .collect()
        })
        .unwrap_or_default();
    for n in old.iter().chain(&present) {
        let plain = Path::new(n).file_name().is_some_and(|f| f == n.as_str());
        if plain && n != MANIFEST && !new.contains(n) {
            let _ = std::fs::remove_file(dir.join(n));
        }
    }
    sync_dir(dir);
    Ok(())
}

/// The error for a staged manifest that cannot be read, with the way out: loading and saving
/// both stop at it rather than guess which checkpoint is meant.
fn damaged_staging(dir: &Path, e: Error) -> Error {
    let staging = dir.join(STAGING);
    Error::Format {
        path: staging.join(MANIFEST).display().to_string(),
        reason: format!(
            "a save that was interrupted left this file damaged ({e}); remove {} to keep the last complete checkpoint (and save again)",
            staging.display()
        ),
    }
}

/// Where the current version of checkpoint file `name` of `dir` is: in the staging directory
/// while a complete staged checkpoint is being moved into place, else in `dir`.
pub fn live_path(dir: &Path, name: &str) -> PathBuf {
    let staging = dir.join(STAGING);
    if staging.join(MANIFEST).is_file() {
        let p = staging.join(name);
        if p.is_file() {
            return p;
        }
    }
    dir.join(name)
}

/// Why a directory cannot receive a new model ([`check_new`], [`check_writable`]); each shell
/// words the advice in its own terms (a flag, a keyword argument).
#[derive(Debug)]
pub enum Unusable {
    /// It already holds a model (continue that one, or choose another directory).
    HoldsModel,
    /// It exists and is not a directory.
    NotADirectory,
    /// It is a directory with other files in it, which the model's files could replace.
    NotEmpty,
    /// It would be made inside `at`, its nearest existing ancestor, which is a file.
    InsideAFile {
        /// The file.
        at: PathBuf,
    },
    /// It cannot be written: a file could not be created in it or in `at`, its nearest
    /// existing folder.
    NotWritable {
        /// The folder a file was tried in.
        at: PathBuf,
        /// The system's reason.
        reason: String,
    },
}

impl std::fmt::Display for Unusable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unusable::HoldsModel => write!(f, "it already holds a model"),
            Unusable::NotADirectory => write!(f, "it exists and is not a directory"),
            Unusable::NotEmpty => write!(
                f,
                "it is a directory that is not empty (a model's files would replace files there)"
            ),
            Unusable::InsideAFile { at } => write!(f, "{} is not a directory", at.display()),
            Unusable::NotWritable { at, reason } => {
                write!(f, "it cannot be written: {reason} (in {})", at.display())
            }
        }
    }
}

/// Checks, before any training, that a new model can be written into `dir`: no model there
/// already, not a file, new or empty (another MPI rank's write probe and an unfinished first
/// save's staging do not count), and writable ([`check_writable`]).
///
/// # Errors
/// The first [`Unusable`] reason found.
pub fn check_new(dir: &Path) -> std::result::Result<(), Unusable> {
    if live_path(dir, "config.json").exists() {
        return Err(Unusable::HoldsModel);
    }
    if dir.exists() && !dir.is_dir() {
        return Err(Unusable::NotADirectory);
    }
    let other = |e: std::fs::DirEntry| {
        let n = e.file_name();
        let n = n.to_string_lossy();
        !(n.starts_with(".lstm-write-test-") || n == STAGING)
    };
    if std::fs::read_dir(dir).is_ok_and(|d| d.flatten().any(other)) {
        return Err(Unusable::NotEmpty);
    }
    check_writable(dir)
}

/// Checks that `dir` can be written, found now rather than after a training: a file created
/// and removed in it, or in its nearest existing folder.
///
/// # Errors
/// [`Unusable::InsideAFile`] or [`Unusable::NotWritable`].
pub fn check_writable(dir: &Path) -> std::result::Result<(), Unusable> {
    let mut at = dir;
    while !at.exists() {
        at = match at.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
    }
    if !at.is_dir() {
        return Err(Unusable::InsideAFile {
            at: at.to_path_buf(),
        });
    }
    let probe = at.join(format!(".lstm-write-test-{}", std::process::id()));
    match std::fs::File::create(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => Err(Unusable::NotWritable {
            at: at.to_path_buf(),
            reason: e.to_string(),
        }),
    }
}

/// A model directory held by one writer ([`lock`]) until this is dropped. Dropped, it also
/// removes the directory if [`lock`] created it and no checkpoint was saved into it (an error
/// before the first save leaves nothing behind).
#[derive(Debug)]
pub struct DirLock {
    _file: std::fs::File,
    dir: PathBuf,
    created: bool,
}

impl DirLock {
    /// Keeps the directory even if it holds no checkpoint when this is dropped.
    pub fn keep(&mut self) {
        self.created = false;
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        if self.created && !live_path(&self.dir, "config.json").exists() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Creates `dir` if needed and locks it (`flock` on the directory) for this process, so that
/// two trainings (or a training and a save) into one directory do not replace each other's
/// checkpoints. `Ok(None)` when another process holds it. The lock is held until the
/// [`DirLock`] is dropped (or the process ends); a file system without locks goes without.
///
/// # Errors
/// [`Error::Io`] if the directory cannot be created or opened.
pub fn lock(dir: &Path) -> Result<Option<DirLock>> {
    let created = !dir.exists();
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let file = std::fs::File::open(dir).map_err(io_err(dir))?;
    let held = DirLock {
        _file: file,
        dir: dir.to_path_buf(),
        created,
    };
    match held._file.try_lock() {
        Ok(()) | Err(std::fs::TryLockError::Error(_)) => Ok(Some(held)),
        Err(std::fs::TryLockError::WouldBlock) => {
            // not ours to remove: the holder made or uses it
            let mut held = held;
            held.keep();
            Ok(None)
        }
    }
}

/// Saves a model, its metadata and its training state into `dir` (created if needed).
///
/// # Errors
/// As [`save_with`].
pub fn save(
    dir: &Path,
    meta: &ModelMeta,
    model: &SequenceModel,
    state: &TrainingState,
) -> Result<()> {
    save_with(dir, meta, model, state, &|_| Ok(()))
}

/// Saves a loaded model directory into `dir` whole: [`save`] and, for a global forecaster or a
/// classifier of several models, its further models ([`write_members`]), which `save` alone would leave out
/// (and [`load`] then refuses the directory, naming the missing file).
///
/// # Errors
/// As [`save_with`].
pub fn save_loaded(dir: &Path, l: &Loaded) -> Result<()> {
    save_with(dir, &l.meta, &l.model, &l.state, &|staging| {
        write_members(staging, &l.members)
    })
}

/// Saves a checkpoint into `dir` so that an interruption at any instant (a crash, `SIGKILL`,
/// a full disk) leaves either the previous checkpoint or the new one, whole:
///
/// 1. every file is written and synced into the staging directory `dir/.saving`, with
///    `extra` writing any further files (the loss plot) there too;
/// 2. the manifest [`MANIFEST`] (sizes and checksums) is written last, atomically (temporary
///    file, sync, rename): from the moment it exists the
///    staged set is the checkpoint;
/// 3. the files are renamed into `dir` one by one (manifest last) and the staging directory
///    is removed.
///
/// A save that died in step 1 or 2 is discarded by the next save; one that died in step 3 is
/// completed by it, and [`load`] reads such a directory correctly meanwhile.
///
/// # Errors
/// [`Error::Io`] naming the file if the directory or a file cannot be written (disk full
/// included); the previous checkpoint is then left as it was.
pub fn save_with(
    dir: &Path,
    meta: &ModelMeta,
    model: &SequenceModel,
    state: &TrainingState,
    extra: &dyn Fn(&Path) -> Result<()>,
) -> Result<()> {
    while_writing(|| std::fs::create_dir_all(dir)).map_err(io_err(dir))?;
    while_writing(|| recover(dir))?;
    let staging = dir.join(STAGING);
    while_writing(|| std::fs::create_dir(&staging)).map_err(io_err(&staging))?;
    let staged = stage(&staging, meta, model, state, extra);
    if let Err(e) = staged {
        // leave no half-written files behind (best effort: the next save removes them too)
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e);
    }
    sync_dir(&staging);
    while_writing(|| publish(dir))
}

fn stage(
    staging: &Path,
    meta: &ModelMeta,
    model: &SequenceModel,
    state: &TrainingState,
    extra: &dyn Fn(&Path) -> Result<()>,
) -> Result<()> {
    let mut manifest = Manifest {
        step: state.step,
        files: Vec::new(),
    };
    // each file written as soon as it is made and then dropped: one file's bytes in memory
    // at a time, the moments read in place
    let mut put = |name: &str, bytes: Vec<u8>| -> Result<()> {
        write_synced(&staging.join(name), &bytes)?;
        manifest.files.push(ManifestEntry {
            name: name.to_string(),
            bytes: bytes.len() as u64,
            crc32: crc32fast::hash(&bytes),
        });
        Ok(())
    };
    // one metadata entry: the safetensors header is a JSON map written in hash order, so a
    // single key keeps checkpoint files byte-identical for identical weights
    let meta = &ModelMeta {
        format_version: meta.written_version(),
        ..meta.clone()
    };
    let mut m = HashMap::new();
    m.insert(
        "format".to_string(),
        format!("{FORMAT}/{} {}", meta.format_version, meta.task),
    );
    put("model.safetensors", to_bytes(&model.store, &m)?)?;
    let mut om = HashMap::new();
    om.insert("step".to_string(), model.optimizer.step.to_string());
    let tensors = model.store.tensors();
    put(
        "optimizer_m.safetensors",
        values_to_bytes(tensors, &model.optimizer.m, &om)?,
    )?;
    if !model.optimizer.v.is_empty() {
        put(
            "optimizer_v.safetensors",
            values_to_bytes(tensors, &model.optimizer.v, &om)?,
        )?;
    }
    let json = |v: &dyn erased::Json| v.to_json();
    put("training_state.json", json(state).into_bytes())?;
    put("config.json", json(meta).into_bytes())?;
    extra(staging)?;
    // the further models `extra` wrote are checked on load as the first one is
    for k in 1.. {
        let name = member_file(k);
        let bytes = match read_regular(&staging.join(&name)) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
            Err(e) => return Err(Error::read(&staging.join(&name).display().to_string(), e)),
        };
        manifest.files.push(ManifestEntry {
            name,
            bytes: bytes.len() as u64,
            crc32: crc32fast::hash(&bytes),
        });
    }
    // atomically too: its existence is what makes the staged set the checkpoint
    write_atomic(&staging.join(MANIFEST), json(&manifest).as_bytes())
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
    /// A global forecaster's or a classifier's further models (`member1.safetensors`, ...:
    /// [`further_models`]), same configuration, other seeds; empty otherwise.
    pub members: Vec<SequenceModel>,
}

/// The file of a global forecaster's or a classifier's further model `k` (from 1).
pub fn member_file(k: usize) -> String {
    format!("member{k}.safetensors")
}

/// Writes a global forecaster's or a classifier's further models into `dir` (a checkpoint's staging directory:
/// they are saved with every checkpoint, beside the first model), as [`member_file`]s.
///
/// # Errors
/// [`Error::Io`] naming the file.
pub fn write_members(dir: &Path, members: &[SequenceModel]) -> Result<()> {
    for (k, m) in members.iter().enumerate() {
        let bytes = to_bytes(&m.store, &HashMap::new())?;
        write_synced(&dir.join(member_file(k + 1)), &bytes)?;
    }
    Ok(())
}

/// Loads a model directory, checking format, version, every file against the manifest and
/// every tensor's shape against the configuration.
///
/// A directory a training run is saving into (a `lstm generate` while `lstm train
/// --save-every` runs) can change between the reads of its manifest and its files: a load
/// that fails while the manifest changed or a save is under way (its staging directory
/// changed in the last 5 seconds) is tried again for up to about 2 seconds before its error
/// is reported. (A load that succeeds read files
/// that all match the manifest it read, so it is one checkpoint whole.)
///
/// # Errors
/// [`Error::Format`] naming the file if the directory is missing, a file is missing,
/// truncated, corrupted (checksum), malformed, from a newer format version, or does not match
/// the configuration (tensor shapes and dtypes, vocabulary against embedding, labels against
/// the head); [`Error::Config`] if the configuration would need more memory than the machine
/// has.
pub fn load(dir: &Path) -> Result<Loaded> {
    load_with(dir, true)
}

/// [`load`] for a model that is only used, not trained on (`generate`, `forecast`, `classify`,
/// `eval`, `export`, `serve`): every file is read and checked as by [`load`], but the
/// optimizer's moments are not kept (`optimizer.m` and `.v` are left empty, in the further
/// models too), which saves two thirds of each model's memory. Such a model cannot be trained
/// on or saved: both refuse it with a shape error ([`Error::Shape`]).
///
/// # Errors
/// As [`load`].
pub fn load_for_use(dir: &Path) -> Result<Loaded> {
    load_with(dir, false)
}

fn load_with(dir: &Path, moments: bool) -> Result<Loaded> {
    let manifest_now = || read_regular(&live_path(dir, MANIFEST)).ok();
    // a save under way: its staging directory changed in the last few seconds (one left by a
    // killed save does not count)
    let saving = || {
        std::fs::metadata(dir.join(STAGING))
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().is_ok_and(|e| e.as_secs_f64() < 5.0))
    };
    let started = std::time::Instant::now();
    loop {
        let before = manifest_now();
        let r = load_once(dir, moments);
        match r {
            Err(_)
                if started.elapsed().as_secs_f64() < 2.0
                    && (manifest_now() != before || saving()) =>
            {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            r => return r,
        }
    }
}

fn load_once(dir: &Path, moments: bool) -> Result<Loaded> {
    if !dir.is_dir() {
        return Err(Error::Format {
            path: dir.display().to_string(),
            reason: if dir.exists() {
                "not a model directory (it is a file); give the directory written by `lstm train`"
                    .into()
            } else {
                "no such model directory; give the directory written by `lstm train --out`".into()
            },
        });
    }
    let manifest_path = live_path(dir, MANIFEST);
    let manifest: Option<Manifest> = if manifest_path.exists() {
        Some(read_json(&manifest_path).map_err(|e| {
            if manifest_path.starts_with(dir.join(STAGING)) {
                damaged_staging(dir, e)
            } else {
                e
            }
        })?)
    } else {
        None
    };
    // every file is read once; the config is checked against the manifest after its contents
    // (so a hand-edited config says what is wrong with it, not only that it changed), the
    // weights before (so a truncated file is named as such, not by the parser's error)
    let read = |name: &str| -> Result<Option<(PathBuf, Vec<u8>)>> {
        let p = live_path(dir, name);
        // a staged file moved into place since `live_path` found it is read there (the same
        // bytes: the staged manifest still checks them). CI caught a load giving up after 2 s
        // of saves every step, each taking a file from under it.
        let (p, got) = match read_regular(&p) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && p != dir.join(name) => {
                let q = dir.join(name);
                let got = read_regular(&q);
                (q, got)
            }
            got => (p, got),
        };
        match got {
            Ok(b) => Ok(Some((p, b))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if manifest
                    .as_ref()
                    .is_some_and(|m| m.files.iter().any(|f| f.name == name))
                {
                    Err(Error::Format {
                        path: p.display().to_string(),
                        reason: format!(
                            "missing, but {MANIFEST} lists it; the checkpoint is incomplete"
                        ),
                    })
                } else {
                    Ok(None)
                }
            }
            Err(source) => Err(Error::Io {
                path: p.display().to_string(),
                source,
            }),
        }
    };
    let verify = |name: &str, path: &Path, bytes: &[u8]| -> Result<()> {
        let Some(m) = &manifest else { return Ok(()) };
        let Some(e) = m.files.iter().find(|f| f.name == name) else {
            return Ok(());
        };
        let bad = |reason: String| Error::Format {
            path: path.display().to_string(),
            reason,
        };
        if bytes.len() as u64 != e.bytes {
            return Err(bad(format!(
                "{} bytes where {MANIFEST} says {}: the file is truncated or was replaced; restore it from a copy or train again",
                bytes.len(),
                e.bytes
            )));
        }
        if crc32fast::hash(bytes) != e.crc32 {
            return Err(bad(format!(
                "its checksum does not match {MANIFEST}: the file is corrupted or was changed after saving; restore it from a copy (or delete {MANIFEST} to accept the files as they are)"
            )));
        }
        Ok(())
    };
    let (cfg_path, cfg_bytes) = read("config.json")?.ok_or_else(|| Error::Format {
        path: dir.join("config.json").display().to_string(),
        reason: if dir.join(STAGING).exists() {
            format!(
                "missing: the first checkpoint of this directory was never completed (an interrupted save left {STAGING}); train again with --out {}, which takes it as empty",
                dir.display()
            )
        } else {
            "missing: this is not a model directory written by `lstm train` (or its first checkpoint was never completed)".into()
        },
    })?;
    let fmt = |reason: String| Error::Format {
        path: cfg_path.display().to_string(),
        reason,
    };
    let mut meta = meta_from_json(&cfg_bytes).map_err(fmt)?;
    if let Some(v) = meta.vocab.as_mut() {
        v.rebuild_index();
    }
    check_consistent(&meta).map_err(fmt)?;
    crate::model::memory::check_params_memory(&meta.model, &[]).map_err(|e| fmt(e.to_string()))?;
    verify("config.json", &cfg_path, &cfg_bytes)?;
    // every tensor is set from the file below (a missing one is an error)
    let mut model = SequenceModel::for_weights(&meta.model, meta.settings.seed)
        .map_err(|e| fmt(e.to_string()))?;
    let (wpath, wbytes) = read("model.safetensors")?.ok_or_else(|| Error::Format {
        path: dir.join("model.safetensors").display().to_string(),
        reason: "missing: the model directory has no weights".into(),
    })?;
    // the manifest's size and checksum first: a damaged file is named as such, not by the
    // safetensors parser's error
    verify("model.safetensors", &wpath, &wbytes)?;
    set_weights(&mut model, &wpath, &wbytes)?;
    if !moments {
        // a model only used has no moments at all, so its further models (clones) and the
        // server's per-request copies copy none
        model.optimizer.m = Vec::new();
        model.optimizer.v = Vec::new();
    }
    let mut members = Vec::new();
    let further = further_models(&meta);
    for k in 1..=further {
        let name = member_file(k);
        let (p, b) = read(&name)?.ok_or_else(|| Error::Format {
            path: dir.join(&name).display().to_string(),
            reason: format!(
                "missing: config.json names {further} further models of this {}",
                if meta.task == Task::Classify {
                    "classifier"
                } else {
                    "forecaster"
                }
            ),
        })?;
        let mut m = model.clone();
        verify(&name, &p, &b)?;
        set_weights(&mut m, &p, &b)?;
        members.push(m);
    }
    // a file the manifest does not list is not the checkpoint's: a replaced checkpoint's
    // second moments left by a save killed before it removed them (the new one has none)
    let listed = |name: &str| {
        manifest
            .as_ref()
            .is_none_or(|m| m.files.iter().any(|f| f.name == name))
    };
    let state: TrainingState =
        match read("training_state.json")?.filter(|_| listed("training_state.json")) {
            Some((p, b)) => {
                let s = serde_json::from_slice(&b).map_err(|e| Error::Format {
                    path: p.display().to_string(),
                    reason: e.to_string(),
                })?;
                verify("training_state.json", &p, &b)?;
                s
            }
            None => TrainingState::default(),
        };
    for (file, is_m) in [
        ("optimizer_m.safetensors", true),
        ("optimizer_v.safetensors", false),
    ] {
        if !listed(file) {
            continue;
        }
        let Some((p, b)) = read(file)? else { continue };
        // the manifest's size and checksum first, as for the weights
        verify(file, &p, &b)?;
        let f = TensorFile::from_bytes(&b, &p.display().to_string())?;
        if !moments {
            // checked as when kept, one tensor at a time
            for t in model.store.tensors() {
                tensor(&f, &p, &t.name, &t.shape)?;
            }
            continue;
        }
        let mut buf = vec![0.0f32; model.store.len()];
        for t in model.store.tensors() {
            buf[t.range()].copy_from_slice(&tensor(&f, &p, &t.name, &t.shape)?);
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
    Ok(Loaded {
        meta,
        model,
        state,
        members,
    })
}

/// The further models a model directory holds beside the first ([`member_file`]s): a global
/// forecaster's spec's `members`, a classifier's `settings.members` less one (models saved
/// before either hold none).
pub fn further_models(meta: &ModelMeta) -> usize {
    match meta.task {
        Task::Classify => meta.settings.members.saturating_sub(1),
        _ => meta.global.as_ref().map_or(0, |g| g.members),
    }
}

/// Sets every tensor of `model` from the safetensors file `bytes` (read from `path`).
fn set_weights(model: &mut SequenceModel, path: &Path, bytes: &[u8]) -> Result<()> {
    let weights = TensorFile::from_bytes(bytes, &path.display().to_string())?;
    for t in model.store.tensors().to_vec() {
        let v = tensor(&weights, path, &t.name, &t.shape)?;
        if v.iter().any(|x| !x.is_finite()) {
            return Err(Error::Format {
                path: path.display().to_string(),
                reason: format!("tensor `{}` holds NaN or infinite values", t.name),
            });
        }
        model.store.set(&t.name, &t.shape, &v)?;
    }
    Ok(())
}

/// An `F32` tensor of the shape the configuration needs.
fn tensor(file: &TensorFile, path: &Path, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
    let bad = |reason: String| Error::Format {
        path: path.display().to_string(),
        reason,
    };
    let found = file
        .shape(name)
        .map_err(|_| bad(format!("tensor `{name}` is missing")))?;
    if found != shape {
        return Err(bad(format!(
            "tensor `{name}` has shape {found:?}, the config needs {shape:?}"
        )));
    }
    file.f32(name).map_err(|_| {
        bad(format!(
            "tensor `{name}` is not F32 (this program stores and reads F32 weights)"
        ))
    })
}

/// The head's kind as `config.json` spells it.
fn head_name(head: &crate::model::Head) -> &'static str {
    use crate::model::Head;
    match head {
        Head::PerStep { .. } => "per_step",
        Head::LastStep { .. } => "last_step",
        Head::Pooled { .. } => "pooled",
    }
}

/// Checks that the vocabulary, labels and series description in `config.json` fit the
/// network they describe.
/// Reads the text of a `config.json`: its format and version first (a newer version is said to
/// be one, before any field it may add is met), then its fields (one this build does not know
/// is said to be a newer build's or an edit); a forecaster's `settings.forecaster` is made the
/// one its description is of. Not checked against its network ([`load`] does that).
///
/// # Errors
/// The reason, to be given with the file's name.
pub fn meta_from_json(bytes: &[u8]) -> std::result::Result<ModelMeta, String> {
    let raw: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("not valid JSON: {e}"))?;
    if raw.get("format").and_then(|v| v.as_str()) != Some(FORMAT) {
        return Err(format!(
            "not an `{FORMAT}` config (no \"format\": \"{FORMAT}\")"
        ));
    }
    let version = raw
        .get("format_version")
        .and_then(|v| v.as_u64())
        .ok_or_else(|| "no \"format_version\" number".to_string())?;
    if version > FORMAT_VERSION as u64 {
        return Err(format!(
            "written by a newer version of lstm (format {version}; this build reads up to {FORMAT_VERSION}): upgrade lstm"
        ));
    }
    let mut meta: ModelMeta = serde_json::from_value(raw).map_err(|e| {
        let e = e.to_string();
        // a field this build does not know: most likely a newer build's that did not change
        // the version (builds before 2026-12-07 meet several so)
        if e.starts_with("unknown field") || e.starts_with("unknown variant") {
            format!(
                "{e}; the config was written by a newer version of lstm (upgrade lstm) or edited"
            )
        } else {
            e
        }
    })?;
    if meta.task == Task::Forecast {
        // the forecaster is the one its description is of: a window forecaster saved before
        // `forecaster` was a setting (2026-12-05), or imported with a configuration that does
        // not give it, read the setting's default, the global one (an upgrade probe,
        // 2026-12-07: such a model resumed as a global forecaster and failed on a shape, and
        // Python's `fit` on it trained a global one)
        use crate::tasks::settings::Forecaster;
        meta.settings.forecaster = if meta.global.is_some() {
            Forecaster::Global
        } else {
            Forecaster::Window
        };
    }
    Ok(meta)
}

fn check_consistent(meta: &ModelMeta) -> std::result::Result<(), String> {
    use crate::model::{Head, InputKind};
    let input_vocab = match meta.model.input {
        InputKind::OneHot { vocab } | InputKind::Embedding { vocab, .. } => Some(vocab),
        InputKind::Dense { .. } | InputKind::DenseWithIds { .. } => None,
    };
    let outputs = meta.model.head.outputs();
    // the sizes the saved settings give to evaluation and generation (`seq_len` steps a text
    // is read in, ...): a config edited to 0 would otherwise reach an assertion
    meta.settings.check_sizes().map_err(|e| e.to_string())?;
    match (meta.task, meta.model.head) {
        (Task::Text, Head::PerStep { .. })
        | (Task::Classify, Head::LastStep { .. } | Head::Pooled { .. })
        | (Task::Forecast, _) => {}
        (task, head) => {
            return Err(format!(
                "a {task} model cannot have a {} head; the config was edited or mixed up with another model's",
                head_name(&head)
            ))
        }
    }
    if meta.label_values.is_some() && meta.task != Task::Classify {
        return Err(format!(
            "a {} model has no labels, but the config gives \"label_values\"; the config was edited or mixed up with another model's",
            meta.task
        ));
    }
    match meta.task {
        Task::Text | Task::Classify => {
            let v = meta
                .vocab
                .as_ref()
                .ok_or(format!("a {} model needs a \"vocab\"", meta.task))?;
            if input_vocab != Some(v.len()) {
                return Err(format!(
                    "the vocabulary has {} tokens (with the unknown token) but the network's input takes {}; the config was edited or mixed up with another model's",
                    v.len(),
                    input_vocab.map_or("dense features".to_string(), |n| format!("{n} tokens"))
                ));
            }
            let mut seen = std::collections::HashSet::new();
            if let Some(t) = v.tokens.iter().find(|t| !seen.insert(t.as_str())) {
                return Err(format!(
                    "the vocabulary lists the token {:?} twice; the config was edited or mixed up with another model's",
                    t.chars().take(60).collect::<String>()
                ));
            }
            if meta.task == Task::Text && outputs != v.len() {
                return Err(format!(
                    "a text model needs one output per vocabulary token at every step ({}), the network has {outputs}",
                    v.len()
                ));
            }
            if meta.task == Task::Classify {
                let labels = meta
                    .labels
                    .as_ref()
                    .ok_or("a classify model needs \"labels\"")?;
                if labels.len() != outputs || labels.len() < 2 {
                    return Err(format!(
                        "{} labels but the network has {outputs} outputs",
                        labels.len()
                    ));
                }
                if let Some(kind) = meta.label_values {
                    if let Some(l) = labels.iter().find(|l| !kind.admits(l)) {
                        return Err(format!(
                            "the labels are said to be {} values (\"label_values\"), but {:?} is not one; the config was edited",
                            kind.name(),
                            l.chars().take(60).collect::<String>()
                        ));
                    }
                }
            }
        }
        Task::Forecast if meta.global.is_some() => {
            let g = meta.global.as_ref().expect("checked");
            if g.id_dim > 0 && g.ids.is_empty() {
                return Err(format!(
                    "the global forecaster has an id embedding of {} but no series ids",
                    g.id_dim
                ));
            }
            if meta.model.input != g.input_kind() || meta.model.head != g.head() {
                return Err(format!(
                    "the global forecaster reads {:?} and outputs {} values per step, but the network is {:?} -> {:?}",
                    g.input_kind(),
                    g.distribution.params(),
                    meta.model.input,
                    meta.model.head
                ));
            }
            let freq = g.frequency().map_err(|e| e.to_string())?;
            if g.horizon == 0 || g.context == 0 || g.season == 0 {
                return Err(
                    "the global forecaster's horizon, context and season must be at least 1".into(),
                );
            }
            // no series it could have been trained on is longer than a filled panel may be
            let longest = crate::data::panel::MAX_FILLED;
            if g.context.saturating_add(g.horizon) > longest
                || g.season > longest
                || g.lags.iter().any(|&l| l == 0 || l > longest)
            {
                return Err(format!(
                    "the global forecaster's context {} and horizon {} (together), season {} and lags {:?} must each be between 1 and {longest} steps",
                    g.context, g.horizon, g.season, g.lags
                ));
            }
            let calendar = crate::data::panel::calendar_feature_count(freq, g.season);
            if g.calendar != calendar {
                return Err(format!(
                    "the global forecaster reads {} calendar features, but its frequency {} with season {} gives {calendar}",
                    g.calendar, g.freq, g.season
                ));
            }
            if g.known_mean.len() != g.known.len()
                || g.known_std.len() != g.known.len()
                || g.known_std.iter().any(|&v| !(v.is_finite() && v > 0.0))
                || g.known_mean.iter().any(|v| !v.is_finite())
            {
                return Err("the global forecaster's covariate scaling is malformed".into());
            }
        }
        Task::Forecast => {
            let s = meta
                .series
                .as_ref()
                .ok_or("a forecast model needs a \"series\" description")?;
            let f = s.columns.len();
            if f == 0 || meta.model.input != (InputKind::Dense { features: f }) {
                return Err(format!(
                    "the series has {f} columns but the network's input is {:?}",
                    meta.model.input
                ));
            }
            if s.mean.len() != f || s.std.len() != f {
                return Err(format!(
                    "the scaler needs {f} means and standard deviations"
                ));
            }
            if s.mean.iter().chain(&s.std).any(|v| !v.is_finite())
                || s.std.iter().any(|&v| v <= 0.0)
            {
                return Err(
                    "the scaler holds a non-finite mean or a standard deviation <= 0".into(),
                );
            }
            if !matches!(meta.model.head, Head::LastStep { .. }) {
                return Err(format!(
                    "a window forecaster reads its forecast from the last step (a last_step head), the network has a {} head",
                    head_name(&meta.model.head)
                ));
            }
            let longest = crate::data::panel::MAX_FILLED;
            if s.window > longest || s.horizon > longest {
                return Err(format!(
                    "the window {} and horizon {} must each be at most {longest} steps",
                    s.window, s.horizon
                ));
            }
            if s.horizon == 0 || s.window == 0 || outputs != s.horizon {
                return Err(format!(
                    "window {} and horizon {} with {outputs} outputs: the horizon must equal the outputs and both must be at least 1",
                    s.window, s.horizon
                ));
            }
        }
    }
    Ok(())
}

//! Whether a network fits in this machine's memory, checked from its configuration before
//! anything is allocated.

use crate::error::{Error, Result};
use crate::model::{InputKind, ModelConfig};

/// Bytes of memory this process can allocate, if known: the least of the memory available on
/// the machine (`MemAvailable` of `/proc/meminfo`), what is left under the process's
/// address-space limit (`ulimit -v`, from `/proc/self/limits`, less the `VmSize` it already
/// uses) and its control group's limit (`memory.max`).
pub fn machine_memory() -> Option<u128> {
    let available = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            let field = |name: &str| -> Option<u128> {
                let line = info.lines().find(|l| l.starts_with(name))?;
                line.split_whitespace()
                    .nth(1)?
                    .parse::<u128>()
                    .ok()
                    .map(|kb| kb * 1024)
            };
            field("MemAvailable:").or_else(|| field("MemTotal:"))
        });
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| -> Option<u128> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        line.split_whitespace().nth(1)?.parse::<u128>().ok()
    };
    let used = field("VmSize:").map_or(0, |kb| kb * 1024);
    // glibc reserves 64 MiB of address space for the heap of each further thread that
    // allocates: the compute threads, the progress bar's and the signal handler's, less the
    // threads already running (whose heaps `VmSize` counts)
    let running = field("Threads:").unwrap_or(1).saturating_sub(1);
    let arenas = ARENA * (crate::kernels::num_threads() as u128 + 2).saturating_sub(running);
    let address_space = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|l| {
            let line = l.lines().find(|l| l.starts_with("Max address space"))?;
            line.split_whitespace().nth(3)?.parse::<u128>().ok()
        })
        .map(|limit| limit.saturating_sub(used + arenas));
    let cgroup = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
        .ok()
        .and_then(|v| v.trim().parse::<u128>().ok());
    [available, address_space, cgroup]
        .into_iter()
        .flatten()
        .min()
}

/// Address space glibc reserves for each thread's heap arena on a 64-bit machine.
const ARENA: u128 = 64 << 20;

/// Bytes a parameter takes while training: its value, gradient and two optimizer moments, and
/// the kernels' working copies (measured: about 22 for a 2 x 1024 text model, 13 million
/// parameters; `docs/performance.md`, "Memory").
const TRAIN_BYTES_PER_PARAM: u128 = 24;
/// Bytes a parameter takes loaded: its value, gradient and two optimizer moments.
const LOADED_BYTES_PER_PARAM: u128 = 16;
/// Bytes of activations per unit, step and sequence while training (measured: about 58).
const ACT_BYTES_PER_UNIT_STEP: u128 = 60;

/// An upper bound of the parameters of a network, computed from its configuration without
/// allocating anything (four gate blocks per layer, whatever the cell).
pub fn parameter_bound(cfg: &ModelConfig) -> u128 {
    let h = cfg.hidden_size as u128;
    let out = if cfg.proj_size > 0 {
        cfg.proj_size as u128
    } else {
        h
    };
    let d: u128 = if cfg.bidirectional { 2 } else { 1 };
    let (input, embedding) = match cfg.input {
        InputKind::OneHot { vocab } => (vocab as u128, 0),
        InputKind::Embedding { vocab, dim } => (dim as u128, vocab as u128 * dim as u128),
        InputKind::Dense { features } => (features as u128, 0),
        InputKind::DenseWithIds { features, ids, dim } => {
            ((features + dim) as u128, ids as u128 * dim as u128)
        }
    };
    let mut total = embedding;
    for layer in 0..cfg.num_layers as u128 {
        let i = if layer == 0 { input } else { d * out };
        // input and recurrent weights, two biases, peepholes, projection
        total += d * (4 * h * (i + out) + 8 * h + 3 * h + out * h);
    }
    total + cfg.head.outputs() as u128 * (d * out + 1)
}

/// Checks, before anything is allocated, that a network with batches of `batch` sequences of
/// `seq_len` steps can be trained in memory ([`machine_memory`]): its parameters with their
/// gradients, optimizer moments and working copies (24 bytes each), and its activations
/// (about 60 bytes per unit, step and sequence). `flags` name the settings that size it, for
/// the message (`--hidden`, `--batch`, `--seq-len`...).
///
/// # Errors
/// [`Error::Config`] saying how many GB it would need and how many the process can have (64
/// GB assumed when unknown).
pub fn check_model_memory(
    cfg: &ModelConfig,
    batch: usize,
    seq_len: usize,
    flags: &[&str],
) -> Result<()> {
    let d: u128 = if cfg.bidirectional { 2 } else { 1 };
    let acts = batch as u128
        * seq_len as u128
        * (cfg.hidden_size as u128 * cfg.num_layers as u128 * d * ACT_BYTES_PER_UNIT_STEP
            + cfg.head.outputs() as u128 * 8);
    check(cfg, TRAIN_BYTES_PER_PARAM, acts, flags)
}

/// Checks, before anything is allocated, that a network's parameters with their gradients and
/// optimizer moments (16 bytes each) fit in memory: what building or loading it takes, before
/// any batch.
///
/// # Errors
/// As [`check_model_memory`].
pub fn check_params_memory(cfg: &ModelConfig, flags: &[&str]) -> Result<()> {
    check(cfg, LOADED_BYTES_PER_PARAM, 0, flags)
}

/// Checks, before they are made, that `bytes` of training data (`what`: "the training windows")
/// fit in memory ([`machine_memory`]); `flags` name the settings that size them.
///
/// # Errors
/// [`Error::Config`] saying how many GB they would need and how many the process can have.
pub fn check_data_memory(bytes: u128, what: &str, flags: &[&str]) -> Result<()> {
    let have = machine_memory().unwrap_or(64 << 30);
    if bytes > have {
        return Err(Error::Config(format!(
            "{what} would take about {} GB of memory but {} GB are available; choose a smaller {}",
            gb(bytes),
            gb(have),
            choices(flags, "data set")
        )));
    }
    Ok(())
}

/// `b` bytes in GB with one decimal, as the messages give them.
fn gb(b: u128) -> String {
    format!("{:.1}", b as f64 / 1e9)
}

/// `flags` as a message offers them: `--a, --b or --c` (`none` when there are none).
fn choices(flags: &[&str], none: &str) -> String {
    match flags {
        [] => none.to_string(),
        [one] => one.to_string(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

fn check(cfg: &ModelConfig, per_param: u128, acts: u128, flags: &[&str]) -> Result<()> {
    let params = parameter_bound(cfg);
    let need = params * per_param + acts;
    let have = machine_memory().unwrap_or(64 << 30);
    if need > have {
        return Err(Error::Config(format!(
            "this model would need about {} GB of memory ({} million parameters with gradients and optimizer state, {} GB of activations) but {} GB are available; choose a smaller {}{}",
            gb(need),
            params / 1_000_000,
            gb(acts),
            gb(have),
            choices(flags, "model"),
            match cfg.input {
                InputKind::OneHot { vocab } if vocab > 10_000 => format!(
                    " (the vocabulary has {vocab} tokens, each an input and an output of the network)"
                ),
                _ => String::new(),
            }
        )));
    }
    Ok(())
}

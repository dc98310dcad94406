//! Whether a network fits in this machine's memory, checked from its configuration before
//! anything is allocated.

use crate::error::{Error, Result};
use crate::model::{InputKind, ModelConfig};

/// Bytes of physical memory of this machine (`MemTotal` of `/proc/meminfo`), if known.
pub fn machine_memory() -> Option<u128> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u128 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

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
/// `seq_len` steps fits in memory: its parameters with their gradients and optimizer moments
/// (16 bytes each), and its activations (about 40 bytes per unit, step and sequence).
///
/// # Errors
/// [`Error::Config`] saying how many GB it would need and how many the machine has (64 GB
/// assumed when unknown).
pub fn check_model_memory(cfg: &ModelConfig, batch: usize, seq_len: usize) -> Result<()> {
    let params = parameter_bound(cfg);
    let d: u128 = if cfg.bidirectional { 2 } else { 1 };
    let acts = batch as u128
        * seq_len as u128
        * (cfg.hidden_size as u128 * cfg.num_layers as u128 * d * 40
            + cfg.head.outputs() as u128 * 8);
    let need = params * 16 + acts;
    let have = machine_memory().unwrap_or(64 << 30);
    if need > have {
        let gb = |b: u128| format!("{:.1}", b as f64 / 1e9);
        return Err(Error::Config(format!(
            "this model would need about {} GB of memory ({} million parameters with gradients and optimizer state, {} GB of activations) but the machine has {} GB; choose a smaller --hidden, --layers, --embedding, --batch or --seq-len",
            gb(need),
            params / 1_000_000,
            gb(acts),
            gb(have)
        )));
    }
    Ok(())
}

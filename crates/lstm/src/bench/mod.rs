//! The benchmark configurations of `lstm bench`, as code.
//!
//! Each configuration builds its model, warms up, times several steps and reports the median,
//! in the unit a user cares about (tokens/s, samples/s, µs per generated token) and GFLOP/s.
//! FLOPs are counted as PyTorch users count them for a dense LSTM: per token and layer
//! direction `2·G·H·(I + H_out)` forward (one-hot input counted as a dense `I = V` product),
//! plus the head; training counts three times the forward.
//!
//! ```
//! let cfgs = lstm::bench::configs();
//! assert!(cfgs.iter().any(|c| c.name == "charlm-2x256"));
//! ```

use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::error::Result;
use crate::model::optim::OptimizerConfig;
use crate::model::{Batch, Head, InputKind, Inputs, ModelConfig, SequenceModel, Targets};

/// What a configuration measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BenchKind {
    /// Character-model training step (one-hot input, per-step head, cross-entropy, Adam).
    CharLm,
    /// Series training step (dense input of 1, last-step head, MSE, Adam).
    Series,
    /// Generation: batch 1, one token at a time with the state carried.
    Generate,
    /// Global forecaster training step: the M4 hourly shape (10 dense features per step,
    /// context 96 + horizon 48, windows of many series), a per-step Student-t head trained by
    /// likelihood on the horizon steps, Adam.
    Forecast,
}

/// One benchmark configuration.
#[derive(Clone, Debug)]
pub struct BenchConfig {
    /// Name, e.g. `charlm-2x256`.
    pub name: &'static str,
    /// Kind.
    pub kind: BenchKind,
    /// Layers.
    pub layers: usize,
    /// Hidden units.
    pub hidden: usize,
    /// Batch size.
    pub batch: usize,
    /// Sequence length (window for series).
    pub seq_len: usize,
    /// Vocabulary (one-hot input and head) for text.
    pub vocab: usize,
    /// Keras-style recurrent dropout rate (training only).
    pub recurrent_dropout: f32,
    /// Variable-length batch: lengths drawn uniformly from `1..=seq_len` (padded to `seq_len`).
    pub variable_lengths: bool,
    /// bfloat16: generation's weights ([`crate::model::infer::Precision::Bf16`]), or
    /// training's recurrent products (mixed precision, [`SequenceModel::set_precision`]).
    pub bf16: bool,
}

/// The configurations of `lstm bench`.
pub fn configs() -> Vec<BenchConfig> {
    let c = |name, kind, layers, hidden, batch, seq_len| BenchConfig {
        name,
        kind,
        layers,
        hidden,
        batch,
        seq_len,
        vocab: 65,
        recurrent_dropout: 0.0,
        variable_lengths: false,
        bf16: false,
    };
    vec![
        c("charlm-2x256", BenchKind::CharLm, 2, 256, 32, 64),
        c("charlm-1x512", BenchKind::CharLm, 1, 512, 32, 64),
        c("charlm-1x128", BenchKind::CharLm, 1, 128, 32, 64),
        c("series-1x64", BenchKind::Series, 1, 64, 64, 30),
        c("forecast-2x64", BenchKind::Forecast, 2, 64, 64, 144),
        c("generate-2x256", BenchKind::Generate, 2, 256, 1, 1),
        BenchConfig {
            bf16: true,
            ..c("generate-2x256-bf16", BenchKind::Generate, 2, 256, 1, 1)
        },
        BenchConfig {
            recurrent_dropout: 0.25,
            ..c("charlm-2x256-recdrop", BenchKind::CharLm, 2, 256, 32, 64)
        },
        BenchConfig {
            variable_lengths: true,
            ..c("charlm-2x256-varlen", BenchKind::CharLm, 2, 256, 32, 64)
        },
        // a padded batch with about the real tokens of the variable-length one (996 of 2048)
        c("charlm-2x256-t31", BenchKind::CharLm, 2, 256, 32, 31),
        // the same pair with recurrent dropout
        BenchConfig {
            variable_lengths: true,
            recurrent_dropout: 0.25,
            ..c(
                "charlm-2x256-varlen-recdrop",
                BenchKind::CharLm,
                2,
                256,
                32,
                64,
            )
        },
        BenchConfig {
            recurrent_dropout: 0.25,
            ..c(
                "charlm-2x256-t31-recdrop",
                BenchKind::CharLm,
                2,
                256,
                32,
                31,
            )
        },
        // the same pair for a layer that runs with its units split between the threads
        BenchConfig {
            variable_lengths: true,
            ..c("charlm-1x512-varlen", BenchKind::CharLm, 1, 512, 32, 64)
        },
        c("charlm-1x512-t31", BenchKind::CharLm, 1, 512, 32, 31),
    ]
}

/// A measured configuration.
#[derive(Clone, Debug, Serialize)]
pub struct BenchResult {
    /// Configuration name.
    pub name: String,
    /// Threads used.
    pub threads: usize,
    /// Training tokens per second (text), from the median step time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens_per_s: Option<f64>,
    /// Training samples per second (series), from the median step time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub samples_per_s: Option<f64>,
    /// Microseconds per generated token (generation).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub us_per_token: Option<f64>,
    /// Achieved GFLOP/s (see the module docs for the convention).
    pub gflops: f64,
    /// Median time of one step (training) or one token (generation), milliseconds.
    pub median_ms: f64,
    /// Mean time of the same repetitions, milliseconds: total time over repetitions, the way
    /// the PyTorch anchor script's `tokens_per_s` and `samples_per_s` are computed.
    pub mean_ms: f64,
    /// Training tokens per second from the mean step time (text): the figure to set beside
    /// the anchor script's `tokens_per_s` (which is total tokens over total time), where
    /// [`BenchResult::tokens_per_s`] is from the median step, like its
    /// `tokens_per_s_median_step`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens_per_s_mean: Option<f64>,
    /// Training samples per second from the mean step time (series), likewise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub samples_per_s_mean: Option<f64>,
    /// Number of timed repetitions.
    pub reps: usize,
    /// Batch size.
    pub batch: usize,
    /// Sequence length.
    pub seq_len: usize,
    /// Real (unpadded) tokens per batch, for variable-length configurations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub real_tokens: Option<usize>,
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).expect("finite timings"));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

/// Forward FLOPs per token (per sample position) of a stack plus head.
fn forward_flops(
    input: usize,
    hidden: usize,
    layers: usize,
    head_out: usize,
    per_step_head: bool,
) -> f64 {
    let mut f = 0.0;
    for l in 0..layers {
        let i = if l == 0 { input } else { hidden };
        f += 2.0 * 4.0 * hidden as f64 * (i + hidden) as f64;
    }
    if per_step_head {
        f += 2.0 * (hidden * head_out) as f64;
    }
    f
}

/// The precision a configuration's training runs in (its `bf16` flag).
fn precision(cfg: &BenchConfig) -> crate::kernels::Precision {
    if cfg.bf16 {
        crate::kernels::Precision::Bf16
    } else {
        crate::kernels::Precision::F32
    }
}

/// Runs one configuration for about `seconds` of timed work (at least `min_reps` repetitions,
/// and at least one).
///
/// # Errors
/// Propagates model errors (none are expected for the built-in configurations).
pub fn run(
    cfg: &BenchConfig,
    threads: usize,
    seconds: f64,
    min_reps: usize,
) -> Result<BenchResult> {
    crate::kernels::set_num_threads(threads);
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let (b, t) = (cfg.batch, cfg.seq_len);
    let mut times = Vec::new();
    // the clock starts at the first timed repetition (after the model is built and warmed
    // up); at least one timed repetition, whatever `min_reps`, so there is a median
    let started = std::cell::OnceCell::new();
    let budget = |times: &Vec<f64>| {
        started.get_or_init(Instant::now).elapsed().as_secs_f64() >= seconds
            && times.len() >= min_reps.max(1)
    };
    let mut result = BenchResult {
        name: cfg.name.to_string(),
        threads,
        tokens_per_s: None,
        samples_per_s: None,
        us_per_token: None,
        gflops: 0.0,
        median_ms: 0.0,
        mean_ms: 0.0,
        tokens_per_s_mean: None,
        samples_per_s_mean: None,
        reps: 0,
        batch: b,
        seq_len: t,
        real_tokens: None,
    };
    match cfg.kind {
        BenchKind::CharLm | BenchKind::Generate => {
            let mc = ModelConfig {
                input: InputKind::OneHot { vocab: cfg.vocab },
                hidden_size: cfg.hidden,
                num_layers: cfg.layers,
                head: Head::PerStep { outputs: cfg.vocab },
                optimizer: OptimizerConfig::adam(2e-3),
                recurrent_dropout: cfg.recurrent_dropout,
                ..Default::default()
            };
            let mut model = SequenceModel::new(&mc, 1)?;
            if cfg.kind == BenchKind::CharLm {
                model.set_precision(precision(cfg))?;
            }
            let fwd = forward_flops(cfg.vocab, cfg.hidden, cfg.layers, cfg.vocab, true);
            let lengths: Vec<usize> = (0..b).map(|_| rng.gen_range(1..=t)).collect();
            if cfg.kind == BenchKind::CharLm {
                let tokens: Vec<u32> = (0..b * t)
                    .map(|_| rng.gen_range(0..cfg.vocab as u32))
                    .collect();
                let targets: Vec<u32> = (0..b * t)
                    .map(|_| rng.gen_range(0..cfg.vocab as u32))
                    .collect();
                let batch = Batch {
                    inputs: Inputs::Tokens(&tokens),
                    targets: Targets::Classes(&targets),
                    batch: b,
                    seq_len: t,
                    lengths: cfg.variable_lengths.then_some(&lengths[..]),
                };
                for _ in 0..3 {
                    model.train_step(&batch)?;
                }
                while !budget(&times) {
                    let s = Instant::now();
                    model.train_step(&batch)?;
                    times.push(s.elapsed().as_secs_f64());
                }
                let avg = mean(&times);
                let med = median(&mut times);
                // tokens/s counts the padded batch (B·T), so a variable-length batch that
                // costs nothing for its padding shows a *higher* figure than the padded one
                let tps = (b * t) as f64 / med;
                if cfg.variable_lengths {
                    result.real_tokens = Some(lengths.iter().sum());
                }
                result.tokens_per_s = Some(tps);
                result.tokens_per_s_mean = Some((b * t) as f64 / avg);
                result.gflops = 3.0 * fwd * tps / 1e9;
                result.median_ms = med * 1e3;
                result.mean_ms = avg * 1e3;
            } else {
                let precision = if cfg.bf16 {
                    crate::model::infer::Precision::Bf16
                } else {
                    crate::model::infer::Precision::F32
                };
                let mut gen =
                    crate::model::infer::Generator::with_precision(&model, threads, precision)?;
                let mut tok = 0u32;
                // time tokens in groups of 64 to keep the clock's overhead out
                let group = 64;
                for _ in 0..group {
                    gen.step(tok)?;
                }
                while !budget(&times) {
                    let s = Instant::now();
                    for _ in 0..group {
                        let logits = gen.step(tok)?;
                        tok = argmax(logits) as u32;
                    }
                    times.push(s.elapsed().as_secs_f64() / group as f64);
                }
                let avg = mean(&times);
                let med = median(&mut times);
                result.us_per_token = Some(med * 1e6);
                result.gflops = fwd / med / 1e9;
                result.median_ms = med * 1e3;
                result.mean_ms = avg * 1e3;
            }
        }
        BenchKind::Forecast => {
            let (features, horizon) = (10, 48);
            let dist = crate::model::loss::Distribution::StudentT;
            let mc = ModelConfig {
                input: InputKind::Dense { features },
                hidden_size: cfg.hidden,
                num_layers: cfg.layers,
                head: Head::PerStep {
                    outputs: dist.params(),
                },
                optimizer: OptimizerConfig::adam(1e-3),
                ..Default::default()
            };
            let mut model = SequenceModel::new(&mc, 1)?;
            model.set_precision(precision(cfg))?;
            let x: Vec<f32> = (0..b * t * features)
                .map(|_| rng.gen_range(-1.0..1.0))
                .collect();
            // scored on the last `horizon` steps of each window, as the global forecaster is
            let y: Vec<f32> = (0..b * t)
                .map(|i| {
                    if i % t >= t - horizon {
                        rng.gen_range(-1.0..1.0)
                    } else {
                        f32::NAN
                    }
                })
                .collect();
            let batch = Batch {
                inputs: Inputs::Dense(&x),
                targets: Targets::Distribution {
                    values: &y,
                    dist,
                    scales: None,
                },
                batch: b,
                seq_len: t,
                lengths: None,
            };
            for _ in 0..3 {
                model.train_step(&batch)?;
            }
            while !budget(&times) {
                let s = Instant::now();
                model.train_step(&batch)?;
                times.push(s.elapsed().as_secs_f64());
            }
            let avg = mean(&times);
            let med = median(&mut times);
            let sps = b as f64 / med;
            let fwd = t as f64 * forward_flops(features, cfg.hidden, cfg.layers, 3, true);
            result.samples_per_s = Some(sps);
            result.samples_per_s_mean = Some(b as f64 / avg);
            result.gflops = 3.0 * fwd * sps / 1e9;
            result.median_ms = med * 1e3;
            result.mean_ms = avg * 1e3;
        }
        BenchKind::Series => {
            let mc = ModelConfig {
                input: InputKind::Dense { features: 1 },
                hidden_size: cfg.hidden,
                num_layers: cfg.layers,
                head: Head::LastStep { outputs: 1 },
                optimizer: OptimizerConfig::adam(1e-3),
                ..Default::default()
            };
            let mut model = SequenceModel::new(&mc, 1)?;
            model.set_precision(precision(cfg))?;
            let x: Vec<f32> = (0..b * t).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let y: Vec<f32> = (0..b).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let batch = Batch {
                inputs: Inputs::Dense(&x),
                targets: Targets::Values(&y),
                batch: b,
                seq_len: t,
                lengths: None,
            };
            for _ in 0..3 {
                model.train_step(&batch)?;
            }
            while !budget(&times) {
                let s = Instant::now();
                model.train_step(&batch)?;
                times.push(s.elapsed().as_secs_f64());
            }
            let avg = mean(&times);
            let med = median(&mut times);
            let sps = b as f64 / med;
            let fwd = t as f64 * forward_flops(1, cfg.hidden, cfg.layers, 1, false)
                + 2.0 * cfg.hidden as f64;
            result.samples_per_s = Some(sps);
            result.samples_per_s_mean = Some(b as f64 / avg);
            result.gflops = 3.0 * fwd * sps / 1e9;
            result.median_ms = med * 1e3;
            result.mean_ms = avg * 1e3;
        }
    }
    result.reps = times.len();
    Ok(result)
}

fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

/// One row of [`activation_memory`].
#[derive(Clone, Debug, Serialize)]
pub struct MemoryRow {
    /// Sequence length `T` trained on.
    pub seq_len: usize,
    /// Bytes of activations and their gradients held for one training step over all `T`
    /// steps (full backpropagation through time).
    pub full_bptt_bytes: usize,
    /// The same with truncated BPTT in chunks of `chunk` steps (state carried between them).
    pub tbptt_bytes: usize,
    /// The truncation length.
    pub chunk: usize,
}

/// Activation memory of `charlm-2x256` (batch 32) against the sequence length, with full and
/// with truncated backpropagation through time (chunks of 64): one real training step each,
/// measured from the buffers' capacities, so the figures are what the library allocates.
///
/// # Errors
/// Propagates model errors (none are expected).
pub fn activation_memory(seq_lens: &[usize], threads: usize) -> Result<Vec<MemoryRow>> {
    crate::kernels::set_num_threads(threads);
    let chunk = 64;
    let (b, vocab) = (32, 65);
    let mc = ModelConfig {
        input: InputKind::OneHot { vocab },
        hidden_size: 256,
        num_layers: 2,
        head: Head::PerStep { outputs: vocab },
        optimizer: OptimizerConfig::adam(2e-3),
        ..Default::default()
    };
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut rows = Vec::new();
    for &t in seq_lens {
        let tokens: Vec<u32> = (0..b * t).map(|_| rng.gen_range(0..vocab as u32)).collect();
        let targets: Vec<u32> = (0..b * t).map(|_| rng.gen_range(0..vocab as u32)).collect();
        let mut full = SequenceModel::new(&mc, 1)?;
        full.train_step_text(&tokens, &targets, b, t)?;
        let mut trunc = SequenceModel::new(&mc, 1)?;
        trunc.carry = Some(Default::default());
        let mut start = 0;
        while start < t {
            let len = chunk.min(t - start);
            // (B, T) row-major: each sequence's slice of this chunk
            let pick = |v: &[u32]| -> Vec<u32> {
                (0..b)
                    .flat_map(|j| v[j * t + start..j * t + start + len].iter().copied())
                    .collect()
            };
            trunc.train_step_text(&pick(&tokens), &pick(&targets), b, len)?;
            start += len;
        }
        rows.push(MemoryRow {
            seq_len: t,
            full_bptt_bytes: full.workspace_bytes(),
            tbptt_bytes: trunc.workspace_bytes(),
            chunk,
        });
    }
    Ok(rows)
}

/// The `charlm-2x256` training configuration at another batch size and sequence length (for
/// the scaling table of `lstm bench --scaling`).
pub fn charlm_2x256(batch: usize, seq_len: usize) -> BenchConfig {
    BenchConfig {
        batch,
        seq_len,
        ..configs()
            .into_iter()
            .find(|c| c.name == "charlm-2x256")
            .expect("built-in configuration")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_median_rates_match_their_times() {
        let cfg = configs()
            .into_iter()
            .find(|c| c.name == "series-1x64")
            .expect("built-in configuration");
        let r = run(&cfg, 1, 0.0, 5).expect("bench runs");
        assert_eq!(r.reps, 5);
        assert!(r.mean_ms > 0.0 && r.median_ms > 0.0);
        let b = cfg.batch as f64;
        let (med, avg) = (r.samples_per_s.unwrap(), r.samples_per_s_mean.unwrap());
        assert!((med - b / (r.median_ms / 1e3)).abs() <= 1e-9 * med);
        assert!((avg - b / (r.mean_ms / 1e3)).abs() <= 1e-9 * avg);
        assert!(r.tokens_per_s.is_none() && r.tokens_per_s_mean.is_none());
    }

    #[test]
    fn mean_and_median_of_known_times() {
        let mut v = vec![4.0, 1.0, 3.0, 2.0];
        assert_eq!(mean(&v), 2.5);
        assert_eq!(median(&mut v), 2.5);
        let mut w = vec![5.0, 1.0, 100.0];
        assert_eq!(median(&mut w), 5.0);
        assert_eq!(mean(&w), 106.0 / 3.0);
    }
}

/// One configuration of a side-by-side run (`docs/side-by-side.sh`): medians over its
/// repetitions of our figures and the anchors'.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct SideBySideRow {
    /// Configuration name.
    pub name: String,
    /// `tokens/s`, `samples/s` or `us/token` (ours-only rows without a rate: `ms`).
    pub unit: &'static str,
    /// Repetitions of ours.
    pub reps: usize,
    /// Ours, from the median step (`tokens_per_s`, `samples_per_s`, `us_per_token`; `median_ms`
    /// for `ms` rows).
    pub ours: f64,
    /// Ours, from the mean step (`tokens_per_s_mean`, `samples_per_s_mean`; `mean_ms` for `ms`
    /// rows), when recorded.
    pub ours_mean: Option<f64>,
    /// PyTorch's figure from its median step (`tokens_per_s_median_step`,
    /// `samples_per_s_median_step`, `step_us_per_token_median`).
    pub torch: Option<f64>,
    /// PyTorch's `tokens_per_s` / `samples_per_s`: total over total time (a mean).
    pub torch_mean: Option<f64>,
    /// ONNX Runtime's `ort_step_us_per_token_median` (generation).
    pub ort: Option<f64>,
    /// How many times faster we are, median step against median step.
    pub ratio: Option<f64>,
    /// How many times faster we are, mean against mean.
    pub ratio_mean: Option<f64>,
    /// Lowest and highest per-repetition ratio (same repetition, mean against mean when both
    /// are recorded, else median against median).
    pub ratio_range: Option<(f64, f64)>,
}

/// The keys of the figures a side-by-side run's result objects may hold.
const FIGURE_KEYS: [&str; 11] = [
    "tokens_per_s",
    "tokens_per_s_mean",
    "tokens_per_s_median_step",
    "samples_per_s",
    "samples_per_s_mean",
    "samples_per_s_median_step",
    "us_per_token",
    "step_us_per_token_median",
    "median_ms",
    "mean_ms",
    "ort_step_us_per_token_median",
];

/// Summarises the JSON lines of a side-by-side run (`docs/side-by-side.sh`: one
/// `{"rep", "who", "name", "r"}` object per run of `lstm bench --json` (`who` = `lstm`), the
/// PyTorch anchor script (`torch`) or the ONNX Runtime one (`ort`)) into one row per
/// configuration, in the order they first appear.
///
/// # Errors
/// [`Error::Format`](crate::error::Error::Format) for a line that is not such an object, or a
/// configuration with no figure of ours, a figure that is not a positive number, or no lines.
pub fn summarize_side_by_side(text: &str) -> Result<Vec<SideBySideRow>> {
    use crate::error::Error;
    use serde_json::Value;
    let bad = |line: usize, why: &str| Error::Format {
        path: format!("side-by-side line {line}"),
        reason: why.to_string(),
    };
    // per configuration: (rep, who, object)
    let mut order: Vec<String> = Vec::new();
    let mut runs: Vec<(String, u64, String, Value)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(line).map_err(|e| bad(i + 1, &e.to_string()))?;
        let name = v["name"]
            .as_str()
            .ok_or_else(|| bad(i + 1, "no `name`"))?
            .to_string();
        let who = v["who"]
            .as_str()
            .ok_or_else(|| bad(i + 1, "no `who`"))?
            .to_string();
        let rep = v["rep"]
            .as_u64()
            .ok_or_else(|| bad(i + 1, "no `rep` (a repetition number, 0 or more)"))?;
        if !v["r"].is_object() {
            return Err(bad(
                i + 1,
                "no result object `r` (did that run fail? see the run's log)",
            ));
        }
        // a figure that is not a positive number would make every ratio meaningless
        for key in FIGURE_KEYS {
            if let Some(x) = v["r"].get(key) {
                if !x.as_f64().is_some_and(|x| x > 0.0 && x.is_finite()) {
                    return Err(bad(
                        i + 1,
                        &format!("`{key}` is {x}; a figure must be a positive number"),
                    ));
                }
            }
        }
        if !order.contains(&name) {
            order.push(name.clone());
        }
        runs.push((name, rep, who, v["r"].clone()));
    }
    if order.is_empty() {
        return Err(Error::Format {
            path: "side-by-side run".into(),
            reason: "no runs: the file holds no line of results".into(),
        });
    }
    let num = |r: &Value, k: &str| r.get(k).and_then(Value::as_f64);
    let mut rows = Vec::new();
    for name in order {
        let of = |who: &str| -> Vec<(u64, &Value)> {
            runs.iter()
                .filter(|(n, _, w, _)| *n == name && w == who)
                .map(|(_, rep, _, r)| (*rep, r))
                .collect()
        };
        let (ours, torch, ort) = (of("lstm"), of("torch"), of("ort"));
        let first = ours.first().map(|(_, r)| *r).ok_or_else(|| Error::Format {
            path: "side-by-side run".into(),
            reason: format!("no `lstm` figure for {name}"),
        })?;
        // (our key, our mean key, the anchor's median key, its mean key, lower is better)
        let (unit, key, mean_key, t_key, t_mean_key, lower) =
            if num(first, "tokens_per_s").is_some() {
                let u = if torch.is_empty() { "ms" } else { "tokens/s" };
                (
                    u,
                    "tokens_per_s",
                    "tokens_per_s_mean",
                    "tokens_per_s_median_step",
                    "tokens_per_s",
                    false,
                )
            } else if num(first, "samples_per_s").is_some() {
                (
                    "samples/s",
                    "samples_per_s",
                    "samples_per_s_mean",
                    "samples_per_s_median_step",
                    "samples_per_s",
                    false,
                )
            } else {
                (
                    "us/token",
                    "us_per_token",
                    "",
                    "step_us_per_token_median",
                    "",
                    true,
                )
            };
        let series = |runs: &[(u64, &Value)], k: &str| -> Vec<(u64, f64)> {
            runs.iter()
                .filter_map(|(rep, r)| num(r, k).map(|x| (*rep, x)))
                .collect()
        };
        let med = |s: &[(u64, f64)]| -> Option<f64> {
            (!s.is_empty()).then(|| median(&mut s.iter().map(|p| p.1).collect::<Vec<_>>()))
        };
        let (our_key, our_mean_key) = if unit == "ms" {
            ("median_ms", "mean_ms")
        } else {
            (key, mean_key)
        };
        let o = series(&ours, our_key);
        let o_mean = series(&ours, our_mean_key);
        let t = series(&torch, t_key);
        let t_mean = series(&torch, t_mean_key);
        let ort_s = series(&ort, "ort_step_us_per_token_median");
        let faster = |a: f64, b: f64| if lower { b / a } else { a / b };
        let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => Some(faster(a, b)),
            _ => None,
        };
        // per repetition: mean against mean where both exist, else median against median
        let (pa, pb) = if !o_mean.is_empty() && !t_mean.is_empty() {
            (&o_mean, &t_mean)
        } else {
            (&o, &t)
        };
        let per_rep: Vec<f64> = pa
            .iter()
            .filter_map(|(rep, a)| {
                pb.iter()
                    .find(|(r, _)| r == rep)
                    .map(|(_, b)| faster(*a, *b))
            })
            .collect();
        let ratio_range = (!per_rep.is_empty()).then(|| {
            (
                per_rep.iter().copied().fold(f64::INFINITY, f64::min),
                per_rep.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            )
        });
        let ours_med = med(&o).ok_or_else(|| Error::Format {
            path: "side-by-side run".into(),
            reason: format!("no `{our_key}` in the `lstm` figures for {name}"),
        })?;
        let (ours_mean, torch, torch_mean) = (med(&o_mean), med(&t), med(&t_mean));
        rows.push(SideBySideRow {
            name,
            unit,
            reps: o.len(),
            ours: ours_med,
            ours_mean,
            torch,
            torch_mean,
            ort: med(&ort_s),
            ratio: ratio(Some(ours_med), torch),
            ratio_mean: ratio(ours_mean, torch_mean),
            ratio_range,
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod side_by_side_tests {
    use super::*;

    fn line(rep: u64, who: &str, name: &str, r: &str) -> String {
        format!("{{\"rep\":{rep},\"who\":\"{who}\",\"name\":\"{name}\",\"r\":{r}}}\n")
    }

    #[test]
    fn medians_and_ratios_of_a_hand_made_run() {
        let mut text = String::new();
        // three repetitions; PyTorch's mean and median figures differ
        for (rep, ours, ours_mean, t_med, t_mean) in [
            (1, 45.0, 44.0, 30.0, 29.0),
            (2, 40.0, 41.0, 20.0, 32.0),
            (3, 50.0, 48.0, 25.0, 30.0),
        ] {
            text += &line(
                rep,
                "torch",
                "charlm-2x256",
                &format!("{{\"tokens_per_s\":{t_mean},\"tokens_per_s_median_step\":{t_med}}}"),
            );
            text += &line(
                rep,
                "lstm",
                "charlm-2x256",
                &format!("{{\"tokens_per_s\":{ours},\"tokens_per_s_mean\":{ours_mean},\"median_ms\":1.0}}"),
            );
        }
        text += &line(
            1,
            "torch",
            "generate-2x256",
            "{\"step_us_per_token_median\":500.0}",
        );
        text += &line(1, "lstm", "generate-2x256", "{\"us_per_token\":20.0}");
        text += &line(
            1,
            "ort",
            "generate-2x256",
            "{\"ort_step_us_per_token_median\":60.0}",
        );
        text += &line(
            1,
            "lstm",
            "charlm-2x256-t31",
            "{\"tokens_per_s\":9.0,\"tokens_per_s_mean\":8.0,\"median_ms\":24.5,\"mean_ms\":25.0}",
        );
        let rows = summarize_side_by_side(&text).unwrap();
        assert_eq!(rows.len(), 3);
        let r = &rows[0];
        assert_eq!(
            (r.name.as_str(), r.unit, r.reps),
            ("charlm-2x256", "tokens/s", 3)
        );
        assert_eq!((r.ours, r.ours_mean), (45.0, Some(44.0)));
        assert_eq!((r.torch, r.torch_mean), (Some(25.0), Some(30.0)));
        assert_eq!(r.ratio, Some(45.0 / 25.0));
        assert_eq!(r.ratio_mean, Some(44.0 / 30.0));
        // per repetition, mean against mean: 44/29, 41/32, 48/30
        assert_eq!(r.ratio_range, Some((41.0 / 32.0, 48.0 / 30.0)));
        let g = &rows[1];
        assert_eq!(
            (g.unit, g.ours, g.torch, g.ort),
            ("us/token", 20.0, Some(500.0), Some(60.0))
        );
        assert_eq!(g.ratio, Some(25.0));
        assert_eq!(g.ratio_mean, None);
        let t = &rows[2];
        assert_eq!(
            (t.unit, t.ours, t.ours_mean, t.ratio),
            ("ms", 24.5, Some(25.0), None)
        );
    }

    #[test]
    fn a_failed_or_foreign_line_is_an_error() {
        let failed = line(1, "torch", "charlm-2x256", "");
        assert!(summarize_side_by_side(&failed.replace(":}", ":null}")).is_err());
        assert!(summarize_side_by_side("not json\n").is_err());
        // a configuration PyTorch ran and we did not
        let only_torch = line(1, "torch", "charlm-2x256", "{\"tokens_per_s\":1.0}");
        assert!(summarize_side_by_side(&only_torch).is_err());
        // nothing to summarise, or figures no ratio can be taken of
        for empty in ["", "\n \n"] {
            let e = summarize_side_by_side(empty).unwrap_err().to_string();
            assert!(e.contains("no runs"), "{e}");
        }
        for figure in ["0", "-5", "\"5\""] {
            let ours = line(1, "lstm", "c", &format!("{{\"tokens_per_s\":{figure}}}"));
            let e = summarize_side_by_side(&ours).unwrap_err().to_string();
            assert!(e.contains("line 1") && e.contains("positive number"), "{e}");
        }
    }
}

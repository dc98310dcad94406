//! A whole trainable model: input (one-hot, embedding or dense features) -> recurrent stack ->
//! optional dropout -> dense head, with its loss and optimizer.
//!
//! This is the Keras example of the tutorials, `LSTM(300, return_sequences) -> Dropout ->
//! LSTM(300) -> Dropout -> Dense(softmax)`, with two output shapes: a prediction at every step
//! ([`Head::PerStep`], sequence-to-sequence, e.g. a character model) or one after the last step
//! ([`Head::LastStep`], sequence-to-one, e.g. a forecaster or classifier).
//!
//! Parameter names follow a PyTorch module with children `embedding`, `lstm` (the recurrent
//! stack, whatever its cell) and `head`: `embedding.weight` `(V, E)`, `lstm.weight_ih_l0`, ...,
//! `head.weight` `(out, D·H_out)`, `head.bias` `(out)`. Dense input with sequence ids adds
//! `id_embedding.weight` `(N, E)`: one learned row per id, concatenated to every step's features.
//!
//! Inputs are batch-first: tokens `(B, T)`, features `(B, T, I)` (with ids `(B)`).
//!
//! ```
//! use lstm::model::{Head, InputKind, ModelConfig, SequenceModel, Batch, Inputs, Targets};
//! let cfg = ModelConfig {
//!     input: InputKind::Dense { features: 1 },
//!     hidden_size: 4,
//!     head: Head::LastStep { outputs: 1 },
//!     ..Default::default()
//! };
//! let mut model = SequenceModel::new(&cfg, 7).unwrap();
//! let x = vec![0.5f32; 2 * 3]; // B=2, T=3, I=1
//! let y = vec![1.0f32, 0.0];
//! let batch = Batch { inputs: Inputs::Dense(&x), targets: Targets::Values(&y), batch: 2, seq_len: 3, lengths: None };
//! let first = model.train_step(&batch).unwrap().loss;
//! for _ in 0..50 { model.train_step(&batch).unwrap(); }
//! assert!(model.evaluate(&batch).unwrap().loss < first);
//! ```

pub mod batch;
pub mod infer;
pub mod loss;
pub mod memory;
pub mod optim;
mod pool;

use std::ops::Range;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::cell::Mode;
use crate::error::{Error, Result};
use crate::kernels::amx::{gemm_bf16, gemm_bf16_rows, AmxPacked, Bf16Backend, Bf16Rows};
use crate::kernels::{
    add_assign, add_column_sums, matmul, parallel_blocks, with_threads, Precision, Transpose,
};
use crate::params::init::{self, InitScheme};
use crate::params::ParamStore;
use crate::recurrent::{
    Input, Recurrent, RecurrentCache, RecurrentConfig, RecurrentState, SequenceBatch,
};
use optim::{Optimizer, OptimizerConfig};

/// What the model reads at each time step.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum InputKind {
    /// Token ids as one-hot vectors of size `vocab` (a row gather, never a GEMM).
    OneHot {
        /// `V`.
        vocab: usize,
    },
    /// Token ids through a learned embedding `(V, E)`.
    Embedding {
        /// `V`.
        vocab: usize,
        /// `E`.
        dim: usize,
    },
    /// Real-valued features.
    Dense {
        /// `I`.
        features: usize,
    },
    /// Real-valued features and one id per sequence (a series id), whose learned embedding row
    /// `(E)` is appended to every step's features: the recurrent stack reads `I + E` inputs.
    DenseWithIds {
        /// `I`.
        features: usize,
        /// `N`: ids are `0..N`.
        ids: usize,
        /// `E`.
        dim: usize,
    },
}

/// What the dense head predicts.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Head {
    /// One output vector per time step (sequence-to-sequence).
    PerStep {
        /// Output size (the vocabulary for a character model).
        outputs: usize,
    },
    /// One output vector per sequence, from the final hidden state of the top layer (both
    /// directions concatenated), taken at each sequence's last real step.
    LastStep {
        /// Output size (1 for a univariate forecast, the number of classes for a classifier).
        outputs: usize,
    },
    /// One output vector per sequence, from concat pooling: the top layer's final state (as
    /// [`Head::LastStep`]), then the maximum and the mean of its outputs over the sequence's
    /// real steps, `3·D·H_out` features (ULMFiT's classifier head).
    Pooled {
        /// Output size (the number of classes for a classifier).
        outputs: usize,
    },
}

impl Head {
    /// The output size.
    pub fn outputs(&self) -> usize {
        match *self {
            Head::PerStep { outputs } | Head::LastStep { outputs } | Head::Pooled { outputs } => {
                outputs
            }
        }
    }

    /// The head's input features per recurrent output feature (3 for [`Head::Pooled`]).
    pub fn features_per_output(&self) -> usize {
        match self {
            Head::Pooled { .. } => 3,
            _ => 1,
        }
    }
}

/// Configuration of a [`SequenceModel`]. Every field has a default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelConfig {
    /// Input kind and size.
    pub input: InputKind,
    /// Recurrent cell.
    pub mode: Mode,
    /// LSTM peephole variant.
    pub peephole: bool,
    /// LSTM coupled-gates variant.
    pub coupled: bool,
    /// Units per layer.
    pub hidden_size: usize,
    /// Stacked recurrent layers.
    pub num_layers: usize,
    /// LSTM projection size (0 = none).
    pub proj_size: usize,
    /// Bidirectional layers.
    pub bidirectional: bool,
    /// Biases in the recurrent layers.
    pub bias: bool,
    /// Dropout between recurrent layers (training only).
    pub dropout: f32,
    /// Variational recurrent dropout (training only).
    pub recurrent_dropout: f32,
    /// Dropout on the head's input (training only).
    pub head_dropout: f32,
    /// The head.
    pub head: Head,
    /// Initialisation of the recurrent layers.
    pub init: InitScheme,
    /// LSTM forget-gate bias at initialisation.
    pub forget_bias: f32,
    /// Optimizer.
    pub optimizer: OptimizerConfig,
    /// Clip the global gradient norm to this value before each update (0 = off).
    pub clip_grad_norm: f32,
    /// Clamp every gradient to `[-v, v]` before each update (0 = off).
    pub clip_grad_value: f32,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            input: InputKind::OneHot { vocab: 2 },
            mode: Mode::Lstm,
            peephole: false,
            coupled: false,
            hidden_size: 128,
            num_layers: 1,
            proj_size: 0,
            bidirectional: false,
            bias: true,
            dropout: 0.0,
            recurrent_dropout: 0.0,
            head_dropout: 0.0,
            head: Head::PerStep { outputs: 2 },
            init: InitScheme::XavierOrthogonal,
            forget_bias: 1.0,
            optimizer: OptimizerConfig::adam(2e-3),
            clip_grad_norm: 0.0,
            clip_grad_value: 0.0,
        }
    }
}

impl ModelConfig {
    /// The configuration of the recurrent stack inside the model.
    pub fn recurrent(&self) -> RecurrentConfig {
        let (input_size, one_hot) = match self.input {
            InputKind::OneHot { vocab } => (vocab, true),
            InputKind::Embedding { dim, .. } => (dim, false),
            InputKind::Dense { features } => (features, false),
            InputKind::DenseWithIds { features, dim, .. } => (features + dim, false),
        };
        RecurrentConfig {
            mode: self.mode,
            peephole: self.peephole,
            coupled: self.coupled,
            input_size,
            hidden_size: self.hidden_size,
            num_layers: self.num_layers,
            proj_size: self.proj_size,
            bias: self.bias,
            batch_first: true,
            bidirectional: self.bidirectional,
            dropout: self.dropout,
            recurrent_dropout: self.recurrent_dropout,
            one_hot_input: one_hot,
            init: self.init,
            forget_bias: self.forget_bias,
        }
    }

    /// Checks every size and rate, and that the parameters with their gradients and optimizer
    /// state fit in the machine's memory.
    ///
    /// # Errors
    /// [`Error::Config`] naming the field, or saying how much memory the model would need.
    pub fn validate(&self) -> Result<()> {
        self.validate_with(true)
    }

    /// [`Self::validate`], the optimizer's settings checked only with `optimizer`.
    fn validate_with(&self, optimizer: bool) -> Result<()> {
        match self.input {
            InputKind::OneHot { vocab: 0 } => {
                return Err(Error::Config("vocabulary size must be at least 1".into()))
            }
            InputKind::Embedding { vocab, dim } if vocab == 0 || dim == 0 => {
                return Err(Error::Config(
                    "embedding vocabulary and dimension must be at least 1".into(),
                ))
            }
            InputKind::Dense { features: 0 } => {
                return Err(Error::Config("input features must be at least 1".into()))
            }
            InputKind::DenseWithIds { features, ids, dim }
                if features == 0 || ids == 0 || dim == 0 =>
            {
                return Err(Error::Config(
                    "input features, ids and the id embedding dimension must be at least 1".into(),
                ))
            }
            InputKind::DenseWithIds { features, ids, dim }
                if features.checked_add(dim).is_none() || ids.checked_mul(dim).is_none() =>
            {
                return Err(Error::Config(format!(
                    "input features {features}, ids {ids} and id embedding dimension {dim} are too large"
                )))
            }
            _ => {}
        }
        if self.head.outputs() == 0 {
            return Err(Error::Config("the head needs at least 1 output".into()));
        }
        if !(0.0..1.0).contains(&self.head_dropout) {
            return Err(Error::Config(format!(
                "head_dropout must be in [0, 1), got {}",
                self.head_dropout
            )));
        }
        if optimizer {
            self.optimizer.validate()?;
        }
        if !(self.clip_grad_norm >= 0.0 && self.clip_grad_value >= 0.0) {
            return Err(Error::Config("clipping thresholds must be >= 0".into()));
        }
        self.recurrent().validate()?;
        // the parameters, their gradients and the optimizer's moments must fit before anything
        // is allocated (a typed error rather than an allocation failure)
        memory::check_params_memory(self, &["--hidden", "--layers", "--embedding"])
    }
}

/// Inputs of a batch, batch-first.
#[derive(Clone, Copy, Debug)]
pub enum Inputs<'a> {
    /// Token ids `(B, T)` (one-hot or embedding input).
    Tokens(&'a [u32]),
    /// Features `(B, T, I)`.
    Dense(&'a [f32]),
    /// Features `(B, T, I)` and one id per sequence `(B)` ([`InputKind::DenseWithIds`]).
    DenseWithIds {
        /// Features `(B, T, I)`.
        x: &'a [f32],
        /// Ids `(B)`, each below the model's `N`.
        ids: &'a [u32],
    },
}

/// Targets of a batch.
#[derive(Clone, Copy, Debug)]
pub enum Targets<'a> {
    /// Class ids: `(B, T)` for a per-step head, `(B)` for a last-step head; cross-entropy.
    /// [`loss::IGNORE`] skips a position.
    Classes(&'a [u32]),
    /// Real values: `(B, T, out)` or `(B, out)`; mean squared error (over the real steps of a
    /// variable-length batch: padding positions are not counted).
    Values(&'a [f32]),
    /// Real values predicted as distributions: `(B, T)` for a per-step head, `(B)` for a
    /// last-step head, one value per row; the head's outputs must equal `dist.params()` (its
    /// raw outputs per row are decoded as [`loss::Distribution`] describes). The loss is the
    /// mean negative log-likelihood over the counted values; a NaN value, or a padding
    /// position of a variable-length batch, is not counted.
    Distribution {
        /// The target values.
        values: &'a [f32],
        /// The distribution the head predicts.
        dist: loss::Distribution,
        /// Each value's scale (the number it was divided by), one per value; required by a
        /// distribution that [`loss::Distribution::needs_scale`], ignored by the others.
        scales: Option<&'a [f32]>,
    },
}

/// One batch: inputs, targets, sizes and optional per-sequence lengths.
#[derive(Clone, Copy, Debug)]
pub struct Batch<'a> {
    /// Inputs.
    pub inputs: Inputs<'a>,
    /// Targets.
    pub targets: Targets<'a>,
    /// `B`.
    pub batch: usize,
    /// `T`.
    pub seq_len: usize,
    /// Per-sequence lengths (variable-length batch); `None` = all `T`.
    pub lengths: Option<&'a [usize]>,
}

/// The result of a step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepOutput {
    /// Mean loss over the counted targets.
    pub loss: f32,
    /// Number of targets the loss counted (positions for cross-entropy, values for MSE and
    /// distributions).
    pub count: usize,
    /// Global gradient norm before clipping (0 when not training).
    pub grad_norm: f32,
}

/// A trainable recurrent model with its parameters, optimizer state and workspaces.
#[derive(Clone, Debug)]
pub struct SequenceModel {
    config: ModelConfig,
    /// All parameters and gradients.
    pub store: ParamStore,
    embedding: Option<Range<usize>>,
    /// `id_embedding.weight` `(N, E)` ([`InputKind::DenseWithIds`]).
    id_embedding: Option<Range<usize>>,
    rnn: Recurrent,
    head_w: Range<usize>,
    head_b: Range<usize>,
    /// The optimizer and its moments.
    pub optimizer: Optimizer,
    /// RNG for dropout masks.
    pub rng: ChaCha8Rng,
    /// State carried into the next batch (truncated BPTT): `None` starts every batch from
    /// zeros; `Some` starts from it (an empty state: from zeros) and holds the final state
    /// afterwards. A state of another batch size is an error ([`Error::Shape`]).
    pub carry: Option<RecurrentState>,
    /// A caller's stop flag: while it is set and raised, every forward pass ([`Self::predict`],
    /// [`Self::evaluate`], a training step) fails with [`Error::Interrupted`] before it begins,
    /// so a long evaluation or forecast its caller has given up on (Python's Ctrl-C) ends
    /// within a batch. `None` (the default): never.
    pub stop: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    cache: RecurrentCache,
    emb_out: Vec<f32>,
    head_in: Vec<f32>,
    head_mask: Vec<f32>,
    logits: Vec<f32>,
    d_logits: Vec<f32>,
    d_head_in: Vec<f32>,
    /// Per block of rows: the head's partial weight and bias gradients.
    head_partials: Vec<f32>,
    d_out: Vec<f32>,
    d_final: RecurrentState,
    /// Training on a variable-length batch with a per-step head: the `(b·T + t)` rows of the
    /// real positions, the only ones the head and the loss then see (empty otherwise).
    real_rows: Vec<usize>,
    /// Loss and counted targets computed with the logits by the last forward (per-step head,
    /// class targets); taken by `loss`.
    fused_loss: Option<(f32, usize)>,
    targets: Vec<u32>,
    /// A per-step head's distribution targets with the padding masked (NaN).
    value_targets: Vec<f32>,
    /// [`Head::Pooled`]: the step of each maximum, `(B, D·H_out)`.
    pool_argmax: Vec<u32>,
}

impl SequenceModel {
    /// Builds and initialises a model; `seed` fixes initial weights and dropout masks.
    ///
    /// # Errors
    /// [`Error::Config`] if the configuration is invalid.
    pub fn new(config: &ModelConfig, seed: u64) -> Result<SequenceModel> {
        Self::build(config, seed, true)
    }

    /// As [`SequenceModel::new`], the weights left at zero: for a model whose weights are about
    /// to be set from a file (initialising a large model took most of its loading time). The
    /// dropout masks still follow `seed`.
    ///
    /// # Errors
    /// [`Error::Config`] if the configuration is invalid.
    pub fn for_weights(config: &ModelConfig, seed: u64) -> Result<SequenceModel> {
        Self::build(config, seed, false)
    }

    fn build(config: &ModelConfig, seed: u64, init: bool) -> Result<SequenceModel> {
        // the optimizer's settings are checked by a new model and by each training step, not
        // when weights are loaded to be used (the review, 2026-12-07: a directory saved with a
        // momentum now refused would no longer forecast)
        config.validate_with(init)?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut store = ParamStore::default();
        let embedding = match config.input {
            InputKind::Embedding { vocab, dim } => {
                let r = store.add("embedding.weight", &[vocab, dim]);
                // torch.nn.Embedding: N(0, 1)
                if init {
                    for v in &mut store.values[r.clone()] {
                        *v = init::normal(&mut rng) as f32;
                    }
                }
                Some(r)
            }
            _ => None,
        };
        let id_embedding = match config.input {
            InputKind::DenseWithIds { ids, dim, .. } => {
                let r = store.add("id_embedding.weight", &[ids, dim]);
                // as torch.nn.Embedding: N(0, 1)
                if init {
                    for v in &mut store.values[r.clone()] {
                        *v = init::normal(&mut rng) as f32;
                    }
                }
                Some(r)
            }
            _ => None,
        };
        let rnn = if init {
            Recurrent::new(config.recurrent(), &mut store, "lstm.", &mut rng)?
        } else {
            Recurrent::register(config.recurrent(), &mut store, "lstm.")?
        };
        let feat = rnn.config().output_size() * config.head.features_per_output();
        let out = config.head.outputs();
        let head_w = store.add("head.weight", &[out, feat]);
        let head_b = store.add("head.bias", &[out]);
        // torch.nn.Linear: U(±1/sqrt(in)) for weight and bias
        if init {
            let a = 1.0 / (feat as f32).sqrt();
            init::uniform(&mut store.values[head_w.clone()], a, &mut rng);
            init::uniform(&mut store.values[head_b.clone()], a, &mut rng);
        }
        let optimizer = Optimizer::new(config.optimizer, store.len());
        let mut cache = RecurrentCache::default();
        // only a learned embedding needs the gradient w.r.t. the recurrent stack's input
        cache.set_input_grad(learned_input(config.input));
        let dropout_rng = ChaCha8Rng::seed_from_u64(seed ^ 0x9e37_79b9_7f4a_7c15);
        Ok(SequenceModel {
            config: config.clone(),
            store,
            embedding,
            id_embedding,
            rnn,
            head_w,
            head_b,
            optimizer,
            rng: dropout_rng,
            carry: None,
            stop: None,
            cache,
            emb_out: Vec::new(),
            head_in: Vec::new(),
            head_mask: Vec::new(),
            logits: Vec::new(),
            d_logits: Vec::new(),
            d_head_in: Vec::new(),
            head_partials: Vec::new(),
            d_out: Vec::new(),
            d_final: RecurrentState::default(),
            real_rows: Vec::new(),
            fused_loss: None,
            targets: Vec::new(),
            value_targets: Vec::new(),
            pool_argmax: Vec::new(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// The recurrent stack.
    pub fn recurrent(&self) -> &Recurrent {
        &self.rnn
    }

    /// Sets the numeric format of the recurrent stack's and the head's matrix products for the
    /// passes that follow, training and prediction alike: [`Precision::Bf16`] is mixed precision
    /// as PyTorch's autocast does it (bf16 inputs, `f32` sums; the cells, the loss, the weights
    /// and the optimizer in `f32`; see [`Recurrent::set_precision`]). Not saved with the model.
    ///
    /// # Errors
    /// [`Error::Config`] for bf16 on a CPU with neither AMX nor AVX-512 BF16.
    pub fn set_precision(&mut self, precision: Precision) -> Result<()> {
        self.rnn.set_precision(precision)
    }

    /// The numeric format of the recurrent stack's matrix products.
    pub fn precision(&self) -> Precision {
        self.rnn.precision()
    }

    /// Replaces the optimizer (fresh moments).
    ///
    /// # Errors
    /// [`Error::Config`] for hyperparameters out of range ([`OptimizerConfig::validate`]); the
    /// optimizer is then left as it was.
    pub fn set_optimizer(&mut self, config: OptimizerConfig) -> Result<()> {
        config.validate()?;
        self.config.optimizer = config;
        self.optimizer = Optimizer::new(config, self.store.len());
        Ok(())
    }

    /// Outputs of the last forward pass: `(B, T, out)` or `(B, out)` (logits or predictions),
    /// after [`Self::predict`] or [`Self::evaluate`]. (After a training step on a
    /// variable-length batch with a per-step head, only the real positions' rows, in order:
    /// the head skips the padding there.)
    pub fn outputs(&self) -> &[f32] {
        &self.logits
    }

    /// Final recurrent state of the last forward pass.
    pub fn final_state(&self) -> &RecurrentState {
        self.cache.final_state()
    }

    /// Activation memory held by the workspaces, in bytes.
    pub fn workspace_bytes(&self) -> usize {
        let f = |v: &Vec<f32>| v.capacity() * 4;
        self.cache.bytes()
            + f(&self.emb_out)
            + f(&self.head_in)
            + f(&self.logits)
            + f(&self.d_logits)
            + f(&self.d_head_in)
            + f(&self.d_out)
    }

    fn check_inputs(&self, inputs: Inputs<'_>, b: usize, t: usize) -> Result<()> {
        // the buffers are public: resized, the head's slices would panic
        self.store.check_buffers()?;
        if b == 0 || t == 0 {
            return Err(Error::Config(
                "batch and sequence length must be at least 1".into(),
            ));
        }
        // the sizes below multiply these: no product of them may wrap
        let widest = match self.config.input {
            InputKind::Dense { features } | InputKind::DenseWithIds { features, .. } => features,
            InputKind::OneHot { .. } | InputKind::Embedding { .. } => 1,
        }
        .max(self.config.head.outputs())
        .max(4 * self.config.hidden_size)
        .max(1);
        if b.checked_mul(t)
            .and_then(|r| r.checked_mul(widest))
            .is_none()
        {
            return Err(Error::Config(format!(
                "batch {b} and sequence length {t} are too large to address"
            )));
        }
        match (self.config.input, inputs) {
            (
                InputKind::OneHot { vocab } | InputKind::Embedding { vocab, .. },
                Inputs::Tokens(ids),
            ) => {
                if ids.len() != b * t {
                    return Err(Error::shape("input tokens", b * t, ids.len()));
                }
                if let Some(bad) = ids.iter().find(|&&x| x as usize >= vocab) {
                    return Err(Error::Index(format!(
                        "token id {bad} is outside the vocabulary of {vocab}"
                    )));
                }
            }
            (InputKind::Dense { features }, Inputs::Dense(x)) => {
                if x.len() != b * t * features {
                    return Err(Error::shape("input features", b * t * features, x.len()));
                }
            }
            (
                InputKind::DenseWithIds {
                    features, ids: n, ..
                },
                Inputs::DenseWithIds { x, ids },
            ) => {
                if x.len() != b * t * features {
                    return Err(Error::shape("input features", b * t * features, x.len()));
                }
                if ids.len() != b {
                    return Err(Error::shape("sequence ids", b, ids.len()));
                }
                if let Some(bad) = ids.iter().find(|&&x| x as usize >= n) {
                    return Err(Error::Index(format!(
                        "sequence id {bad} is outside the model's {n} ids"
                    )));
                }
            }
            _ => return Err(Error::Config("input kind does not match the model".into())),
        }
        Ok(())
    }

    fn check_batch(&self, batch: &Batch<'_>) -> Result<()> {
        let (b, t) = (batch.batch, batch.seq_len);
        self.check_inputs(batch.inputs, b, t)?;
        let out = self.config.head.outputs();
        let rows = match self.config.head {
            Head::PerStep { .. } => b * t,
            Head::LastStep { .. } | Head::Pooled { .. } => b,
        };
        match batch.targets {
            Targets::Classes(c) => {
                if c.len() != rows {
                    return Err(Error::shape("targets", rows, c.len()));
                }
                if let Some(bad) = c.iter().find(|&&x| x != loss::IGNORE && x as usize >= out) {
                    return Err(Error::Index(format!(
                        "target class {bad} is outside the head's {out} outputs"
                    )));
                }
            }
            Targets::Values(v) => {
                if v.len() != rows * out {
                    return Err(Error::shape("targets", rows * out, v.len()));
                }
            }
            Targets::Distribution {
                values,
                dist,
                scales,
            } => {
                if out != dist.params() {
                    return Err(Error::Config(format!(
                        "a {dist:?} distribution takes {} head outputs per value, the head has {out}",
                        dist.params()
                    )));
                }
                if values.len() != rows {
                    return Err(Error::shape("distribution targets", rows, values.len()));
                }
                match scales {
                    Some(sc) if sc.len() != rows => {
                        return Err(Error::shape("distribution scales", rows, sc.len()));
                    }
                    None if dist.needs_scale() => {
                        return Err(Error::Config(format!(
                            "a {dist:?} distribution reads each value's scale; give Targets::Distribution its scales"
                        )));
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }

    /// Runs the model on inputs only and returns its outputs: logits (or predictions) of shape
    /// `(B, T, out)` for a per-step head, `(B, out)` for a last-step head. No dropout. With
    /// [`Self::carry`] set, the state is carried in and out (step-by-step generation).
    ///
    /// # Errors
    /// Shape or index errors for malformed inputs.
    pub fn predict(
        &mut self,
        inputs: Inputs<'_>,
        batch: usize,
        seq_len: usize,
        lengths: Option<&[usize]>,
    ) -> Result<&[f32]> {
        self.check_inputs(inputs, batch, seq_len)?;
        self.run(inputs, batch, seq_len, lengths, false, false, None)?;
        if self.carry.is_some() {
            self.carry = Some(self.cache.final_state().clone());
        }
        Ok(&self.logits)
    }

    /// Forward pass (and loss). `train` turns dropout on. With `compact`, a per-step head on a
    /// variable-length batch of class targets runs on the real positions only (the outputs are
    /// then not in the `(B, T, out)` layout; [`Self::backward`] follows).
    fn forward(&mut self, batch: &Batch<'_>, train: bool, compact: bool) -> Result<StepOutput> {
        self.check_batch(batch)?;
        let compact = compact
            && batch.lengths.is_some()
            && matches!(self.config.head, Head::PerStep { .. })
            && matches!(batch.targets, Targets::Classes(_));
        // class targets of a per-step head: the loss and its gradient are computed with the
        // logits, block by block
        let classes = match (self.config.head, batch.targets) {
            (Head::PerStep { .. }, Targets::Classes(c)) => Some(c),
            _ => None,
        };
        self.run(
            batch.inputs,
            batch.batch,
            batch.seq_len,
            batch.lengths,
            train,
            compact,
            classes,
        )?;
        self.loss(batch)
    }

    /// Inputs -> logits in `self.logits` (inputs already checked); with `classes` (a per-step
    /// head's class targets) also the loss and `self.d_logits`, kept for [`Self::loss`].
    #[allow(clippy::too_many_arguments)]
    fn run(
        &mut self,
        inputs: Inputs<'_>,
        b: usize,
        t: usize,
        lengths: Option<&[usize]>,
        train: bool,
        compact: bool,
        classes: Option<&[u32]>,
    ) -> Result<()> {
        if self
            .stop
            .as_ref()
            .is_some_and(|s| s.load(std::sync::atomic::Ordering::Relaxed))
        {
            return Err(Error::Interrupted);
        }
        let params = &self.store.values;
        // ---- input
        let input = match (self.config.input, inputs) {
            (InputKind::Embedding { dim, .. }, Inputs::Tokens(ids)) => {
                let emb = &params[self.embedding.clone().expect("embedding model")];
                self.emb_out.clear();
                for &id in ids {
                    let r = id as usize * dim;
                    self.emb_out.extend_from_slice(&emb[r..r + dim]);
                }
                Input::Dense(&self.emb_out)
            }
            (InputKind::DenseWithIds { features, dim, .. }, Inputs::DenseWithIds { x, ids }) => {
                // every step's row: its features, then its sequence's id row
                let emb = &params[self.id_embedding.clone().expect("id embedding model")];
                let width = features + dim;
                // every element is written below
                self.emb_out.resize(b * t * width, 0.0);
                for (j, &id) in ids.iter().enumerate() {
                    let e = &emb[id as usize * dim..(id as usize + 1) * dim];
                    for s in 0..t {
                        let (r, row) = ((j * t + s) * features, (j * t + s) * width);
                        let out = &mut self.emb_out[row..row + width];
                        out[..features].copy_from_slice(&x[r..r + features]);
                        out[features..].copy_from_slice(e);
                    }
                }
                Input::Dense(&self.emb_out)
            }
            (_, Inputs::Tokens(ids)) => Input::Tokens(ids),
            (_, Inputs::Dense(x) | Inputs::DenseWithIds { x, .. }) => Input::Dense(x),
        };
        let rc = self.rnn.config();
        let want = rc.num_layers * rc.directions() * b * rc.hidden_out();
        // an empty state starts from zeros (and is carried out); one of another batch size
        // would be a mix-up
        let carry =
            match self.carry.as_ref() {
                Some(s) if s.h.is_empty() => None,
                Some(s) if s.h.len() != want => return Err(Error::shape(
                    "carried state h (SequenceModel::carry: layers × directions × batch × hidden)",
                    want,
                    s.h.len(),
                )),
                c => c,
            };
        let rng = if train { Some(&mut self.rng) } else { None };
        self.cache.set_compact_output(compact);
        let batch = SequenceBatch {
            lengths,
            initial_state: carry,
            dropout_rng: rng,
            ..SequenceBatch::new(input, t, b)
        };
        self.rnn.forward(params, batch, &mut self.cache)?;
        // ---- head input
        let rc = self.rnn.config();
        let (p, dn, ln) = (rc.hidden_out(), rc.directions(), rc.num_layers);
        let feat = dn * p;
        // the head's input width
        let hf = feat * self.config.head.features_per_output();
        let rows = match self.config.head {
            Head::PerStep { .. } => {
                // the stack's output is the head's input as it is (with `compact`, the real
                // positions only: padding carries no target); a copy only for dropout
                self.head_in.clear();
                self.real_rows.clear();
                if train && self.config.head_dropout > 0.0 {
                    self.head_in.extend_from_slice(self.cache.output());
                }
                if let (true, Some(lens)) = (compact, lengths) {
                    for (bi, &len) in lens.iter().enumerate() {
                        self.real_rows.extend((0..len).map(|ti| bi * t + ti));
                    }
                    self.real_rows.len()
                } else {
                    b * t
                }
            }
            Head::LastStep { .. } => {
                let hn = &self.cache.final_state().h;
                self.real_rows.clear();
                self.head_in.clear();
                self.head_in.resize(b * feat, 0.0);
                for d in 0..dn {
                    let k = (ln - 1) * dn + d;
                    for j in 0..b {
                        self.head_in[j * feat + d * p..j * feat + (d + 1) * p]
                            .copy_from_slice(&hn[(k * b + j) * p..(k * b + j + 1) * p]);
                    }
                }
                b
            }
            Head::Pooled { .. } => {
                // [last | max | mean] per sequence
                let hn = &self.cache.final_state().h;
                self.real_rows.clear();
                self.head_in.clear();
                self.head_in.resize(b * hf, 0.0);
                for d in 0..dn {
                    let k = (ln - 1) * dn + d;
                    for j in 0..b {
                        self.head_in[j * hf + d * p..j * hf + (d + 1) * p]
                            .copy_from_slice(&hn[(k * b + j) * p..(k * b + j + 1) * p]);
                    }
                }
                pool::max_mean_forward(
                    self.cache.output(),
                    b,
                    t,
                    feat,
                    lengths,
                    &mut self.head_in,
                    &mut self.pool_argmax,
                );
                b
            }
        };
        self.head_mask.clear();
        if train && self.config.head_dropout > 0.0 {
            let keep = 1.0 - self.config.head_dropout;
            for x in self.head_in.iter_mut() {
                let m = if self.rng.gen::<f32>() < keep {
                    1.0 / keep
                } else {
                    0.0
                };
                self.head_mask.push(m);
                *x *= m;
            }
        }
        // ---- head: logits = head_in · Wᵀ + b
        let out = self.config.head.outputs();
        // every element is written below
        self.logits.resize(rows * out, 0.0);
        let head_in = if self.head_in.is_empty() {
            self.cache.output()
        } else {
            &self.head_in
        };
        self.fused_loss = None;
        // the head's product in bf16 with the recurrent stack's (Wᵀ packed once per pass)
        let bf = (self.rnn.precision() == Precision::Bf16)
            .then(|| AmxPacked::new(&params[self.head_w.clone()], hf, hf, out, Transpose::Yes));
        match classes {
            Some(c) => {
                // the targets of the head's rows: the real positions only (compact), padding
                // ignored, or all of them
                self.targets.clear();
                if !self.real_rows.is_empty() {
                    self.targets.extend(self.real_rows.iter().map(|&r| c[r]));
                } else if let Some(lens) = lengths {
                    self.targets.extend(c.iter().enumerate().map(|(i, &x)| {
                        if i % t < lens[i / t] {
                            x
                        } else {
                            loss::IGNORE
                        }
                    }));
                } else {
                    self.targets.extend_from_slice(c);
                }
                // every element is written below
                self.d_logits.resize(rows * out, 0.0);
                let n = self.targets.iter().filter(|&&x| x != loss::IGNORE).count();
                let total = dense_forward(
                    rows,
                    hf,
                    out,
                    head_in,
                    &params[self.head_w.clone()],
                    &params[self.head_b.clone()],
                    &mut self.logits,
                    Some((&self.targets, n, &mut self.d_logits)),
                    bf.as_ref(),
                );
                let scale = if n > 0 { 1.0 / n as f64 } else { 0.0 };
                self.fused_loss = Some(((total * scale) as f32, n));
            }
            None => {
                dense_forward(
                    rows,
                    hf,
                    out,
                    head_in,
                    &params[self.head_w.clone()],
                    &params[self.head_b.clone()],
                    &mut self.logits,
                    None,
                    bf.as_ref(),
                );
            }
        }
        Ok(())
    }

    /// Loss of the outputs in `self.logits` against the batch's targets, and its gradient.
    fn loss(&mut self, batch: &Batch<'_>) -> Result<StepOutput> {
        let (loss, count) = match self.fused_loss.take() {
            // a per-step head's class targets: computed with the logits (see `run`)
            Some(fused) => fused,
            None => {
                let out = self.config.head.outputs();
                let rows = self.logits.len() / out;
                // every element is written below
                self.d_logits.resize(rows * out, 0.0);
                match batch.targets {
                    Targets::Classes(c) => {
                        loss::softmax_cross_entropy(&self.logits, c, out, &mut self.d_logits)
                    }
                    // padding positions of a per-step head are not counted, as for
                    // `Classes` and `Distribution`
                    Targets::Values(v) => match (self.config.head, batch.lengths) {
                        (Head::PerStep { .. }, Some(lens)) => {
                            let t = batch.seq_len;
                            let real = |i: usize| {
                                let row = i / out;
                                row % t < lens[row / t]
                            };
                            let n = (0..v.len()).filter(|&i| real(i)).count();
                            let scale = if n > 0 { 1.0 / n as f64 } else { 0.0 };
                            let mut total = 0.0f64;
                            for (i, (d, (&p, &y))) in self
                                .d_logits
                                .iter_mut()
                                .zip(self.logits.iter().zip(v))
                                .enumerate()
                            {
                                *d = if real(i) {
                                    let e = p - y;
                                    total += (e * e) as f64;
                                    (2.0 * e as f64 * scale) as f32
                                } else {
                                    0.0
                                };
                            }
                            ((total * scale) as f32, n)
                        }
                        _ => (loss::mse(&self.logits, v, &mut self.d_logits), v.len()),
                    },
                    Targets::Distribution {
                        values,
                        dist,
                        scales,
                    } => {
                        // padding positions of a per-step head are masked like NaN values
                        let values = match (self.config.head, batch.lengths) {
                            (Head::PerStep { .. }, Some(lens)) => {
                                let t = batch.seq_len;
                                self.value_targets.clear();
                                self.value_targets.extend(values.iter().enumerate().map(
                                    |(i, &y)| {
                                        if i % t < lens[i / t] {
                                            y
                                        } else {
                                            f32::NAN
                                        }
                                    },
                                ));
                                &self.value_targets[..]
                            }
                            _ => values,
                        };
                        let (sum, n) = loss::distribution_nll(
                            dist,
                            &self.logits,
                            values,
                            scales,
                            &mut self.d_logits,
                        );
                        // mean over the counted values: d_logits = ∂nll / n
                        let scale = if n > 0 { 1.0 / n as f64 } else { 0.0 };
                        for d in self.d_logits.iter_mut() {
                            *d = (*d as f64 * scale) as f32;
                        }
                        ((sum as f64 * scale) as f32, n)
                    }
                }
            }
        };
        if !loss.is_finite() {
            return Err(Error::Diverged(format!("loss is {loss}")));
        }
        Ok(StepOutput {
            loss,
            count,
            grad_norm: 0.0,
        })
    }

    /// Backward pass after [`Self::forward`]: fills `store.grads` (zeroed first).
    fn backward(&mut self, batch: &Batch<'_>) -> Result<()> {
        let (b, t) = (batch.batch, batch.seq_len);
        self.store.zero_grad();
        let rc = self.rnn.config().clone();
        let (p, dn, ln, h) = (
            rc.hidden_out(),
            rc.directions(),
            rc.num_layers,
            rc.hidden_size,
        );
        let feat = dn * p;
        // the head's input width
        let hf = feat * self.config.head.features_per_output();
        let out = self.config.head.outputs();
        let rows = self.d_logits.len() / out;
        let params = &self.store.values;
        let grads = &mut self.store.grads;
        let head_in = if self.head_in.is_empty() {
            self.cache.output()
        } else {
            &self.head_in
        };
        // every element is written below
        self.d_head_in.resize(rows * hf, 0.0);
        let (gw, gb) = (self.head_w.clone(), self.head_b.clone());
        let (gw, gb) = if gw.start < gb.start {
            let (lo, hi) = grads.split_at_mut(gb.start);
            (&mut lo[gw], &mut hi[..gb.len()])
        } else {
            let (lo, hi) = grads.split_at_mut(gw.start);
            (&mut hi[..gw.len()], &mut lo[gb])
        };
        let bf = (self.rnn.precision() == Precision::Bf16)
            .then(|| AmxPacked::new(&params[self.head_w.clone()], hf, out, hf, Transpose::No));
        dense_backward(
            rows,
            hf,
            out,
            head_in,
            &params[self.head_w.clone()],
            &self.d_logits,
            gw,
            gb,
            &mut self.d_head_in,
            &mut self.head_partials,
            bf.as_ref(),
        );
        for (d, m) in self.d_head_in.iter_mut().zip(&self.head_mask) {
            *d *= m;
        }
        // into the recurrent stack: a per-step head hands its input gradient on as it is
        let d_final = match self.config.head {
            Head::PerStep { .. } => None,
            Head::LastStep { .. } => {
                self.d_out.clear();
                self.d_out.resize(b * t * feat, 0.0);
                self.d_final.h.clear();
                self.d_final.h.resize(dn * ln * b * p, 0.0);
                self.d_final.c.clear();
                if rc.mode == Mode::Lstm {
                    self.d_final.c.resize(dn * ln * b * h, 0.0);
                }
                for d in 0..dn {
                    let k = (ln - 1) * dn + d;
                    for j in 0..b {
                        self.d_final.h[(k * b + j) * p..(k * b + j + 1) * p].copy_from_slice(
                            &self.d_head_in[j * feat + d * p..j * feat + (d + 1) * p],
                        );
                    }
                }
                Some(&self.d_final)
            }
            Head::Pooled { .. } => {
                self.d_out.clear();
                self.d_out.resize(b * t * feat, 0.0);
                pool::max_mean_backward(
                    &self.d_head_in,
                    b,
                    t,
                    feat,
                    batch.lengths,
                    &self.pool_argmax,
                    &mut self.d_out,
                );
                self.d_final.h.clear();
                self.d_final.h.resize(dn * ln * b * p, 0.0);
                self.d_final.c.clear();
                if rc.mode == Mode::Lstm {
                    self.d_final.c.resize(dn * ln * b * h, 0.0);
                }
                for d in 0..dn {
                    let k = (ln - 1) * dn + d;
                    for j in 0..b {
                        self.d_final.h[(k * b + j) * p..(k * b + j + 1) * p]
                            .copy_from_slice(&self.d_head_in[j * hf + d * p..j * hf + (d + 1) * p]);
                    }
                }
                Some(&self.d_final)
            }
        };
        // (a compact forward pass takes the real positions' gradients as they are)
        let d_out = match self.config.head {
            Head::PerStep { .. } => &self.d_head_in,
            Head::LastStep { .. } | Head::Pooled { .. } => &self.d_out,
        };
        self.rnn
            .backward(params, grads, &mut self.cache, d_out, d_final)?;
        // embedding rows receive the input gradient
        if let (Some(er), InputKind::Embedding { dim, .. }, Inputs::Tokens(ids)) =
            (&self.embedding, self.config.input, batch.inputs)
        {
            let dx = self.cache.d_input();
            let ge = &mut grads[er.clone()];
            for (pos, &id) in ids.iter().enumerate() {
                let r = id as usize * dim;
                for (g, d) in ge[r..r + dim]
                    .iter_mut()
                    .zip(&dx[pos * dim..(pos + 1) * dim])
                {
                    *g += d;
                }
            }
        }
        // x_in[b, t] = [x[b, t], E[ids[b]]]  =>  dE[ids[b]] += Σ_t dx_in[b, t, I..]
        if let (
            Some(er),
            InputKind::DenseWithIds { features, dim, .. },
            Inputs::DenseWithIds { ids, .. },
        ) = (&self.id_embedding, self.config.input, batch.inputs)
        {
            let (dx, width) = (self.cache.d_input(), features + dim);
            let ge = &mut grads[er.clone()];
            for (j, &id) in ids.iter().enumerate() {
                let r = id as usize * dim;
                for s in 0..t {
                    let row = (j * t + s) * width;
                    for (g, d) in ge[r..r + dim]
                        .iter_mut()
                        .zip(&dx[row + features..row + width])
                    {
                        *g += d;
                    }
                }
            }
        }
        Ok(())
    }

    /// Computes the loss and fills `store.grads` without updating the weights.
    ///
    /// # Errors
    /// Shape, index or divergence errors (see [`Error`]).
    pub fn loss_and_grad(&mut self, batch: &Batch<'_>, train: bool) -> Result<StepOutput> {
        let out = self.forward(batch, train, true)?;
        self.backward(batch)?;
        Ok(out)
    }

    /// The loss of a batch of dense input and its gradient with respect to that input,
    /// `dLoss/dx`, in the input's layout `(B, T, I)`: how strongly each time step's input
    /// reaches the loss (the vanishing gradient made measurable). No dropout, no update; the
    /// parameter gradients in `store.grads` are overwritten.
    ///
    /// # Errors
    /// [`Error::Config`] if the model's input is not [`InputKind::Dense`]; otherwise as
    /// [`Self::loss_and_grad`].
    pub fn input_gradient(&mut self, batch: &Batch<'_>) -> Result<(StepOutput, Vec<f32>)> {
        if !matches!(self.config.input, InputKind::Dense { .. }) {
            return Err(Error::Config(
                "the input gradient is defined for dense input only".into(),
            ));
        }
        self.cache.set_input_grad(true);
        let out = self.loss_and_grad(batch, false);
        self.cache.set_input_grad(learned_input(self.config.input));
        Ok((out?, self.cache.d_input().to_vec()))
    }

    /// One training step: forward with dropout, backward, clipping, optimizer update. The loss
    /// is the one before the update. With [`Self::carry`] set, the state is carried in (and
    /// the new final state, detached, is carried out: truncated BPTT).
    ///
    /// # Errors
    /// Shape or index errors for a malformed batch; [`Error::Diverged`] if the loss or gradient
    /// is not finite (the weights are then left unchanged).
    pub fn train_step(&mut self, batch: &Batch<'_>) -> Result<StepOutput> {
        let threads = crate::kernels::num_threads();
        if threads > 1 && rayon::current_thread_index().is_none() {
            // The step runs on one of the pool's threads: each parallel pass inside it then
            // starts on that thread at once, instead of putting the calling thread to sleep and
            // waking it after every pass (charlm-1x128: 5.0 to 4.8 ms per step). This thread's
            // settings go with it.
            let team = crate::recurrent::team_override();
            return rayon::scope(|_| {
                with_threads(threads, || {
                    crate::recurrent::with_team_override(team, || self.train_step_here(batch))
                })
            });
        }
        self.train_step_here(batch)
    }

    /// [`Self::train_step`] on the calling thread.
    fn train_step_here(&mut self, batch: &Batch<'_>) -> Result<StepOutput> {
        let out = self.loss_and_grad(batch, true)?;
        self.update(out)
    }

    /// One data-parallel training step: this process's share of a global batch, its gradient
    /// summed with the other processes' by `reduce`, then the same update everywhere.
    ///
    /// The gradient of this share (a mean over its `n_r` counted targets) is scaled by `n_r`;
    /// `n_r`, `n_r · loss`, a failure flag and the caller's `extra` values are appended to the
    /// flat gradient buffer, and `reduce` sums that one buffer over the processes (one
    /// all-reduce per step); dividing by `Σ n_r` gives the global batch's mean gradient and
    /// loss. Clipping, the finiteness check and the optimizer then run on identical values in
    /// every process. A failure in any process's forward or backward (a malformed batch, a
    /// non-finite loss) is reported through the flag, so every process returns the error
    /// together instead of one leaving the others waiting in `reduce`. `extra` comes back
    /// summed.
    ///
    /// # Errors
    /// As [`Self::train_step`]; errors of `reduce`.
    pub fn train_step_reduced(
        &mut self,
        batch: &Batch<'_>,
        extra: &mut [f32],
        reduce: &mut dyn FnMut(&mut [f32]) -> Result<()>,
    ) -> Result<StepOutput> {
        let local = if batch.batch > 0 {
            self.loss_and_grad(batch, true)
        } else {
            self.store.zero_grad();
            Ok(StepOutput {
                loss: 0.0,
                count: 0,
                grad_norm: 0.0,
            })
        };
        let n = self.store.grads.len();
        let (count, loss, failed) = match &local {
            Ok(o) if o.loss.is_finite() => (o.count as f32, o.loss * o.count as f32, 0.0),
            _ => (0.0, 0.0, 1.0),
        };
        if failed > 0.0 {
            self.store.zero_grad();
        } else {
            for g in &mut self.store.grads {
                *g *= count;
            }
        }
        self.store.grads.extend([count, loss, failed]);
        self.store.grads.extend_from_slice(extra);
        let r = reduce(&mut self.store.grads);
        let tail = self.store.grads.split_off(n);
        r?;
        extra.copy_from_slice(&tail[3..]);
        let (total, loss_sum, failures) = (tail[0], tail[1], tail[2]);
        if failures > 0.0 {
            return Err(match local {
                Err(e) => e,
                Ok(_) => Error::Diverged(format!(
                    "{failures} of the processes failed in this step (a non-finite loss or an error; see their messages)"
                )),
            });
        }
        let inv = if total > 0.0 { 1.0 / total } else { 0.0 };
        for g in &mut self.store.grads {
            *g *= inv;
        }
        self.update(StepOutput {
            loss: loss_sum * inv,
            count: total as usize,
            grad_norm: 0.0,
        })
    }

    /// The end of a training step once `store.grads` holds the batch's gradient: clipping, the
    /// finiteness check, the optimizer, the carried state.
    fn update(&mut self, mut out: StepOutput) -> Result<StepOutput> {
        if self.config.clip_grad_value > 0.0 {
            optim::clip_grad_value(&mut self.store.grads, self.config.clip_grad_value);
        }
        let norm = if self.config.clip_grad_norm > 0.0 {
            optim::clip_grad_norm(&mut self.store.grads, self.config.clip_grad_norm)
        } else {
            optim::grad_norm(&self.store.grads)
        };
        if !norm.is_finite() {
            return Err(Error::Diverged(format!("gradient norm is {norm}")));
        }
        out.grad_norm = norm;
        // (public, so checked where it is used; a model loaded for use does not check it)
        self.optimizer.config.validate()?;
        if self.optimizer.m.len() != self.store.values.len() {
            return Err(Error::shape(
                "optimizer state (SequenceModel::optimizer: one per parameter)",
                self.store.values.len(),
                self.optimizer.m.len(),
            ));
        }
        self.optimizer
            .step(&mut self.store.values, &self.store.grads);
        if self.carry.is_some() {
            self.carry = Some(self.cache.final_state().clone());
        }
        Ok(out)
    }

    /// Loss on a batch without dropout or update (the carried state is used and advanced
    /// like in training when [`Self::carry`] is set).
    ///
    /// # Errors
    /// As [`Self::train_step`].
    pub fn evaluate(&mut self, batch: &Batch<'_>) -> Result<StepOutput> {
        let out = self.forward(batch, false, false)?;
        if self.carry.is_some() {
            self.carry = Some(self.cache.final_state().clone());
        }
        Ok(out)
    }

    /// Convenience for a character model: one training step on tokens `(B, T)` with next-token
    /// targets `(B, T)`; returns the loss.
    ///
    /// # Errors
    /// As [`Self::train_step`].
    pub fn train_step_text(
        &mut self,
        tokens: &[u32],
        targets: &[u32],
        batch: usize,
        seq_len: usize,
    ) -> Result<f32> {
        let b = Batch {
            inputs: Inputs::Tokens(tokens),
            targets: Targets::Classes(targets),
            batch,
            seq_len,
            lengths: None,
        };
        Ok(self.train_step(&b)?.loss)
    }
}

/// Whether the recurrent stack's input is (partly) learned, so that its gradient is needed.
fn learned_input(input: InputKind) -> bool {
    matches!(
        input,
        InputKind::Embedding { .. } | InputKind::DenseWithIds { .. }
    )
}

/// Rows per block of the dense head's passes: fixed, so that the summed gradients never depend
/// on the thread count.
const HEAD_ROWS: usize = 512;

/// `logits (rows, out) = x (rows, feat) · Wᵀ + b`, in blocks of [`HEAD_ROWS`] rows spread over
/// the threads (each block runs its own product). With `ce = (targets, n counted, d_logits)`,
/// each block then adds the bias and computes its rows of the softmax cross-entropy and its
/// gradient (scaled by `1 / n`) in one pass while its logits are in cache (without `ce`, the
/// product starts from the bias); returns
/// the sum of the rows' losses (unscaled, blocks added in order; 0 without `ce`).
#[allow(clippy::too_many_arguments)]
fn dense_forward(
    rows: usize,
    feat: usize,
    out: usize,
    x: &[f32],
    w: &[f32],
    b: &[f32],
    logits: &mut [f32],
    ce: Option<(&[u32], usize, &mut [f32])>,
    bf: Option<&AmxPacked>,
) -> f64 {
    use rayon::prelude::*;
    let scale = match &ce {
        Some((_, n, _)) if *n > 0 => 1.0 / *n as f32,
        _ => 0.0,
    };
    let targets = ce.as_ref().map(|(t, _, _)| *t);
    let block = |i: usize, z: &mut [f32], dz: Option<&mut [f32]>| -> f64 {
        let (r0, n) = (i * HEAD_ROWS, z.len() / out);
        let xb = &x[r0 * feat..(r0 + n) * feat];
        // with the loss, the bias is added by its pass over the logits; else first
        let fused = matches!((&dz, targets), (Some(_), Some(_)));
        if !fused {
            for row in z.chunks_exact_mut(out) {
                row.copy_from_slice(b);
            }
        }
        with_threads(1, || match bf {
            Some(wt) => gemm_bf16(n, xb, feat, wt, z, out, !fused),
            None => matmul(
                n,
                out,
                feat,
                xb,
                feat,
                Transpose::No,
                w,
                feat,
                Transpose::Yes,
                z,
                out,
                !fused,
            ),
        });
        match (dz, targets) {
            (Some(dz), Some(t)) => {
                loss::cross_entropy_rows_bias(z, b, &t[r0..r0 + n], out, scale, dz)
            }
            _ => 0.0,
        }
    };
    let chunk = HEAD_ROWS * out;
    let logits = logits[..rows * out].chunks_mut(chunk);
    let mut blocks: Vec<(&mut [f32], Option<&mut [f32]>)> = match ce {
        Some((_, _, d_logits)) => logits
            .zip(d_logits[..rows * out].chunks_mut(chunk).map(Some))
            .collect(),
        None => logits.map(|z| (z, None)).collect(),
    };
    let sums: Vec<f64> = if parallel_blocks(rows, HEAD_ROWS) {
        blocks
            .par_iter_mut()
            .enumerate()
            .map(|(i, (z, dz))| block(i, z, dz.as_deref_mut()))
            .collect()
    } else {
        blocks
            .iter_mut()
            .enumerate()
            .map(|(i, (z, dz))| block(i, z, dz.as_deref_mut()))
            .collect()
    };
    sums.iter().sum()
}

/// The backward of [`dense_forward`] in one pass over the same blocks: each block computes its
/// rows of `dx = dz · W` and its partial `dzᵀ · x` and column sums of `dz`; the partials are
/// then added to `gw (out, feat)` and `gb (out)` in block order.
#[allow(clippy::too_many_arguments)]
fn dense_backward(
    rows: usize,
    feat: usize,
    out: usize,
    x: &[f32],
    w: &[f32],
    dz: &[f32],
    gw: &mut [f32],
    gb: &mut [f32],
    dx: &mut [f32],
    partials: &mut Vec<f32>,
    bf: Option<&AmxPacked>,
) {
    use rayon::prelude::*;
    let blocks = rows.div_ceil(HEAD_ROWS).max(1);
    let part = out * feat + out;
    partials.clear();
    partials.resize(blocks * part, 0.0);
    let block = |(i, (dxb, pb)): (usize, (&mut [f32], &mut [f32]))| {
        let (r0, n) = (i * HEAD_ROWS, dxb.len() / feat);
        let (xb, dzb) = (
            &x[r0 * feat..(r0 + n) * feat],
            &dz[r0 * out..(r0 + n) * out],
        );
        let (pw, pbias) = pb.split_at_mut(out * feat);
        if let Some(wb) = bf {
            // bf16: dx = dz · W, and dW = dzᵀ · x with dzᵀ converted transposed (`out` is
            // the narrow side) and x packed as stored
            with_threads(1, || {
                gemm_bf16(n, dzb, out, wb, dxb, feat, false);
                let mut dzt = Bf16Rows::default();
                dzt.fill_op(dzb, out, Transpose::Yes, out, n);
                let xp = AmxPacked::new(xb, feat, n, feat, Transpose::No);
                gemm_bf16_rows(Bf16Backend::best(), &dzt, &xp, pw, feat, true);
            });
            add_column_sums(dzb, n, out, pbias);
            return;
        }
        with_threads(1, || {
            // logits = x · Wᵀ + b  =>  dx = dz · W, dW = dzᵀ · x, db = column sums of dz
            matmul(
                n,
                feat,
                out,
                dzb,
                out,
                Transpose::No,
                w,
                feat,
                Transpose::No,
                dxb,
                feat,
                false,
            );
            matmul(
                out,
                feat,
                n,
                dzb,
                out,
                Transpose::Yes,
                xb,
                feat,
                Transpose::No,
                pw,
                feat,
                true,
            );
        });
        add_column_sums(dzb, n, out, pbias);
    };
    let dx = &mut dx[..rows * feat];
    if parallel_blocks(rows, HEAD_ROWS) {
        dx.par_chunks_mut(HEAD_ROWS * feat)
            .zip(partials.par_chunks_mut(part))
            .enumerate()
            .for_each(block);
    } else {
        dx.chunks_mut(HEAD_ROWS * feat)
            .zip(partials.chunks_mut(part))
            .enumerate()
            .for_each(block);
    }
    for p in partials.chunks(part) {
        add_assign(gw, &p[..out * feat]);
        add_assign(gb, &p[out * feat..]);
    }
}

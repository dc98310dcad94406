//! A stack's configuration (the arguments of `torch.nn.LSTM`), its construction and
//! initialisation.

use super::*;

/// Configuration of a recurrent stack; the fields mirror `torch.nn.LSTM`'s arguments.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecurrentConfig {
    /// The cell: LSTM, GRU, RNN (tanh or ReLU).
    pub mode: Mode,
    /// LSTM only: peephole connections (Gers & Schmidhuber 2000, ONNX convention).
    pub peephole: bool,
    /// LSTM only: coupled input and forget gates, `i = 1 - f`.
    pub coupled: bool,
    /// `I`: features per time step (the vocabulary size for one-hot input).
    pub input_size: usize,
    /// `H`: units per layer and direction.
    pub hidden_size: usize,
    /// `L`: stacked layers.
    pub num_layers: usize,
    /// `P`: LSTM projection size (`0` = no projection; then `H_out = H`).
    pub proj_size: usize,
    /// Whether the layers have the two bias vectors.
    pub bias: bool,
    /// Input and output are `(B, T, ·)` instead of `(T, B, ·)`.
    pub batch_first: bool,
    /// Two directions (`D = 2`), outputs concatenated forward then reverse.
    pub bidirectional: bool,
    /// Dropout on each layer's output except the last, training only (PyTorch's `dropout`).
    pub dropout: f32,
    /// Variational dropout on the hidden-to-hidden path, one mask per sequence and layer
    /// (Keras' `recurrent_dropout`, Gal & Ghahramani 2016), training only.
    pub recurrent_dropout: f32,
    /// Layer 0 takes token ids as one-hot vectors of `input_size` (computed as a row gather).
    pub one_hot_input: bool,
    /// Initialisation scheme.
    pub init: InitScheme,
    /// Initial forget-gate bias for LSTM (split evenly over `bias_ih` and `bias_hh`) with the
    /// `XavierOrthogonal` scheme (Jozefowicz et al. 2015).
    pub forget_bias: f32,
}

impl Default for RecurrentConfig {
    fn default() -> Self {
        RecurrentConfig {
            mode: Mode::Lstm,
            peephole: false,
            coupled: false,
            input_size: 1,
            hidden_size: 1,
            num_layers: 1,
            proj_size: 0,
            bias: true,
            batch_first: false,
            bidirectional: false,
            dropout: 0.0,
            recurrent_dropout: 0.0,
            one_hot_input: false,
            init: InitScheme::XavierOrthogonal,
            forget_bias: 1.0,
        }
    }
}

impl RecurrentConfig {
    /// `D`: 2 if bidirectional, else 1.
    pub fn directions(&self) -> usize {
        if self.bidirectional {
            2
        } else {
            1
        }
    }

    /// `H_out`: the size of the hidden state (the projection size if any).
    pub fn hidden_out(&self) -> usize {
        if self.proj_size > 0 {
            self.proj_size
        } else {
            self.hidden_size
        }
    }

    /// Width of the output per time step: `D · H_out`.
    pub fn output_size(&self) -> usize {
        self.directions() * self.hidden_out()
    }

    /// Checks sizes and combinations.
    ///
    /// # Errors
    /// [`Error::Config`] naming the offending field.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(m));
        if self.input_size == 0 || self.hidden_size == 0 || self.num_layers == 0 {
            return bad(format!(
                "input_size, hidden_size and num_layers must be at least 1 (got {}, {}, {})",
                self.input_size, self.hidden_size, self.num_layers
            ));
        }
        if self.proj_size > 0 && self.mode != Mode::Lstm {
            return bad("proj_size is only supported for LSTM".into());
        }
        if self.proj_size >= self.hidden_size && self.proj_size > 0 {
            return bad(format!(
                "proj_size ({}) must be smaller than hidden_size ({})",
                self.proj_size, self.hidden_size
            ));
        }
        if (self.peephole || self.coupled) && self.mode != Mode::Lstm {
            return bad("peephole and coupled variants apply to LSTM only".into());
        }
        for (name, p) in [
            ("dropout", self.dropout),
            ("recurrent_dropout", self.recurrent_dropout),
        ] {
            if !(0.0..1.0).contains(&p) {
                return bad(format!("{name} must be in [0, 1), got {p}"));
            }
        }
        if !self.forget_bias.is_finite() {
            return bad("forget_bias must be finite".into());
        }
        let params = self.num_params();
        if params > (1usize << 31) {
            return bad(format!(
                "{params} parameters is more than this library supports"
            ));
        }
        Ok(())
    }

    /// Number of parameters the stack has (saturating at `usize::MAX` for sizes no machine
    /// holds, so that [`Self::validate`] can refuse them).
    pub fn num_params(&self) -> usize {
        let (g, h, p, d) = (
            self.mode.gates(),
            self.hidden_size,
            self.hidden_out(),
            self.directions(),
        );
        let (mul, add) = (usize::saturating_mul, usize::saturating_add);
        let per_layer = |i: usize| {
            let mut per = add(mul(mul(g, h), i), mul(mul(g, h), p));
            if self.bias {
                per = add(per, mul(2 * g, h));
            }
            if self.proj_size > 0 {
                per = add(per, mul(p, h));
            }
            if self.peephole {
                per = add(per, mul(3, h));
            }
            mul(d, per)
        };
        if self.num_layers == 0 {
            return 0;
        }
        // layer 0 reads the input, the others the layer below
        add(
            per_layer(self.input_size),
            mul(self.num_layers - 1, per_layer(mul(d, p))),
        )
    }
}

impl Recurrent {
    /// Validates `cfg`, registers the stack's tensors in `store` under `prefix` (e.g. `"lstm."`)
    /// and initialises them from `rng`.
    ///
    /// # Errors
    /// [`Error::Config`] if the configuration is invalid, or if `store` already holds a stack
    /// under `prefix`.
    pub fn new(
        cfg: RecurrentConfig,
        store: &mut ParamStore,
        prefix: &str,
        rng: &mut ChaCha8Rng,
    ) -> Result<Recurrent> {
        let rec = Self::register(cfg, store, prefix)?;
        rec.init_params(&mut store.values, rng);
        Ok(rec)
    }

    /// As [`Recurrent::new`], the tensors left at zero: for weights about to be set (a model
    /// read from a file; initialising a large one took most of its loading time).
    ///
    /// # Errors
    /// As [`Recurrent::new`].
    pub fn register(
        cfg: RecurrentConfig,
        store: &mut ParamStore,
        prefix: &str,
    ) -> Result<Recurrent> {
        cfg.validate()?;
        let first = format!("{prefix}weight_ih{}", dir_suffix(0, 0));
        if store.info(&first).is_some() {
            return Err(Error::Config(format!(
                "the store already holds a stack under the prefix {prefix:?} (a tensor {first:?}); give each stack its own prefix"
            )));
        }
        let start = store.len();
        let (g, h, p, dn) = (
            cfg.mode.gates(),
            cfg.hidden_size,
            cfg.hidden_out(),
            cfg.directions(),
        );
        let mut dirs = Vec::new();
        for l in 0..cfg.num_layers {
            let input = if l == 0 { cfg.input_size } else { dn * p };
            for d in 0..dn {
                let s = dir_suffix(l, d);
                let name = |n: &str| format!("{prefix}{n}{s}");
                let w_ih = store.add(&name("weight_ih"), &[g * h, input]);
                let w_hh = store.add(&name("weight_hh"), &[g * h, p]);
                let (b_ih, b_hh) = if cfg.bias {
                    (
                        Some(store.add(&name("bias_ih"), &[g * h])),
                        Some(store.add(&name("bias_hh"), &[g * h])),
                    )
                } else {
                    (None, None)
                };
                let w_hr = (cfg.proj_size > 0).then(|| store.add(&name("weight_hr"), &[p, h]));
                let peep = cfg.peephole.then(|| {
                    let a = store.add(&name("peephole_i"), &[h]);
                    store.add(&name("peephole_f"), &[h]);
                    let c = store.add(&name("peephole_o"), &[h]);
                    a.start..c.end
                });
                dirs.push(DirParams {
                    input,
                    w_ih,
                    w_hh,
                    b_ih,
                    b_hh,
                    w_hr,
                    peep,
                });
            }
        }
        let end = store.len();
        Ok(Recurrent {
            cfg,
            dirs,
            start,
            end,
            precision: Precision::F32,
        })
    }

    /// Sets the numeric format of the stack's matrix products (see [`Precision`]).
    ///
    /// With [`Precision::Bf16`] the input projection, the per-step recurrent product, the
    /// input gradient and the weight gradients take bf16 inputs with `f32` sums (on AMX tiles,
    /// else AVX-512 BF16); the cells, the states, the projection's product (`proj_size > 0`)
    /// and a one-hot input's rows stay `f32`.
    ///
    /// # Errors
    /// [`Error::Config`] for `Bf16` on a CPU with neither AMX nor AVX-512 BF16 (the scalar
    /// fallback would be slower than `f32`).
    pub fn set_precision(&mut self, precision: Precision) -> Result<()> {
        if precision == Precision::Bf16 && Bf16Backend::best() == Bf16Backend::Scalar {
            return Err(Error::Config(
                "bf16 precision needs a CPU with AMX or AVX-512 BF16 (avx512_bf16); this one has \
                 neither: train in f32 (leave out --precision bf16)"
                    .into(),
            ));
        }
        self.precision = precision;
        Ok(())
    }

    /// The numeric format of the stack's matrix products.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// The configuration.
    pub fn config(&self) -> &RecurrentConfig {
        &self.cfg
    }

    /// Re-initialises the parameters in `values` with the configured scheme.
    pub fn init_params(&self, values: &mut [f32], rng: &mut ChaCha8Rng) {
        let cfg = &self.cfg;
        let (g, h, p) = (cfg.mode.gates(), cfg.hidden_size, cfg.hidden_out());
        for dp in &self.dirs {
            match cfg.init {
                InitScheme::PytorchUniform => {
                    let a = 1.0 / (h as f32).sqrt();
                    let mut ranges = vec![dp.w_ih.clone(), dp.w_hh.clone()];
                    ranges.extend(dp.b_ih.clone());
                    ranges.extend(dp.b_hh.clone());
                    ranges.extend(dp.w_hr.clone());
                    ranges.extend(dp.peep.clone());
                    for r in ranges {
                        init::uniform(&mut values[r], a, rng);
                    }
                }
                InitScheme::XavierOrthogonal => {
                    // Per gate block, as Keras does: each (H, I) block Glorot, each (H, P)
                    // block orthogonal.
                    for k in 0..g {
                        let w = &mut values[dp.w_ih.clone()][k * h * dp.input..];
                        init::xavier_uniform(w, h, dp.input, rng);
                    }
                    for k in 0..g {
                        let w = &mut values[dp.w_hh.clone()][k * h * p..];
                        init::orthogonal(&mut w[..h * p], h, p, rng);
                    }
                    if let Some(r) = &dp.w_hr {
                        init::xavier_uniform(&mut values[r.clone()], p, h, rng);
                    }
                    for r in [&dp.b_ih, &dp.b_hh].into_iter().flatten() {
                        values[r.clone()].fill(0.0);
                        if cfg.mode == Mode::Lstm {
                            values[r.clone()][h..2 * h].fill(cfg.forget_bias / 2.0);
                        }
                    }
                    if let Some(r) = &dp.peep {
                        values[r.clone()].fill(0.0);
                    }
                }
            }
        }
    }

    /// Number of parameters (same as [`RecurrentConfig::num_params`]).
    pub fn num_params(&self) -> usize {
        self.cfg.num_params()
    }
}

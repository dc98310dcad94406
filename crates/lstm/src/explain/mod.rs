//! Looking inside a trained LSTM: every gate, cell and hidden value of every unit at every
//! position of a text, which units track something a person can name, and how often the gates
//! saturate (Karpathy, Johnson & Fei-Fei 2015, "Visualizing and Understanding Recurrent
//! Networks").
//!
//! [`trace`] steps a character (or word) model through a text one token at a time with the
//! library's own cell step, [`crate::cell::lstm::forward_step`], and the weights in the model's
//! [`crate::params::ParamStore`] (PyTorch's names and gate order i, f, g, o), keeping per layer
//! and position the activated gates, the cell state and the hidden state, and per position the
//! top-5 next-token predictions of the head. [`explain`] adds unit rankings ([`rank_units`]:
//! the Pearson correlation of each unit's cell and hidden state with simple features of the
//! text such as "inside quotes" or "position in line") and gate saturation
//! ([`saturation`]: the fraction of positions each gate is below 0.1 or above 0.9). Everything
//! serialises to JSON with serde; [`crate::pages::html`] turns it into a page.
//!
//! [`unit_weights`] and [`single_unit`] are the one-unit cell of the tutorials: one scalar
//! input `z` (the previous hidden state plus the input), the previous cell state, one weight
//! and one bias per gate.
//!
//! ```
//! use lstm::explain::{explain, Quantity};
//! use lstm::model::{Head, InputKind, ModelConfig, SequenceModel};
//! use lstm::data::vocab::Vocab;
//! let vocab = Vocab::chars_from("ab\"c\n");
//! let cfg = ModelConfig {
//!     input: InputKind::OneHot { vocab: vocab.len() },
//!     hidden_size: 4,
//!     head: Head::PerStep { outputs: vocab.len() },
//!     ..Default::default()
//! };
//! let model = SequenceModel::new(&cfg, 0).unwrap();
//! let e = explain(&model, &vocab, "a\"bc\"\nab").unwrap();
//! assert_eq!(e.trace.tokens.len(), 8);
//! assert_eq!(e.trace.layers[0].get(Quantity::Cell).len(), 8 * 4); // (T, H)
//! assert_eq!(e.trace.top[0].len(), 5);
//! ```

use serde::{Deserialize, Serialize};

use crate::cell::lstm::{forward_step, LstmStep, Peepholes};
use crate::cell::Mode;
use crate::data::vocab::{TokenKind, Vocab};
use crate::error::{Error, Result};
use crate::model::{Head, InputKind, SequenceModel};

/// Number of next-token predictions kept per position.
pub const TOP_K: usize = 5;
/// A sigmoid gate below this value counts as left-saturated (closed).
pub const SATURATED_LOW: f32 = 0.1;
/// A sigmoid gate above this value counts as right-saturated (open).
pub const SATURATED_HIGH: f32 = 0.9;

/// One of the per-unit values of an LSTM step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Quantity {
    /// `i`, the input gate.
    #[serde(rename = "i")]
    InGate,
    /// `f`, the forget gate.
    #[serde(rename = "f")]
    ForgetGate,
    /// `g`, the cell candidate (tanh).
    #[serde(rename = "g")]
    CellCandidate,
    /// `o`, the output gate.
    #[serde(rename = "o")]
    OutGate,
    /// `c_t`, the cell state.
    #[serde(rename = "c")]
    Cell,
    /// `h_t`, the hidden state.
    #[serde(rename = "h")]
    Hidden,
}

impl Quantity {
    /// All six, in the order i, f, g, o, c, h.
    pub const ALL: [Quantity; 6] = [
        Quantity::InGate,
        Quantity::ForgetGate,
        Quantity::CellCandidate,
        Quantity::OutGate,
        Quantity::Cell,
        Quantity::Hidden,
    ];

    /// The one-letter name used in pages and on the command line (`i f g o c h`).
    pub fn short(self) -> &'static str {
        match self {
            Quantity::InGate => "i",
            Quantity::ForgetGate => "f",
            Quantity::CellCandidate => "g",
            Quantity::OutGate => "o",
            Quantity::Cell => "c",
            Quantity::Hidden => "h",
        }
    }

    /// Parses [`Quantity::short`] or a long name (`input`, `forget`, `candidate`, `output`,
    /// `cell`, `hidden`).
    pub fn parse(s: &str) -> Option<Quantity> {
        Some(match s.to_ascii_lowercase().as_str() {
            "i" | "input" | "in_gate" => Quantity::InGate,
            "f" | "forget" | "forget_gate" => Quantity::ForgetGate,
            "g" | "candidate" | "cell_candidate" => Quantity::CellCandidate,
            "o" | "output" | "out_gate" => Quantity::OutGate,
            "c" | "cell" => Quantity::Cell,
            "h" | "hidden" => Quantity::Hidden,
            _ => return None,
        })
    }
}

/// Everything one layer computed over a text, each `(T, H)` row-major (position, unit).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LayerTrace {
    /// Activated input gate `i`.
    pub i: Vec<f32>,
    /// Activated forget gate `f`.
    pub f: Vec<f32>,
    /// Cell candidate `g = tanh(a_g)`.
    pub g: Vec<f32>,
    /// Activated output gate `o`.
    pub o: Vec<f32>,
    /// Cell state `c_t` after the step.
    pub c: Vec<f32>,
    /// Hidden state `h_t` after the step.
    pub h: Vec<f32>,
}

impl LayerTrace {
    /// The `(T, H)` values of one quantity.
    pub fn get(&self, q: Quantity) -> &[f32] {
        match q {
            Quantity::InGate => &self.i,
            Quantity::ForgetGate => &self.f,
            Quantity::CellCandidate => &self.g,
            Quantity::OutGate => &self.o,
            Quantity::Cell => &self.c,
            Quantity::Hidden => &self.h,
        }
    }

    fn get_mut(&mut self, q: Quantity) -> &mut Vec<f32> {
        match q {
            Quantity::InGate => &mut self.i,
            Quantity::ForgetGate => &mut self.f,
            Quantity::CellCandidate => &mut self.g,
            Quantity::OutGate => &mut self.o,
            Quantity::Cell => &mut self.c,
            Quantity::Hidden => &mut self.h,
        }
    }
}

/// One predicted next token and its probability.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// The token's text (U+FFFD for the unknown token).
    pub token: String,
    /// Softmax probability.
    pub prob: f32,
}

/// A model's activations over one text.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Trace {
    /// `char` or `word`: how the tokens join back into text.
    pub token_kind: String,
    /// The text's tokens, `T` of them.
    pub tokens: Vec<String>,
    /// Their ids in the model's vocabulary.
    pub ids: Vec<u32>,
    /// `H`, units per layer.
    pub hidden: usize,
    /// `standard`, `peephole`, `coupled` or `peephole+coupled`.
    pub variant: String,
    /// One entry per layer, bottom first.
    pub layers: Vec<LayerTrace>,
    /// Per position, the [`TOP_K`] most probable next tokens after reading it.
    pub top: Vec<Vec<Prediction>>,
}

/// Correlation of one unit's value with one feature of the text.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UnitScore {
    /// Layer, from 0 at the bottom.
    pub layer: usize,
    /// Unit within the layer.
    pub unit: usize,
    /// The unit's value that was correlated (cell or hidden state).
    pub quantity: Quantity,
    /// The feature's key (see [`Feature::key`]).
    pub feature: String,
    /// Pearson correlation over the text's positions, in `[-1, 1]`.
    pub correlation: f32,
}

/// The units that follow one feature most closely.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FeatureRanking {
    /// The feature's key.
    pub feature: String,
    /// What the feature measures, for a reader.
    pub description: String,
    /// False when the feature is constant over the text (no correlation can be computed).
    pub varies: bool,
    /// Best units first, by `|correlation|`.
    pub best: Vec<UnitScore>,
}

/// Saturation of one gate of one layer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GateSaturation {
    /// Layer, from 0.
    pub layer: usize,
    /// `i`, `f` or `o`.
    pub gate: Quantity,
    /// Per unit, the fraction of positions with the gate below [`SATURATED_LOW`].
    pub left: Vec<f32>,
    /// Per unit, the fraction of positions with the gate above [`SATURATED_HIGH`].
    pub right: Vec<f32>,
    /// Ten bins over `[0, 1]`: how many units are saturated (either side) for that fraction
    /// of the positions; the last bin includes 1.
    pub histogram: Vec<usize>,
}

/// Everything [`crate::pages::html::explain_page`] shows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    /// The activations.
    pub trace: Trace,
    /// One ranking per feature of [`features`].
    pub rankings: Vec<FeatureRanking>,
    /// Every unit's best feature (cell or hidden state), most interpretable first.
    pub overall: Vec<UnitScore>,
    /// Per layer, the gates i, f, o.
    pub saturation: Vec<GateSaturation>,
}

/// A simple property of each position of a text, to correlate units with.
#[derive(Clone, Debug, PartialEq)]
pub struct Feature {
    /// Short name (`quotes`, `line_position`, `brackets`, `in_word`).
    pub key: &'static str,
    /// What it measures.
    pub description: &'static str,
    /// Its value after reading each token.
    pub values: Vec<f32>,
}

/// The features of a tokenised text, each valued *after* reading the token at that position:
/// inside double quotes (0/1), position in the line (tokens since the last newline), bracket
/// depth (`(`, `[`, `{`), inside a word (the token is alphanumeric).
pub fn features(tokens: &[String]) -> Vec<Feature> {
    let n = tokens.len();
    let (mut quotes, mut line, mut brackets, mut word) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut inside, mut col, mut depth) = (false, 0usize, 0usize);
    for t in tokens {
        match t.as_str() {
            "\"" => inside = !inside,
            "\n" => col = 0,
            "(" | "[" | "{" => depth += 1,
            ")" | "]" | "}" => depth = depth.saturating_sub(1),
            _ => {}
        }
        if t != "\n" {
            col += 1;
        }
        quotes.push(inside as u8 as f32);
        line.push(col as f32);
        brackets.push(depth as f32);
        word.push(t.chars().all(|c| c.is_alphanumeric()) as u8 as f32);
    }
    vec![
        Feature {
            key: "quotes",
            description: "inside double quotes",
            values: quotes,
        },
        Feature {
            key: "line_position",
            description: "position in the line",
            values: line,
        },
        Feature {
            key: "brackets",
            description: "bracket depth ( [ {",
            values: brackets,
        },
        Feature {
            key: "in_word",
            description: "inside a word",
            values: word,
        },
    ]
}

/// Pearson correlation of two equally long series; `None` when either is constant.
pub fn correlation(a: &[f32], b: &[f32]) -> Option<f32> {
    let n = a.len().min(b.len());
    if n < 2 {
        return None;
    }
    let mean = |x: &[f32]| x[..n].iter().map(|&v| v as f64).sum::<f64>() / n as f64;
    let (ma, mb) = (mean(a), mean(b));
    let (mut sab, mut saa, mut sbb) = (0.0f64, 0.0f64, 0.0f64);
    for t in 0..n {
        let (da, db) = (a[t] as f64 - ma, b[t] as f64 - mb);
        sab += da * db;
        saa += da * da;
        sbb += db * db;
    }
    if saa <= 1e-12 || sbb <= 1e-12 {
        return None;
    }
    Some((sab / (saa * sbb).sqrt()) as f32)
}

fn param<'a>(model: &'a SequenceModel, name: &str) -> Result<&'a [f32]> {
    model
        .store
        .get(name)
        .ok_or_else(|| Error::MissingTensor(name.to_string()))
}

/// Checks that `model` is one [`trace`] can step: token input, unidirectional LSTM layers
/// without projection, a per-step head over the vocabulary.
fn check_model(model: &SequenceModel, vocab: &Vocab) -> Result<()> {
    let cfg = model.config();
    if cfg.mode != Mode::Lstm {
        return Err(Error::Config(format!(
            "only LSTM models can be explained (this one is {})",
            cfg.mode.torch_name()
        )));
    }
    if cfg.bidirectional || cfg.proj_size > 0 {
        return Err(Error::Config(
            "bidirectional or projected LSTMs cannot be explained yet".into(),
        ));
    }
    let v = match cfg.input {
        InputKind::OneHot { vocab } | InputKind::Embedding { vocab, .. } => vocab,
        InputKind::Dense { .. } | InputKind::DenseWithIds { .. } => {
            return Err(Error::Config(
                "the model reads real-valued features, not tokens; explain needs a text model"
                    .into(),
            ))
        }
    };
    match cfg.head {
        Head::PerStep { outputs } if outputs == v => {}
        _ => {
            return Err(Error::Config(
                "explain needs a language model (a per-step head over the vocabulary)".into(),
            ))
        }
    }
    if v != vocab.len() {
        return Err(Error::shape("vocabulary", v, vocab.len()));
    }
    Ok(())
}

fn variant(model: &SequenceModel) -> String {
    let cfg = model.config();
    match (cfg.peephole, cfg.coupled) {
        (false, false) => "standard",
        (true, false) => "peephole",
        (false, true) => "coupled",
        (true, true) => "peephole+coupled",
    }
    .to_string()
}

/// Steps `model` through `text` one token at a time and keeps every layer's gates, cell and
/// hidden state at every position, and the top-5 next-token predictions.
///
/// Takes a text model (token input, unidirectional LSTM without projection, per-step head),
/// its vocabulary and a non-empty text; unknown tokens are read as the unknown token. The
/// state starts at zero. Returns a [`Trace`] with `T` = the number of tokens.
///
/// # Errors
/// [`Error::Config`] for a model of another kind or an empty text; [`Error::Shape`] if the
/// vocabulary does not match the model; [`Error::MissingTensor`] if a weight is missing.
pub fn trace(model: &SequenceModel, vocab: &Vocab, text: &str) -> Result<Trace> {
    check_model(model, vocab)?;
    let cfg = model.config();
    let tokens = vocab.split(text);
    if tokens.is_empty() {
        return Err(Error::Config("the text to explain is empty".into()));
    }
    let ids = vocab.encode_input(text);
    let (h, layers, t_len) = (cfg.hidden_size, cfg.num_layers, tokens.len());
    let out = cfg.head.outputs();
    let embedding = match cfg.input {
        InputKind::Embedding { dim, .. } => Some((param(model, "embedding.weight")?, dim)),
        _ => None,
    };
    struct Weights<'a> {
        w_ih: &'a [f32],
        w_hh: &'a [f32],
        bias: Vec<f32>,
        peep: Option<[&'a [f32]; 3]>,
        input: usize,
    }
    let mut weights = Vec::with_capacity(layers);
    for l in 0..layers {
        let w_ih = param(model, &format!("lstm.weight_ih_l{l}"))?;
        let w_hh = param(model, &format!("lstm.weight_hh_l{l}"))?;
        let mut bias = vec![0.0f32; 4 * h];
        if cfg.bias {
            let b_ih = param(model, &format!("lstm.bias_ih_l{l}"))?;
            let b_hh = param(model, &format!("lstm.bias_hh_l{l}"))?;
            for k in 0..4 * h {
                bias[k] = b_ih[k] + b_hh[k];
            }
        }
        let peep = if cfg.peephole {
            Some([
                param(model, &format!("lstm.peephole_i_l{l}"))?,
                param(model, &format!("lstm.peephole_f_l{l}"))?,
                param(model, &format!("lstm.peephole_o_l{l}"))?,
            ])
        } else {
            None
        };
        let input = w_ih.len() / (4 * h);
        weights.push(Weights {
            w_ih,
            w_hh,
            bias,
            peep,
            input,
        });
    }
    let head_w = param(model, "head.weight")?; // (V, H)
    let head_b = param(model, "head.bias")?; // (V)

    let mut result: Vec<LayerTrace> = (0..layers)
        .map(|_| {
            let mut lt = LayerTrace::default();
            for q in Quantity::ALL {
                lt.get_mut(q).reserve(t_len * h);
            }
            lt
        })
        .collect();
    let mut prev_h = vec![vec![0.0f32; h]; layers];
    let mut prev_c = vec![vec![0.0f32; h]; layers];
    let (mut gates, mut next_c, mut next_h) =
        (vec![0.0f32; 4 * h], vec![0.0f32; h], vec![0.0f32; h]);
    let mut top = Vec::with_capacity(t_len);
    let mut logits = vec![0.0f32; out];
    for &id in &ids {
        for l in 0..layers {
            let w = &weights[l];
            // a = W_ih x + b_ih + W_hh h_prev + b_hh, gate blocks i, f, g, o
            gates.copy_from_slice(&w.bias);
            for (k, a) in gates.iter_mut().enumerate() {
                let row_ih = &w.w_ih[k * w.input..(k + 1) * w.input];
                let mut s = 0.0f32;
                if l == 0 {
                    match embedding {
                        None => s += row_ih[id as usize],
                        Some((emb, dim)) => {
                            let e = &emb[id as usize * dim..(id as usize + 1) * dim];
                            s += row_ih.iter().zip(e).map(|(x, y)| x * y).sum::<f32>();
                        }
                    }
                } else {
                    s += row_ih
                        .iter()
                        .zip(&prev_h[l - 1])
                        .map(|(x, y)| x * y)
                        .sum::<f32>();
                }
                let row_hh = &w.w_hh[k * h..(k + 1) * h];
                s += row_hh
                    .iter()
                    .zip(&prev_h[l])
                    .map(|(x, y)| x * y)
                    .sum::<f32>();
                *a += s;
            }
            let step = LstmStep {
                hidden: h,
                coupled: cfg.coupled,
                peepholes: w.peep.map(|[i, f, o]| Peepholes { i, f, o }),
            };
            forward_step(&step, 1, &mut gates, &prev_c[l], &mut next_c, &mut next_h);
            let lt = &mut result[l];
            lt.i.extend_from_slice(&gates[..h]);
            lt.f.extend_from_slice(&gates[h..2 * h]);
            lt.g.extend_from_slice(&gates[2 * h..3 * h]);
            lt.o.extend_from_slice(&gates[3 * h..]);
            lt.c.extend_from_slice(&next_c);
            lt.h.extend_from_slice(&next_h);
            prev_c[l].copy_from_slice(&next_c);
            // prev_h[l] is the layer's new output: the next layer reads it this step
            prev_h[l].copy_from_slice(&next_h);
        }
        // logits = head.weight · h_top + head.bias
        let top_h = &prev_h[layers - 1];
        for (v, z) in logits.iter_mut().enumerate() {
            *z = head_b[v]
                + head_w[v * h..(v + 1) * h]
                    .iter()
                    .zip(top_h)
                    .map(|(x, y)| x * y)
                    .sum::<f32>();
        }
        top.push(top_predictions(&logits, vocab));
    }
    Ok(Trace {
        token_kind: match vocab.kind {
            TokenKind::Char => "char",
            TokenKind::Word => "word",
        }
        .to_string(),
        tokens,
        ids,
        hidden: h,
        variant: variant(model),
        layers: result,
        top,
    })
}

fn top_predictions(logits: &[f32], vocab: &Vocab) -> Vec<Prediction> {
    let max = logits.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = logits.iter().map(|&z| ((z - max) as f64).exp()).sum();
    let mut order: Vec<usize> = (0..logits.len()).collect();
    order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]).then(a.cmp(&b)));
    order
        .into_iter()
        .take(TOP_K)
        .map(|v| Prediction {
            token: vocab.decode(&[v as u32]),
            prob: (((logits[v] - max) as f64).exp() / sum) as f32,
        })
        .collect()
}

/// The fewest tokens [`rank_units`] ranks units on: over fewer positions, a correlation of
/// some unit near ±1 is to be expected by chance (over 2 positions, every one is ±1).
pub const MIN_RANKED_TOKENS: usize = 30;

/// Correlates every unit's cell and hidden state with every feature of [`features`].
///
/// Returns one [`FeatureRanking`] per feature with its `best` units (at most `per_feature`),
/// and every unit's single best (feature, quantity) pair, sorted by `|correlation|`
/// descending (ties by layer and unit). A text of fewer than [`MIN_RANKED_TOKENS`] tokens
/// ranks none.
pub fn rank_units(trace: &Trace, per_feature: usize) -> (Vec<FeatureRanking>, Vec<UnitScore>) {
    let feats = features(&trace.tokens);
    let (h, t_len) = (trace.hidden, trace.tokens.len());
    let mut rankings = Vec::with_capacity(feats.len());
    let mut all: Vec<UnitScore> = Vec::new();
    let mut series = vec![0.0f32; t_len];
    for feat in &feats {
        let mut scores = Vec::new();
        let varies = correlation(&feat.values, &feat.values).is_some();
        if varies && t_len >= MIN_RANKED_TOKENS {
            for (l, lt) in trace.layers.iter().enumerate() {
                for q in [Quantity::Cell, Quantity::Hidden] {
                    let v = lt.get(q);
                    for u in 0..h {
                        for t in 0..t_len {
                            series[t] = v[t * h + u];
                        }
                        if let Some(r) = correlation(&series, &feat.values) {
                            scores.push(UnitScore {
                                layer: l,
                                unit: u,
                                quantity: q,
                                feature: feat.key.to_string(),
                                correlation: r,
                            });
                        }
                    }
                }
            }
        }
        let by_strength = |a: &UnitScore, b: &UnitScore| {
            b.correlation
                .abs()
                .total_cmp(&a.correlation.abs())
                .then(a.layer.cmp(&b.layer))
                .then(a.unit.cmp(&b.unit))
        };
        scores.sort_by(by_strength);
        all.extend(scores.iter().cloned());
        rankings.push(FeatureRanking {
            feature: feat.key.to_string(),
            description: feat.description.to_string(),
            varies,
            best: scores.into_iter().take(per_feature).collect(),
        });
    }
    // every unit's best score
    let mut best: Vec<Option<UnitScore>> = vec![None; trace.layers.len() * h];
    for s in all {
        let slot = &mut best[s.layer * h + s.unit];
        if slot
            .as_ref()
            .is_none_or(|b| s.correlation.abs() > b.correlation.abs())
        {
            *slot = Some(s);
        }
    }
    let mut overall: Vec<UnitScore> = best.into_iter().flatten().collect();
    overall.sort_by(|a, b| {
        b.correlation
            .abs()
            .total_cmp(&a.correlation.abs())
            .then(a.layer.cmp(&b.layer))
            .then(a.unit.cmp(&b.unit))
    });
    (rankings, overall)
}

/// Per layer and sigmoid gate (i, f, o): for each unit, the fraction of positions the gate is
/// below [`SATURATED_LOW`] (left) and above [`SATURATED_HIGH`] (right), and a ten-bin histogram
/// over units of the saturated fraction (left + right).
pub fn saturation(trace: &Trace) -> Vec<GateSaturation> {
    let (h, t_len) = (trace.hidden, trace.tokens.len());
    let mut out = Vec::new();
    for (l, lt) in trace.layers.iter().enumerate() {
        for gate in [Quantity::InGate, Quantity::ForgetGate, Quantity::OutGate] {
            let v = lt.get(gate);
            let (mut left, mut right) = (vec![0.0f32; h], vec![0.0f32; h]);
            for t in 0..t_len {
                for u in 0..h {
                    let x = v[t * h + u];
                    if x < SATURATED_LOW {
                        left[u] += 1.0;
                    } else if x > SATURATED_HIGH {
                        right[u] += 1.0;
                    }
                }
            }
            let mut histogram = vec![0usize; 10];
            for u in 0..h {
                left[u] /= t_len as f32;
                right[u] /= t_len as f32;
                let bin = (((left[u] + right[u]) * 10.0) as usize).min(9);
                histogram[bin] += 1;
            }
            out.push(GateSaturation {
                layer: l,
                gate,
                left,
                right,
                histogram,
            });
        }
    }
    out
}

/// About the bytes an explanation of `tokens` tokens by a model of `layers` layers of `hidden`
/// units takes, with its HTML page (measured: 171 bytes per token and unit, 100,000 tokens of
/// one layer of 32 units).
pub fn explanation_bytes(tokens: usize, hidden: usize, layers: usize) -> u128 {
    tokens as u128 * (200 * hidden as u128 * layers as u128 + 400)
}

/// [`trace`], [`rank_units`] (ten units per feature) and [`saturation`] in one.
///
/// # Errors
/// Those of [`trace`]; [`Error::Config`] for a text whose explanation and page
/// ([`explanation_bytes`]) would not fit in this process's memory.
pub fn explain(model: &SequenceModel, vocab: &Vocab, text: &str) -> Result<Explanation> {
    let cfg = model.config();
    let n = vocab.split(text).len();
    let need = explanation_bytes(n, cfg.hidden_size, cfg.num_layers);
    if let Some(have) = crate::model::memory::machine_memory() {
        if need > have {
            return Err(Error::Config(format!(
                "explaining {} tokens with {} layer(s) of {} units needs about {:.1} GB of memory, \
                 more than the {:.1} GB available; explain fewer tokens (--max-tokens)",
                n,
                cfg.num_layers,
                cfg.hidden_size,
                need as f64 / 1e9,
                have as f64 / 1e9
            )));
        }
    }
    let trace = trace(model, vocab, text)?;
    let (rankings, overall) = rank_units(&trace, 10);
    let saturation = saturation(&trace);
    Ok(Explanation {
        trace,
        rankings,
        overall,
        saturation,
    })
}

/// The weights of one unit seen as the one-unit cell of the tutorials:
/// `a_k = w_k · z + b_k` for the gates `k = i, f, g, o`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UnitWeights {
    /// Where the unit comes from (`layer 0, unit 5 of DIR`), or empty for made-up weights.
    pub source: String,
    /// `w_i, w_f, w_g, w_o`: the unit's recurrent weight on its own previous hidden state
    /// (`weight_hh[k·H + u, u]`).
    pub w: [f32; 4],
    /// `b_i, b_f, b_g, b_o`: `bias_ih + bias_hh` of the unit.
    pub b: [f32; 4],
    /// Coupled gates (`i = 1 - f`).
    pub coupled: bool,
    /// For the bottom layer of a token model: the tokens, and for each one what reading it
    /// adds to the unit's four pre-activations (`weight_ih` times its one-hot or embedding).
    pub tokens: Vec<String>,
    /// Same order as `tokens`: the four additions `i, f, g, o`.
    pub token_input: Vec<[f32; 4]>,
}

impl Default for UnitWeights {
    /// A textbook unit: forget gate biased open, the others neutral.
    fn default() -> Self {
        UnitWeights {
            source: String::new(),
            w: [1.0, 1.0, 1.0, 1.0],
            b: [0.0, 1.0, 0.0, 0.0],
            coupled: false,
            tokens: Vec::new(),
            token_input: Vec::new(),
        }
    }
}

/// The weights of unit `unit` of layer `layer` of an LSTM model, as a [`UnitWeights`].
///
/// # Errors
/// [`Error::Config`] for a non-LSTM, peephole, bidirectional or projected model;
/// [`Error::Index`] if the layer or unit does not exist; [`Error::MissingTensor`] if a weight
/// is missing.
pub fn unit_weights(
    model: &SequenceModel,
    vocab: Option<&Vocab>,
    layer: usize,
    unit: usize,
) -> Result<UnitWeights> {
    let cfg = model.config();
    if cfg.mode != Mode::Lstm || cfg.peephole || cfg.bidirectional || cfg.proj_size > 0 {
        return Err(Error::Config(
            "the one-unit explorer shows standard or coupled unidirectional LSTMs without projection"
                .into(),
        ));
    }
    let h = cfg.hidden_size;
    if layer >= cfg.num_layers {
        return Err(Error::Index(format!(
            "layer {layer} does not exist: the model has {} layer(s), numbered from 0",
            cfg.num_layers
        )));
    }
    if unit >= h {
        return Err(Error::Index(format!(
            "unit {unit} does not exist: each layer has {h} units, numbered from 0"
        )));
    }
    let w_ih = param(model, &format!("lstm.weight_ih_l{layer}"))?;
    let w_hh = param(model, &format!("lstm.weight_hh_l{layer}"))?;
    let input = w_ih.len() / (4 * h);
    let mut w = [0.0f32; 4];
    let mut b = [0.0f32; 4];
    for k in 0..4 {
        w[k] = w_hh[(k * h + unit) * h + unit];
    }
    if cfg.bias {
        let b_ih = param(model, &format!("lstm.bias_ih_l{layer}"))?;
        let b_hh = param(model, &format!("lstm.bias_hh_l{layer}"))?;
        for k in 0..4 {
            b[k] = b_ih[k * h + unit] + b_hh[k * h + unit];
        }
    }
    let (mut tokens, mut token_input) = (Vec::new(), Vec::new());
    if let (0, Some(vocab)) = (layer, vocab) {
        let n = vocab.len();
        let emb = match cfg.input {
            InputKind::OneHot { .. } => None,
            InputKind::Embedding { dim, .. } => Some((param(model, "embedding.weight")?, dim)),
            InputKind::Dense { .. } | InputKind::DenseWithIds { .. } => {
                return Err(Error::Config(
                    "a vocabulary was given for a model that reads real-valued features".into(),
                ))
            }
        };
        if emb.is_none() && n != input {
            return Err(Error::shape("vocabulary", input, n));
        }
        for id in 0..n {
            let mut add = [0.0f32; 4];
            for (k, a) in add.iter_mut().enumerate() {
                let row = &w_ih[(k * h + unit) * input..(k * h + unit + 1) * input];
                *a = match emb {
                    None => row[id],
                    Some((e, dim)) => {
                        let e = e.get(id * dim..(id + 1) * dim).ok_or_else(|| {
                            Error::shape("embedding rows", n, e.len() / dim.max(1))
                        })?;
                        row.iter().zip(e).map(|(x, y)| x * y).sum()
                    }
                };
            }
            tokens.push(vocab.decode(&[id as u32]));
            token_input.push(add);
        }
    }
    Ok(UnitWeights {
        source: String::new(),
        w,
        b,
        coupled: cfg.coupled,
        tokens,
        token_input,
    })
}

/// The values of one step of the one-unit cell.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct UnitStep {
    /// Input gate.
    pub i: f32,
    /// Forget gate.
    pub f: f32,
    /// Cell candidate.
    pub g: f32,
    /// Output gate.
    pub o: f32,
    /// New cell state.
    pub c: f32,
    /// New hidden state.
    pub h: f32,
}

/// One step of the one-unit cell through the library's [`forward_step`]: pre-activations
/// `a_k = w_k · z + b_k` (gates i, f, g, o), previous cell state `prev_c`.
pub fn single_unit(w: [f32; 4], b: [f32; 4], coupled: bool, z: f32, prev_c: f32) -> UnitStep {
    let mut gates = [0.0f32; 4];
    for k in 0..4 {
        gates[k] = w[k] * z + b[k];
    }
    let step = LstmStep {
        hidden: 1,
        coupled,
        peepholes: None,
    };
    let (mut c, mut h) = ([0.0f32], [0.0f32]);
    forward_step(&step, 1, &mut gates, &[prev_c], &mut c, &mut h);
    UnitStep {
        i: gates[0],
        f: gates[1],
        g: gates[2],
        o: gates[3],
        c: c[0],
        h: h[0],
    }
}

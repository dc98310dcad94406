//! ONNX export: a whole model as one ONNX graph that any ONNX runtime can serve.
//!
//! The graph (opset 14):
//!
//! ```text
//! text      tokens int64 [batch, time] -> Gather(identity) or Gather(embedding)
//! classify  tokens int64 [batch, time], lengths int64 [batch] -> Gather(embedding)
//! forecast  window float [batch, time, features] (already scaled)
//!   -> Transpose to [time, batch, ·] -> LSTM/GRU/RNN per layer (sequence_lens = lengths)
//!   -> text: MatMul + Add on every step      -> logits [batch, time, vocab], probabilities
//!   -> forecast: Gemm on the final state     -> prediction [batch, outputs]
//!   -> classify: Gemm on the final state     -> logits [batch, classes], probabilities
//! ```
//!
//! The recurrent weights are converted at the border: ONNX orders LSTM gates i, o, f, c and
//! GRU gates z, r, h (with `linear_before_reset=1`, PyTorch's GRU); peepholes go to `P` in the
//! order i, o, f; a coupled LSTM (`i = 1 - f`) becomes `input_forget=1` with the *negated* f
//! block in ONNX's i slot (ONNX computes `i` and sets `f = 1 - i`, and `σ(-a) = 1 - σ(a)`).
//! A projected LSTM has no ONNX operator and is refused.
//!
//! The protobuf messages below are the subset of `onnx.proto` the graph needs, encoded with
//! `prost` (field numbers as in `onnx.proto`).

use crate::cell::Mode;
use crate::error::{Error, Result};
use crate::model::{Head, InputKind, SequenceModel};

/// `onnx.proto` messages (the fields this exporter writes).
pub mod proto {
    #![allow(missing_docs)]
    /// `ModelProto`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ModelProto {
        #[prost(int64, tag = "1")]
        pub ir_version: i64,
        #[prost(string, tag = "2")]
        pub producer_name: String,
        #[prost(string, tag = "3")]
        pub producer_version: String,
        #[prost(message, optional, tag = "7")]
        pub graph: Option<GraphProto>,
        #[prost(message, repeated, tag = "8")]
        pub opset_import: Vec<OperatorSetIdProto>,
        #[prost(message, repeated, tag = "14")]
        pub metadata_props: Vec<StringStringEntryProto>,
    }
    /// `StringStringEntryProto`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct StringStringEntryProto {
        #[prost(string, tag = "1")]
        pub key: String,
        #[prost(string, tag = "2")]
        pub value: String,
    }
    /// `OperatorSetIdProto`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct OperatorSetIdProto {
        #[prost(string, tag = "1")]
        pub domain: String,
        #[prost(int64, tag = "2")]
        pub version: i64,
    }
    /// `GraphProto`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct GraphProto {
        #[prost(message, repeated, tag = "1")]
        pub node: Vec<NodeProto>,
        #[prost(string, tag = "2")]
        pub name: String,
        #[prost(message, repeated, tag = "5")]
        pub initializer: Vec<TensorProto>,
        #[prost(message, repeated, tag = "11")]
        pub input: Vec<ValueInfoProto>,
        #[prost(message, repeated, tag = "12")]
        pub output: Vec<ValueInfoProto>,
    }
    /// `NodeProto`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct NodeProto {
        #[prost(string, repeated, tag = "1")]
        pub input: Vec<String>,
        #[prost(string, repeated, tag = "2")]
        pub output: Vec<String>,
        #[prost(string, tag = "3")]
        pub name: String,
        #[prost(string, tag = "4")]
        pub op_type: String,
        #[prost(message, repeated, tag = "5")]
        pub attribute: Vec<AttributeProto>,
    }
    /// `AttributeProto`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct AttributeProto {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(float, tag = "2")]
        pub f: f32,
        #[prost(int64, tag = "3")]
        pub i: i64,
        #[prost(bytes = "vec", tag = "4")]
        pub s: Vec<u8>,
        #[prost(int64, repeated, tag = "8")]
        pub ints: Vec<i64>,
        #[prost(bytes = "vec", repeated, tag = "9")]
        pub strings: Vec<Vec<u8>>,
        #[prost(int32, tag = "20")]
        pub r#type: i32,
    }
    /// `TensorProto` (data in `raw_data`, little-endian).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TensorProto {
        #[prost(int64, repeated, tag = "1")]
        pub dims: Vec<i64>,
        #[prost(int32, tag = "2")]
        pub data_type: i32,
        #[prost(string, tag = "8")]
        pub name: String,
        #[prost(bytes = "vec", tag = "9")]
        pub raw_data: Vec<u8>,
    }
    /// `ValueInfoProto`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ValueInfoProto {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(message, optional, tag = "2")]
        pub r#type: Option<TypeProto>,
    }
    /// `TypeProto` (its `tensor_type` member of the `value` oneof).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TypeProto {
        #[prost(message, optional, tag = "1")]
        pub tensor_type: Option<TypeProtoTensor>,
    }
    /// `TypeProto.Tensor`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TypeProtoTensor {
        #[prost(int32, tag = "1")]
        pub elem_type: i32,
        #[prost(message, optional, tag = "2")]
        pub shape: Option<TensorShapeProto>,
    }
    /// `TensorShapeProto`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TensorShapeProto {
        #[prost(message, repeated, tag = "1")]
        pub dim: Vec<Dimension>,
    }
    /// `TensorShapeProto.Dimension` (the `value` oneof as two optional fields).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Dimension {
        #[prost(int64, optional, tag = "1")]
        pub dim_value: Option<i64>,
        #[prost(string, optional, tag = "2")]
        pub dim_param: Option<String>,
    }
}

use proto::*;

const FLOAT: i32 = 1;
const INT32: i32 = 6;
const INT64: i32 = 7;
const ATTR_INT: i32 = 2;
const ATTR_STRING: i32 = 3;
const ATTR_INTS: i32 = 7;
const ATTR_STRINGS: i32 = 8;

/// The opset the graph is written for.
pub const OPSET: i64 = 14;

/// What the exported graph is for (names its inputs and outputs; see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Graph {
    /// `tokens` -> `logits`, `probabilities` per step.
    Text,
    /// `window` -> `prediction`.
    Forecast,
    /// `tokens`, `lengths` -> `logits`, `probabilities`.
    Classify,
}

/// A graph under construction.
#[derive(Default)]
struct Builder {
    g: GraphProto,
    n: usize,
}

fn attr_int(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        i,
        r#type: ATTR_INT,
        ..Default::default()
    }
}

fn attr_ints(name: &str, ints: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        ints: ints.to_vec(),
        r#type: ATTR_INTS,
        ..Default::default()
    }
}

fn attr_str(name: &str, s: &str) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        s: s.as_bytes().to_vec(),
        r#type: ATTR_STRING,
        ..Default::default()
    }
}

fn attr_strs(name: &str, v: &[&str]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        strings: v.iter().map(|s| s.as_bytes().to_vec()).collect(),
        r#type: ATTR_STRINGS,
        ..Default::default()
    }
}

fn value_info(name: &str, elem: i32, dims: &[std::result::Result<i64, &str>]) -> ValueInfoProto {
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TypeProtoTensor {
                elem_type: elem,
                shape: Some(TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|d| match d {
                            Ok(v) => Dimension {
                                dim_value: Some(*v),
                                dim_param: None,
                            },
                            Err(p) => Dimension {
                                dim_value: None,
                                dim_param: Some(p.to_string()),
                            },
                        })
                        .collect(),
                }),
            }),
        }),
    }
}

impl Builder {
    fn f32(&mut self, name: &str, dims: &[usize], data: &[f32]) -> String {
        debug_assert_eq!(dims.iter().product::<usize>(), data.len());
        self.g.initializer.push(TensorProto {
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: FLOAT,
            name: name.into(),
            raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        });
        name.into()
    }

    fn i64(&mut self, name: &str, dims: &[usize], data: &[i64]) -> String {
        self.g.initializer.push(TensorProto {
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: INT64,
            name: name.into(),
            raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        });
        name.into()
    }

    /// Adds a node; returns its outputs' names (`outputs` of them, `""` for skipped ones).
    fn node(
        &mut self,
        op: &str,
        inputs: &[&str],
        outputs: &[&str],
        attrs: Vec<AttributeProto>,
    ) -> Vec<String> {
        self.n += 1;
        let outs: Vec<String> = outputs.iter().map(|o| o.to_string()).collect();
        self.g.node.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outs.clone(),
            name: format!("{op}_{}", self.n),
            op_type: op.into(),
            attribute: attrs,
        });
        outs
    }

    fn tmp(&mut self, what: &str) -> String {
        format!("{what}_{}", self.n + 1)
    }
}

/// Reorders gate blocks: `out` block `k` is `w`'s block `order[k]` (each `h · cols` values),
/// negating the blocks listed in `negate` and zeroing those in `zero` (by output position).
fn blocks(
    w: &[f32],
    h: usize,
    cols: usize,
    order: &[usize],
    negate: &[usize],
    zero: &[usize],
) -> Vec<f32> {
    let n = h * cols;
    let mut out = Vec::with_capacity(order.len() * n);
    for (k, &o) in order.iter().enumerate() {
        let src = &w[o * n..(o + 1) * n];
        if zero.contains(&k) {
            out.extend(std::iter::repeat_n(0.0, n));
        } else if negate.contains(&k) {
            out.extend(src.iter().map(|x| -x));
        } else {
            out.extend_from_slice(src);
        }
    }
    out
}

/// Refuses a graph of `values` parameters and an identity matrix of `identity` values past 2
/// GB: every value is written once, and an ONNX file (a protobuf message) is at most 2 GB (a
/// review, 2026-12-07).
fn fits_one_file(values: usize, identity: usize) -> Result<()> {
    let bytes = 4 * (values as u128 + identity as u128);
    if bytes > 2_000_000_000 {
        return Err(Error::Config(format!(
            "this model's ONNX graph would hold {:.1} GB of values, and an ONNX file is at most 2 GB; export a smaller model",
            bytes as f64 / 1e9
        )));
    }
    Ok(())
}

/// The largest vocabulary of a one-hot model [`export`] writes: its identity matrix is 1 GiB.
pub const MAX_ONE_HOT: usize = 16_384;

/// Encodes `model` as an ONNX model (bytes of a `ModelProto`) for `graph`.
///
/// # Errors
/// [`Error::Config`] if the model cannot be expressed in ONNX (an LSTM projection, a one-hot
/// input of more than [`MAX_ONE_HOT`] tokens), or the
/// graph kind does not fit the model (a per-step head for forecast or classify, dense input
/// for text or classify).
pub fn export(model: &SequenceModel, graph: Graph) -> Result<Vec<u8>> {
    export_with_metadata(model, graph, &[])
}

/// As [`export`], with `metadata` as the model's `metadata_props` (ONNX Runtime's
/// `InferenceSession.get_modelmeta().custom_metadata_map`): the CLI writes the model's
/// `config.json` there as `lstm_config`, as the PyTorch export does in its metadata.
///
/// # Errors
/// As [`export`].
pub fn export_with_metadata(
    model: &SequenceModel,
    graph: Graph,
    metadata: &[(&str, &str)],
) -> Result<Vec<u8>> {
    use prost::Message;
    let cfg = model.config();
    let rc = cfg.recurrent();
    if rc.proj_size > 0 {
        return Err(Error::Config(
            "ONNX has no LSTM with a projection (proj_size); this model cannot be exported".into(),
        ));
    }
    let bad = |why: &str| {
        Err(Error::Config(format!(
            "cannot export this model as a {graph:?} graph: {why}"
        )))
    };
    // a one-hot input is a Gather from a vocab x vocab identity: past 16,384 tokens (1 GiB) it
    // would take the memory, and near 2 GB ONNX's own limit on a file (a panic audit,
    // 2026-12-07: the allocation was unchecked)
    if let InputKind::OneHot { vocab } = cfg.input {
        if vocab > MAX_ONE_HOT {
            return Err(Error::Config(format!(
                "this model reads its {vocab} tokens one-hot, which ONNX would hold as a {vocab} x {vocab} identity matrix ({:.1} GB; an ONNX file is at most 2 GB): export models of at most {MAX_ONE_HOT} tokens, or train with --embedding N",
                (vocab as f64).powi(2) * 4.0 / 1e9
            )));
        }
    }
    let identity = match cfg.input {
        InputKind::OneHot { vocab } => vocab * vocab,
        _ => 0,
    };
    fits_one_file(model.store.values.len(), identity)?;
    match (graph, cfg.input, cfg.head) {
        (Graph::Text, InputKind::Dense { .. }, _)
        | (Graph::Classify, InputKind::Dense { .. }, _) => return bad("its input is not tokens"),
        (Graph::Forecast, InputKind::OneHot { .. } | InputKind::Embedding { .. }, _) => {
            return bad("its input is tokens")
        }
        (Graph::Text, _, Head::LastStep { .. }) => return bad("its head is not per step"),
        (
            Graph::Forecast,
            InputKind::Dense { .. } | InputKind::DenseWithIds { .. },
            Head::PerStep { .. },
        ) => {
            return bad(
                "it is a global forecaster (a distribution per step, inputs built from each series' lags, covariates and calendar), which has no ONNX graph here; export its weights with `lstm export pytorch`",
            )
        }
        (_, InputKind::DenseWithIds { .. }, _) => {
            return bad(
                "it reads a learned embedding of each sequence's id (a global forecaster's series ids), which has no ONNX graph here; export its weights with `lstm export pytorch`",
            )
        }
        (Graph::Classify, _, Head::PerStep { .. }) => return bad("its head is per step"),
        (_, _, Head::Pooled { .. }) => {
            return bad(
                "its head pools over time (last state, max and mean), which has no ONNX graph here; export its weights with `lstm export pytorch`, or train it with `pool = false` in a --config file",
            )
        }
        _ => {}
    }
    let get = |n: &str| -> Result<&[f32]> {
        model
            .store
            .get(n)
            .ok_or_else(|| Error::MissingTensor(n.to_string()))
    };
    let mut b = Builder::default();
    let (h, dn, ln) = (rc.hidden_size, rc.directions(), rc.num_layers);
    // ---- inputs
    let batch: std::result::Result<i64, &str> = Err("batch");
    let time: std::result::Result<i64, &str> = Err("time");
    let x_btf = match (graph, cfg.input) {
        (Graph::Forecast, InputKind::Dense { features }) => {
            b.g.input.push(value_info(
                "window",
                FLOAT,
                &[batch, time, Ok(features as i64)],
            ));
            "window".to_string()
        }
        (_, InputKind::OneHot { vocab }) => {
            b.g.input.push(value_info("tokens", INT64, &[batch, time]));
            let mut eye = vec![0.0f32; vocab * vocab];
            for v in 0..vocab {
                eye[v * vocab + v] = 1.0;
            }
            let e = b.f32("one_hot_identity", &[vocab, vocab], &eye);
            let o = b.tmp("one_hot");
            b.node("Gather", &[&e, "tokens"], &[&o], vec![attr_int("axis", 0)])
                .remove(0)
        }
        (_, InputKind::Embedding { vocab, dim }) => {
            b.g.input.push(value_info("tokens", INT64, &[batch, time]));
            let e = b.f32("embedding.weight", &[vocab, dim], get("embedding.weight")?);
            let o = b.tmp("embedded");
            b.node("Gather", &[&e, "tokens"], &[&o], vec![attr_int("axis", 0)])
                .remove(0)
        }
        (_, InputKind::Dense { .. } | InputKind::DenseWithIds { .. }) => {
            unreachable!("checked above")
        }
    };
    let seq_lens = if graph == Graph::Classify {
        b.g.input.push(value_info("lengths", INT64, &[batch]));
        let o = b.tmp("sequence_lens");
        b.node(
            "Cast",
            &["lengths"],
            &[&o],
            vec![attr_int("to", INT32 as i64)],
        )
        .remove(0)
    } else {
        String::new()
    };
    // [batch, time, ·] -> [time, batch, ·]
    let o = b.tmp("time_major");
    let mut x = b
        .node(
            "Transpose",
            &[&x_btf],
            &[&o],
            vec![attr_ints("perm", &[1, 0, 2])],
        )
        .remove(0);
    let flat = b.i64("shape_keep2_flatten", &[3], &[0, 0, -1]);
    let mut last_h = String::new();
    // ---- recurrent layers
    let g = rc.mode.gates();
    for l in 0..ln {
        let (mut ws, mut rs, mut bs, mut ps) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut input = 0;
        for d in 0..dn {
            let sfx = if d == 0 { "" } else { "_reverse" };
            let w_ih = get(&format!("lstm.weight_ih_l{l}{sfx}"))?;
            let w_hh = get(&format!("lstm.weight_hh_l{l}{sfx}"))?;
            input = w_ih.len() / (g * h);
            // order, blocks to negate and to zero (by ONNX position)
            let (order, neg, zero): (&[usize], &[usize], &[usize]) = match rc.mode {
                // ONNX i, o, f, c from our i, f, g, o; coupled: ONNX i = our f negated, f unused
                Mode::Lstm if rc.coupled => (&[1, 3, 1, 2], &[0], &[2]),
                Mode::Lstm => (&[0, 3, 1, 2], &[], &[]),
                // ONNX z, r, h from our r, z, n
                Mode::Gru => (&[1, 0, 2], &[], &[]),
                Mode::RnnTanh | Mode::RnnRelu => (&[0], &[], &[]),
            };
            ws.extend(blocks(w_ih, h, input, order, neg, zero));
            rs.extend(blocks(w_hh, h, h, order, neg, zero));
            if rc.bias {
                let bi = get(&format!("lstm.bias_ih_l{l}{sfx}"))?;
                let bh = get(&format!("lstm.bias_hh_l{l}{sfx}"))?;
                bs.extend(blocks(bi, h, 1, order, neg, zero));
                bs.extend(blocks(bh, h, 1, order, neg, zero));
            }
            if rc.peephole {
                let p = |n: &str| get(&format!("lstm.peephole_{n}_l{l}{sfx}"));
                let (pi, pf, po) = (p("i")?, p("f")?, p("o")?);
                if rc.coupled {
                    // ONNX's i is our f negated: its peephole too; ONNX's f is unused
                    ps.extend(pf.iter().map(|v| -v));
                    ps.extend_from_slice(po);
                    ps.extend(std::iter::repeat_n(0.0, h));
                } else {
                    ps.extend_from_slice(pi);
                    ps.extend_from_slice(po);
                    ps.extend_from_slice(pf);
                }
            }
        }
        let w = b.f32(&format!("W_l{l}"), &[dn, g * h, input], &ws);
        let r = b.f32(&format!("R_l{l}"), &[dn, g * h, h], &rs);
        let bias = if rc.bias {
            b.f32(&format!("B_l{l}"), &[dn, 2 * g * h], &bs)
        } else {
            String::new()
        };
        let direction = if rc.bidirectional {
            "bidirectional"
        } else {
            "forward"
        };
        let mut attrs = vec![
            attr_int("hidden_size", h as i64),
            attr_str("direction", direction),
        ];
        let op = match rc.mode {
            Mode::Lstm => {
                if rc.coupled {
                    attrs.push(attr_int("input_forget", 1));
                }
                "LSTM"
            }
            Mode::Gru => {
                attrs.push(attr_int("linear_before_reset", 1));
                "GRU"
            }
            Mode::RnnTanh | Mode::RnnRelu => {
                let act = if rc.mode == Mode::RnnTanh {
                    "Tanh"
                } else {
                    "Relu"
                };
                attrs.push(attr_strs("activations", &vec![act; dn]));
                "RNN"
            }
        };
        let mut inputs: Vec<String> = vec![x.clone(), w, r, bias, seq_lens.clone()];
        if rc.peephole {
            let p = b.f32(&format!("P_l{l}"), &[dn, 3 * h], &ps);
            inputs.extend([String::new(), String::new(), p]);
        }
        // drop trailing empty optional inputs
        while inputs.last().is_some_and(|s| s.is_empty()) {
            inputs.pop();
        }
        let inputs: Vec<&str> = inputs.iter().map(|s| s.as_str()).collect();
        let (y, yh) = (format!("Y_l{l}"), format!("Y_h_l{l}"));
        b.node(op, &inputs, &[&y, &yh], attrs);
        last_h = yh;
        // Y [time, dirs, batch, H] -> [time, batch, dirs·H]
        let o = b.tmp("y_t");
        let yt = b
            .node(
                "Transpose",
                &[&y],
                &[&o],
                vec![attr_ints("perm", &[0, 2, 1, 3])],
            )
            .remove(0);
        let o = b.tmp("layer_out");
        x = b.node("Reshape", &[&yt, &flat], &[&o], vec![]).remove(0);
    }
    // ---- head
    let hw = get("head.weight")?;
    let hb = get("head.bias")?;
    let outs = cfg.head.outputs();
    let feat = hw.len() / outs;
    let hb_name = b.f32("head.bias", &[outs], hb);
    match graph {
        Graph::Text => {
            let mut wt = vec![0.0f32; hw.len()];
            for o in 0..outs {
                for f in 0..feat {
                    wt[f * outs + o] = hw[o * feat + f];
                }
            }
            let wt_name = b.f32("head.weight_t", &[feat, outs], &wt);
            let o = b.tmp("batch_major");
            let xb = b
                .node(
                    "Transpose",
                    &[&x],
                    &[&o],
                    vec![attr_ints("perm", &[1, 0, 2])],
                )
                .remove(0);
            let o = b.tmp("head_mm");
            let mm = b.node("MatMul", &[&xb, &wt_name], &[&o], vec![]).remove(0);
            b.node("Add", &[&mm, &hb_name], &["logits"], vec![]);
            b.node(
                "Softmax",
                &["logits"],
                &["probabilities"],
                vec![attr_int("axis", -1)],
            );
            let vocab = Ok(outs as i64);
            b.g.output
                .push(value_info("logits", FLOAT, &[batch, time, vocab]));
            b.g.output
                .push(value_info("probabilities", FLOAT, &[batch, time, vocab]));
        }
        Graph::Forecast | Graph::Classify => {
            // Y_h of the top layer [dirs, batch, H] -> [batch, dirs·H]
            let o = b.tmp("h_b");
            let hbm = b
                .node(
                    "Transpose",
                    &[&last_h],
                    &[&o],
                    vec![attr_ints("perm", &[1, 0, 2])],
                )
                .remove(0);
            let hw_name = b.f32("head.weight", &[outs, feat], hw);
            let shape2 = b.i64("shape_keep1_flatten", &[2], &[0, -1]);
            let o = b.tmp("final_state");
            let fs = b.node("Reshape", &[&hbm, &shape2], &[&o], vec![]).remove(0);
            let out_name = if graph == Graph::Forecast {
                "prediction"
            } else {
                "logits"
            };
            b.node(
                "Gemm",
                &[&fs, &hw_name, &hb_name],
                &[out_name],
                vec![attr_int("transB", 1)],
            );
            b.g.output
                .push(value_info(out_name, FLOAT, &[batch, Ok(outs as i64)]));
            if graph == Graph::Classify {
                b.node(
                    "Softmax",
                    &["logits"],
                    &["probabilities"],
                    vec![attr_int("axis", -1)],
                );
                b.g.output.push(value_info(
                    "probabilities",
                    FLOAT,
                    &[batch, Ok(outs as i64)],
                ));
            }
        }
    }
    b.g.name = "lstm".into();
    let m = ModelProto {
        ir_version: 7,
        producer_name: "lstm".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        graph: Some(b.g),
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
        }],
        metadata_props: metadata
            .iter()
            .map(|(k, v)| proto::StringStringEntryProto {
                key: (*k).into(),
                value: (*v).into(),
            })
            .collect(),
    };
    Ok(m.encode_to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_graph_past_two_gigabytes_is_refused() {
        assert!(fits_one_file(200_000_000, MAX_ONE_HOT * MAX_ONE_HOT).is_ok());
        let e = fits_one_file(300_000_000, MAX_ONE_HOT * MAX_ONE_HOT).unwrap_err();
        assert!(e.to_string().contains("2.3 GB"), "{e}");
        assert!(fits_one_file(usize::MAX, usize::MAX).is_err());
    }
}

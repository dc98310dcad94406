//! The explain module's numbers are the library's: the activations it records by stepping a
//! model token by token equal the batched forward pass (`SequenceModel::predict` and its final
//! state), the page embeds exactly those values, and the rankings and saturation statistics
//! are right on inputs whose answer is known.

use lstm::data::vocab::Vocab;
use lstm::explain::{
    correlation, explain, features, rank_units, saturation, single_unit, trace, unit_weights,
    LayerTrace, Quantity, Trace,
};
use lstm::model::{Head, InputKind, Inputs, ModelConfig, SequenceModel};

const TEXT: &str =
    "He said \"to be (or not) to be\",\nand then: \"that is [the] question\".\nShe said nothing.\n";

fn model(
    input: InputKind,
    layers: usize,
    peephole: bool,
    coupled: bool,
    v: usize,
) -> SequenceModel {
    let cfg = ModelConfig {
        input,
        hidden_size: 12,
        num_layers: layers,
        peephole,
        coupled,
        head: Head::PerStep { outputs: v },
        ..Default::default()
    };
    let mut m = SequenceModel::new(&cfg, 7).unwrap();
    // larger weights than the initialisation, so gates move and saturate
    for x in m.store.values.iter_mut() {
        *x *= 3.0;
    }
    m
}

fn variants(v: usize) -> Vec<(&'static str, SequenceModel)> {
    vec![
        (
            "standard 2 layers",
            model(InputKind::OneHot { vocab: v }, 2, false, false, v),
        ),
        (
            "peephole",
            model(InputKind::OneHot { vocab: v }, 1, true, false, v),
        ),
        (
            "coupled",
            model(InputKind::OneHot { vocab: v }, 2, false, true, v),
        ),
        (
            "embedding",
            model(
                InputKind::Embedding { vocab: v, dim: 6 },
                2,
                false,
                false,
                v,
            ),
        ),
    ]
}

#[test]
fn trace_equals_the_batched_forward_pass() {
    let vocab = Vocab::chars_from(TEXT);
    let v = vocab.len();
    for (name, mut m) in variants(v) {
        let tr = trace(&m, &vocab, TEXT).unwrap();
        let t_len = tr.tokens.len();
        let h = tr.hidden;
        assert_eq!(t_len, TEXT.chars().count());
        m.carry = None;
        let logits = m
            .predict(Inputs::Tokens(&tr.ids), 1, t_len, None)
            .unwrap()
            .to_vec();
        // the top-5 probabilities are the softmax of the library's logits at every position
        let mut max_err = 0.0f32;
        for t in 0..t_len {
            let z = &logits[t * v..(t + 1) * v];
            let mx = z.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
            let sum: f32 = z.iter().map(|&x| (x - mx).exp()).sum();
            for p in &tr.top[t] {
                let id = vocab.id(&p.token).unwrap_or(vocab.unk()) as usize;
                let prob = (z[id] - mx).exp() / sum;
                max_err = max_err.max((prob - p.prob).abs());
            }
            let best = (0..v).max_by(|&a, &b| z[a].total_cmp(&z[b])).unwrap();
            let first = vocab.id(&tr.top[t][0].token).unwrap_or(vocab.unk()) as usize;
            assert!(
                first == best || (z[first] - z[best]).abs() < 1e-4,
                "{name}: top prediction at {t}"
            );
        }
        assert!(max_err < 1e-4, "{name}: probabilities differ by {max_err}");
        // the last step of every layer equals the library's final state
        let fin = m.final_state();
        for (l, lt) in tr.layers.iter().enumerate() {
            for u in 0..h {
                let (hv, cv) = (lt.h[(t_len - 1) * h + u], lt.c[(t_len - 1) * h + u]);
                assert!(
                    (hv - fin.h[l * h + u]).abs() < 1e-4,
                    "{name}: h layer {l} unit {u}"
                );
                assert!(
                    (cv - fin.c[l * h + u]).abs() < 1e-4,
                    "{name}: c layer {l} unit {u}"
                );
            }
            // and h = o * tanh(c), c = f * c_prev + i * g at every step
            for t in 0..t_len {
                for u in 0..h {
                    let k = t * h + u;
                    let c_prev = if t == 0 { 0.0 } else { lt.c[k - h] };
                    let c = lt.c[k]; // (peephole gates already include p ⊙ c)
                    assert!((lt.f[k] * c_prev + lt.i[k] * lt.g[k] - c).abs() < 1e-5);
                    assert!((lt.o[k] * c.tanh() - lt.h[k]).abs() < 1e-5);
                    if name == "coupled" {
                        assert!((lt.i[k] + lt.f[k] - 1.0).abs() < 1e-6);
                    }
                }
            }
        }
    }
}

#[test]
fn the_page_embeds_the_library_values() {
    let vocab = Vocab::chars_from(TEXT);
    let m = model(
        InputKind::OneHot { vocab: vocab.len() },
        2,
        false,
        false,
        vocab.len(),
    );
    let e = explain(&m, &vocab, TEXT).unwrap();
    let page = lstm::pages::html::explain_page(
        &e,
        "test <model>",
        Some("<?xml version=\"1.0\"?><svg></svg>"),
    )
    .unwrap();
    assert!(page.contains("test &lt;model&gt;"));
    assert!(page.contains("<h2>Training</h2>"));
    assert!(!page.contains("{{"), "a placeholder was left in the page");
    assert!(
        !page.contains("src=\"http") && !page.contains("href=\"http"),
        "the page must not load anything"
    );
    let data = lstm::pages::html::embedded_json(&page, "explain-data").unwrap();
    let tokens: Vec<String> = serde_json::from_value(data["trace"]["tokens"].clone()).unwrap();
    assert_eq!(tokens, e.trace.tokens);
    let mut checked = 0;
    for (l, lt) in e.trace.layers.iter().enumerate() {
        for q in Quantity::ALL {
            let shown: Vec<f32> =
                serde_json::from_value(data["trace"]["layers"][l][q.short()].clone()).unwrap();
            let lib = lt.get(q);
            assert_eq!(shown.len(), lib.len());
            for (a, b) in shown.iter().zip(lib) {
                // rounded to 4 decimals (half a unit: 5e-5), in f32 arithmetic, whose steps
                // grow with the value (a cell state near 17 moves in steps of 2e-6)
                assert!(
                    (a - b).abs() <= 5e-5 + 4.0 * f32::EPSILON * b.abs(),
                    "layer {l} {q:?}: page {a}, library {b}"
                );
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 2 * 6 * 12 * TEXT.chars().count());
    let top: Vec<Vec<lstm::explain::Prediction>> =
        serde_json::from_value(data["trace"]["top"].clone()).unwrap();
    assert_eq!(top, e.trace.top);
    assert_eq!(data["saturation"].as_array().unwrap().len(), 2 * 3);
}

fn synthetic(tokens: &str, cell_unit1: impl Fn(usize) -> f32, gate: &[f32]) -> Trace {
    let tokens: Vec<String> = tokens.chars().map(String::from).collect();
    let (t_len, h) = (tokens.len(), 2);
    let mut lt = LayerTrace::default();
    for t in 0..t_len {
        for u in 0..h {
            let x = if u == 1 {
                cell_unit1(t)
            } else {
                ((t * 7919) % 13) as f32 * 0.1
            };
            lt.c.push(x);
            lt.h.push(x.tanh() * 0.5);
            lt.i.push(gate[t % gate.len()]);
            lt.f.push(0.5);
            lt.g.push(0.0);
            lt.o.push(if u == 0 { 0.95 } else { 0.05 });
        }
    }
    Trace {
        token_kind: "char".into(),
        ids: vec![0; t_len],
        tokens,
        hidden: h,
        variant: "standard".into(),
        layers: vec![lt],
        top: vec![Vec::new(); t_len],
    }
}

#[test]
fn a_unit_that_tracks_quotes_ranks_first() {
    let text = "ab \"cd ef\" gh \"ij\" k ab \"cd ef\" gh \"ij\" k";
    let feats = features(&text.chars().map(String::from).collect::<Vec<_>>());
    let quotes = feats[0].values.clone();
    assert_eq!(&quotes[..5], &[0.0, 0.0, 0.0, 1.0, 1.0]);
    let tr = synthetic(text, |t| 2.0 * quotes[t] - 1.0, &[0.5]);
    let (rankings, overall) = rank_units(&tr, 3);
    assert_eq!(rankings[0].feature, "quotes");
    let best = &rankings[0].best[0];
    assert_eq!(
        (best.layer, best.unit, best.quantity),
        (0, 1, Quantity::Cell)
    );
    assert!((best.correlation - 1.0).abs() < 1e-5);
    assert_eq!(
        (overall[0].unit, overall[0].feature.as_str()),
        (1, "quotes")
    );
    // no brackets and no newline in this text: constant features are marked, not ranked
    let brackets = rankings.iter().find(|r| r.feature == "brackets").unwrap();
    assert!(!brackets.varies && brackets.best.is_empty());
    assert_eq!(correlation(&[1.0, 1.0, 1.0], &[0.0, 1.0, 2.0]), None);
    assert!((correlation(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]).unwrap() + 1.0).abs() < 1e-6);
    // too few tokens to rank on: nothing is ranked
    let short = &text[..20];
    let q: Vec<f32> = features(&short.chars().map(String::from).collect::<Vec<_>>())[0]
        .values
        .clone();
    let (rankings, overall) = rank_units(&synthetic(short, |t| q[t], &[0.5]), 3);
    assert!(overall.is_empty() && rankings.iter().all(|r| r.best.is_empty()));
}

#[test]
fn saturation_counts_closed_and_open_gates() {
    // input gate: 0.05, 0.5, 0.95, 0.99 repeated → 1/4 closed, 1/2 open for both units
    let tr = synthetic("abcdefgh", |_| 0.0, &[0.05, 0.5, 0.95, 0.99]);
    let s = saturation(&tr);
    assert_eq!(s.len(), 3);
    let i = &s[0];
    assert_eq!(i.gate, Quantity::InGate);
    assert_eq!(i.left, vec![0.25, 0.25]);
    assert_eq!(i.right, vec![0.5, 0.5]);
    assert_eq!(i.histogram[7], 2); // 75% saturated
    let f = &s[1];
    assert_eq!(f.histogram[0], 2); // 0.5 never saturates
    let o = &s[2];
    assert_eq!(
        (o.left.clone(), o.right.clone()),
        (vec![0.0, 1.0], vec![1.0, 0.0])
    );
    assert_eq!(o.histogram[9], 2);
}

#[test]
fn single_unit_is_the_tutorial_cell() {
    let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
    let (w, b) = ([0.7f32, -1.2, 2.0, 0.3], [0.1f32, 1.0, -0.5, 0.0]);
    for (z, c) in [(0.5f32, 1.0f32), (-2.0, 0.3), (3.0, -2.5)] {
        let s = single_unit(w, b, false, z, c);
        let a: Vec<f64> = (0..4).map(|k| (w[k] * z + b[k]) as f64).collect();
        let (i, f, g, o) = (sig(a[0]), sig(a[1]), a[2].tanh(), sig(a[3]));
        let ct = f * c as f64 + i * g;
        let ht = o * ct.tanh();
        for (got, want) in [(s.i, i), (s.f, f), (s.g, g), (s.o, o), (s.c, ct), (s.h, ht)] {
            assert!((got as f64 - want).abs() < 1e-5, "{got} vs {want}");
        }
        let coupled = single_unit(w, b, true, z, c);
        assert!((coupled.i - (1.0 - coupled.f)).abs() < 1e-6);
    }
}

#[test]
fn unit_weights_are_the_stored_weights() {
    let vocab = Vocab::chars_from(TEXT);
    let v = vocab.len();
    let m = model(InputKind::OneHot { vocab: v }, 2, false, false, v);
    let h = 12;
    let u = unit_weights(&m, Some(&vocab), 0, 5).unwrap();
    let w_hh = m.store.get("lstm.weight_hh_l0").unwrap();
    let w_ih = m.store.get("lstm.weight_ih_l0").unwrap();
    let (b_ih, b_hh) = (
        m.store.get("lstm.bias_ih_l0").unwrap(),
        m.store.get("lstm.bias_hh_l0").unwrap(),
    );
    for k in 0..4 {
        assert_eq!(u.w[k], w_hh[(k * h + 5) * h + 5]);
        assert_eq!(u.b[k], b_ih[k * h + 5] + b_hh[k * h + 5]);
        assert_eq!(u.token_input[3][k], w_ih[(k * h + 5) * v + 3]);
    }
    assert_eq!(u.tokens.len(), v);
    // upper layers have no token input; bad indices are typed errors, not panics
    assert!(unit_weights(&m, Some(&vocab), 1, 0)
        .unwrap()
        .tokens
        .is_empty());
    assert!(matches!(
        unit_weights(&m, None, 2, 0),
        Err(lstm::Error::Index(_))
    ));
    assert!(matches!(
        unit_weights(&m, None, 0, 12),
        Err(lstm::Error::Index(_))
    ));
}

#[test]
fn other_models_are_refused_with_a_typed_error() {
    let vocab = Vocab::chars_from(TEXT);
    let v = vocab.len();
    let gru = SequenceModel::new(
        &ModelConfig {
            input: InputKind::OneHot { vocab: v },
            mode: lstm::cell::Mode::Gru,
            hidden_size: 4,
            head: Head::PerStep { outputs: v },
            ..Default::default()
        },
        0,
    )
    .unwrap();
    assert!(matches!(
        trace(&gru, &vocab, "ab"),
        Err(lstm::Error::Config(_))
    ));
    let m = model(InputKind::OneHot { vocab: v }, 1, false, false, v);
    assert!(matches!(trace(&m, &vocab, ""), Err(lstm::Error::Config(_))));
    let other = Vocab::chars_from("xyz");
    assert!(trace(&m, &other, "xy").is_err());
    // unknown characters are read as the unknown token, not refused
    assert_eq!(trace(&m, &vocab, "a~b").unwrap().tokens.len(), 3);
}

#[test]
fn base64_matches_rfc_4648() {
    use lstm::pages::html::base64;
    for (raw, enc) in [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ] {
        assert_eq!(base64(raw.as_bytes()), enc);
    }
}

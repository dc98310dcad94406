//! Cell and loss against their definitions in `f64`: the LSTM step (every variant, forward and
//! backward) and the block softmax cross-entropy.

#![allow(clippy::needless_range_loop)]

mod common;

use common::rand_vec;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The LSTM step of `cell::lstm` (the fused AVX-512 pass for the standard cell, the portable
/// passes for the variants) against the documented formulas in `f64`, forward and backward, on
/// widths that leave a partial vector at the end of each gate block.
#[test]
fn lstm_step_matches_the_formulas_in_f64() {
    use lstm::cell::lstm::{backward_step, forward_step, LstmStep, Peepholes};
    let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
    let mut rng = ChaCha8Rng::seed_from_u64(77);
    for h in [1usize, 7, 16, 17, 40] {
        for (coupled, peephole) in [(false, false), (true, false), (false, true)] {
            let nb = 3;
            let scale = |v: Vec<f32>, s: f32| v.into_iter().map(|x| x * s).collect::<Vec<_>>();
            let pre = scale(rand_vec(&mut rng, nb * 4 * h), 4.0);
            let pc = scale(rand_vec(&mut rng, nb * h), 2.0);
            let pw = rand_vec(&mut rng, 3 * h);
            let dnh = rand_vec(&mut rng, nb * h);
            let dc_in = rand_vec(&mut rng, nb * h);
            let peep = peephole.then(|| Peepholes {
                i: &pw[..h],
                f: &pw[h..2 * h],
                o: &pw[2 * h..],
            });
            let step = LstmStep {
                hidden: h,
                coupled,
                peepholes: peep,
            };
            let mut gates = pre.clone();
            let (mut nc, mut nh) = (vec![0.0; nb * h], vec![0.0; nb * h]);
            forward_step(&step, nb, &mut gates, &pc, &mut nc, &mut nh);
            let mut dg = vec![0.0; nb * 4 * h];
            let mut dc = dc_in.clone();
            let mut dpeep = vec![0.0; 3 * h];
            backward_step(
                &step,
                nb,
                &gates,
                &pc,
                &nc,
                &dnh,
                &mut dc,
                &mut dg,
                peephole.then_some(&mut dpeep[..]),
            );
            for b in 0..nb {
                for j in 0..h {
                    let a = |k: usize| pre[b * 4 * h + k * h + j] as f64;
                    let c0 = pc[b * h + j] as f64;
                    let (pi, pf, po) = if peephole {
                        (pw[j] as f64, pw[h + j] as f64, pw[2 * h + j] as f64)
                    } else {
                        (0.0, 0.0, 0.0)
                    };
                    let f = sig(a(1) + pf * c0);
                    let i = if coupled {
                        1.0 - f
                    } else {
                        sig(a(0) + pi * c0)
                    };
                    let g = a(2).tanh();
                    let c = f * c0 + i * g;
                    let o = sig(a(3) + po * c);
                    let hh = o * c.tanh();
                    let near = |got: f32, want: f64, what: &str| {
                        assert!(
                            (got as f64 - want).abs() <= 1e-6 * (1.0 + want.abs()),
                            "h={h} coupled={coupled} peephole={peephole} {what}: {got} vs {want}"
                        );
                    };
                    let gi = b * 4 * h + j;
                    if !coupled {
                        near(gates[gi], i, "i");
                    }
                    near(gates[gi + h], f, "f");
                    near(gates[gi + 2 * h], g, "g");
                    near(gates[gi + 3 * h], o, "o");
                    near(nc[b * h + j], c, "next_c");
                    near(nh[b * h + j], hh, "next_h");
                    // backward, from the same formulas
                    let (dh, dcn) = (dnh[b * h + j] as f64, dc_in[b * h + j] as f64);
                    let tc = c.tanh();
                    let d_ao = dh * tc * o * (1.0 - o);
                    let d_cell = dcn + dh * o * (1.0 - tc * tc) + d_ao * po;
                    let d_ag = d_cell * i * (1.0 - g * g);
                    let (d_ai, d_af) = if coupled {
                        (0.0, d_cell * (c0 - g) * f * (1.0 - f))
                    } else {
                        (d_cell * g * i * (1.0 - i), d_cell * c0 * f * (1.0 - f))
                    };
                    let d_prev = d_cell * f + d_ai * pi + d_af * pf;
                    near(dg[gi], d_ai, "d a_i");
                    near(dg[gi + h], d_af, "d a_f");
                    near(dg[gi + 2 * h], d_ag, "d a_g");
                    near(dg[gi + 3 * h], d_ao, "d a_o");
                    near(dc[b * h + j], d_prev, "d prev_c");
                }
            }
        }
    }
}

/// The block softmax cross-entropy (vectorised on AVX-512, with or without the bias folded in)
/// against the definition in `f64`, for class counts that leave partial vectors, with ignored
/// rows.
#[test]
fn cross_entropy_rows_match_the_definition() {
    use lstm::model::loss::{cross_entropy_rows, cross_entropy_rows_bias, IGNORE};
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    for classes in [1usize, 5, 16, 17, 65] {
        let rows = 9;
        let logits: Vec<f32> = rand_vec(&mut rng, rows * classes)
            .into_iter()
            .map(|x| x * 8.0)
            .collect();
        let bias = rand_vec(&mut rng, classes);
        let targets: Vec<u32> = (0..rows)
            .map(|r| {
                if r % 4 == 3 {
                    IGNORE
                } else {
                    rng.gen_range(0..classes as u32)
                }
            })
            .collect();
        let scale = 0.25f32;
        for with_bias in [false, true] {
            let mut z = logits.clone();
            let mut dz = vec![f32::NAN; rows * classes];
            let total = if with_bias {
                cross_entropy_rows_bias(&mut z, &bias, &targets, classes, scale, &mut dz)
            } else {
                cross_entropy_rows(&z, &targets, classes, scale, &mut dz)
            };
            let mut want_total = 0.0f64;
            for r in 0..rows {
                let row: Vec<f64> = (0..classes)
                    .map(|c| {
                        let b = if with_bias { bias[c] as f64 } else { 0.0 };
                        logits[r * classes + c] as f64 + b
                    })
                    .collect();
                for c in 0..classes {
                    assert!((z[r * classes + c] as f64 - row[c]).abs() < 1e-5, "logits");
                }
                let t = targets[r];
                if t == IGNORE {
                    assert!(dz[r * classes..(r + 1) * classes].iter().all(|&d| d == 0.0));
                    continue;
                }
                let max = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let sum: f64 = row.iter().map(|v| (v - max).exp()).sum();
                want_total += sum.ln() + max - row[t as usize];
                for c in 0..classes {
                    let p = (row[c] - max).exp() / sum;
                    let want = scale as f64 * (p - if c == t as usize { 1.0 } else { 0.0 });
                    let got = dz[r * classes + c] as f64;
                    assert!(
                        (got - want).abs() <= 1e-6,
                        "classes {classes} bias {with_bias} row {r} class {c}: {got} vs {want}"
                    );
                }
            }
            assert!(
                (total - want_total).abs() <= 1e-5 * (1.0 + want_total.abs()),
                "classes {classes} bias {with_bias}: loss {total} vs {want_total}"
            );
        }
    }
}

#[test]
fn cross_entropy_rows_keep_the_log_sum_with_huge_logits() {
    // equal logits of 1e10 (a head bias of 1e10): the loss is ln(classes) whatever the shift
    use lstm::model::loss::cross_entropy_rows;
    for classes in [5usize, 59] {
        for shift in [1e7f32, 1e10, -1e10] {
            let z = vec![shift; 2 * classes];
            let mut dz = vec![0.0; 2 * classes];
            let total = cross_entropy_rows(&z, &[0, 3], classes, 0.5, &mut dz);
            let want = 2.0 * (classes as f64).ln();
            assert!(
                (total - want).abs() < 1e-5 * want,
                "classes {classes}, logits {shift}: {total} against {want}"
            );
        }
    }
}

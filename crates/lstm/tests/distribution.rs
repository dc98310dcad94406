//! Distribution heads: the special functions against known values, the negative
//! log-likelihood and quantiles against an independent implementation (`statrs`), central
//! differences of the NLL's gradient, a whole model trained on Gaussian data, and the shape
//! errors of `Targets::Distribution`. The negative binomial: its log-likelihood against
//! `statrs`, its gradient against central differences, its quantiles against sums of the
//! probabilities.

use lstm::model::loss::{
    digamma, distribution_nll, incomplete_beta, ln_gamma, negative_binomial_quantile,
    normal_quantile, student_t_cdf, student_t_quantile, Distribution,
};
use lstm::model::{Batch, Head, InputKind, Inputs, ModelConfig, SequenceModel, Targets};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use statrs::distribution::{
    Continuous, ContinuousCDF, Discrete, NegativeBinomial, Normal, StudentsT,
};

const DISTS: [Distribution; 2] = [Distribution::Gaussian, Distribution::StudentT];

fn softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

#[test]
fn ln_gamma_known_values() {
    let pi = std::f64::consts::PI;
    let cases = [
        (0.5, pi.sqrt().ln()),
        (1.0, 0.0),
        (2.0, 0.0),
        (3.0, 2f64.ln()),
        (1.5, (0.5 * pi.sqrt()).ln()),
        (10.0, 362_880f64.ln()),
        (0.1, 2.252_712_651_734_206),
        (100.0, 359.134_205_369_575_4),
    ];
    for (x, want) in cases {
        let got = ln_gamma(x);
        assert!(
            (got - want).abs() <= 1e-13 * want.abs().max(1.0),
            "lnΓ({x}) = {got}, want {want}"
        );
    }
}

#[test]
fn digamma_known_values() {
    let euler = 0.577_215_664_901_532_9;
    let cases = [
        (1.0, -euler),
        (0.5, -euler - 2.0 * 2f64.ln()),
        (2.0, 1.0 - euler),
        (1.5, 2.0 - euler - 2.0 * 2f64.ln()),
        (10.0, 2.251_752_589_066_721),
        (0.25, -4.227_453_533_376_265_4),
    ];
    for (x, want) in cases {
        let got = digamma(x);
        assert!((got - want).abs() <= 1e-12, "ψ({x}) = {got}, want {want}");
    }
    // ψ is the derivative of lnΓ
    for x in [1.3, 2.7, 4.0, 17.5] {
        let h = 1e-5;
        let num = (ln_gamma(x + h) - ln_gamma(x - h)) / (2.0 * h);
        assert!((num - digamma(x)).abs() < 1e-8, "ψ({x})");
    }
}

#[test]
fn special_functions_against_statrs() {
    for x in [0.05, 0.3, 0.9, 1.7, 3.3, 12.0, 55.5, 300.0] {
        let want = statrs::function::gamma::ln_gamma(x);
        assert!((ln_gamma(x) - want).abs() <= 1e-12 * want.abs().max(1.0));
        let want = statrs::function::gamma::digamma(x);
        assert!(
            (digamma(x) - want).abs() <= 1e-10 * want.abs().max(1.0),
            "ψ({x})"
        );
    }
    for (x, a, b) in [
        (0.3, 2.0, 0.5),
        (0.9, 1.5, 0.5),
        (0.99, 30.0, 0.5),
        (0.1, 0.5, 3.0),
    ] {
        let want = statrs::function::beta::beta_reg(a, b, x);
        assert!(
            (incomplete_beta(x, a, b) - want).abs() < 1e-12,
            "I_{x}({a}, {b})"
        );
    }
    for nu in [2.5, 4.0, 30.0] {
        let t = StudentsT::new(0.0, 1.0, nu).unwrap();
        for x in [-4.0, -0.3, 0.0, 0.7, 2.5] {
            assert!((student_t_cdf(x, nu) - t.cdf(x)).abs() < 1e-12);
        }
    }
}

#[test]
fn quantiles_against_statrs() {
    let probs = [
        1e-10, 1e-4, 0.01, 0.05, 0.1, 0.3, 0.5, 0.7, 0.9, 0.95, 0.99, 0.9999,
    ];
    let n01 = Normal::new(0.0, 1.0).unwrap();
    for &p in &probs {
        let (got, want) = (normal_quantile(p), n01.inverse_cdf(p));
        assert!(
            (got - want).abs() <= 1e-8 * want.abs().max(1.0),
            "Φ⁻¹({p}) = {got}, statrs {want}"
        );
    }
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    for _ in 0..20 {
        let raw: Vec<f32> = (0..3).map(|_| rng.gen_range(-2.0f32..2.0)).collect();
        for dist in DISTS {
            let (mu, sigma, nu) = dist.decode(&raw);
            assert_eq!(mu, raw[0] as f64);
            assert!((sigma - softplus(raw[1] as f64) - 1e-6).abs() < 1e-15);
            for &p in &probs[1..] {
                let got = dist.quantile(&raw, p);
                let want = match dist {
                    Distribution::Gaussian => Normal::new(mu, sigma).unwrap().inverse_cdf(p),
                    Distribution::StudentT => {
                        // statrs inverts its CDF only to about 1e-9: compare the CDF at our
                        // quantile with p instead, and the quantile to 1e-8
                        let t = StudentsT::new(mu, sigma, nu).unwrap();
                        assert!((t.cdf(got) - p).abs() <= 1e-12 + 1e-10 * p, "cdf(q({p}))");
                        t.inverse_cdf(p)
                    }
                    Distribution::NegativeBinomial => unreachable!("not in DISTS"),
                };
                assert!(
                    (got - want).abs() <= 1e-8 * want.abs().max(1.0),
                    "{dist:?} q({p}) = {got}, statrs {want} ({raw:?})"
                );
            }
            assert_eq!(dist.quantile(&raw, 0.5), mu);
            assert_eq!(dist.median(&raw), mu);
            assert_eq!(dist.mean(&raw), mu);
        }
    }
    // a t quantile from the tables: t_{0.975}(ν = 4) = 2.776445105
    assert!((student_t_quantile(0.975, 4.0) - 2.776_445_105_197_793).abs() < 1e-10);
}

#[test]
fn nll_against_statrs() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for dist in DISTS {
        let k = dist.params();
        let rows = 50;
        let out: Vec<f32> = (0..rows * k).map(|_| rng.gen_range(-3.0f32..3.0)).collect();
        let y: Vec<f32> = (0..rows).map(|_| rng.gen_range(-5.0f32..5.0)).collect();
        let mut d = vec![0.0f32; rows * k];
        let mut want = 0.0f64;
        for r in 0..rows {
            let raw = &out[r * k..(r + 1) * k];
            let (mu, sigma, nu) = dist.decode(raw);
            let lp = match dist {
                Distribution::Gaussian => Normal::new(mu, sigma).unwrap().ln_pdf(y[r] as f64),
                Distribution::StudentT => {
                    StudentsT::new(mu, sigma, nu).unwrap().ln_pdf(y[r] as f64)
                }
                Distribution::NegativeBinomial => unreachable!("not in DISTS"),
            };
            let (nll, _) = dist.nll(raw, y[r] as f64);
            assert!(
                (nll + lp).abs() <= 1e-8 * lp.abs().max(1.0),
                "{dist:?} row {r}: nll {nll}, statrs {}",
                -lp
            );
            want -= lp;
        }
        let (sum, n) = distribution_nll(dist, &out, &y, None, &mut d);
        assert_eq!(n, rows);
        assert!(((sum as f64) - want).abs() <= 1e-6 * want.abs());
    }
}

/// Central differences (in f64, on `Distribution::nll`) against the gradient that
/// `distribution_nll` writes, NaN targets included (zero gradient, not counted).
#[test]
fn nll_gradient_central_differences() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for dist in DISTS {
        let k = dist.params();
        let rows = 40;
        let out: Vec<f32> = (0..rows * k).map(|_| rng.gen_range(-3.0f32..3.0)).collect();
        let y: Vec<f32> = (0..rows)
            .map(|r| {
                if r % 7 == 3 {
                    f32::NAN
                } else {
                    rng.gen_range(-4.0f32..4.0)
                }
            })
            .collect();
        let mut d = vec![1.0f32; rows * k];
        let (_, n) = distribution_nll(dist, &out, &y, None, &mut d);
        assert_eq!(n, rows - y.iter().filter(|v| v.is_nan()).count());
        for r in 0..rows {
            for j in 0..k {
                let g = d[r * k + j] as f64;
                if y[r].is_nan() {
                    assert_eq!(g, 0.0);
                    continue;
                }
                // perturb the raw output in f64: nll of the decoded parameters
                let h = 1e-5;
                let f = |delta: f64| -> f64 {
                    let mut raw: Vec<f64> =
                        out[r * k..(r + 1) * k].iter().map(|&v| v as f64).collect();
                    raw[j] += delta;
                    nll_f64(dist, &raw, y[r] as f64)
                };
                let num = (f(h) - f(-h)) / (2.0 * h);
                assert!(
                    (num - g).abs() <= 1e-5 + 1e-4 * num.abs(),
                    "{dist:?} row {r} output {j}: numeric {num}, analytic {g}"
                );
            }
        }
        // and the f64 restatement agrees with the library's value
        let raw = &out[..k];
        let raw64: Vec<f64> = raw.iter().map(|&v| v as f64).collect();
        assert!((dist.nll(raw, 0.7).0 - nll_f64(dist, &raw64, 0.7)).abs() < 1e-12);
    }
}

/// The NLL written out independently from the formulas, on f64 raw outputs.
fn nll_f64(dist: Distribution, raw: &[f64], y: f64) -> f64 {
    let pi = std::f64::consts::PI;
    let (mu, sigma) = (raw[0], softplus(raw[1]) + 1e-6);
    let z = (y - mu) / sigma;
    match dist {
        Distribution::Gaussian => 0.5 * (2.0 * pi).ln() + sigma.ln() + 0.5 * z * z,
        Distribution::StudentT => {
            let nu = 2.0 + softplus(raw[2]);
            -statrs::function::gamma::ln_gamma(0.5 * (nu + 1.0))
                + statrs::function::gamma::ln_gamma(0.5 * nu)
                + 0.5 * (nu * pi).ln()
                + sigma.ln()
                + 0.5 * (nu + 1.0) * (z * z / nu).ln_1p()
        }
        Distribution::NegativeBinomial => unreachable!("not in DISTS"),
    }
}

#[test]
fn serde_names_and_default() {
    assert_eq!(Distribution::default(), Distribution::Gaussian);
    assert_eq!(
        serde_json::to_string(&Distribution::StudentT).unwrap(),
        "\"student_t\""
    );
    assert_eq!(
        serde_json::from_str::<Distribution>("\"gaussian\"").unwrap(),
        Distribution::Gaussian
    );
    assert_eq!(
        (
            Distribution::Gaussian.params(),
            Distribution::StudentT.params()
        ),
        (2, 3)
    );
}

#[test]
fn shape_errors() {
    let cfg = ModelConfig {
        input: InputKind::Dense { features: 1 },
        hidden_size: 4,
        head: Head::LastStep { outputs: 2 },
        ..Default::default()
    };
    let mut model = SequenceModel::new(&cfg, 1).unwrap();
    let x = vec![0.1f32; 2 * 3];
    let y = vec![0.5f32, 1.0];
    let batch = |values, dist| Batch {
        inputs: Inputs::Dense(&x),
        targets: Targets::Distribution {
            values,
            dist,
            scales: None,
        },
        batch: 2,
        seq_len: 3,
        lengths: None,
    };
    // a Student-t needs 3 outputs per value
    let err = model
        .evaluate(&batch(&y, Distribution::StudentT))
        .unwrap_err();
    assert!(err.to_string().contains("3 head outputs"), "{err}");
    // one value per row
    assert!(model
        .evaluate(&batch(&y[..1], Distribution::Gaussian))
        .is_err());
    let out = model.evaluate(&batch(&y, Distribution::Gaussian)).unwrap();
    assert_eq!(out.count, 2);
    // NaN values are not counted; all NaN: loss 0, nothing counted
    let nan = [f32::NAN, 1.0];
    assert_eq!(
        model
            .evaluate(&batch(&nan, Distribution::Gaussian))
            .unwrap()
            .count,
        1
    );
    let nan = [f32::NAN; 2];
    let out = model
        .evaluate(&batch(&nan, Distribution::Gaussian))
        .unwrap();
    assert_eq!((out.loss, out.count), (0.0, 0));
}

/// A model fit on y ~ N(3, 0.5²) (input noise it cannot use) learns mu ≈ 3 and sigma ≈ 0.5;
/// a Student-t head learns the same location and a scale at most sigma.
#[test]
fn training_learns_a_gaussian() {
    for dist in DISTS {
        let cfg = ModelConfig {
            input: InputKind::Dense { features: 1 },
            hidden_size: 8,
            head: Head::PerStep {
                outputs: dist.params(),
            },
            optimizer: lstm::model::optim::OptimizerConfig::adam(0.01),
            ..Default::default()
        };
        let mut model = SequenceModel::new(&cfg, 4).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(8);
        let (b, t) = (16, 8);
        for _ in 0..2000 {
            let x: Vec<f32> = (0..b * t).map(|_| rng.gen_range(-1.0f32..1.0)).collect();
            let y: Vec<f32> = (0..b * t)
                .map(|_| {
                    // Box-Muller
                    let (u, v): (f64, f64) = (1.0 - rng.gen::<f64>(), rng.gen());
                    let z = (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos();
                    (3.0 + 0.5 * z) as f32
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
            model.train_step(&batch).unwrap();
        }
        let x: Vec<f32> = (0..b * t).map(|_| rng.gen_range(-1.0f32..1.0)).collect();
        let out = model
            .predict(Inputs::Dense(&x), b, t, None)
            .unwrap()
            .to_vec();
        let k = dist.params();
        let rows = b * t;
        let (mut mu, mut sigma) = (0.0, 0.0);
        for r in 0..rows {
            let (m, s, _) = dist.decode(&out[r * k..(r + 1) * k]);
            mu += m / rows as f64;
            sigma += s / rows as f64;
        }
        let q90 = dist.quantile(&out[..k], 0.9);
        eprintln!("{dist:?}: mu {mu:.3} sigma {sigma:.3} q90 {q90:.3}");
        assert!((mu - 3.0).abs() < 0.05, "{dist:?}: mu {mu}");
        match dist {
            Distribution::Gaussian => assert!((sigma - 0.5).abs() < 0.05, "sigma {sigma}"),
            Distribution::StudentT => assert!(sigma > 0.3 && sigma < 0.57, "sigma {sigma}"),
            Distribution::NegativeBinomial => unreachable!("not in DISTS"),
        }
    }
}

/// statrs' negative binomial (failures before `r` successes of probability `p`) of mean `mu`
/// and shape `alpha`: `r = 1/alpha`, `p = r / (r + mu)`.
fn statrs_nb(mu: f64, alpha: f64) -> NegativeBinomial {
    let r = 1.0 / alpha;
    NegativeBinomial::new(r, r / (r + mu)).unwrap()
}

/// The negative binomial's parameters from raw outputs and a scale, its NLL against statrs'
/// log-probability of the count `scale · target`, `distribution_nll` with scales, and its
/// gradient against central differences of that independent NLL.
#[test]
fn negative_binomial_nll_and_gradient() {
    let dist = Distribution::NegativeBinomial;
    assert_eq!(dist.params(), 2);
    assert!(dist.needs_scale() && !Distribution::StudentT.needs_scale());
    assert_eq!(
        serde_json::to_string(&dist).unwrap(),
        "\"negative_binomial\""
    );
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let rows = 60;
    let out: Vec<f32> = (0..rows * 2).map(|_| rng.gen_range(-3.0f32..3.0)).collect();
    let scales: Vec<f32> = (0..rows)
        .map(|r| [0.3f32, 1.0, 7.5, 120.0, 4000.0][r % 5])
        .collect();
    // counts from 0 to about 3 times each row's mean, and a few large ones
    let counts: Vec<u64> = (0..rows)
        .map(|r| {
            let (mu, _) = Distribution::negative_binomial(&out[r * 2..r * 2 + 2], scales[r] as f64);
            if r % 11 == 4 {
                0
            } else {
                rng.gen_range(0..=(3.0 * mu).ceil() as u64 + 2)
            }
        })
        .collect();
    let y: Vec<f32> = (0..rows)
        .map(|r| {
            if r % 13 == 6 {
                f32::NAN
            } else {
                counts[r] as f32 / scales[r]
            }
        })
        .collect();
    let mut want = 0.0f64;
    for r in 0..rows {
        let raw = &out[r * 2..r * 2 + 2];
        let s = scales[r] as f64;
        let (mu, alpha) = Distribution::negative_binomial(raw, s);
        let sp = |x: f32| softplus(x as f64);
        assert!((mu - s * sp(raw[0])).abs() <= 1e-12 * mu);
        assert!((alpha - (sp(raw[1]) + 1e-6) / s.sqrt()).abs() <= 1e-12 * alpha);
        if y[r].is_nan() {
            continue;
        }
        let lp = statrs_nb(mu, alpha).ln_pmf(counts[r]);
        let (nll, _) = dist.nll_scaled(raw, y[r] as f64, s);
        assert!(
            (nll + lp).abs() <= 1e-9 * lp.abs().max(1.0),
            "row {r}: count {} mu {mu} alpha {alpha}: nll {nll}, statrs {}",
            counts[r],
            -lp
        );
        want -= lp;
    }
    let mut d = vec![1.0f32; rows * 2];
    let (sum, n) = distribution_nll(dist, &out, &y, Some(&scales), &mut d);
    assert_eq!(n, rows - y.iter().filter(|v| v.is_nan()).count());
    assert!(((sum as f64) - want).abs() <= 1e-6 * want.abs());
    for r in 0..rows {
        for j in 0..2 {
            let g = d[r * 2 + j] as f64;
            if y[r].is_nan() {
                assert_eq!(g, 0.0);
                continue;
            }
            // statrs' log-probability of the count, the raw output perturbed in f64
            let f = |delta: f64| -> f64 {
                let mut raw = [out[r * 2] as f64, out[r * 2 + 1] as f64];
                raw[j] += delta;
                let s = scales[r] as f64;
                let mu = s * softplus(raw[0]);
                let alpha = (softplus(raw[1]) + 1e-6) / s.sqrt();
                -statrs_nb(mu, alpha).ln_pmf(counts[r])
            };
            let h = 1e-5;
            let num = (f(h) - f(-h)) / (2.0 * h);
            assert!(
                (num - g).abs() <= 1e-5 + 1e-4 * num.abs(),
                "row {r} output {j} (count {}, scale {}): numeric {num}, analytic {g}",
                counts[r],
                scales[r]
            );
        }
    }
}

/// Negative binomial quantiles: the smallest count whose cumulative probability, summed from
/// statrs' probabilities, reaches the level; the median through `median`, the count's scale
/// through `quantile_scaled`.
#[test]
fn negative_binomial_quantiles() {
    let dist = Distribution::NegativeBinomial;
    let levels = [0.001, 0.025, 0.1, 0.25, 0.5, 0.75, 0.9, 0.975, 0.999];
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    for case in 0..40 {
        let raw = [rng.gen_range(-3.0f32..4.0), rng.gen_range(-4.0f32..2.0)];
        let scale = [1.0f64, 0.2, 3.0, 50.0, 900.0][case % 5];
        let (mu, alpha) = Distribution::negative_binomial(&raw, scale);
        let nb = statrs_nb(mu, alpha);
        // cumulative sums of the probabilities, up to far beyond the largest level
        let mut cum = Vec::new();
        let mut acc = 0.0f64;
        let mut k = 0u64;
        while acc < 1.0 - 1e-7 && k < 2_000_000 {
            acc += nb.ln_pmf(k).exp();
            cum.push(acc);
            k += 1;
        }
        for &q in &levels {
            let got = dist.quantile_scaled(&raw, q, scale);
            let want = cum.iter().position(|&c| c >= q).expect("the sums reach q") as f64;
            // a level within rounding of a cumulative sum may land either side of it
            let near = |k: f64| k >= 0.0 && (cum[k as usize] - q).abs() < 1e-9;
            assert!(
                got == want || (near(got.min(want)) && (got - want).abs() == 1.0),
                "case {case}: mu {mu} alpha {alpha}: q({q}) = {got}, summed {want}"
            );
        }
        if scale == 1.0 {
            assert_eq!(dist.median(&raw), dist.quantile_scaled(&raw, 0.5, 1.0));
            assert_eq!(dist.mean(&raw), mu);
        }
    }
    assert_eq!(dist.quantile_scaled(&[0.0, 0.0], 0.0, 1.0), 0.0);
    assert_eq!(dist.quantile_scaled(&[0.0, 0.0], 1.0, 1.0), f64::INFINITY);
    assert!(dist.quantile_scaled(&[0.0, 0.0], f64::NAN, 1.0).is_nan());
}

/// A negative binomial head without scales is refused, with the reason.
#[test]
fn negative_binomial_needs_scales() {
    let dist = Distribution::NegativeBinomial;
    let cfg = ModelConfig {
        input: InputKind::Dense { features: 2 },
        hidden_size: 4,
        head: Head::LastStep { outputs: 2 },
        ..Default::default()
    };
    let mut model = SequenceModel::new(&cfg, 1).unwrap();
    let x = vec![0.1f32; 2 * 3 * 2];
    let y = vec![1.0f32, 2.0];
    let batch = |scales| Batch {
        inputs: Inputs::Dense(&x),
        targets: Targets::Distribution {
            values: &y,
            dist,
            scales,
        },
        batch: 2,
        seq_len: 3,
        lengths: None,
    };
    let err = model.loss_and_grad(&batch(None), false).unwrap_err();
    assert!(err.to_string().contains("scale"), "{err}");
    let short = [1.0f32];
    assert!(model
        .loss_and_grad(&batch(Some(&short[..])), false)
        .is_err());
    let ok = [1.0f32, 4.0];
    assert!(model.loss_and_grad(&batch(Some(&ok[..])), false).is_ok());
}

/// Levels far in the tails keep their digits: solved on the tail, not as `1 - p` (which is 1
/// in f64 for p = 1e-20), against the closed forms of ν = 1 (Cauchy: `tan(π(p - ½))`, for a
/// tiny p `-1/(π p)`) and ν = 2 (`(2p - 1)/√(2p(1 - p))`, the smallest ν of the forecast
/// head). (For ν = 1 a level below about 1e-150 needs `ν/(ν + t²)` below the smallest double.)
#[test]
fn student_t_quantiles_far_in_the_tails() {
    for p in [1e-3, 1e-8, 1e-20, 1e-100, 1e-300] {
        let cauchy = if p < 1e-6 {
            -1.0 / (std::f64::consts::PI * p)
        } else {
            (std::f64::consts::PI * (p - 0.5)).tan()
        };
        let nu2 = (2.0 * p - 1.0) / (2.0 * p * (1.0 - p)).sqrt();
        for (nu, want) in [(1.0, cauchy), (2.0, nu2)] {
            if nu == 1.0 && p < 1e-150 {
                continue;
            }
            let lo = student_t_quantile(p, nu);
            assert!(lo.is_finite(), "q({p}; {nu}) = {lo}");
            assert!(
                (lo - want).abs() <= 1e-9 * want.abs(),
                "q({p}; {nu}) = {lo}, closed form {want}"
            );
            // and the upper tail, by symmetry
            let hi = student_t_quantile(1.0 - p, nu);
            if 1.0 - p < 1.0 {
                assert!(
                    (hi + lo).abs() <= 1e-6 * lo.abs(),
                    "q(1 - {p}; {nu}) = {hi}"
                );
            }
        }
    }
}

/// Student-t quantiles against the closed forms of ν = 1 (`tan(π(p - ½))`), ν = 2
/// (`(2p - 1)/√(2p(1 - p))`) and ν = 4 (`-2√(cos(⅓ arccos √α)/√α - 1)` with `α = 4p(1 - p)`,
/// below ½; it loses digits near ½), on a grid of levels and on levels within 1e-12 of ½:
/// relative error at most 1e-11. Near ½ the tail `ν/(ν+t²)` rounds to 1, so those levels are
/// solved on the other side (before, they were off by about 1e-11 relative at ν = 2, and by
/// several times their size at ν = 10⁴).
#[test]
fn student_t_quantiles_match_closed_forms_also_near_the_median() {
    let pi = std::f64::consts::PI;
    let grid = (1..2000).map(|i| i as f64 / 4000.0);
    let near_half = (0..=120).map(|k| 0.5 - 0.5 * 10f64.powf(-(k as f64) / 10.0));
    for p in grid.chain(near_half).filter(|&p| p > 0.0 && p < 0.5) {
        let alpha = 4.0 * p * (1.0 - p);
        let nu4 = -2.0 * ((alpha.sqrt().acos() / 3.0).cos() / alpha.sqrt() - 1.0).sqrt();
        let cases = [
            (1.0, (pi * (p - 0.5)).tan()),
            (2.0, (2.0 * p - 1.0) / (2.0 * p * (1.0 - p)).sqrt()),
            (4.0, if p <= 0.45 { nu4 } else { f64::NAN }),
        ];
        for (nu, want) in cases.into_iter().filter(|c| !c.1.is_nan()) {
            let lo = student_t_quantile(p, nu);
            let hi = student_t_quantile(1.0 - p, nu);
            assert!(
                (lo - want).abs() <= 1e-11 * want.abs(),
                "q({p}; {nu}) = {lo}, closed form {want}"
            );
            // the upper level 1 - p is rounded: its own closed form
            let up = 1.0 - p;
            let want_hi = match nu as u32 {
                1 => (pi * (up - 0.5)).tan(),
                2 => (2.0 * up - 1.0) / (2.0 * up * (1.0 - up)).sqrt(),
                _ => -want,
            };
            assert!(
                (hi - want_hi).abs() <= 1e-11 * want_hi.abs(),
                "q({up}; {nu}) = {hi}, closed form {want_hi}"
            );
        }
    }
    // and a large ν near ½: the normal quantile's slope √(2π) to first order
    let t = student_t_quantile(0.5 - 1e-6, 1e6);
    assert!((t + 1e-6 * (2.0 * pi).sqrt()).abs() < 1e-12, "{t}");
}

/// Many degrees of freedom, against quantiles computed with mpmath 1.3 at 60 digits (the root
/// of `ln(½ betainc(ν/2, ½, 0, ν/(ν+t²), regularized=True)) = ln p`, `mp.findroot`; residuals
/// below 1e-47): to 1e-13. The difference of two large `ln Γ` had made q(0.3; 10¹⁵) -0.799, and
/// the incomplete beta's continued fractions lose digits for a huge `ν` (1e-6 at 10¹²): from
/// ν = 10⁵ the Cornish-Fisher expansion is used.
#[test]
fn student_t_quantiles_of_many_degrees_of_freedom_against_mpmath() {
    #[allow(clippy::excessive_precision)]
    const MPMATH: [(f64, f64, f64); 36] = [
        (1e-300, 1e4, -38.356384321004240739),
        (1e-20, 1e4, -9.2824741532543046544),
        (1e-6, 1e4, -4.7562296850567790081),
        (0.025, 1e4, -1.9602012398906262578),
        (0.3, 1e4, -0.52441722834546675865),
        (0.46, 1e4, -0.10043625671426128319),
        (1e-300, 1e5, -37.174670665466219077),
        (1e-20, 1e5, -9.2643501762794228504),
        (1e-6, 1e5, -4.7537047163912882536),
        (0.025, 1e5, -1.9599877075346096386),
        (0.3, 1e5, -0.52440218423354570853),
        (0.46, 1e5, -0.10043397412877218845),
        (1e-300, 1e6, -37.059820872774391306),
        (1e-20, 1e6, -9.2625410652916584358),
        (1e-6, 1e6, -4.7534523482796807974),
        (0.025, 1e6, -1.9599663568141070353),
        (0.3, 1e6, -0.52440067986020888902),
        (0.46, 1e6, -0.10043374587317026168),
        (1e-300, 1e8, -37.047223509020286084),
        (1e-20, 1e8, -9.2623420995168746031),
        (1e-6, 1e8, -4.7534245892160367586),
        (0.025, 1e8, -1.9599640082627668208),
        (0.3, 1e8, -0.52440051437956204446),
        (0.46, 1e8, -0.10043372076508676508),
        (1e-300, 1e12, -37.047096312082128718),
        (1e-20, 1e12, -9.2623400899993793836),
        (1e-6, 1e12, -4.7534243088509382605),
        (0.025, 1e12, -1.9599639845424265068),
        (0.3, 1e12, -0.52440051270820793616),
        (0.46, 1e12, -0.10043372051149515484),
        (1e-300, 1e15, -37.047096299373920167),
        (1e-20, 1e15, -9.2623400897986085455),
        (1e-6, 1e15, -4.7534243088229269875),
        (0.025, 1e15, -1.9599639845400566078),
        (0.3, 1e15, -0.52440051270804095119),
        (0.46, 1e15, -0.1004337205114698185),
    ];
    for (p, nu, want) in MPMATH {
        let got = student_t_quantile(p, nu);
        assert!(
            (got - want).abs() <= 1e-13 * want.abs(),
            "q({p}; {nu}) = {got}, mpmath {want}"
        );
        // the upper level u = 1 - p (rounded) is solved on its exact tail 1 - u
        let u = 1.0 - p;
        if u < 1.0 {
            assert_eq!(student_t_quantile(u, nu), -student_t_quantile(1.0 - u, nu));
        }
    }
}

/// Levels deep in the tail of many degrees of freedom, where Hill's start is already at the
/// root: the Newton step under an ulp ends the search (it was taken for a step out of the
/// bracket, and 400 bisections from there gave -33.58 for -34.17): the CDF at the quantile
/// gives the level back, on random levels and degrees of freedom, with no level's search
/// going wrong.
#[test]
fn student_t_quantiles_give_their_level_back_deep_in_the_tails() {
    let mut rng = ChaCha8Rng::seed_from_u64(14);
    let mut cases = vec![
        (1.2137993362355947e-246, 14725.73),
        (8.668728003356113e-266, 22636.8),
    ];
    for _ in 0..3000 {
        let nu = 10f64.powf(rng.gen_range(0.31f64..7.0));
        let p = 10f64.powf(-rng.gen_range(0.4f64..280.0));
        cases.push((p, nu));
    }
    for (p, nu) in cases {
        let t = student_t_quantile(p, nu);
        let back = student_t_cdf(t, nu);
        assert!(
            t < 0.0 && (back - p).abs() <= 1e-9 * p,
            "q({p:e}; {nu}) = {t}: CDF {back:e}"
        );
    }
    assert!(student_t_quantile(0.3, 0.0).is_nan() && student_t_quantile(0.3, -1.0).is_nan());
}

/// Counts too large for every whole number to be a double (about 1e17) end the search instead
/// of halving an interval that no longer shrinks.
#[test]
fn negative_binomial_quantiles_of_huge_counts_end() {
    for mu in [1e15, 1e16, 1e17, 1e19] {
        let qs: Vec<f64> = [0.025, 0.5, 0.975]
            .iter()
            .map(|&q| negative_binomial_quantile(q, mu, 1e-3))
            .collect();
        assert!(qs.iter().all(|q| !q.is_nan()), "{qs:?}");
    }
}

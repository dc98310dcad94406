//! `tasks::metrics`: each measure on small hand-computed windows, the edge cases, and the M4
//! hourly reference scores of seasonal naive and naive forecasts (data/README.md).

use lstm::tasks::metrics::{
    pinball, seasonal_naive_forecast, seasonal_naive_mae, Aggregate, MetricsError, WindowScore,
};

const NAN: f64 = f64::NAN;

fn close(found: f64, expected: f64, tol: f64) {
    assert!(
        (found - expected).abs() <= tol,
        "found {found}, expected {expected} ± {tol}"
    );
}

#[test]
fn scale_is_the_in_sample_seasonal_naive_mae() {
    // lag 2: |3−1| = 2, |4−2| = 2, |8−3| = 5 → 9/3 = 3
    close(
        seasonal_naive_mae(&[1.0, 2.0, 3.0, 4.0, 8.0], 2).unwrap(),
        3.0,
        1e-12,
    );
    // lag 1 (season 0 = 1): |2−1|, |4−2| skipped (NaN at 3), |5−4| → (1 + 1)/2 = 1;
    // the pairs (2, NaN) and (NaN, 4) are skipped
    close(
        seasonal_naive_mae(&[1.0, 2.0, NAN, 4.0, 5.0], 0).unwrap(),
        1.0,
        1e-12,
    );
    assert_eq!(seasonal_naive_mae(&[1.0, 2.0], 2), None);
    assert_eq!(seasonal_naive_mae(&[5.0, 5.0, 5.0], 1), Some(0.0));
}

#[test]
fn seasonal_naive_forecast_by_hand() {
    // season 3, history 1..=7: the last season is 5, 6, 7 (positions 1, 2, 0 of 7 = 3·2 + 1)
    let x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0];
    assert_eq!(seasonal_naive_forecast(&x, 3, 5), [5.0, 6.0, 7.0, 5.0, 6.0]);
    // a missing value: the same position one season earlier (6 → 3)
    let x = [1.0, 2.0, 3.0, 4.0, 5.0, NAN, 7.0];
    assert_eq!(seasonal_naive_forecast(&x, 3, 3), [5.0, 3.0, 7.0]);
    // a position with no value in the whole history (3 and 6 missing): the last value present,
    // not the first value of the history, which is another position
    let x = [1.0, 2.0, NAN, 4.0, 5.0, NAN, 7.0];
    assert_eq!(seasonal_naive_forecast(&x, 3, 3), [5.0, 7.0, 7.0]);
    // the first value of the history missing too: position 0 (times 0 and 3) has no value
    let x = [NAN, 2.0, 3.0, NAN, 5.0, 6.0];
    assert_eq!(seasonal_naive_forecast(&x, 3, 3), [6.0, 5.0, 6.0]);
    // season 0 is 1: the naive forecast
    assert_eq!(seasonal_naive_forecast(&[1.0, 2.0, NAN], 0, 2), [2.0, 2.0]);
    // nothing present: NaN, which scores nothing
    assert!(seasonal_naive_forecast(&[NAN, NAN], 2, 2)
        .iter()
        .all(|v| v.is_nan()));
}

#[test]
fn point_measures_by_hand() {
    // history 10, 12, 14, 16 with m = 1: scale = (2 + 2 + 2)/3 = 2
    // y = 10, 20, 0, NaN; ŷ = 12, 15, 0, 99
    let score = WindowScore::new(
        &[10.0, 12.0, 14.0, 16.0],
        &[10.0, 20.0, 0.0, NAN],
        &[12.0, 15.0, 0.0, 99.0],
        &[],
        1,
    )
    .unwrap();
    assert_eq!((score.horizon, score.observed), (4, 3));
    close(score.scale.unwrap(), 2.0, 1e-12);
    // sMAPE terms: 200·2/22 = 18.1818..., 200·5/35 = 28.5714..., 0 (|y|+|ŷ| = 0)
    // mean over 3 observed = (400/22 + 1000/35 + 0)/3 = 15.58441...
    close(
        score.smape.unwrap(),
        (400.0 / 22.0 + 1000.0 / 35.0) / 3.0,
        1e-12,
    );
    close(score.smape.unwrap(), 15.584_415_584_415_584, 1e-9);
    // MASE: mean |e| = (2 + 5 + 0)/3 = 7/3, / 2 = 7/6
    close(score.mase.unwrap(), 7.0 / 6.0, 1e-12);
    // MAPE skips y = 0: (100·2/10 + 100·5/20)/2 = (20 + 25)/2 = 22.5
    close(score.mape.unwrap(), 22.5, 1e-12);
    // RMSE: sqrt((4 + 25 + 0)/3) = sqrt(29/3) = 3.1091...
    close(score.rmse.unwrap(), (29.0f64 / 3.0).sqrt(), 1e-12);
    assert_eq!(score.quantile_loss, None);
    assert_eq!(score.coverage_95, None);
    assert_eq!(score.msis, None);
    // per step: the missing step has no terms
    assert_eq!(score.steps[3].smape, None);
    close(score.steps[1].scaled_error.unwrap(), 2.5, 1e-12);
}

#[test]
fn pinball_and_weighted_quantile_loss_by_hand() {
    // ρ_0.1(y=10, ŷ=12): e = −2 → max(0.1·−2, −0.9·−2) = 1.8
    close(pinball(0.1, 10.0, 12.0), 1.8, 1e-12);
    // ρ_0.9(y=10, ŷ=8): e = 2 → max(1.8, −0.2) = 1.8
    close(pinball(0.9, 10.0, 8.0), 1.8, 1e-12);
    // y = 10, 20; levels 0.1 → (8, 25), 0.9 → (12, 18)
    // level 0.1: ρ(10, 8) = 0.1·2 = 0.2; ρ(20, 25) = 0.9·5 = 4.5 → 4.7
    // level 0.9: ρ(10, 12) = 0.1·2 = 0.2; ρ(20, 18) = 0.9·2 = 1.8 → 2.0
    // Σ|y| = 30; wQL_0.1 = 2·4.7/30, wQL_0.9 = 2·2.0/30; mean = (9.4 + 4.0)/60 = 0.22333...
    let quantiles = vec![(0.1, vec![8.0, 25.0]), (0.9, vec![12.0, 18.0])];
    let score = WindowScore::new(&[1.0, 2.0], &[10.0, 20.0], &[10.0, 20.0], &quantiles, 1).unwrap();
    close(score.quantile_loss.unwrap(), 13.4 / 60.0, 1e-12);
    // no 0.025/0.975 levels: no coverage, no MSIS
    assert_eq!(score.coverage_95, None);
    assert_eq!(score.msis, None);
}

#[test]
fn coverage_and_msis_by_hand() {
    // history 0, 4, 0, 4, 0 with m = 2: pairs |0−0|, |4−4|, |0−0| → scale 0: use m = 1 instead
    // history 0, 4, 0, 4, 0 with m = 1: |4|, |−4|, |4|, |−4| → scale 4
    // y = 10, 3, 20; L = 8, 5, 8; U = 12, 9, 12 (width 4 each)
    // step 1: inside → IS = 4
    // step 2: y < L by 2 → IS = 4 + (2/0.05)·2 = 4 + 80 = 84
    // step 3: y > U by 8 → IS = 4 + 40·8 = 324
    // MSIS = mean(4, 84, 324)/4 = 137.333.../4 = 34.333...; coverage = 1/3
    let quantiles = vec![
        (0.025, vec![8.0, 5.0, 8.0]),
        (0.5, vec![10.0, 7.0, 10.0]),
        (0.975, vec![12.0, 9.0, 12.0]),
    ];
    let history = [0.0, 4.0, 0.0, 4.0, 0.0];
    let score = WindowScore::new(
        &history,
        &[10.0, 3.0, 20.0],
        &[10.0, 7.0, 10.0],
        &quantiles,
        1,
    )
    .unwrap();
    close(score.scale.unwrap(), 4.0, 1e-12);
    close(score.coverage_95.unwrap(), 1.0 / 3.0, 1e-12);
    close(score.msis.unwrap(), (4.0 + 84.0 + 324.0) / 3.0 / 4.0, 1e-12);
    close(score.steps[1].scaled_interval_score.unwrap(), 21.0, 1e-12);
    // the same history with m = 2 is "constant at lag 2": scale 0 → no MASE, no MSIS, never ∞
    let flat = WindowScore::new(
        &history,
        &[10.0, 3.0, 20.0],
        &[10.0, 7.0, 10.0],
        &quantiles,
        2,
    )
    .unwrap();
    assert_eq!((flat.scale, flat.mase, flat.msis), (None, None, None));
    assert!(flat.smape.is_some() && flat.coverage_95.is_some());
}

#[test]
fn aggregate_counts_skips_and_averages_per_window_and_per_step() {
    // window A: m = 1, history 0, 2 → scale 2; y = 4, 6; ŷ = 2, 6 → |e| = 2, 0
    //   sMAPE (200·2/6 + 0)/2 = 33.333...; MASE (2 + 0)/2/2 = 0.5; RMSE sqrt(4/2) = √2
    let a = WindowScore::new(&[0.0, 2.0], &[4.0, 6.0], &[2.0, 6.0], &[], 1).unwrap();
    // window B: constant history → no scale; y = 1, NaN; ŷ = 3, 0 → |e| = 2 at step 1
    //   sMAPE 200·2/4 = 100; RMSE 2
    let b = WindowScore::new(&[5.0, 5.0, 5.0], &[1.0, NAN], &[3.0, 0.0], &[], 1).unwrap();
    // window C: all actuals missing → skipped and counted
    let c = WindowScore::new(&[0.0, 2.0], &[NAN, NAN], &[1.0, 1.0], &[], 1).unwrap();
    assert_eq!(c.observed, 0);
    assert_eq!(c.smape, None);
    let all = Aggregate::from_windows(&[a, b, c]);
    assert_eq!(
        (all.windows, all.empty_windows, all.unscaled_windows),
        (3, 1, 1)
    );
    // sMAPE: mean(33.333..., 100) = 66.666...
    close(all.smape.unwrap(), (100.0 / 3.0 + 100.0) / 2.0, 1e-12);
    // MASE: only A → 0.5
    close(all.mase.unwrap(), 0.5, 1e-12);
    // RMSE: mean(√2, 2)
    close(all.rmse.unwrap(), (2f64.sqrt() + 2.0) / 2.0, 1e-12);
    // step 1: A (|e| = 2, y = 4), B (|e| = 2, y = 1): sMAPE mean(66.666..., 100); MASE only A: 1;
    //   RMSE sqrt((4 + 4)/2) = 2
    let s1 = &all.per_step[0];
    assert_eq!((s1.step, s1.count), (1, 2));
    close(s1.smape.unwrap(), (200.0 / 3.0 + 100.0) / 2.0, 1e-12);
    close(s1.mase.unwrap(), 1.0, 1e-12);
    close(s1.rmse.unwrap(), 2.0, 1e-12);
    // step 2: only A, exact → 0
    let s2 = &all.per_step[1];
    assert_eq!(s2.count, 1);
    close(s2.smape.unwrap(), 0.0, 0.0);
    // JSON round trip, and a table with the overall row then one row per step
    let back: Aggregate = serde_json::from_str(&all.to_json()).unwrap();
    // (serde_json's default float parsing may differ in the last bit, hence the tolerance)
    assert_eq!(
        (back.windows, back.empty_windows, back.unscaled_windows),
        (3, 1, 1)
    );
    close(back.rmse.unwrap(), all.rmse.unwrap(), 1e-12);
    assert_eq!(back.msis, None);
    assert_eq!(back.per_step.len(), 2);
    close(back.per_step[0].smape.unwrap(), s1.smape.unwrap(), 1e-12);
    let table = all.to_string();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 5, "{table}");
    assert!(
        lines[2].starts_with("overall")
            && lines[3].starts_with("step 1")
            && lines[4].starts_with("step 2")
    );
    assert!(lines[2].contains("66.6667"), "{table}");
}

#[test]
fn bad_inputs_are_errors() {
    let err = WindowScore::new(&[1.0], &[1.0, 2.0], &[1.0], &[], 1).unwrap_err();
    assert!(matches!(
        err,
        MetricsError::Length {
            expected: 2,
            found: 1,
            ..
        }
    ));
    let err = WindowScore::new(&[1.0], &[1.0], &[1.0], &[(1.5, vec![1.0])], 1).unwrap_err();
    assert_eq!(err, MetricsError::Level(1.5));
}

/// The 414 M4 hourly series, in file order.
fn m4_hourly() -> Vec<Vec<f64>> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../data/m4_hourly_train.csv"
    );
    let text = std::fs::read_to_string(path).unwrap();
    let mut series: Vec<Vec<f64>> = Vec::new();
    let mut current = "";
    for line in text.lines().skip(1) {
        let mut fields = line.split(',');
        let (name, _t, value) = (
            fields.next().unwrap(),
            fields.next().unwrap(),
            fields.next().unwrap(),
        );
        if name != current {
            series.push(Vec::new());
            current = name;
        }
        series.last_mut().unwrap().push(value.parse().unwrap());
    }
    series
}

#[test]
fn m4_hourly_reference_scores_of_seasonal_naive_and_naive() {
    const H: usize = 48;
    const M: usize = 24;
    let series = m4_hourly();
    assert_eq!(series.len(), 414);
    let (mut seasonal, mut naive) = (Vec::new(), Vec::new());
    for values in &series {
        let (insample, actual) = values.split_at(values.len() - H);
        let last_season = &insample[insample.len() - M..];
        let seasonal_forecast: Vec<f64> = (0..H).map(|t| last_season[t % M]).collect();
        let naive_forecast = vec![insample[insample.len() - 1]; H];
        // the library's baseline (`lstm eval`'s) is the same forecast
        assert_eq!(seasonal_naive_forecast(insample, M, H), seasonal_forecast);
        seasonal.push(WindowScore::new(insample, actual, &seasonal_forecast, &[], M).unwrap());
        naive.push(WindowScore::new(insample, actual, &naive_forecast, &[], M).unwrap());
    }
    let seasonal = Aggregate::from_windows(&seasonal);
    let naive = Aggregate::from_windows(&naive);
    println!("seasonal naive\n{seasonal}\nnaive\n{naive}");
    for all in [&seasonal, &naive] {
        assert_eq!(
            (all.windows, all.empty_windows, all.unscaled_windows),
            (414, 0, 0)
        );
        assert_eq!(all.per_step.len(), H);
    }
    // data/README.md: seasonal naive sMAPE 14.570, MASE 1.2284; naive sMAPE 41.399, MASE 11.532
    close(seasonal.smape.unwrap(), 14.570, 0.0005);
    close(seasonal.mase.unwrap(), 1.2284, 0.00005);
    close(naive.smape.unwrap(), 41.399, 0.0005);
    close(naive.mase.unwrap(), 11.532, 0.0005);
}

//! The fast activations against the standard library over the whole f32 range.

use lstm::kernels::activation::{exp, sigmoid, sigmoid_reference, tanh, tanh_reference};

/// Every 97th f32 bit pattern (about 44 million values, both signs, all exponents), plus
/// the special values.
fn all_floats() -> impl Iterator<Item = f32> {
    (0..u32::MAX / 97)
        .map(|i| f32::from_bits(i * 97))
        .filter(|x| x.is_finite())
        .chain([
            0.0, -0.0, 1e-30, -1e-30, 0.1, -0.1, 0.0999999, 88.0, -88.0, 1e30, -1e30,
        ])
}

#[test]
fn sigmoid_error_is_bounded_over_the_f32_range() {
    let mut worst_abs = 0.0f32;
    let mut worst_rel = 0.0f32;
    for x in all_floats() {
        let (got, want) = (sigmoid(x), sigmoid_reference(x));
        assert!(
            got.is_finite() && (0.0..=1.0).contains(&got),
            "sigmoid({x}) = {got}"
        );
        worst_abs = worst_abs.max((got - want).abs());
        if want > 1e-30 {
            worst_rel = worst_rel.max((got - want).abs() / want);
        }
    }
    assert!(
        worst_abs <= 2e-7,
        "sigmoid worst absolute error {worst_abs}"
    );
    assert!(
        worst_rel <= 5e-7,
        "sigmoid worst relative error {worst_rel}"
    );
}

#[test]
fn tanh_error_is_bounded_over_the_f32_range() {
    let mut worst_abs = 0.0f32;
    let mut worst_rel = 0.0f32;
    for x in all_floats() {
        let (got, want) = (tanh(x), tanh_reference(x));
        assert!(got.is_finite() && got.abs() <= 1.0, "tanh({x}) = {got}");
        worst_abs = worst_abs.max((got - want).abs());
        if want.abs() > 1e-30 {
            worst_rel = worst_rel.max((got - want).abs() / want.abs());
        }
    }
    assert!(worst_abs <= 2e-7, "tanh worst absolute error {worst_abs}");
    assert!(worst_rel <= 2e-6, "tanh worst relative error {worst_rel}");
}

#[test]
fn exp_matches_std_where_normal() {
    let mut x = -87.0f32;
    while x < 88.0 {
        let (got, want) = (exp(x), (x as f64).exp() as f32);
        assert!(
            (got - want).abs() <= 3e-7 * want,
            "exp({x}) = {got}, want {want}"
        );
        x += 0.0137;
    }
}

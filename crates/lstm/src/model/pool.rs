//! Concat pooling for [`super::Head::Pooled`]: the head reads, for each sequence, the top
//! layer's final state, then the maximum and the mean of the top layer's outputs over the
//! sequence's real steps (Howard & Ruder 2018, ULMFiT's classifier head).
//!
//! The outputs are batch-first `(B, T, F)` with `F` = directions × hidden output; a head row
//! is `3F` wide: `[last (F) | max (F) | mean (F)]`. The last-state block is filled by the
//! caller; these functions fill and differentiate the other two.

/// Fills the max and mean blocks of each head row `j` (`head_in[j·3F + F ..]`) from the
/// outputs `y` `(B, T, F)` over the first `lengths[j]` steps (all `T` without lengths), and
/// records in `argmax` `(B, F)` the step each maximum came from (`u32::MAX`: an empty
/// sequence, whose max and mean are 0).
pub(crate) fn max_mean_forward(
    y: &[f32],
    b: usize,
    t: usize,
    f: usize,
    lengths: Option<&[usize]>,
    head_in: &mut [f32],
    argmax: &mut Vec<u32>,
) {
    let hf = 3 * f;
    argmax.clear();
    argmax.resize(b * f, u32::MAX);
    for j in 0..b {
        let len = lengths.map_or(t, |l| l[j].min(t));
        let row = &mut head_in[j * hf..(j + 1) * hf];
        let (mx, mean) = row[f..].split_at_mut(f);
        mx.fill(0.0);
        mean.fill(0.0);
        if len == 0 {
            continue;
        }
        let am = &mut argmax[j * f..(j + 1) * f];
        mx.copy_from_slice(&y[j * t * f..(j * t + 1) * f]);
        am.fill(0);
        for s in 0..len {
            let ys = &y[(j * t + s) * f..(j * t + s + 1) * f];
            for k in 0..f {
                if ys[k] > mx[k] {
                    mx[k] = ys[k];
                    am[k] = s as u32;
                }
                mean[k] += ys[k];
            }
        }
        let inv = 1.0 / len as f32;
        for v in mean.iter_mut() {
            *v *= inv;
        }
    }
}

/// Adds the gradient of the max and mean blocks (`d_head_in` `(B, 3F)`) to the outputs'
/// gradient `d_out` `(B, T, F)`: each maximum's to the step it came from, each mean's spread
/// evenly over the real steps.
pub(crate) fn max_mean_backward(
    d_head_in: &[f32],
    b: usize,
    t: usize,
    f: usize,
    lengths: Option<&[usize]>,
    argmax: &[u32],
    d_out: &mut [f32],
) {
    let hf = 3 * f;
    for j in 0..b {
        let len = lengths.map_or(t, |l| l[j].min(t));
        if len == 0 {
            continue;
        }
        let row = &d_head_in[j * hf..(j + 1) * hf];
        let (dmax, dmean) = (&row[f..2 * f], &row[2 * f..]);
        let inv = 1.0 / len as f32;
        for s in 0..len {
            let ds = &mut d_out[(j * t + s) * f..(j * t + s + 1) * f];
            for k in 0..f {
                ds[k] += dmean[k] * inv;
            }
        }
        for k in 0..f {
            let s = argmax[j * f + k];
            if s != u32::MAX {
                d_out[(j * t + s as usize) * f + k] += dmax[k];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_and_mean_over_real_steps() {
        // B = 2, T = 3, F = 1; the second sequence has 2 real steps
        let y = [1.0, 3.0, 2.0, -1.0, -2.0, 0.0];
        let mut head_in = vec![9.0; 6];
        let mut am = Vec::new();
        max_mean_forward(&y, 2, 3, 1, Some(&[3, 2]), &mut head_in, &mut am);
        assert_eq!(head_in, [9.0, 3.0, 2.0, 9.0, -1.0, -1.5]);
        assert_eq!(am, [1, 0]);
        let mut d = vec![0.0; 6];
        max_mean_backward(
            &[0.0, 1.0, 3.0, 0.0, 1.0, 2.0],
            2,
            3,
            1,
            Some(&[3, 2]),
            &am,
            &mut d,
        );
        assert_eq!(d, [1.0, 2.0, 1.0, 2.0, 1.0, 0.0]);
    }
}

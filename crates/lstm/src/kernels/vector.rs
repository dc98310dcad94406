//! Element-wise sums over slices, vectorised for the CPU.

/// Adds the sums of the rows of `x` (`rows × cols`, contiguous) into `out` (`cols`).
pub fn add_column_sums(x: &[f32], rows: usize, cols: usize, out: &mut [f32]) {
    for r in 0..rows {
        add_assign(&mut out[..cols], &x[r * cols..(r + 1) * cols]);
    }
}

#[inline(always)]
fn add_assign_imp(dst: &mut [f32], src: &[f32]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d += s;
    }
}

crate::simd_dispatch!(
    /// `dst += src` element by element (over the shorter of the two), vectorised for the CPU.
    pub fn add_assign(dst: &mut [f32], src: &[f32]) => add_assign_imp
);

#[inline(always)]
fn add_into_imp(dst: &mut [f32], a: &[f32], b: &[f32]) {
    for ((d, x), y) in dst.iter_mut().zip(a).zip(b) {
        *d = x + y;
    }
}

crate::simd_dispatch!(
    /// `dst = a + b` element by element (over the shortest), vectorised for the CPU.
    pub fn add_into(dst: &mut [f32], a: &[f32], b: &[f32]) => add_into_imp
);

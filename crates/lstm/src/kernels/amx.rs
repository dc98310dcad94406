//! bf16 products with `f32` sums on the CPU's matrix units: AMX tiles (`tdpbf16ps`) where the
//! CPU has them and Linux grants them to the process, AVX-512 BF16 (`vdpbf16ps`) where it does
//! not, and the same arithmetic in plain Rust on other CPUs.
//!
//! The product is `C (m, n) = C + A (m, k) · B (k, n)` (or `C = A · B`). `B`, a weight matrix, is
//! rounded to bf16 and laid out once in an [`AmxPacked`]; `A` is rounded to bf16 on the fly by
//! [`gemm_bf16`], or once ahead into a [`Bf16Rows`] for [`gemm_bf16_rows`]. A product of two
//! bf16 is exact in `f32`, so beside the rounding of the inputs the only error is that of the
//! `f32` sums: the tests hold every backend to the product of the rounded inputs in `f64` within
//! the bound of a sum of `k` terms.
//!
//! **Layout.** bf16 values go in pairs along `k` (`k` is padded with zeros to a multiple of
//! [`TILE_K`] = 32), the layout both `tdpbf16ps` and `vdpbf16ps` read. [`AmxPacked`] holds `B`
//! in panels of 16 columns (`n` padded with zero columns to a multiple of 32): in panel `j`, line
//! `p` (64 bytes, one tile row and one AVX-512 register) holds `B[2p + e, 16j + c]` at bf16
//! `2c + e`. A tile of `B` is 16 consecutive lines of one panel. [`Bf16Rows`] holds `A` row-major
//! in bf16 (rows padded with zeros to a multiple of 32), so a tile of `A` is 16 rows of 64 bytes.
//! `C` is computed in blocks of 32 x 32: on AMX, four accumulator tiles (two tiles of `A` by two
//! of `B`); on AVX-512, four groups of 8 rows by two panels.
//!
//! **Order of sums.** Each element of `C` is its own `f32` sum over `k` in a fixed order (the
//! hardware's within a tile or register, then the tiles of `k` in order), then added to `C`'s
//! old value; the threads split `C` by blocks and never share a sum, so the result does not
//! depend on the number of threads. The three backends may differ from each other in the last
//! bits.
//!
//! **AMX on Linux.** The tile data is a dynamically enabled state: a process asks for it once
//! with `arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)` ([`amx_status`] does, and
//! remembers the answer). AMX instructions have no stable intrinsics in Rust, so they are
//! written as inline assembly.
//!
//! ```
//! use lstm::kernels::amx::{gemm_bf16, AmxPacked};
//! use lstm::kernels::Transpose;
//! // h (2, 3) · W_hhᵀ, with W_hh (2, 3) stored row-major: B = W_hhᵀ is (k = 3, n = 2)
//! let w_hh = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0];
//! let packed = AmxPacked::new(&w_hh, 3, 3, 2, Transpose::Yes);
//! let h = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
//! let mut c = [0.0; 4];
//! gemm_bf16(2, &h, 3, &packed, &mut c, 2, false);
//! assert_eq!(c, [1.0, 2.0, 4.0, 5.0]);
//! ```

use super::bf16::to_bf16;
use super::gemm::{needed, Transpose};
use super::threads::num_threads;
use std::sync::OnceLock;

/// bf16 values per tile row along `k` (64 bytes): `k` is padded with zeros to a multiple of it.
pub const TILE_K: usize = 32;

/// Rows and columns of the blocks `C` is computed in (two tiles of 16 each way); the rows of `A`
/// and the columns of `B` are padded with zeros to a multiple of it.
pub const BLOCK: usize = 32;

/// Bytes of `A` in bf16 that one chunk of rows of blocks may hold (see [`gemm_bf16_rows`]).
const CHUNK_BYTES: usize = 256 << 10;

/// Products smaller than this (in multiply-adds) run on one thread.
const PARALLEL_MIN_MACS: usize = 1 << 23;

/// One line of 64 bytes, aligned to 64: 32 bf16, a tile row or an AVX-512 register.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([u16; TILE_K]);

const ZERO_LINE: Line = Line([0; TILE_K]);

/// Why AMX is not used (see [`amx_status`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AmxUnavailable {
    /// Not an x86-64 Linux build.
    #[error("AMX needs x86-64 Linux")]
    Platform,
    /// The CPU does not report the feature (CPUID leaf 7, EDX).
    #[error("the CPU has no {0} (CPUID leaf 7)")]
    Cpu(&'static str),
    /// The kernel refused the tile data (the negative errno of `arch_prctl`).
    #[error("Linux refused the AMX tile data: arch_prctl(ARCH_REQ_XCOMP_PERM) returned {0}")]
    Refused(i64),
}

/// Whether this process may use the AMX tiles with bf16: the CPU reports AMX-TILE and AMX-BF16
/// and Linux grants the tile data. The permission is asked for on the first call, once per
/// process, and the answer is kept.
///
/// # Errors
/// [`AmxUnavailable`] saying which of the three is missing.
pub fn amx_status() -> Result<(), AmxUnavailable> {
    static STATUS: OnceLock<Result<(), AmxUnavailable>> = OnceLock::new();
    STATUS.get_or_init(detect_amx).clone()
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn detect_amx() -> Result<(), AmxUnavailable> {
    use std::arch::x86_64::__cpuid_count;
    // CPUID leaf 0 gives the highest leaf, checked before leaf 7 is read.
    let max_leaf = __cpuid_count(0, 0).eax;
    if max_leaf < 7 {
        return Err(AmxUnavailable::Cpu("AMX-TILE"));
    }
    let edx = __cpuid_count(7, 0).edx;
    if edx & (1 << 24) == 0 {
        return Err(AmxUnavailable::Cpu("AMX-TILE"));
    }
    if edx & (1 << 22) == 0 {
        return Err(AmxUnavailable::Cpu("AMX-BF16"));
    }
    const SYS_ARCH_PRCTL: i64 = 158;
    const ARCH_REQ_XCOMP_PERM: u64 = 0x1023;
    const XFEATURE_XTILEDATA: u64 = 18;
    let ret: i64;
    // SAFETY: the arch_prctl system call with ARCH_REQ_XCOMP_PERM takes two integers and
    // touches no memory of ours; `syscall` clobbers rcx and r11 (declared) and returns in rax.
    // Asking again after a grant is harmless, and `OnceLock` asks once anyway.
    unsafe {
        std::arch::asm!(
            "syscall",
            inlateout("rax") SYS_ARCH_PRCTL => ret,
            in("rdi") ARCH_REQ_XCOMP_PERM,
            in("rsi") XFEATURE_XTILEDATA,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    if ret != 0 {
        return Err(AmxUnavailable::Refused(ret));
    }
    Ok(())
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
fn detect_amx() -> Result<(), AmxUnavailable> {
    Err(AmxUnavailable::Platform)
}

fn has_avx512_bf16() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512bf16")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The code that runs a bf16 product, best first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bf16Backend {
    /// AMX tiles: `tdpbf16ps` on blocks of 32 x 32 (four accumulator tiles).
    Amx,
    /// AVX-512 BF16: `vdpbf16ps` on blocks of 8 rows by 32 columns.
    Avx512Bf16,
    /// Plain Rust, the same products and sums in scalar code.
    Scalar,
}

impl Bf16Backend {
    /// Whether this CPU (and, for [`Bf16Backend::Amx`], the operating system) can run it.
    pub fn is_available(self) -> bool {
        match self {
            Bf16Backend::Amx => amx_status().is_ok(),
            Bf16Backend::Avx512Bf16 => has_avx512_bf16(),
            Bf16Backend::Scalar => true,
        }
    }

    /// The fastest backend available here.
    pub fn best() -> Bf16Backend {
        [Bf16Backend::Amx, Bf16Backend::Avx512Bf16]
            .into_iter()
            .find(|b| b.is_available())
            .unwrap_or(Bf16Backend::Scalar)
    }
}

/// `B (k, n)` rounded to bf16 (ties to even) and laid out for the tiles, once, to be multiplied
/// many times (see the [module docs](self) for the layout).
#[derive(Clone)]
pub struct AmxPacked {
    k: usize,
    n: usize,
    /// `k` rounded up to a multiple of [`TILE_K`].
    kpad: usize,
    /// Panels of 16 columns: `n` rounded up to a multiple of [`BLOCK`], over 16.
    panels: usize,
    /// Panel `j`, line `p` at `j·kpad/2 + p`.
    lines: Vec<Line>,
}

impl std::fmt::Debug for AmxPacked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmxPacked")
            .field("k", &self.k)
            .field("n", &self.n)
            .finish_non_exhaustive()
    }
}

impl AmxPacked {
    /// Packs `B (k, n)`: read as stored `(k, n)` with row stride `ld` when `tb == No` (an input
    /// projection's `(I, 4H)` weights, say), or as the transpose of a stored `(n, k)` when
    /// `tb == Yes` (`W_hh (4H, H)` for `h · W_hhᵀ`).
    ///
    /// # Panics
    /// If `b` is too short for the shape and `ld`.
    pub fn new(b: &[f32], ld: usize, k: usize, n: usize, tb: Transpose) -> AmxPacked {
        let (rows, cols) = match tb {
            Transpose::No => (k, n),
            Transpose::Yes => (n, k),
        };
        assert!(
            cols <= ld || rows <= 1,
            "AmxPacked: ld {ld} < {cols} columns"
        );
        assert!(
            b.len() >= needed(k, n, ld, tb),
            "AmxPacked: B too short for ({k}, {n}) with ld {ld}"
        );
        let kpad = k.div_ceil(TILE_K) * TILE_K;
        let panels = n.div_ceil(BLOCK) * 2;
        let half = kpad / 2; // lines per panel
        let mut lines = vec![ZERO_LINE; panels * half];
        let at = |kk: usize, j: usize| match tb {
            Transpose::No => b[kk * ld + j],
            Transpose::Yes => b[j * ld + kk],
        };
        // line `p` of the panel starting at column `j0`: B[2p + e, j0 + c] at bf16 2c + e
        let fill_line = |j0: usize, p: usize, line: &mut Line| {
            if j0 + 16 <= n && 2 * p + 2 <= k {
                match tb {
                    Transpose::No => {
                        let even = &b[2 * p * ld + j0..][..16];
                        let odd = &b[(2 * p + 1) * ld + j0..][..16];
                        for (c, pair) in line.0.chunks_exact_mut(2).enumerate() {
                            pair[0] = to_bf16(even[c]);
                            pair[1] = to_bf16(odd[c]);
                        }
                    }
                    Transpose::Yes => {
                        for (c, pair) in line.0.chunks_exact_mut(2).enumerate() {
                            let src = &b[(j0 + c) * ld + 2 * p..][..2];
                            pair[0] = to_bf16(src[0]);
                            pair[1] = to_bf16(src[1]);
                        }
                    }
                }
            } else {
                for c in 0..16.min(n.saturating_sub(j0)) {
                    for e in 0..2.min(k.saturating_sub(2 * p)) {
                        line.0[2 * c + e] = to_bf16(at(2 * p + e, j0 + c));
                    }
                }
            }
        };
        let fill_panel = |panel: usize, dst: &mut [Line]| {
            let mut done = 0;
            #[cfg(target_arch = "x86_64")]
            if has_avx512_bf16() && std::is_x86_feature_detected!("avx512bw") {
                // SAFETY: the CPU has AVX-512F, BW and BF16; the function indexes `b` and
                // `dst` through bounds-checked slices.
                done = unsafe { pack_panel_avx512(b, ld, tb, k, n, 16 * panel, dst) };
            }
            for (p, line) in dst.iter_mut().enumerate().take(k.div_ceil(2)).skip(done) {
                fill_line(16 * panel, p, line);
            }
        };
        if half > 0 && n * k >= PARALLEL_MIN_MACS / 8 && num_threads() > 1 {
            use rayon::prelude::*;
            let threads = num_threads();
            let per = panels.div_ceil(threads) * half;
            lines
                .par_chunks_mut(per)
                .enumerate()
                .for_each(|(t, chunk)| {
                    for (q, dst) in chunk.chunks_mut(half).enumerate() {
                        fill_panel(t * per / half + q, dst);
                    }
                });
        } else if half > 0 {
            for (panel, dst) in lines.chunks_mut(half).enumerate() {
                fill_panel(panel, dst);
            }
        }
        AmxPacked {
            k,
            n,
            kpad,
            panels,
            lines,
        }
    }

    /// The shape `(k, n)` of `B`.
    pub fn shape(&self) -> (usize, usize) {
        (self.k, self.n)
    }

    /// `B[kk, j]` as stored (rounded to bf16), for tests.
    pub fn get(&self, kk: usize, j: usize) -> f32 {
        assert!(kk < self.k && j < self.n);
        let line = &self.lines[(j / 16) * self.kpad / 2 + kk / 2];
        super::bf16::from_bf16(line.0[2 * (j % 16) + kk % 2])
    }
}

/// The lines of the panel starting at column `j0` that lie wholly inside `B`, with
/// `vcvtne2ps2bf16` (ties to even; `f32` subnormals become zero, where [`to_bf16`] keeps them):
/// returns how many leading lines it filled (0 for a partial panel), the caller fills the rest.
/// As stored (`No`), a line is two rows of `B` interleaved; transposed (`Yes`), 16 rows of the
/// stored `(n, k)` are converted 32 values at a time and their pairs transposed into 16 lines.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
unsafe fn pack_panel_avx512(
    b: &[f32],
    ld: usize,
    tb: Transpose,
    k: usize,
    n: usize,
    j0: usize,
    dst: &mut [Line],
) -> usize {
    use std::arch::x86_64::*;
    if j0 + 16 > n {
        return 0;
    }
    match tb {
        Transpose::No => {
            // [e0 .. e15, o0 .. o15] -> [e0, o0, e1, o1, ..]
            let order: [u16; 32] = std::array::from_fn(|i| (i / 2 + 16 * (i % 2)) as u16);
            let order = _mm512_loadu_si512(order.as_ptr() as *const _);
            for (p, line) in dst.iter_mut().enumerate().take(k / 2) {
                let even = _mm512_loadu_ps(b[2 * p * ld + j0..][..16].as_ptr());
                let odd = _mm512_loadu_ps(b[(2 * p + 1) * ld + j0..][..16].as_ptr());
                let v = std::mem::transmute::<__m512bh, __m512i>(_mm512_cvtne2ps_pbh(odd, even));
                let v = _mm512_permutexvar_epi16(order, v);
                _mm512_store_si512(line.0.as_mut_ptr() as *mut _, v);
            }
            k / 2
        }
        Transpose::Yes => {
            // pairs[c][q]: the bf16 pair (2q, 2q + 1) of the group, in row j0 + c
            let mut pairs = [[0u32; 16]; 16];
            for g in 0..k / TILE_K {
                for (c, row_pairs) in pairs.iter_mut().enumerate() {
                    let row = &b[(j0 + c) * ld + TILE_K * g..][..TILE_K];
                    let lo = _mm512_loadu_ps(row.as_ptr());
                    let hi = _mm512_loadu_ps(row[16..].as_ptr());
                    let v = std::mem::transmute::<__m512bh, __m512i>(_mm512_cvtne2ps_pbh(hi, lo));
                    _mm512_storeu_si512(row_pairs.as_mut_ptr() as *mut _, v);
                }
                for (q, line) in dst[16 * g..16 * g + 16].iter_mut().enumerate() {
                    for (c, row_pairs) in pairs.iter().enumerate() {
                        let v = row_pairs[q];
                        line.0[2 * c] = v as u16;
                        line.0[2 * c + 1] = (v >> 16) as u16;
                    }
                }
            }
            16 * (k / TILE_K)
        }
    }
}

/// `A (m, k)` rounded to bf16 (ties to even), row-major with `k` padded with zeros to a multiple
/// of [`TILE_K`] and the rows to a multiple of [`BLOCK`]: the left operand of
/// [`gemm_bf16_rows`], converted once (an input sequence used by the input projection and by a
/// weight gradient, say). Its buffer is reused by [`Bf16Rows::fill`].
#[derive(Clone, Default)]
pub struct Bf16Rows {
    m: usize,
    k: usize,
    kpad: usize,
    /// Row `i` is lines `i·kpad/32 ..`.
    lines: Vec<Line>,
}

impl std::fmt::Debug for Bf16Rows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bf16Rows")
            .field("m", &self.m)
            .field("k", &self.k)
            .finish_non_exhaustive()
    }
}

impl Bf16Rows {
    /// `A (m, k)`, read with row stride `lda`, rounded to bf16.
    ///
    /// # Panics
    /// If `a` is too short for the shape and `lda`.
    pub fn new(a: &[f32], lda: usize, m: usize, k: usize) -> Bf16Rows {
        let mut rows = Bf16Rows::default();
        rows.fill(a, lda, m, k);
        rows
    }

    /// Replaces the contents with `A (m, k)` (row stride `lda`), keeping the buffer.
    ///
    /// # Panics
    /// If `a` is too short for the shape and `lda`.
    pub fn fill(&mut self, a: &[f32], lda: usize, m: usize, k: usize) {
        self.fill_op(a, lda, Transpose::No, m, k);
    }

    /// Replaces the contents with `op(A) (m, k)`, keeping the buffer: `A` as stored `(m, k)`
    /// when `ta == No`, or the transpose of a stored `(k, m)` when `ta == Yes` (the gates'
    /// gradient `dg (T·B, 4H)` as the left factor `dgᵀ` of a weight gradient). `lda` is the
    /// row stride of the stored matrix.
    ///
    /// # Panics
    /// If `a` is too short for the shape and `lda`.
    pub fn fill_op(&mut self, a: &[f32], lda: usize, ta: Transpose, m: usize, k: usize) {
        let cols = if ta == Transpose::No { k } else { m };
        let rows = if ta == Transpose::No { m } else { k };
        assert!(
            cols <= lda || rows <= 1,
            "Bf16Rows: lda {lda} < {cols} columns"
        );
        assert!(a.len() >= needed(m, k, lda, ta), "Bf16Rows: A too short");
        let kpad = k.div_ceil(TILE_K) * TILE_K;
        let mpad = m.div_ceil(BLOCK) * BLOCK;
        let per_row = kpad / TILE_K;
        self.lines.clear();
        self.lines.resize(mpad * per_row, ZERO_LINE);
        (self.m, self.k, self.kpad) = (m, k, kpad);
        if ta == Transpose::Yes {
            // row kk of the stored matrix is column kk of A: in blocks of 32 of k by 16 of m,
            // read row by row into a small buffer, then written line by line (writing 16
            // lines a row of A apart, 4 KiB apart for k = 2048, column by column would thrash
            // the L1 cache's sets)
            let mut block = [[0f32; 16]; TILE_K];
            for kb in 0..kpad / TILE_K {
                let ks = TILE_K * kb..(TILE_K * kb + TILE_K).min(k);
                for i0 in (0..m).step_by(16) {
                    let rows = (m - i0).min(16);
                    for (r, kk) in ks.clone().enumerate() {
                        block[r][..rows].copy_from_slice(&a[kk * lda + i0..][..rows]);
                    }
                    for ii in 0..rows {
                        let line = &mut self.lines[(i0 + ii) * per_row + kb];
                        for (r, v) in line.0[..ks.len()].iter_mut().enumerate() {
                            *v = to_bf16(block[r][ii]);
                        }
                    }
                }
            }
            return;
        }
        for i in 0..m {
            let row = &a[i * lda..i * lda + k];
            let dst = &mut self.lines[i * per_row..(i + 1) * per_row];
            #[cfg(target_arch = "x86_64")]
            if has_avx512_bf16() {
                // SAFETY: the CPU has AVX-512F and AVX-512 BF16; `dst` has `kpad / 32` lines
                // for the `k` values of `row`.
                unsafe { convert_row_avx512(row, dst) };
                continue;
            }
            for (kk, &x) in row.iter().enumerate() {
                dst[kk / TILE_K].0[kk % TILE_K] = to_bf16(x);
            }
        }
    }

    /// The shape `(m, k)` of `A`.
    pub fn shape(&self) -> (usize, usize) {
        (self.m, self.k)
    }
}

/// One row of `A` to bf16 with `vcvtne2ps2bf16` (ties to even; it reads `f32` subnormals as
/// zero, where [`to_bf16`] keeps them).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn convert_row_avx512(row: &[f32], dst: &mut [Line]) {
    use std::arch::x86_64::*;
    let k = row.len();
    for (l, line) in dst.iter_mut().enumerate() {
        let k0 = l * TILE_K;
        let mask = |from: usize| -> __mmask16 {
            let left = k.saturating_sub(from).min(16);
            ((1u32 << left) - 1) as __mmask16
        };
        // SAFETY (of the masked loads): the masks cover only indices below `k`.
        let lo = _mm512_maskz_loadu_ps(mask(k0), row.as_ptr().wrapping_add(k0));
        let hi = _mm512_maskz_loadu_ps(mask(k0 + 16), row.as_ptr().wrapping_add(k0 + 16));
        let packed = _mm512_cvtne2ps_pbh(hi, lo);
        _mm512_store_si512(
            line.0.as_mut_ptr() as *mut _,
            std::mem::transmute::<__m512bh, __m512i>(packed),
        );
    }
}

/// `C (m, n) = C + A · B` (`accumulate`) or `C = A · B`, with `A (m, k)` in `f32` (row stride
/// `lda`, rounded to bf16 here) and `B` packed, on the best backend ([`Bf16Backend::best`]).
/// `C` has row stride `ldc`; its columns past `n` are not touched.
///
/// # Panics
/// If a buffer is too short for the shapes or `A`'s `k` is not `B`'s.
#[allow(clippy::too_many_arguments)]
pub fn gemm_bf16(
    m: usize,
    a: &[f32],
    lda: usize,
    b: &AmxPacked,
    c: &mut [f32],
    ldc: usize,
    accumulate: bool,
) {
    thread_local! {
        static SCRATCH: std::cell::RefCell<Bf16Rows> = std::cell::RefCell::new(Bf16Rows::default());
    }
    // The buffer is taken out while in use, not borrowed: a rayon thread waiting in the
    // product below may run another task that calls this function on the same thread.
    SCRATCH.with(|s| {
        let mut rows = s.take();
        rows.fill(a, lda, m, b.k);
        gemm_bf16_rows(Bf16Backend::best(), &rows, b, c, ldc, accumulate);
        s.replace(rows);
    });
}

/// `C (m, n) = C + A · B` (`accumulate`) or `C = A · B` with both operands already in bf16, on
/// `backend`. `C` has row stride `ldc`; its columns past `n` are not touched. Runs on up to
/// [`num_threads`] threads, each on its own blocks of `C`: the result does not depend on the
/// number.
///
/// # Panics
/// If `backend` is not available here ([`Bf16Backend::is_available`]), if `A`'s `k` is not
/// `B`'s, or if `c` is too short.
pub fn gemm_bf16_rows(
    backend: Bf16Backend,
    a: &Bf16Rows,
    b: &AmxPacked,
    c: &mut [f32],
    ldc: usize,
    accumulate: bool,
) {
    let (m, n, k) = (a.m, b.n, b.k);
    assert_eq!(a.k, k, "gemm_bf16: A has k = {}, B has k = {k}", a.k);
    assert!(n <= ldc || m <= 1, "gemm_bf16: ldc {ldc} < n {n}");
    assert!(
        c.len() >= needed(m, n, ldc, Transpose::No),
        "gemm_bf16: C too short"
    );
    assert!(
        backend.is_available(),
        "gemm_bf16: {backend:?} is not available on this machine"
    );
    if m == 0 || n == 0 {
        return;
    }
    let (row_blocks, col_blocks) = (m.div_ceil(BLOCK), b.panels / 2);
    let blocks = row_blocks * col_blocks;
    let threads = if m * n * k >= PARALLEL_MIN_MACS {
        num_threads().min(blocks)
    } else {
        1
    };
    let out = OutC {
        ptr: c.as_mut_ptr(),
        m,
        n,
        ldc,
        accumulate,
    };
    // The blocks in chunks of `chunk` rows of blocks (about 256 KiB of A, to stay in the L2
    // cache), and within a chunk column by column (all its rows of blocks against a column
    // of B, then the next); split into `threads` contiguous runs of that order.
    let chunk = (CHUNK_BYTES / (a.kpad.max(TILE_K) * 2 * BLOCK)).clamp(1, row_blocks);
    let run = |t: usize| {
        let (first, last) = (blocks * t / threads, blocks * (t + 1) / threads);
        let each = |f: &mut dyn FnMut(usize, usize)| {
            for blk in first..last {
                let (c, within) = (blk / (chunk * col_blocks), blk % (chunk * col_blocks));
                let rows_here = chunk.min(row_blocks - c * chunk);
                f(c * chunk + within % rows_here, within / rows_here);
            }
        };
        run_blocks(backend, a, b, &out, each);
    };
    if threads <= 1 {
        run(0);
    } else {
        use rayon::prelude::*;
        (0..threads).into_par_iter().for_each(run);
    }
}

/// Where the blocks write: `C`'s pointer and shape, shared by the threads, each of which
/// writes only its own blocks.
struct OutC {
    ptr: *mut f32,
    m: usize,
    n: usize,
    ldc: usize,
    accumulate: bool,
}

// SAFETY: the threads of `gemm_bf16_rows` write disjoint blocks of `C` through the pointer,
// which outlives them (the borrow of `c` lasts the whole call).
unsafe impl Sync for OutC {}

impl OutC {
    /// Adds (or writes) the 32 x 32 block `acc` at block `(ib, jb)`, clipped to `(m, n)`.
    ///
    /// # Safety
    /// The block must be this thread's alone.
    unsafe fn put(&self, ib: usize, jb: usize, acc: &[[f32; BLOCK]; BLOCK]) {
        let (i0, j0) = (ib * BLOCK, jb * BLOCK);
        let cols = (self.n - j0).min(BLOCK);
        for (r, row) in acc.iter().enumerate().take((self.m - i0).min(BLOCK)) {
            // SAFETY: row `i0 + r < m` and columns `j0 .. j0 + cols <= n` lie within `c`
            // (checked against `needed(m, n, ldc)` by the caller).
            let dst = std::slice::from_raw_parts_mut(self.ptr.add((i0 + r) * self.ldc + j0), cols);
            if self.accumulate {
                for (d, s) in dst.iter_mut().zip(row) {
                    *d += s;
                }
            } else {
                dst.copy_from_slice(&row[..cols]);
            }
        }
    }
}

/// Runs the blocks `(ib, jb)` that `each` lists on `backend`, on this thread.
fn run_blocks(
    backend: Bf16Backend,
    a: &Bf16Rows,
    b: &AmxPacked,
    out: &OutC,
    each: impl Fn(&mut dyn FnMut(usize, usize)),
) {
    let mut acc = [[0f32; BLOCK]; BLOCK];
    match backend {
        #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
        Bf16Backend::Amx => {
            let _tiles = tiles::TileConfig::load();
            each(&mut |ib, jb| {
                match tile_args(a, b, ib, jb) {
                    // SAFETY: the tiles are configured (`_tiles`), the process has the tile
                    // data (`is_available` was asserted), and `args` points into `a` and `b`.
                    Some(args) => unsafe { tiles::block(&args, &mut acc) },
                    None => acc = [[0.0; BLOCK]; BLOCK],
                }
                // SAFETY: the threads' runs of blocks are disjoint.
                unsafe { out.put(ib, jb, &acc) };
            });
        }
        #[cfg(target_arch = "x86_64")]
        Bf16Backend::Avx512Bf16 => each(&mut |ib, jb| {
            // SAFETY: the CPU has AVX-512F and AVX-512 BF16 (`is_available` was asserted); the
            // block reads only within `a` and `b`, and the threads' runs of blocks of `C` are
            // disjoint.
            unsafe { block_avx512(a, b, ib, jb, out) };
        }),
        _ => each(&mut |ib, jb| {
            block_scalar(a, b, ib, jb, &mut acc);
            // SAFETY: the threads' runs of blocks are disjoint.
            unsafe { out.put(ib, jb, &acc) };
        }),
    }
}

/// The block `(ib, jb)` of `A · B` in plain Rust: per element, per pair of `k`, the product
/// of the even entries then that of the odd ones added to one `f32` sum.
fn block_scalar(
    a: &Bf16Rows,
    b: &AmxPacked,
    ib: usize,
    jb: usize,
    acc: &mut [[f32; BLOCK]; BLOCK],
) {
    use super::bf16::from_bf16;
    let (per_row, pairs) = (a.kpad / TILE_K, a.kpad / 2);
    // rows past `m` (padding) are skipped: `put` never reads them
    for (r, acc_row) in acc.iter_mut().enumerate().take(a.m - ib * BLOCK) {
        let row = &a.lines[(ib * BLOCK + r) * per_row..][..per_row];
        for (col, sum) in acc_row.iter_mut().enumerate() {
            let panel = &b.lines[(2 * jb + col / 16) * pairs..][..pairs];
            let c2 = 2 * (col % 16);
            let mut s = 0f32;
            for (p, line) in panel.iter().enumerate() {
                let (a0, a1) = (row[p / 16].0[2 * (p % 16)], row[p / 16].0[2 * (p % 16) + 1]);
                s += from_bf16(a0) * from_bf16(line.0[c2]);
                s += from_bf16(a1) * from_bf16(line.0[c2 + 1]);
            }
            *sum = s;
        }
    }
}

/// The block `(ib, jb)` of `C + A · B` (or `A · B`) with `vdpbf16ps`, its rows below `m`: 8
/// rows by two panels (16 registers of sums) at a time, one broadcast of a pair of `A` per row
/// and one load of `B` per panel per pair of `k`; the sums then added to `C` (as [`OutC::put`]
/// does, `C + sum`) straight from the registers, with masks at the column edge.
///
/// # Safety
/// The CPU must have AVX-512F and AVX-512 BF16; `ib` and `jb` must be blocks of `a` and `b`,
/// and the block of `C` this thread's alone.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn block_avx512(a: &Bf16Rows, b: &AmxPacked, ib: usize, jb: usize, out: &OutC) {
    use std::arch::x86_64::*;
    const MR: usize = 8;
    // the block's columns in each panel: masks for the column edge
    let j0 = jb * BLOCK;
    let panel_mask = |q: usize| -> __mmask16 {
        let cols = out.n.saturating_sub(j0 + 16 * q).min(16);
        ((1u32 << cols) - 1) as __mmask16
    };
    let masks = [panel_mask(0), panel_mask(1)];
    let pairs = a.kpad / 2;
    assert!(a.lines.len() >= (ib + 1) * BLOCK * a.kpad / TILE_K);
    assert!(b.lines.len() >= (2 * jb + 2) * pairs);
    let a_pairs = a.lines.as_ptr() as *const u32;
    let b0 = b.lines.as_ptr().add(2 * jb * pairs) as *const __m512i;
    let b1 = b0.add(pairs);
    // groups of rows wholly past `m` (padding) are skipped: `put` never reads them
    for r0 in (0..BLOCK)
        .step_by(MR)
        .take_while(|r0| ib * BLOCK + r0 < a.m)
    {
        let a0 = a_pairs.add((ib * BLOCK + r0) * pairs);
        let mut sums = [[_mm512_setzero_ps(); 2]; MR];
        for p in 0..pairs {
            let w0: __m512bh =
                std::mem::transmute::<__m512i, __m512bh>(_mm512_load_si512(b0.add(p)));
            let w1: __m512bh =
                std::mem::transmute::<__m512i, __m512bh>(_mm512_load_si512(b1.add(p)));
            for (r, s) in sums.iter_mut().enumerate() {
                let x: __m512bh = std::mem::transmute::<__m512i, __m512bh>(_mm512_set1_epi32(
                    *a0.add(r * pairs + p) as i32,
                ));
                s[0] = _mm512_dpbf16_ps(s[0], x, w0);
                s[1] = _mm512_dpbf16_ps(s[1], x, w1);
            }
        }
        for (r, s) in sums.iter().enumerate().take(out.m - (ib * BLOCK + r0)) {
            let row = out.ptr.add((ib * BLOCK + r0 + r) * out.ldc);
            for (q, &mask) in masks.iter().enumerate() {
                if mask == 0 {
                    continue;
                }
                // the masked lanes are columns below `n` of a row below `m`: inside `c`
                // (checked against `needed(m, n, ldc)` by the caller)
                let dst = row.add(j0 + 16 * q);
                let v = if out.accumulate {
                    _mm512_add_ps(_mm512_maskz_loadu_ps(mask, dst), s[q])
                } else {
                    s[q]
                };
                _mm512_mask_storeu_ps(dst, mask, v);
            }
        }
    }
}

/// Where the AMX kernel reads the block `(ib, jb)`: the first tile of `A`'s rows `ib·32 ..
/// +16` (`a0`) and `+16 .. +32` (`a1`), `a_stride` bytes per row, and the first tile of `B`'s
/// panels `2jb` (`b0`) and `2jb + 1` (`b1`), 64 bytes per line; each next tile of `k` is 64
/// bytes further in `A` and 1024 in `B`, and there are `tiles_k` of them. `a_tiles` is 1 when
/// the block's rows past the first 16 are all padding (a thread's 16 rows of a step): then `a1`
/// is not read and only the upper two accumulator tiles are computed and stored.
#[cfg_attr(
    not(all(target_arch = "x86_64", target_os = "linux")),
    allow(dead_code)
)]
#[derive(Clone, Copy)]
struct TileArgs {
    a0: *const u8,
    a1: *const u8,
    b0: *const u8,
    b1: *const u8,
    a_stride: usize,
    tiles_k: usize,
    a_tiles: usize,
}

/// The [`TileArgs`] of block `(ib, jb)` (`None` when `k = 0`: the block is zero), checked to
/// lie within `a` and `b`.
///
/// # Panics
/// If `a` and `b` differ in `k` or the block is outside them.
#[cfg_attr(
    not(all(target_arch = "x86_64", target_os = "linux")),
    allow(dead_code)
)]
fn tile_args(a: &Bf16Rows, b: &AmxPacked, ib: usize, jb: usize) -> Option<TileArgs> {
    let kpad = a.kpad;
    assert_eq!(kpad, b.kpad);
    let tiles_k = kpad / TILE_K;
    if tiles_k == 0 {
        return None;
    }
    // bytes per row of A; every tile read: A rows up to (ib + 1)·32, B lines of panel
    // 2jb + 1 up to its end
    let a_stride = kpad * 2;
    assert!(a.lines.len() * 64 >= (ib + 1) * BLOCK * a_stride);
    assert!(b.lines.len() >= (2 * jb + 2) * kpad / 2);
    let a0 = a.lines[ib * BLOCK * kpad / TILE_K..].as_ptr() as *const u8;
    let b0 = b.lines[2 * jb * kpad / 2..].as_ptr() as *const u8;
    Some(TileArgs {
        a0,
        a1: a0.wrapping_add(16 * a_stride),
        b0,
        b1: b0.wrapping_add(kpad / 2 * 64),
        a_stride,
        tiles_k,
        a_tiles: if a.m - ib * BLOCK <= 16 { 1 } else { 2 },
    })
}

/// The AMX tiles: their configuration and the block kernel, in inline assembly (AMX has no
/// stable intrinsics in Rust).
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
mod tiles {
    use super::{TileArgs, BLOCK};

    /// The 64-byte operand of `ldtilecfg` (palette 1): tiles 0-3 hold `C` (16 rows of 16
    /// `f32`), 4-5 `A` (16 rows of 32 bf16), 6-7 `B` (16 pairs of `k` by 16 columns); all are
    /// 16 rows of 64 bytes.
    #[repr(C, align(64))]
    pub(super) struct TileConfig {
        palette: u8,
        start_row: u8,
        reserved: [u8; 14],
        colsb: [u16; 16],
        rows: [u8; 16],
    }

    impl TileConfig {
        /// Configures this thread's tiles; they are released when the guard drops.
        pub(super) fn load() -> TileGuard {
            let mut cfg = TileConfig {
                palette: 1,
                start_row: 0,
                reserved: [0; 14],
                colsb: [0; 16],
                rows: [0; 16],
            };
            for t in 0..8 {
                cfg.colsb[t] = 64;
                cfg.rows[t] = 16;
            }
            // SAFETY: only called once `amx_status` has succeeded (the callers assert
            // `Bf16Backend::Amx.is_available()`), so the CPU has AMX and the process the tile
            // data; `cfg` is a valid palette-1 configuration of 64 bytes, aligned; ldtilecfg
            // reads it and writes only the tile configuration, which no compiled code uses.
            unsafe {
                std::arch::asm!("ldtilecfg [{}]", in(reg) &cfg, options(nostack, readonly));
            }
            TileGuard
        }
    }

    /// Releases the tiles (`tilerelease`) when dropped, so the thread's tile state returns to
    /// its initial, cheap to save, state.
    pub(super) struct TileGuard;

    impl Drop for TileGuard {
        fn drop(&mut self) {
            // SAFETY: a guard exists only after a successful `ldtilecfg` on this thread;
            // tilerelease touches no memory and no register the compiler uses.
            unsafe { std::arch::asm!("tilerelease", options(nostack, nomem)) };
        }
    }

    /// The block of `A · B` (32 x 32) that `args` points at, into `acc`: tiles 0-3 zeroed, then
    /// for each tile of `k` two tiles of `A` and two of `B` loaded and multiplied into the four
    /// sums, which are then stored. `tests::tile_model` is this function in plain Rust.
    ///
    /// # Safety
    /// The tiles must be configured by [`TileConfig::load`] on this thread, and `args` must
    /// come from [`tile_args`](super::tile_args) on operands that are still alive.
    pub(super) unsafe fn block(args: &TileArgs, acc: &mut [[f32; BLOCK]; BLOCK]) {
        let TileArgs {
            a0,
            a1,
            b0,
            b1,
            a_stride,
            tiles_k,
            a_tiles,
        } = *args;
        if a_tiles == 1 {
            // SAFETY: as below, without `a1` and the lower two tiles: the stores write 16 rows
            // of 64 bytes at `acc` + 0 and + 64, within its 4096 bytes.
            std::arch::asm!(
                "tilezero tmm0",
                "tilezero tmm1",
                "2:",
                "tileloadd tmm4, [{a0} + {sa}*1]",
                "tileloadd tmm6, [{b0} + {sb}*1]",
                "tdpbf16ps tmm0, tmm4, tmm6",
                "tileloadd tmm7, [{b1} + {sb}*1]",
                "tdpbf16ps tmm1, tmm4, tmm7",
                "add {a0}, 64",
                "add {b0}, 1024",
                "add {b1}, 1024",
                "dec {n}",
                "jnz 2b",
                "tilestored [{c} + {sc}*1], tmm0",
                "tilestored [{c} + {sc}*1 + 64], tmm1",
                a0 = inout(reg) a0 => _,
                b0 = inout(reg) b0 => _,
                b1 = inout(reg) b1 => _,
                n = inout(reg) tiles_k => _,
                sa = in(reg) a_stride,
                sb = in(reg) 64usize,
                c = in(reg) acc.as_mut_ptr(),
                sc = in(reg) BLOCK * 4,
                options(nostack),
            );
            return;
        }
        // SAFETY: the loads read, per tile of k, 16 rows of 64 bytes at `a0`/`a1` (stride
        // `a_stride`) and 16 lines at `b0`/`b1` (stride 64), all within the buffers (asserted
        // in `tile_args`); the stores write 16 rows of 64 bytes at `acc` (128-byte rows) + 0,
        // + 64, + 2048 and + 2112, all within its 4096 bytes. The pointer registers are
        // modified, so they are declared inout and discarded.
        std::arch::asm!(
            "tilezero tmm0",
            "tilezero tmm1",
            "tilezero tmm2",
            "tilezero tmm3",
            "2:",
            "tileloadd tmm4, [{a0} + {sa}*1]",
            "tileloadd tmm6, [{b0} + {sb}*1]",
            "tdpbf16ps tmm0, tmm4, tmm6",
            "tileloadd tmm7, [{b1} + {sb}*1]",
            "tdpbf16ps tmm1, tmm4, tmm7",
            "tileloadd tmm5, [{a1} + {sa}*1]",
            "tdpbf16ps tmm2, tmm5, tmm6",
            "tdpbf16ps tmm3, tmm5, tmm7",
            "add {a0}, 64",
            "add {a1}, 64",
            "add {b0}, 1024",
            "add {b1}, 1024",
            "dec {n}",
            "jnz 2b",
            "tilestored [{c} + {sc}*1], tmm0",
            "tilestored [{c} + {sc}*1 + 64], tmm1",
            "tilestored [{c} + {sc}*1 + 2048], tmm2",
            "tilestored [{c} + {sc}*1 + 2112], tmm3",
            a0 = inout(reg) a0 => _,
            a1 = inout(reg) a1 => _,
            b0 = inout(reg) b0 => _,
            b1 = inout(reg) b1 => _,
            n = inout(reg) tiles_k => _,
            sa = in(reg) a_stride,
            sb = in(reg) 64usize,
            c = in(reg) acc.as_mut_ptr(),
            sc = in(reg) BLOCK * 4,
            options(nostack),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::bf16::from_bf16;
    use super::super::testutil::{bits, rand_vec};
    use super::super::with_threads;
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// The backends this machine runs; says which it skips and why.
    fn backends() -> Vec<Bf16Backend> {
        if let Err(why) = amx_status() {
            eprintln!("SKIPPED: the AMX backend ({why})");
        }
        if !Bf16Backend::Avx512Bf16.is_available() {
            eprintln!("SKIPPED: the AVX-512 BF16 backend (the CPU has no AVX-512 BF16)");
        }
        [
            Bf16Backend::Amx,
            Bf16Backend::Avx512Bf16,
            Bf16Backend::Scalar,
        ]
        .into_iter()
        .filter(|b| b.is_available())
        .collect()
    }

    fn round(x: f32) -> f64 {
        from_bf16(to_bf16(x)) as f64
    }

    /// `fast` against `c0 + A·B` of the bf16-rounded inputs in `f64`: each element within the
    /// bound of an `f32` sum of `k + 1` terms in any order, `(k + 1)·2⁻²⁴·Σ|terms|` (the
    /// products themselves are exact), and the columns past `n` untouched.
    #[allow(clippy::too_many_arguments)]
    fn check_against_f64(
        fast: &[f32],
        c0: &[f32],
        a: &[f32],
        lda: usize,
        b: &[f32],
        ldb: usize,
        tb: Transpose,
        (m, n, k, ldc): (usize, usize, usize, usize),
        accumulate: bool,
        what: &str,
    ) {
        for i in 0..m {
            for j in 0..ldc {
                let got = fast[i * ldc + j];
                if j >= n {
                    assert_eq!(got.to_bits(), c0[i * ldc + j].to_bits(), "{what}: padding");
                    continue;
                }
                let (mut sum, mut mag) = (0f64, 0f64);
                if accumulate {
                    sum = c0[i * ldc + j] as f64;
                    mag = sum.abs();
                }
                for kk in 0..k {
                    let bv = match tb {
                        Transpose::No => b[kk * ldb + j],
                        Transpose::Yes => b[j * ldb + kk],
                    };
                    let t = round(a[i * lda + kk]) * round(bv);
                    sum += t;
                    mag += t.abs();
                }
                let bound = (k + 1) as f64 * 2f64.powi(-24) * mag + 1e-30;
                assert!(
                    (got as f64 - sum).abs() <= bound,
                    "{what} ({m},{n},{k}) [{i},{j}]: {got} vs {sum}, bound {bound}"
                );
            }
        }
    }

    #[test]
    fn packing_places_every_value() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let (k, n) = (37, 45);
        let w = rand_vec(&mut rng, k * n);
        let p = AmxPacked::new(&w, n, k, n, Transpose::No);
        let pt = AmxPacked::new(&w, k, k, n, Transpose::Yes);
        for kk in 0..k {
            for j in 0..n {
                assert_eq!(p.get(kk, j), round(w[kk * n + j]) as f32);
                assert_eq!(pt.get(kk, j), round(w[j * k + kk]) as f32);
            }
        }
        // padding is zero
        assert_eq!((p.kpad, p.panels), (64, 4));
        assert!(p.lines[3 * 32..].iter().all(|l| l.0 == [0; 32]));
        // large enough to be packed on several threads: the same values on any number
        let (k, n) = (301, 1000);
        let w = rand_vec(&mut rng, k * n);
        for tb in [Transpose::No, Transpose::Yes] {
            let ld = if tb == Transpose::No { n } else { k };
            let one = with_threads(1, || AmxPacked::new(&w, ld, k, n, tb));
            for threads in [2, 3] {
                let many = with_threads(threads, || AmxPacked::new(&w, ld, k, n, tb));
                assert!(one.lines.iter().zip(&many.lines).all(|(x, y)| x.0 == y.0));
            }
            for kk in 0..k {
                for j in 0..n {
                    let v = if tb == Transpose::No {
                        w[kk * n + j]
                    } else {
                        w[j * k + kk]
                    };
                    assert_eq!(one.get(kk, j), round(v) as f32);
                }
            }
        }
    }

    #[test]
    fn rows_round_like_to_bf16() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let (m, k, lda) = (5, 70, 75);
        let mut a = rand_vec(&mut rng, m * lda);
        a[3] = 1.0 + 2f32.powi(-8); // a tie: to even (1.0)
        a[4] = 1.0 + 3.0 * 2f32.powi(-8); // a tie: to even (1 + 2^-6)
        let rows = Bf16Rows::new(&a, lda, m, k);
        assert_eq!(rows.lines.len(), 32 * 3);
        for i in 0..32 {
            for kk in 0..96 {
                let got = rows.lines[i * 3 + kk / 32].0[kk % 32];
                let want = if i < m && kk < k {
                    to_bf16(a[i * lda + kk])
                } else {
                    0
                };
                assert_eq!(got, want, "[{i},{kk}]");
            }
        }
    }

    #[test]
    fn matches_f64_reference_on_many_shapes() {
        let backends = backends();
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        // (m, n, k): edges below, over and at the tile sizes, and the LSTM's shapes: the step
        // product (B = 32, n = 4H, k = H) and a projection (T·B rows)
        let shapes = [
            (1, 1, 1),
            (2, 3, 5),
            (16, 16, 32),
            (15, 17, 31),
            (31, 33, 33),
            (32, 32, 32),
            (33, 47, 65),
            (7, 100, 257),
            (64, 64, 64),
            (32, 512, 128),
            (32, 1024, 256),
            (32, 200, 50),
            (100, 96, 7),
            (257, 130, 96),
        ];
        for &(m, n, k) in &shapes {
            for tb in [Transpose::No, Transpose::Yes] {
                for accumulate in [false, true] {
                    let (lda, ldc) = (k + 3, n + 2);
                    let ldb = match tb {
                        Transpose::No => n + 1,
                        Transpose::Yes => k + 1,
                    };
                    let a = rand_vec(&mut rng, m * lda);
                    let b = rand_vec(&mut rng, ldb * (n.max(k) + 1));
                    let c0 = rand_vec(&mut rng, m * ldc);
                    let packed = AmxPacked::new(&b, ldb, k, n, tb);
                    let mut rows = Bf16Rows::new(&a, lda, m, k);
                    // the same A read transposed from a stored (k, m): the same bf16 rows
                    let a_t: Vec<f32> = (0..k * (m + 1))
                        .map(|q| {
                            if q % (m + 1) < m {
                                a[(q % (m + 1)) * lda + q / (m + 1)]
                            } else {
                                9.0
                            }
                        })
                        .collect();
                    let mut rows_t = Bf16Rows::default();
                    rows_t.fill_op(&a_t, m + 1, Transpose::Yes, m, k);
                    assert!(rows
                        .lines
                        .iter()
                        .zip(&rows_t.lines)
                        .all(|(x, y)| x.0 == y.0));
                    assert_eq!(rows.lines.len(), rows_t.lines.len());
                    rows.fill(&a, lda, m, k); // refilled in place: the same
                    for &backend in &backends {
                        let mut c = c0.clone();
                        gemm_bf16_rows(backend, &rows, &packed, &mut c, ldc, accumulate);
                        let what = format!("{backend:?} {tb:?} accumulate={accumulate}");
                        let shape = (m, n, k, ldc);
                        check_against_f64(&c, &c0, &a, lda, &b, ldb, tb, shape, accumulate, &what);
                    }
                    let mut c = c0.clone();
                    gemm_bf16(m, &a, lda, &packed, &mut c, ldc, accumulate);
                    let shape = (m, n, k, ldc);
                    check_against_f64(
                        &c,
                        &c0,
                        &a,
                        lda,
                        &b,
                        ldb,
                        tb,
                        shape,
                        accumulate,
                        "gemm_bf16",
                    );
                }
            }
        }
    }

    /// The AMX block kernel (`tiles::block`) in plain Rust, from the same [`TileArgs`]: its
    /// loads, `tdpbf16ps` as Intel's pseudo-code writes it (per row, per pair of `k`, the even
    /// product then the odd one added to the sum) and its stores. It checks the addressing and
    /// the layout on any CPU; the assembly itself runs only where there is AMX.
    unsafe fn tile_model(args: &TileArgs, acc: &mut [[f32; BLOCK]; BLOCK]) {
        let load = |base: *const u8, stride: usize| -> [[u16; 32]; 16] {
            let mut tile = [[0u16; 32]; 16];
            for (r, row) in tile.iter_mut().enumerate() {
                for (e, v) in row.iter_mut().enumerate() {
                    *v = (base.add(r * stride + 2 * e) as *const u16).read_unaligned();
                }
            }
            tile
        };
        let mut sums = [[[0f32; 16]; 16]; 4];
        for t in 0..args.tiles_k {
            let a1 = if args.a_tiles == 2 { args.a1 } else { args.a0 }; // a1 unread
            let a_tiles = [
                load(args.a0.add(64 * t), args.a_stride),
                load(a1.add(64 * t), args.a_stride),
            ];
            let b_tiles = [
                load(args.b0.add(1024 * t), 64),
                load(args.b1.add(1024 * t), 64),
            ];
            for (q, sum) in sums.iter_mut().enumerate().take(2 * args.a_tiles) {
                let (at, bt) = (&a_tiles[q / 2], &b_tiles[q % 2]);
                for (m, row) in sum.iter_mut().enumerate() {
                    for p in 0..16 {
                        for (n, s) in row.iter_mut().enumerate() {
                            *s += from_bf16(at[m][2 * p]) * from_bf16(bt[p][2 * n]);
                            *s += from_bf16(at[m][2 * p + 1]) * from_bf16(bt[p][2 * n + 1]);
                        }
                    }
                }
            }
        }
        // tilestored at acc + 0, + 64, + 2048, + 2112 bytes, rows of 128 bytes
        for (q, sum) in sums.iter().enumerate().take(2 * args.a_tiles) {
            for (m, row) in sum.iter().enumerate() {
                acc[16 * (q / 2) + m][16 * (q % 2)..16 * (q % 2) + 16].copy_from_slice(row);
            }
        }
    }

    #[test]
    fn tile_addressing_model_equals_scalar_backend() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        // blocks with two tiles of A (32 rows, or 31) and with one (1, 16, and 70 = 2·32 + 6)
        for &(m, n, k) in &[
            (1, 1, 1),
            (31, 33, 33),
            (32, 512, 128),
            (70, 100, 257),
            (16, 64, 64),
            (64, 64, 0),
        ] {
            let a = rand_vec(&mut rng, m * k);
            let w = rand_vec(&mut rng, n * k);
            let c0 = rand_vec(&mut rng, m * n);
            let packed = AmxPacked::new(&w, k, k, n, Transpose::Yes);
            let rows = Bf16Rows::new(&a, k, m, k);
            let mut want = c0.clone();
            gemm_bf16_rows(Bf16Backend::Scalar, &rows, &packed, &mut want, n, true);
            let mut got = c0.clone();
            let out = OutC {
                ptr: got.as_mut_ptr(),
                m,
                n,
                ldc: n,
                accumulate: true,
            };
            let mut acc = [[f32::NAN; BLOCK]; BLOCK];
            for jb in 0..packed.panels / 2 {
                for ib in 0..m.div_ceil(BLOCK) {
                    match tile_args(&rows, &packed, ib, jb) {
                        // SAFETY: the arguments point into `rows` and `packed`, alive here.
                        Some(args) => unsafe { tile_model(&args, &mut acc) },
                        None => acc = [[0.0; BLOCK]; BLOCK],
                    }
                    // SAFETY: one thread, `got` outlives `out`.
                    unsafe { out.put(ib, jb, &acc) };
                }
            }
            // the same sums in the same order as the scalar backend: bit for bit
            assert_eq!(bits(&got), bits(&want), "({m},{n},{k})");
        }
    }

    #[test]
    fn bit_identical_across_runs_and_thread_counts() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        // large enough to be threaded: (T·B, 4H, I) and (B, 4H, H)
        for &(m, n, k) in &[(2048, 512, 128), (32, 2048, 512), (96, 1056, 300)] {
            let a = rand_vec(&mut rng, m * k);
            let w = rand_vec(&mut rng, n * k);
            let c0 = rand_vec(&mut rng, m * n);
            let packed = AmxPacked::new(&w, k, k, n, Transpose::Yes);
            let rows = Bf16Rows::new(&a, k, m, k);
            for backend in backends() {
                let run = |threads: usize| {
                    let mut c = c0.clone();
                    with_threads(threads, || {
                        gemm_bf16_rows(backend, &rows, &packed, &mut c, n, true)
                    });
                    bits(&c)
                };
                let one = run(1);
                assert_eq!(one, run(1), "{backend:?} ({m},{n},{k}): two runs");
                assert_eq!(one, run(2), "{backend:?} ({m},{n},{k}): 1 and 2 threads");
                assert_eq!(one, run(3), "{backend:?} ({m},{n},{k}): 1 and 3 threads");
            }
        }
    }

    #[test]
    fn gemm_bf16_inside_parallel_tasks() {
        // products big enough to be threaded, called from rayon tasks, equal to one called
        // alone. A thread waiting in one may run another task on the same thread, which is why
        // `gemm_bf16` takes its scratch out rather than borrowing it; this test nests them but
        // cannot force that interleaving (it did not show up in three runs with the borrow)
        use rayon::prelude::*;
        let mut rng = ChaCha8Rng::seed_from_u64(6);
        let (m, n, k) = (32, 1024, 256);
        let a = rand_vec(&mut rng, m * k);
        let w = rand_vec(&mut rng, n * k);
        let packed = AmxPacked::new(&w, k, k, n, Transpose::Yes);
        let mut want = vec![0.0; m * n];
        gemm_bf16(m, &a, k, &packed, &mut want, n, false);
        let outs: Vec<Vec<u32>> = (0..64)
            .into_par_iter()
            .map(|_| {
                let mut c = vec![0.0; m * n];
                gemm_bf16(m, &a, k, &packed, &mut c, n, false);
                bits(&c)
            })
            .collect();
        assert!(outs.iter().all(|o| *o == bits(&want)));
    }

    #[test]
    fn amx_status_agrees_with_cpuid() {
        match amx_status() {
            Ok(()) => assert!(Bf16Backend::Amx.is_available()),
            Err(why) => {
                eprintln!("AMX unavailable: {why}");
                assert!(!Bf16Backend::Amx.is_available());
                assert_ne!(Bf16Backend::best(), Bf16Backend::Amx);
            }
        }
        // asked twice, answered the same
        assert_eq!(amx_status(), amx_status());
    }

    #[test]
    #[should_panic(expected = "k = 3")]
    fn refuses_mismatched_k() {
        let packed = AmxPacked::new(&[0.0; 8], 2, 4, 2, Transpose::No);
        let rows = Bf16Rows::new(&[0.0; 6], 3, 2, 3);
        let mut c = [0.0; 4];
        gemm_bf16_rows(Bf16Backend::Scalar, &rows, &packed, &mut c, 2, false);
    }
}

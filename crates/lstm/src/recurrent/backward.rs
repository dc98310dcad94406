//! The backward pass (backpropagation through time): the time loop in reverse, with the weight
//! and input gradients as products over blocks of consecutive steps while they are in cache.

use super::*;

thread_local! {
    static TRANSPOSED_MIN: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
}

/// Runs `f` with another threshold (in gate rows, `G·H`) for the backward pass's `dgᵀ` on this
/// thread (0 = always, `usize::MAX` = never): for tests and measurements (the results agree up
/// to the order of the weight gradients' sums).
#[doc(hidden)]
pub fn with_transposed_min_gates<R>(n: usize, f: impl FnOnce() -> R) -> R {
    let old = TRANSPOSED_MIN.with(|c| c.replace(Some(n)));
    let r = f();
    TRANSPOSED_MIN.with(|c| c.set(old));
    r
}

impl Recurrent {
    /// Backpropagation through time for the last [`Recurrent::forward`] in `cache`.
    ///
    /// - `d_output`: gradient w.r.t. the output, same layout as the output (the padded
    ///   positions of a variable-length batch are not read; the real ones only with
    ///   [`RecurrentCache::set_compact_output`]).
    /// - `d_final`: gradient w.r.t. the final states (`None` = zero; `c` may be empty).
    ///
    /// Parameter gradients are **added** into `grads` (same layout as `params`); the input and
    /// initial-state gradients are left in `cache` ([`RecurrentCache::d_input`],
    /// [`RecurrentCache::d_initial_state`]).
    ///
    /// # Errors
    /// [`Error::Config`] without a preceding forward, [`Error::Shape`] on a size mismatch.
    pub fn backward(
        &self,
        params: &[f32],
        grads: &mut [f32],
        cache: &mut RecurrentCache,
        d_output: &[f32],
        d_final: Option<&RecurrentState>,
    ) -> Result<()> {
        let cfg = &self.cfg;
        if !cache.has_forward {
            return Err(Error::Config("backward called before forward".into()));
        }
        if cache
            .owner
            .as_ref()
            .is_none_or(|(r, c)| *r != (self.start..self.end) || c != cfg)
        {
            return Err(Error::Config(
                "the cache holds the forward pass of another stack: run backward on the stack \
                 whose forward filled it"
                    .into(),
            ));
        }
        if params.len() < self.end {
            return Err(Error::shape(
                "parameters",
                "the registered size",
                params.len(),
            ));
        }
        let (tn, b) = (cache.t, cache.b);
        let (h, p, dn, ln) = (
            cfg.hidden_size,
            cfg.hidden_out(),
            cfg.directions(),
            cfg.num_layers,
        );
        let w = dn * p;
        let n_out: usize = if cache.compact {
            cache.chunks.iter().map(|c| c.src.len()).sum()
        } else {
            tn * b
        };
        if d_output.len() != n_out * w {
            return Err(Error::shape("d_output", n_out * w, d_output.len()));
        }
        if grads.len() != params.len() {
            return Err(Error::shape("grads", params.len(), grads.len()));
        }
        if let Some(s) = d_final {
            if s.h.len() != dn * ln * b * p {
                return Err(Error::shape("d h_n", dn * ln * b * p, s.h.len()));
            }
            if !s.c.is_empty() && cfg.mode != Mode::Lstm {
                return Err(Error::Config(format!(
                    "a {:?} stack has no cell state: leave the final state gradient's c empty",
                    cfg.mode
                )));
            }
            if !s.c.is_empty() && s.c.len() != dn * ln * b * h {
                return Err(Error::shape("d c_n", dn * ln * b * h, s.c.len()));
            }
        }
        let used_tokens = cache.used_tokens;
        let input_grad = !used_tokens && !cache.skip_input_grad;
        let grad_range = self.start..self.end;
        // (by default only with AVX-512, whose transposes are what makes it pay)
        #[cfg(target_arch = "x86_64")]
        let avx512 = std::arch::is_x86_feature_detected!("avx512f");
        #[cfg(not(target_arch = "x86_64"))]
        let avx512 = false;
        let transposed_min = TRANSPOSED_MIN.with(|c| c.get()).unwrap_or(if avx512 {
            TRANSPOSED_MIN_GATES
        } else {
            usize::MAX
        });
        for chunk in &mut cache.chunks {
            chunk.grad.transposed_min = transposed_min;
        }
        // the step products' weights, packed once for all chunks (see `forward`)
        let shared = cache.chunks.len() > 1 && !cache.packed_fwd.is_empty();
        let bf16 = self.precision == Precision::Bf16;
        self.pack_step_weights(
            params,
            shared && !bf16,
            Transpose::No,
            &mut cache.packed_bwd,
        );
        self.pack_bf16(
            params,
            bf16,
            Transpose::No,
            used_tokens,
            &mut cache.bf16_bwd,
        );
        let packed = &cache.packed_bwd;
        let bf = &cache.bf16_bwd;
        let run = |chunk: &mut ChunkCache, to: Option<&mut [f32]>| {
            self.backward_chunk(
                params,
                grad_range.clone(),
                tn,
                b,
                used_tokens,
                input_grad,
                d_output,
                d_final,
                packed,
                bf,
                chunk,
                to,
            );
        };
        if cache.chunks.len() == 1 {
            // one chunk (one sequence, or a team of threads): its gradients go straight to
            // the caller's buffer
            run(&mut cache.chunks[0], Some(grads));
        } else {
            // the first chunk adds its gradients straight into the caller's buffer, the others
            // into their own, added after it in a fixed order (every element adds the chunks
            // in turn; the blocks only spread the work over the threads)
            let (first, rest) = cache.chunks.split_at_mut(1);
            rayon::join(
                || with_threads(1, || run(&mut first[0], Some(&mut *grads))),
                || {
                    rest.par_iter_mut()
                        .for_each(|chunk| with_threads(1, || run(chunk, None)))
                },
            );
            let chunks = &cache.chunks[1..];
            let start = grad_range.start;
            grads[grad_range.clone()]
                .par_chunks_mut(PAR_BLOCK)
                .enumerate()
                .for_each(|(i, d)| {
                    let s = start + i * PAR_BLOCK;
                    for c in chunks {
                        add_assign(d, &c.grads[s..s + d.len()]);
                    }
                });
        }
        // input and initial-state gradients in the user's layout
        let i = cfg.input_size;
        zeroed(&mut cache.d_input, if input_grad { tn * b * i } else { 0 });
        zeroed(&mut cache.d_state.h, dn * ln * b * p);
        zeroed(
            &mut cache.d_state.c,
            if cfg.mode == Mode::Lstm {
                dn * ln * b * h
            } else {
                0
            },
        );
        for chunk in &cache.chunks {
            let n = chunk.segs.len();
            if input_grad {
                for (j, &r) in chunk.src.iter().enumerate() {
                    cache.d_input[r * i..(r + 1) * i]
                        .copy_from_slice(&chunk.d_x[j * i..(j + 1) * i]);
                }
            }
            for k in 0..dn * ln {
                for (s, seg) in chunk.segs.iter().enumerate() {
                    let u = seg.u;
                    let dst = (k * b + u) * p;
                    let src = (k * n + s) * p;
                    cache.d_state.h[dst..dst + p].copy_from_slice(&chunk.d_state.h[src..src + p]);
                    if cfg.mode == Mode::Lstm {
                        let (dst, src) = ((k * b + u) * h, (k * n + s) * h);
                        cache.d_state.c[dst..dst + h]
                            .copy_from_slice(&chunk.d_state.c[src..src + h]);
                    }
                }
            }
        }
        Ok(())
    }

    /// Backpropagation through the whole stack for one chunk of sequences; parameter
    /// gradients are added to `to` when given (the whole parameter buffer), else written to
    /// `cache.grads` (indexed like it, from `grad_range.start`).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn backward_chunk(
        &self,
        params: &[f32],
        grad_range: Range<usize>,
        tn: usize,
        bu: usize,
        used_tokens: bool,
        input_grad: bool,
        d_output: &[f32],
        d_final: Option<&RecurrentState>,
        packed: &[Vec<f32>],
        bf: &[Bf16Weights],
        cache: &mut ChunkCache,
        to: Option<&mut [f32]>,
    ) {
        let cfg = &self.cfg;
        let (h, p, dn, ln) = (
            cfg.hidden_size,
            cfg.hidden_out(),
            cfg.directions(),
            cfg.num_layers,
        );
        let w = dn * p;
        let (b, n) = (cache.lanes.len(), cache.segs.len());
        // full-size gradient buffer so the parameter ranges index it directly; only the
        // stack's range is used and summed
        let grads: &mut [f32] = match to {
            Some(g) => g,
            None => {
                zeroed(&mut cache.grads, grad_range.end);
                &mut cache.grads
            }
        };
        // gradient w.r.t. the top layer's output, time-major, chunk order: `d_output` as it is
        // when every packed row is the same row of the user's layout (the units split without
        // variable lengths), else read through the rows' map (batch split) or gathered (units
        // split)
        let total = cache.off[tn];
        let rows = out_rows(&cache.src, &cache.dst);
        let top_in_place = rows.iter().enumerate().all(|(j, &r)| j == r);
        if top_in_place || !cache.team {
            cache.d_cur.clear();
        } else {
            sized(&mut cache.d_cur, total * w);
            for (j, &r) in rows.iter().enumerate() {
                cache.d_cur[j * w..(j + 1) * w].copy_from_slice(&d_output[r * w..(r + 1) * w]);
            }
        }
        let hc = if cfg.mode == Mode::Lstm { h } else { 0 };
        sized(&mut cache.d_state.h, dn * ln * n * p);
        sized(&mut cache.d_state.c, dn * ln * n * hc);
        for l in (0..ln).rev() {
            let in_size = if l == 0 { cfg.input_size } else { w };
            let want_dx = l > 0 || input_grad;
            zeroed(&mut cache.d_x, if want_dx { total * in_size } else { 0 });
            let input_dropped = l > 0 && !cache.drop_mask[l - 1].is_empty();
            let x: LayerInput<'_> = if l == 0 {
                if used_tokens {
                    LayerInput::Tokens(&cache.tokens)
                } else {
                    LayerInput::Dense(&cache.x0, cfg.input_size)
                }
            } else if input_dropped {
                LayerInput::Dense(&cache.dropped[l - 1], w)
            } else {
                LayerInput::Dense(&cache.layer_out[l - 1], w)
            };
            for d in 0..dn {
                let k = l * dn + d;
                let gr = &mut cache.grad;
                zeroed(&mut gr.dh_state, b * p);
                zeroed(&mut gr.dc_state, b * hc);
                // each lane starts from the gradient w.r.t. its last sequence's final state
                // (the first its loop meets), and leaves the one w.r.t. each sequence's
                // initial state
                let (d_h, d_c) = (&mut cache.d_state.h, &mut cache.d_state.c);
                let mut states = [
                    SeqStates {
                        w: p,
                        start: d_final.map(|s| &s.h[k * bu * p..(k + 1) * bu * p]),
                        fin: &mut d_h[k * n * p..(k + 1) * n * p],
                    },
                    SeqStates {
                        w: hc,
                        start: d_final
                            .filter(|s| !s.c.is_empty())
                            .map(|s| &s.c[k * bu * hc..(k + 1) * bu * hc]),
                        fin: &mut d_c[k * n * hc..(k + 1) * n * hc],
                    },
                ];
                // the loop runs forward in time for the reverse direction
                let in_time = d == 1;
                states[0].begin(&cache.segs, &cache.lanes, in_time, &mut gr.dh_state);
                states[1].begin(&cache.segs, &cache.lanes, in_time, &mut gr.dc_state);
                let dx = if want_dx {
                    Some(&mut cache.d_x[..])
                } else {
                    None
                };
                let (d_out, d_rows) = match (l + 1 == ln, top_in_place, cache.team) {
                    (true, true, _) => (&d_output[..total * w], None),
                    (true, false, false) => (d_output, Some(rows)),
                    _ => (&cache.d_cur[..], None),
                };
                if cache.team {
                    self.backward_direction_team(
                        params,
                        grads,
                        &self.dirs[k],
                        x,
                        tn,
                        b,
                        &cache.off,
                        d,
                        d_out,
                        &cache.dirs[k],
                        gr,
                        dx,
                    );
                } else {
                    let lanes = Lanes {
                        segs: &cache.segs,
                        handovers: &cache.handovers[1 - d],
                    };
                    self.backward_direction(
                        params,
                        grads,
                        &self.dirs[k],
                        x,
                        tn,
                        b,
                        &cache.off,
                        d,
                        d_out,
                        d_rows,
                        &cache.dirs[k],
                        gr,
                        dx,
                        lanes,
                        &mut states,
                        packed.get(k).map(|v| &v[..]),
                        bf.get(k),
                    );
                }
                states[0].end(&cache.lanes, in_time, &gr.dh_state);
                states[1].end(&cache.lanes, in_time, &gr.dc_state);
            }
            if l > 0 {
                // gradient w.r.t. the layer below's output, through its dropout
                std::mem::swap(&mut cache.d_cur, &mut cache.d_x);
                if input_dropped {
                    for (g, m) in cache.d_cur.iter_mut().zip(&cache.drop_mask[l - 1]) {
                        *g *= m;
                    }
                }
            }
        }
    }

    /// Backward of one direction of one layer: the time loop holds the recurrent product, and
    /// every [`WEIGHT_ROWS`] rows the weight and input gradients of those rows (see
    /// `weight_grads`). Packed row `r`'s output gradient is row `d_rows[r]` of `d_out` (row `r`
    /// without a map).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn backward_direction(
        &self,
        params: &[f32],
        grads: &mut [f32],
        dp: &DirParams,
        x: LayerInput<'_>,
        tn: usize,
        b: usize,
        off: &[usize],
        d: usize,
        d_out: &[f32],
        d_rows: Option<&[usize]>,
        dc: &DirCache,
        gr: &mut DirGrad,
        dx: Option<&mut [f32]>,
        lanes: Lanes<'_>,
        states: &mut [SeqStates<'_>; 2],
        shared_w_hh_p: Option<&[f32]>,
        bf: Option<&Bf16Weights>,
    ) {
        let cfg = &self.cfg;
        let (g, h, p, dn) = (
            cfg.mode.gates(),
            cfg.hidden_size,
            cfg.hidden_out(),
            cfg.directions(),
        );
        let gh = g * h;
        let rows = off[tn];
        let w = dn * p;
        let gru_mode = cfg.mode == Mode::Gru;
        sized(&mut gr.dg, rows * gh);
        sized(&mut gr.dgh, if gru_mode { rows * gh } else { 0 });
        let masked = !dc.rec_mask.is_empty();
        // the weight (and dense input) gradients are computed for blocks of consecutive steps
        // of WEIGHT_ROWS rows or more, each as soon as its steps are done, while their rows
        // are still in cache (one block of all rows with recurrent dropout, whose masked inputs
        // are gathered at the end): the blocks' row ranges, in the loop's order
        gr.blocks.clear();
        let mut blk = (usize::MAX, 0);
        for s in 0..tn {
            // reverse of the forward's processing order
            let t = if d == 0 { tn - 1 - s } else { s };
            if off[t + 1] == off[t] {
                continue;
            }
            if !masked && blk.1 > blk.0 && blk.1 - blk.0 >= WEIGHT_ROWS {
                gr.blocks.push(blk);
                blk = (usize::MAX, 0);
            }
            blk = (blk.0.min(off[t]), blk.1.max(off[t + 1]));
        }
        if blk.1 > blk.0 {
            gr.blocks.push(blk);
        }
        let widest = gr.blocks.iter().map(|b| b.1 - b.0).max().unwrap_or(0);
        // dgᵀ of one block, written step by step while dg's rows are in cache and reused block
        // after block (so it stays in cache too); its row stride: the block's rows rounded up
        // to whole cache lines and one more, so that its rows do not all fall on the same cache
        // sets; started on a cache line
        let ld_t = widest.div_ceil(16) * 16 + 16;
        // (it pays where a block of dg no longer fits in L2 beside the rest, and the product's
        // own packing of dg would read it cold: measured on charlm-2x256, while on
        // charlm-1x128 and series-1x64 the transposes cost more than they save)
        let transposed = !masked && !gru_mode && gh >= gr.transposed_min && bf.is_none();
        sized(&mut gr.dg_t, if transposed { gh * ld_t + 16 } else { 0 });
        let t0 = gr.dg_t.as_ptr().align_offset(64).min(15);
        sized(&mut gr.dht, rows * p);
        zeroed(&mut gr.dr, if cfg.proj_size > 0 { b * h } else { 0 });
        zeroed(&mut gr.tmp, b * p);
        zeroed(&mut gr.d_peep, if cfg.peephole { 3 * h } else { 0 });
        let w_hh = &params[dp.w_hh.clone()];
        let w_hr = dp.w_hr.clone().map(|r| &params[r]);
        let peep = dp.peep.clone().map(|r| {
            let s = &params[r];
            Peepholes {
                i: &s[..h],
                f: &s[h..2 * h],
                o: &s[2 * h..3 * h],
            }
        });
        let step = LstmStep {
            hidden: h,
            coupled: cfg.coupled,
            peepholes: peep,
        };
        // the one-hot input's weight gradient and the bias gradients are summed row by row
        // inside the time loop, while each step's gradient rows are still in L1
        let tokens = match x {
            LayerInput::Tokens(ids) => Some(ids),
            LayerInput::Dense(..) => None,
        };
        zeroed(
            &mut gr.dw_t,
            if tokens.is_some() { dp.input * gh } else { 0 },
        );
        let with_bias = dp.b_ih.is_some() && dp.b_hh.is_some();
        zeroed(&mut gr.db, if with_bias { gh } else { 0 });
        zeroed(&mut gr.dbh, if with_bias && gru_mode { gh } else { 0 });
        // dh_prev = dg · W_hh and dr = dh · W_hr: the weights packed once for all steps
        let bf_hh = bf.and_then(|w| w.w_hh.as_ref());
        match shared_w_hh_p {
            _ if bf_hh.is_some() => gr.w_hh_p.clear(),
            Some(_) => gr.w_hh_p.clear(),
            None => pack_panels(gh, p, w_hh, p, Transpose::No, &mut gr.w_hh_p),
        }
        let w_hh_p: &[f32] = shared_w_hh_p.unwrap_or(&gr.w_hh_p);
        // dh_prev = dg · W_hh, in bf16 or f32
        let back = |m: usize, a: &[f32], c: &mut [f32]| match bf_hh {
            Some(w) => gemm_bf16(m, a, gh, w, c, p, false),
            None => gemm_packed(m, p, gh, a, gh, w_hh_p, c, p, false),
        };
        if let Some(w_hr) = w_hr {
            pack_panels(p, h, w_hr, h, Transpose::No, &mut gr.w_hr_p);
        }

        // `bi`: the block of the steps being done
        if bf.is_some() {
            bf16_weight_grads(true, &mut gr.bf, x, gh, p, grads, dp);
        }
        let mut bi = 0;
        let mut dx = dx;
        let mut next = 0;
        for s in 0..tn {
            // reverse of the forward's processing order
            let t = if d == 0 { tn - 1 - s } else { s };
            let (slab, nb) = (off[t], off[t + 1] - off[t]);
            if nb == 0 {
                continue;
            }
            let blk = gr.blocks[bi];
            if !(blk.0..blk.1).contains(&slab) {
                // the previous block's steps are all done
                let dgh_all: &[f32] = if gru_mode { &gr.dgh } else { &gr.dg };
                let dxb = dx.as_deref_mut();
                let dg_t = transposed.then(|| (&gr.dg_t[t0..], ld_t));
                let bfw = bf.map(|w| (w, &mut gr.bf));
                weight_grads(
                    x, &gr.dg, dgh_all, dg_t, gh, &dc.h_prev, p, params, grads, dp, dxb, blk, bfw,
                );
                bi += 1;
            }
            let blk_lo = gr.blocks[bi].0;
            // sequences taking over their lanes (backward in their time)
            let due = due(lanes.handovers, &mut next, t);
            if !due.is_empty() {
                states[0].hand_over(lanes.segs, due, &mut gr.dh_state);
                states[1].hand_over(lanes.segs, due, &mut gr.dc_state);
            }
            // total gradient of this step's hidden output: from later steps and from above
            let dht = &mut gr.dht[slab * p..(slab + nb) * p];
            for j in 0..nb {
                let r = d_rows.map_or(slab + j, |m| m[slab + j]);
                let o = &d_out[r * w + d * p..r * w + (d + 1) * p];
                add_into(
                    &mut dht[j * p..(j + 1) * p],
                    &gr.dh_state[j * p..(j + 1) * p],
                    o,
                );
            }
            let dg = &mut gr.dg[slab * gh..(slab + nb) * gh];
            let gates = &dc.gates[slab * gh..(slab + nb) * gh];
            match cfg.mode {
                Mode::Lstm => {
                    let d_next_h: &[f32] = match w_hr {
                        None => dht,
                        Some(_) => {
                            // h = r · W_hrᵀ  =>  dr = dh · W_hr
                            gemm_packed(nb, h, p, dht, p, &gr.w_hr_p, &mut gr.dr, h, false);
                            &gr.dr[..nb * h]
                        }
                    };
                    lstm::backward_step(
                        &step,
                        nb,
                        gates,
                        match dc.c_from.get(t) {
                            Some(&from) if from != usize::MAX => &dc.c[from * h..(from + nb) * h],
                            _ => &dc.c_prev[slab * h..(slab + nb) * h],
                        },
                        &dc.c[slab * h..(slab + nb) * h],
                        d_next_h,
                        &mut gr.dc_state[..nb * h],
                        dg,
                        if cfg.peephole {
                            Some(&mut gr.d_peep[..])
                        } else {
                            None
                        },
                    );
                    // gates += h_prev · W_hhᵀ  =>  dh_prev = dg · W_hh
                    back(nb, dg, &mut gr.dh_state);
                }
                Mode::RnnTanh | Mode::RnnRelu => {
                    rnn::backward_step(cfg.mode == Mode::RnnRelu, nb * h, gates, dht, dg);
                    back(nb, dg, &mut gr.dh_state);
                }
                Mode::Gru => {
                    let dgh = &mut gr.dgh[slab * gh..(slab + nb) * gh];
                    gru::backward_step(
                        nb,
                        h,
                        gates,
                        &dc.hn[slab * h..(slab + nb) * h],
                        &dc.h_prev[slab * p..(slab + nb) * p],
                        dht,
                        dg,
                        dgh,
                        &mut gr.dh_state[..nb * h],
                    );
                    back(nb, dgh, &mut gr.tmp);
                }
            }
            if transposed {
                transpose_into(
                    &mut gr.dg_t[t0 + slab - blk_lo..],
                    ld_t,
                    &gr.dg[slab * gh..(slab + nb) * gh],
                    gh,
                    nb,
                    gh,
                );
            }
            for j in 0..nb {
                let row = &gr.dg[(slab + j) * gh..(slab + j + 1) * gh];
                if let Some(ids) = tokens {
                    let t = ids[slab + j] as usize;
                    add_assign(&mut gr.dw_t[t * gh..(t + 1) * gh], row);
                }
                if with_bias {
                    add_assign(&mut gr.db, row);
                    if gru_mode {
                        add_assign(&mut gr.dbh, &gr.dgh[(slab + j) * gh..(slab + j + 1) * gh]);
                    }
                }
            }
            // the recurrent product saw h_prev ⊙ mask
            match (gru_mode, masked) {
                (false, true) => {
                    let mask = dc.rec_mask_at(p, slab, nb);
                    for (x, m) in gr.dh_state[..nb * p].iter_mut().zip(mask) {
                        *x *= m;
                    }
                }
                (true, true) => {
                    for ((x, t), m) in gr.dh_state[..nb * p]
                        .iter_mut()
                        .zip(&gr.tmp)
                        .zip(dc.rec_mask_at(p, slab, nb))
                    {
                        *x += t * m;
                    }
                }
                (true, false) => {
                    for (x, t) in gr.dh_state[..nb * p].iter_mut().zip(&gr.tmp) {
                        *x += t;
                    }
                }
                (false, false) => {}
            }
        }

        // ---- the rows not yet in the weight gradients, and the one-hot input's
        if masked {
            // dW_hh += dghᵀ · (h_prev ⊙ mask): all rows at once, with the masked inputs
            zeroed(&mut gr.h_masked_all, rows * p);
            for t in 0..tn {
                let (o, nb) = (off[t], off[t + 1] - off[t]);
                let mask = dc.rec_mask_at(p, o, nb);
                for (r, j) in (o..o + nb).zip(0..nb) {
                    for k in 0..p {
                        gr.h_masked_all[r * p + k] = dc.h_prev[r * p + k] * mask[j * p + k];
                    }
                }
            }
        }
        if let Some(&blk) = gr.blocks.get(bi) {
            let hprev: &[f32] = if masked { &gr.h_masked_all } else { &dc.h_prev };
            let dgh_all: &[f32] = if gru_mode { &gr.dgh } else { &gr.dg };
            let dg_t = transposed.then(|| (&gr.dg_t[t0..], ld_t));
            let bfw = bf.map(|w| (w, &mut gr.bf));
            weight_grads(
                x, &gr.dg, dgh_all, dg_t, gh, hprev, p, params, grads, dp, dx, blk, bfw,
            );
        }
        if bf.is_some() {
            bf16_weight_grads(false, &mut gr.bf, x, gh, p, grads, dp);
        }
        if let LayerInput::Tokens(_) = x {
            // dW_ihᵀ was summed in the time loop
            let v = dp.input;
            let gw = &mut grads[dp.w_ih.clone()];
            for r in 0..gh {
                for c in 0..v {
                    gw[r * v + c] += gr.dw_t[c * gh + r];
                }
            }
        }
        if let (Some(bi), Some(bh)) = (&dp.b_ih, &dp.b_hh) {
            add_assign(&mut grads[bi.clone()], &gr.db);
            add_assign(
                &mut grads[bh.clone()],
                if gru_mode { &gr.dbh } else { &gr.db },
            );
        }
        if let Some(r) = &dp.w_hr {
            // h = r · W_hrᵀ  =>  dW_hr += dhᵀ · r
            matmul(
                p,
                h,
                rows,
                &gr.dht,
                p,
                Transpose::Yes,
                &dc.r,
                h,
                Transpose::No,
                &mut grads[r.clone()],
                h,
                true,
            );
        }
        if let Some(r) = &dp.peep {
            for (a, g) in grads[r.clone()].iter_mut().zip(&gr.d_peep) {
                *a += g;
            }
        }
    }
}

/// Starts (`start`) or ends a bf16 backward pass's weight gradients: zeroes the transposed sums
/// of [`Bf16Scratch`], or adds them, transposed, into `dW_ih` (dense input) and `dW_hh`.
fn bf16_weight_grads(
    start: bool,
    scratch: &mut Bf16Scratch,
    x: LayerInput<'_>,
    gh: usize,
    p: usize,
    grads: &mut [f32],
    dp: &DirParams,
) {
    let i = match x {
        LayerInput::Dense(_, i) => i,
        LayerInput::Tokens(_) => 0,
    };
    if start {
        zeroed(&mut scratch.t_ih, i * gh);
        zeroed(&mut scratch.t_hh, p * gh);
        return;
    }
    // (transposed with the vectorized 16 x 16 tiles, then added: a third of the time of the
    // scalar transposed add)
    for (t, width, w) in [(&scratch.t_ih, i, &dp.w_ih), (&scratch.t_hh, p, &dp.w_hh)] {
        if width > 0 {
            sized(&mut scratch.back, gh * width);
            transpose_into(&mut scratch.back, width, t, gh, width, gh);
            add_assign(&mut grads[w.clone()], &scratch.back);
        }
    }
}

/// Rows (of consecutive steps) of a backward time loop whose weight gradients are computed
/// together, while they are in cache (see `backward_direction`).
pub(super) const WEIGHT_ROWS: usize = 256;

/// Gate rows (`G·H`) from which the backward pass keeps `dgᵀ` for the weight gradients, on a
/// CPU with AVX-512 (see `backward_direction`).
pub(super) const TRANSPOSED_MIN_GATES: usize = 1024;

/// Rows `r0..r1` of one layer direction's weight gradients, and of its input gradient for a
/// dense input: `dW_ih += dgᵀ · x`, `dx += dg · W_ih`, `dW_hh += dghᵀ · h_prev` (`dg (rows, gh)`,
/// `dgh` the gradient the recurrent product saw, `h_prev (rows, p)`). A one-hot input's `dW_ih`
/// is summed elsewhere.
#[allow(clippy::too_many_arguments)]
pub(super) fn weight_grads(
    x: LayerInput<'_>,
    dg: &[f32],
    dgh: &[f32],
    dg_t: Option<(&[f32], usize)>,
    gh: usize,
    h_prev: &[f32],
    p: usize,
    params: &[f32],
    grads: &mut [f32],
    dp: &DirParams,
    dx: Option<&mut [f32]>,
    (r0, r1): (usize, usize),
    bf: Option<(&Bf16Weights, &mut Bf16Scratch)>,
) {
    let n = r1 - r0;
    // (the LSTM's and RNN's recurrent product saw dg itself; the GRU's, dgh)
    let dgh_is_dg = std::ptr::eq(dgh.as_ptr(), dg.as_ptr());
    let dg = &dg[r0 * gh..r1 * gh];
    if let Some((w, scratch)) = bf {
        // bf16: dW_ihᵀ += xᵀ · dg and dW_hhᵀ += h_prevᵀ · dg into the scratch (added into the
        // gradients by `bf16_weight_grads` at the end of the pass), with dg packed once as the
        // right factor (the layout it converts to fastest) and the narrower xᵀ, h_prevᵀ
        // converted transposed
        let backend = Bf16Backend::best();
        let dg_b = AmxPacked::new(dg, gh, n, gh, Transpose::No);
        let Bf16Scratch {
            rows, t_ih, t_hh, ..
        } = scratch;
        if let LayerInput::Dense(xs, i) = x {
            rows.fill_op(&xs[r0 * i..r1 * i], i, Transpose::Yes, i, n);
            gemm_bf16_rows(backend, rows, &dg_b, t_ih, gh, true);
            if let (Some(dx), Some(w_ih)) = (dx, w.w_ih.as_ref()) {
                gemm_bf16(n, dg, gh, w_ih, &mut dx[r0 * i..r1 * i], i, true);
            }
        }
        rows.fill_op(&h_prev[r0 * p..r1 * p], p, Transpose::Yes, p, n);
        if dgh_is_dg {
            gemm_bf16_rows(backend, rows, &dg_b, t_hh, gh, true);
        } else {
            let dgh_b = AmxPacked::new(&dgh[r0 * gh..r1 * gh], gh, n, gh, Transpose::No);
            gemm_bf16_rows(backend, rows, &dgh_b, t_hh, gh, true);
        }
        return;
    }
    // dgᵀ as the left factor of the weight gradients: laid out already (the block's, from its
    // first row), or read transposed
    let (a, lda, ta) = match dg_t {
        Some((t, ld)) => (t, ld, Transpose::No),
        None => (dg, gh, Transpose::Yes),
    };
    if let LayerInput::Dense(xs, i) = x {
        // gates = x · W_ihᵀ  =>  dW_ih += dgᵀ · x, dx += dg · W_ih
        let xs = &xs[r0 * i..r1 * i];
        let gw = &mut grads[dp.w_ih.clone()];
        matmul(gh, i, n, a, lda, ta, xs, i, Transpose::No, gw, i, true);
        if let Some(dx) = dx {
            let w_ih = &params[dp.w_ih.clone()];
            let dx = &mut dx[r0 * i..r1 * i];
            matmul(
                n,
                i,
                gh,
                dg,
                gh,
                Transpose::No,
                w_ih,
                i,
                Transpose::No,
                dx,
                i,
                true,
            );
        }
    }
    // gates += h_prev · W_hhᵀ  =>  dW_hh += dghᵀ · h_prev (dgh is dg but for the GRU, which
    // has no dgᵀ)
    let (dgh, hp) = (&dgh[r0 * gh..r1 * gh], &h_prev[r0 * p..r1 * p]);
    let (a, lda, ta) = match dg_t {
        Some(_) => (a, lda, ta),
        None => (dgh, gh, Transpose::Yes),
    };
    let gw = &mut grads[dp.w_hh.clone()];
    matmul(gh, p, n, a, lda, ta, hp, p, Transpose::No, gw, p, true);
}

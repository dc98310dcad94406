//! The forward pass: the input projection of all steps as one product, then the time loop
//! (one recurrent product and one fused cell pass per step), chunk by chunk on the threads.

use super::*;

/// `c (m, n) (+)= a (m, k) · wᵀ` for `w (n, k)`: through the pre-transposed `w_t (k, n)` when
/// there is one, else the general product (which takes the GEMV path for one row).
#[allow(clippy::too_many_arguments)]
#[inline]
pub(super) fn step_product(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    w: &[f32],
    w_t: &[f32],
    c: &mut [f32],
    accumulate: bool,
) {
    if w_t.is_empty() {
        matmul(
            m,
            n,
            k,
            a,
            k,
            Transpose::No,
            w,
            k,
            Transpose::Yes,
            c,
            n,
            accumulate,
        );
    } else {
        gemm_packed(m, n, k, a, k, w_t, c, n, accumulate);
    }
}

impl Recurrent {
    /// Runs the stack over a batch of sequences.
    ///
    /// - `params`: the store's values (the stack reads its own range of them).
    /// - `batch`: the input and its shapes, see [`SequenceBatch`]: `(T, B, I)` features or
    ///   `(T, B)` token ids (`(B, T, ·)` when `batch_first`), optional lengths `(B)`, initial
    ///   states `h (D·L, B, H_out)`, `c (D·L, B, H)`, and the RNG for dropout when training.
    /// - `cache`: receives the output `(T, B, D·H_out)` (batch-first if configured; see
    ///   [`RecurrentCache::output`]), the final states (same shapes as the initial ones,
    ///   [`RecurrentCache::final_state`]) and what [`Recurrent::backward`] needs.
    ///
    /// ```
    /// # use lstm::params::ParamStore;
    /// # use lstm::recurrent::{Input, Recurrent, RecurrentCache, RecurrentConfig, SequenceBatch};
    /// # use rand::SeedableRng;
    /// # let cfg = RecurrentConfig { input_size: 3, hidden_size: 4, ..Default::default() };
    /// # let mut store = ParamStore::default();
    /// # let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    /// # let lstm = Recurrent::new(cfg, &mut store, "lstm.", &mut rng).unwrap();
    /// let x = vec![0.1f32; 5 * 2 * 3]; // (T=5, B=2, I=3)
    /// let lengths = [5, 3];
    /// let mut cache = RecurrentCache::default();
    /// let batch = SequenceBatch::new(Input::Dense(&x), 5, 2).with_lengths(&lengths);
    /// lstm.forward(&store.values, batch, &mut cache).unwrap();
    /// assert_eq!(cache.final_state().h.len(), 2 * 4); // (D·L=1, B=2, H=4)
    /// ```
    ///
    /// # Errors
    /// [`Error::Shape`] / [`Error::Index`] if a buffer, token or length does not fit.
    pub fn forward(
        &self,
        params: &[f32],
        batch: SequenceBatch<'_>,
        cache: &mut RecurrentCache,
    ) -> Result<()> {
        let SequenceBatch {
            input,
            seq_len,
            batch,
            lengths,
            initial_state: init,
            dropout_rng: train,
        } = batch;
        let cfg = &self.cfg;
        let (tn, b) = (seq_len, batch);
        let (h, p, dn, ln) = (
            cfg.hidden_size,
            cfg.hidden_out(),
            cfg.directions(),
            cfg.num_layers,
        );
        if tn == 0 || b == 0 {
            return Err(Error::Config(format!(
                "sequence length and batch size must be at least 1 (got {tn}, {b})"
            )));
        }
        // the sizes below multiply these: no product of them may wrap
        let widest = cfg.input_size.max(4 * h).max(p).max(1) * dn * ln;
        if tn
            .checked_mul(b)
            .and_then(|r| r.checked_mul(widest))
            .is_none()
        {
            return Err(Error::Config(format!(
                "sequence length {tn} and batch size {b} are too large to address"
            )));
        }
        if params.len() < self.end {
            return Err(Error::shape(
                "parameters",
                "the registered size",
                params.len(),
            ));
        }
        // ---- validate input, lengths, states
        match input {
            Input::Dense(x) => {
                if cfg.one_hot_input {
                    return Err(Error::Config(
                        "this stack takes token ids (one-hot input)".into(),
                    ));
                }
                if x.len() != tn * b * cfg.input_size {
                    return Err(Error::shape(
                        "input",
                        format!(
                            "{} values (T={tn}, B={b}, I={})",
                            tn * b * cfg.input_size,
                            cfg.input_size
                        ),
                        x.len(),
                    ));
                }
            }
            Input::Tokens(ids) => {
                if !cfg.one_hot_input {
                    return Err(Error::Config(
                        "this stack takes dense input, not token ids".into(),
                    ));
                }
                if ids.len() != tn * b {
                    return Err(Error::shape("token input", tn * b, ids.len()));
                }
                if let Some(bad) = ids.iter().find(|&&t| t as usize >= cfg.input_size) {
                    return Err(Error::Index(format!(
                        "token id {bad} is out of range for a one-hot input of size {}",
                        cfg.input_size
                    )));
                }
            }
        }
        if let Some(lens) = lengths {
            if lens.len() != b {
                return Err(Error::shape("lengths", b, lens.len()));
            }
            if let Some(bad) = lens.iter().find(|&&l| l == 0 || l > tn) {
                return Err(Error::Index(format!(
                    "sequence length {bad} is outside 1..={tn}"
                )));
            }
        }
        if let Some(s) = init {
            if s.h.len() != dn * ln * b * p {
                return Err(Error::shape("h0", dn * ln * b * p, s.h.len()));
            }
            if cfg.mode == Mode::Lstm && s.c.len() != dn * ln * b * h {
                return Err(Error::shape("c0", dn * ln * b * h, s.c.len()));
            }
            if cfg.mode != Mode::Lstm && !s.c.is_empty() {
                return Err(Error::Config(format!(
                    "a {:?} stack has no cell state: leave the initial state's c empty",
                    cfg.mode
                )));
            }
        }

        // ---- sort rows by length (descending, stable) so running sequences are a prefix,
        // then deal them out to the chunks (each chunk stays sorted)
        let mut order: Vec<usize> = (0..b).collect();
        if let Some(lens) = lengths {
            order.sort_by(|&x, &y| lens[y].cmp(&lens[x]));
        }
        let team = self.team_eligible(b, train.is_some() && cfg.recurrent_dropout > 0.0);
        let n_chunks = if team { 1 } else { num_threads().min(b).max(1) };
        cache.chunks.resize_with(n_chunks, ChunkCache::default);
        cache.chunks.truncate(n_chunks);
        let all_full = vec![tn; b];
        let lens = lengths.unwrap_or(&all_full);
        let mut dealt = vec![Vec::new(); n_chunks];
        deal(&order, lens, &mut dealt);
        // shorter sequences share lanes (not with the units split, where they measured no gain)
        let pack = lengths.is_some() && !team && lanes_on();
        for (chunk, items) in cache.chunks.iter_mut().zip(&dealt) {
            chunk.team = team;
            lay_out(items, lens, pack, chunk);
        }
        // one dropout RNG per chunk, drawn in a fixed order
        let seeds: Vec<Option<u64>> = match train {
            Some(rng) => (0..n_chunks).map(|_| Some(rng.gen::<u64>())).collect(),
            None => vec![None; n_chunks],
        };
        cache.t = tn;
        cache.b = b;
        cache.used_tokens = matches!(input, Input::Tokens(_));
        // the output in the user's layout: each chunk copies its own rows while it still has
        // them in cache, and zeroes its padded positions of a variable-length batch; or the
        // real positions only, sequence after sequence
        let w = dn * p;
        cache.compact = cache.want_compact && lengths.is_some();
        let seq_rows: Option<Vec<usize>> = cache.compact.then(|| {
            let mut at = 0;
            lens.iter()
                .map(|&l| {
                    at += l;
                    at - l
                })
                .collect()
        });
        let n_out = if cache.compact {
            lens.iter().sum()
        } else {
            tn * b
        };
        sized(&mut cache.output, n_out * w);
        let output = Shared::new(&mut cache.output);
        let batch_first = cfg.batch_first;
        // (by step `t` of the chunk's loop, and the padded positions by the user's step `t`)
        let copy_out = |chunk: &ChunkCache, t: usize| {
            let top = &chunk.layer_out[ln - 1];
            // SAFETY: every (t, u) belongs to one chunk and one packed row or padded position:
            // written once, by one thread, read only after the threads have joined
            let rows = out_rows(&chunk.src, &chunk.dst);
            for r in chunk.off[t]..chunk.off[t + 1] {
                unsafe { output.write(rows[r] * w, &top[r * w..(r + 1) * w]) };
            }
            if !chunk.dst.is_empty() {
                return;
            }
            for seg in chunk.segs.iter().filter(|seg| seg.len <= t) {
                let r = user_row(batch_first, tn, b, t, seg.u);
                unsafe { output.slice_mut(r * w, w).fill(0.0) };
            }
        };
        // the step products' weights, packed once for all chunks when each has enough rows
        // to use them (see `forward_direction`)
        let shared = n_chunks > 1 && lens.iter().sum::<usize>() >= 16 * n_chunks;
        let bf16 = self.precision == Precision::Bf16;
        self.pack_step_weights(
            params,
            shared && !bf16,
            Transpose::Yes,
            &mut cache.packed_fwd,
        );
        let tokens = matches!(input, Input::Tokens(_));
        self.pack_bf16(params, bf16, Transpose::Yes, tokens, &mut cache.bf16_fwd);
        let packed = &cache.packed_fwd;
        let bf = &cache.bf16_fwd;
        let run = |chunk: &mut ChunkCache, seed: Option<u64>| {
            let mut rng = seed.map(ChaCha8Rng::seed_from_u64);
            let seq_rows = seq_rows.as_deref();
            self.forward_chunk(
                params,
                input,
                tn,
                b,
                init,
                seq_rows,
                rng.as_mut(),
                packed,
                bf,
                chunk,
            );
        };
        if n_chunks == 1 {
            run(&mut cache.chunks[0], seeds[0]);
            let chunk = &cache.chunks[0];
            (0..tn)
                .into_par_iter()
                .with_min_len(tn.div_ceil(num_threads()).max(1))
                .for_each(|t| copy_out(chunk, t));
        } else {
            cache
                .chunks
                .par_iter_mut()
                .zip(seeds.par_iter())
                .for_each(|(chunk, &seed)| {
                    with_threads(1, || run(chunk, seed));
                    (0..tn).for_each(|t| copy_out(chunk, t));
                });
        }

        // ---- final states in the user's layout
        zeroed(&mut cache.state.h, dn * ln * b * p);
        zeroed(
            &mut cache.state.c,
            if cfg.mode == Mode::Lstm {
                dn * ln * b * h
            } else {
                0
            },
        );
        for chunk in &cache.chunks {
            for k in 0..dn * ln {
                let dc = &chunk.dirs[k];
                for (s, seg) in chunk.segs.iter().enumerate() {
                    let dst = (k * b + seg.u) * p;
                    cache.state.h[dst..dst + p].copy_from_slice(&dc.h_final[s * p..(s + 1) * p]);
                    if cfg.mode == Mode::Lstm {
                        let dst = (k * b + seg.u) * h;
                        cache.state.c[dst..dst + h]
                            .copy_from_slice(&dc.c_final[s * h..(s + 1) * h]);
                    }
                }
            }
        }
        cache.has_forward = true;
        if cache
            .owner
            .as_ref()
            .is_none_or(|(r, c)| *r != (self.start..self.end) || c != cfg)
        {
            cache.owner = Some((self.start..self.end, cfg.clone()));
        }
        Ok(())
    }

    /// The whole stack over one chunk of sequences (`chunk.rows`, indices into the user's
    /// batch of `bu`).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn forward_chunk(
        &self,
        params: &[f32],
        input: Input<'_>,
        tn: usize,
        bu: usize,
        init: Option<&RecurrentState>,
        seq_rows: Option<&[usize]>,
        mut rng: Option<&mut ChaCha8Rng>,
        packed: &[Vec<f32>],
        bf: &[Bf16Weights],
        cache: &mut ChunkCache,
    ) {
        let cfg = &self.cfg;
        let (h, p, dn, ln) = (
            cfg.hidden_size,
            cfg.hidden_out(),
            cfg.directions(),
            cfg.num_layers,
        );
        let b = cache.lanes.len();
        let (segs, lanes) = (&cache.segs, &cache.lanes);
        let lane_len = |j: usize| {
            let last = &segs[lanes[j].end - 1];
            last.start + last.len
        };
        cache.active.clear();
        for t in 0..tn {
            cache
                .active
                .push((0..b).filter(|&j| lane_len(j) > t).count());
        }
        cache.off.clear();
        cache.off.push(0);
        for t in 0..tn {
            cache.off.push(cache.off[t] + cache.active[t]);
        }
        let total = cache.off[tn];
        // the user's row of every packed row: each lane's sequence running at step t
        cache.src.clear();
        cache.row_seg.clear();
        cache.dst.clear();
        let mut at: Vec<usize> = lanes.iter().map(|r| r.start).collect();
        for t in 0..tn {
            for (j, s) in at.iter_mut().enumerate().take(cache.active[t]) {
                while segs[*s].start + segs[*s].len <= t {
                    *s += 1;
                }
                let seg = &segs[*s];
                let r = user_row(cfg.batch_first, tn, bu, t - seg.start, seg.u);
                debug_assert_eq!(seg.lane, j);
                cache.src.push(r);
                cache.row_seg.push(*s);
                if let Some(first) = seq_rows {
                    cache.dst.push(first[seg.u] + t - seg.start);
                }
            }
        }

        // ---- layer 0 input, time-major, chunk order
        match input {
            Input::Dense(x) => {
                let i = cfg.input_size;
                cache.x0.clear();
                cache.x0.reserve(total * i);
                for &r in &cache.src {
                    cache.x0.extend_from_slice(&x[r * i..(r + 1) * i]);
                }
            }
            Input::Tokens(ids) => {
                cache.tokens.clear();
                cache.tokens.extend(cache.src.iter().map(|&r| ids[r]));
            }
        }
        let used_tokens = matches!(input, Input::Tokens(_));

        // ---- buffers
        cache.layer_out.resize_with(ln, Vec::new);
        cache.drop_mask.resize_with(ln, Vec::new);
        cache.dropped.resize_with(ln, Vec::new);
        cache.dirs.resize_with(ln * dn, DirCache::default);
        let input_dropout = rng.is_some() && cfg.dropout > 0.0;
        let rec_dropout = rng.is_some() && cfg.recurrent_dropout > 0.0;

        for l in 0..ln {
            let (before, rest) = cache.layer_out.split_at_mut(l);
            let out = &mut rest[0];
            sized(out, total * dn * p);
            let x: LayerInput<'_> = if l == 0 {
                if used_tokens {
                    LayerInput::Tokens(&cache.tokens)
                } else {
                    LayerInput::Dense(&cache.x0, cfg.input_size)
                }
            } else if input_dropout {
                LayerInput::Dense(&cache.dropped[l - 1], dn * p)
            } else {
                LayerInput::Dense(&before[l - 1], dn * p)
            };
            for d in 0..dn {
                let k = l * dn + d;
                let dc = &mut cache.dirs[k];
                // each lane's initial state, and where the sequences leave their final ones
                let hc = if cfg.mode == Mode::Lstm { h } else { 0 };
                let n = cache.segs.len();
                zeroed(&mut dc.h_state, b * p);
                zeroed(&mut dc.c_state, b * hc);
                sized(&mut dc.h_final, n * p);
                sized(&mut dc.c_final, n * hc);
                let mut h_fin = std::mem::take(&mut dc.h_final);
                let mut c_fin = std::mem::take(&mut dc.c_final);
                let mut states = [
                    SeqStates {
                        w: p,
                        start: init.map(|s| &s.h[k * bu * p..(k + 1) * bu * p]),
                        fin: &mut h_fin,
                    },
                    SeqStates {
                        w: hc,
                        start: init.map(|s| &s.c[k * bu * hc..(k + 1) * bu * hc]),
                        fin: &mut c_fin,
                    },
                ];
                let in_time = d == 0;
                states[0].begin(&cache.segs, &cache.lanes, in_time, &mut dc.h_state);
                states[1].begin(&cache.segs, &cache.lanes, in_time, &mut dc.c_state);
                // one recurrent dropout mask per sequence, layer and direction, drawn in the
                // order of the sequences before the layout (so the same with or without
                // shared lanes); per lane, or per packed row when sequences share lanes
                dc.rec_mask.clear();
                dc.rec_mask_rows = n != b;
                if rec_dropout {
                    let rng = rng.as_deref_mut().expect("rec_dropout implies an rng");
                    let keep = 1.0 - cfg.recurrent_dropout;
                    let draws: Vec<f32> = (0..n * p)
                        .map(|_| {
                            if rng.gen::<f32>() < keep {
                                1.0 / keep
                            } else {
                                0.0
                            }
                        })
                        .collect();
                    if dc.rec_mask_rows {
                        dc.rec_mask.reserve(total * p);
                        for &sq in &cache.row_seg {
                            let i = cache.segs[sq].item;
                            dc.rec_mask.extend_from_slice(&draws[i * p..(i + 1) * p]);
                        }
                    } else {
                        // one sequence per lane, lane j the j-th sequence
                        dc.rec_mask = draws;
                    }
                }
                if cache.team {
                    self.forward_direction_team(
                        params,
                        &self.dirs[k],
                        x,
                        tn,
                        b,
                        &cache.off,
                        d,
                        dc,
                        out,
                    );
                } else {
                    let lanes = Lanes {
                        segs: &cache.segs,
                        handovers: &cache.handovers[d],
                    };
                    self.forward_direction(
                        params,
                        &self.dirs[k],
                        x,
                        tn,
                        b,
                        &cache.off,
                        d,
                        dc,
                        out,
                        lanes,
                        &mut states,
                        packed.get(k).map(|v| &v[..]),
                        bf.get(k),
                    );
                }
                states[0].end(&cache.lanes, in_time, &dc.h_state);
                states[1].end(&cache.lanes, in_time, &dc.c_state);
                dc.h_final = h_fin;
                dc.c_final = c_fin;
            }
            // dropout between layers
            if l + 1 < ln && input_dropout {
                let rng = rng.as_deref_mut().expect("input_dropout implies an rng");
                let keep = 1.0 - cfg.dropout;
                let mask = &mut cache.drop_mask[l];
                let dropped = &mut cache.dropped[l];
                zeroed(mask, out.len());
                zeroed(dropped, out.len());
                for ((m, y), &o) in mask.iter_mut().zip(dropped.iter_mut()).zip(out.iter()) {
                    *m = if rng.gen::<f32>() < keep {
                        1.0 / keep
                    } else {
                        0.0
                    };
                    *y = o * *m;
                }
            } else {
                cache.drop_mask[l].clear();
            }
        }
    }

    /// One direction of one layer over all steps.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn forward_direction(
        &self,
        params: &[f32],
        dp: &DirParams,
        x: LayerInput<'_>,
        tn: usize,
        b: usize,
        off: &[usize],
        d: usize,
        dc: &mut DirCache,
        out: &mut [f32],
        lanes: Lanes<'_>,
        states: &mut [SeqStates<'_>; 2],
        shared_w_hh_t: Option<&[f32]>,
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
        let lstm_mode = cfg.mode == Mode::Lstm;
        // ---- input projection of all steps: gates = x · W_ihᵀ + bias
        sized(&mut dc.gates, rows * gh);
        let w_ih = &params[dp.w_ih.clone()];
        // the biases that join the input projection: b_ih, plus b_hh except for the GRU,
        // which keeps b_hh with the recurrent product (b_hn sits inside the reset product)
        let mut bias = vec![0.0f32; gh];
        if let (Some(bi), Some(bh)) = (&dp.b_ih, &dp.b_hh) {
            let (bi, bh) = (&params[bi.clone()], &params[bh.clone()]);
            for k in 0..gh {
                bias[k] = bi[k] + if cfg.mode == Mode::Gru { 0.0 } else { bh[k] };
            }
        }
        // one-hot input with a table: each step's rows are gathered in the time loop, right
        // before the recurrent product reads them
        let mut gather: Option<&[u32]> = None;
        match x {
            LayerInput::Dense(xs, i) => {
                match bf.and_then(|w| w.w_ih.as_ref()) {
                    Some(w_ih_t) => gemm_bf16(rows, xs, i, w_ih_t, &mut dc.gates, gh, false),
                    None => matmul(
                        rows,
                        gh,
                        i,
                        xs,
                        i,
                        Transpose::No,
                        w_ih,
                        i,
                        Transpose::Yes,
                        &mut dc.gates,
                        gh,
                        false,
                    ),
                }
                for row in dc.gates.chunks_exact_mut(gh) {
                    add_assign(row, &bias);
                }
            }
            LayerInput::Tokens(ids) if rows * 4 < dp.input => {
                // few tokens (generation): gather the columns of W_ih directly
                let v = dp.input;
                for (row, &tok) in ids.iter().enumerate() {
                    let g = &mut dc.gates[row * gh..(row + 1) * gh];
                    for (r, x) in g.iter_mut().enumerate() {
                        *x = w_ih[r * v + tok as usize] + bias[r];
                    }
                }
            }
            LayerInput::Tokens(ids) => {
                // one-hot input: rows of W_ihᵀ with the bias folded in, gathered per token
                let v = dp.input;
                zeroed(&mut dc.w_ih_t, v * gh);
                for r in 0..gh {
                    for c in 0..v {
                        dc.w_ih_t[c * gh + r] = w_ih[r * v + c] + bias[r];
                    }
                }
                gather = Some(ids);
            }
        }
        // ---- caches
        sized(&mut dc.h_prev, rows * p);
        if lstm_mode {
            sized(&mut dc.c, rows * h);
            sized(&mut dc.c_prev, rows * h);
            zeroed(&mut dc.r, if cfg.proj_size > 0 { rows * h } else { 0 });
        }
        if cfg.mode == Mode::Gru {
            sized(&mut dc.hn, rows * h);
            zeroed(&mut dc.gates_h, b * gh);
        }
        zeroed(
            &mut dc.h_masked,
            if dc.rec_mask.is_empty() { 0 } else { b * p },
        );
        let w_hh = &params[dp.w_hh.clone()];
        // W_hhᵀ (H_out, G·H) and W_hrᵀ (H, P), laid out once per batch for the step products
        // (not worth it for a handful of rows, e.g. generation, where the GEMV path is used)
        // (a buffer packed last batch is overwritten in place, not cleared and refilled)
        let bf_hh = bf.and_then(|w| w.w_hh.as_ref());
        let step_weights_t = rows >= 16 && bf_hh.is_none();
        match shared_w_hh_t {
            Some(_) if step_weights_t => dc.w_hh_t.clear(),
            _ if step_weights_t => pack_panels(p, gh, w_hh, p, Transpose::Yes, &mut dc.w_hh_t),
            _ => dc.w_hh_t.clear(),
        }
        let w_hh_t: &[f32] = match shared_w_hh_t {
            Some(s) if step_weights_t => s,
            _ => &dc.w_hh_t,
        };
        match &dp.w_hr {
            Some(r) if step_weights_t => {
                pack_panels(h, p, &params[r.clone()], h, Transpose::Yes, &mut dc.w_hr_t);
            }
            _ => dc.w_hr_t.clear(),
        }
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

        // ---- the time loop
        // LSTM: a step whose lanes all carry on from the previous step (`prev`: its first row
        // and row count) reads its cell state from that step's rows of `c`, where
        // `c_from[t]` tells the backward pass to find it (`usize::MAX`: copied into `c_prev`);
        // with one direction and no projection the cell writes `h` straight into the output
        // rows. The running states `h_state`, `c_state` then hold the lanes that are not
        // running, and are brought up to date where a lane stops, at handovers and at the end.
        let direct_h = lstm_mode && w_hr.is_none() && dn == 1;
        dc.c_from.clear();
        if lstm_mode {
            dc.c_from.resize(tn, usize::MAX);
        }
        let mut prev: Option<(usize, usize)> = None;
        let mut next = 0;
        for s in 0..tn {
            let t = if d == 0 { s } else { tn - 1 - s };
            let (slab, nb) = (off[t], off[t + 1] - off[t]);
            if nb == 0 {
                continue;
            }
            // sequences taking over their lanes
            let due = due(lanes.handovers, &mut next, t);
            // the previous step's rows, when every lane of this step carries on from them
            let from = prev.filter(|&(_, pn)| lstm_mode && due.is_empty() && nb <= pn);
            if let (true, Some((ps, pn))) = (lstm_mode, prev) {
                // the states of the lanes that stop here, or of all at a step that does not
                // carry on
                let lo = if from.is_some() { nb } else { 0 };
                dc.c_state[lo * h..pn * h].copy_from_slice(&dc.c[(ps + lo) * h..(ps + pn) * h]);
                if direct_h {
                    dc.h_state[lo * p..pn * p].copy_from_slice(&out[(ps + lo) * p..(ps + pn) * p]);
                }
            }
            if !due.is_empty() {
                states[0].hand_over(lanes.segs, due, &mut dc.h_state);
                states[1].hand_over(lanes.segs, due, &mut dc.c_state);
            }
            // h_prev, optionally masked (recurrent dropout)
            let hp = &mut dc.h_prev[slab * p..(slab + nb) * p];
            match from {
                Some((ps, _)) if direct_h => hp.copy_from_slice(&out[ps * p..(ps + nb) * p]),
                _ => hp.copy_from_slice(&dc.h_state[..nb * p]),
            }
            let hm: &[f32] = if dc.rec_mask.is_empty() {
                &dc.h_prev[slab * p..(slab + nb) * p]
            } else {
                for ((m, &x), &k) in dc.h_masked[..nb * p]
                    .iter_mut()
                    .zip(&dc.h_prev[slab * p..(slab + nb) * p])
                    .zip(mask_at(&dc.rec_mask, dc.rec_mask_rows, p, slab, nb))
                {
                    *m = x * k;
                }
                &dc.h_masked[..nb * p]
            };
            let gates = &mut dc.gates[slab * gh..(slab + nb) * gh];
            // one-hot input with packed step weights: the rows of W_ihᵀ are gathered inside the
            // recurrent product (LSTM, RNN); otherwise copied first
            let fused = gather.is_some() && !w_hh_t.is_empty() && cfg.mode != Mode::Gru;
            // the recurrent product: in bf16, or f32 through the packed or general product
            let product = |m: usize, a: &[f32], c: &mut [f32], accumulate: bool| match bf_hh {
                Some(w) => gemm_bf16(m, a, p, w, c, gh, accumulate),
                None => step_product(m, gh, p, a, w_hh, w_hh_t, c, accumulate),
            };
            if let Some(ids) = gather {
                if fused {
                    // gates = W_ihᵀ[x] + h_prev · W_hhᵀ
                    gemm_packed_gather(
                        nb,
                        gh,
                        p,
                        hm,
                        p,
                        w_hh_t,
                        gates,
                        gh,
                        &dc.w_ih_t,
                        &ids[slab..slab + nb],
                    );
                } else {
                    for (j, g) in gates.chunks_exact_mut(gh).enumerate() {
                        let t = ids[slab + j] as usize;
                        g.copy_from_slice(&dc.w_ih_t[t * gh..(t + 1) * gh]);
                    }
                }
            }
            match cfg.mode {
                Mode::Lstm => {
                    // gates += h_prev · W_hhᵀ
                    if !fused {
                        product(nb, hm, gates, true);
                    }
                    let (prev_c, next_c) = cell_states(
                        from.map(|(ps, _)| ps),
                        slab,
                        nb,
                        h,
                        &mut dc.c,
                        &mut dc.c_prev,
                        &dc.c_state,
                    );
                    if let Some((ps, _)) = from {
                        dc.c_from[t] = ps;
                    }
                    match w_hr {
                        None => {
                            let next_h = if direct_h {
                                &mut out[slab * p..(slab + nb) * p]
                            } else {
                                &mut dc.h_state[..nb * h]
                            };
                            lstm::forward_step(&step, nb, gates, prev_c, next_c, next_h);
                        }
                        Some(w_hr) => {
                            let r = &mut dc.r[slab * h..(slab + nb) * h];
                            lstm::forward_step(&step, nb, gates, prev_c, next_c, r);
                            // h = r · W_hrᵀ
                            step_product(nb, p, h, r, w_hr, &dc.w_hr_t, &mut dc.h_state, false);
                        }
                    }
                    prev = Some((slab, nb));
                }
                Mode::Gru => {
                    let ghs = &mut dc.gates_h[..nb * gh];
                    product(nb, hm, ghs, false);
                    if let Some(bh) = &dp.b_hh {
                        let bh = &params[bh.clone()];
                        for row in ghs.chunks_exact_mut(gh) {
                            add_assign(row, bh);
                        }
                    }
                    gru::forward_step(
                        nb,
                        h,
                        gates,
                        ghs,
                        &mut dc.hn[slab * h..(slab + nb) * h],
                        &dc.h_prev[slab * p..(slab + nb) * p],
                        &mut dc.h_state[..nb * h],
                    );
                }
                Mode::RnnTanh | Mode::RnnRelu => {
                    if !fused {
                        product(nb, hm, gates, true);
                    }
                    rnn::forward_step(
                        cfg.mode == Mode::RnnRelu,
                        nb * h,
                        gates,
                        &mut dc.h_state[..nb * h],
                    );
                }
            }
            // layer output at step t, this direction's columns
            if !direct_h {
                let w = dn * p;
                for j in 0..nb {
                    out[(slab + j) * w + d * p..(slab + j) * w + (d + 1) * p]
                        .copy_from_slice(&dc.h_state[j * p..(j + 1) * p]);
                }
            }
        }
        // the lanes still running at the end
        if let Some((ps, pn)) = prev {
            dc.c_state[..pn * h].copy_from_slice(&dc.c[ps * h..(ps + pn) * h]);
            if direct_h {
                dc.h_state[..pn * p].copy_from_slice(&out[ps * p..(ps + pn) * p]);
            }
        }
    }

    /// Packs every layer direction's weights in bf16 for [`Precision::Bf16`] (`tb`: `Yes` for
    /// the forward's `W_ihᵀ` and `W_hhᵀ`, `No` for the backward's `W_ih` and `W_hh`), or empties
    /// `out` when `on` is false. A one-hot layer 0 has no `W_ih` here: its rows are gathered in
    /// `f32`.
    pub(super) fn pack_bf16(
        &self,
        params: &[f32],
        on: bool,
        tb: Transpose,
        tokens: bool,
        out: &mut Vec<Bf16Weights>,
    ) {
        if !on {
            out.clear();
            return;
        }
        let (gh, p) = (
            self.cfg.mode.gates() * self.cfg.hidden_size,
            self.cfg.hidden_out(),
        );
        let dn = self.cfg.directions();
        out.resize_with(self.dirs.len(), Bf16Weights::default);
        for (k, (dp, o)) in self.dirs.iter().zip(out.iter_mut()).enumerate() {
            let (w_ih, w_hh) = (&params[dp.w_ih.clone()], &params[dp.w_hh.clone()]);
            let i = dp.input;
            let one_hot = tokens && k < dn;
            // (k, n) of the product's right factor: forward x·W_ihᵀ, h·W_hhᵀ; backward
            // dg·W_ih, dg·W_hh
            let (ih, hh) = match tb {
                Transpose::Yes => ((i, gh), (p, gh)),
                Transpose::No => ((gh, i), (gh, p)),
            };
            o.w_ih = (!one_hot).then(|| AmxPacked::new(w_ih, i, ih.0, ih.1, tb));
            o.w_hh = Some(AmxPacked::new(w_hh, p, hh.0, hh.1, tb));
        }
    }

    /// Packs every layer direction's `W_hh` for the step products of all chunks at once (`tb`:
    /// `Yes` for the forward's `W_hhᵀ`, `No` for the backward's `W_hh`; the layouts
    /// `forward_direction` and `backward_direction` pack for themselves otherwise), or empties
    /// `out` when `on` is false.
    pub(super) fn pack_step_weights(
        &self,
        params: &[f32],
        on: bool,
        tb: Transpose,
        out: &mut Vec<Vec<f32>>,
    ) {
        if !on {
            out.clear();
            return;
        }
        let (gh, p) = (
            self.cfg.mode.gates() * self.cfg.hidden_size,
            self.cfg.hidden_out(),
        );
        out.resize_with(self.dirs.len(), Vec::new);
        let jobs = self
            .dirs
            .iter()
            .zip(out.iter_mut())
            .map(|(dp, o)| {
                let w = &params[dp.w_hh.clone()];
                match tb {
                    Transpose::Yes => (p, gh, w, p, tb, o),
                    Transpose::No => (gh, p, w, p, tb, o),
                }
            })
            .collect();
        pack_panels_par(jobs);
    }
}

//! Batch-1 inference for generation: one token in, one vector of logits out, in microseconds.
//!
//! A [`Generator`] takes a trained [`SequenceModel`] (token input, unidirectional LSTM without
//! projection, per-step head) and splits every layer's *hidden units* across `threads` workers:
//! worker `w` owns units `u0..u1` and holds, for its units only, the rows of all four gates of
//! `[W_ih | W_hh]` packed for a matrix-vector product ([`crate::kernels::pack_kmajor`]), so each
//! core streams its own part of the weights from its own L2 cache (the 2x256 model's 3 MB do not
//! fit one core's L2 but do fit two). A worker computes its gates, its part of the cell state and
//! of `h` without talking to the others; the workers meet once per layer (a spin barrier: every
//! worker needs the whole `h` of the layer below) and once after the head. One worker is the
//! calling thread; the others are persistent threads that spin between tokens (and sleep after
//! a few milliseconds without work), so no thread is spawned per token and nothing allocates.
//!
//! The hidden states are double-buffered by token parity, so a worker writing its part of the
//! new `h` never races one still reading the old. The cell states need no exchange: each
//! worker reads and writes only its own units.
//!
//! Results equal [`SequenceModel::predict`] with a carried state up to the order of the sums
//! (tested in `tests/generation.rs`).
//!
//! ```
//! use lstm::model::infer::Generator;
//! use lstm::model::{Head, InputKind, ModelConfig, SequenceModel};
//! let cfg = ModelConfig {
//!     input: InputKind::OneHot { vocab: 5 },
//!     hidden_size: 8,
//!     head: Head::PerStep { outputs: 5 },
//!     ..Default::default()
//! };
//! let model = SequenceModel::new(&cfg, 0).unwrap();
//! let mut g = Generator::new(&model, 2).unwrap();
//! let logits = g.step(3).unwrap();
//! assert_eq!(logits.len(), 5);
//! ```

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::cell::lstm::{forward_step, LstmStep, Peepholes};
use crate::cell::Mode;
use crate::error::{Error, Result};
use crate::kernels::{gemv_kmajor, gemv_kmajor_bf16, kmajor_rows, pack_kmajor, pack_kmajor_bf16};
use crate::model::{Head, InputKind, SequenceModel};
use crate::recurrent::RecurrentState;

/// A buffer whose data starts on a 64-byte boundary (so the product's loads never straddle
/// two cache lines).
struct Aligned<T> {
    buf: Vec<T>,
    off: usize,
    len: usize,
}

impl<T: Copy + Default> Aligned<T> {
    fn from(data: &[T]) -> Aligned<T> {
        let pad = 64 / std::mem::size_of::<T>();
        let mut buf = vec![T::default(); data.len() + pad];
        let off = buf.as_ptr().align_offset(64).min(pad - 1);
        buf[off..off + data.len()].copy_from_slice(data);
        Aligned {
            buf,
            off,
            len: data.len(),
        }
    }

    fn get(&self) -> &[T] {
        &self.buf[self.off..self.off + self.len]
    }
}

pub use crate::kernels::Precision;

/// A packed weight panel in either precision.
enum Panel {
    F32(Aligned<f32>),
    Bf16(Aligned<u16>),
}

impl Panel {
    fn new(
        precision: Precision,
        w: &[f32],
        ld: usize,
        rows: &[usize],
        col0: usize,
        k: usize,
    ) -> Panel {
        match precision {
            Precision::F32 => Panel::F32(Aligned::from(&pack_kmajor(w, ld, rows, col0, k))),
            Precision::Bf16 => Panel::Bf16(Aligned::from(&pack_kmajor_bf16(w, ld, rows, col0, k))),
        }
    }

    /// `z = init + P v`, or `z += P v` without `init`.
    fn gemv(&self, v: &[f32], init: Option<&[f32]>, z: &mut [f32]) {
        match self {
            Panel::F32(p) => gemv_kmajor(p.get(), v, init, z),
            Panel::Bf16(p) => gemv_kmajor_bf16(p.get(), v, init, z),
        }
    }
}

/// A buffer the workers share. Who may touch which part when is fixed by the barriers (see
/// the module documentation); every access goes through the raw pointer below.
struct SharedBuf(UnsafeCell<Vec<f32>>);

// SAFETY: concurrent accesses are to disjoint ranges, or separated by the Release/Acquire
// barrier protocol of `Sync` below.
unsafe impl Sync for SharedBuf {}

impl SharedBuf {
    fn new(n: usize) -> SharedBuf {
        SharedBuf(UnsafeCell::new(vec![0.0; n]))
    }

    /// # Safety
    /// No other thread may write `range` while the slice lives.
    #[allow(clippy::mut_from_ref)]
    unsafe fn slice(&self, range: std::ops::Range<usize>) -> &[f32] {
        &(&*self.0.get())[range]
    }

    /// # Safety
    /// No other thread may read or write `range` while the slice lives.
    #[allow(clippy::mut_from_ref)]
    unsafe fn slice_mut(&self, range: std::ops::Range<usize>) -> &mut [f32] {
        &mut (&mut *self.0.get())[range]
    }
}

/// A counter on its own cache line.
#[repr(align(128))]
struct Padded(AtomicU64);

/// What the workers share: the command, the states, the logits and the barrier counters.
struct Shared {
    /// Token epoch: the `e`-th token is published by storing `e`.
    go: Padded,
    token: AtomicU64,
    stop: AtomicBool,
    failed: AtomicBool,
    /// Per worker: the last barrier phase it reached.
    phase: Vec<Padded>,
    /// `(E)`: the embedded token (embedding models), written by the caller before `go`.
    x: SharedBuf,
    /// Per layer, two `(H)` buffers: token `e` reads `h[l][(e-1)%2]` and writes `h[l][e%2]`.
    h: Vec<[SharedBuf; 2]>,
    /// Per layer `(H)`: each worker reads and writes only its own units.
    c: Vec<SharedBuf>,
    logits: SharedBuf,
}

impl Shared {
    /// Marks `phase` reached by worker `w` and waits for all workers to reach it.
    fn barrier(&self, w: usize, phase: u64) -> bool {
        self.phase[w].0.store(phase, Ordering::Release);
        for p in &self.phase {
            while p.0.load(Ordering::Acquire) < phase {
                if self.failed.load(Ordering::Relaxed) {
                    return false;
                }
                std::hint::spin_loop();
            }
        }
        true
    }
}

/// One layer's part of one worker.
struct LayerPart {
    /// `[W_ih | W_hh]` rows of the worker's units, packed (`K = I + H`, or `H` with a table).
    w_x: Panel,
    w_h: Panel,
    /// `(rows)`: `b_ih + b_hh` of the worker's rows.
    bias: Vec<f32>,
    /// One-hot layer 0: `(V, rows)`, `W_ih[:, v] + b_ih + b_hh` per token.
    table: Vec<f32>,
    /// Peephole weights of the worker's units.
    peep: Option<[Vec<f32>; 3]>,
}

/// Everything one worker owns.
struct Worker {
    index: usize,
    u0: usize,
    u1: usize,
    hidden: usize,
    /// `E` of an embedding model (the length of `Shared::x`).
    x_len: usize,
    coupled: bool,
    layers: Vec<LayerPart>,
    /// Head rows `o0..o1` of the logits, packed, and their bias (padded).
    o0: usize,
    o1: usize,
    head_w: Panel,
    head_b: Vec<f32>,
    /// Scratch: gates `(rows)`, new cell `(units)`, new hidden `(units)`, logits `(rows)`.
    z: Vec<f32>,
    c_new: Vec<f32>,
    h_new: Vec<f32>,
    out: Vec<f32>,
    phase: u64,
}

impl Worker {
    /// Runs token epoch `e` on this worker's units; `false` if another worker failed.
    fn run(&mut self, shared: &Shared, e: u64) -> bool {
        let token = shared.token.load(Ordering::Relaxed) as usize;
        let (cur, prev) = ((e % 2) as usize, ((e + 1) % 2) as usize);
        let (u0, u1, n) = (self.u0, self.u1, self.u1 - self.u0);
        let hsz = self.hidden;
        for (l, part) in self.layers.iter().enumerate() {
            let rows = self.z.len();
            // SAFETY: h[l][prev] and the layer below's h[l-1][cur] are only read during this
            // phase (they were completed by the previous barrier); x was written before `go`.
            unsafe {
                let h_prev = shared.h[l][prev].slice(0..hsz);
                if !part.table.is_empty() {
                    self.z
                        .copy_from_slice(&part.table[token * rows..(token + 1) * rows]);
                    part.w_h.gemv(h_prev, None, &mut self.z);
                } else {
                    let x = if l == 0 {
                        shared.x.slice(0..self.x_len)
                    } else {
                        shared.h[l - 1][cur].slice(0..hsz)
                    };
                    part.w_x.gemv(x, Some(&part.bias), &mut self.z);
                    part.w_h.gemv(h_prev, None, &mut self.z);
                }
            }
            if n > 0 {
                let peepholes = part.peep.as_ref().map(|[i, f, o]| Peepholes { i, f, o });
                let step = LstmStep {
                    hidden: n,
                    coupled: self.coupled,
                    peepholes,
                };
                // SAFETY: each worker touches only its own units of c.
                let c = unsafe { shared.c[l].slice_mut(u0..u1) };
                forward_step(
                    &step,
                    1,
                    &mut self.z[..4 * n],
                    c,
                    &mut self.c_new,
                    &mut self.h_new,
                );
                c.copy_from_slice(&self.c_new);
                // SAFETY: nobody reads h[l][cur] before the barrier below; units are disjoint.
                unsafe { shared.h[l][cur].slice_mut(u0..u1) }.copy_from_slice(&self.h_new);
            }
            self.phase += 1;
            if !shared.barrier(self.index, self.phase) {
                return false;
            }
        }
        if self.o1 > self.o0 {
            let top = self.layers.len() - 1;
            // SAFETY: h[top][cur] is complete (barrier above); logits ranges are disjoint.
            unsafe {
                let h = shared.h[top][cur].slice(0..hsz);
                self.head_w.gemv(h, Some(&self.head_b), &mut self.out);
                shared
                    .logits
                    .slice_mut(self.o0..self.o1)
                    .copy_from_slice(&self.out[..self.o1 - self.o0]);
            }
        }
        self.phase += 1;
        shared.phase[self.index]
            .0
            .store(self.phase, Ordering::Release);
        true
    }
}

/// For the gate rows `idx` of layer `l` (indices into `W_ih`'s rows, `usize::MAX` for padding):
/// `b_ih + b_hh` per row (zeros without bias), and for a one-hot layer (`one_hot_vocab`) the
/// table `W_ih[:, v] + bias` `(vocab, rows)` that replaces its input product (else empty). Shared
/// by the batch-1 [`Generator`] and the batched generator, whose results must agree bit for bit.
pub(crate) fn gate_rows(
    model: &SequenceModel,
    l: usize,
    idx: &[usize],
    w_ih: &[f32],
    one_hot_vocab: Option<usize>,
) -> Result<(Vec<f32>, Vec<f32>)> {
    let cfg = model.config();
    let get = |name: String| -> Result<&[f32]> {
        model.store.get(&name).ok_or(Error::MissingTensor(name))
    };
    let rows = idx.len();
    let mut bias = vec![0.0; rows];
    if cfg.bias {
        let b_ih = get(format!("lstm.bias_ih_l{l}"))?;
        let b_hh = get(format!("lstm.bias_hh_l{l}"))?;
        for (r, &i) in idx.iter().enumerate() {
            if i != usize::MAX {
                bias[r] = b_ih[i] + b_hh[i];
            }
        }
    }
    let mut table = Vec::new();
    if let Some(vocab) = one_hot_vocab {
        let input = w_ih.len() / (4 * cfg.hidden_size);
        table = vec![0.0; vocab * rows];
        for v in 0..vocab {
            for (r, &i) in idx.iter().enumerate() {
                if i != usize::MAX {
                    table[v * rows + r] = w_ih[i * input + v] + bias[r];
                }
            }
        }
    }
    Ok((bias, table))
}

/// Batch-1, step-by-step inference with the weights split across cores (see the module
/// documentation).
pub struct Generator {
    shared: Arc<Shared>,
    main: Worker,
    threads: Vec<JoinHandle<()>>,
    epoch: u64,
    /// Final phase every worker reaches at the end of a token.
    phases_per_token: u64,
    embedding: Option<(Vec<f32>, usize)>,
    vocab: usize,
    layers: usize,
    hidden: usize,
    outputs: usize,
    logits: Vec<f32>,
}

impl Generator {
    /// Whether `model` has the shape this path supports: token input (one-hot or embedding),
    /// a unidirectional LSTM (standard, peephole or coupled) without projection, and a
    /// per-step head. Other models generate through [`SequenceModel::predict`].
    pub fn supports(model: &SequenceModel) -> bool {
        let c = model.config();
        c.mode == Mode::Lstm
            && !c.bidirectional
            && c.proj_size == 0
            && matches!(c.head, Head::PerStep { .. })
            && !matches!(
                c.input,
                InputKind::Dense { .. } | InputKind::DenseWithIds { .. }
            )
    }

    /// Packs `model`'s weights for `threads` workers (`0` = the library's thread setting) and
    /// starts the helper threads. The state starts at zeros.
    ///
    /// # Errors
    /// [`Error::Config`] if the model is not supported (see [`Self::supports`]).
    pub fn new(model: &SequenceModel, threads: usize) -> Result<Generator> {
        Self::with_precision(model, threads, Precision::F32)
    }

    /// [`Self::new`] with the weights in `precision`.
    ///
    /// # Errors
    /// As [`Self::new`].
    pub fn with_precision(
        model: &SequenceModel,
        threads: usize,
        precision: Precision,
    ) -> Result<Generator> {
        model.store.check_buffers()?;
        if !Self::supports(model) {
            return Err(Error::Config(
                "fast generation needs a unidirectional LSTM without projection, token input \
                 and a per-step head"
                    .into(),
            ));
        }
        let cfg = model.config();
        let (hsz, layers) = (cfg.hidden_size, cfg.num_layers);
        let outputs = cfg.head.outputs();
        let (vocab, embedding) = match cfg.input {
            InputKind::OneHot { vocab } => (vocab, None),
            InputKind::Embedding { vocab, dim } => {
                let e = model.store.get("embedding.weight").unwrap_or(&[]).to_vec();
                (vocab, Some((e, dim)))
            }
            InputKind::Dense { .. } | InputKind::DenseWithIds { .. } => {
                unreachable!("checked by supports")
            }
        };
        let threads = if threads == 0 {
            crate::kernels::num_threads()
        } else {
            threads
        };
        // units per worker: a multiple of 16 so each worker's rows start on a register, and at
        // least 64 (below that a worker's share no longer pays for its barrier)
        let per = hsz.div_ceil(threads.max(1)).max(64.min(hsz)).div_ceil(16) * 16;
        let nworkers = hsz.div_ceil(per).max(1);
        // a small head (a character vocabulary) is cheaper on the calling thread alone than
        // behind one more barrier
        let oper = if outputs * hsz <= 64 * 1024 {
            outputs
        } else {
            outputs.div_ceil(nworkers).div_ceil(16) * 16
        };
        let get = |name: String| -> Result<&[f32]> {
            model.store.get(&name).ok_or(Error::MissingTensor(name))
        };
        let mut workers = Vec::with_capacity(nworkers);
        for w in 0..nworkers {
            let (u0, u1) = ((w * per).min(hsz), ((w + 1) * per).min(hsz));
            let n = u1 - u0;
            let mut idx: Vec<usize> = (0..4)
                .flat_map(|g| (u0..u1).map(move |u| g * hsz + u))
                .collect();
            idx.resize(kmajor_rows(4 * n).max(16), usize::MAX);
            let rows = idx.len();
            let mut parts = Vec::with_capacity(layers);
            for l in 0..layers {
                let w_ih = get(format!("lstm.weight_ih_l{l}"))?;
                let w_hh = get(format!("lstm.weight_hh_l{l}"))?;
                let input = w_ih.len() / (4 * hsz);
                let one_hot = l == 0 && embedding.is_none();
                let (bias, table) = gate_rows(model, l, &idx, w_ih, one_hot.then_some(vocab))?;
                let w_x = if one_hot {
                    Panel::new(precision, &[], 0, &idx[..0], 0, 0)
                } else {
                    Panel::new(precision, w_ih, input, &idx, 0, input)
                };
                let w_h = Panel::new(precision, w_hh, hsz, &idx, 0, hsz);
                let peep = if cfg.peephole {
                    let p = |g: &str| -> Result<Vec<f32>> {
                        Ok(get(format!("lstm.peephole_{g}_l{l}"))?[u0..u1].to_vec())
                    };
                    Some([p("i")?, p("f")?, p("o")?])
                } else {
                    None
                };
                parts.push(LayerPart {
                    w_x,
                    w_h,
                    bias,
                    table,
                    peep,
                });
            }
            let (o0, o1) = ((w * oper).min(outputs), ((w + 1) * oper).min(outputs));
            let mut oidx: Vec<usize> = (o0..o1).collect();
            oidx.resize(kmajor_rows(o1 - o0).max(16), usize::MAX);
            let head_w = get("head.weight".into())?;
            let head_bias = get("head.bias".into())?;
            let head_b: Vec<f32> = oidx
                .iter()
                .map(|&i| if i == usize::MAX { 0.0 } else { head_bias[i] })
                .collect();
            workers.push(Worker {
                index: w,
                u0,
                u1,
                hidden: hsz,
                x_len: embedding.as_ref().map_or(0, |e| e.1),
                coupled: cfg.coupled,
                layers: parts,
                o0,
                o1,
                head_w: Panel::new(precision, head_w, hsz, &oidx, 0, hsz),
                z: vec![0.0; rows],
                c_new: vec![0.0; n],
                h_new: vec![0.0; n],
                out: vec![0.0; head_b.len()],
                head_b,
                phase: 0,
            });
        }
        let shared = Arc::new(Shared {
            go: Padded(AtomicU64::new(0)),
            token: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            failed: AtomicBool::new(false),
            phase: (0..nworkers).map(|_| Padded(AtomicU64::new(0))).collect(),
            x: SharedBuf::new(embedding.as_ref().map_or(0, |e| e.1)),
            h: (0..layers)
                .map(|_| [SharedBuf::new(hsz), SharedBuf::new(hsz)])
                .collect(),
            c: (0..layers).map(|_| SharedBuf::new(hsz)).collect(),
            logits: SharedBuf::new(outputs),
        });
        let mut rest = workers.split_off(1);
        let main = workers.pop().expect("at least one worker");
        let threads = rest
            .drain(..)
            .map(|mut worker| {
                let shared = Arc::clone(&shared);
                std::thread::spawn(move || worker_loop(&mut worker, &shared))
            })
            .collect();
        Ok(Generator {
            shared,
            main,
            threads,
            epoch: 0,
            phases_per_token: layers as u64 + 1,
            embedding,
            vocab,
            layers,
            hidden: hsz,
            outputs,
            logits: vec![0.0; outputs],
        })
    }

    /// The number of workers (cores) the weights are split across.
    pub fn workers(&self) -> usize {
        self.threads.len() + 1
    }

    /// Feeds one token and returns the logits for the next, `(outputs)`.
    ///
    /// # Errors
    /// [`Error::Index`] if `token` is not below the vocabulary size; [`Error::Config`] if a
    /// worker thread died (a bug).
    pub fn step(&mut self, token: u32) -> Result<&[f32]> {
        if token as usize >= self.vocab {
            return Err(Error::Index(format!(
                "token {token} is outside the vocabulary of {}",
                self.vocab
            )));
        }
        let shared = &*self.shared;
        if let Some((table, dim)) = &self.embedding {
            let t = token as usize;
            // SAFETY: the workers are idle (the previous token completed) until `go` below.
            unsafe { shared.x.slice_mut(0..*dim) }.copy_from_slice(&table[t * dim..(t + 1) * dim]);
        }
        self.epoch += 1;
        shared.token.store(token as u64, Ordering::Relaxed);
        shared.go.0.store(self.epoch, Ordering::Release);
        for t in &self.threads {
            t.thread().unpark();
        }
        let ok = self.main.run(shared, self.epoch) && {
            let done = self.epoch * self.phases_per_token;
            shared.barrier(0, done)
        };
        if !ok {
            return Err(Error::Config("a generation worker thread failed".into()));
        }
        // SAFETY: every worker has finished the token (barrier above).
        self.logits
            .copy_from_slice(unsafe { shared.logits.slice(0..self.outputs) });
        Ok(&self.logits)
    }

    /// Sets every state to zero.
    pub fn reset(&mut self) {
        let cur = (self.epoch % 2) as usize;
        for l in 0..self.layers {
            // SAFETY: the workers are idle between tokens.
            unsafe {
                self.shared.h[l][cur].slice_mut(0..self.hidden).fill(0.0);
                self.shared.c[l].slice_mut(0..self.hidden).fill(0.0);
            }
        }
    }

    /// The current state, laid out as [`SequenceModel::carry`] (`(L, 1, H)`).
    pub fn state(&self) -> RecurrentState {
        let cur = (self.epoch % 2) as usize;
        let mut s = RecurrentState::default();
        for l in 0..self.layers {
            // SAFETY: the workers are idle between tokens.
            unsafe {
                s.h.extend_from_slice(self.shared.h[l][cur].slice(0..self.hidden));
                s.c.extend_from_slice(self.shared.c[l].slice(0..self.hidden));
            }
        }
        s
    }
}

impl Drop for Generator {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        for t in self.threads.drain(..) {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

/// A helper thread: wait for a token (spinning briefly, then sleeping), run it, repeat.
fn worker_loop(worker: &mut Worker, shared: &Shared) {
    let mut seen = 0u64;
    loop {
        let mut idle_since: Option<Instant> = None;
        let e = loop {
            let e = shared.go.0.load(Ordering::Acquire);
            if e > seen {
                break e;
            }
            if shared.stop.load(Ordering::Acquire) {
                return;
            }
            let since = *idle_since.get_or_insert_with(Instant::now);
            if since.elapsed() > Duration::from_millis(5) {
                std::thread::park_timeout(Duration::from_millis(2));
            } else {
                for _ in 0..64 {
                    std::hint::spin_loop();
                }
            }
        };
        seen = e;
        let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| worker.run(shared, e)));
        if !matches!(ok, Ok(true)) {
            shared.failed.store(true, Ordering::Release);
            return;
        }
    }
}

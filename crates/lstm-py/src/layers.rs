//! The recurrent layers, shaped like `torch.nn.LSTM`, `GRU` and `RNN`: one native class,
//! `Recurrent`, over the library's [`lstm::Recurrent`] stack, and `Tape`, the buffers of one
//! forward pass kept for its backward pass. `python/lstm/layers.py` wraps them in the
//! PyTorch-shaped `LSTM`, `GRU` and `RNN` classes.
//!
//! A layer's parameters (a [`ParamStore`] under PyTorch's names, empty prefix) and its own
//! cache sit behind one mutex: two Python threads may call one layer at once, and each call
//! computes with the GIL released, taking the mutex inside. Inputs are read in place from
//! C-contiguous float32 numpy arrays; outputs are numpy arrays that own the Rust `Vec` they were
//! made from (no copy after the library's own buffers).
//!
//! Shapes: `T` steps, `B` sequences, `I` input size, `L` layers, `D` directions, `H` hidden
//! size, `H_out` the hidden output (`proj_size` if set, else `H`).

use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use lstm::cell::Mode;
use lstm::params::init::InitScheme;
use lstm::{
    Input, ParamStore, Recurrent, RecurrentCache, RecurrentConfig, RecurrentState, SequenceBatch,
};

use numpy::{PyArray1, PyArrayDyn, PyArrayMethods, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::errors::{lib_err, value_err};

/// Refuses work of about `bytes` that this process cannot allocate (the jobs check their
/// models the same way): an allocation failure would abort the interpreter.
fn fits(bytes: u128, what: &str) -> PyResult<()> {
    match lstm::model::memory::machine_memory() {
        Some(can) if bytes > can => Err(value_err(format!(
            "{what} needs about {:.1} GB of memory, more than the {:.1} GB this process can \
             allocate; use a smaller layer, shorter sequences or a smaller batch",
            bytes as f64 / 1e9,
            can as f64 / 1e9
        ))),
        _ => Ok(()),
    }
}

/// A lower bound of the bytes a forward pass of `t` steps of `b` sequences keeps for its
/// backward pass: per step, sequence, layer and direction, the gates, the cell states before
/// and after, the hidden state read and written; and the input.
fn activation_bytes(cfg: &RecurrentConfig, t: usize, b: usize) -> u128 {
    let (g, h, p) = (
        cfg.mode.gates() as u128,
        cfg.hidden_size as u128,
        cfg.hidden_out() as u128,
    );
    let per_step = (cfg.num_layers * cfg.directions()) as u128 * (g * h + 5 * h + 2 * p)
        + cfg.input_size as u128;
    4 * t as u128 * b as u128 * per_step
}

/// The most rounds `time_forward_backward` times in one call.
const MAX_REPS: usize = 1_000_000;

/// Adds the layer classes to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyRecurrent>()?;
    m.add_class::<Tape>()?;
    Ok(())
}

/// Locks a mutex; a panic while it was held (none is expected) does not poison the layer for
/// good, as the state it guards is whole between calls.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// `obj` as a C-contiguous float32 numpy array, or a `ValueError` naming `what`.
fn f32_array<'py>(obj: &Bound<'py, PyAny>, what: &str) -> PyResult<PyReadonlyArrayDyn<'py, f32>> {
    let arr = obj.cast::<PyArrayDyn<f32>>().map_err(|_| {
        let dtype = obj
            .getattr("dtype")
            .map(|d| d.to_string())
            .unwrap_or_else(|_| obj.get_type().to_string());
        value_err(format!(
            "{what} must be a float32 numpy array, got {dtype} (convert with \
             numpy.asarray(a, dtype=numpy.float32))"
        ))
    })?;
    let ro = arr
        .try_readonly()
        .map_err(|e| value_err(format!("{what} cannot be read: {e}")))?;
    if !ro.is_c_contiguous() {
        return Err(value_err(format!(
            "{what} must be C-contiguous (use numpy.ascontiguousarray)"
        )));
    }
    Ok(ro)
}

/// Checks an array's shape against the expected one.
fn check_shape(what: &str, got: &[usize], want: &[usize]) -> PyResult<()> {
    if got != want {
        return Err(value_err(format!(
            "{what} has shape {got:?}, expected {want:?}"
        )));
    }
    Ok(())
}

/// A Rust vector as a numpy array of this shape, without copying it.
fn to_numpy<'py>(py: Python<'py>, v: Vec<f32>, shape: &[usize]) -> PyResult<Bound<'py, PyAny>> {
    let flat = PyArray1::from_vec(py, v);
    Ok(flat.reshape(shape.to_vec())?.into_any())
}

/// The buffers one forward pass keeps for its backward pass (a `RecurrentCache`), for callers
/// that run several forward passes before their backward passes (an autograd graph). A layer
/// has one of its own, used when no tape is passed.
#[pyclass(module = "lstm._lstm", frozen)]
pub struct Tape {
    inner: Mutex<TapeInner>,
}

#[derive(Default)]
struct TapeInner {
    cache: RecurrentCache,
    /// `(T, B)` of the forward pass held, if any.
    shape: Option<(usize, usize)>,
    /// The layer whose forward pass it holds ([`PyRecurrent::id`]; 0: none).
    owner: usize,
    /// That layer's [`Inner::version`] at the forward pass.
    version: u64,
}

#[pymethods]
impl Tape {
    #[new]
    fn new() -> Self {
        Tape {
            inner: Mutex::new(TapeInner::default()),
        }
    }

    /// Bytes held by the tape's buffers.
    fn nbytes(&self) -> usize {
        lock(&self.inner).cache.bytes()
    }
}

/// What the mutex of a layer guards.
struct Inner {
    rnn: Recurrent,
    store: ParamStore,
    rng: ChaCha8Rng,
    tape: TapeInner,
    /// Seconds the library's forward and backward took in the last calls (for the benchmark).
    compute: [f64; 2],
    /// Counts the `load_state_dict` calls: a backward pass needs the weights its forward used.
    version: u64,
}

/// A recurrent stack (LSTM, GRU, RNN) with PyTorch's parameters, forward and backward on
/// float32 numpy arrays. Use `lstm.LSTM`, `lstm.GRU` or `lstm.RNN`, not this.
#[pyclass(module = "lstm._lstm", name = "Recurrent", frozen)]
pub struct PyRecurrent {
    cfg: RecurrentConfig,
    /// The parameters' names and shapes, in PyTorch's order (fixed at construction).
    shapes: Vec<(String, Vec<usize>)>,
    /// This layer's number, to tell a tape filled by another layer.
    id: usize,
    inner: Mutex<Inner>,
}

impl PyRecurrent {
    /// The arrays of a dict of parameters, every name and shape checked against the layer's
    /// (with `strict`, every one of the layer's given).
    fn checked_params<'py>(
        &self,
        params: &Bound<'py, PyDict>,
        strict: bool,
    ) -> PyResult<Vec<(String, PyReadonlyArrayDyn<'py, f32>)>> {
        let mut arrays = Vec::with_capacity(params.len());
        for (k, v) in params.iter() {
            let name: String = k
                .extract()
                .map_err(|_| value_err(format!("parameter names must be strings, got {k}")))?;
            let arr = f32_array(&v, &name)?;
            arrays.push((name, arr));
        }
        // sets: a stack of thousands of layers has thousands of names
        let known_names: std::collections::HashMap<&str, &[usize]> = self
            .shapes
            .iter()
            .map(|(k, shape)| (k.as_str(), shape.as_slice()))
            .collect();
        let given: std::collections::HashSet<&str> =
            arrays.iter().map(|(n, _)| n.as_str()).collect();
        let unexpected: Vec<&str> = arrays
            .iter()
            .map(|(n, _)| n.as_str())
            .filter(|n| !known_names.contains_key(n))
            .collect();
        let missing: Vec<&str> = self
            .shapes
            .iter()
            .map(|(k, _)| k.as_str())
            .filter(|k| strict && !given.contains(k))
            .collect();
        if !unexpected.is_empty() || !missing.is_empty() {
            return Err(value_err(format!(
                "state_dict does not fit the layer: missing keys {missing:?}, unexpected keys \
                 {unexpected:?}"
            )));
        }
        for (name, arr) in &arrays {
            let shape = known_names[name.as_str()];
            if arr.shape() != shape {
                return Err(value_err(format!(
                    "parameter {name} has shape {:?}, the layer's is {shape:?}",
                    arr.shape()
                )));
            }
        }
        Ok(arrays)
    }

    /// Runs `f` on the cache of `tape`, or on the layer's own, with the layer locked.
    fn with_tape<R>(
        &self,
        tape: Option<&Tape>,
        f: impl FnOnce(&mut Inner, Option<&mut TapeInner>) -> R,
    ) -> R {
        let mut inner = lock(&self.inner);
        match tape {
            Some(t) => {
                let mut t = lock(&t.inner);
                f(&mut inner, Some(&mut t))
            }
            None => f(&mut inner, None),
        }
    }

    fn state_shapes(&self, b: usize) -> ([usize; 3], [usize; 3]) {
        let c = &self.cfg;
        let dl = c.directions() * c.num_layers;
        ([dl, b, c.hidden_out()], [dl, b, c.hidden_size])
    }

    fn out_shape(&self, t: usize, b: usize) -> [usize; 3] {
        let w = self.cfg.output_size();
        if self.cfg.batch_first {
            [b, t, w]
        } else {
            [t, b, w]
        }
    }
}

/// A parameter's name, shape and values, read without the GIL.
type ParamView<'a> = (&'a str, Vec<usize>, &'a [f32]);

/// Checked parameter arrays ([`PyRecurrent::checked_params`]) as views a computation without
/// the GIL may read.
fn param_views<'a>(
    arrays: &'a [(String, PyReadonlyArrayDyn<'_, f32>)],
) -> PyResult<Vec<ParamView<'a>>> {
    arrays
        .iter()
        .map(|(name, arr)| {
            let data = arr.as_slice().map_err(|e| value_err(e.to_string()))?;
            Ok((name.as_str(), arr.shape().to_vec(), data))
        })
        .collect()
}

/// Writes parameters into the layer: a new version of its weights (a forward pass taped
/// before it cannot be differentiated with them).
fn write_params(inner: &mut Inner, params: &[ParamView<'_>]) -> lstm::Result<()> {
    for (name, shape, data) in params {
        inner.store.set(name, shape, data)?;
    }
    inner.version += 1;
    Ok(())
}

/// The sizes of a forward pass, from the input's shape.
fn input_dims(cfg: &RecurrentConfig, shape: &[usize]) -> PyResult<(usize, usize)> {
    let layout = if cfg.batch_first {
        "(B, T, I)"
    } else {
        "(T, B, I)"
    };
    if shape.len() != 3 {
        return Err(value_err(format!(
            "input must be 3-D {layout}, got shape {shape:?}"
        )));
    }
    if shape[2] != cfg.input_size {
        return Err(value_err(format!(
            "input has {} features per step (shape {shape:?}), the layer's input_size is {}",
            shape[2], cfg.input_size
        )));
    }
    let (t, b) = if cfg.batch_first {
        (shape[1], shape[0])
    } else {
        (shape[0], shape[1])
    };
    if t == 0 || b == 0 {
        return Err(value_err(format!(
            "input must have at least one step and one sequence, got shape {shape:?}"
        )));
    }
    Ok((t, b))
}

#[pymethods]
impl PyRecurrent {
    /// A stack initialised with PyTorch's scheme (uniform in `±1/sqrt(hidden_size)`) from
    /// `seed`. `mode`: `LSTM`, `GRU`, `RNN_TANH`, `RNN_RELU`; `variant` (LSTM only):
    /// `standard`, `peephole`, `coupled`, `peephole+coupled`.
    #[new]
    #[pyo3(signature = (mode, input_size, hidden_size, num_layers, bias, batch_first, dropout,
                        bidirectional, proj_size, seed, variant = "standard"))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        mode: &str,
        input_size: usize,
        hidden_size: usize,
        num_layers: usize,
        bias: bool,
        batch_first: bool,
        dropout: f32,
        bidirectional: bool,
        proj_size: usize,
        seed: u64,
        variant: &str,
    ) -> PyResult<Self> {
        let mode = Mode::parse(mode).ok_or_else(|| {
            value_err(format!(
                "unknown mode {mode:?} (expected LSTM, GRU, RNN_TANH or RNN_RELU)"
            ))
        })?;
        let (peephole, coupled) = match variant {
            "standard" => (false, false),
            "peephole" => (true, false),
            "coupled" => (false, true),
            "peephole+coupled" | "coupled+peephole" => (true, true),
            v => {
                return Err(value_err(format!(
                    "unknown variant {v:?} (expected standard, peephole, coupled or \
                     peephole+coupled)"
                )))
            }
        };
        let cfg = RecurrentConfig {
            mode,
            peephole,
            coupled,
            input_size,
            hidden_size,
            num_layers,
            proj_size,
            bias,
            batch_first,
            bidirectional,
            dropout,
            init: InitScheme::PytorchUniform,
            ..Default::default()
        };
        cfg.validate().map_err(lib_err)?;
        // the values and their gradients
        fits(cfg.num_params() as u128 * 8, "a layer of this size")?;
        let mut store = ParamStore::default();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let rnn = Recurrent::new(cfg.clone(), &mut store, "", &mut rng).map_err(lib_err)?;
        static NEXT_ID: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1);
        let shapes = store
            .tensors()
            .iter()
            .map(|t| (t.name.clone(), t.shape.clone()))
            .collect();
        Ok(PyRecurrent {
            cfg,
            shapes,
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            inner: Mutex::new(Inner {
                rnn,
                store,
                rng,
                tape: TapeInner::default(),
                compute: [0.0; 2],
                version: 0,
            }),
        })
    }

    /// The configuration as a dict of the constructor's arguments (`mode` as the library
    /// spells it).
    fn config<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let c = &self.cfg;
        let d = PyDict::new(py);
        d.set_item("mode", format!("{:?}", c.mode))?;
        d.set_item("input_size", c.input_size)?;
        d.set_item("hidden_size", c.hidden_size)?;
        d.set_item("num_layers", c.num_layers)?;
        d.set_item("bias", c.bias)?;
        d.set_item("batch_first", c.batch_first)?;
        d.set_item("dropout", c.dropout)?;
        d.set_item("bidirectional", c.bidirectional)?;
        d.set_item("proj_size", c.proj_size)?;
        d.set_item("peephole", c.peephole)?;
        d.set_item("coupled", c.coupled)?;
        Ok(d)
    }

    /// The parameters' names and shapes, in registration order (PyTorch's order).
    fn param_shapes(&self) -> Vec<(String, Vec<usize>)> {
        self.shapes.clone()
    }

    /// Every parameter (`grads=False`) or its gradient (`grads=True`), as a dict of new
    /// float32 arrays under PyTorch's names.
    #[pyo3(signature = (grads = false))]
    fn tensors<'py>(&self, py: Python<'py>, grads: bool) -> PyResult<Bound<'py, PyDict>> {
        let parts: Vec<(String, Vec<usize>, Vec<f32>)> = {
            let inner = lock(&self.inner);
            let src = if grads {
                &inner.store.grads
            } else {
                &inner.store.values
            };
            inner
                .store
                .tensors()
                .iter()
                .map(|t| (t.name.clone(), t.shape.clone(), src[t.range()].to_vec()))
                .collect()
        };
        let d = PyDict::new(py);
        for (name, shape, v) in parts {
            d.set_item(name, to_numpy(py, v, &shape)?)?;
        }
        Ok(d)
    }

    /// Overwrites parameters from a dict of float32 arrays. With `strict`, the names must be
    /// exactly the layer's; otherwise a subset. Every name and shape is checked before any is
    /// written.
    #[pyo3(signature = (params, strict = true))]
    fn set_tensors(&self, params: &Bound<'_, PyDict>, strict: bool) -> PyResult<()> {
        let arrays = self.checked_params(params, strict)?;
        let views = param_views(&arrays)?;
        let mut inner = lock(&self.inner);
        write_params(&mut inner, &views).map_err(lib_err)
    }

    /// Sets every parameter gradient to zero.
    fn zero_grad(&self) {
        lock(&self.inner).store.zero_grad();
    }

    /// Runs the stack over `x` `(T, B, I)` (`(B, T, I)` when batch-first), from the initial
    /// states `h0` `(D·L, B, H_out)` and `c0` `(D·L, B, H)` (LSTM) or zeros, with optional
    /// `lengths` `(B)`, each in `1..=T`. With `train`, dropout between layers is drawn.
    /// Returns `(output, h_n, c_n)`: `output` `(T, B, D·H_out)` (or batch-first) with zeros
    /// past each sequence's length, the final states, `c_n` `None` for GRU and RNN. The
    /// forward pass is kept in `tape`, or in the layer's own when `tape` is `None`, for
    /// `backward`. `params` (every parameter, as `set_tensors` takes them) are written
    /// first, under the same lock as the pass (`lstm.torch` gives its module's parameters
    /// at every call); `seed` draws this pass's dropout from a generator of its own instead
    /// of the layer's (`lstm.torch` draws it from torch's, which `torch.manual_seed` and
    /// checkpointing's replay set).
    #[pyo3(signature = (x, h0 = None, c0 = None, lengths = None, train = false, tape = None,
                        params = None, seed = None))]
    #[allow(clippy::too_many_arguments, clippy::type_complexity)]
    fn forward<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        h0: Option<&Bound<'py, PyAny>>,
        c0: Option<&Bound<'py, PyAny>>,
        lengths: Option<Vec<i64>>,
        train: bool,
        tape: Option<&Bound<'py, Tape>>,
        params: Option<&Bound<'py, PyDict>>,
        seed: Option<u64>,
    ) -> PyResult<(
        Bound<'py, PyAny>,
        Bound<'py, PyAny>,
        Option<Bound<'py, PyAny>>,
    )> {
        let cfg = &self.cfg;
        let lstm = cfg.mode == Mode::Lstm;
        let xa = f32_array(x, "input")?;
        let (t, b) = input_dims(cfg, xa.shape())?;
        fits(
            activation_bytes(cfg, t, b),
            "the forward pass of this input",
        )?;
        let (h_shape, c_shape) = self.state_shapes(b);
        let h0a = h0.map(|a| f32_array(a, "h0")).transpose()?;
        let c0a = c0.map(|a| f32_array(a, "c0")).transpose()?;
        if let Some(a) = &h0a {
            check_shape("h0", a.shape(), &h_shape)?;
        }
        if let Some(a) = &c0a {
            if !lstm {
                return Err(value_err("c0 is for LSTM only"));
            }
            check_shape("c0", a.shape(), &c_shape)?;
        }
        let lengths: Option<Vec<usize>> = match lengths {
            None => None,
            Some(l) => {
                if l.len() != b {
                    return Err(value_err(format!(
                        "lengths has {} entries for a batch of {b}",
                        l.len()
                    )));
                }
                if let Some(bad) = l.iter().find(|&&v| v < 1 || v as usize > t) {
                    return Err(value_err(format!(
                        "sequence length {bad} is outside 1..={t}"
                    )));
                }
                Some(l.iter().map(|&v| v as usize).collect())
            }
        };
        // the states the library takes: given ones, zeros for a missing half
        let init: Option<RecurrentState> = if h0a.is_none() && c0a.is_none() {
            None
        } else {
            let h = match &h0a {
                Some(a) => a.as_slice().map_err(|e| value_err(e.to_string()))?.to_vec(),
                None => vec![0.0; h_shape.iter().product()],
            };
            let c = match (&c0a, lstm) {
                (Some(a), _) => a.as_slice().map_err(|e| value_err(e.to_string()))?.to_vec(),
                (None, true) => vec![0.0; c_shape.iter().product()],
                (None, false) => Vec::new(),
            };
            Some(RecurrentState { h, c })
        };
        let xs = xa.as_slice().map_err(|e| value_err(e.to_string()))?;
        let arrays = params.map(|p| self.checked_params(p, true)).transpose()?;
        let views = arrays.as_deref().map(param_views).transpose()?;
        let tape_ref = tape.map(|t| t.get());
        let (out, h_n, c_n) = py
            .detach(|| {
                self.with_tape(tape_ref, |inner, tape| {
                    if let Some(v) = &views {
                        write_params(inner, v)?;
                    }
                    let Inner {
                        rnn,
                        store,
                        rng,
                        tape: own,
                        compute,
                        version,
                    } = inner;
                    let tape = tape.unwrap_or(own);
                    tape.shape = None;
                    let mut own_rng = seed.map(ChaCha8Rng::seed_from_u64);
                    let mut batch = SequenceBatch::new(Input::Dense(xs), t, b);
                    if let Some(l) = &lengths {
                        batch = batch.with_lengths(l);
                    }
                    if let Some(s) = &init {
                        batch = batch.with_initial_state(s);
                    }
                    if train {
                        batch = batch.with_dropout_rng(own_rng.as_mut().unwrap_or(rng));
                    }
                    tape.cache.set_input_grad(true);
                    let start = Instant::now();
                    crate::pool::run(|| rnn.forward(&store.values, batch, &mut tape.cache))?;
                    compute[0] = start.elapsed().as_secs_f64();
                    tape.shape = Some((t, b));
                    tape.owner = self.id;
                    tape.version = *version;
                    let s = tape.cache.final_state();
                    Ok::<_, lstm::Error>((tape.cache.output().to_vec(), s.h.clone(), s.c.clone()))
                })
            })
            .map_err(lib_err)?;
        let out = to_numpy(py, out, &self.out_shape(t, b))?;
        let h_n = to_numpy(py, h_n, &h_shape)?;
        let c_n = if lstm {
            Some(to_numpy(py, c_n, &c_shape)?)
        } else {
            None
        };
        Ok((out, h_n, c_n))
    }

    /// Backpropagation through time for the forward pass held in `tape` (or the layer's own):
    /// `d_output` has the output's shape (its padded positions are not read), `d_h_n` and
    /// `d_c_n` the final states' (`None` = zero). Adds each parameter's gradient into the
    /// layer's gradients and returns `(d_x, d_h0, d_c0)`, `d_c0` `None` for GRU and RNN.
    ///
    /// `params`: the parameters the forward pass ran with, written first under the same lock,
    /// in place of the check that they did not change since (`lstm.torch`: a graph may hold
    /// passes of other parameters, `torch.func.functional_call`'s). With `fresh`, the
    /// gradients are this pass's alone, returned as a dict in a fourth item, and the layer's
    /// own are left as they were (from one locked call: another thread's pass cannot mix in).
    #[pyo3(signature = (d_output, d_h_n = None, d_c_n = None, tape = None, params = None,
                        fresh = false))]
    #[allow(clippy::type_complexity, clippy::too_many_arguments)]
    fn backward<'py>(
        &self,
        py: Python<'py>,
        d_output: &Bound<'py, PyAny>,
        d_h_n: Option<&Bound<'py, PyAny>>,
        d_c_n: Option<&Bound<'py, PyAny>>,
        tape: Option<&Bound<'py, Tape>>,
        params: Option<&Bound<'py, PyDict>>,
        fresh: bool,
    ) -> PyResult<(
        Bound<'py, PyAny>,
        Bound<'py, PyAny>,
        Option<Bound<'py, PyAny>>,
        Option<Bound<'py, PyDict>>,
    )> {
        let lstm = self.cfg.mode == Mode::Lstm;
        let tape_ref = tape.map(|t| t.get());
        let shape = self.with_tape(tape_ref, |inner, tape| {
            tape.unwrap_or(&mut inner.tape).shape
        });
        let (t, b) = shape.ok_or_else(|| value_err("backward() needs a forward() first"))?;
        let (h_shape, c_shape) = self.state_shapes(b);
        let da = f32_array(d_output, "d_output")?;
        check_shape("d_output", da.shape(), &self.out_shape(t, b))?;
        let dha = d_h_n.map(|a| f32_array(a, "d_h_n")).transpose()?;
        let dca = d_c_n.map(|a| f32_array(a, "d_c_n")).transpose()?;
        if let Some(a) = &dha {
            check_shape("d_h_n", a.shape(), &h_shape)?;
        }
        if let Some(a) = &dca {
            if !lstm {
                return Err(value_err("d_c_n is for LSTM only"));
            }
            check_shape("d_c_n", a.shape(), &c_shape)?;
        }
        let d_final: Option<RecurrentState> = if dha.is_none() && dca.is_none() {
            None
        } else {
            Some(RecurrentState {
                h: match &dha {
                    Some(a) => a.as_slice().map_err(|e| value_err(e.to_string()))?.to_vec(),
                    None => vec![0.0; h_shape.iter().product()],
                },
                c: match &dca {
                    Some(a) => a.as_slice().map_err(|e| value_err(e.to_string()))?.to_vec(),
                    None => Vec::new(),
                },
            })
        };
        let ds = da.as_slice().map_err(|e| value_err(e.to_string()))?;
        let arrays = params.map(|p| self.checked_params(p, true)).transpose()?;
        let views = arrays.as_deref().map(param_views).transpose()?;
        let (dx, dh0, dc0, fresh_grads) = py
            .detach(|| {
                self.with_tape(tape_ref, |inner, tape| {
                    // the layer still holds them when nothing was written since the pass (each
                    // write makes a new version): not copied again
                    let taped = tape.as_ref().map_or(inner.tape.version, |t| t.version);
                    if let Some(v) = &views {
                        if taped != inner.version {
                            write_params(inner, v)?;
                        }
                    }
                    let Inner {
                        rnn,
                        store,
                        tape: own,
                        compute,
                        version,
                        ..
                    } = inner;
                    let tape = tape.unwrap_or(own);
                    if tape.owner != self.id {
                        return Err(lstm::Error::Config(
                            "this tape holds the forward pass of another layer; give backward() \
                             the tape of this layer's forward()"
                                .into(),
                        ));
                    }
                    if tape.shape != Some((t, b)) {
                        return Err(lstm::Error::Config(
                            "the forward pass changed under this backward() (another thread \
                             ran forward on the same layer or tape)"
                                .into(),
                        ));
                    }
                    if views.is_none() && tape.version != *version {
                        return Err(lstm::Error::Config(
                            "the parameters changed (load_state_dict) since this forward pass, \
                             whose gradient needs the weights it ran with: run forward again"
                                .into(),
                        ));
                    }
                    let start = Instant::now();
                    // this pass's gradients in a buffer of their own, the layer's kept
                    let mut own_grads = fresh.then(|| vec![0.0; store.grads.len()]);
                    crate::pool::run(|| {
                        rnn.backward(
                            &store.values,
                            own_grads.as_mut().unwrap_or(&mut store.grads),
                            &mut tape.cache,
                            ds,
                            d_final.as_ref(),
                        )
                    })?;
                    compute[1] = start.elapsed().as_secs_f64();
                    let s = tape.cache.d_initial_state();
                    let grads = own_grads.map(|g| {
                        store
                            .tensors()
                            .iter()
                            .map(|t| (t.name.clone(), t.shape.clone(), g[t.range()].to_vec()))
                            .collect::<Vec<_>>()
                    });
                    Ok((
                        tape.cache.d_input().to_vec(),
                        s.h.clone(),
                        s.c.clone(),
                        grads,
                    ))
                })
            })
            .map_err(lib_err)?;
        let x_shape = if self.cfg.batch_first {
            [b, t, self.cfg.input_size]
        } else {
            [t, b, self.cfg.input_size]
        };
        let dx = to_numpy(py, dx, &x_shape)?;
        let dh0 = to_numpy(py, dh0, &h_shape)?;
        let dc0 = if lstm {
            Some(to_numpy(py, dc0, &c_shape)?)
        } else {
            None
        };
        let grads = match fresh_grads {
            Some(parts) => {
                let d = PyDict::new(py);
                for (name, shape, v) in parts {
                    d.set_item(name, to_numpy(py, v, &shape)?)?;
                }
                Some(d)
            }
            None => None,
        };
        Ok((dx, dh0, dc0, grads))
    }

    /// For the benchmark: the seconds the library's own forward and backward passes took in
    /// the last `forward` and `backward` calls, `(forward, backward)`: the rest of a call's
    /// time is the Python side's (checks, copies into numpy arrays, the call itself).
    fn last_compute_seconds(&self) -> (f64, f64) {
        let c = lock(&self.inner).compute;
        (c[0], c[1])
    }

    /// For the benchmark: times `reps` rounds of `zero_grad`, forward (evaluation, zero
    /// states) and backward of `d_output` on the layer's own tape, in Rust, with the GIL
    /// released; returns each round's seconds. The same work as one `forward` plus one
    /// `backward` call from Python, without the Python side.
    fn time_forward_backward(
        &self,
        py: Python<'_>,
        x: &Bound<'_, PyAny>,
        d_output: &Bound<'_, PyAny>,
        reps: usize,
    ) -> PyResult<Vec<f64>> {
        if reps > MAX_REPS {
            return Err(value_err(format!(
                "reps must be at most {MAX_REPS}, got {reps}"
            )));
        }
        let xa = f32_array(x, "input")?;
        let (t, b) = input_dims(&self.cfg, xa.shape())?;
        fits(
            activation_bytes(&self.cfg, t, b),
            "the forward pass of this input",
        )?;
        let da = f32_array(d_output, "d_output")?;
        check_shape("d_output", da.shape(), &self.out_shape(t, b))?;
        let xs = xa.as_slice().map_err(|e| value_err(e.to_string()))?;
        let ds = da.as_slice().map_err(|e| value_err(e.to_string()))?;
        py.detach(|| {
            let mut inner = lock(&self.inner);
            let Inner {
                rnn,
                store,
                tape,
                version,
                ..
            } = &mut *inner;
            crate::pool::run(|| {
                tape.cache.set_input_grad(true);
                let mut times = Vec::with_capacity(reps);
                for _ in 0..reps {
                    let start = Instant::now();
                    store.zero_grad();
                    rnn.forward(
                        &store.values,
                        SequenceBatch::new(Input::Dense(xs), t, b),
                        &mut tape.cache,
                    )?;
                    rnn.backward(&store.values, &mut store.grads, &mut tape.cache, ds, None)?;
                    times.push(start.elapsed().as_secs_f64());
                }
                tape.shape = Some((t, b));
                tape.owner = self.id;
                tape.version = *version;
                Ok(times)
            })
        })
        .map_err(lib_err)
    }
}

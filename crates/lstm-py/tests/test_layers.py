"""lstm.LSTM, GRU and RNN from Python: shapes, results and gradients against a naive float64
numpy reference written here (central differences for the gradients), lengths, directions,
projection, state_dict, bad inputs, threads."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import lstm

# ---- the reference: PyTorch's equations, one sequence and one step at a time, in float64


def sigmoid(v: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-v))


def cell(mode, p, sfx, x, h, c):
    """One step of one sequence: returns (h', c')."""
    w_ih, w_hh = p["weight_ih" + sfx], p["weight_hh" + sfx]
    gi = w_ih @ x + p.get("bias_ih" + sfx, 0.0)
    gh = w_hh @ h + p.get("bias_hh" + sfx, 0.0)
    if mode == "LSTM":
        i, f, g, o = np.split(gi + gh, 4)
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        h = sigmoid(o) * np.tanh(c)
        if "weight_hr" + sfx in p:
            h = p["weight_hr" + sfx] @ h
        return h, c
    if mode == "GRU":
        ir, iz, in_ = np.split(gi, 3)
        hr, hz, hn = np.split(gh, 3)
        r, z = sigmoid(ir + hr), sigmoid(iz + hz)
        n = np.tanh(in_ + r * hn)
        return (1 - z) * n + z * h, c
    pre = gi + gh
    return (np.tanh(pre) if mode == "RNN_TANH" else np.maximum(pre, 0.0)), c


def reference(layer, p, x, h0=None, c0=None, lengths=None):
    """(output, h_n, c_n) of the stack in float64; x in the layer's layout."""
    mode, nl, dn = layer.mode, layer.num_layers, layer.num_directions
    h, hout = layer.hidden_size, layer.hidden_out
    x = np.asarray(x, np.float64)
    if layer.batch_first:
        x = x.transpose(1, 0, 2)
    t_n, b_n = x.shape[:2]
    lengths = [t_n] * b_n if lengths is None else list(lengths)
    h0 = np.zeros((dn * nl, b_n, hout)) if h0 is None else np.asarray(h0, np.float64)
    c0 = np.zeros((dn * nl, b_n, h)) if c0 is None else np.asarray(c0, np.float64)
    h_n, c_n = np.zeros_like(h0), np.zeros_like(c0)
    inp = x
    for layer_k in range(nl):
        outs = []
        for d in range(dn):
            sfx = f"_l{layer_k}" + ("_reverse" if d else "")
            k = layer_k * dn + d
            out = np.zeros((t_n, b_n, hout))
            for b in range(b_n):
                hb, cb = h0[k, b], c0[k, b]
                steps = range(lengths[b]) if d == 0 else reversed(range(lengths[b]))
                for t in steps:
                    hb, cb = cell(mode, p, sfx, inp[t, b], hb, cb)
                    out[t, b] = hb
                h_n[k, b], c_n[k, b] = hb, cb
            outs.append(out)
        inp = np.concatenate(outs, axis=-1)
    if layer.batch_first:
        inp = inp.transpose(1, 0, 2)
    return inp, h_n, c_n


def params64(layer):
    return {k: v.astype(np.float64) for k, v in layer.state_dict().items()}


def rng_arrays(seed, *shapes):
    r = np.random.default_rng(seed)
    return [r.standard_normal(s).astype(np.float32) for s in shapes]


def make(kind, **kw):
    seed = kw.pop("seed", 3)
    if kind == "LSTM":
        return lstm.LSTM(seed=seed, **kw)
    if kind == "GRU":
        return lstm.GRU(seed=seed, **kw)
    return lstm.RNN(seed=seed, nonlinearity=kind, **kw)


def run(layer, x, h0=None, c0=None, lengths=None):
    """The layer's (output, h_n, c_n) whatever its kind."""
    if layer.mode == "LSTM":
        hx = None if h0 is None else (h0, c0)
        out, (h_n, c_n) = layer(x, hx, lengths=lengths)
        return out, h_n, c_n
    out, h_n = layer(x, h0, lengths=lengths)
    return out, h_n, None


CASES = [
    ("LSTM", dict(input_size=3, hidden_size=4)),
    ("LSTM", dict(input_size=3, hidden_size=4, num_layers=2, batch_first=True)),
    ("LSTM", dict(input_size=3, hidden_size=5, num_layers=2, bidirectional=True)),
    ("LSTM", dict(input_size=3, hidden_size=5, proj_size=2, bidirectional=True)),
    ("LSTM", dict(input_size=2, hidden_size=3, bias=False, num_layers=2, proj_size=2)),
    ("GRU", dict(input_size=3, hidden_size=4, num_layers=2, bidirectional=True)),
    ("GRU", dict(input_size=3, hidden_size=4, batch_first=True, bias=False)),
    ("tanh", dict(input_size=3, hidden_size=4, num_layers=2)),
    ("relu", dict(input_size=3, hidden_size=4, bidirectional=True, batch_first=True)),
]


def case_inputs(layer, t=5, b=3, states=True, seed=0):
    dl = layer.num_directions * layer.num_layers
    shape = (b, t, layer.input_size) if layer.batch_first else (t, b, layer.input_size)
    x, h0, c0 = rng_arrays(
        seed, shape, (dl, b, layer.hidden_out), (dl, b, layer.hidden_size)
    )
    if not states:
        return x, None, None
    return x, h0, (c0 if layer.mode == "LSTM" else None)


# ---- shapes and results


@pytest.mark.parametrize("kind,kw", CASES)
def test_shapes_and_results_equal_the_reference(kind, kw):
    layer = make(kind, **kw)
    for states in (False, True):
        x, h0, c0 = case_inputs(layer, states=states)
        out, h_n, c_n = run(layer, x, h0, c0)
        t, b = (x.shape[1], x.shape[0]) if layer.batch_first else x.shape[:2]
        dl, w = layer.num_directions * layer.num_layers, layer.num_directions * layer.hidden_out
        assert out.shape == ((b, t, w) if layer.batch_first else (t, b, w))
        assert out.dtype == np.float32 and h_n.shape == (dl, b, layer.hidden_out)
        want, want_h, want_c = reference(layer, params64(layer), x, h0, c0 if states else None)
        np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(h_n, want_h, rtol=1e-5, atol=1e-5)
        if layer.mode == "LSTM":
            assert c_n.shape == (dl, b, layer.hidden_size)
            np.testing.assert_allclose(c_n, want_c, rtol=1e-5, atol=1e-5)
        else:
            assert c_n is None


@pytest.mark.parametrize("kind,kw", [CASES[2], CASES[3], CASES[5], CASES[8]])
def test_lengths_zero_padding_and_take_the_last_real_step(kind, kw):
    layer = make(kind, **kw)
    x, h0, c0 = case_inputs(layer, t=6, b=4)
    lengths = [3, 6, 1, 5]
    out, h_n, c_n = run(layer, x, h0, c0, lengths)
    want, want_h, want_c = reference(layer, params64(layer), x, h0, c0, lengths)
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(h_n, want_h, rtol=1e-5, atol=1e-5)
    if c_n is not None:
        np.testing.assert_allclose(c_n, want_c, rtol=1e-5, atol=1e-5)
    for b, n in enumerate(lengths):
        pad = out[b, n:] if layer.batch_first else out[n:, b]
        assert not pad.any(), "padded positions must be zero"


def test_unbatched_input_as_torch_takes_it():
    layer = lstm.LSTM(3, 4, num_layers=2, bidirectional=True, seed=1)
    (x,) = rng_arrays(1, (5, 3))
    h0, c0 = rng_arrays(2, (4, 4), (4, 4))
    out, (h_n, c_n) = layer(x, (h0, c0))
    assert out.shape == (5, 8) and h_n.shape == (4, 4) and c_n.shape == (4, 4)
    d_x = layer.backward(np.ones_like(out), np.ones_like(h_n), np.ones_like(c_n))
    assert d_x.shape == x.shape
    assert layer.hx_grad[0].shape == (4, 4) and layer.hx_grad[1].shape == (4, 4)
    out_b, (h_b, _) = layer(x[:, None], (h0[:, None], c0[:, None]))
    np.testing.assert_array_equal(out, out_b[:, 0])
    np.testing.assert_array_equal(h_n, h_b[:, 0])
    d_x_b = layer.backward(np.ones_like(out_b), np.ones_like(h_b), np.ones_like(h_b))
    np.testing.assert_array_equal(d_x, d_x_b[:, 0])
    bf = lstm.GRU(3, 4, batch_first=True, seed=1)
    out, h_n = bf(x)
    assert out.shape == (5, 4) and h_n.shape == (1, 4)
    np.testing.assert_array_equal(out, bf(x[None])[0][0])


def test_repr_and_sizes():
    layer = lstm.LSTM(10, 20, num_layers=2, proj_size=5, seed=0)
    assert repr(layer) == "LSTM(10, 20, num_layers=2, proj_size=5)"
    shapes = dict(layer.param_shapes())
    assert shapes["weight_ih_l0"] == (80, 10) and shapes["weight_hh_l0"] == (80, 5)
    assert shapes["weight_ih_l1"] == (80, 5) and shapes["weight_hr_l1"] == (5, 20)
    assert layer.num_params() == sum(v.size for v in layer.parameters())
    names = [n for n, _ in layer.named_parameters()]
    assert names[:5] == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "weight_hr_l0"]
    # PyTorch's initialisation scheme: uniform in ±1/sqrt(H); same seed, same weights
    for v in layer.parameters():
        assert np.abs(v).max() <= 1 / np.sqrt(20) + 1e-7
    again = lstm.LSTM(10, 20, num_layers=2, proj_size=5, seed=0)
    for (_, a), (_, b) in zip(layer.named_parameters(), again.named_parameters()):
        np.testing.assert_array_equal(a, b)


# ---- gradients: central differences of the float64 reference


def numeric_grads(layer, p, x, h0, c0, lengths, dout, dh, dc, eps=1e-6):
    """d loss / d (x, h0, c0, each parameter) with loss = sum(out·dout) + sum(h_n·dh) +
    sum(c_n·dc), by central differences of the reference."""

    def loss(p, x, h0, c0):
        out, h_n, c_n = reference(layer, p, x, h0, c0, lengths)
        value = (out * dout).sum() + (h_n * dh).sum()
        return value + ((c_n * dc).sum() if layer.mode == "LSTM" else 0.0)

    def diff(arr, f):
        g = np.zeros_like(arr)
        for i in np.ndindex(arr.shape):
            keep = arr[i]
            arr[i] = keep + eps
            up = f()
            arr[i] = keep - eps
            down = f()
            arr[i] = keep
            g[i] = (up - down) / (2 * eps)
        return g

    x, h0, c0 = (np.asarray(a, np.float64).copy() for a in (x, h0, c0))
    grads = {
        "x": diff(x, lambda: loss(p, x, h0, c0)),
        "h0": diff(h0, lambda: loss(p, x, h0, c0)),
        "c0": diff(c0, lambda: loss(p, x, h0, c0)),
    }
    for name in p:
        grads[name] = diff(p[name], lambda: loss(p, x, h0, c0))
    return grads


GRAD_CASES = [
    ("LSTM", dict(input_size=2, hidden_size=3, num_layers=2), None),
    ("LSTM", dict(input_size=2, hidden_size=3, bidirectional=True, batch_first=True), [4, 2]),
    ("LSTM", dict(input_size=2, hidden_size=4, proj_size=2, num_layers=2, bidirectional=True), [2, 4]),
    ("GRU", dict(input_size=2, hidden_size=3, num_layers=2, bidirectional=True), [4, 3]),
    ("tanh", dict(input_size=2, hidden_size=3, bidirectional=True), [1, 4]),
    ("relu", dict(input_size=2, hidden_size=3, num_layers=2, bias=False), None),
]


@pytest.mark.parametrize("kind,kw,lengths", GRAD_CASES)
def test_gradients_equal_central_differences(kind, kw, lengths):
    layer = make(kind, **kw)
    x, h0, c0 = case_inputs(layer, t=4, b=2, seed=5)
    out, h_n, c_n = run(layer, x, h0, c0, lengths)
    dout, dh, dc = rng_arrays(7, out.shape, h_n.shape, (c_n if c_n is not None else h_n).shape)
    if lengths is not None:  # the padded positions' gradient is not read: make it garbage
        for b, n in enumerate(lengths):
            (dout[b, n:] if layer.batch_first else dout[n:, b])[...] = 1e3
    layer.zero_grad()
    if layer.mode == "LSTM":
        d_x = layer.backward(dout, dh, dc)
        d_h0, d_c0 = layer.hx_grad
    else:
        d_x = layer.backward(dout, dh)
        d_h0, d_c0 = layer.hx_grad, None
    if lengths is not None:
        for b, n in enumerate(lengths):
            (dout[b, n:] if layer.batch_first else dout[n:, b])[...] = 0.0
    if c0 is None:
        c0 = np.zeros((layer.num_directions * layer.num_layers, 2, layer.hidden_size))
    want = numeric_grads(layer, params64(layer), x, h0, c0, lengths, dout, dh, dc)
    tol = dict(rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(d_x, want["x"], **tol, err_msg="d_x")
    np.testing.assert_allclose(d_h0, want["h0"], **tol, err_msg="d_h0")
    if d_c0 is not None:
        np.testing.assert_allclose(d_c0, want["c0"], **tol, err_msg="d_c0")
    grads = layer.grad_dict()
    assert set(grads) == set(layer.state_dict())
    for name, g in grads.items():
        np.testing.assert_allclose(g, want[name], **tol, err_msg=name)
        assert np.abs(want[name]).max() > 0 or name.startswith("weight_hh"), name


def test_gradients_accumulate_until_zero_grad():
    layer = lstm.LSTM(3, 4, seed=2)
    x, _, _ = case_inputs(layer)
    out, _ = layer(x)
    layer.backward(np.ones_like(out))
    once = layer.grad_dict()
    out, _ = layer(x)
    layer.backward(np.ones_like(out))
    for name, g in layer.grad_dict().items():
        np.testing.assert_allclose(g, 2 * once[name], rtol=1e-6, atol=1e-7)
    layer.zero_grad()
    assert not any(g.any() for g in layer.grad_dict().values())


# ---- parameters, modes


def test_state_dict_round_trip_and_checks():
    a, b = lstm.LSTM(3, 4, num_layers=2, seed=1), lstm.LSTM(3, 4, num_layers=2, seed=2)
    x, _, _ = case_inputs(a)
    b.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(a(x)[0], b(x)[0])
    # float64 and lists are converted (as torch's load_state_dict copies into float32)
    sd = {k: v.astype(np.float64) for k, v in a.state_dict().items()}
    sd["bias_hh_l1"] = sd["bias_hh_l1"].tolist()
    b.load_state_dict(sd)
    before = b.state_dict()
    bad = dict(sd)
    bad["weight_ih_l0"] = np.zeros((16, 4), np.float32)
    with pytest.raises(ValueError, match=r"weight_ih_l0 has shape \[16, 4\]"):
        b.load_state_dict(bad)
    missing = {k: v for k, v in sd.items() if k != "bias_ih_l1"}
    with pytest.raises(ValueError, match="missing keys.*bias_ih_l1"):
        b.load_state_dict(missing)
    with pytest.raises(ValueError, match="unexpected keys.*lstm.weight"):
        b.load_state_dict({**sd, "lstm.weight": np.zeros(3, np.float32)})
    for k, v in b.state_dict().items():  # nothing was written by the failed loads
        np.testing.assert_array_equal(v, before[k])
    b.load_state_dict({"bias_ih_l1": np.ones(16, np.float32)}, strict=False)
    assert (b.state_dict()["bias_ih_l1"] == 1).all()
    # the state_dict is a copy
    b.state_dict()["bias_ih_l1"][:] = 5
    assert (b.state_dict()["bias_ih_l1"] == 1).all()


def test_dropout_only_in_training_mode():
    layer = lstm.LSTM(3, 8, num_layers=2, dropout=0.5, seed=4)
    x, _, _ = case_inputs(layer)
    assert layer.training
    a, b = layer(x)[0], layer(x)[0]
    assert not np.array_equal(a, b), "training: fresh dropout masks each call"
    layer.eval()
    assert not layer.training
    c, d = layer(x)[0], layer(x)[0]
    np.testing.assert_array_equal(c, d)
    want, _, _ = reference(layer, params64(layer), x)
    np.testing.assert_allclose(c, want, rtol=1e-5, atol=1e-5)
    assert layer.train() is layer and layer.training


def test_non_contiguous_float32_input_is_accepted():
    layer = lstm.GRU(3, 4, seed=0)
    x, _, _ = case_inputs(layer)
    xt = np.asfortranarray(x)
    np.testing.assert_array_equal(layer(xt)[0], layer(x)[0])
    np.testing.assert_array_equal(layer(x.tolist())[0], layer(x)[0])


# ---- bad input: ValueError with a message, never a crash


def test_bad_inputs_raise_value_error():
    layer = lstm.LSTM(3, 4, num_layers=2, seed=0)
    x, h0, c0 = case_inputs(layer)
    with pytest.raises(ValueError, match="backward.. needs a forward"):
        layer.backward(np.zeros((5, 3, 4), np.float32))
    with pytest.raises(ValueError, match="float32.*float64"):
        layer(x.astype(np.float64))
    with pytest.raises(ValueError, match="float32"):
        layer(x.astype(np.int32))
    with pytest.raises(ValueError, match="3-D"):
        layer(x[None])
    with pytest.raises(ValueError, match="input_size is 3"):
        layer(np.zeros((5, 3, 2), np.float32))
    with pytest.raises(ValueError, match="at least one step"):
        layer(np.zeros((0, 3, 3), np.float32))
    with pytest.raises(ValueError, match="h0 has shape"):
        layer(x, (h0[:1], c0))
    with pytest.raises(ValueError, match="c0 has shape"):
        layer(x, (h0, c0[:, :2]))
    with pytest.raises(ValueError, match="h0 must be float32"):
        layer(x, (h0.astype(np.float64), c0))
    with pytest.raises(ValueError, match="outside 1..=5"):
        layer(x, lengths=[5, 0, 2])
    with pytest.raises(ValueError, match="outside 1..=5"):
        layer(x, lengths=[5, 6, 2])
    with pytest.raises(ValueError, match="2 entries for a batch of 3"):
        layer(x, lengths=[5, 2])
    with pytest.raises(ValueError, match="integers"):
        layer(x, lengths=[5.5, 2, 1])
    with pytest.raises(ValueError, match="must be an array"):
        layer("not an array")
    with pytest.raises(ValueError, match="cannot be read"):
        layer([["a", "b", "c"]])
    out, (h_n, c_n) = layer(x)
    with pytest.raises(ValueError, match="d_output has shape"):
        layer.backward(out[:2])
    with pytest.raises(ValueError, match="d_output must be float32"):
        layer.backward(out.astype(np.float64))
    with pytest.raises(ValueError, match="d_c_n has shape"):
        layer.backward(out, h_n, c_n[:1])
    layer.backward(out, h_n, c_n)  # still usable
    gru = lstm.GRU(3, 4, seed=0)
    with pytest.raises(ValueError, match="h0 has shape"):
        gru(x, np.zeros((2, 3, 4), np.float32))
    # invalid configurations
    with pytest.raises(ValueError, match="proj_size"):
        lstm.LSTM(3, 4, proj_size=4)
    with pytest.raises(ValueError, match="dropout"):
        lstm.LSTM(3, 4, dropout=1.0)
    with pytest.raises(ValueError, match="at least 1"):
        lstm.LSTM(0, 4)
    with pytest.raises(ValueError, match="nonlinearity"):
        lstm.RNN(3, 4, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="non-negative integer"):
        lstm.GRU(3, -4)
    with pytest.raises(TypeError, match="input_size must be an integer, got str"):
        lstm.LSTM("10", 20)
    with pytest.raises(ValueError, match="variant"):
        lstm.LSTM(3, 4, variant="fancy")


# ---- threads


def test_two_threads_on_one_layer():
    layer = lstm.LSTM(8, 32, num_layers=2, bidirectional=True, seed=0).eval()
    inputs = [rng_arrays(s, (20, 4, 8))[0] for s in range(2)]
    want = [layer(x)[0] for x in inputs]
    errors: list[str] = []

    def work(k):
        for _ in range(25):
            out, _ = layer(inputs[k])
            if not np.array_equal(out, want[k]):
                errors.append(f"thread {k}: a different output")
            layer.state_dict()
            layer.zero_grad()

    threads = [threading.Thread(target=work, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


def test_threads_with_their_own_tapes_get_their_own_gradients():
    """Through the native class, each thread keeps its forward pass in its own tape, so the
    forward and backward passes of two threads interleave safely (what lstm.torch does)."""
    layer = lstm.LSTM(4, 16, seed=0).eval()
    native = layer._native
    inputs = [rng_arrays(s, (10, 3, 4))[0] for s in range(2)]
    want = []
    for x in inputs:
        out, _, _ = native.forward(x)
        want.append(native.backward(np.ones_like(out))[0])
    errors: list[str] = []

    def work(k):
        tape = lstm.layers.Tape()
        for _ in range(20):
            out, _, _ = native.forward(inputs[k], tape=tape)
            d_x, _, _, _ = native.backward(np.ones_like(out), tape=tape)
            if not np.array_equal(d_x, want[k]):
                errors.append(f"thread {k}: a different d_x")

    threads = [threading.Thread(target=work, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


def test_sizes_whose_parameter_count_overflows_are_refused():
    # the count used to wrap to a small number, and the first forward() panicked
    for args in [(1, 2**62), (2**62, 4), (4, 4, 2**62)]:
        with pytest.raises(ValueError):
            lstm.LSTM(*args)


def test_a_tape_of_another_layer_is_refused():
    a = lstm.LSTM(3, 4)
    b = lstm.GRU(3, 5, num_layers=2, bidirectional=True)
    tape = lstm.layers.Tape()
    a._native.forward(np.ones((2, 1, 3), np.float32), tape=tape)
    # it used to index past the tape's one layer and panic
    with pytest.raises(ValueError, match="another layer"):
        b._native.backward(np.ones((2, 1, 10), np.float32), tape=tape)
    # the owner still runs its backward pass on it
    d_x, _, _, _ = a._native.backward(np.ones((2, 1, 4), np.float32), tape=tape)
    assert d_x.shape == (2, 1, 3)


def test_a_nan_input_gives_nan_outputs_as_in_torch():
    # the fused kernel's clamp turned NaN into a finite number (every output 0.7615941)
    x = np.random.default_rng(0).standard_normal((5, 3, 4)).astype(np.float32)
    x[0, 0, 0] = np.nan
    for layer in [lstm.LSTM(4, 6, seed=0), lstm.GRU(4, 6, seed=0)]:
        out, _ = layer(x)
        assert np.isnan(out[:, 0, :]).all(), type(layer).__name__
        assert np.isfinite(out[:, 1:, :]).all(), type(layer).__name__


def test_an_unbatched_final_state_gradient_of_the_wrong_shape_is_refused():
    layer = lstm.LSTM(4, 6, seed=0)
    x = np.ones((5, 4), np.float32)
    layer(x)
    # a 3-D d_h_n used to be dropped silently
    with pytest.raises(ValueError, match="d_h_n"):
        layer.backward(np.ones((5, 6), np.float32), np.zeros((1, 1, 6), np.float32))


def test_backward_after_load_state_dict_is_refused_until_forward_runs_again():
    # the gradient needs the weights the forward pass ran with (torch: "modified by an
    # inplace operation"); it used to mix the old pass with the new weights silently
    layer = lstm.LSTM(3, 4, seed=1)
    x = np.random.default_rng(0).standard_normal((5, 2, 3)).astype(np.float32)
    out, _ = layer(x)
    layer.load_state_dict({k: 2 * v for k, v in layer.state_dict().items()})
    with pytest.raises(ValueError, match="parameters changed"):
        layer.backward(np.ones_like(out))
    out, _ = layer(x)
    layer.backward(np.ones_like(out))


def test_a_layer_or_input_too_large_for_memory_is_a_value_error():
    # under a 4 GB address-space limit: an allocation failure used to abort the interpreter
    import subprocess
    import sys

    code = """
import resource, numpy as np, lstm
resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
for make in (lambda: lstm.LSTM(3, 20000),
             lambda: lstm.LSTM(1, 64)(np.zeros((2 * 10**7, 1, 1), np.float32))):
    try:
        make()
        print("no error")
    except ValueError as e:
        print("refused:", "needs about" in str(e))
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[:2] == ["refused: True", "refused: True"], r.stdout + r.stderr


def test_lstm_torch_without_torch_says_what_to_install(monkeypatch):
    """`import lstm.torch` where torch is missing names torch, how to install it and the
    numpy-only alternative (it was a bare "No module named 'torch'")."""
    import importlib
    import sys

    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` fail, as if absent
    monkeypatch.delitem(sys.modules, "lstm.torch", raising=False)
    with pytest.raises(ModuleNotFoundError, match=r"pip install torch.*lstm\.layers") as err:
        importlib.import_module("lstm.torch")
    assert err.value.name == "torch"


def test_gru_and_rnn_take_proj_size_0_as_pytorch_does():
    # a probe, 2026-12-07: code written for the three layers passes proj_size=0 to all
    for cls in (lstm.GRU, lstm.RNN):
        layer = cls(3, 4, proj_size=0, seed=0)
        assert layer.proj_size == 0
        with pytest.raises(ValueError, match="only supported for LSTM"):
            cls(3, 4, proj_size=2)


def test_layers_pickle_and_deepcopy_with_their_parameters():
    import copy
    import pickle

    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 2, 3)).astype(np.float32)
    for layer in (
        lstm.LSTM(3, 5, 2, dropout=0.3, proj_size=2, seed=1),
        lstm.GRU(3, 4, bidirectional=True, batch_first=True, seed=2),
        lstm.RNN(3, 4, nonlinearity="relu", bias=False, seed=3),
    ):
        layer.eval()
        out = layer(x)[0]
        d = np.ones_like(out)
        layer.backward(d)
        for twin in (pickle.loads(pickle.dumps(layer)), copy.deepcopy(layer)):
            assert repr(twin) == repr(layer) and twin.mode == layer.mode
            assert not twin.training
            for (k, v), (k2, v2) in zip(layer.state_dict().items(), twin.state_dict().items()):
                assert k == k2
                np.testing.assert_array_equal(v, v2)
            np.testing.assert_array_equal(twin(x)[0], out)
            # as torch.save's copies: gradients from zero, and a backward of its own
            assert all(not g.any() for g in twin.grad_dict().values())
            twin.backward(d)
            for g, g2 in zip(layer.grad_dict().values(), twin.grad_dict().values()):
                np.testing.assert_array_equal(g, g2)
            # the copy is its own: training it leaves the original
            twin.load_state_dict({k: v + 1 for k, v in twin.state_dict().items()})
            np.testing.assert_array_equal(layer(x)[0], out)


def test_a_child_forked_after_the_layer_computed_computes_too(forked):
    layer = lstm.LSTM(4, 64, seed=1)
    x = np.random.default_rng(0).standard_normal((50, 2, 4)).astype(np.float32)
    want = layer(x)[0]
    # a DataLoader's worker, multiprocessing's default start on Linux: the engine's threads
    # stayed in this process; the child makes its own (it waited for them forever)
    got = forked(lambda: b"same" if np.array_equal(layer(x)[0], want) else b"differs", 60)
    assert got == b"same"

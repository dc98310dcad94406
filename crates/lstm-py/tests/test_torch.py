"""lstm.LSTM / GRU / RNN and the lstm.torch modules against torch.nn.LSTM / GRU / RNN:
outputs, final states and every gradient (autograd's), with torch's own weights; skipped
where torch is not installed."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip(
    "torch", reason="torch is not installed: the comparisons with torch.nn.LSTM are skipped"
)
from torch import nn  # noqa: E402
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence  # noqa: E402

import lstm  # noqa: E402
import lstm.torch  # noqa: E402

TOL = dict(rtol=1e-4, atol=1e-5)

CASES = [
    ("LSTM", dict(input_size=5, hidden_size=8)),
    ("LSTM", dict(input_size=5, hidden_size=8, num_layers=2, batch_first=True)),
    ("LSTM", dict(input_size=5, hidden_size=8, num_layers=2, bidirectional=True)),
    ("LSTM", dict(input_size=5, hidden_size=8, proj_size=3, num_layers=2, bidirectional=True)),
    ("LSTM", dict(input_size=5, hidden_size=8, bias=False)),
    ("GRU", dict(input_size=5, hidden_size=8, num_layers=2, bidirectional=True)),
    ("RNN_TANH", dict(input_size=5, hidden_size=8, num_layers=2, batch_first=True)),
    ("RNN_RELU", dict(input_size=5, hidden_size=8, bidirectional=True)),
]


def torch_layer(mode, kw, seed=0):
    torch.manual_seed(seed)
    if mode == "LSTM":
        return nn.LSTM(**kw)
    if mode == "GRU":
        return nn.GRU(**kw)
    return nn.RNN(nonlinearity="tanh" if mode == "RNN_TANH" else "relu", **kw)


def our_module(mode, kw, seed=0):
    torch.manual_seed(seed)
    if mode == "LSTM":
        return lstm.torch.LSTM(**kw)
    if mode == "GRU":
        return lstm.torch.GRU(**kw)
    return lstm.torch.RNN(nonlinearity="tanh" if mode == "RNN_TANH" else "relu", **kw)


def our_layer(mode, kw):
    if mode == "LSTM":
        return lstm.LSTM(seed=0, **kw)
    if mode == "GRU":
        return lstm.GRU(seed=0, **kw)
    return lstm.RNN(nonlinearity="tanh" if mode == "RNN_TANH" else "relu", seed=0, **kw)


def inputs(ref, t=7, b=4, seed=1):
    g = torch.Generator().manual_seed(seed)
    dl = (2 if ref.bidirectional else 1) * ref.num_layers
    h_out = ref.proj_size if getattr(ref, "proj_size", 0) else ref.hidden_size
    shape = (b, t, ref.input_size) if ref.batch_first else (t, b, ref.input_size)
    x = torch.randn(shape, generator=g)
    h0 = torch.randn((dl, b, h_out), generator=g)
    c0 = torch.randn((dl, b, ref.hidden_size), generator=g)
    return x, h0, c0


def torch_run(ref, x, h0, c0, lengths=None):
    """torch's (output, h_n, c_n) and the autograd gradients of sum(out·dout) + ..."""
    x, h0, c0 = (a.clone().requires_grad_() for a in (x, h0, c0))
    hx = (h0, c0) if isinstance(ref, nn.LSTM) else h0
    if lengths is not None:
        packed = pack_padded_sequence(
            x, torch.tensor(lengths), batch_first=ref.batch_first, enforce_sorted=False
        )
        out, hn = ref(packed, hx)
        out, _ = pad_packed_sequence(out, batch_first=ref.batch_first, total_length=x.shape[1 if ref.batch_first else 0])
    else:
        out, hn = ref(x, hx)
    h_n, c_n = hn if isinstance(hn, tuple) else (hn, None)
    g = torch.Generator().manual_seed(9)
    dout, dh = torch.randn(out.shape, generator=g), torch.randn(h_n.shape, generator=g)
    loss = (out * dout).sum() + (h_n * dh).sum()
    dc = None
    if c_n is not None:
        dc = torch.randn(c_n.shape, generator=g)
        loss = loss + (c_n * dc).sum()
    ref.zero_grad()
    loss.backward()
    grads = {k: p.grad.numpy().copy() for k, p in ref.named_parameters()}
    return dict(
        out=out.detach().numpy(), h_n=h_n.detach().numpy(),
        c_n=None if c_n is None else c_n.detach().numpy(),
        dout=dout.numpy(), dh=dh.numpy(), dc=None if dc is None else dc.numpy(),
        d_x=x.grad.numpy(), d_h0=h0.grad.numpy(),
        d_c0=None if c_n is None else c0.grad.numpy(), grads=grads,
    )


@pytest.mark.parametrize("lengths", [None, [7, 3, 1, 5]], ids=["full", "lengths"])
@pytest.mark.parametrize("mode,kw", CASES)
def test_numpy_layer_equals_torch(mode, kw, lengths):
    ref = torch_layer(mode, kw)
    x, h0, c0 = inputs(ref)
    want = torch_run(ref, x, h0, c0, lengths)
    layer = our_layer(mode, kw)
    layer.load_state_dict(ref.state_dict())
    assert list(layer.state_dict()) == list(ref.state_dict())
    if mode == "LSTM":
        out, (h_n, c_n) = layer(x.numpy(), (h0.numpy(), c0.numpy()), lengths=lengths)
        np.testing.assert_allclose(c_n, want["c_n"], **TOL)
        d_x = layer.backward(want["dout"], want["dh"], want["dc"])
        d_h0, d_c0 = layer.hx_grad
        np.testing.assert_allclose(d_c0, want["d_c0"], **TOL)
    else:
        out, h_n = layer(x.numpy(), h0.numpy(), lengths=lengths)
        d_x = layer.backward(want["dout"], want["dh"])
        d_h0 = layer.hx_grad
    np.testing.assert_allclose(out, want["out"], **TOL)
    np.testing.assert_allclose(h_n, want["h_n"], **TOL)
    np.testing.assert_allclose(d_x, want["d_x"], **TOL)
    np.testing.assert_allclose(d_h0, want["d_h0"], **TOL)
    grads = layer.grad_dict()
    assert list(grads) == list(want["grads"])
    for name, g in want["grads"].items():
        np.testing.assert_allclose(grads[name], g, **TOL, err_msg=name)


@pytest.mark.parametrize("mode,kw", CASES)
def test_torch_module_is_a_drop_in(mode, kw):
    ref = torch_layer(mode, kw, seed=3)
    ours = our_module(mode, kw, seed=3)
    # nn.LSTM's initialisation, from torch's generator: the same weights, the same state_dict
    sd = ours.state_dict()
    assert list(sd) == list(ref.state_dict())
    for k, v in ref.state_dict().items():
        assert torch.equal(sd[k], v), k
    assert repr(ours).split("(", 1)[1] == repr(ref).split("(", 1)[1]
    x, h0, c0 = inputs(ref)
    want = torch_run(ref, x, h0, c0)
    x, h0, c0 = (a.clone().requires_grad_() for a in (x, h0, c0))
    if mode == "LSTM":
        out, (h_n, c_n) = ours(x, (h0, c0))
        loss = (out * torch.from_numpy(want["dout"])).sum() + (h_n * torch.from_numpy(want["dh"])).sum()
        loss = loss + (c_n * torch.from_numpy(want["dc"])).sum()
    else:
        out, h_n = ours(x, h0)
        loss = (out * torch.from_numpy(want["dout"])).sum() + (h_n * torch.from_numpy(want["dh"])).sum()
    np.testing.assert_allclose(out.detach().numpy(), want["out"], **TOL)
    np.testing.assert_allclose(h_n.detach().numpy(), want["h_n"], **TOL)
    loss.backward()
    np.testing.assert_allclose(x.grad.numpy(), want["d_x"], **TOL)
    np.testing.assert_allclose(h0.grad.numpy(), want["d_h0"], **TOL)
    if mode == "LSTM":
        np.testing.assert_allclose(c0.grad.numpy(), want["d_c0"], **TOL)
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), want["grads"][name], **TOL, err_msg=name)


def test_torch_module_in_a_model_trains_like_nn_lstm():
    """A small model (LSTM then Linear) trained 5 steps with Adam: the same losses and weights
    as with nn.LSTM; two calls of the layer in one graph; gradients accumulate across
    backward calls as torch's do."""
    kw = dict(input_size=4, hidden_size=16, num_layers=2, batch_first=True)

    def model(rnn):
        torch.manual_seed(11)
        head = nn.Linear(16, 1)
        return rnn, head

    torch.manual_seed(5)
    rnn_ref = nn.LSTM(**kw)
    rnn_ours = lstm.torch.LSTM(**kw)
    rnn_ours.load_state_dict(rnn_ref.state_dict())
    runs = {}
    for name, rnn in [("torch", rnn_ref), ("ours", rnn_ours)]:
        rnn, head = model(rnn)
        opt = torch.optim.Adam(list(rnn.parameters()) + list(head.parameters()), lr=1e-2)
        g = torch.Generator().manual_seed(2)
        losses = []
        for _ in range(5):
            x = torch.randn(3, 6, 4, generator=g)
            y = torch.randn(3, 1, generator=g)
            opt.zero_grad()
            out1, _ = rnn(x)
            out2, _ = rnn(x.flip(1))  # a second call in the same graph
            loss = ((head(out1[:, -1]) - y) ** 2).mean() + ((head(out2[:, -1]) - y) ** 2).mean()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        runs[name] = (losses, {k: v.clone() for k, v in rnn.state_dict().items()})
    np.testing.assert_allclose(runs["ours"][0], runs["torch"][0], rtol=1e-4, atol=1e-6)
    for k, v in runs["torch"][1].items():
        np.testing.assert_allclose(runs["ours"][1][k].numpy(), v.numpy(), rtol=1e-3, atol=1e-5)


def test_torch_module_takes_packed_sequences_and_lengths():
    kw = dict(input_size=3, hidden_size=6, bidirectional=True, batch_first=True)
    ref = torch_layer("LSTM", kw)
    ours = our_module("LSTM", kw)
    x, _, _ = inputs(ref, t=5, b=3)
    lengths = torch.tensor([2, 5, 3])
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    want, (want_h, _) = ref(packed)
    got, (got_h, _) = ours(packed)
    np.testing.assert_allclose(got.data.detach().numpy(), want.data.detach().numpy(), **TOL)
    np.testing.assert_allclose(got_h.detach().numpy(), want_h.detach().numpy(), **TOL)
    padded, _ = pad_packed_sequence(want, batch_first=True, total_length=5)
    direct, _ = ours(x, lengths=lengths)
    np.testing.assert_allclose(direct.detach().numpy(), padded.detach().numpy(), **TOL)


def test_torch_module_unbatched_and_errors():
    ref = torch_layer("GRU", dict(input_size=3, hidden_size=4))
    ours = our_module("GRU", dict(input_size=3, hidden_size=4))
    x = torch.randn(5, 3)
    want, want_h = ref(x)
    got, got_h = ours(x)
    assert got.shape == want.shape and got_h.shape == want_h.shape
    np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), **TOL)
    with pytest.raises(ValueError, match="float32"):
        ours(x.double())
    with pytest.raises(ValueError, match="float32"):
        lstm.torch.LSTM(3, 4, dtype=torch.float64)
    with pytest.raises(ValueError, match="input_size is 3"):
        ours(torch.randn(5, 2, 4))


def test_modules_deepcopy_and_torch_save_with_their_parameters(tmp_path):
    import copy

    torch.manual_seed(0)
    m = lstm.torch.LSTM(3, 5, num_layers=2, batch_first=True)
    x = torch.randn(2, 4, 3)
    want = m(x)[0]
    want.sum().backward()
    twin = copy.deepcopy(m)
    torch.save(m, tmp_path / "m.pt")
    loaded = torch.load(tmp_path / "m.pt", weights_only=False)
    for other in (twin, loaded):
        torch.testing.assert_close(other(x)[0], want, rtol=0, atol=0)
        # the copy is its own: changing it leaves the original
        with torch.no_grad():
            other.weight_ih_l0.add_(1.0)
        assert not torch.equal(other(x)[0], want)
        torch.testing.assert_close(m(x)[0], want, rtol=0, atol=0)


def _pair(**kw):
    """nn.LSTM and lstm.torch.LSTM holding the same weights."""
    torch.manual_seed(0)
    ref = nn.LSTM(**kw)
    ours = lstm.torch.LSTM(**kw)
    ours.load_state_dict(ref.state_dict())
    return ref, ours


def test_training_idioms_give_nns_results():
    x = torch.randn(5, 3, 4, generator=torch.Generator().manual_seed(2))
    # a fused optimizer step changes the weights without a version bump: each pass sees them
    losses = []
    for m in _pair(input_size=4, hidden_size=6):
        opt = torch.optim.Adam(m.parameters(), lr=0.05, fused=True)
        run = []
        for _ in range(4):
            opt.zero_grad()
            loss = m(x)[0].pow(2).sum()
            loss.backward()
            opt.step()
            run.append(loss.item())
        losses.append(run)
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-5)
    assert losses[1][0] != losses[1][-1]
    # an edit through .data is seen too
    ref, ours = _pair(input_size=4, hidden_size=6)
    for m in (ref, ours):
        m.weight_hh_l0.data.mul_(0.5)
    torch.testing.assert_close(ours(x)[0], ref(x)[0], **TOL)
    # two parameter sets in one graph (torch.func.functional_call), and a second backward
    # through a retained graph: nn's gradients
    from torch.func import functional_call

    grads = []
    for m in (ref, ours):
        pa = {n: p.detach().clone().requires_grad_() for n, p in m.named_parameters()}
        pb = {n: (p.detach() * 0.9).requires_grad_() for n, p in m.named_parameters()}
        out = functional_call(m, pa, (x,))[0]
        (out.sum() + functional_call(m, pb, (x,))[0].pow(2).sum()).backward(retain_graph=True)
        first = [pa["weight_hh_l0"].grad.clone(), pb["weight_hh_l0"].grad.clone()]
        (out ** 2).sum().backward()
        grads.append(first + [pa["weight_hh_l0"].grad])
    for a, b in zip(*grads):
        torch.testing.assert_close(b, a, **TOL)
    # second-order gradients are refused, not silently wrong
    xr = x.clone().requires_grad_()
    (g,) = torch.autograd.grad(ours(xr)[0].pow(2).sum(), xr, create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable"):
        g.pow(2).sum().backward()
    # under inference_mode, built and run; under autocast, a bf16 input is computed in f32
    with torch.inference_mode():
        lstm.torch.LSTM(4, 6)(x)
    model = nn.Sequential(nn.Linear(4, 4), lstm.torch.LSTM(4, 6))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, _ = model(x)
    assert out.dtype == torch.float32


def test_dropout_follows_torchs_generator_and_attributes_set_later():
    from torch.utils.checkpoint import checkpoint

    x0 = torch.randn(5, 3, 4, generator=torch.Generator().manual_seed(3))
    runs = []
    for ck in (False, True, False):
        torch.manual_seed(0)
        m = lstm.torch.LSTM(4, 6, 2, dropout=0.5)
        x = x0.clone().requires_grad_()
        out = checkpoint(lambda t: m(t)[0], x, use_reentrant=True) if ck else m(x)[0]
        out.sum().backward()
        runs.append((out.detach(), x.grad))
    # the same masks after the same torch.manual_seed, and in checkpointing's replay
    for out, grad in runs[1:]:
        torch.testing.assert_close(out, runs[0][0], rtol=0, atol=0)
        torch.testing.assert_close(grad, runs[0][1], rtol=0, atol=0)
    # dropout and batch_first set after construction are read at each call, as nn's
    ref, ours = _pair(input_size=4, hidden_size=6, num_layers=2)
    ours.dropout = 0.5
    assert not torch.equal(ours(x0)[0], ours(x0)[0])
    for m in (ref, ours):
        m.dropout, m.batch_first = 0.0, True
    xb = x0.transpose(0, 1).contiguous()
    torch.testing.assert_close(ours(xb)[0], ref(xb)[0], **TOL)


def test_a_parametrized_weight_is_read_at_every_pass():
    import torch.nn.utils.parametrize as P

    class Scale(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Parameter(torch.tensor(1.0))

        def forward(self, w):
            return w * self.a

    ref, ours = _pair(input_size=4, hidden_size=32)
    for m in (ref, ours):
        P.register_parametrization(m, "weight_hh_l0", Scale())
    x = torch.randn(5, 3, 4)
    with torch.no_grad():
        for i in range(100):
            for m in (ref, ours):
                m.parametrizations.weight_hh_l0[0].a.fill_(1 + 0.01 * i)
            torch.testing.assert_close(ours(x)[0], ref(x)[0], **TOL)


def test_packed_order_shared_layers_across_threads_and_pickle_size(tmp_path):
    import copy
    import threading

    from torch.nn.utils.rnn import PackedSequence

    # a PackedSequence ordering sequences of equal length its own way (built by hand): the
    # output in that order, with its indices, as nn's
    ref, ours = _pair(input_size=3, hidden_size=5)
    g = torch.Generator().manual_seed(4)
    x = torch.randn(3, 3, 3, generator=g)  # (T, B, I), lengths 3, 3, 2
    order = torch.tensor([1, 0, 2])
    batch_sizes = torch.tensor([3, 3, 2])
    data = torch.cat([x[t, order[: int(batch_sizes[t])]] for t in range(3)])
    packed = PackedSequence(data, batch_sizes, order, torch.argsort(order))
    a, b = ref(packed)[0], ours(packed)[0]
    assert torch.equal(b.sorted_indices, a.sorted_indices)
    torch.testing.assert_close(b.data, a.data, **TOL)
    # a shallow copy shares the engine's layer: two threads' gradients do not mix
    m = lstm.torch.LSTM(4, 16)
    twin = copy.copy(m)
    xs = [torch.randn(6, 3, 4, generator=torch.Generator().manual_seed(k)) for k in (5, 6)]
    want = [torch.autograd.grad(m(x)[0].pow(2).sum(), list(m.parameters())) for x in xs]
    bad = []

    def work(mod, x, w):
        for _ in range(20):
            got = torch.autograd.grad(mod(x)[0].pow(2).sum(), list(mod.parameters()))
            bad.extend(1 for a, b in zip(got, w) if not torch.allclose(a, b, rtol=1e-5, atol=1e-6))

    threads = [threading.Thread(target=work, args=(mod, x, w)) for mod, x, w in zip((m, twin), xs, want)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not bad
    # torch.save(module) holds the parameters once (the engine's layer is made again)
    big = lstm.torch.LSTM(64, 128, num_layers=2)
    torch.save(big, tmp_path / "ours.pt")
    torch.save(nn.LSTM(64, 128, num_layers=2), tmp_path / "nn.pt")
    assert (tmp_path / "ours.pt").stat().st_size < 1.2 * (tmp_path / "nn.pt").stat().st_size


def test_the_modules_are_torchs_own_classes():
    # code that finds or initialises recurrent layers by class sees these ones
    for ours, cls in (
        (lstm.torch.LSTM(3, 4, 2, proj_size=2), nn.LSTM),
        (lstm.torch.GRU(3, 4, bidirectional=True), nn.GRU),
        (lstm.torch.RNN(3, 4, nonlinearity="relu"), nn.RNN),
    ):
        assert isinstance(ours, cls) and isinstance(ours, nn.RNNBase)
        assert [w.shape for w in ours._flat_weights] == [p.shape for p in ours.parameters()]
        assert len(ours.all_weights) == ours.num_layers * (2 if ours.bidirectional else 1)
    assert not isinstance(lstm.torch.RNN(3, 4), nn.GRU)
    # the initialisation is nn's: the same weights after the same seed
    torch.manual_seed(7)
    a = nn.GRU(3, 4, 2)
    torch.manual_seed(7)
    b = lstm.torch.GRU(3, 4, 2)
    for (n, p), (m, q) in zip(a.state_dict().items(), b.state_dict().items()):
        assert n == m and torch.equal(p, q)


def test_device_and_dtype_reach_torchs_constructor():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        m = lstm.torch.LSTM(3, 4, dtype=torch.float32)
    finally:
        torch.set_default_dtype(old)
    assert m.weight_ih_l0.dtype == torch.float32
    m(torch.randn(5, 2, 3))
    # nn.utils.skip_init builds on the meta device
    s = nn.utils.skip_init(lstm.torch.GRU, 3, 4)
    assert s.weight_ih_l0.device.type == "cpu"

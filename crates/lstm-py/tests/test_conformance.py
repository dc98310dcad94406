"""The conformance cases (crates/lstm/tests/conformance, FORMAT.md there) matched from Python.

Every ``kind = layer`` case in ``$LSTM_CONFORMANCE_DIR`` (default: the repository's copy) runs
through ``lstm.LSTM`` / ``GRU`` / ``RNN``: its weights loaded with ``load_state_dict``, its
outputs, final states and (``has_grad``) every gradient compared at the case's own ``atol`` and
``rtol``, ``|got - want| <= atol + rtol·|want|``, as ``crates/lstm/tests/conformance.rs`` does.
The ``kind = train`` cases train a whole model with an optimizer, not a layer: they are the
jobs' (the Rust test runs them), and are reported here as skipped.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import numpy as np
import pytest

import lstm

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "lstm" / "tests" / "conformance"
CASE_DIR = Path(os.environ.get("LSTM_CONFORMANCE_DIR", DEFAULT_DIR))
CASES = sorted(CASE_DIR.glob("*.safetensors"))

DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32}
SET_ASIDE = {"input", "h0", "c0", "lengths", "output", "h_n", "c_n", "dout", "dh_n", "dc_n"}


def read_safetensors(path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """(tensors, metadata) of a safetensors file: an 8-byte little-endian header size, a JSON
    header, then the data."""
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    meta = header.pop("__metadata__", {}) or {}
    data = raw[8 + n :]
    tensors = {}
    for name, h in header.items():
        start, end = h["data_offsets"]
        dtype = np.dtype(DTYPES[h["dtype"]]).newbyteorder("<")
        tensors[name] = np.frombuffer(data[start:end], dtype=dtype).reshape(h["shape"])
    return tensors, meta


def flag(meta: dict[str, str], key: str, default: bool = False) -> bool:
    v = meta.get(key)
    if v is None:
        return default
    if v.strip() in ("true", "True", "1"):
        return True
    if v.strip() in ("false", "False", "0"):
        return False
    raise ValueError(f"metadata {key}={v} is not a boolean")


def close(what: str, got: np.ndarray, want: np.ndarray, atol: float, rtol: float) -> None:
    """The Rust test's comparison: every element within atol + rtol·|want|, and finite."""
    got = np.asarray(got, np.float32).reshape(-1)
    want = np.asarray(want, np.float32).reshape(-1)
    assert got.shape == want.shape, f"{what}: {got.shape} values, expected {want.shape}"
    excess = np.abs(got - want) - (atol + rtol * np.abs(want))
    bad = (excess > 0) | ~np.isfinite(got)
    if bad.any():
        i = int(np.argmax(np.where(bad, excess, -np.inf)))
        raise AssertionError(
            f"{what}: element {i} is {got[i]} but the reference says {want[i]} "
            f"(atol {atol}, rtol {rtol}; {int(bad.sum())} elements out)"
        )


def test_the_directory_holds_cases():
    assert CASES, f"no *.safetensors case in {CASE_DIR}"


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_case(path: Path):
    f, meta = read_safetensors(path)
    if meta.get("kind") != "layer":
        pytest.skip(f"kind={meta.get('kind')}: a training run of a whole model, not a layer")
    atol, rtol = float(meta["atol"]), float(meta["rtol"])
    mode = meta["mode"].strip().upper()
    variant = meta.get("variant", "standard").strip()
    common = dict(
        input_size=int(meta["input_size"]),
        hidden_size=int(meta["hidden_size"]),
        num_layers=int(meta["num_layers"]),
        bias=flag(meta, "bias"),
        batch_first=flag(meta, "batch_first"),
        bidirectional=flag(meta, "bidirectional"),
        seed=0,
    )
    if mode == "LSTM":
        layer = lstm.LSTM(proj_size=int(meta.get("proj_size", "0")), variant=variant, **common)
    elif mode == "GRU":
        layer = lstm.GRU(**common)
    else:
        layer = lstm.RNN(nonlinearity="relu" if mode == "RNN_RELU" else "tanh", **common)
    layer.eval()
    layer.load_state_dict(
        {k: v for k, v in f.items() if k not in SET_ASIDE and not k.startswith("grad.")}
    )
    x = f["input"]
    b = x.shape[0] if layer.batch_first else x.shape[1]
    dl = layer.num_directions * layer.num_layers
    h0 = f.get("h0", np.zeros((dl, b, layer.hidden_out), np.float32))
    c0 = f.get("c0", np.zeros((dl, b, layer.hidden_size), np.float32))
    lengths = f["lengths"].tolist() if "lengths" in f else None
    if mode == "LSTM":
        out, (h_n, c_n) = layer(x, (h0, c0), lengths=lengths)
    else:
        out, h_n = layer(x, h0, lengths=lengths)
        c_n = None
    close("output", out, f["output"], atol, rtol)
    if "h_n" in f:
        close("h_n", h_n, f["h_n"], atol, rtol)
    if "c_n" in f:
        close("c_n", c_n, f["c_n"], atol, rtol)
    if not flag(meta, "has_grad"):
        return
    layer.zero_grad()
    dh = f.get("dh_n", np.zeros_like(h_n))
    if mode == "LSTM":
        d_x = layer.backward(f["dout"], dh, f.get("dc_n", np.zeros_like(c_n)))
        d_h0, d_c0 = layer.hx_grad
    else:
        d_x = layer.backward(f["dout"], dh)
        d_h0, d_c0 = layer.hx_grad, None
    close("grad.input", d_x, f["grad.input"], atol, rtol)
    if "grad.h0" in f:
        close("grad.h0", d_h0, f["grad.h0"], atol, rtol)
    if "grad.c0" in f:
        close("grad.c0", d_c0, f["grad.c0"], atol, rtol)
    for name, g in layer.grad_dict().items():
        assert f"grad.{name}" in f, f"the case has gradients but no grad.{name}"
        close(f"grad.{name}", g, f[f"grad.{name}"], atol, rtol)

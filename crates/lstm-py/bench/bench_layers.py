"""lstm.LSTM forward + backward from Python against torch.nn.LSTM (oneDNN) and against the same
work timed inside Rust, on the `lstm bench` shapes, in one process.

Layer only, dense float32 input, batch-first, evaluation mode (no dropout), zero initial states;
one round = zero the gradients, forward, backward of a fixed d_output (d_x, every weight
gradient). The shapes are `lstm bench`'s (crates/lstm/src/bench/mod.rs): charlm-2x256,
charlm-1x512, charlm-1x128 (B=32, T=64, the one-hot vocabulary of 65 given here as 65 dense
features) and series-1x64 (B=64, T=30, 1 feature). Not `lstm bench`'s whole training step (no
embedding, head, loss or optimizer), so the Rust column is timed by
`lstm._lstm.Recurrent.time_forward_backward`, the same rounds on the same layer in a Rust loop
with the GIL released: the Python column minus the Rust column is what the Python side costs
(argument checks, the copies of the output and gradients into new numpy arrays, the call).

    python bench/bench_layers.py [--reps 7] [--rounds 10] [--threads 2] [--json out.jsonl]

`reps x rounds` rounds of each of the three, interleaved round by round (lstm from Python, the
Rust loop, torch). Reported, in ms, medians over every round: `Python` (lstm.LSTM's
zero_grad, forward, backward from Python), `Rust` (the same in the Rust loop), `torch`; then
`torch/lstm` (torch over Python) and the Python overhead two ways: `overhead`, the ratio of the
Python and Rust medians (taken minutes apart on a shared machine, it carries the machine's
noise), and `outside the library`, measured within each Python round: the time of its forward
and backward calls less the time the library's forward and backward took inside them
(`Recurrent.last_compute_seconds`), in µs and as a share of the rest of the round (its median
over the rounds), steady however busy the machine is.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time

import numpy as np

import lstm

CONFIGS = [
    # name, layers, hidden, batch, steps, features
    ("charlm-2x256", 2, 256, 32, 64, 65),
    ("charlm-1x512", 1, 512, 32, 64, 65),
    ("charlm-1x128", 1, 128, 32, 64, 65),
    ("series-1x64", 1, 64, 64, 30, 1),
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=7, help="repetitions (rounds = reps x rounds)")
    ap.add_argument("--rounds", type=int, default=10, help="rounds per repetition")
    ap.add_argument("--threads", type=int, default=2, help="threads for torch (lstm: all cores)")
    ap.add_argument("--only", default="", help="comma-separated config names")
    ap.add_argument("--json", default="", help="append one JSON line per config to this file")
    args = ap.parse_args()
    try:
        import torch
    except ImportError:
        torch = None
        print("torch is not installed: timing lstm only", file=sys.stderr)
    if torch is not None:
        torch.set_num_threads(args.threads)
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, oneDNN "
              f"{'on' if torch.backends.mkldnn.is_available() else 'off'}")
    print(f"lstm {lstm.__version__}, numpy {np.__version__}, Python {platform.python_version()}")
    print(f"{args.reps} repetitions x {args.rounds} rounds of zero_grad + forward + backward, "
          "medians in ms\n")
    head = f"{'config':<14} {'Python':>8} {'Rust':>8} {'torch':>9} {'torch/lstm':>11} " \
        f"{'overhead':>10} {'outside the library':>20}"
    print(head)
    print("-" * len(head))
    only = {s for s in args.only.split(",") if s}
    for name, layers, hidden, b, t, features in CONFIGS:
        if only and name not in only:
            continue
        rng = np.random.default_rng(0)
        layer = lstm.LSTM(features, hidden, layers, batch_first=True, seed=0).eval()
        x = rng.uniform(-1, 1, (b, t, features)).astype(np.float32)
        dout = rng.standard_normal((b, t, hidden)).astype(np.float32)
        ref = None
        if torch is not None:
            ref = torch.nn.LSTM(features, hidden, layers, batch_first=True)
            ref.load_state_dict({k: torch.from_numpy(v) for k, v in layer.state_dict().items()})
            xt = torch.from_numpy(x).requires_grad_()
            doutt = torch.from_numpy(dout)

        def ours() -> tuple[float, float]:
            start = time.perf_counter()
            layer.zero_grad()
            calls = time.perf_counter()
            layer(x)
            layer.backward(dout)
            end = time.perf_counter()
            fwd, bwd = layer._native.last_compute_seconds()
            # the round, and the part of its forward and backward calls outside the library
            return end - start, (end - calls) - (fwd + bwd)

        def theirs() -> float:
            start = time.perf_counter()
            ref.zero_grad()
            xt.grad = None
            out, _ = ref(xt)
            out.backward(doutt)
            return time.perf_counter() - start

        # warm up: caches sized, threads started, oneDNN primitives built
        for _ in range(3):
            ours()
            layer._native.time_forward_backward(x, dout, 1)
            if ref is not None:
                theirs()
        # round by round, so that a busy machine slows the three alike
        py, side, rs, th = [], [], [], []
        for _ in range(args.reps * args.rounds):
            total, outside = ours()
            py.append(total)
            side.append(outside)
            rs += layer._native.time_forward_backward(x, dout, 1)
            if ref is not None:
                th.append(theirs())
        m_py, m_rs = statistics.median(py), statistics.median(rs)
        m_th = statistics.median(th) if th else float("nan")
        overhead = m_py / m_rs - 1
        m_side = statistics.median(side)
        paired = m_side / (m_py - m_side)
        print(f"{name:<14} {m_py * 1e3:>8.2f} {m_rs * 1e3:>8.2f} {m_th * 1e3:>9.2f} "
              f"{m_th / m_py:>10.2f}x {overhead * 100:>9.1f}% {m_side * 1e6:>9.0f} µs "
              f"{paired * 100:>6.1f}%")
        if args.json:
            with open(args.json, "a") as f:
                f.write(json.dumps(dict(
                    config=name, layers=layers, hidden=hidden, batch=b, seq_len=t,
                    features=features, python_ms=m_py * 1e3, rust_ms=m_rs * 1e3,
                    torch_ms=m_th * 1e3, overhead=overhead, outside_us=m_side * 1e6,
                    outside_overhead=paired, torch_over_lstm=m_th / m_py,
                    tokens_per_s_python=b * t / m_py, tokens_per_s_torch=b * t / m_th,
                    reps=args.reps, rounds=args.rounds,
                )) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

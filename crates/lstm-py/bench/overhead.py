"""Python's overhead on the layer: `lstm.LSTM` forward + backward called from Python against the
same work timed in a Rust loop (`time_forward_backward`), in a process without torch (whose
OpenMP threads, spinning after each torch call, would slow ours: see docs/python-torch.md).

    python crates/lstm-py/bench/overhead.py [--reps 5] [--rounds 20]

Shapes of `lstm bench` (layer only, dense input, batch-first); medians of `rounds` calls, then
the median over `reps` repetitions, each repetition timing Rust and Python back to back.
"""

import argparse
import statistics as st
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=20)
    a = ap.parse_args()
    print(f"lstm {lstm.__version__}; medians of {a.rounds} rounds, median of {a.reps} repetitions")
    print(f"{'config':14s} {'Python ms':>10s} {'Rust ms':>10s} {'overhead':>9s}  per repetition")
    for name, layers, hidden, b, t, features in CONFIGS:
        layer = lstm.LSTM(features, hidden, layers, batch_first=True, seed=1)
        layer.eval()
        x = np.random.default_rng(0).random((b, t, features), dtype=np.float32)
        d = np.ones((b, t, hidden), np.float32)
        native = layer._native
        res = []
        for _ in range(a.reps):
            rust = st.median(native.time_forward_backward(x, d, a.rounds))
            rounds = []
            for _ in range(a.rounds):
                t0 = time.perf_counter()
                layer.zero_grad()
                layer.forward(x)
                layer.backward(d)
                rounds.append(time.perf_counter() - t0)
            res.append((st.median(rounds), rust))
        py = st.median(r[0] for r in res)
        ru = st.median(r[1] for r in res)
        per = ", ".join(f"{100 * (p / r - 1):+.1f}%" for p, r in res)
        print(f"{name:14s} {py * 1e3:10.3f} {ru * 1e3:10.3f} {100 * (py / ru - 1):+8.1f}%  {per}")


if __name__ == "__main__":
    main()

"""What `lstm.torch` pays for giving the engine its parameters at every pass: one copy of the
weights (the module's parameters as arrays, then `Recurrent.set_tensors`, as a forward pass does)
against a whole forward + backward round of the module, on three `lstm bench` shapes
(layer only, dense input, batch-first), one torch thread. Needs torch.

    python crates/lstm-py/bench/torch_param_copy.py [--rounds 30]

Medians over the rounds after the first five, in ms, and the copy as a share of the round.
"""

import argparse
import statistics
import time

import torch

import lstm.torch

CONFIGS = [
    # name, layers, hidden, features, batch, steps
    ("charlm-2x256", 2, 256, 65, 32, 64),
    ("charlm-1x128", 1, 128, 65, 32, 64),
    ("series-1x64", 1, 64, 1, 64, 30),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=30)
    args = ap.parse_args()
    torch.set_num_threads(1)
    for name, layers, hidden, features, batch, steps in CONFIGS:
        m = lstm.torch.LSTM(features, hidden, layers, batch_first=True)
        x = torch.randn(batch, steps, features)
        rounds, copies = [], []
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            out, _ = m(x)
            out.sum().backward()
            rounds.append(time.perf_counter() - t0)
            # as a pass does it: the parameters as arrays, then into the engine
            t0 = time.perf_counter()
            weights = tuple(getattr(m, n) for n in m._names)
            params = lstm.torch._params(m._names, weights)
            m._layer._native.set_tensors(params, True)
            copies.append(time.perf_counter() - t0)
        r = statistics.median(rounds[5:])
        c = statistics.median(copies[5:])
        print(f"{name}: round {r * 1e3:.2f} ms, copy {c * 1e3:.3f} ms, {100 * c / r:.1f}%")


if __name__ == "__main__":
    main()

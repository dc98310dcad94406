#!/usr/bin/env python3
"""PyTorch twin of `lstm bench --config forecast-2x64`; prints one JSON line.

Our own script, written for this run (it is not a copy of the anchor scripts in
../shared/anchors, though it follows their conventions: threads set before the
import, warm-up steps, then timed steps, one JSON line). PyTorch is not needed by
CI or by any test: run it from a venv outside the repository, e.g. the anchors'
one (bash ../shared/anchors/setup.sh, then ~/.cache/lstm-anchors/torch/bin/python).

The model and the step are those of BenchKind::Forecast in
crates/lstm/src/bench/mod.rs:
  input    dense, 10 features per step; batch 64 windows of 144 steps
           (context 96 + horizon 48), values uniform in [-1, 1), one fixed batch
  model    nn.LSTM(10, 64, num_layers=2, batch_first=True) -> nn.Linear(64, 3)
           applied at every step (the Rust per-step head also runs on all 144)
  head     Student-t: mu = out0, sigma = softplus(out1) + 1e-6,
           nu = 2 + softplus(out2)
  loss     mean negative log-likelihood over the last 48 steps of each window
           (the first 96 masked), written out:
             -lgamma((nu+1)/2) + lgamma(nu/2) + 0.5 ln(nu pi) + ln sigma
             + (nu+1)/2 ln(1 + z^2/nu),   z = (y - mu) / sigma
           (--dist uses torch.distributions.StudentT(nu, mu, sigma).log_prob)
  step     zero_grad + forward + backward + Adam(lr=1e-3) step
Throughput in samples (windows) per second, keyed as the anchor scripts key it
(so `lstm bench --summarize` reads it): samples_per_s_median_step = batch / median
step time (compare with lstm's samples_per_s), samples_per_s = batch / mean step
time, i.e. total over total time (compare with lstm's samples_per_s_mean);
median_ms and mean_ms as in `lstm bench --json`.
"""
import argparse
import json
import math
import os
import statistics
import time

ap = argparse.ArgumentParser()
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--seconds", type=float, default=5.0, help="time steps for at least this long")
ap.add_argument("--min-steps", type=int, default=10)
ap.add_argument("--warmup", type=int, default=5)
ap.add_argument("--dist", action="store_true", help="NLL from torch.distributions.StudentT instead of written out")
args = ap.parse_args()

for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[v] = str(args.threads)

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

torch.set_num_threads(args.threads)
torch.manual_seed(42)

B, T, FEATURES, HIDDEN, LAYERS, HORIZON = 64, 144, 10, 64, 2, 48
CONTEXT = T - HORIZON
MIN_SIGMA, MIN_NU = 1e-6, 2.0


class Forecaster(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(FEATURES, HIDDEN, num_layers=LAYERS, batch_first=True)
        self.head = nn.Linear(HIDDEN, 3)

    def forward(self, x):
        y, _ = self.lstm(x)
        return self.head(y)  # (B, T, 3): every step, like the Rust per-step head


def student_t_nll(out, y):
    mu = out[..., 0]
    sigma = F.softplus(out[..., 1]) + MIN_SIGMA
    nu = MIN_NU + F.softplus(out[..., 2])
    if args.dist:
        return -torch.distributions.StudentT(nu, mu, sigma).log_prob(y).mean()
    z = (y - mu) / sigma
    nll = (-torch.lgamma(0.5 * (nu + 1.0)) + torch.lgamma(0.5 * nu) + 0.5 * torch.log(nu * math.pi)
           + torch.log(sigma) + 0.5 * (nu + 1.0) * torch.log1p(z * z / nu))
    return nll.mean()


model = Forecaster()
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
x = torch.rand(B, T, FEATURES) * 2 - 1
y = torch.rand(B, HORIZON) * 2 - 1  # targets of the horizon steps only: the context is masked
losses = []


def step():
    opt.zero_grad(set_to_none=True)
    out = model(x)
    loss = student_t_nll(out[:, CONTEXT:], y)
    loss.backward()
    opt.step()
    losses.append(loss.item())


for _ in range(args.warmup):
    step()
times = []
t_start = time.perf_counter()
while len(times) < args.min_steps or time.perf_counter() - t_start < args.seconds:
    t0 = time.perf_counter()
    step()
    times.append(time.perf_counter() - t0)
med, mean = statistics.median(times), statistics.fmean(times)
print(json.dumps({
    "name": "forecast-2x64",
    "bench": "torch_forecast_train",
    "config": {"features": FEATURES, "hidden": HIDDEN, "layers": LAYERS, "batch": B, "seq": T,
               "horizon": HORIZON, "head": "student_t", "nll": "torch.distributions" if args.dist else "written out",
               "optimizer": "Adam", "lr": 1e-3, "warmup": args.warmup},
    "samples_per_s": round(B / mean, 1),
    "samples_per_s_median_step": round(B / med, 1),
    "median_ms": round(1e3 * med, 3),
    "mean_ms": round(1e3 * mean, 3),
    "reps": len(times),
    "loss_first": round(losses[0], 5),
    "loss_last": round(losses[-1], 5),
    "torch": torch.__version__,
    "threads": torch.get_num_threads(),
    "mkldnn_enabled": torch.backends.mkldnn.enabled,
    "cpu_capability": torch.backends.cpu.get_cpu_capability(),
    "loadavg_1m": os.getloadavg()[0],
}))

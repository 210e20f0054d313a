"""The cost of the door: an outside optimizer (torch.optim.Adam by import path) against
adamgen's own `adam` row on the same runs, per run-step, measured in one process.

    python benchmarks/bench_outside.py            # writes results/benchmarks/outside.json
    python benchmarks/bench_outside.py --quick    # shorter timings

Setup: E1 data (d = 1000, n = 200, s = 100; m = 20, q = 3), float32, Adam (η = 5e-5,
λ = 1e-5), R runs in lockstep (each its own seed), at B = 2 and B = 200. Columns, in seconds
per run-step (one run's one step):

    torch       adamgen's `adam` row on the torch engine (the dense program: one batched
                update of the lockstep stack)
    outside     torch.optim.Adam through the door (the same batched loss and gradient, then
                each run's own optimizer instance steps on its own two filter banks)
    fast        adamgen's `adam` row on the fast engine (numba), for scale

and where the outside column's time goes, timed apart on the same tensors: the batched loss
and gradient, handing each run its gradient (the parameter groups), the runs' `step` calls,
and stacking the runs' parameters back for the next step. Before any timing the two columns'
runs are checked to agree (float64, every stored weight within 1e-10 relative): speed is
never compared between different numbers. Each cell interleaves `--rounds` rounds of the
columns (the host's speed drifts) and reports the median; ratios are of those medians.
"""

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from adamgen.config import parse_run_config
from adamgen.trainer import train

ROOT = Path(__file__).resolve().parents[1]
DATA = {"kind": "patch", "d": 1000, "n": 200, "s": 100, "sigma_p": 0.1, "alpha": 0.2,
        "n_test": 200}
MODEL = {"q": 3, "m": 20, "c": 1.0, "sigma_0": 0.01}


def runs(name: str, engine: str, batch: int, epochs: int, R: int, dtype: str = "float32",
         store: bool = False) -> list:
    return [parse_run_config({
        "seed": seed, "data": DATA, "model": MODEL,
        "optimizer": {"name": name, "lr": 5e-5, "weight_decay": 1e-5},
        "train": {"epochs": epochs, "batch_size": batch, "engine": engine, "dtype": dtype},
        "probes": {"per_decade": 1, "store_weights": store}}) for seed in range(R)]


COLUMNS = {"torch": ("adam", "torch"), "outside": ("torch.optim.Adam", "torch"),
           "fast": ("adam", "fast")}


def check_parity() -> float:
    """Largest relative difference of the final weights, adam row vs torch.optim.Adam."""
    worst = 0.0
    for batch in (2, 200):
        a = train(runs("adam", "torch", batch, 3 if batch == 2 else 100, 2, "float64", True))
        b = train(runs("torch.optim.Adam", "torch", batch, 3 if batch == 2 else 100, 2,
                       "float64", True))
        for x, y in zip(a, b, strict=True):
            scale = np.abs(x.weights_final).max()
            worst = max(worst, float(np.abs(x.weights_final - y.weights_final).max() / scale))
    assert worst <= 1e-10, worst
    return worst


def per_run_step(column: str, batch: int, R: int, steps: int) -> float:
    name, engine = COLUMNS[column]
    epochs = max(1, steps * batch // DATA["n"])
    rs = runs(name, engine, batch, epochs, R)
    start = time.perf_counter()
    (result, *_) = train(rs, progress_every=1e9)
    total = time.perf_counter() - start
    return total / (R * epochs * (DATA["n"] // batch))


def breakdown(batch: int, R: int, steps: int) -> dict:
    """Where the door's time goes: its step's four parts, each timed alone, per run-step."""
    from adamgen.data import generate
    from adamgen.models import network

    cfg = runs("torch.optim.Adam", "torch", batch, 1, R)[0]
    net = network(cfg).impl()
    ds = generate(cfg.data, 0)
    x, y = torch.as_tensor(ds.train.x).float(), torch.as_tensor(ds.train.y)
    X, Y = torch.stack([x[:batch]] * R), torch.stack([y[:batch]] * R)
    stack = torch.stack([net.init_weights(r) for r in runs("adam", "torch", batch, 1, R)])
    stack = stack.float()
    params = [[torch.nn.Parameter(g.clone().contiguous()) for g in net.parameter_groups(w)]
              for w in stack]
    optimizers = [torch.optim.Adam(g, lr=5e-5, weight_decay=1e-5) for g in params]
    parts = {"loss and gradient (batched)": 0.0, "gradients to the runs": 0.0,
             "the runs' step calls": 0.0, "parameters stacked back": 0.0}
    for _ in range(steps):
        t0 = time.perf_counter()
        with torch.no_grad():
            loss, grad = net.loss_and_grad(stack, X, Y, cfg.model)
        t1 = time.perf_counter()
        for r in range(R):
            for p, g in zip(params[r], net.parameter_groups(grad[r]), strict=True):
                p.grad = g.contiguous()
        t2 = time.perf_counter()
        for r in range(R):
            optimizers[r].step()
        t3 = time.perf_counter()
        with torch.no_grad():
            stack = torch.stack([net.from_parameter_groups([p.detach() for p in g])
                                 for g in params])
        t4 = time.perf_counter()
        for key, dt in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            parts[key] += dt
    return {k: v / (steps * R) for k, v in parts.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="shorter timings")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "results" / "benchmarks" / "outside.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    steps = 300 if args.quick else 1500
    parity = check_parity()
    print(f"parity (float64, final weights): adam row vs torch.optim.Adam within {parity:.1e}")
    rows = []
    for batch in (2, 200):
        for R in (1, 8):
            times = {c: [] for c in COLUMNS}
            n_steps = steps if batch == 2 else steps // 5
            for _ in range(args.rounds):
                for c in COLUMNS:
                    times[c].append(per_run_step(c, batch, R, n_steps))
            med = {c: float(np.median(v)) for c, v in times.items()}
            parts = breakdown(batch, R, n_steps)
            row = {"batch_size": batch, "runs": R, "seconds_per_run_step": med,
                   "outside_over_torch": med["outside"] / med["torch"],
                   "outside_minus_torch_us": 1e6 * (med["outside"] - med["torch"]),
                   "outside_parts_us": {k: 1e6 * v for k, v in parts.items()}}
            rows.append(row)
            print(f"B = {batch:3d}, R = {R}: torch {1e6 * med['torch']:7.1f} µs, outside "
                  f"{1e6 * med['outside']:7.1f} µs ({row['outside_over_torch']:.2f}x, "
                  f"+{row['outside_minus_torch_us']:.1f} µs), fast {1e6 * med['fast']:7.1f} "
                  "µs per run-step")
            print("    the door's step, per run-step: " + ", ".join(
                f"{k} {v:.1f} µs" for k, v in row["outside_parts_us"].items()))
    out = {"machine": f"{platform.processor() or platform.machine()}, "
                      f"{torch.get_num_threads()} thread", "python": sys.version.split()[0],
           "torch": torch.__version__, "parity": parity, "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1))
    print(f"written {args.out}")


if __name__ == "__main__":
    main()

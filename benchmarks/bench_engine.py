"""Run-steps per second of adamgen against the naive PyTorch loop, measured in one process.

    python benchmarks/bench_engine.py            # writes results/benchmarks/engine.json
    python benchmarks/bench_engine.py --quick    # shorter timings, same checks

Setup: SPEC E1 data (d = 1000, n = 200, s = 100; m = 20, q = 3), float32. Rows: Adam
(η = 5e-5, λ = 1e-5) and (S)GD (η = 0.02, λ = 1e-5; `gd` at B = n, `sgd` below) at
B = 2, 20 and 200. Columns:

    (a) naive       benchmarks/naive.py: nn.Module + autograd + torch.optim, one run
    (b) adamgen     one run, with the engine that `train.engine: auto` picks
    (c) lockstep    R runs advanced together (each its own seed, data and learning rate)

Ratios are run-steps per second over (a), from this run. Before any timing, every adamgen path
is checked against (a) in float64 (same data, initial weights and batch order): speed is never
bought with different numbers. The peak memory of one paper-size run is measured in a child
process.
"""

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import naive  # noqa: E402

from adamgen import data as datamod  # noqa: E402
from adamgen.config import parse_run_config  # noqa: E402
from adamgen.engines import choose  # noqa: E402
from adamgen.model import init_weights  # noqa: E402
from adamgen.optim import per_run_hyperparameters  # noqa: E402
from adamgen.seeding import generator  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = {"adam": {"lr": 5e-5, "weight_decay": 1e-5}, "gd": {"lr": 0.02, "weight_decay": 1e-5}}
N = 200


def run_config(optimizer: str, batch: int, seed: int = 0, lr_scale: float = 1.0,
               dtype: str = "float32"):
    name = optimizer if optimizer == "adam" or batch == N else "sgd"
    settings = dict(SETTINGS[optimizer], lr=SETTINGS[optimizer]["lr"] * lr_scale)
    return parse_run_config({"seed": seed, "data": {"n_test": 100},
                             "optimizer": {"name": name, **settings},
                             "train": {"batch_size": batch, "dtype": dtype}})


class Adamgen:
    """R runs of one (optimizer, B) cell, advanced by the engine `auto` chooses."""

    def __init__(self, runs, datasets):
        dtype = getattr(torch, runs[0].train.dtype)
        self.runs = runs
        W0 = torch.stack([init_weights(r) for r in runs]).to(dtype)
        name = runs[0].optimizer["name"]
        hyper = per_run_hyperparameters(name, [r.optimizer for r in runs], like=W0)
        engine = choose(runs[0].train.engine, torch.device("cpu"), datasets)
        index = np.arange(len(runs)) % len(datasets)
        self.engine = engine(datasets, index, W0, name, hyper, runs[0].model,
                             runs[0].batch_size)
        self.orders = [generator(r.seed, "batch_order") for r in runs]
        self.epoch = 0

    def advance(self, epochs: int) -> None:
        B = self.runs[0].batch_size
        perms = None
        if B < N:
            perms = np.stack([np.stack([g.permutation(N) for g in self.orders])
                              for _ in range(epochs)])
        self.engine.advance(self.epoch, perms, epochs)
        self.epoch += epochs


def naive_model(run, dataset):
    dtype = getattr(torch, run.train.dtype)
    model = naive.TwoLayerCNN(init_weights(run).to(dtype), run.model.q)
    opt = naive.make_optimizer(run.optimizer["name"], model.parameters(), run.optimizer["lr"],
                               run.optimizer["weight_decay"])
    x = torch.as_tensor(dataset.train.x).to(dtype)
    y = torch.as_tensor(dataset.train.y)
    return model, opt, x, y


def verify(optimizer: str, batch: int, dataset, epochs: int = 3) -> float:
    """Largest relative weight difference between (a), (b) and a member of (c), float64."""
    run = run_config(optimizer, batch, dtype="float64")
    model, opt, x, y = naive_model(run, dataset)
    order = generator(run.seed, "batch_order")
    batches = []
    for _ in range(epochs):
        perm = torch.from_numpy(order.permutation(N)) if batch < N else torch.arange(N)
        batches += list(perm.split(batch))
    naive.train(model, opt, x, y, batches)
    reference = model.weight.detach()
    single = Adamgen([run], [dataset])
    single.advance(epochs)
    group = Adamgen([run_config(optimizer, batch, seed=1, lr_scale=2.0, dtype="float64"), run],
                    [datamod.generate(run_config(optimizer, batch, seed=1).data, 1), dataset])
    group.advance(epochs)
    scale = reference.abs().max()
    return max(float((single.engine.weights()[0] - reference).abs().max() / scale),
               float((group.engine.weights()[1] - reference).abs().max() / scale))


def time_naive(optimizer: str, batch: int, dataset, seconds: float) -> float:
    run = run_config(optimizer, batch)
    model, opt, x, y = naive_model(run, dataset)
    steps, start = 0, time.perf_counter()
    naive.train(model, opt, x, y, list(torch.randperm(N).split(batch)))  # warm up
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        batches = list(torch.randperm(N).split(batch))
        naive.train(model, opt, x, y, batches)
        steps += len(batches)
    return steps / (time.perf_counter() - start)


def time_adamgen(optimizer: str, batch: int, datasets, R: int, seconds: float) -> float:
    runs = [run_config(optimizer, batch, seed=r % len(datasets), lr_scale=1 + r / R)
            for r in range(R)]
    group = Adamgen(runs, datasets[:R])
    group.advance(1)  # compiles on first use
    epochs, start = 1, time.perf_counter()
    group.advance(1)
    per_epoch = max(1e-6, time.perf_counter() - start)
    chunk = max(1, int(0.25 / per_epoch))
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        group.advance(chunk)
        steps += chunk * (N // batch)
        epochs += chunk
    return R * steps / (time.perf_counter() - start)


def peak_memory_mb() -> float:
    """Max resident memory of `adamgen train` on the paper-size E1 Adam config (child)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    subprocess.run([sys.executable, "-m", "adamgen", "train",
                    str(ROOT / "config/runs/zou_e1_adam.yaml"), "--set", "train.epochs=100",
                    "--out", "/tmp/adamgen-bench-memory.nc"], check=True, capture_output=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(before, after) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="0.5 s per measurement")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--lockstep", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--out", default=str(ROOT / "results/benchmarks/engine.json"))
    args = parser.parse_args()
    seconds = 0.5 if args.quick else args.seconds

    base = run_config("adam", N)
    datasets = [datamod.generate(base.data, seed) for seed in range(max(args.lockstep))]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"{platform.processor() or platform.machine()}")
    rows = []
    for optimizer in ("adam", "gd"):
        for batch in (2, 20, 200):
            err = verify(optimizer, batch, datasets[0])
            assert err <= 1e-9, f"{optimizer} B={batch}: adamgen differs from naive by {err:.3g}"
            row = {"optimizer": optimizer if batch == N or optimizer == "adam" else "sgd",
                   "batch_size": batch, "max_relative_difference_vs_naive": err,
                   "naive": time_naive(optimizer, batch, datasets[0], seconds),
                   "single": time_adamgen(optimizer, batch, datasets, 1, seconds)}
            for R in args.lockstep:
                row[f"lockstep_{R}"] = time_adamgen(optimizer, batch, datasets, R, seconds)
            row["ratios"] = {k: row[k] / row["naive"] for k in row
                             if k == "single" or k.startswith("lockstep")}
            rows.append(row)
            cells = "  ".join(f"{k} {v:8.1f}x" for k, v in row["ratios"].items())
            print(f"{row['optimizer']:5s} B={batch:<4d} naive {row['naive']:8.0f} run-steps/s  "
                  f"{cells}   (max rel. diff {err:.1e})", flush=True)
    memory = peak_memory_mb()
    print(f"peak memory of a paper-size run: {memory:.0f} MB")
    result = {
        "machine": {"processor": platform.processor(), "machine": platform.machine(),
                    "cpu_count": __import__("os").cpu_count(),
                    "torch_threads": torch.get_num_threads(), "torch": torch.__version__},
        "seconds_per_measurement": seconds,
        "unit": "run-steps per second; ratios over the naive loop measured in this run",
        "rows": rows,
        "peak_memory_mb_paper_run": memory,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

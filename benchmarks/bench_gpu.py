"""Run-steps per second of whole lockstep groups on one device against the naive loop there.

    python benchmarks/bench_gpu.py                     # CUDA: R = 1, 64, 1024, 4096; B = 2, 200
    python benchmarks/bench_gpu.py --device cpu --runs 1 16 --seconds 0.5     # the same on CPU

Writes results/benchmarks/gpu-<device type>.json. Setup: E1 data (d = 1000, n = 200, s = 100;
m = 20, q = 3), float32, every run its own learning rate and one of 16 data sets. Rows: Adam
(η = 5e-5, λ = 1e-5), AdamW (η = 5e-5, λ = 0.01) and (S)GD (η = 0.02, λ = 1e-5; `gd` at
B = n, `sgd` at B = 2), at B = 2 and 200. Columns:

    naive      benchmarks/naive.py on the same device: nn.Module + autograd + torch.optim, one
               run at a time (R runs of it take R times as long)
    batched    R runs in lockstep on the torch engine (adamgen.engines.dense), for each
               `--compile` mode (default: off and default; reduce-overhead on CUDA too)

The ratio is batched over naive run-steps per second, from this run; both are timed with the
device synchronised, after a warm-up that includes compilation (reported separately). The
peak device memory of each cell (torch.cuda.max_memory_allocated) is reported beside the
estimate that sizes GPU jobs (adamgen.engines.dense.device_memory). Before any timing, the
torch engine is checked against the naive loop in float64 on the device: speed is never bought
with different numbers.
"""

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import naive  # noqa: E402
from bench_engine import naive_model  # noqa: E402

from adamgen import data as datamod  # noqa: E402
from adamgen.config import parse_run_config  # noqa: E402
from adamgen.engines import ENGINES  # noqa: E402
from adamgen.engines.dense import device_memory  # noqa: E402
from adamgen.models import network  # noqa: E402
from adamgen.models.two_layer_cnn import to_filters  # noqa: E402
from adamgen.optim import per_run_hyperparameters  # noqa: E402
from adamgen.resources import human  # noqa: E402
from adamgen.seeding import generator  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
N, DATASETS = 200, 16
SETTINGS = {"adam": {"lr": 5e-5, "weight_decay": 1e-5},
            "adamw": {"lr": 5e-5, "weight_decay": 0.01},
            "gd": {"lr": 0.02, "weight_decay": 1e-5}}


def run_config(optimizer: str, batch: int, device: str, compile: str = "off", seed: int = 0,
               lr_scale: float = 1.0, dtype: str = "float32"):
    name = "sgd" if optimizer == "gd" and batch < N else optimizer
    settings = dict(SETTINGS[optimizer], lr=SETTINGS[optimizer]["lr"] * lr_scale)
    return parse_run_config({"seed": seed, "data": {"n_test": 100},
                             "optimizer": {"name": name, **settings},
                             "train": {"batch_size": batch, "dtype": dtype, "device": device,
                                       "engine": "torch", "compile": compile}})


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Group:
    """R runs of one cell on the torch engine, each its own learning rate and data set."""

    def __init__(self, runs, datasets, device):
        dtype = getattr(torch, runs[0].train.dtype)
        self.runs, self.device = runs, device
        W0 = torch.stack([network(r).impl().init_weights(r) for r in runs]).to(device, dtype)
        name = runs[0].optimizer["name"]
        hyper = per_run_hyperparameters(name, [r.optimizer for r in runs], like=W0)
        index = np.arange(len(runs)) % len(datasets)
        self.engine = ENGINES["torch"].build(runs[0], datasets, index, W0, hyper)
        self.orders = [generator(r.seed, "batch_order") for r in runs]
        self.epoch = 0

    def advance(self, epochs: int) -> None:
        """As the trainer does it: each run's batch order from its own stream, on the host."""
        perms = None
        if self.runs[0].batch_size < N:
            perms = np.stack([np.stack([g.permutation(N) for g in self.orders])
                              for _ in range(epochs)])
        self.engine.advance(self.epoch, perms, epochs)
        self.epoch += epochs


def verify(optimizer: str, batch: int, dataset, device, epochs: int = 2) -> float:
    """Largest relative weight difference between the naive loop and the torch engine,
    float64, on the device, after `epochs` epochs of the same batches."""
    run = run_config(optimizer, batch, str(device), dtype="float64")
    model, opt, x, y = naive_model(run, dataset, device)
    order = generator(run.seed, "batch_order")
    perms = np.stack([order.permutation(N) for _ in range(epochs)])[:, None]
    batches = [torch.as_tensor(p, device=device) for e in range(epochs)
               for p in (np.split(perms[e, 0], N // batch) if batch < N else [np.arange(N)])]
    naive.train(model, opt, x, y, batches)
    group = Group([run], [dataset], device)
    group.engine.advance(0, perms if batch < N else None, epochs)
    ref = model.weight.detach()
    mine = to_filters(group.engine.weights())[0]  # the naive loop's layout: w_{j,r}
    return float((mine - ref).abs().max() / ref.abs().max())


def measure(advance, device, seconds: float, steps_per_epoch: int, runs: int) -> dict:
    """Run-steps per second of `advance(epochs)`, after a warm-up (compilation included)."""
    start = time.perf_counter()
    advance(1)
    sync(device)
    warmup = time.perf_counter() - start
    start = time.perf_counter()
    advance(1)
    sync(device)
    chunk = max(1, int(0.25 / max(1e-6, time.perf_counter() - start)))
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    epochs, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        advance(chunk)
        epochs += chunk
    sync(device)
    elapsed = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
    return {"run_steps_per_s": runs * epochs * steps_per_epoch / elapsed,
            "warmup_s": warmup, "peak_device_bytes": peak}


def naive_cell(optimizer, batch, dataset, device, seconds) -> dict:
    model, opt, x, y = naive_model(run_config(optimizer, batch, str(device)), dataset, device)

    def advance(epochs: int) -> None:
        for _ in range(epochs):
            naive.train(model, opt, x, y, list(torch.randperm(N, device=device).split(batch)))

    return measure(advance, device, seconds, N // batch, 1)


def batched_cell(optimizer, batch, datasets, device, R, mode, seconds) -> dict:
    runs = [run_config(optimizer, batch, str(device), mode, seed=r % len(datasets),
                       lr_scale=1 + r / R) for r in range(R)]
    group = Group(runs, datasets[:R], device)
    out = measure(group.advance, device, seconds, N // batch, R)
    estimate = device_memory(runs[0], R, min(R, len(datasets)))
    out["estimated_device_bytes"] = estimate.total
    del group
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--runs", type=int, nargs="+", default=[1, 64, 1024, 4096])
    parser.add_argument("--batches", type=int, nargs="+", default=[2, 200])
    parser.add_argument("--optimizers", nargs="+", default=["adam", "adamw", "gd"],
                        choices=sorted(SETTINGS))
    parser.add_argument("--compile", nargs="+", default=None,
                        choices=["off", "default", "reduce-overhead"],
                        help="modes to time (default: off, default; and reduce-overhead on CUDA)")
    parser.add_argument("--seconds", type=float, default=2.0, help="per measurement")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    modes = args.compile or (["off", "default", "reduce-overhead"] if device.type == "cuda"
                             else ["off", "default"])
    out = Path(args.out or ROOT / f"results/benchmarks/gpu-{device.type}.json")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else (
        platform.processor() or platform.machine())
    print(f"torch {torch.__version__}, device {device} ({name})")
    base = run_config("adam", N, str(device))
    datasets = [datamod.generate(base.data, seed) for seed in range(DATASETS)]
    rows = []
    for optimizer in args.optimizers:
        for batch in args.batches:
            err = verify(optimizer, batch, datasets[0], device)
            assert err <= 1e-9, f"{optimizer} B={batch}: batched differs from naive by {err:.3g}"
            naive_rate = naive_cell(optimizer, batch, datasets[0], device, args.seconds)
            for R in args.runs:
                for mode in modes:
                    cell = batched_cell(optimizer, batch, datasets, device, R, mode,
                                        args.seconds)
                    row = {"optimizer": "sgd" if optimizer == "gd" and batch < N else optimizer,
                           "batch_size": batch, "runs": R, "compile": mode,
                           "naive_run_steps_per_s": naive_rate["run_steps_per_s"],
                           "ratio": cell["run_steps_per_s"] / naive_rate["run_steps_per_s"],
                           "max_relative_difference_vs_naive": err, **cell}
                    rows.append(row)
                    peak = row["peak_device_bytes"]
                    print(f"{row['optimizer']:6s} B={batch:<4d} R={R:<5d} {mode:15s} "
                          f"{row['run_steps_per_s']:12.4g} run-steps/s  naive "
                          f"{row['naive_run_steps_per_s']:9.4g}  ratio {row['ratio']:8.1f}  "
                          f"warm-up {row['warmup_s']:5.1f} s  peak "
                          f"{human(peak) if peak is not None else 'n/a'} (estimate "
                          f"{human(row['estimated_device_bytes'])})", flush=True)
    result = {"device": str(device), "device_name": name, "torch": torch.__version__,
              "python": platform.python_version(), "setup": "E1 data d=1000 n=200 s=100, "
              "m=20 q=3, float32", "rows": rows}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()

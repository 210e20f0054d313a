"""Run-steps per second of adamgen against the naive PyTorch loop, measured in one process.

    python benchmarks/bench_engine.py            # writes results/benchmarks/engine.json
    python benchmarks/bench_engine.py --quick    # shorter timings, same checks
    python benchmarks/bench_engine.py --engine torch    # (b) and (c) on one engine by name
    python benchmarks/bench_engine.py --estimate config/paper.yaml   # a config's training time

Setup: E1 data (d = 1000, n = 200, s = 100; m = 20, q = 3), float32. Rows: Adam
(η = 5e-5, λ = 1e-5) and (S)GD (η = 0.02, λ = 1e-5; `gd` at B = n, `sgd` below) at
B = 2, 20 and 200. Columns:

    (a) naive       benchmarks/naive.py: nn.Module + autograd + torch.optim, one run
    (b) adamgen     one run, with the engine that `train.engine: auto` picks (or `--engine`)
    (c) lockstep    R runs advanced together (each its own seed, data and learning rate)

With `--estimate CONFIG`, it times one lockstep group of each kind of job the config plans
(runs that share a lockstep program) for `--seconds` after a warm-up, and multiplies the rate
by the run-steps of every job of that kind, shared out among the experiments of its runs: the
training time of each experiment on this machine, with the jobs' engine threads (the fast
engine's two counted as two cores); probes, start-up, data sets and summaries are not in it.

Ratios are run-steps per second over (a), from this run. The host's speed drifts (these are
shared virtual machines), so each cell interleaves its measurements: `--rounds` rounds of
(a), (b), (c) in turn, and the ratio is of medians over rounds. Before any timing, every
adamgen path is checked against (a) in float64 (same data, initial weights and batch order):
speed is never bought with different numbers. The peak memory of one paper-size run is
measured in a child process.
"""

import argparse
import json
import platform
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
from adamgen.models import network  # noqa: E402
from adamgen.models.two_layer_cnn import to_filters  # noqa: E402
from adamgen.optim import per_run_hyperparameters  # noqa: E402
from adamgen.seeding import generator  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = {"adam": {"lr": 5e-5, "weight_decay": 1e-5}, "gd": {"lr": 0.02, "weight_decay": 1e-5}}
N = 200
ENGINE = "auto"  # train.engine of every adamgen run here (--engine)


def run_config(optimizer: str, batch: int, seed: int = 0, lr_scale: float = 1.0,
               dtype: str = "float32"):
    name = optimizer if optimizer == "adam" or batch == N else "sgd"
    settings = dict(SETTINGS[optimizer], lr=SETTINGS[optimizer]["lr"] * lr_scale)
    return parse_run_config({"seed": seed, "data": {"n_test": 100},
                             "optimizer": {"name": name, **settings},
                             "train": {"batch_size": batch, "dtype": dtype,
                                       "engine": ENGINE}})


class Timer:
    """Run-steps per second of a training loop, one measurement at a time, warm after setup."""

    def __init__(self, advance, steps_per_epoch: int, runs: int):
        self.advance, self.steps, self.runs = advance, steps_per_epoch, runs
        self.advance(1)  # compiles or warms up
        start = time.perf_counter()
        self.advance(1)
        self.chunk = max(1, int(0.2 / max(1e-6, time.perf_counter() - start)))

    def measure(self, seconds: float) -> float:
        epochs, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            self.advance(self.chunk)
            epochs += self.chunk
        return self.runs * epochs * self.steps / (time.perf_counter() - start)


class Adamgen:
    """R runs of one (optimizer, B) cell, advanced by the engine `auto` chooses."""

    def __init__(self, runs, datasets, index=None):
        dtype = getattr(torch, runs[0].train.dtype)
        self.runs = runs
        W0 = torch.stack([network(r).impl().init_weights(r) for r in runs]).to(dtype)
        name = runs[0].optimizer["name"]
        hyper = per_run_hyperparameters(name, [r.optimizer for r in runs], like=W0)
        engine, _ = choose(runs[0])
        index = np.arange(len(runs)) % len(datasets) if index is None else index
        self.engine = engine.build(runs[0], datasets, index, W0, hyper)
        self.orders = [generator(r.seed, "batch_order") for r in runs]
        self.epoch = 0

    def advance(self, epochs: int) -> None:
        B, n = self.runs[0].batch_size, self.runs[0].data.n
        perms = None
        if B < n:
            perms = np.stack([np.stack([g.permutation(n) for g in self.orders])
                              for _ in range(epochs)])
        self.engine.advance(self.epoch, perms, epochs)
        self.epoch += epochs


def estimate(config_path: str, seconds: float) -> list[dict]:
    """Per experiment of a workflow config: its run-steps and the hours its training takes
    here, from one group of each kind of job (lockstep program) timed. A job's time goes to the
    experiments of its runs by their run-steps (a run two experiments share counts for the
    first, as the workflow trains it once)."""
    import os

    import numba

    from adamgen.config import load_yaml, lockstep_key
    from adamgen.planner import lockstep_groups, plan
    from adamgen.trainer import dataset_key

    config = load_yaml(config_path)
    planned = plan(config)
    owner = {}
    for name, experiment in planned.items():
        for run in experiment.runs:
            owner.setdefault(run.path, name)
    kinds: dict[str, list] = {}
    for group in lockstep_groups(planned, config.get("runs_per_job", 1)):
        kinds.setdefault(str(lockstep_key(group.runs[0].config)), []).append(group)
    cores = os.cpu_count() or 1
    rows = []
    for groups in kinds.values():
        group = max(groups, key=lambda g: len(g.runs))
        runs = [r.config for r in group.runs]
        keys = list(dict.fromkeys(dataset_key(r) for r in runs))
        datasets = [datamod.generate(k[1], k[0]) for k in keys]
        threads = min(cores, group.threads)
        torch.set_num_threads(threads)
        numba.set_num_threads(threads)
        timer = Adamgen(runs, datasets, np.array([keys.index(dataset_key(r)) for r in runs]))
        rate = Timer(timer.advance, runs[0].steps_per_epoch, len(runs)).measure(seconds)
        steps: dict[str, int] = {}
        for r in (r for g in groups for r in g.runs):
            steps[owner[r.path]] = (steps.get(owner[r.path], 0)
                                    + r.config.train.epochs * r.config.steps_per_epoch)
        for experiment, total in steps.items():
            hours = total / rate / 3600
            rows.append({"experiment": experiment, "optimizer": runs[0].optimizer["name"],
                         "batch_size": runs[0].batch_size, "engine": choose(runs[0])[0].name,
                         "jobs": len(groups), "runs": sum(owner[r.path] == experiment
                                                          for g in groups for r in g.runs),
                         "run_steps": total, "run_steps_per_s": rate, "threads": threads,
                         "hours": hours, "core_hours": hours * threads})
        print(f"{runs[0].optimizer['name']:12s} B={runs[0].batch_size:<4d} "
              f"{choose(runs[0])[0].name:6s} {sum(len(g.runs) for g in groups):4d} runs in "
              f"{len(groups)} jobs at {rate:9.0f} run-steps/s ({threads} threads): "
              f"{sum(steps.values()) / rate / 60:6.1f} min", flush=True)
    by: dict[str, list] = {}
    for row in rows:
        by.setdefault(row["experiment"], []).append(row)
    print(f"per experiment, on {cores} cores (core-minutes, and core-minutes / {cores}):")
    for name in planned:
        part = by.get(name, [])
        core = sum(r["core_hours"] for r in part) * 60
        print(f"  {name:16s} {sum(r['runs'] for r in part):5d} runs "
              f"{sum(r['run_steps'] for r in part):10.3g} run-steps  {core:6.1f} core-min "
              f"{core / cores:6.1f} min")
    total = sum(r["core_hours"] for r in rows) * 60
    print(f"  {'all':16s} {sum(r['runs'] for r in rows):5d} runs "
          f"{sum(r['run_steps'] for r in rows):10.3g} run-steps  {total:6.1f} core-min "
          f"{total / cores:6.1f} min")
    return rows


def naive_model(run, dataset, device: str | torch.device = "cpu"):
    """(a) for `run` on `device`: its module, torch.optim optimizer, inputs and labels."""
    dtype = getattr(torch, run.train.dtype)
    W0 = to_filters(network(run).impl().init_weights(run)[None])[0].contiguous()
    model = naive.TwoLayerCNN(W0.to(device, dtype), run.model.q)  # w_{j,r}: [2, m, d]
    opt = naive.make_optimizer(run.optimizer["name"], model.parameters(), run.optimizer["lr"],
                               run.optimizer["weight_decay"])
    x = torch.as_tensor(dataset.train.x).to(device, dtype)
    y = torch.as_tensor(dataset.train.y).to(device)
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
    single, group = to_filters(single.engine.weights()), to_filters(group.engine.weights())
    return max(float((single[0] - reference).abs().max() / scale),
               float((group[1] - reference).abs().max() / scale))


def naive_timer(optimizer: str, batch: int, dataset) -> Timer:
    run = run_config(optimizer, batch)
    model, opt, x, y = naive_model(run, dataset)

    def advance(epochs: int) -> None:
        for _ in range(epochs):
            naive.train(model, opt, x, y, list(torch.randperm(N).split(batch)))

    return Timer(advance, N // batch, 1)


def adamgen_timer(optimizer: str, batch: int, datasets, R: int) -> Timer:
    runs = [run_config(optimizer, batch, seed=r % len(datasets), lr_scale=1 + r / R)
            for r in range(R)]
    group = Adamgen(runs, datasets[:R])
    return Timer(group.advance, N // batch, R)


CHILD = """
import sys
from adamgen.cli import main
code = main(sys.argv[1:])
status = open("/proc/self/status").read()
print(next(line for line in status.splitlines() if line.startswith("VmHWM")))
sys.exit(code)
"""


def peak_memory_mb() -> float:
    """Peak resident memory of `adamgen train` on the paper-size E1 Adam config, in a child.

    The child reports its own high-water mark (VmHWM, Linux): the rusage of a forked child
    would count the pages it shared with this (large) process before exec.
    """
    proc = subprocess.run([sys.executable, "-c", CHILD, "train",
                           str(ROOT / "config/runs/zou_e1_adam.yaml"), "--set",
                           "train.epochs=100", "--out", "/tmp/adamgen-bench-memory.nc"],
                          check=True, capture_output=True, text=True)
    return int(proc.stdout.split()[-2]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short measurements, 2 rounds")
    parser.add_argument("--seconds", type=float, default=1.0, help="per measurement")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--lockstep", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--out", default=str(ROOT / "results/benchmarks/engine.json"))
    parser.add_argument("--engine", default="auto", help="train.engine (default: auto)")
    parser.add_argument("--estimate", metavar="CONFIG",
                        help="instead: each experiment's training time for a workflow config")
    args = parser.parse_args()
    global ENGINE
    ENGINE = args.engine
    if args.estimate:
        rows = estimate(args.estimate, args.seconds)
        out = Path(args.out).with_name(f"estimate-{Path(args.estimate).stem}.json")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(rows, indent=2) + "\n")
        print(f"wrote {out}")
        return
    seconds, rounds = (0.3, 2) if args.quick else (args.seconds, args.rounds)

    base = run_config("adam", N)
    datasets = [datamod.generate(base.data, seed) for seed in range(max(args.lockstep))]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"{platform.processor() or platform.machine()}")
    rows = []
    for optimizer in ("adam", "gd"):
        for batch in (2, 20, 200):
            err = verify(optimizer, batch, datasets[0])
            assert err <= 1e-9, f"{optimizer} B={batch}: adamgen differs from naive by {err:.3g}"
            timers = {"naive": naive_timer(optimizer, batch, datasets[0]),
                      "single": adamgen_timer(optimizer, batch, datasets, 1)}
            for R in args.lockstep:
                timers[f"lockstep_{R}"] = adamgen_timer(optimizer, batch, datasets, R)
            samples = {k: [] for k in timers}
            for _ in range(rounds):  # interleaved, so that a slow phase of the host hits all
                for k, timer in timers.items():
                    samples[k].append(timer.measure(seconds))
            row = {"optimizer": optimizer if batch == N or optimizer == "adam" else "sgd",
                   "batch_size": batch, "engine": choose(run_config(optimizer, batch))[0].name,
                   "max_relative_difference_vs_naive": err,
                   **{k: float(np.median(v)) for k, v in samples.items()},
                   "samples": samples}
            row["ratios"] = {k: row[k] / row["naive"] for k in timers if k != "naive"}
            rows.append(row)
            cells = "  ".join(f"{k} {v:8.1f}x" for k, v in row["ratios"].items())
            print(f"{row['optimizer']:5s} B={batch:<4d} {row['engine']:6s} naive "
                  f"{row['naive']:8.0f} run-steps/s  {cells}   (max rel. diff {err:.1e})",
                  flush=True)
    memory = peak_memory_mb()
    print(f"peak memory of a paper-size run: {memory:.0f} MB")
    result = {
        "machine": {"processor": platform.processor(), "machine": platform.machine(),
                    "cpu_count": __import__("os").cpu_count(),
                    "torch_threads": torch.get_num_threads(), "torch": torch.__version__},
        "seconds_per_measurement": seconds,
        "rounds": rounds,
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

"""Padam's step on the fast engine next to Adam's and AMSGrad's, in the same process.

    python benchmarks/bench_padam.py [--epochs 20] [--rounds 3]

E1's data and model (d = 1000, n = 200, m = 20) at B = 2, four runs in lockstep per optimizer
(seeds 0-3), float32, interleaved round by round after a warm-up that compiles the kernels.
Padam at p = 1/2 takes AMSGrad's square root instead of a power; in float32, p = k/16
(2p = k/8: p = 1/16, 1/4, ...) takes square roots in float64, and any other p (0.3 here) a
power per weight. Reports run-steps per second (training time only, as the trainer measures
it) and writes results/benchmarks/padam.json.
"""

import argparse
import json
import statistics
from pathlib import Path

from adamgen.config import parse_run_config
from adamgen.trainer import train

ROOT = Path(__file__).resolve().parents[1]
CASES = {
    "adam": {"name": "adam", "lr": 5e-5},
    "amsgrad": {"name": "amsgrad", "lr": 5e-5},
    "padam p=1/2": {"name": "padam", "lr": 5e-5, "p": 0.5},
    "padam p=1/4": {"name": "padam", "lr": 1e-3, "p": 0.25},
    "padam p=1/16": {"name": "padam", "lr": 1e-3, "p": 0.0625},
    "padam p=0.3": {"name": "padam", "lr": 1e-3, "p": 0.3},
}
BATCH, RUNS = 2, 4


def run_steps_per_second(optimizer: dict, epochs: int) -> float:
    runs = [parse_run_config({"seed": s, "data": {"n_test": 100},
                              "optimizer": {**optimizer, "weight_decay": 1e-5},
                              "train": {"batch_size": BATCH, "epochs": epochs,
                                        "engine": "fast"},
                              "probes": {"per_decade": 1}}) for s in range(RUNS)]
    results = train(runs)
    steps = RUNS * epochs * runs[0].data.n // BATCH
    return steps / results[0].timing["train_time_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "results/benchmarks/padam.json"))
    args = parser.parse_args()
    for optimizer in CASES.values():  # compile every kernel variant first
        run_steps_per_second(optimizer, 1)
    samples = {k: [] for k in CASES}
    for _ in range(args.rounds):
        for k, optimizer in CASES.items():
            samples[k].append(run_steps_per_second(optimizer, args.epochs))
    median = {k: statistics.median(v) for k, v in samples.items()}
    for k, v in median.items():
        print(f"{k:12s} {v:9.0f} run-steps/s  {v / median['amsgrad']:5.2f}x AMSGrad")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"batch_size": BATCH, "runs": RUNS,
                                          "epochs": args.epochs, "samples": samples,
                                          "median_run_steps_per_s": median}, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""What the curvature probes cost, and that runs which do not ask for them are not slower.

    python benchmarks/bench_hessian.py [--before 306a414] [--epochs 1000] [--rounds 3]

Times `adamgen train` on E1's Adam run (paper sizes, 16 probe points per decade) in child
processes, interleaved round by round:

- `before`   the same run at an adamgen commit without the hessian probes (a git worktree);
- `now`      the same run at this checkout;
- `exact`    with `probes.extra: [hessian]`, the CNN's exact Hessian diagonal;
- `hutch8`   with Hutchinson's estimate from 8 Rademacher vectors.

Each child reports its own training time (the run file's `train_time_s`), so interpreter
start-up and JIT compilation are left out. Writes results/benchmarks/hessian.json.
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHILD = """
import sys, time, xarray
sys.path.insert(0, sys.argv[1])
from adamgen.cli import main
assert main(sys.argv[2:]) == 0
with xarray.open_dataset(sys.argv[sys.argv.index("--out") + 1], engine="netcdf4") as ds:
    print(ds.attrs["train_time_s"])
"""


def train_seconds(root: Path, out: Path, epochs: int, extra: list[str]) -> float:
    args = [sys.executable, "-c", CHILD, str(root), "train",
            str(ROOT / "config/runs/zou_e1_adam.yaml"), "--set", f"train.epochs={epochs}",
            *extra, "--out", str(out)]
    proc = subprocess.run(args, cwd=root, check=True, capture_output=True, text=True)
    return float(proc.stdout.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="306a414", help="a commit without hessian probes")
    parser.add_argument("--epochs", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "results/benchmarks/hessian.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "before"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(old),
                        args.before], check=True, capture_output=True)
        try:
            cases = {
                "before": (old, []),
                "now": (ROOT, []),
                "exact": (ROOT, ["--set", "probes.extra=[hessian]"]),
                "hutch8": (ROOT, ["--set", "probes.extra=[hessian]",
                                  "--set", "probes.hessian_probes=8"]),
            }
            samples = {k: [] for k in cases}
            for k, (root, extra) in cases.items():  # warm-up: numba caches, page cache
                train_seconds(root, Path(tmp) / f"{k}.nc", 10, extra)
            for _ in range(args.rounds):
                for k, (root, extra) in cases.items():
                    samples[k].append(train_seconds(root, Path(tmp) / f"{k}.nc", args.epochs,
                                                    extra))
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)],
                           check=False, capture_output=True)
    median = {k: statistics.median(v) for k, v in samples.items()}
    for k, v in samples.items():
        print(f"{k:7s} median {median[k]:7.2f} s  ({', '.join(f'{x:.2f}' for x in v)})  "
              f"{median[k] / median['now']:5.2f}x now")
    print(f"now / before: {median['now'] / median['before']:.3f}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(
        {"epochs": args.epochs, "before": args.before, "samples_s": samples,
         "median_s": median}, indent=2) + "\n")


if __name__ == "__main__":
    main()

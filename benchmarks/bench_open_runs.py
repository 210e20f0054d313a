"""How long `adamgen.open_runs` takes over N run files, and the memory it holds.

    python benchmarks/bench_open_runs.py                   # N = 1500 and 10000
    python benchmarks/bench_open_runs.py --runs 200 --dir /tmp/runs

Writes N synthetic run files shaped like the paper config's E1 runs (one real run file as
the template, copied N times with its seed, learning rate and numbers
changed; every file a different run), then times `open_runs` on them cold (a fresh process,
so no file is in Python's memory) and reports the bytes of the Dataset it returns and the peak
resident memory of that process. Writes results/benchmarks/open_runs.json.
"""

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import netCDF4
import numpy as np

from adamgen.config import parse_run_config
from adamgen.jobs import train_to_files

ROOT = Path(__file__).resolve().parents[1]

E1_LIKE = {"data": {"kind": "patch", "d": 1000, "n": 200, "s": 100, "sigma_p": 0.1,
                    "n_test": 100},
           "model": {"q": 3, "m": 20}, "optimizer": {"name": "adam", "lr": 5e-5},
           "train": {"epochs": 10000, "batch_size": 200}, "probes": {"per_decade": 16}}

CHILD = """
import sys, time
import adamgen
start = time.perf_counter()
runs = adamgen.open_runs(sys.argv[1], workers=int(sys.argv[2]) or None)
seconds = time.perf_counter() - start
status = open("/proc/self/status").read()
peak = next(l for l in status.splitlines() if l.startswith("VmHWM")).split()[1]
print(seconds, runs.nbytes, int(peak) * 1024, runs.sizes["run"], runs.sizes["probe"])
"""


def template(where: Path) -> Path:
    """One real run file of E1's shape (full-batch Adam, 10^4 epochs; a few seconds)."""
    out = where / "template.nc"
    train_to_files([parse_run_config(E1_LIKE)], [str(out)], [None])
    return out


def write(N: int, directory: Path, source: Path) -> None:
    rng = np.random.default_rng(0)
    directory.mkdir(parents=True, exist_ok=True)
    for k in range(N):
        path = directory / f"run{k:05d}.nc"
        shutil.copyfile(source, path)
        with netCDF4.Dataset(path, "r+") as nc:
            config = json.loads(nc.getncattr("config"))
            config["seed"], config["optimizer"]["lr"] = k, 5e-5 * (1 + k / N)
            nc.setncattr("config", json.dumps(config))
            nc["seed"][...] = k
            nc["lr"][...] = config["optimizer"]["lr"]
            for name in ("train_loss", "test_error", "feature_learning"):
                values = nc[name][...]
                nc[name][...] = values * (1 + 0.01 * rng.standard_normal(values.shape))


def measure(directory: Path, workers: int) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD, str(directory), str(workers)],
                          capture_output=True, text=True, check=True)
    seconds, nbytes, peak, runs, probes = proc.stdout.split()
    return {"seconds": float(seconds), "dataset_bytes": int(nbytes),
            "peak_resident_bytes": int(peak), "runs": int(runs), "probes": int(probes)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, nargs="+", default=[1500, 10000])
    parser.add_argument("--dir", default=None, help="where to write the files (default: tmp)")
    parser.add_argument("--workers", type=int, default=0, help="0: open_runs' default")
    parser.add_argument("--out", default=str(ROOT / "results/benchmarks/open_runs.json"))
    args = parser.parse_args()
    base = Path(args.dir or tempfile.mkdtemp(prefix="adamgen-open-runs-"))
    start = time.perf_counter()
    source = template(base)
    rows = []
    for N in args.runs:
        directory = base / f"runs{N}"
        write(N, directory, source)
        row = {"files": N, **measure(directory, args.workers)}
        rows.append(row)
        print(f"{N:6d} run files: open_runs {row['seconds']:.2f} s, Dataset "
              f"{row['dataset_bytes'] / 2**20:.1f} MiB, peak resident "
              f"{row['peak_resident_bytes'] / 2**20:.0f} MiB", flush=True)
        shutil.rmtree(directory)
    file_bytes = source.stat().st_size
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"file_bytes": file_bytes, "rows": rows,
                               "setup_seconds": time.perf_counter() - start}, indent=2) + "\n")
    print(f"one run file: {file_bytes / 1024:.0f} KiB; wrote {out}")
    if not args.dir:
        shutil.rmtree(base)


if __name__ == "__main__":
    main()

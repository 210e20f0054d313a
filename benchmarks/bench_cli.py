"""How long `adamgen --help` and `adamgen keys` take, against a bare Python start in the same run.

    python benchmarks/bench_cli.py [--rounds 10]

The command line imports its heavy modules (torch, xarray, numba) only inside the commands that
need them; this measures that the help and the key listing stay close to the interpreter's own
start-up. Writes results/benchmarks/cli.json.
"""

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = {
    "python -c pass (baseline)": [sys.executable, "-c", "pass"],
    "adamgen --help": [sys.executable, "-m", "adamgen", "--help"],
    "adamgen keys": [sys.executable, "-m", "adamgen", "keys"],
}


def seconds(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--out", default=str(ROOT / "results/benchmarks/cli.json"))
    args = parser.parse_args()
    samples = {name: [] for name in COMMANDS}
    for _ in range(args.rounds):  # interleaved, so that a slow phase of the host hits all
        for name, command in COMMANDS.items():
            samples[name].append(seconds(command))
    base = statistics.median(samples["python -c pass (baseline)"])
    rows = []
    for name, values in samples.items():
        median = statistics.median(values)
        rows.append({"command": name, "median_s": median, "min_s": min(values),
                     "over_baseline": median / base})
        print(f"{name:28s} median {median * 1000:7.0f} ms  min {min(values) * 1000:7.0f} ms  "
              f"{median / base:5.1f}x the bare interpreter")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"rounds": args.rounds, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()

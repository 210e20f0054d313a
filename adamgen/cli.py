"""Command line: `adamgen train`, `adamgen data`, `adamgen config`, `adamgen keys`.

Bad input ends with one line `adamgen: error: ...` naming the key or file, exit status 2, and no
output file.
"""

import argparse
import logging
import sys
from pathlib import Path

import torch
import yaml

from . import __version__, runfile
from . import data as datamod
from .config import describe_keys, load_run_config, probe_epochs
from .errors import AdamgenError, DataFileError
from .trainer import dataset_key, train

log = logging.getLogger("adamgen")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="adamgen", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=f"adamgen {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    def with_config(name: str, help: str) -> argparse.ArgumentParser:
        s = sub.add_parser(name, help=help)
        s.add_argument("config", help="run config (YAML)")
        s.add_argument("--set", dest="overrides", action="append", default=[],
                       metavar="KEY=VALUE", help="override a key, e.g. optimizer.lr=1e-4")
        return s

    t = with_config("train", "train one run and write its NetCDF run file")
    t.add_argument("--out", required=True, help="run file to write (.nc)")
    t.add_argument("--data", help="dataset file from `adamgen data` (default: generate)")
    t.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's)")
    t.add_argument("--progress-every", type=float, default=10.0, metavar="SECONDS")
    d = with_config("data", "generate the run's dataset and write it as NetCDF")
    d.add_argument("--out", required=True, help="dataset file to write (.nc)")
    with_config("config", "print the fully resolved run config")
    sub.add_parser("keys", help="list every config key with its default and meaning")
    return p


def _log_to_stderr() -> None:
    """Progress and summaries go to stderr, whatever the root logger is doing."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s adamgen: %(message)s", "%H:%M:%S"))
    log.handlers[:] = [handler]
    log.setLevel(logging.INFO)
    log.propagate = False


def _prepare_out(path: str) -> None:
    parent = Path(path).resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DataFileError(
            f"cannot create the output directory '{parent}': {err.strerror}"
        ) from None


def _describe(run) -> str:
    hyper = ", ".join(f"{k}={v}" for k, v in run.optimizer.items() if k != "name")
    batch = "full batch" if run.batch_size == run.data.n else f"{run.steps_per_epoch} steps/epoch"
    return (f"{run.optimizer['name']} ({hyper}); B={run.batch_size} ({batch}), "
            f"T={run.train.epochs} epochs; data d={run.data.d} n={run.data.n} s={run.data.s} "
            f"sigma_p={run.data.sigma_p} alpha={run.data.alpha}; model m={run.model.m} "
            f"q={run.model.q} sigma_0={run.model.sigma_0}; seed {run.seed}; "
            f"{run.train.device} {run.train.dtype}; {len(probe_epochs(run))} probe epochs")


def cmd_train(args) -> None:
    run = load_run_config(args.config, args.overrides)
    datasets = {}
    if args.data:
        loaded = datamod.load(args.data)
        datamod.check_matches(loaded, run, args.data)
        datasets[dataset_key(run)] = loaded
    _prepare_out(args.out)
    if args.threads:
        torch.set_num_threads(args.threads)
    log.info("train: %s", _describe(run))
    (result,) = train([run], datasets, progress_every=args.progress_every)
    runfile.save(result, args.out)
    last = {k: v[-1] for k, v in result.probes.items()}
    log.info("wrote %s: %s; train error %.4f, test error %.4f, max_r <w_(+1,r), v> %.4g, "
             "%.1f s (%.0f steps/s)", args.out, result.status, last["train_error"],
             last["test_error"], last["feature_learning"][0].max(),
             result.timing["wall_time_s"], result.timing["steps_per_second"])


def cmd_data(args) -> None:
    run = load_run_config(args.config, args.overrides)
    _prepare_out(args.out)
    datamod.save(datamod.generate(run.data, run.seed), args.out)
    log.info("wrote %s: seed %d, n=%d, n_test=%d, d=%d", args.out, run.seed, run.data.n,
             run.data.n_test, run.data.d)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _log_to_stderr()
    try:
        if args.command == "train":
            cmd_train(args)
        elif args.command == "data":
            cmd_data(args)
        elif args.command == "config":
            run = load_run_config(args.config, args.overrides)
            print(yaml.safe_dump(run.to_dict(), sort_keys=False), end="")
        else:
            print(describe_keys())
    except AdamgenError as err:
        print(f"adamgen: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("adamgen: interrupted; no output written", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

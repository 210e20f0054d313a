"""Command line: `adamgen train`, `adamgen data`, `adamgen config`, `adamgen keys`.

Bad input ends with one line `adamgen: error: ...` naming the key or file, exit status 2, and no
output file.
"""

import argparse
import logging
import sys

import yaml

from . import __version__
from . import data as datamod
from .config import describe_keys, load_run_config
from .errors import AdamgenError
from .jobs import setup_logging, train_to_files
from .resources import check_output, data_memory

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


def cmd_train(args) -> None:
    run = load_run_config(args.config, args.overrides)
    train_to_files([run], [args.out], [args.data], threads=args.threads,
                   progress_every=args.progress_every)


def cmd_data(args) -> None:
    run = load_run_config(args.config, args.overrides)
    datamod.check_fits(run.data)
    check_output(args.out, data_memory(run.data).total)
    datamod.save(datamod.generate(run.data, run.seed), args.out)
    log.info("wrote %s: seed %d, n=%d, n_test=%d, d=%d", args.out, run.seed, run.data.n,
             run.data.n_test, run.data.d)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    setup_logging()
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

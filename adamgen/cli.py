"""Command line: `adamgen train`, `adamgen data`, `adamgen config`, `adamgen keys`, and for
workflow configs `adamgen plan` and `adamgen status`.

Bad input ends with one line `adamgen: error: ...` naming the key or file, exit status 2, and no
output file. Each command imports what it needs when it runs, so `--help` answers at once.
"""

import argparse
import logging
import sys

from ._version import __version__
from .errors import AdamgenError, ConfigError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="adamgen", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=f"adamgen {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    def with_config(name: str, help: str) -> argparse.ArgumentParser:
        s = sub.add_parser(name, help=help)
        s.add_argument("config", help="run config (YAML)")
        s.add_argument("--set", dest="overrides", action="append", default=[],
                       metavar="KEY=VALUE", help="override a key, e.g. optimizer.lr=1e-4")
        s.add_argument("--unset", action="append", default=[], metavar="KEY",
                       help="remove a key the config sets, e.g. optimizer.betas (it then "
                            "takes its default, or becomes an error where it does not apply)")
        return s

    t = with_config("train", "train one run and write its NetCDF run file")
    t.add_argument("--out", required=True, help="run file to write (.nc)")
    t.add_argument("--data", help="dataset file from `adamgen data` (default: generate)")
    t.add_argument("--threads", type=int,
                   help="CPU threads for the fast engine's kernels, one run each (default: "
                        "all); torch computes on one thread, so the numbers are the same "
                        "whatever this is")
    t.add_argument("--progress-every", type=float, default=10.0, metavar="SECONDS",
                   help="log a progress line (epoch, steps/s, time left) at most this often "
                        "(default: 10)")
    d = with_config("data", "generate the run's dataset and write it as NetCDF")
    d.add_argument("--out", required=True, help="dataset file to write (.nc)")
    with_config("config", "print the fully resolved run config")
    for name, help in (("plan", "validate a workflow config without Snakemake and say what it "
                                "would do: per experiment, runs present and to train, jobs, "
                                "estimated time, which summaries are redone and why"),
                       ("status", "during or after a workflow run: per experiment, runs done, "
                                  "running and left, and the time left (from the job logs)")):
        w = sub.add_parser(name, help=help)
        w.add_argument("configs", nargs="*", default=["config/config.yaml"], metavar="CONFIG",
                       help="workflow config(s), an overlay after its config, as "
                            "--configfile takes them (default: config/config.yaml)")
        w.add_argument("--cores", type=int, default=2,
                       help="cores the workflow runs on, for the time estimate (default: 2)")
        w.add_argument("--directory", default=".", help="the workflow's working directory, "
                       "where results/ is (default: here)")
    c = sub.add_parser("card", help="an optimizer's card: the papers' tests asked of any "
                       "torch.optim.Optimizer, through the workflow (results/cards/<name>/)")
    c.add_argument("optimizer", metavar="IMPORT_PATH",
                   help="the optimizer: torch.optim.NAdam, mypkg.opt:MyOpt, or a row of "
                        "adamgen's table (adam, sgd_momentum, ...)")
    c.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="one of its arguments, e.g. lr=1e-3 or betas=[0.9,0.99]")
    c.add_argument("--battery", default="default", help="default, or tiny (seconds; the tests')")
    c.add_argument("--name", help="the card's name (default: from the import path)")
    c.add_argument("--out", help="also copy the card here (default: results/cards/<name>/)")
    c.add_argument("--tune-lr", action="store_true",
                   help="each test at the lr of lr x {0.1, 1, 10} with the lowest final "
                        "training loss")
    c.add_argument("--test-lr", dest="lrs", action="append", default=[], metavar="TEST=LR",
                   help="a test's own lr, e.g. cao=1.0 (default: the card's lr times the "
                        "battery's lr_scale of the test)")
    c.add_argument("--cores", type=int, default=2, help="Snakemake's --cores (default: 2)")
    c.add_argument("--dry-run", action="store_true", help="write the config and plan only")
    k = sub.add_parser("keys", help="list every config key with its default and meaning (YAML)")
    k.add_argument("--markdown", action="store_true",
                   help="as the Markdown tables of config/README.md")
    k.add_argument("--metrics", action="store_true",
                   help="the claims' metrics, as the Markdown table of config/README.md")
    k.add_argument("--rules", action="store_true",
                   help="the claims' reading rules, as the Markdown table of config/README.md")
    return p


def _run(args):
    from .config import load_run_config  # lazy: --help answers before the registries load

    return load_run_config(args.config, args.overrides, args.unset)


def cmd_train(args) -> None:
    from .jobs import train_to_files  # lazy: torch loads only for the commands that train

    train_to_files([_run(args)], [args.out], [args.data], threads=args.threads,
                   progress_every=args.progress_every)


def cmd_data(args) -> None:
    from . import data as datamod  # lazy: each command imports what it needs
    from . import datafile  # lazy: xarray loads only for the commands that write files
    from .resources import check_output  # lazy: as the data registry

    run = _run(args)
    datamod.check_fits(run.data)
    check_output(args.out, datamod.DATA_MODELS[run.data.kind].memory(run.data).total)
    datafile.save(datamod.generate(run.data, run.seed), args.out)
    logging.getLogger("adamgen").info("wrote %s: a '%s' data set, seed %d, n=%d, n_test=%d",
                                      args.out, run.data.kind, run.seed, run.data.n,
                                      run.data.n_test)


def cmd_config(args) -> None:
    import yaml  # lazy: --help answers before any third-party library loads

    print(yaml.safe_dump(_run(args).to_dict(), sort_keys=False), end="")


def cmd_plan(args) -> None:
    from .progress import check_paths, plan_report  # lazy: the planner and its registries

    check_paths(args.configs)
    print(plan_report(args.configs, args.cores, args.directory))


def cmd_status(args) -> None:
    from .progress import check_paths, status_report  # lazy: as cmd_plan

    check_paths(args.configs)
    print(status_report(args.configs, args.directory, args.cores))


def cmd_card(args) -> None:
    from .card import run_card  # lazy: the planner and its registries

    sys.exit(run_card(args.optimizer, args.overrides, battery_name=args.battery, name=args.name,
                      out=args.out, tune_lr=args.tune_lr, lrs=args.lrs, cores=args.cores,
                      dry_run=args.dry_run))


def cmd_keys(args) -> None:
    if args.rules:
        from .claims.rules import describe_rules_markdown  # lazy: the claims package

        print(describe_rules_markdown())
        return
    if args.metrics:
        from .claims.metrics import describe_metrics_markdown  # lazy: xarray, numpy

        print(describe_metrics_markdown())
        return
    from .config import describe_keys, describe_keys_markdown  # lazy: the registries

    print(describe_keys_markdown() if args.markdown else describe_keys())


def _hint(err: AdamgenError, args) -> str:
    """On the command line, a key that does not apply can be dropped with --unset."""
    if isinstance(err, ConfigError) and ("is not a setting of" in err.problem
                                         or "unknown key" in err.problem):
        return f"; drop it with --unset {err.key}"
    return ""


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from .logs import setup_logging  # lazy: after --help has answered

    setup_logging()
    try:
        {"train": cmd_train, "data": cmd_data, "config": cmd_config, "keys": cmd_keys,
         "plan": cmd_plan, "status": cmd_status, "card": cmd_card}[args.command](args)
    except AdamgenError as err:
        print(f"adamgen: error: {err}{_hint(err, args)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("adamgen: interrupted; no output written", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Units of work shared by the command line and the workflow's scripts."""

import logging
from pathlib import Path

import numba

from . import checkpoint as checkpoints
from . import convex, datafile, probes, runfile
from ._io import write_netcdf, zlib
from .config import RunConfig, probe_epochs, section_dict
from .planner import data_path
from .resources import check_output
from .runfile import RunResult
from .trainer import check_fits, dataset_key, fingerprint, train

log = logging.getLogger("adamgen")


def describe(run: RunConfig) -> str:
    """One line with the choices a run makes."""
    hyper = ", ".join(f"{k}={v}" for k, v in run.optimizer.items() if k != "name")
    batch = "full batch" if run.batch_size == run.data.n else f"{run.steps_per_epoch} steps/epoch"
    data = " ".join(f"{k}={v}" for k, v in section_dict(run.data).items())
    model = " ".join(f"{k}={v}" for k, v in section_dict(run.model).items())
    return (f"{run.optimizer['name']} ({hyper}); B={run.batch_size} ({batch}), "
            f"T={run.train.epochs} epochs; data {data}; model {model}; seed {run.seed}; "
            f"{run.train.device} {run.train.dtype}; {len(probe_epochs(run))} probe epochs")


def train_missing(runs: dict[str, RunConfig], outs: list[str],
                  data_paths: dict[str, str | None] | None = None, threads: int | None = None,
                  progress_every: float = 10.0, chunks: list[int] | None = None) -> list[str]:
    """A workflow job: train the runs among `outs` whose files are missing, in lockstep.

    `runs` maps a run file to its config and `data_paths` to its data file (default: the
    planner's data file of the run). `chunks`: the sizes of the lockstep groups `outs` holds,
    in order, trained one after the other (`planner.training_jobs`; None: one group); a data
    file they share is read once, and the run files of a group are written when it is done.

    Finished run files are kept as they are, never redone or touched: a run's path is a hash
    of its whole config, and touching a kept file would make the summaries of every experiment
    that holds it look out of date. A group's checkpoint is named after its first run file,
    whichever of its runs are missing: a job killed between the writes of one group's files
    resumes the whole group from it (the files already written are the same numbers) and
    writes the rest; once every file of a group exists, its checkpoint is removed.
    Returns the paths it trained.
    """
    sizes = chunks or [len(outs)]
    if sum(sizes) != len(outs):
        raise ValueError(f"lockstep groups of {chunks} runs for {len(outs)} run files")
    if data_paths is None:
        data_paths = {p: data_path(runs[p]) for p in outs}
    trained, loaded, start = [], {}, 0
    for size in sizes:
        group = outs[start:start + size]
        start += size
        saved = checkpoint_path(group[0])
        missing = [out for out in group if not _kept(out)]
        if not missing:
            saved.unlink(missing_ok=True)  # the group is complete: its checkpoint is spent
            continue
        todo = missing
        if len(missing) < len(group) and checkpoints.belongs(saved, fingerprint(
                [runs[p] for p in group])):
            todo = group  # resume the whole group; its finished files stay as they are
        train_to_files([runs[p] for p in todo], todo, [data_paths[p] for p in todo],
                       threads=threads, progress_every=progress_every, loaded=loaded,
                       checkpoint=saved, keep_existing=True)
        trained += missing
    return trained


def _kept(out: str) -> bool:
    """Whether `out` is finished (see `train_missing`)."""
    if not Path(out).exists():
        return False
    log.info("kept finished %s", out)
    return True


def convex_job(data_path: str, settings: dict, out: str) -> bool:
    """A workflow job of rule `convex`: fit the linear model of E3 on one data set, unless its
    file is finished (kept and touched, as `train_missing` keeps run files: a regenerated data
    file holds the same arrays). Returns whether it fitted."""
    if _kept(out):
        return False
    fit = convex.fit(datafile.load(data_path), convex.ConvexSettings(**settings))
    write_netcdf(fit, out, zlib(fit))
    return True


def train_to_files(runs: list[RunConfig], outs: list[str], data_paths: list[str | None],
                   threads: int | None = None, progress_every: float = 10.0,
                   loaded: dict | None = None, checkpoint: Path | None = None,
                   keep_existing: bool = False) -> list[RunResult]:
    """Train runs in lockstep from their data files (None: generate) and write their run files.

    Every input is checked before training starts; files are written only when all is done.
    `loaded`: data files already read (path → data set), added to as files are read.
    `checkpoint`: the job's checkpoint file (default: beside the first run file).
    `keep_existing`: a run file already there is left as it is (a workflow job resuming a
    group some of whose files were written before it was killed).
    """
    check_fits(runs)
    datasets, loaded = {}, {} if loaded is None else loaded
    for run, path in zip(runs, data_paths, strict=True):
        if path:
            if path not in loaded:
                loaded[path] = datafile.load(path)
            datafile.check_matches(loaded[path], run, path)
            datasets[dataset_key(run)] = loaded[path]
    for run, out in zip(runs, outs, strict=True):
        check_output(out, runfile.file_bytes(run, len(probe_epochs(run))))
    if threads:  # the fast engine's kernels; torch computes on one (trainer.one_torch_thread)
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    for run in runs:
        log.info("train: %s", describe(run))
    saved = checkpoint or checkpoint_path(outs[0])
    results = train(runs, datasets, progress_every=progress_every, checkpoint=saved)
    for result, out in zip(results, outs, strict=True):
        if keep_existing and Path(out).exists():
            continue
        runfile.save(result, out)
        log.info("wrote %s: %s", out, outcome(result))
    saved.unlink(missing_ok=True)  # every run file is written: the checkpoint is spent
    return results


def checkpoint_path(out: str | Path) -> Path:
    """Where a lockstep group whose first run file is `out` keeps its checkpoint (hidden,
    beside it)."""
    out = Path(out)
    return out.with_name(f".{out.name}.checkpoint")


def outcome(result: RunResult) -> str:
    """How a run ended, in one phrase for the log."""
    timing = f"{result.timing['wall_time_s']:.1f} s ({result.timing['steps_per_second']:.0f} " \
             "steps/s)"
    if result.status == "diverged":
        return (f"DIVERGED at epoch {result.diverged_epoch} (a loss or norm became infinite "
                f"or NaN; every probe from that epoch on is NaN), {timing}")
    last = {k: v[-1] for k, v in result.probes.items()}
    shown = [f"train error {last['train_error']:.4f}", f"test error {last['test_error']:.4f}"]
    for probe_set in probes.active(result.config):
        for name, var in probe_set.variables.items():  # its per-neuron headline, at j = +1
            if name in last and var.summary == ("r",):
                shown.append(f"{var.summarized(name)} (j=+1) {last[name][0].max():.4g}")
    return f"completed; {', '.join(shown)}, {timing}"

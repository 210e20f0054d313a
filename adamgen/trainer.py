"""Lockstep training: R runs advanced together [docs/science.md §4].

An epoch is a fresh random permutation of the n training examples cut into n/B mini-batches;
with B = n (full batch) the gradient is the full sum and no permutation is drawn. Each run draws
its permutations from its own seed's stream, so a run's batch order, data and initial weights
never depend on which other runs share its lockstep group.

The trainer only schedules: it hands the engine (adamgen.engines) chunks of epochs between
probe points, with the chunk's permutations precomputed, and records the probe sets
(adamgen.probes) that the run asks for.
"""

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from . import data as datamod
from . import engines, probes
from .config import RunConfig, lockstep_key, probe_epochs
from .errors import ConfigError, ResourceError
from .footprint import device_memory, run_memory, runs_per_device
from .models import network
from .optim import OPTIMIZERS, per_run_hyperparameters
from .resources import check_memory, human
from .seeding import generator

log = logging.getLogger("adamgen")

CHUNK_RUN_STEPS = 2_000_000  # at most this many run-steps between progress checks
CHUNK_PERM_ENTRIES = 1 << 24  # and at most this many precomputed batch indices
# probes whose non-finite value means the run has diverged (an empty class's noise summary
# is ±inf by definition and says nothing about the weights)
DIVERGENCE_PROBES = ("train_loss", "test_loss", "grad_norm_l2", "weight_norm")


@dataclass
class RunResult:
    config: RunConfig
    epochs: np.ndarray  # probe epochs, [E]
    probes: dict[str, np.ndarray]  # name → [E, ...]
    status: str  # "completed" or "diverged"
    diverged_epoch: int | None
    labels: np.ndarray  # training labels y_i, [n]
    weights_initial: np.ndarray | None = None
    weights_final: np.ndarray | None = None
    timing: dict = field(default_factory=dict)


def dataset_key(run: RunConfig) -> tuple:
    return (run.seed, run.data)


def resolve_device(name: str) -> torch.device:
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device", "CUDA is not available on this machine", name)
    return device


def _datasets(runs: list[RunConfig], provided: dict) -> tuple[list, np.ndarray]:
    """The distinct data sets of the runs, and which one each run uses."""
    keys = list(dict.fromkeys(dataset_key(r) for r in runs))
    datasets = [provided.get(k) or datamod.generate(k[1], k[0]) for k in keys]
    return datasets, np.array([keys.index(dataset_key(r)) for r in runs], dtype=np.int64)


def _chunks(schedule: np.ndarray, per_epoch: int, start: int = 0, every: int = 0):
    """(first epoch, number of epochs) pieces from `start` that end on every probe epoch and
    on every multiple of `every` (the checkpoints)."""
    cap = max(1, min(CHUNK_RUN_STEPS // per_epoch, CHUNK_PERM_ENTRIES // per_epoch))
    epoch = start
    for target in schedule[schedule > start]:
        while epoch < target:
            size = min(cap, int(target) - epoch)
            if every:
                size = min(size, every - epoch % every)
            yield epoch, size
            epoch += size


def _fingerprint(runs: list[RunConfig]) -> str:
    return json.dumps([r.to_dict() for r in runs], sort_keys=True)


def _load_checkpoint(path: Path, runs: list[RunConfig]) -> dict | None:
    """A job's saved state, if `path` holds one of exactly these runs."""
    if not path.exists():
        return None
    try:
        saved = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # a truncated or foreign file: start over, and say so
        log.warning("checkpoint %s is unreadable (%s); starting from epoch 0", path, err)
        return None
    if not isinstance(saved, dict) or saved.get("runs") != _fingerprint(runs):
        log.warning("checkpoint %s belongs to other runs; starting from epoch 0", path)
        return None
    return saved


def _to_device(value, device):
    """Tensors inside a saved state (nested in tuples, lists and dicts) onto `device`."""
    from .optim.transforms import tree_map

    return tree_map(lambda v: v.to(device) if isinstance(v, torch.Tensor) else v, value)


def duration(seconds: float) -> str:
    """12 s, 3 min 20 s, 2 h 05 min."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def check_fits(runs: list[RunConfig], device: torch.device | None = None,
               datasets: int = 1) -> None:
    """Fail before allocating anything when the runs cannot fit in memory together; with a
    CUDA `device` (the batched engine), also check the device's free memory against
    `footprint.device_memory` and say in the log how much of it the group takes."""
    what = f"training {len(runs)} run(s) in lockstep"
    advice = "lower the data or model sizes, the probes, or the runs per job"
    check_memory(run_memory(runs[0], len(runs), datasets=datasets), what, advice)
    if device is None or device.type != "cuda":
        return
    free, total = torch.cuda.mem_get_info(device)
    need = device_memory(runs[0], len(runs), datasets)
    fit = runs_per_device(runs[0], free)  # as the plan counts (gpu_runs_per_job: auto)
    log.info("device %s (%s): %s free of %s; %d run(s) in lockstep need about %s (%s); "
             "about %d such runs would fit", device, torch.cuda.get_device_name(device),
             human(free), human(total), len(runs), human(need.total), need.describe(), fit)
    if need.total > free:
        raise ResourceError(f"{what} on {device} needs about {human(need.total)} of device "
                            f"memory ({need.describe()}), more than the {human(free)} free; "
                            f"lower gpu_runs_per_job or gpu_memory_gb (about {fit} fit)")


def train(runs: list[RunConfig], datasets: dict | None = None,
          progress_every: float = 10.0, checkpoint: str | Path | None = None
          ) -> list[RunResult]:
    """Train every run of `runs` in lockstep; they must share `lockstep_key`.

    `datasets` maps `dataset_key(run)` to already generated or loaded data; missing ones are
    generated from the run's seed. With `checkpoint` (a file) and `train.checkpoint_every`,
    the job's whole state is saved every that many epochs and a job that finds a checkpoint
    of the same runs resumes from it: its numbers are those of an uninterrupted job.
    """
    first = runs[0]
    for r in runs[1:]:
        if lockstep_key(r) != lockstep_key(first):
            raise ValueError("runs in one lockstep group must share shapes, optimizer, batch "
                             "size, schedule, device, dtype and engine")
    device = resolve_device(first.train.device)
    dtype = getattr(torch, first.train.dtype)
    started = time.perf_counter()
    engine_row, why = engines.choose(first)
    batched = engine_row.name == "batched"  # its device footprint is estimated (footprint.py)
    check_fits(runs, device if batched else None, len({dataset_key(r) for r in runs}))
    unique, data_index = _datasets(runs, datasets or {})

    name = first.optimizer["name"]
    net = network(first).impl()
    W0 = torch.stack([net.init_weights(r) for r in runs]).to(device, dtype)
    hyper = per_run_hyperparameters(name, [r.optimizer for r in runs], like=W0)
    l2 = hyper["weight_decay"] if OPTIMIZERS[name].coupled else W0.new_zeros(len(runs))
    log.info("engine: %s (%s)", engine_row.name, why)
    engine = engine_row.load()(first, unique, data_index, W0, hyper)
    sets = [(s.impl(), s) for s in probes.active(first)]
    states = [impl.prepare(first, unique, data_index, W0) for impl, _ in sets]

    R, n, B, T = len(runs), first.data.n, first.batch_size, first.train.epochs
    orders = [generator(r.seed, "batch_order") for r in runs]
    schedule = probe_epochs(first)
    records: list[dict[str, np.ndarray]] = []

    diverged_at = np.full(R, -1, dtype=np.int64)

    def probe(epoch: int) -> None:
        stats = {"train": engine.train_stats(), "test": engine.test_stats(), "l2": l2,
                 "hyper": hyper, "objective": getattr(engine, "objective", None)}
        W, rec = engine.weights(), {}
        for (impl, _), state in zip(sets, states, strict=True):
            rec |= impl.record(state, W, stats)
        records.append({k: v.detach().cpu().numpy() for k, v in rec.items()})
        # a loss or norm that is not finite is divergence, whatever the step loop saw (the
        # last step's update is only ever seen here)
        broken = ~np.all([np.isfinite(records[-1][k]) for k in DIVERGENCE_PROBES], axis=0)
        seen = engine.diverged()
        for r in np.flatnonzero((diverged_at < 0) & ((seen >= 0) | broken)):
            diverged_at[r] = seen[r] if seen[r] >= 0 else epoch
        engine.stop(diverged_at >= 0)

    every = first.train.checkpoint_every if checkpoint else 0
    saved = _load_checkpoint(Path(checkpoint), runs) if every else None
    spent_before, done = 0.0, 0
    if saved is not None:
        engine.restore(_to_device(saved["engine"], device))
        records[:] = saved["records"]
        diverged_at[:] = saved["diverged_at"]
        for g, state in zip(orders, saved["orders"], strict=True):
            g.bit_generator.state = state
        done, spent_before = saved["epoch"], saved["train_time_s"]
        log.info("resumed from checkpoint %s at epoch %d/%d", checkpoint, done, T)

    def save_checkpoint(epoch: int, spent: float) -> None:
        from ._io import atomic_path

        state = {"runs": _fingerprint(runs), "epoch": epoch, "records": records,
                 "diverged_at": diverged_at, "orders": [g.bit_generator.state for g in orders],
                 "engine": _to_device(engine.checkpoint(), "cpu"), "train_time_s": spent}
        with atomic_path(checkpoint) as tmp:
            torch.save(state, tmp)
        log.info("checkpoint at epoch %d: %s", epoch, checkpoint)

    loop_start = last_report = time.perf_counter() - spent_before
    if saved is None:
        probe(0)
    start = done
    for epoch0, size in _chunks(schedule, R * first.steps_per_epoch, start, every):
        perms = None
        if B < n:
            perms = np.stack([np.stack([g.permutation(n) for g in orders]) for _ in range(size)])
        engine.advance(epoch0, perms, size)
        done = epoch0 + size
        if done in schedule:
            probe(done)
            if (diverged_at >= 0).all():
                break
        now = time.perf_counter()
        if every and done % every == 0 and done < T:
            save_checkpoint(done, now - loop_start)
        if now - last_report >= progress_every:
            last_report = now
            spent = now - loop_start
            rate = (done - start) / max(now - loop_start - spent_before, 1e-9)
            log.info("epoch %d/%d (%.0f%%), %s, %.0f steps/s, about %s left", done, T,
                     100 * done / T, duration(spent), rate * first.steps_per_epoch,
                     duration((T - done) / rate))
    elapsed = time.perf_counter() - loop_start
    steps = done * first.steps_per_epoch
    timing = {
        "wall_time_s": time.perf_counter() - started,
        "train_time_s": elapsed,
        "steps": steps,
        "steps_per_second": steps / elapsed if elapsed > 0 else float("nan"),
        "runs_in_lockstep": R,
        "engine": engine.name,
        "device": str(device),
        "dtype": first.train.dtype,
    }
    return _results(runs, unique, data_index, schedule, records, diverged_at, W0,
                    engine.weights(), timing)


def _results(runs, unique, data_index, schedule, records, diverged_at, W_init, W,
             timing) -> list[RunResult]:
    names = records[0].keys()
    stacked = {k: np.stack([rec[k] for rec in records]) for k in names}  # [E_done, R, ...]
    results = []
    for r, run in enumerate(runs):
        probes = {}
        for k, v in stacked.items():
            full = np.full((len(schedule),) + v.shape[2:], np.nan, dtype=v.dtype)
            full[: len(v)] = v[:, r]
            if diverged_at[r] >= 0:
                full[schedule >= diverged_at[r]] = np.nan
            probes[k] = full
        store = run.probes.store_weights
        results.append(RunResult(
            config=run,
            epochs=schedule,
            probes=probes,
            status="diverged" if diverged_at[r] >= 0 else "completed",
            diverged_epoch=int(diverged_at[r]) if diverged_at[r] >= 0 else None,
            labels=unique[data_index[r]].train.y,
            weights_initial=W_init[r].cpu().numpy() if store else None,
            weights_final=W[r].detach().cpu().numpy() if store else None,
            timing=timing,
        ))
    return results

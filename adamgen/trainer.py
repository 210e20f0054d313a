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
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from . import checkpoint as checkpoints
from . import data as datamod
from . import engines, probes
from .config import RunConfig, lockstep_key, probe_epochs
from .errors import ConfigError, ResourceError
from .models import network
from .optim import optimizer_row, per_run_hyperparameters
from .optim.transforms import tree_map
from .resources import check_memory, human
from .runfile import RunResult
from .seeding import generator

log = logging.getLogger("adamgen")

CHUNK_RUN_STEPS = 2_000_000  # at most this many run-steps between progress checks
CHUNK_PERM_ENTRIES = 1 << 24  # and at most this many precomputed batch indices
# probes whose non-finite value means the run has diverged (an empty class's noise summary
# is ±inf by definition and says nothing about the weights)
DIVERGENCE_PROBES = ("train_loss", "test_loss", "grad_norm_l2", "weight_norm")


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


def fingerprint(runs: list[RunConfig]) -> str:
    """What a checkpoint must have been saved by: these runs, whatever the checkpoint interval
    (how often a job saves does not change its numbers)."""
    configs = [r.to_dict() for r in runs]
    for c in configs:
        c["train"] = {k: v for k, v in c["train"].items() if k != "checkpoint_every"}
    return json.dumps(configs, sort_keys=True)


def _to_device(value, device):
    """Tensors inside a saved state (nested in tuples, lists and dicts) onto `device`."""
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
    """Fail before allocating anything when the runs cannot fit in memory together: their
    engine's host estimate against the memory available, and where the engine estimates a
    CUDA `device`'s part, that against the device's free memory (the log says how much of it
    the group takes)."""
    what = f"training {len(runs)} run(s) in lockstep"
    advice = "lower the data or model sizes, the probes, or the runs per job"
    engine, _ = engines.choose(runs[0])
    need = engine.memory(runs[0], len(runs), datasets, len(probe_epochs(runs[0])))
    check_memory(need.host, what, advice)
    if device is None or device.type != "cuda" or need.device is None:
        return
    free, total = torch.cuda.mem_get_info(device)
    fit = engine.fit(runs[0], free)  # as the plan counts (gpu_runs_per_job: auto)
    log.info("device %s (%s): %s free of %s; %d run(s) in lockstep need about %s (%s); "
             "about %d such runs would fit", device, torch.cuda.get_device_name(device),
             human(free), human(total), len(runs), human(need.device.total),
             need.device.describe(), fit)
    if need.device.total > free:
        raise ResourceError(f"{what} on {device} needs about {human(need.device.total)} of "
                            f"device memory ({need.device.describe()}), more than the "
                            f"{human(free)} free; lower gpu_runs_per_job or gpu_memory_gb "
                            f"(about {fit} fit)")


@contextmanager
def one_torch_thread(device: torch.device) -> Iterator[None]:
    """On the CPU, every torch computation of a job runs on one thread.

    torch and its BLAS (MKL in the x86 wheels) split the reduction of a sum or a matrix
    product between threads in pieces whose number and bounds depend on the thread count, and
    MKL's choice also depends on the CPU (on a 2-core Intel Xeon it splits products that it
    leaves whole on an AMD EPYC): with the job's threads, the last bits of a run would depend
    on how many threads its job was given. On one thread each sum is taken in one order, so a
    run's bits are the same whatever the thread count, on any CPU; what differs between CPUs
    is the order a kernel chooses for its instruction set (AVX2 or AVX-512), so bits agree
    between runs on one machine, and to rounding between machines. The fast engine's numba
    kernels keep the job's threads: they split the work by run (and a step's batch into two
    halves added in a fixed order), never one run's sum between threads.
    """
    if device.type != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


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
    if checkpoint and first.train.checkpoint_every:
        checkpoints.check_path(Path(checkpoint))
    with one_torch_thread(resolve_device(first.train.device)):
        job = _Lockstep(runs, datasets or {})
        job.resume(Path(checkpoint) if checkpoint and first.train.checkpoint_every else None)
        job.run(progress_every)
        return job.results()


class _Lockstep:
    """One job's runs advancing together: the engine, the probe sets, the batch orders, what
    has been recorded, and the steps of a job (`resume`, `run`, `results`)."""

    def __init__(self, runs: list[RunConfig], datasets: dict):
        self.started = time.perf_counter()
        self.runs, first = runs, runs[0]
        self.device = resolve_device(first.train.device)
        engine, why = engines.choose(first)
        check_fits(runs, self.device, len({dataset_key(r) for r in runs}))
        self.unique, self.data_index = _datasets(runs, datasets)
        name = first.optimizer["name"]
        net = network(first).impl()
        dtype = getattr(torch, first.train.dtype)
        self.W0 = torch.stack([net.init_weights(r) for r in runs]).to(self.device, dtype)
        self.hyper = per_run_hyperparameters(name, [r.optimizer for r in runs], like=self.W0)
        self.l2 = (self.hyper["weight_decay"] if optimizer_row(name).coupled
                   else self.W0.new_zeros(len(runs)))
        log.info("engine: %s (%s)", engine.name, why)
        self.engine = engine.build(first, self.unique, self.data_index, self.W0, self.hyper)
        self.sets = [s.impl() for s in probes.active(first)]
        self.states = [impl.prepare(first, self.unique, self.data_index, self.W0)
                       for impl in self.sets]
        self.orders = [generator(r.seed, "batch_order") for r in runs]
        self.schedule = probe_epochs(first)
        self.records: list[dict[str, np.ndarray]] = []
        self.diverged_at = np.full(len(runs), -1, dtype=np.int64)
        self.checkpoint: Path | None = None
        self.done = 0  # epochs trained
        self.before = {"train_time_s": 0.0, "wall_time_s": 0.0}  # by the job's earlier lives

    def probe(self, epoch: int) -> None:
        """Record every probe set at `epoch`; a run whose loss or norm is not finite here
        has diverged, whatever the step loop saw (the last step's update is only seen here)."""
        engine = self.engine
        stats = {"train": engine.train_stats(), "test": engine.test_stats(), "l2": self.l2,
                 "hyper": self.hyper, "objective": engine.objective}
        W, rec = engine.weights(), {}
        for impl, state in zip(self.sets, self.states, strict=True):
            rec |= impl.record(state, W, stats)
        self.records.append({k: v.detach().cpu().numpy() for k, v in rec.items()})
        broken = ~np.all([np.isfinite(self.records[-1][k]) for k in DIVERGENCE_PROBES], axis=0)
        seen = engine.diverged()
        for r in np.flatnonzero((self.diverged_at < 0) & ((seen >= 0) | broken)):
            self.diverged_at[r] = seen[r] if seen[r] >= 0 else epoch
        engine.stop(self.diverged_at >= 0)

    def resume(self, checkpoint: Path | None) -> None:
        """Take up the job's state from its checkpoint, if it left an intact one; otherwise
        record the probes at epoch 0."""
        self.checkpoint = checkpoint
        saved = checkpoints.load(checkpoint, fingerprint(self.runs)) if checkpoint else None
        if saved is None:
            self.probe(0)
            return
        self.engine.restore(_to_device(saved["engine"], self.device))
        self.records[:] = saved["records"]
        self.diverged_at[:] = saved["diverged_at"]
        for g, state in zip(self.orders, saved["orders"], strict=True):
            g.bit_generator.state = state
        self.done = saved["epoch"]
        self.before = {k: saved[k] for k in self.before}
        log.info("resumed from checkpoint %s at epoch %d/%d", checkpoint, self.done,
                 self.runs[0].train.epochs)

    def save(self, train_time: float) -> None:
        state = {"runs": fingerprint(self.runs), "epoch": self.done, "records": self.records,
                 "diverged_at": self.diverged_at,
                 "orders": [g.bit_generator.state for g in self.orders],
                 "engine": _to_device(self.engine.checkpoint(), "cpu"),
                 "train_time_s": train_time,
                 "wall_time_s": self.before["wall_time_s"] + time.perf_counter() - self.started}
        if checkpoints.save(self.checkpoint, state):
            log.info("checkpoint at epoch %d: %s", self.done, self.checkpoint)

    def _permutations(self, epochs: int) -> np.ndarray | None:
        """Each run's batch orders for the next `epochs` epochs, from its own stream."""
        n = self.runs[0].data.n
        if self.runs[0].batch_size >= n:
            return None
        return np.stack([np.stack([g.permutation(n) for g in self.orders])
                         for _ in range(epochs)])

    def run(self, progress_every: float) -> None:
        first = self.runs[0]
        T, per_epoch = first.train.epochs, first.steps_per_epoch
        every = first.train.checkpoint_every if self.checkpoint else 0
        start = time.perf_counter()
        last_report, measured = start, None  # (time, epoch) after the first chunk
        for epoch0, size in _chunks(self.schedule, len(self.runs) * per_epoch, self.done,
                                    every):
            self.engine.advance(epoch0, self._permutations(size), size)
            self.done = epoch0 + size
            if self.done in self.schedule:
                self.probe(self.done)
                if (self.diverged_at >= 0).all():
                    break
            now = time.perf_counter()
            self.train_time = self.before["train_time_s"] + now - start
            if every and self.done % every == 0 and self.done < T:
                self.save(self.train_time)
            if measured is None:  # the first chunk's time includes compiling the kernels
                measured = (now, self.done)
            if now - last_report >= progress_every:
                last_report = now
                _progress(self.done, T, self.train_time, now, measured, per_epoch)
        self.train_time = self.before["train_time_s"] + time.perf_counter() - start

    def results(self) -> list[RunResult]:
        first = self.runs[0]
        steps = self.done * first.steps_per_epoch
        timing = {
            "wall_time_s": self.before["wall_time_s"] + time.perf_counter() - self.started,
            "train_time_s": self.train_time,
            "steps": steps,
            "steps_per_second": steps / self.train_time if self.train_time > 0 else math.nan,
            "runs_in_lockstep": len(self.runs),
            "engine": self.engine.name,
            "device": str(self.device),
            "dtype": first.train.dtype,
        }
        stored = network(first).impl().stored_weights  # the layout run files hold
        return _results(self.runs, self.unique, self.data_index, self.schedule, self.records,
                        self.diverged_at, stored(self.W0), stored(self.engine.weights()),
                        timing)


def _progress(done: int, T: int, spent: float, now: float, measured: tuple,
              per_epoch: int) -> None:
    """A progress line: epochs, time spent, speed and what is left, measured from the end of
    the first chunk (which includes compiling the kernels)."""
    since, from_epoch = measured
    if done == from_epoch or now <= since:
        log.info("epoch %d/%d (%.0f%%), %s, warming up (the first chunk compiles the kernels)",
                 done, T, 100 * done / T, duration(spent))
        return
    rate = (done - from_epoch) / (now - since)
    log.info("epoch %d/%d (%.0f%%), %s, %.0f steps/s, about %s left", done, T, 100 * done / T,
             duration(spent), rate * per_epoch, duration((T - done) / rate))


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

"""Lockstep training: R runs advanced together as one tensor program [SPEC §4].

An epoch is a fresh random permutation of the n training examples cut into n/B mini-batches;
with B = n (full batch) the gradient is the full sum and no permutation is drawn. Each run draws
its permutations from its own seed's stream, so a run's batch order, data and initial weights
never depend on which other runs share its lockstep group.
"""

import logging
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from . import data as datamod
from .config import RunConfig, lockstep_key, probe_epochs
from .errors import ConfigError
from .model import init_weights, loss_and_grad
from .optim import OPTIMIZERS, build_optimizer, per_run_hyperparameters
from .probes import ProbeData, record
from .seeding import generator

log = logging.getLogger("adamgen")


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


@dataclass
class _Group:
    """The tensors of one lockstep group, on its device."""

    runs: list[RunConfig]
    probe_data: ProbeData
    datasets: list[datamod.PatchData]

    @property
    def x(self) -> Tensor:
        return self.probe_data.x

    @property
    def y(self) -> Tensor:
        return self.probe_data.y


def _prepare(runs: list[RunConfig], provided: dict, device, dtype) -> _Group:
    keys = list(dict.fromkeys(dataset_key(r) for r in runs))
    datasets = [provided.get(k) or datamod.generate(k[1], k[0]) for k in keys]
    index = [keys.index(dataset_key(r)) for r in runs]

    def stack(get) -> Tensor:
        return torch.stack([torch.as_tensor(get(datasets[u])) for u in index]).to(device)

    tests = []
    for u, ds in enumerate(datasets):
        members = torch.tensor([r for r, k in enumerate(index) if k == u], device=device)
        tests.append((members, torch.as_tensor(ds.test.x).to(device, dtype),
                      torch.as_tensor(ds.test.y).to(device)))
    probe_data = ProbeData(
        x=stack(lambda ds: ds.train.x).to(dtype),
        y=stack(lambda ds: ds.train.y),
        xi=stack(lambda ds: ds.train.xi).to(dtype),
        feature=stack(lambda ds: ds.feature).to(dtype),
        tests=tests,
    )
    return _Group(runs=runs, probe_data=probe_data, datasets=[datasets[u] for u in index])


def train(runs: list[RunConfig], datasets: dict | None = None,
          progress_every: float = 10.0) -> list[RunResult]:
    """Train every run of `runs` in lockstep; they must share `lockstep_key`.

    `datasets` maps `dataset_key(run)` to already generated or loaded data; missing ones are
    generated from the run's seed.
    """
    first = runs[0]
    for r in runs[1:]:
        if lockstep_key(r) != lockstep_key(first):
            raise ValueError("runs in one lockstep group must share shapes, optimizer, batch "
                             "size, schedule, device and dtype")
    device = resolve_device(first.train.device)
    dtype = getattr(torch, first.train.dtype)
    started = time.perf_counter()
    group = _prepare(runs, datasets or {}, device, dtype)

    name = first.optimizer["name"]
    W = torch.stack([init_weights(r) for r in runs]).to(device, dtype)
    W_init = W.clone()
    hyper = per_run_hyperparameters(name, [r.optimizer for r in runs], like=W)
    optimizer = build_optimizer(name, hyper)
    state = optimizer.init(W)
    coupled = OPTIMIZERS[name].coupled
    l2 = hyper["weight_decay"] if coupled else torch.zeros_like(hyper["weight_decay"])

    R, n, B, T = len(runs), first.data.n, first.batch_size, first.train.epochs
    orders = [generator(r.seed, "batch_order") for r in runs]
    schedule = probe_epochs(first)
    probe_at = set(schedule.tolist())
    full_noise = first.probes.noise_memorization_full
    model = first.model
    arange = torch.arange(R, device=device)[:, None]

    records: list[dict[str, np.ndarray]] = []
    bad = torch.zeros(R, dtype=torch.bool, device=device)
    diverged_at = torch.full((R,), -1, dtype=torch.long, device=device)

    def probe() -> None:
        rec = record(W, group.probe_data, model, l2, full_noise)
        records.append({k: v.detach().cpu().numpy() for k, v in rec.items()})

    loop_start = time.perf_counter()
    last_report = loop_start
    probe()
    epoch = 0
    for epoch in range(1, T + 1):
        if B == n:
            batches = [(group.x, group.y)]
        else:
            perm = torch.from_numpy(np.stack([g.permutation(n) for g in orders])).to(device)
            batches = ((group.x[arange, idx], group.y[arange, idx])
                       for idx in perm.split(B, dim=1))
        for xb, yb in batches:
            loss, grad = loss_and_grad(W, xb, yb, model)
            update, state = optimizer.update(grad, state, W)
            W = W + update
            bad |= ~torch.isfinite(loss)
        diverged_at = torch.where(bad & (diverged_at < 0), epoch, diverged_at)
        if epoch in probe_at:
            probe()
            if bool((diverged_at >= 0).all()):
                break
        now = time.perf_counter()
        if now - last_report >= progress_every:
            last_report = now
            log.info("epoch %d/%d (%.0f%%), %.0f s, %.0f steps/s", epoch, T, 100 * epoch / T,
                     now - loop_start, epoch * (n // B) / (now - loop_start))
    elapsed = time.perf_counter() - loop_start
    steps = epoch * (n // B)
    timing = {
        "wall_time_s": time.perf_counter() - started,
        "train_time_s": elapsed,
        "steps": steps,
        "steps_per_second": steps / elapsed if elapsed > 0 else float("nan"),
        "runs_in_lockstep": R,
        "device": str(device),
        "dtype": first.train.dtype,
    }
    return _results(group, schedule, records, diverged_at.cpu().numpy(), W_init, W, timing)


def _results(group: _Group, schedule: np.ndarray, records: list[dict], diverged_at: np.ndarray,
             W_init: Tensor, W: Tensor, timing: dict) -> list[RunResult]:
    names = records[0].keys()
    stacked = {k: np.stack([rec[k] for rec in records]) for k in names}  # [E_done, R, ...]
    results = []
    for r, run in enumerate(group.runs):
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
            labels=group.datasets[r].train.y,
            weights_initial=W_init[r].cpu().numpy() if store else None,
            weights_final=W[r].detach().cpu().numpy() if store else None,
            timing=timing,
        ))
    return results

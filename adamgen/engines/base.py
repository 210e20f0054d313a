"""What an engine is: the declaration every training engine makes (`Engine`, one object per
row of adamgen.engines.ENGINES) and the program it builds (`Lockstep`).

An `Engine` says which runs it can train (`supports`) and whether `train.engine: auto` should
pass it over (`passed_over`), how much memory a job of R runs takes on the host and on its
device (`memory`, `fit`), how many threads and how many runs per job it wants (`threads`,
`group_size`, `device_groups`), and the train keys only it reads (`keys`: `compile`,
`precision`), which the run config declares and validates from here. A declaration imports
nothing heavy; `program` imports the engine's program (torch, numba) when a run trains, and
`build` returns the `Lockstep` that the trainer drives:

    advance(epoch0, perms, epochs)   train epochs epoch0 + 1 ... epoch0 + epochs; perms is
                                     [epochs, R, n] (None for full batch)
    weights()                        the parameters as a torch tensor [R, ...], in the layout
                                     of the network's own implementation
    train_stats()                    mean training loss and error [R] and the full-batch data
                                     gradient (the weights' layout)
    test_stats()                     mean test loss and error [R]
    diverged()                       per run, the epoch whose loss first became non-finite, or −1
    stop(mask)                       stop advancing the runs where mask is true (diverged)
    checkpoint() / restore(saved)    its whole state, to resume a killed job where it stopped
    objective                        None, or (W, examples) → Σ_r of run r's mean training loss
                                     at W: what the curvature probes differentiate twice for a
                                     network without an exact Hessian diagonal
"""

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from ..data import DATA_MODELS
from ..optim import external, optimizer_row
from ..probes import values_per_probe
from ..resources import Estimate, MiB, eval_chunk


@dataclass(frozen=True)
class EngineKey:
    """A train key that only some engines read, declared by them (adamgen.config builds the
    `train` section from these declarations).

    binding   a value other than the default changes the numbers (bf16 autocast), so it asks
              for an engine that declares the key; a key that is not binding only says how
              to run (a compile mode), is ignored by the engines that do not declare it and
              stays out of the run's hash
    cross     train section → a problem with the key's value there, or None
    """

    default: Any
    doc: str
    check: Callable[[Any], str | None] | None = None
    binding: bool = False
    cross: Callable[[Any], str | None] | None = None


class Footprint(NamedTuple):
    """A job's memory: on the host, and on its device (None where it trains on the host)."""

    host: Estimate
    device: Estimate | None = None


class Engine(ABC):
    """One row of the engine registry (adamgen.engines.ENGINES)."""

    name: str
    doc: str
    keys: dict[str, EngineKey] = {}

    def __repr__(self) -> str:
        return f"<engine {self.name!r}: {self.doc}>"

    @abstractmethod
    def supports(self, run) -> str | None:
        """Why this engine cannot train `run`, or None."""

    def passed_over(self, run) -> str | None:
        """Why `auto` passes this engine over although it could train `run`, or None."""
        return None

    def memory(self, run, runs: int, datasets: int, probe_count: int) -> Footprint:
        """Peak memory of a job of `runs` runs like `run` on `datasets` data sets."""
        return Footprint(host_memory(run, runs, datasets, probe_count))

    def threads(self, runs: int) -> int:
        """CPU threads a job of `runs` runs uses well."""
        return 1

    def device_groups(self, run) -> bool:
        """Whether runs like `run` go to a device in jobs sized by its memory (`fit`)."""
        return False

    def fit(self, run, budget_bytes: float, most: int = 4096) -> int:
        """The largest number of runs like `run` (each on its own data set, the worst case)
        whose device memory stays within `budget_bytes`: at least 1, at most `most`."""
        low, high = 1, most
        while low < high:
            mid = (low + high + 1) // 2
            device = self.memory(run, mid, mid, 0).device
            if device is None or device.total <= budget_bytes:
                low = mid
            else:
                high = mid - 1
        return low

    def group_size(self, run, runs_per_job: int, gpu_runs_per_job: int | str,
                   gpu_memory_gb: float) -> int:
        """Runs per job for runs like `run`: `runs_per_job`, or where runs go to a device in
        groups, `gpu_runs_per_job` ('auto': as many as `fit` in `gpu_memory_gb`)."""
        if not self.device_groups(run):
            return runs_per_job
        if gpu_runs_per_job != "auto":
            return int(gpu_runs_per_job)
        return self.fit(run, gpu_memory_gb * 2**30)

    def seconds(self, run, runs: int, probe_count: int) -> float:
        """Estimated seconds to train `runs` runs like `run` in lockstep, probes included, on
        one core of this project's development machine (a 2-core AMD EPYC, Zen 5; see each
        engine's constants). It sizes the workflow's runtime requests (with a safety factor)
        and `adamgen plan`'s estimates; `benchmarks/bench_engine.py --estimate` measures."""
        return dense_seconds(run, runs, probe_count)

    @abstractmethod
    def program(self) -> type["Lockstep"]:
        """The class of its program (imported here, when a run trains)."""

    def build(self, run, datasets: list, data_index: np.ndarray, W0, hyper: dict) -> "Lockstep":
        """The program that advances the runs in lockstep."""
        return self.program()(run, datasets, data_index, W0, hyper)


# the torch engine's dense program on one CPU core, measured with 4 runs in lockstep on the
# development machine (per run-step, float32): the benign data at d = 256, m = 20 (20 480
# multiply-adds an example), GD, 114 µs at B = 40 and 436 µs at B = 160; the patch model at
# d = 1000, Adam, 240 µs at B = 2 and 2.2 ms at B = 200; the linear network, Adam, 32 µs at
# d = 16 and 88 µs at d = 64 (5 runs). So a step's launches take about 150 µs whatever the
# group, an example's multiply-add 0.13 ns (forward and backward; twice that in float64), an
# update 0.3 ns a parameter for (S)GD and 5.6 ns for the adaptive ones (eager elementwise
# ops). Within 30 % of each but the smallest linear network (launches: 2x).
DENSE_STEP_S = 150e-6
DENSE_MAC_S = 0.13e-9
DENSE_PARAMETER_S = {"plain": 0.3e-9, "adaptive": 5.6e-9}
PLAIN = ("gd", "sgd", "sgd_momentum")
CUDA_FLOPS = 5e12  # what a GPU sustains on these programs, conservatively (not yet measured)
# an outside optimizer (adamgen.optim.external): each run's own `step` call over its own
# parameter groups, per run-step, on top of the dense program's batched loss and gradient.
# benchmarks/bench_outside.py (torch.optim.Adam against the `adam` row on the same runs, E1's
# data, one thread) measured 62-138 µs more per run-step than the row on the torch engine
# (1.05-1.48x): the step calls about 100-140 µs, handing each run its gradient 35, stacking
# the runs' parameters back 25, less the row's own batched update. An optimizer that
# evaluates its closure several times a step says how often at most by a `max_iter` argument
# (torch.optim.LBFGS): each evaluation beyond the first is one run's loss and gradient again,
# counted at that bound.
EXTERNAL_RUN_STEP_S = 100e-6


def multiply_adds(run) -> int:
    """Multiply-adds of one example's forward pass through a two-layer network: each
    activation is a product of length d (float64 counted twice: it costs twice the time)."""
    macs = run.model.activations_per_example(run.data) * run.data.d
    return macs * (2 if run.train.dtype == "float64" else 1)


def dense_seconds(run, runs: int, probe_count: int) -> float:
    """The dense (torch) program's time: each step's launches, each run's update and its
    batch's products, and each probe's pass over the training and test sets."""
    steps = run.train.epochs * run.steps_per_epoch
    macs = multiply_adds(run)
    params = run.model.parameters(run.data)
    if run.train.device != "cpu":
        flops = 6 * macs * (runs * (steps * run.batch_size
                                    + probe_count * (2 * run.data.n + run.data.n_test)))
        return steps * DENSE_STEP_S + flops / CUDA_FLOPS
    update = DENSE_PARAMETER_S["plain" if run.optimizer["name"] in PLAIN else "adaptive"]
    per_step = DENSE_STEP_S + runs * (update * params + DENSE_MAC_S * run.batch_size * macs)
    if external.is_import_path(run.optimizer["name"]):
        bound = run.optimizer.get("max_iter",
                                  optimizer_row(run.optimizer["name"]).defaults.get("max_iter"))
        again = max(int(bound or 1), 1) - 1
        per_step += runs * (EXTERNAL_RUN_STEP_S
                            + again * (DENSE_STEP_S + DENSE_MAC_S * run.batch_size * macs))
    probes = probe_count * runs * DENSE_MAC_S * macs * (2 * run.data.n + run.data.n_test)
    return steps * per_step + probes


def host_memory(run, runs: int, datasets: int, probe_count: int) -> Estimate:
    """Peak host memory of a training job: on the CPU the data sets, the per-run batch
    inputs, weights with up to five optimizer and probe tensors of their size, the evaluation
    chunks, the probes; on a device, what stays on the host. Generous on purpose: an estimate
    that is too small costs a killed job."""
    R, data = runs, run.data
    width = 4 if run.train.dtype == "float32" else 8
    per_example = data.example_size()
    params = run.model.parameters(data)
    activations = run.model.activations_per_example(data)
    parts = {k: datasets * v for k, v in DATA_MODELS[data.kind].memory(data).parts.items()}
    probes = 8.0 * R * probe_count * values_per_probe(run)
    if run.train.device != "cpu":  # the device holds the training (the engine's `memory`)
        return Estimate(parts | {
            "weights and optimizer state (host copies)": width * R * 6 * params,
            "probes": probes,
            "interpreter and libraries (CUDA)": 1024 * MiB,
        })
    return Estimate(parts | {
        "per-run inputs": width * (R * 2 * data.n + datasets * data.n_test) * per_example,
        "weights and optimizer state": width * R * 6 * params,
        "evaluation": 8.0 * 3 * R * eval_chunk(activations) * activations,
        "probes": probes,
        "interpreter and libraries": 300 * MiB,
    })


class Lockstep:
    """What every engine's program shares: which runs still advance (`alive`), the epoch at
    which each first diverged (`diverged_at`, −1 while it has not), and its checkpoint: those
    two and the attributes its class names in `saved`."""

    name = "lockstep"
    saved: tuple[str, ...] = ()
    objective = None

    def _start(self, runs: int) -> None:
        self.alive = np.ones(runs, dtype=np.bool_)
        self.diverged_at = np.full(runs, -1, dtype=np.int64)

    def diverged(self) -> np.ndarray:
        return np.asarray(self.diverged_at)

    def stop(self, mask: np.ndarray) -> None:
        self.alive &= ~mask

    def checkpoint(self) -> dict:
        return {name: getattr(self, name) for name in ("alive", "diverged_at", *self.saved)}

    def restore(self, saved: dict) -> None:
        for name, value in saved.items():
            setattr(self, name, value)

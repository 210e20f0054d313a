"""How much memory a training job and a run file need, from the registries' declarations.

Generous on purpose: the scheduler's `mem_mb` and the checks before a run (`adamgen.resources`)
read these estimates, and an estimate that is too small costs a killed job.
"""

import math

from .config import RunConfig, probe_epochs
from .data import DATA_MODELS
from .models import NETWORKS
from .probes import QUANTILES, variables
from .resources import Estimate, MiB

SIZES = {  # length of each probe dimension, for a run
    "j": lambda run: 2,
    "r": lambda run: run.model.m,
    "i": lambda run: run.data.n,
    "layer": lambda run: len(NETWORKS[run.model.name].layer_names(run)),
    "quantile": lambda run: len(QUANTILES),
}


def eval_chunk(activations_per_example: int) -> int:
    """Examples evaluated at once: at most 2048, and at most 2^28 activations (1 GiB in
    float32) per chunk."""
    return int(max(1, min(2048, 2**28 // max(1, activations_per_example))))


def values_per_probe(run: RunConfig) -> int:
    return sum(math.prod(SIZES[d](run) for d in var.dims) for var in variables(run).values())


def run_memory(run: RunConfig, runs_in_job: int = 1, probe_count: int | None = None,
               datasets: int = 1) -> Estimate:
    """Peak host memory of a training job of `runs_in_job` runs like `run` on `datasets` data
    sets; for a job on a GPU, what stays on the host (`device_memory` is the device's part).

    On the CPU: the dense reference engine's per-run copies of the inputs, weights with up to
    five optimizer and probe tensors of their size, the evaluation chunks, the probes.
    """
    R, data = runs_in_job, run.data
    width = 4 if run.train.dtype == "float32" else 8
    E = len(probe_epochs(run)) if probe_count is None else probe_count
    per_example = data.example_size()
    params = run.model.parameters(data)
    activations = run.model.activations_per_example(data)
    parts = {k: datasets * v for k, v in DATA_MODELS[data.kind].memory(data).parts.items()}
    if run.train.device != "cpu":  # the device holds the training (`device_memory`)
        return Estimate(parts | {
            "weights and optimizer state (host copies)": width * R * 6 * params,
            "probes": 8.0 * R * E * values_per_probe(run),
            "interpreter and libraries (CUDA)": 1024 * MiB,
        })
    parts |= {
        "per-run inputs": width * (R * 2 * data.n + datasets * data.n_test) * per_example,
        "weights and optimizer state": width * R * 6 * params,
        "evaluation": 8.0 * 3 * R * eval_chunk(activations) * activations,
        "probes": 8.0 * R * E * values_per_probe(run),
        "interpreter and libraries": 300 * MiB,
    }
    return Estimate(parts)


def run_file_bytes(run: RunConfig, probe_count: int) -> float:
    """Uncompressed size of a run file: an upper bound for the free-space check."""
    weights = 2 * run.model.parameters(run.data) if run.probes.store_weights else 0
    return 8.0 * (probe_count * values_per_probe(run) + weights) + 64 * 2**10


def device_memory(run: RunConfig, runs_in_job: int = 1, datasets: int = 1) -> Estimate:
    """Peak memory of the batched engine (adamgen.engines.batched) on a device.

    Each data set once (train and test inputs), each run's weights with the optimizer's state,
    gradient and the step's temporaries, the step's batch inputs and activations, the full
    batch's per-run inputs where B = n, and the evaluation chunks of the probes.
    """
    R, data = runs_in_job, run.data
    width = 4 if run.train.dtype == "float32" else 8
    B = run.batch_size
    per_example = data.example_size()
    params = run.model.parameters(data)
    activations = run.model.activations_per_example(data)
    return Estimate({
        "data sets": width * datasets * (data.n + data.n_test) * per_example,
        "weights, optimizer state and step temporaries": width * R * 10 * params,
        "batch inputs and activations": width * R * B * (2 * per_example + 8 * activations),
        "evaluation": width * 4 * R * eval_chunk(activations) * activations,
        "CUDA context and caching": 600 * MiB,
    })


def runs_per_device(run: RunConfig, budget_bytes: float, most: int = 4096) -> int:
    """The largest number of runs like `run` (each on its own data set, the worst case) whose
    `device_memory` stays within `budget_bytes`: at least 1, at most `most`."""
    low, high = 1, most
    while low < high:
        mid = (low + high + 1) // 2
        if device_memory(run, mid, mid).total <= budget_bytes:
            low = mid
        else:
            high = mid - 1
    return low

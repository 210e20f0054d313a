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
    """Peak memory of a training job of `runs_in_job` runs like `run` on `datasets` data sets.

    The dense reference engine's per-run copies of the inputs, weights with up to five
    optimizer and probe tensors of their size, the evaluation chunks, the probes.
    """
    R, data = runs_in_job, run.data
    width = 4 if run.train.dtype == "float32" else 8
    E = len(probe_epochs(run)) if probe_count is None else probe_count
    per_example = data.example_size()
    params = run.model.parameters(data)
    activations = run.model.activations_per_example(data)
    parts = {k: datasets * v for k, v in DATA_MODELS[data.kind].memory(data).parts.items()}
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

"""The torch engine: the network's own torch implementation and the optimizer's transforms,
dense, on any device, R runs as one tensor program (adamgen.engines.dense_program).

Eager, it is the readable definition of every number: every other path is tested against
it. `train.compile` (declared here) compiles its step into fused kernels (torch.compile):
'off' runs it eagerly, 'default' compiles it (Triton kernels on CUDA, C++ on the CPU),
'reduce-overhead' also replays it as CUDA graphs (for groups so small that kernel launches
dominate) and 'auto' compiles long jobs on CUDA. On a GPU its runs go in groups as large as
its device-memory estimate fits (`memory`).
"""

from ..models import NETWORKS
from ..optim import external
from ..resources import Estimate, MiB, eval_chunk
from ..settings import choice
from .base import Engine, EngineKey, Footprint, host_memory

COMPILE_MODES = ("auto", "off", "default", "reduce-overhead")

# the most runs of a CPU job of the torch engine (TorchEngine.group_size)
CPU_GROUP = 16


class TorchEngine(Engine):
    name = "torch"
    doc = ("the network's torch implementation, dense, any device, R runs as one tensor "
           "program (eager: the definition of every number; compiled on CUDA)")
    keys = {"compile": EngineKey(
        "auto", "the torch engine's step: 'off' (eager torch), 'default' (torch.compile: "
        "fused kernels), 'reduce-overhead' (torch.compile replayed as CUDA graphs) or 'auto' "
        "(default on CUDA for jobs of 200 000 steps or more, off otherwise)",
        choice(*COMPILE_MODES))}

    def supports(self, run) -> str | None:
        if NETWORKS[run.model.name].module:
            return (f"'{run.model.name}' is a torch module with state (the module engine "
                    "trains it)")
        if external.is_import_path(run.optimizer["name"]) and run.train.compile not in (
                "auto", "off"):
            return "an outside optimizer's step is its own Python code, not compiled"
        return None

    def memory(self, run, runs: int, datasets: int, probe_count: int) -> Footprint:
        host = host_memory(run, runs, datasets, probe_count)
        if run.train.device == "cpu":
            return Footprint(host)
        return Footprint(host, device_memory(run, runs, datasets))

    def device_groups(self, run) -> bool:
        return run.train.device != "cpu"

    def group_size(self, run, runs_per_job: int, gpu_runs_per_job: int | str,
                   gpu_memory_gb: float) -> int:
        """On the CPU at most CPU_GROUP runs a job: its dense programs lose a fifth to a
        quarter of their speed per run-step past that (the paper config's E7 jobs, 45 runs
        against 16: 0.72-0.86x for all but the smallest batches, benchmarks/bench_engine.py
        --estimate)."""
        size = super().group_size(run, runs_per_job, gpu_runs_per_job, gpu_memory_gb)
        return size if self.device_groups(run) else min(size, CPU_GROUP)

    def program(self):
        from .dense_program import DenseLockstep  # lazy: torch loads when a run trains

        return DenseLockstep

    def build(self, run, datasets, data_index, W0, hyper):
        """The dense program; for an outside optimizer (a torch.optim.Optimizer by its import
        path) its own instance per run over the run's own parameters."""
        if external.is_import_path(run.optimizer["name"]):
            from .external_program import ExternalLockstep  # lazy: as `program`

            return ExternalLockstep(run, datasets, data_index, W0, hyper)
        return super().build(run, datasets, data_index, W0, hyper)


def device_memory(run, runs: int, datasets: int) -> Estimate:
    """Peak memory of the torch engine's program on a device.

    Each data set once (train and test inputs), each run's weights with the optimizer's state,
    gradient and the step's temporaries, the step's batch inputs and activations, the full
    batch's per-run inputs where B = n, and the evaluation chunks of the probes.
    """
    R, data = runs, run.data
    width = 4 if run.train.dtype == "float32" else 8
    per_example = data.example_size()
    params = run.model.parameters(data)
    activations = run.model.activations_per_example(data)
    return Estimate({
        "data sets": width * datasets * (data.n + data.n_test) * per_example,
        "weights, optimizer state and step temporaries": width * R * 10 * params,
        "batch inputs and activations": width * R * run.batch_size * (
            2 * per_example + 8 * activations),
        "evaluation": width * 4 * R * eval_chunk(activations) * activations,
        "CUDA context and caching": 600 * MiB,
    })

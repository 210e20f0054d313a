"""The fast engine: the two-layer CNN on structured-sparse data, with fused updates (numba, the
CPU). Its program (adamgen.engines.fast_program) touches only the nonzero input coordinates
and fuses each optimizer's update into one pass (adamgen.engines.kernels); tests/test_fast.py
checks every optimizer of `FUSED` against the torch engine, step for step.
"""

from ..data import DATA_MODELS
from .base import Engine

# the kernels' update family and variant of each optimizer that has one (kernels.FAMILIES;
# the variants set flags and choose the Adam family's branch)
FUSED: dict[str, tuple[str, frozenset[str]]] = {
    "gd": ("sgd", frozenset()),
    "sgd": ("sgd", frozenset()),
    "sgd_momentum": ("sgd", frozenset({"momentum"})),
    "adam": ("adam", frozenset()),
    "adamw": ("adam", frozenset()),
    "amsgrad": ("adam", frozenset({"amsgrad"})),
    "padam": ("adam", frozenset({"padam"})),
    "signsgd": ("sign", frozenset()),
    "signsgdw": ("sign", frozenset()),
    "adagrad": ("adagrad", frozenset()),
    "rmsprop": ("rmsprop", frozenset()),
}


# per run-step on one core of the development machine (the README's bench_engine table: E1's
# model, d = 1000, m = 20, s = 100, float32, 64 runs in lockstep on 2 threads): Adam 11.3 µs
# at B = 2 and 177 µs at B = 200, SGD 4.0 µs at B = 2 and 19.7 µs at B = 20, GD 171 µs at
# B = 200. So 0.21 ns a nonzero input of an example times a filter (forward and backward),
# and an update of 0.06 ns a parameter for (S)GD and momentum, 0.25 ns for the adaptive
# ones; Padam's power costs 3x at p = k/16 in float32 and 13x at other p
# (benchmarks/bench_padam.py). The model gives each of these within 5 %.
NONZERO_FILTER_S = 0.21e-9
PARAMETER_S = {"sgd": 0.06e-9, "adam": 0.25e-9, "sign": 0.25e-9, "adagrad": 0.25e-9,
               "rmsprop": 0.25e-9}


def _update_seconds(run) -> float:
    """One parameter's update, by the optimizer's kernel family (and Padam's power)."""
    family, variant = FUSED[run.optimizer["name"]]
    seconds = PARAMETER_S[family]
    p = run.optimizer.get("p")
    if "padam" in variant and p not in (0.0, 0.5):
        seconds *= 3 if float(16 * p).is_integer() and run.train.dtype == "float32" else 13
    return seconds


class FastEngine(Engine):
    name = "fast"
    doc = "structured-sparse numba kernels with fused optimizer updates (CPU)"

    def supports(self, run) -> str | None:
        if run.train.device != "cpu":
            return "it runs on the CPU"
        if run.model.name != "two_layer_cnn":
            return f"it has no kernels for the network '{run.model.name}'"
        if not DATA_MODELS[run.data.kind].sparse(run.data):
            return f"the '{run.data.kind}' inputs are not sparse"
        if run.optimizer["name"] not in FUSED:
            return f"it has no fused kernel for the optimizer '{run.optimizer['name']}'"
        return None

    def threads(self, runs: int) -> int:
        """Its kernels train a job's runs in parallel, one per thread."""
        return runs

    def seconds(self, run, runs: int, probe_count: int) -> float:
        """Its kernels' time per run-step (a model of the measurements above): every nonzero
        input of the batch against every filter, and the update of every parameter; each
        probe passes over the training and test sets."""
        data, filters = run.data, 2 * run.model.m
        nonzeros = data.nonzeros() if hasattr(data, "nonzeros") else data.example_size()
        per_step = (NONZERO_FILTER_S * run.batch_size * nonzeros * filters
                    + _update_seconds(run) * run.model.parameters(data))
        probes = probe_count * NONZERO_FILTER_S * nonzeros * filters * (2 * data.n
                                                                         + data.n_test)
        steps = run.train.epochs * run.steps_per_epoch
        return runs * (steps * per_step + probes)

    def program(self):
        from .fast_program import FastLockstep  # lazy: numba compiles when a run trains

        return FastLockstep

    def build(self, run, datasets, data_index, W0, hyper):
        fused = FUSED[run.optimizer["name"]]
        return self.program()(run, datasets, data_index, W0, hyper, fused)

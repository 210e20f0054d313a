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

    def program(self):
        from .fast_program import FastLockstep  # lazy: numba compiles when a run trains

        return FastLockstep

    def build(self, run, datasets, data_index, W0, hyper):
        fused = FUSED[run.optimizer["name"]]
        return self.program()(run, datasets, data_index, W0, hyper, fused)

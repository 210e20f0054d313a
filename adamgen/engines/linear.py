"""The linear engine: full-batch training of the two-layer linear network f(x) = w_2ᵀ W_1 x
[Jiang, Malik & Li, NeurIPS 2023, §5] as numba kernels on the CPU (its program:
adamgen.engines.linear_program).

With the whole training set in every step, the gradient needs the data only through
Λ = (1/n) Σ_i x_i x_iᵀ and A = (1/n) Σ_i y_i x_i: with v = W_1ᵀ w_2 and E = Λ v − A,

    ∂L/∂W_1[i, j] = w_2i E_j,        ∂L/∂w_2i = Σ_j W_1[i, j] E_j,

about 4 d² multiply-adds a step against the torch program's 3 n d² (n ≥ d: the inputs are
whitened), and no Python between steps. Jiang et al.'s Theorem 1 holds over a window that
opens after about d^(2α) steps (docs/science.md): at α = 2.2 and d = 16, 10^7 steps and
more, which this engine runs in seconds. The probes are the network's own torch code
(`adamgen.models.two_layer_linear`); `tests/test_engines.py` checks the kernels against the
torch engine.
"""

from ..data import DATA_MODELS
from .base import Engine

# optimizers with a kernel here: their update family
FAMILIES = {"gd": "momentum", "sgd_momentum": "momentum", "adam": "adam"}

# per run-step on one core of the development machine (float64): 0.4 µs at d = 16 and about
# 4.5 d² ns in general (the five d² passes of a step and the update)
STEP_S_PER_SQUARE = 4.5e-9


class LinearEngine(Engine):
    name = "linear"
    doc = "full-batch numba kernels for the two-layer linear network (CPU)"

    def supports(self, run) -> str | None:
        if run.model.name != "two_layer_linear":
            return f"it has no kernels for the network '{run.model.name}'"
        if run.train.device != "cpu":
            return "it runs on the CPU"
        if run.train.dtype != "float64":
            return "it computes in float64"
        if run.batch_size != run.data.n:
            return "it trains on the full batch only"
        if run.optimizer["name"] not in FAMILIES:
            return f"it has no kernel for the optimizer '{run.optimizer['name']}'"
        if not run.optimizer.get("bias_correction", True):
            return "its Adam corrects the moments' bias"
        if DATA_MODELS[run.data.kind].classes != 2:
            return f"it has no kernels for the '{run.data.kind}' data"
        return None

    def threads(self, runs: int) -> int:
        """Its kernels train a job's runs in parallel, one per thread."""
        return runs

    def seconds(self, run, runs: int, probe_count: int) -> float:
        d = run.data.d
        steps = run.train.epochs
        probes = probe_count * 1e-3 * (d / 16) ** 3  # the torch probes: SVD, Hessian diagonal
        return runs * (steps * STEP_S_PER_SQUARE * max(d * d, 64) + probes)

    def program(self):
        from .linear_program import LinearLockstep  # lazy: numba compiles when a run trains

        return LinearLockstep

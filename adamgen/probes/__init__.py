"""Probe sets: what is recorded along a trajectory [docs/science.md §5]. One row each in
PROBE_SETS; the variables a row declares are what run files hold, what summaries keep (and
how) and what tables, figures and claims can read.

    core           train/test loss and error, ‖∇L‖_1, ‖∇L‖_F, ‖W‖_F          every run
    feature_noise  feature learning ⟨w_{j,r}, j·v⟩ and noise memorization ⟨w_{y_i,r}, ξ_i⟩
                   [Zou Fig. 2; Tang App. D.2]                          patch model (default)
    signal_noise   the signal-noise decomposition W = W⁽⁰⁾ + j·γ·μ/‖μ‖² + Σ_i ρ_i ξ_i/‖ξ_i‖²
                   [Cao et al.; the slides]                             benign model (default)
    hessian        R_med = max_i |H_ii| / median_i |H_ii| per layer, the Hessian diagonal's
                   uniformity [Jiang et al. eq. 1]                      opt-in
    jiang_window   when the linear network is inside the time window of Jiang et al.'s
                   Theorem 1, and what decides it [Jiang et al. App. C-D]   opt-in

A data model's row lists the sets it records by default; `probes.extra` adds opt-in ones. To
add a probe set: a module with `prepare(run, datasets, data_index, W0)` and
`record(state, W, stats)`, and a row here declaring its variables.
"""

import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass

from ..data import DATA_MODELS
from ..models import NETWORKS


@dataclass(frozen=True)
class Variable:
    """One recorded variable (dims after `epoch`).

    summary    how an experiment's summary keeps it: () as is, ("r",) its maximum over r, None
               not at all (the full arrays stay in the run files)
    summary_name  its name in the summary (default: its own)
    optional   recorded only when `probes.noise_memorization_full` asks for it
    """

    dims: tuple[str, ...]
    long_name: str
    label: str = ""  # short, for table headers and legends (default: the name)
    units: str = "1"
    summary: tuple[str, ...] | None = ()
    summary_name: str | None = None
    optional: bool = False

    def summarized(self, name: str) -> str:
        return self.summary_name or name


@dataclass(frozen=True)
class Series:
    """One line of a probe set's dynamics figure: a summary variable at class j."""

    variable: str
    j: int
    label: str


@dataclass(frozen=True)
class ProbeSet:
    """One row of the probe-set registry.

    dynamics   the lines of its figure against epoch (adamgen.figures), with the y label
    """

    name: str
    doc: str
    variables: dict[str, Variable]
    implementation: str
    applies: Callable[..., str | None]  # run → why it cannot be recorded, or None
    reference: str = ""
    per_example: bool = False  # has an optional per-example array (noise_memorization_full)
    dynamics: tuple[Series, ...] = ()
    dynamics_ylabel: str = ""

    def impl(self):
        return importlib.import_module(self.implementation)


def _cnn_with_signal(run) -> str | None:
    if run.model.name != "two_layer_cnn":
        return f"it reads the two-layer CNN's filters, not '{run.model.name}'"
    if not DATA_MODELS[run.data.kind].signal:
        return f"the '{run.data.kind}' data have no signal and noise vectors"
    return None


def _hessian(run) -> str | None:
    impl = NETWORKS[run.model.name]
    if run.probes.hessian_probes == 0 and not impl.exact_hessian:
        return (f"'{run.model.name}' has no exact Hessian diagonal; set probes.hessian_probes "
                "to the number of Hutchinson probes")
    return None


def _linear(run) -> str | None:
    if run.model.name != "two_layer_linear":
        return f"it reads the two-layer linear network's layers, not '{run.model.name}'"
    return None


def _one_noise_patch(run) -> str | None:
    reason = _cnn_with_signal(run)
    if reason is None and getattr(run.data, "patches", 2) != 2:
        return "it needs one noise vector per example (data.patches = 2)"
    return reason


PROBE_SETS: dict[str, ProbeSet] = {
    "core": ProbeSet("core", "losses, errors and norms", {
        "train_loss": Variable((), "mean training cross-entropy (nats), without the L2 term",
                               label="train loss"),
        "test_loss": Variable((), "mean test cross-entropy (nats)", label="test loss"),
        "train_error": Variable((), "training error (a classifier's: ties counted as errors; a "
                                    "regression network's: relative squared error)",
                                label="train error"),
        "test_error": Variable((), "test error (as the training error)", label="test error"),
        "grad_norm_l1": Variable((), "l1 norm of the full-batch gradient of the training "
                                     "objective", label="|grad|_1"),
        "grad_norm_l2": Variable((), "Frobenius norm of the full-batch gradient of the training "
                                     "objective", label="|grad|_F"),
        "weight_norm": Variable((), "Frobenius norm of W", label="|W|_F"),
    }, "adamgen.probes.core", lambda run: None),
    "feature_noise": ProbeSet("feature_noise", "feature learning and noise memorization", {
        "feature_learning": Variable(("j", "r"), "feature learning <w_{j,r}, j v>",
                                     summary=("r",), summary_name="feature_learning_max",
                                     label="feature"),
        "noise_memorization": Variable(("j", "r", "i"), "noise memorization <w_{j,r}, xi_i>",
                                       summary=None, optional=True, label="noise"),
        "noise_memorization_min": Variable(("j",), "min over i with y_i = j of max_r "
                                                   "<w_{j,r}, xi_i>", label="noise min"),
        "noise_memorization_max": Variable(("j",), "max over i with y_i = j of max_r "
                                                   "<w_{j,r}, xi_i>", label="noise max"),
    }, "adamgen.probes.feature_noise", _cnn_with_signal,
        reference="Zou et al. Fig. 2; Tang et al. App. D.2", per_example=True,
        dynamics=(Series("feature_learning_max", 1, "feature, j=+1: max_r <w, v>"),
                  Series("feature_learning_max", -1, "feature, j=-1: max_r <w, -v>"),
                  Series("noise_memorization_min", 1, "noise, j=+1: min_i max_r <w, xi_i>"),
                  Series("noise_memorization_max", 1, "noise, j=+1: max_i max_r <w, xi_i>")),
        dynamics_ylabel="inner product with v or xi_i (1)"),
    "signal_noise": ProbeSet("signal_noise", "signal-noise decomposition of the filters", {
        "signal_learning": Variable(("j", "r"), "signal learning gamma_{j,r}: W_{j,r} - "
                                                "W_{j,r}(0) = j gamma mu/|mu|^2 + ...",
                                    summary=("r",), summary_name="signal_learning_max",
                                    label="signal"),
        "rho": Variable(("j", "r", "i"), "noise coefficient rho_{j,r,i} of xi_i/|xi_i|^2",
                        summary=None, optional=True, label="rho"),
        "rho_pos_min": Variable(("j",), "min over i with y_i = j of max_r rho_bar_{j,r,i} "
                                        "(positive part)", label="rho+ min"),
        "rho_pos_max": Variable(("j",), "max over i with y_i = j of max_r rho_bar_{j,r,i} "
                                        "(positive part)", label="rho+ max"),
        "rho_neg_min": Variable(("j",), "min over i with y_i = -j of min_r rho_under_{j,r,i} "
                                        "(negative part)", label="rho- min"),
        "rho_neg_max": Variable(("j",), "max over i with y_i = -j of min_r rho_under_{j,r,i} "
                                        "(negative part)", label="rho- max"),
        "decomposition_residual": Variable((), "|W - W(0) - projection on span(mu, xi_i)|_F / "
                                               "|W - W(0)|_F (0 for gradient descent)",
                                           label="residual"),
    }, "adamgen.probes.signal_noise", _one_noise_patch,
        reference="Cao, Chen, Belkin & Gu (NeurIPS 2022); the talk slides", per_example=True,
        dynamics=(Series("signal_learning_max", 1, "signal, j=+1: max_r gamma"),
                  Series("signal_learning_max", -1, "signal, j=-1: max_r gamma"),
                  Series("rho_pos_max", 1, "noise, j=+1: max_i max_r rho_bar"),
                  Series("rho_neg_min", 1, "noise, j=+1: min_i min_r rho_under")),
        dynamics_ylabel="decomposition coefficient (1)"),
    "hessian": ProbeSet("hessian", "uniformity of the Hessian diagonal", {
        "rmed": Variable(("layer",), "R_med = max_i |H_ii| / median_i |H_ii| over the layer's "
                                     "parameters (Hessian of the training objective)",
                         label="R_med"),
        "rmed_damped": Variable(("layer",), "max_i |H_ii| / (median_i |H_ii| + 0.001 max_i "
                                            "|H_ii|)", label="R_med damped"),
        "hessian_diagonal_quantiles": Variable(("layer", "quantile"), "quantiles of |H_ii| "
                                                                      "over the layer",
                                               summary=None, label="|H_ii| quantiles"),
    }, "adamgen.probes.hessian", _hessian,
        reference="Jiang, Malik & Li (NeurIPS 2023) eq. 1"),
    "jiang_window": ProbeSet("jiang_window", "the time window of Jiang et al.'s Theorem 1", {
        "window_open": Variable((), "1 where the opening condition of the theorem's window "
                                    "holds (SGD+M: max |w| >= d^(-alpha/2); Adam: W_1 rank 1), "
                                    "NaN for other optimizers", label="window opens"),
        "window_close": Variable((), "1 where its closing condition holds (SGD+M: max_j E_j >= "
                                     "-sqrt(d^(1-alpha/4)); Adam: max_j E_j >= -sqrt(eta d))",
                                 label="window closes"),
        "w_max": Variable((), "largest |entry| of W_1 and w_2", label="max |w|"),
        "residual_max": Variable((), "max_j E_j, E = W_1^T w_2 - A", label="max E"),
        "rank1": Variable((), "sigma_1(W_1)^2 / |W_1|_F^2", label="rank-1 share"),
        "singular_uniformity": Variable((), "R_u = max_i u_i^2 / median_i u_i^2 of the leading "
                                            "left singular vector u of W_1 (Jiang et al. §6)",
                                        label="R_u"),
    }, "adamgen.probes.jiang_window", _linear,
        reference="Jiang, Malik & Li (NeurIPS 2023) App. C-D"),
}

# the quantiles of |H_ii| the hessian set records (coordinate `quantile`)
QUANTILES = (0.0, 0.25, 0.5, 0.75, 0.9, 0.99, 1.0)

# the sets `probes.extra` may name (core is always recorded)
OPT_IN = tuple(name for name in PROBE_SETS if name != "core")


def active(run) -> list[ProbeSet]:
    """The probe sets a run records: its data model's defaults, then `probes.extra`."""
    names = dict.fromkeys((*DATA_MODELS[run.data.kind].probes, *run.probes.extra))
    return [PROBE_SETS[n] for n in names]


def probe_size(run, dim: str) -> int:
    """The length of a probe dimension for a run."""
    sizes = {"j": 2, "r": getattr(run.model, "m", 0), "i": run.data.n, "quantile": len(QUANTILES)}
    if dim == "layer":
        return len(NETWORKS[run.model.name].layer_names(run))
    return sizes[dim]


def values_per_probe(run) -> int:
    """How many numbers one probe epoch of a run records."""
    return sum(math.prod(probe_size(run, d) for d in var.dims)
               for var in variables(run).values())


def variables(run) -> dict[str, Variable]:
    """Every variable a run's file holds."""
    out = {}
    for probe_set in active(run):
        for name, var in probe_set.variables.items():
            if not var.optional or run.probes.noise_memorization_full:
                out[name] = var
    return out


ALL_VARIABLES: dict[str, Variable] = {
    name: var for probe_set in PROBE_SETS.values() for name, var in probe_set.variables.items()}
__all__ = ["ALL_VARIABLES", "OPT_IN", "PROBE_SETS", "ProbeSet", "Series", "Variable", "active",
           "probe_size", "values_per_probe", "variables"]

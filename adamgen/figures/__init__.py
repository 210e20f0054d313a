"""Figures of an experiment: one row per kind in FIGURES, drawn from the summary alone.

    dynamics-<optimizer>        the probe sets' trajectories against epoch, one panel per grid
                                point (Zou Fig. 2; Tang Figs. 3-4; Cao et al.'s γ and ρ)
    errors-<optimizer>          training and test error against epoch (Tang Figs. 5-6)
    test_error_vs_<axis>        final test error against any swept numeric axis
    heatmap_test_error          final test error over B × λ with Tang's Cor. 4.3 / 4.6
                                boundaries (Tang Figs. 1-2)
    heatmap_test_error_eps      final test error over B × Adam's ε with the critical batch
                                size and Tang's B* ∝ n / log(1/ε) (Thm 4.2)
    phase_test_error            final test error over n × SNR with the fitted boundary
                                n·SNR^q = C (Cao et al.'s phase transition)
    across_boundary-<optimizer> at the largest n, the dynamics at the grid's SNR values just
                                below and just above the boundary (γ and ρ of Cao et al.)
    feature_vs_<axis>           final feature learning against any swept numeric axis (Padam's p)
    rmed                        R_med per layer against epoch, one line per optimizer, the flip
                                of feature learning marked (Jiang et al.; the hessian probes)
    rmed_at_flip                R_med where feature learning flips against the final test
                                error, one point per run

A row says for which experiments the kind exists (`instances`, read when the workflow is
planned: this module imports neither matplotlib nor xarray), its report caption, and the
function that draws it (`adamgen.figures.plots`). The workflow makes one rule per row.
"""

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass

from ..config import dim_name
from ..probes import active


@dataclass(frozen=True)
class FigureKind:
    name: str  # the workflow rule is plot_<name>
    stem: str  # file name without suffix, with {wildcards}
    caption: str  # workflow/report/<caption>.rst
    subcategory: str
    instances: Callable  # Experiment → the wildcard values of each figure of this kind
    draw: str  # function in adamgen.figures.plots: draw(summary, **wildcards)

    def stems(self, experiment) -> list[str]:
        return [self.stem.format(**w) for w in self.instances(experiment)]

    def match(self, stem: str) -> dict | None:
        pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>.+)", re.escape(self.stem))
        m = re.fullmatch(pattern, stem)
        return m.groupdict() if m else None


def _optimizers(experiment) -> list[dict]:
    return [{"optimizer": o} for o in experiment.axes["optimizer"]]


MAX_PANELS = 16  # a grid with more points per optimizer is read through its sweeps instead


def _points(experiment, optimizer: str) -> int:
    """Grid points (seeds aside) of one optimizer."""
    return len({tuple(v for k, v in r.coords.items() if k != "seed")
                for r in experiment.runs if r.coords["optimizer"] == optimizer})


def _has_dynamics(experiment, optimizer: str) -> bool:
    runs = [r for r in experiment.runs if r.coords["optimizer"] == optimizer]
    return any(s.dynamics for r in runs[:1] for s in active(r.config))


def _with_dynamics(experiment) -> list[dict]:
    """Optimizers whose runs record a probe set with a dynamics figure, one panel per grid
    point (up to MAX_PANELS of them)."""
    return [{"optimizer": o} for o in experiment.axes["optimizer"]
            if _has_dynamics(experiment, o) and _points(experiment, o) <= MAX_PANELS]


def _across_phase(experiment) -> list[dict]:
    """For an n × SNR grid: the dynamics on both sides of the boundary."""
    if not {"data_n", "data_snr"} <= set(swept(experiment)):
        return []
    return [{"optimizer": o} for o in experiment.axes["optimizer"]
            if _has_dynamics(experiment, o)]


def swept(experiment) -> list[str]:
    """Numeric axes with more than one value (seed and optimizer aside), by dimension name."""
    out = []
    for axis, values in experiment.axes.items():
        numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
        if axis not in ("optimizer", "seed") and len(numbers) > 1:
            out.append(dim_name(axis))
    return out


def _records(experiment, probe_set: str) -> bool:
    """Whether some run of the experiment records the probe set."""
    return any(probe_set in {s.name for s in active(r.config)} for r in experiment.runs)


def _both(*dims: str) -> Callable:
    return lambda experiment: [{}] if set(dims) <= set(swept(experiment)) else []


FIGURES: dict[str, FigureKind] = {k.name: k for k in (
    FigureKind("dynamics", "dynamics-{optimizer}", "dynamics", "trajectories",
               _with_dynamics, "dynamics"),
    FigureKind("errors", "errors-{optimizer}", "errors", "errors", _optimizers, "errors"),
    FigureKind("sweep", "test_error_vs_{axis}", "sweep", "sweeps",
               lambda e: [{"axis": a} for a in swept(e)], "sweep"),
    FigureKind("heatmap", "heatmap_test_error", "heatmap", "sweeps",
               _both("batch_size", "weight_decay"), "heatmap"),
    FigureKind("heatmap_eps", "heatmap_test_error_eps", "heatmap_eps", "sweeps",
               _both("batch_size", "eps"), "heatmap_eps"),
    FigureKind("phase", "phase_test_error", "phase", "phase diagram",
               _both("data_n", "data_snr"), "phase"),
    FigureKind("across", "across_boundary-{optimizer}", "across", "phase diagram",
               _across_phase, "across_boundary"),
    FigureKind("feature_sweep", "feature_vs_{axis}", "feature_sweep", "sweeps",
               lambda e: [{"axis": a} for a in swept(e)] if _records(e, "feature_noise")
               else [], "feature_sweep"),
    FigureKind("rmed", "rmed", "rmed", "geometry",
               lambda e: [{}] if _records(e, "hessian") else [], "rmed"),
    FigureKind("rmed_at_flip", "rmed_at_flip", "rmed_at_flip", "geometry",
               lambda e: [{}] if _records(e, "hessian") and _records(e, "feature_noise")
               else [], "rmed_at_flip"),
)}


def names(experiment) -> list[str]:
    """The figures (file stems) of an experiment."""
    return [stem for kind in FIGURES.values() for stem in kind.stems(experiment)]


def draw(stem: str, summary):
    """Draw the figure `stem` (a file name without suffix) from an experiment's summary."""
    module = importlib.import_module("adamgen.figures.plots")
    if stem == "convex":
        return module.convex(summary)
    for kind in FIGURES.values():
        wildcards = kind.match(stem)
        if wildcards is not None:
            return getattr(module, kind.draw)(summary, **wildcards)
    raise ValueError(f"unknown figure '{stem}'")


def save(fig, *paths) -> None:
    importlib.import_module("adamgen.figures.plots").save(fig, *paths)

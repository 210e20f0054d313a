"""The named optimizers [docs/science.md §3], each a short composition of transforms.

`OPTIMIZERS` is the single table of what exists: each row declares its hyperparameters with
their defaults, its preconditioner and whether its weight decay is coupled (L2 in the
objective) or decoupled. Config validation, the command line, the workflow schema and the
docs all read this table. Reading it imports no torch: `build` receives the transforms module
(`adamgen.optim.transforms`) when a run trains. What the engines make of an optimizer (the
fast engine's fused kernels) is theirs to declare (adamgen.engines).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

from ..settings import positive, unit_interval

if TYPE_CHECKING:
    from torch import Tensor

    from .transforms import Transform

REQUIRED = object()  # marks a hyperparameter without a default


def _non_negative(x: float) -> str | None:
    return None if x >= 0.0 else "must be >= 0"


@dataclass(frozen=True)
class Hyper:
    """One optimizer hyperparameter: its type, range check and meaning."""

    kind: str  # "float", "bool" or "pair"
    doc: str
    check: Callable[[Any], str | None] = lambda x: None
    structural: bool = False  # changes the program, so it must agree across a lockstep group


HYPERS: dict[str, Hyper] = {
    "lr": Hyper("float", "learning rate η", positive),
    "weight_decay": Hyper("float", "weight decay λ (coupled or decoupled, by optimizer)",
                          _non_negative),
    "betas": Hyper("pair", "(β1, β2) of the moment estimates",
                   lambda b: next(filter(None, map(unit_interval, b)), None)),
    "eps": Hyper("float", "ε added to the preconditioner's denominator", _non_negative),
    "bias_correction": Hyper("bool", "divide the moments by 1 − β^t (PyTorch) or not (Zou)",
                             structural=True),
    "momentum": Hyper("float", "heavy-ball momentum μ (b ← μ b + g)", unit_interval),
    "p": Hyper("float", "Padam's partial adaptivity: u = m / (√v_max + ε)^(2p)",
               lambda x: None if 0.0 <= x <= 0.5 else "must be in [0, 1/2]"),
    "alpha": Hyper("float", "RMSprop's smoothing constant a", unit_interval),
}

Inner = Callable[[dict[str, Any], ModuleType], list]  # (hyper, transforms) → preconditioner


@dataclass(frozen=True, kw_only=True)
class NamedOptimizer:
    """One row of the optimizer registry.

    preconditioner  (hyperparameters, transforms module) → the transforms between the
                    gradient and the step (none for gradient descent)
    decay           'coupled': g ← g + λW before the preconditioner (L2 in the objective);
                    'decoupled': W ← (1 − ηλ) W − η u after it
    """

    doc: str
    defaults: dict[str, Any]  # exactly the optimizer's hyperparameters
    preconditioner: Inner
    decay: str = "coupled"
    full_batch: bool = False  # gd: B must equal n
    reference: str = ""
    # bumped when the update's math changes, so that run files computed by the old update are
    # not taken for the new one's (it enters the run's hash; 0 leaves the hash as it was)
    revision: int = 0

    @property
    def coupled(self) -> bool:
        """Whether the weight decay enters the gradient (L2 in the objective)."""
        return self.decay == "coupled"

    def build(self, h: dict[str, Any], T: ModuleType) -> Transform:
        """The update: the preconditioner between the decay's two places, then the step."""
        decay = T.add_decayed_weights(h["weight_decay"])
        inner = self.preconditioner(h, T)
        parts = [decay, *inner] if self.coupled else [*inner, decay]
        return T.chain(*parts, T.scale_by_lr(h["lr"]))


def _adam(amsgrad: bool = False) -> Inner:
    def inner(h: dict, T: ModuleType) -> list:
        b1, b2 = h["betas"]
        return [T.scale_by_adam(b1, b2, h["eps"], amsgrad=amsgrad,
                                bias_correction=h["bias_correction"])]

    return inner


def _padam(h: dict, T: ModuleType) -> list:
    b1, b2 = h["betas"]
    return [T.scale_by_padam(b1, b2, h["eps"], h["p"], bias_correction=h["bias_correction"])]


def _none(h: dict, T: ModuleType) -> list:
    return []


_ADAM_DEFAULTS = {"lr": REQUIRED, "weight_decay": 0.0, "betas": (0.9, 0.999), "eps": 1e-8,
                  "bias_correction": True}
_PLAIN = {"lr": REQUIRED, "weight_decay": 0.0}
_Row = NamedOptimizer

OPTIMIZERS: dict[str, NamedOptimizer] = {
    "gd": _Row(doc="full-batch gradient descent: W ← W − η g", defaults=_PLAIN,
               preconditioner=_none, full_batch=True),
    "sgd": _Row(doc="mini-batch SGD: W ← W − η g", defaults=_PLAIN, preconditioner=_none),
    "sgd_momentum": _Row(doc="SGD with momentum: b ← μ b + g; W ← W − η b",
                         defaults={**_PLAIN, "momentum": 0.9},
                         preconditioner=lambda h, T: [T.trace(h["momentum"])]),
    "adam": _Row(doc="Adam with coupled L2 weight decay", defaults=_ADAM_DEFAULTS,
                 preconditioner=_adam(), reference="Kingma & Ba (2015)"),
    "adamw": _Row(doc="Adam with decoupled weight decay", defaults=_ADAM_DEFAULTS,
                  preconditioner=_adam(), decay="decoupled",
                  reference="Loshchilov & Hutter (2019)"),
    "amsgrad": _Row(doc="Adam with v̂ ← max(v̂, v)", defaults=_ADAM_DEFAULTS,
                    preconditioner=_adam(amsgrad=True),
                    reference="Reddi, Kale & Kumar (2018)"),
    "padam": _Row(doc="partially adaptive AMSGrad, as its authors' code: "
                      "W ← W − η √(1 − β2^t)/(1 − β1^t) · m / (√v_max + ε)^(2p)",
                  defaults={**_ADAM_DEFAULTS, "p": 0.125}, preconditioner=_padam,
                  reference="Chen, Zhou, Tang, Yang, Cao & Gu (IJCAI 2020); uclaml/Padam",
                  revision=1),
    "signsgd": _Row(doc="sign descent: W ← W − η sign(g)", defaults=_PLAIN,
                    preconditioner=lambda h, T: [T.scale_by_sign()]),
    "signsgdw": _Row(doc="sign descent, decoupled decay: W ← (1 − ηλ) W − η sign(g)",
                     defaults=_PLAIN, preconditioner=lambda h, T: [T.scale_by_sign()],
                     decay="decoupled"),
    "adagrad": _Row(doc="Adagrad: G ← G + g²; W ← W − η g / (√G + ε)",
                    defaults={**_PLAIN, "eps": 1e-10},
                    preconditioner=lambda h, T: [T.scale_by_rss(h["eps"])]),
    "rmsprop": _Row(doc="RMSprop: v ← a v + (1 − a) g²; b ← μ b + g / (√v + ε); W ← W − η b "
                        "(torch.optim's momentum; μ = 0: W ← W − η g / (√v + ε))",
                    defaults={**_PLAIN, "alpha": 0.99, "eps": 1e-8, "momentum": 0.0},
                    preconditioner=lambda h, T: [T.scale_by_rms(h["alpha"], h["eps"]),
                                                 T.trace(h["momentum"])]),
    "lion": _Row(doc="Lion: u = sign(β1 m + (1 − β1) g); m ← β2 m + (1 − β2) g; "
                     "W ← (1 − ηλ) W − η u",
                 defaults={"lr": REQUIRED, "weight_decay": 0.0, "betas": (0.9, 0.99)},
                 preconditioner=lambda h, T: [T.scale_by_lion(*h["betas"])],
                 decay="decoupled",
                 reference="Chen et al., Symbolic Discovery of Optimization Algorithms "
                           "(NeurIPS 2023)"),
}


def build_optimizer(name: str, hyper: dict[str, Any]) -> Transform:
    """Build the named optimizer; numeric hyperparameters are [R] tensors, flags are bools.

    `betas` is a pair of [R] tensors.
    """
    from . import transforms  # lazy: torch loads when a run trains

    spec = OPTIMIZERS[name]
    missing = set(spec.defaults) - set(hyper)
    if missing:
        raise KeyError(f"{name} needs hyperparameters {sorted(missing)}")
    return spec.build({k: hyper[k] for k in spec.defaults}, transforms)


def per_run_hyperparameters(name: str, settings: list[dict[str, Any]], like: Tensor) -> dict:
    """Stack the hyperparameters of R runs into what `build_optimizer` takes.

    Numeric values become [R] tensors on `like`'s device and dtype; structural flags must be
    equal across runs (they select a different program).
    """
    out: dict[str, Any] = {}
    for key in OPTIMIZERS[name].defaults:
        values = [s[key] for s in settings]
        kind = HYPERS[key].kind
        if kind == "bool":
            if len(set(values)) != 1:
                raise ValueError(f"runs in lockstep must share optimizer.{key}; got {values}")
            out[key] = values[0]
        elif kind == "pair":
            out[key] = tuple(like.new_tensor([v[k] for v in values]) for k in range(2))
        else:
            out[key] = like.new_tensor(values)
    return out

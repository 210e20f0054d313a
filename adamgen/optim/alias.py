"""The named optimizers of SPEC §3, each a short composition of transforms.

`OPTIMIZERS` is the single table of what exists: each entry declares its hyperparameters with
their defaults, whether its weight decay is coupled (L2 in the objective) or decoupled, and how
it is built. Config validation, the command line and the docs all read this table.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import Tensor

from .transforms import (
    Transform,
    add_decayed_weights,
    chain,
    scale_by_adam,
    scale_by_lr,
    scale_by_rms,
    scale_by_rss,
    scale_by_sign,
    trace,
)

REQUIRED = object()  # marks a hyperparameter without a default


def _in_unit_interval(x: float) -> str | None:
    return None if 0.0 <= x < 1.0 else "must be in [0, 1)"


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
    "lr": Hyper("float", "learning rate η", lambda x: None if x > 0 else "must be > 0"),
    "weight_decay": Hyper("float", "weight decay λ (coupled or decoupled, by optimizer)",
                          _non_negative),
    "betas": Hyper("pair", "(β1, β2) of the moment estimates",
                   lambda b: next(filter(None, map(_in_unit_interval, b)), None)),
    "eps": Hyper("float", "ε added to the preconditioner's denominator", _non_negative),
    "bias_correction": Hyper("bool", "divide the moments by 1 − β^t (PyTorch) or not (Zou)",
                             structural=True),
    "momentum": Hyper("float", "heavy-ball momentum μ (b ← μ b + g)", _in_unit_interval),
    "p": Hyper("float", "Padam's partial adaptivity: u = m / (v̂^p + ε)",
               lambda x: None if 0.0 <= x <= 0.5 else "must be in [0, 1/2]"),
    "alpha": Hyper("float", "RMSprop's smoothing constant a", _in_unit_interval),
}


@dataclass(frozen=True)
class NamedOptimizer:
    doc: str
    defaults: dict[str, Any]  # exactly the optimizer's hyperparameters
    build: Callable[[dict[str, Any]], Transform]
    coupled: bool  # weight decay enters the gradient (L2 in the objective)
    fused: tuple[str, frozenset[str]]  # the fast path's update family and variant (adamgen.fast)
    full_batch: bool = False  # gd: B must equal n


def _coupled(inner: Callable[[dict], list[Transform]]) -> Callable[[dict], Transform]:
    """g ← g + λW, then the preconditioner, then the step."""
    return lambda h: chain(add_decayed_weights(h["weight_decay"]), *inner(h), scale_by_lr(h["lr"]))


def _decoupled(inner: Callable[[dict], list[Transform]]) -> Callable[[dict], Transform]:
    """The preconditioner on the data gradient, then W ← (1 − ηλ) W − η u."""
    return lambda h: chain(*inner(h), add_decayed_weights(h["weight_decay"]), scale_by_lr(h["lr"]))


def _adam(amsgrad: bool = False, padam: bool = False) -> Callable[[dict], list[Transform]]:
    def inner(h: dict) -> list[Transform]:
        b1, b2 = h["betas"]
        return [scale_by_adam(b1, b2, h["eps"], power=h["p"] if padam else None,
                              amsgrad=amsgrad, bias_correction=h["bias_correction"])]

    return inner


_ADAM_DEFAULTS = {"lr": REQUIRED, "weight_decay": 0.0, "betas": (0.9, 0.999), "eps": 1e-8,
                  "bias_correction": True}
_PLAIN = {"lr": REQUIRED, "weight_decay": 0.0}

def _named(doc, defaults, build, coupled, family, *variant, full_batch=False):
    return NamedOptimizer(doc, defaults, build, coupled, (family, frozenset(variant)), full_batch)


OPTIMIZERS: dict[str, NamedOptimizer] = {
    "gd": _named("full-batch gradient descent: W ← W − η g", _PLAIN,
                 _coupled(lambda h: []), True, "sgd", full_batch=True),
    "sgd": _named("mini-batch SGD: W ← W − η g", _PLAIN,
                  _coupled(lambda h: []), True, "sgd"),
    "sgd_momentum": _named("SGD with momentum: b ← μ b + g; W ← W − η b",
                           {**_PLAIN, "momentum": 0.9},
                           _coupled(lambda h: [trace(h["momentum"])]), True, "sgd", "momentum"),
    "adam": _named("Adam with coupled L2 weight decay", _ADAM_DEFAULTS,
                   _coupled(_adam()), True, "adam"),
    "adamw": _named("Adam with decoupled weight decay", _ADAM_DEFAULTS,
                    _decoupled(_adam()), False, "adam"),
    "amsgrad": _named("Adam with v̂ ← max(v̂, v)", _ADAM_DEFAULTS,
                      _coupled(_adam(amsgrad=True)), True, "adam", "amsgrad"),
    "padam": _named("partially adaptive AMSGrad: W ← W − η m / (v̂^p + ε)",
                    {**_ADAM_DEFAULTS, "p": 0.125},
                    _coupled(_adam(amsgrad=True, padam=True)), True, "adam", "amsgrad", "power"),
    "signsgd": _named("sign descent: W ← W − η sign(g)", _PLAIN,
                      _coupled(lambda h: [scale_by_sign()]), True, "sign"),
    "signsgdw": _named("sign descent, decoupled decay: W ← (1 − ηλ) W − η sign(g)", _PLAIN,
                       _decoupled(lambda h: [scale_by_sign()]), False, "sign"),
    "adagrad": _named("Adagrad: G ← G + g²; W ← W − η g / (√G + ε)", {**_PLAIN, "eps": 1e-10},
                      _coupled(lambda h: [scale_by_rss(h["eps"])]), True, "adagrad"),
    "rmsprop": _named("RMSprop: v ← a v + (1 − a) g²; W ← W − η g / (√v + ε)",
                      {**_PLAIN, "alpha": 0.99, "eps": 1e-8},
                      _coupled(lambda h: [scale_by_rms(h["alpha"], h["eps"])]), True, "rmsprop"),
}


def build_optimizer(name: str, hyper: dict[str, Any]) -> Transform:
    """Build the named optimizer; numeric hyperparameters are [R] tensors, flags are bools.

    `betas` is a pair of [R] tensors.
    """
    spec = OPTIMIZERS[name]
    missing = set(spec.defaults) - set(hyper)
    if missing:
        raise KeyError(f"{name} needs hyperparameters {sorted(missing)}")
    return spec.build({k: hyper[k] for k in spec.defaults})


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

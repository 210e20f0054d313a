"""Training engines: how R runs in lockstep are advanced and evaluated. One row each in ENGINES.

    fast     structured-sparse forward and backward passes and fused optimizer updates (numba,
             CPU): for the two-layer CNN on sparse data, optimizers with a kernel
    linear   full-batch steps of the two-layer linear network from Λ = XᵀX/n and A = Xᵀy/n
             (numba, CPU, float64): Adam, SGD with momentum, GD
    torch    the network's torch implementation, dense, on any device, as one tensor program
             over the run axis: eager it is the readable definition of every number; compiled
             (train.compile) it is the engine for CUDA
    module   the torch-module image networks (batch norm, augmentation, bf16 autocast), one
             module per run, the parameters a flat vector the transforms update

An engine is an object (`adamgen.engines.base.Engine`): it declares what it supports, its
memory, threads and group sizes, and the train keys only it reads; its `build` returns the
program the trainer drives. `train.engine: auto` takes the first row, in this order, that
supports the run, and the run's log says which ran and why the ones before it did not. A
fast path is optional: where it has no kernel, the torch engine runs. To add an engine: a
module with an `Engine` subclass, and its row here.
"""

from ..errors import ConfigError
from .base import Engine, EngineKey
from .dense import TorchEngine
from .fast import FastEngine
from .linear import LinearEngine
from .module import ModuleEngine

ENGINES: dict[str, Engine] = {e.name: e for e in (FastEngine(), LinearEngine(), TorchEngine(),
                                                  ModuleEngine())}
# names of engines that became the torch engine, still accepted in configs
ALIASES = {"reference": "torch", "batched": "torch"}


def engine_keys() -> dict[str, tuple[EngineKey, tuple[str, ...]]]:
    """Every engine-specific train key: its declaration and the engines that read it."""
    out: dict[str, tuple[EngineKey, tuple[str, ...]]] = {}
    for engine in ENGINES.values():
        for name, declared in engine.keys.items():
            owners = out[name][1] if name in out else ()
            out[name] = (declared, (*owners, engine.name))
    return out


def refusal(engine: Engine, run) -> str | None:
    """Why `engine` cannot train `run`: a binding key it does not read set away from its
    default (bf16 autocast on an engine without it), or its own `supports`."""
    for name, (declared, owners) in engine_keys().items():
        value = getattr(run.train, name)
        if declared.binding and value != declared.default and engine.name not in owners:
            return f"it has no train.{name} '{value}' (read by: {', '.join(owners)})"
    return engine.supports(run)


def choose(run) -> tuple[Engine, str]:
    """The engine for a run, and one line saying why (for the run's log)."""
    requested = run.train.engine
    if requested != "auto":
        engine = ENGINES[ALIASES.get(requested, requested)]
        return engine, "asked for" if requested == engine.name else f"asked for '{requested}'"
    skipped = []
    for engine in ENGINES.values():
        reason = refusal(engine, run) or engine.passed_over(run)
        if reason is None:
            why = "; ".join(skipped)
            return engine, f"auto: {why}" if why else "auto"
        skipped.append(f"not {engine.name}: {reason}")
    raise ConfigError("train.engine", "no engine can train this run: " + "; ".join(skipped),
                      requested)


__all__ = ["ALIASES", "ENGINES", "Engine", "EngineKey", "choose", "engine_keys", "refusal"]

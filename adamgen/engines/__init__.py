"""Training engines: how R runs in lockstep are advanced and evaluated. One row each in ENGINES.

    fast       structured-sparse forward and backward passes and fused optimizer updates
               (numba, CPU): for the two-layer CNN on sparse data, optimizers with a kernel
    batched    the two-layer CNN as batched matrix products over the run axis, one step
               compiled into fused kernels (torch.compile): the engine for CUDA
    reference  the network's torch implementation and the optimizer's transforms, dense, on
               any device: the readable definition of every number
    module     the torch-module image networks (batch norm, augmentation, bf16 autocast),
               one module per run, the parameters a flat vector the transforms update

`train.engine: auto` takes the first row, in this order, that supports the run, and the run's
log says which ran and why the ones before it did not. A fast path is optional: where it has
no kernel, the reference engine runs. Every engine offers the trainer the same interface:

    advance(epoch0, perms, epochs)   train epochs epoch0 + 1 ... epoch0 + epochs; perms is
                                     [epochs, R, n] (None for full batch)
    weights()                        the parameters as a torch tensor [R, ...]
    train_stats()                    mean training loss and error [R] and the full-batch data
                                     gradient [R, ...]
    test_stats()                     mean test loss and error [R]
    diverged()                       per run, the epoch whose loss first became non-finite, or −1
    stop(mask)                       stop advancing the runs where mask is true (diverged)
    checkpoint() / restore(saved)    its whole state, to resume a killed job where it stopped
"""

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from ..data import DATA_MODELS
from ..errors import ConfigError
from ..models import NETWORKS
from ..optim import OPTIMIZERS


@dataclass(frozen=True)
class Engine:
    name: str
    doc: str
    implementation: str  # "module:Class", imported when a run trains
    supports: Callable[..., str | None]  # run → why it cannot train the run, or None
    # run → why `auto` passes it over although it could train the run, or None
    passed_over: Callable[..., str | None] = lambda run: None

    def load(self) -> type:
        module, _, cls = self.implementation.partition(":")
        return getattr(importlib.import_module(module), cls)


def _fast(run) -> str | None:
    if run.train.precision != "float32":
        return "it computes in full precision"
    if run.train.device != "cpu":
        return "it runs on the CPU"
    if run.model.name != "two_layer_cnn":
        return f"it has no kernels for the network '{run.model.name}'"
    if not DATA_MODELS[run.data.kind].sparse(run.data):
        return f"the '{run.data.kind}' inputs are not sparse"
    if OPTIMIZERS[run.optimizer["name"]].fused is None:
        return f"it has no fused kernel for the optimizer '{run.optimizer['name']}'"
    return None


def _batched(run) -> str | None:
    if run.model.name != "two_layer_cnn":
        return f"it has no program for the network '{run.model.name}'"
    if run.train.precision != "float32":
        return "it computes in full precision"
    return None


def _batched_off_gpu(run) -> str | None:
    if run.train.device == "cpu":
        return "on the CPU auto takes the fast or the reference engine (ask for it by name)"
    return None


def _module(run) -> str | None:
    if not NETWORKS[run.model.name].module:
        return f"'{run.model.name}' is not a torch-module network"
    return None


def _reference(run) -> str | None:
    if NETWORKS[run.model.name].module:
        return f"'{run.model.name}' is a torch module with state (the module engine trains it)"
    if run.train.precision != "float32":
        return "it computes in full precision (train.precision: float32)"
    return None


ENGINES: dict[str, Engine] = {
    "fast": Engine("fast", "structured-sparse numba kernels with fused optimizer updates (CPU)",
                   "adamgen.engines.fast:FastEngine", _fast),
    "batched": Engine("batched", "the two-layer CNN as batched products over the run axis, "
                      "one compiled step of fused kernels (the CUDA engine; any device)",
                      "adamgen.engines.batched:BatchedEngine", _batched, _batched_off_gpu),
    "reference": Engine("reference", "torch, dense, any device: the definition of every number",
                        "adamgen.engines.reference:ReferenceEngine", _reference),
    "module": Engine("module", "torch-module image networks, one module per run, any device, "
                     "optional bf16 autocast", "adamgen.engines.module:ModuleEngine", _module),
}


def choose(run) -> tuple[Engine, str]:
    """The engine for a run, and one line saying why (for the run's log)."""
    requested = run.train.engine
    if requested != "auto":
        return ENGINES[requested], "asked for"
    skipped = []
    for engine in ENGINES.values():
        reason = engine.supports(run) or engine.passed_over(run)
        if reason is None:
            why = "; ".join(skipped)
            return engine, f"auto: {why}" if why else "auto"
        skipped.append(f"not {engine.name}: {reason}")
    raise ConfigError("train.engine", "no engine can train this run: " + "; ".join(skipped),
                      requested)

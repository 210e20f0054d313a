"""The torch engine's program for an outside optimizer (adamgen.optim.external): a
`torch.optim.Optimizer` of another package, one instance per run.

The network's loss and gradient are computed for every run of the group at once, as the
dense program computes them (`DenseLockstep`: the network's own torch code, batched over the
run axis); then each run's optimizer is given that run's gradient on that run's own
parameters — the network's parameter groups (the CNN's filter banks W₊₁ and W₋₁, each m × d),
never the lockstep stack — and steps with a closure. The closure returns the loss already
computed the first time it is called, and computes it again, for that run alone, each time
after (LBFGS and other line-search optimizers call it several times a step). An optimizer
with train()/eval() modes (schedule-free) steps in train mode and is switched to eval for
every probe and the final weights, and back.
"""

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch import Tensor

from ..errors import AdamgenError
from ..optim import external
from .dense_program import DenseLockstep


class OptimizerError(AdamgenError):
    """An outside optimizer's step raised: the run's job ends with one line naming it."""


class ExternalLockstep(DenseLockstep):
    name = "torch"

    def __init__(self, run, datasets: list, data_index: np.ndarray, W0: Tensor, hyper: dict):
        self._data(run, datasets, data_index, W0)
        self.mode, self.path = "off", run.optimizer["name"]
        cls = external.load(self.path)
        self.params, self.optimizers = [], []
        for W, settings in zip(W0, hyper["settings"], strict=True):
            groups = [torch.nn.Parameter(g.clone().contiguous())
                      for g in self.net.parameter_groups(W)]
            self.params.append(groups)
            optimizer = cls(groups, **external.kwargs(settings))
            if callable(getattr(optimizer, "train", None)):
                optimizer.train()  # schedule-free: steps in train mode
            self.optimizers.append(optimizer)
        self.steps = 0
        self._start(len(W0), W0.device)

    def _stack(self) -> Tensor:
        with torch.no_grad():
            return torch.stack([self.net.from_parameter_groups([p.detach() for p in groups])
                                for groups in self.params])

    @contextmanager
    def _evaluating(self) -> Iterator[None]:
        """Optimizers with train()/eval() modes in eval mode (their evaluation weights)."""
        modal = [o for o in self.optimizers if callable(getattr(o, "eval", None))
                 and callable(getattr(o, "train", None))]
        for o in modal:
            o.eval()
        try:
            yield
        finally:
            for o in modal:
                o.train()

    @property
    def W(self) -> Tensor:  # what the probes read (train_stats, test_stats)
        with self._evaluating():
            return self._stack()

    def weights(self) -> Tensor:
        return self.W

    def _closure(self, r: int, X: Tensor, y: Tensor, loss: Tensor):
        """Run r's closure: the loss computed with the group (its gradient already set) the
        first time, then the loss and gradient of run r alone at its parameters now."""
        first = [True]
        groups = self.params[r]

        def closure() -> Tensor:
            if first[0]:
                first[0] = False
                return loss
            with torch.no_grad():
                W = self.net.from_parameter_groups([p.detach() for p in groups])[None]
                value, grad = self.net.loss_and_grad(W, X[r:r + 1], y[r:r + 1], self.model)
            for p, g in zip(groups, self.net.parameter_groups(grad[0]), strict=True):
                p.grad = g.contiguous()
            return value[0]

        return closure

    def advance(self, epoch0: int, perms: np.ndarray | None, epochs: int) -> None:
        perms = self._perms(perms)
        for e in range(epochs):
            for X, y in self._batches(perms, e):
                with torch.no_grad():
                    loss, grad = self.net.loss_and_grad(self._stack(), X, y, self.model)
                self.bad |= ~torch.isfinite(loss)
                self.steps += 1
                for r in np.flatnonzero(self.alive & ~self.bad.cpu().numpy()):
                    groups = self.params[r]
                    for p, g in zip(groups, self.net.parameter_groups(grad[r]), strict=True):
                        p.grad = g.contiguous()
                    try:
                        self.optimizers[r].step(self._closure(r, X, y, loss[r]))
                    except Exception as err:  # anyone's code: one line naming it
                        raise OptimizerError(
                            f"optimizer {self.path} raised at step {self.steps} (epoch "
                            f"{epoch0 + e + 1}) of run {r} of its group: "
                            f"{type(err).__name__}: {err}") from None
            self._note_divergence(epoch0 + e + 1)

    def checkpoint(self) -> dict:
        return {"alive": self.alive, "diverged_at": self.diverged_at, "bad": self.bad,
                "steps": self.steps,
                "params": [[p.detach().clone() for p in groups] for groups in self.params],
                "optimizers": [o.state_dict() for o in self.optimizers]}

    def restore(self, saved: dict) -> None:
        self.alive, self.diverged_at = saved["alive"], saved["diverged_at"]
        self.bad, self.steps = saved["bad"], saved["steps"]
        with torch.no_grad():
            for groups, values in zip(self.params, saved["params"], strict=True):
                for p, v in zip(groups, values, strict=True):
                    p.copy_(v)
        for o, state in zip(self.optimizers, saved["optimizers"], strict=True):
            o.load_state_dict(state)

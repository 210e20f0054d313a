"""The reference engine: the network's own torch implementation and the optimizer's
transforms, dense, on any device. It is the readable definition of every number; every other
engine is tested against it.
"""

import numpy as np
import torch
from torch import Tensor

from ..models import network
from ..optim import build_optimizer


class TorchLockstep:
    """What the torch engines share: the weights W and the optimizer state as tensors on the
    device, a per-run flag `bad` (a loss that was not finite) kept on the device so that steps
    never wait on the host, and the epoch at which each run first diverged."""

    W: Tensor
    state: object

    def _start_flags(self) -> None:
        R, device = len(self.W), self.W.device
        self.bad = torch.zeros(R, dtype=torch.bool, device=device)
        self.diverged_at = torch.full((R,), -1, dtype=torch.long, device=device)

    def _note_divergence(self, epoch: int) -> None:
        """At the end of `epoch`: runs flagged bad for the first time diverged then."""
        newly = self.bad & (self.diverged_at < 0)
        self.diverged_at = torch.where(newly, epoch, self.diverged_at)

    def diverged(self) -> np.ndarray:
        return self.diverged_at.cpu().numpy()

    def stop(self, mask: np.ndarray) -> None:
        """Dense lockstep keeps every run in the program; a stopped run's numbers are unused."""

    def checkpoint(self) -> dict:
        return {"W": self.W, "state": self.state, "bad": self.bad,
                "diverged_at": self.diverged_at}

    def restore(self, saved: dict) -> None:
        self.W, self.state, self.bad = saved["W"], saved["state"], saved["bad"]
        self.diverged_at = saved["diverged_at"]


class ReferenceEngine(TorchLockstep):
    name = "reference"

    def __init__(self, run, datasets: list, data_index: np.ndarray, W0: Tensor, hyper: dict):
        device, dtype = W0.device, W0.dtype
        self.net = network(run).impl()
        self.model, self.B = run.model, run.batch_size
        self.x = torch.stack([torch.as_tensor(datasets[u].train.x) for u in data_index])
        self.x = self.x.to(device, dtype)
        self.y = torch.stack([torch.as_tensor(datasets[u].train.y) for u in data_index]).to(device)
        self.tests = []
        for u, ds in enumerate(datasets):
            members = torch.tensor(np.flatnonzero(data_index == u), device=device)
            self.tests.append((members, torch.as_tensor(ds.test.x).to(device, dtype),
                               torch.as_tensor(ds.test.y).to(device)))
        self.W = W0.clone()
        self.optimizer = build_optimizer(run.optimizer["name"], hyper)
        self.state = self.optimizer.init(self.W)
        self.rows = torch.arange(W0.shape[0], device=device)[:, None]
        self._start_flags()

    def advance(self, epoch0: int, perms: np.ndarray | None, epochs: int) -> None:
        if perms is not None:  # one transfer per chunk: the loop never waits on the host
            perms = torch.from_numpy(perms).to(self.W.device)
        for e in range(epochs):
            if perms is None:
                batches = [(self.x, self.y)]
            else:
                batches = ((self.x[self.rows, idx], self.y[self.rows, idx])
                           for idx in perms[e].split(self.B, dim=1))
            for xb, yb in batches:
                loss, grad = self.net.loss_and_grad(self.W, xb, yb, self.model)
                update, self.state = self.optimizer.update(grad, self.state, self.W)
                self.W = self.W + update
                self.bad |= ~torch.isfinite(loss)
            self._note_divergence(epoch0 + e + 1)

    def weights(self) -> Tensor:
        return self.W

    def train_stats(self) -> tuple[Tensor, Tensor, Tensor]:
        loss, error = self.net.evaluate(self.W, self.x, self.y, self.model)
        return loss, error, self.net.loss_and_grad(self.W, self.x, self.y, self.model)[1]

    def test_stats(self) -> tuple[Tensor, Tensor]:
        loss, error = self.W.new_zeros(len(self.W)), self.W.new_zeros(len(self.W))
        for runs, x_test, y_test in self.tests:
            loss[runs], error[runs] = self.net.evaluate(self.W[runs], x_test, y_test, self.model)
        return loss, error


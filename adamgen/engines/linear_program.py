"""The linear engine's program (adamgen.engines.linear): full-batch steps of the two-layer
linear network in numba, from the training set's Λ = XᵀX / n and A = Xᵀy / n.

Each run's parameters are W [d + 1, d] (rows 0..d−1: W_1, row d: w_2), the layout of
`adamgen.models.two_layer_linear`. The updates are those of `adamgen.optim` in the same order
of operations: coupled decay g ← g + λW; Adam m ← β1 m + (1 − β1) g, v ← β2 v + (1 − β2) g²,
W ← W − η (m / (1 − β1^t)) / (√(v / (1 − β2^t)) + ε); momentum b ← μ b + g, W ← W − η b
(gradient descent: μ = 0). The probes evaluate the network's own torch code on the weights.
"""

import math

import numpy as np
import torch
from numba import njit, prange
from torch import Tensor

from ..models import network
from .base import Lockstep
from .fast_program import _launch

ADAM, MOMENTUM = 0, 1


@njit(cache=True, error_model="numpy")
def _step(W, G, S1, S2, lam, A, lr, b1, b2, eps, wd, family, t, v, E):
    """One full-batch step of one run; False if the error E is not finite (diverged)."""
    d = W.shape[1]
    for j in range(d):  # v = W_1ᵀ w_2
        acc = 0.0
        for i in range(d):
            acc += W[i, j] * W[d, i]
        v[j] = acc
    finite = True
    for j in range(d):  # E = Λ v − A
        acc = 0.0
        for k in range(d):
            acc += lam[j, k] * v[k]
        E[j] = acc - A[j]
        if not math.isfinite(E[j]):
            finite = False
    for i in range(d):  # ∂L/∂W_1[i, j] = w_2i E_j;  ∂L/∂w_2i = Σ_j W_1[i, j] E_j
        acc = 0.0
        for j in range(d):
            G[i, j] = W[d, i] * E[j]
            acc += W[i, j] * E[j]
        G[d, i] = acc
    if family == ADAM:
        c1, c2 = 1.0 - b1 ** t, 1.0 - b2 ** t
        for i in range(d + 1):
            for j in range(d):
                g = G[i, j] + wd * W[i, j]
                S1[i, j] = b1 * S1[i, j] + (1.0 - b1) * g
                S2[i, j] = b2 * S2[i, j] + (1.0 - b2) * g * g
                W[i, j] = W[i, j] + -lr * ((S1[i, j] / c1) / (math.sqrt(S2[i, j] / c2) + eps))
    else:
        for i in range(d + 1):
            for j in range(d):
                g = G[i, j] + wd * W[i, j]
                S1[i, j] = b1 * S1[i, j] + g
                W[i, j] = W[i, j] + -lr * S1[i, j]
    return finite


@njit(cache=True, error_model="numpy", parallel=True)
def train_chunk(W, S1, S2, lam, A, data_index, H, family, t0, epochs, alive, diverged_at,
                epoch0):
    """`epochs` full-batch steps of every live run, in parallel over runs (one per thread).
    H[r] = (lr, β1 or μ, β2, ε, λ)."""
    R, rows, d = W.shape
    G = np.empty((R, rows, d))
    v, E = np.empty((R, d)), np.empty((R, d))
    for r in prange(R):
        if not alive[r]:
            continue
        u = data_index[r]
        lr, b1, b2, eps, wd = H[r, 0], H[r, 1], H[r, 2], H[r, 3], H[r, 4]
        for e in range(epochs):
            if not _step(W[r], G[r], S1[r], S2[r], lam[u], A[u], lr, b1, b2, eps, wd, family,
                         t0 + e + 1, v[r], E[r]):
                alive[r] = False
                diverged_at[r] = epoch0 + e + 1
                break


class LinearLockstep(Lockstep):
    name = "linear"
    saved = ("W", "S1", "S2", "t")

    def __init__(self, run, datasets: list, data_index: np.ndarray, W0: Tensor, hyper: dict):
        if W0.dtype != torch.float64:  # the kernels compute in float64
            raise ValueError("the linear engine computes in float64 (train.dtype: float64)")
        self.net, self.model = network(run).impl(), run.model
        self.data_index = np.asarray(data_index, dtype=np.int64)
        xs = [np.asarray(ds.train.x[:, 0], dtype=np.float64) for ds in datasets]
        ys = [np.asarray(ds.train.y, dtype=np.float64) for ds in datasets]
        self.lam = np.stack([x.T @ x / len(x) for x in xs])
        self.A = np.stack([x.T @ y / len(x) for x, y in zip(xs, ys, strict=True)])
        self.train_x = [torch.as_tensor(ds.train.x).double() for ds in datasets]
        self.train_y = [torch.as_tensor(ds.train.y) for ds in datasets]
        self.test = [(torch.as_tensor(ds.test.x).double(), torch.as_tensor(ds.test.y))
                     for ds in datasets]
        self.W = W0.numpy().copy()
        self.S1, self.S2 = np.zeros_like(self.W), np.zeros_like(self.W)
        name = run.optimizer["name"]
        self.family = ADAM if name == "adam" else MOMENTUM  # linear.FAMILIES: gd, momentum
        R = len(self.W)
        self.H = np.zeros((R, 5))
        self.H[:, 0] = hyper["lr"].cpu().numpy()
        if self.family == ADAM:
            self.H[:, 1] = hyper["betas"][0].cpu().numpy()
            self.H[:, 2] = hyper["betas"][1].cpu().numpy()
            self.H[:, 3] = hyper["eps"].cpu().numpy()
        elif "momentum" in hyper:
            self.H[:, 1] = hyper["momentum"].cpu().numpy()
        self.H[:, 4] = hyper["weight_decay"].cpu().numpy()
        self.t = 0
        self._start(R)

    def advance(self, epoch0: int, perms: np.ndarray | None, epochs: int) -> None:
        _launch(train_chunk, self.W, self.S1, self.S2, self.lam, self.A, self.data_index,
                self.H, self.family, self.t, epochs, self.alive, self.diverged_at, epoch0)
        self.t += epochs

    def weights(self) -> Tensor:
        return torch.from_numpy(self.W)

    def _per_set(self, fn) -> list:
        """fn(runs of a data set, that set's index) for each data set, in run order."""
        out = []
        for u in range(len(self.train_x)):
            runs = torch.as_tensor(np.flatnonzero(self.data_index == u))
            if len(runs):
                out.append((runs, fn(runs, u)))
        return out

    def train_stats(self) -> tuple[Tensor, Tensor, Tensor]:
        W = torch.from_numpy(self.W)
        loss, error, grad = W.new_zeros(len(W)), W.new_zeros(len(W)), torch.zeros_like(W)
        for runs, (l_, e_, g_) in self._per_set(lambda runs, u: (
                *self.net.evaluate(W[runs], self.train_x[u], self.train_y[u], self.model),
                self.net.loss_and_grad(W[runs], self.train_x[u], self.train_y[u],
                                       self.model)[1])):
            loss[runs], error[runs], grad[runs] = l_, e_, g_
        return loss, error, grad

    def test_stats(self) -> tuple[Tensor, Tensor]:
        W = torch.from_numpy(self.W)
        loss, error = W.new_zeros(len(W)), W.new_zeros(len(W))
        for runs, (l_, e_) in self._per_set(lambda runs, u: self.net.evaluate(
                W[runs], *self.test[u], self.model)):
            loss[runs], error[runs] = l_, e_
        return loss, error

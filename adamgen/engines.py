"""Training engines: how R runs in lockstep are advanced and evaluated.

    ReferenceEngine  adamgen.model + adamgen.optim in torch, dense, on any device: the
                     readable definition of every number.
    FastEngine       adamgen.fast on the CPU: the structured-sparse forward and backward pass
                     and fused optimizer updates (numba); parity-tested against the reference.

Both offer the same interface to the trainer:

    advance(epoch0, perms, epochs)   train epochs epoch0 + 1 ... epoch0 + epochs; perms is
                                     [epochs, R, n] (None for full batch)
    weights()                        W as a torch tensor [R, 2, m, d]
    train_stats()                    mean training loss and error [R] and the full-batch data
                                     gradient [R, 2, m, d]
    test_stats()                     mean test loss and error [R]
    diverged()                       per run, the epoch whose loss first became non-finite, or −1
    stop(mask)                       stop advancing the runs where mask is true (diverged)
"""

import numba
import numpy as np
import torch
from torch import Tensor

from .config import ModelConfig
from .data import PatchData
from .model import evaluate, loss_and_grad, mean_loss_and_error
from .optim import OPTIMIZERS, build_optimizer
from .structure import PatchCSR, is_structured, to_csr


class ReferenceEngine:
    name = "reference"

    def __init__(self, datasets: list[PatchData], data_index: np.ndarray, W0: Tensor,
                 optimizer: str, hyper: dict, model: ModelConfig, batch_size: int):
        device, dtype = W0.device, W0.dtype
        self.model, self.B = model, batch_size
        self.x = torch.stack([torch.as_tensor(datasets[u].train.x) for u in data_index])
        self.x = self.x.to(device, dtype)
        self.y = torch.stack([torch.as_tensor(datasets[u].train.y) for u in data_index]).to(device)
        self.tests = []
        for u, ds in enumerate(datasets):
            members = torch.tensor(np.flatnonzero(data_index == u), device=device)
            self.tests.append((members, torch.as_tensor(ds.test.x).to(device, dtype),
                               torch.as_tensor(ds.test.y).to(device)))
        self.W = W0.clone()
        self.optimizer = build_optimizer(optimizer, hyper)
        self.state = self.optimizer.init(self.W)
        R = W0.shape[0]
        self.rows = torch.arange(R, device=device)[:, None]
        self.bad = torch.zeros(R, dtype=torch.bool, device=device)
        self.diverged_at = torch.full((R,), -1, dtype=torch.long, device=device)

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
                loss, grad = loss_and_grad(self.W, xb, yb, self.model)
                update, self.state = self.optimizer.update(grad, self.state, self.W)
                self.W = self.W + update
                self.bad |= ~torch.isfinite(loss)
            newly = self.bad & (self.diverged_at < 0)
            self.diverged_at = torch.where(newly, epoch0 + e + 1, self.diverged_at)

    def weights(self) -> Tensor:
        return self.W

    def train_stats(self) -> tuple[Tensor, Tensor, Tensor]:
        loss, error = evaluate(self.W, self.x, self.y, self.model)
        return loss, error, loss_and_grad(self.W, self.x, self.y, self.model)[1]

    def test_stats(self) -> tuple[Tensor, Tensor]:
        loss, error = self.W.new_zeros(len(self.W)), self.W.new_zeros(len(self.W))
        for runs, x_test, y_test in self.tests:
            loss[runs], error[runs] = evaluate(self.W[runs], x_test, y_test, self.model)
        return loss, error

    def diverged(self) -> np.ndarray:
        return self.diverged_at.cpu().numpy()

    def stop(self, mask: np.ndarray) -> None:
        """Dense lockstep keeps every run in the program; a stopped run's numbers are unused."""


def _stack_csr(parts: list[PatchCSR], dtype) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Several data sets' CSR arrays as one: ptr [D, rows + 1] with absolute offsets."""
    offsets = np.cumsum([0] + [len(c.idx) for c in parts[:-1]])
    ptr = np.stack([c.ptr + o for c, o in zip(parts, offsets, strict=True)])
    idx = np.concatenate([c.idx for c in parts])
    val = np.concatenate([c.val for c in parts]).astype(dtype)
    return ptr, idx, val


def to_fast_layout(W: np.ndarray) -> np.ndarray:
    """[R, 2, m, d] → [R, d, 2m]."""
    R, _, m, d = W.shape
    return np.ascontiguousarray(W.reshape(R, 2 * m, d).transpose(0, 2, 1))


def to_reference_layout(Wt: np.ndarray, m: int) -> np.ndarray:
    """[R, d, 2m] → [R, 2, m, d]."""
    R, d, _ = Wt.shape
    return np.ascontiguousarray(Wt.transpose(0, 2, 1)).reshape(R, 2, m, d)


class FastEngine:
    name = "fast"

    def __init__(self, datasets: list[PatchData], data_index: np.ndarray, W0: Tensor,
                 optimizer: str, hyper: dict, model: ModelConfig, batch_size: int):
        from . import fast  # numba compiles on first use; import it only when asked for

        self.k = fast
        self.dtype = W0.numpy().dtype
        self.model, self.B, self.m = model, batch_size, model.m
        self.data_index = np.asarray(data_index, dtype=np.int64)
        self.train = _stack_csr([to_csr(ds.train.x) for ds in datasets], self.dtype)
        self.test = _stack_csr([to_csr(ds.test.x) for ds in datasets], self.dtype)
        self.labels = np.stack([ds.train.y for ds in datasets]).astype(np.int8)
        self.test_labels = [torch.as_tensor(ds.test.y) for ds in datasets]
        self.P, self.n_test = datasets[0].train.x.shape[1], len(datasets[0].test.y)
        self.W = to_fast_layout(W0.numpy())
        self.G = np.zeros(self.W.shape[:1] + (2,) + self.W.shape[1:], self.dtype)
        family, variant = OPTIMIZERS[optimizer].fused
        self.family = fast.FAMILIES[family]
        self.flags = ((fast.COUPLED if OPTIMIZERS[optimizer].coupled else 0)
                      | (fast.AMSGRAD if "amsgrad" in variant else 0)
                      | (fast.POWER if "power" in variant else 0)
                      | (fast.MOMENTUM_BUFFER if "momentum" in variant else 0)
                      | (fast.BIAS_CORRECTION if hyper.get("bias_correction") else 0))
        R = len(self.W)
        self.S = np.zeros((R, fast.STATE_SLOTS[self.family], self.W[0].size), dtype=self.dtype)
        self.H = np.zeros((R, fast.TINY + 1), dtype=self.dtype)
        self.H[:, fast.ONE] = 1
        self.H[:, fast.TINY] = np.finfo(self.dtype).tiny
        for key, column in fast.COLUMNS.items():
            if key in hyper:
                self.H[:, column] = hyper[key].cpu().numpy()
        if "betas" in hyper:
            self.H[:, fast.BETA1] = hyper["betas"][0].cpu().numpy()
            self.H[:, fast.BETA2] = hyper["betas"][1].cpu().numpy()
        self.t = 0
        self.alive = np.ones(R, dtype=np.bool_)
        self.diverged_at = np.full(R, -1, dtype=np.int64)

    def _model_args(self) -> tuple:
        mc = self.model
        K = np.zeros(5, dtype=self.dtype)
        K[[self.k.K_Q, self.k.K_C, self.k.K_H, self.k.K_ONE]] = mc.q, mc.c, mc.h, 1
        return self.P, self.m, K, mc.activation == "huber"

    def advance(self, epoch0: int, perms: np.ndarray | None, epochs: int) -> None:
        full = perms is None
        if full:
            perms = np.zeros((epochs, 1, 1), dtype=np.int64)
        # same numbers either way; the split kernel lets a lone large-batch run use two cores
        few_runs = len(self.W) < numba.get_num_threads()
        split = self.B >= self.k.SPLIT_MIN_BATCH and few_runs
        kernel = self.k.train_chunk_split if split else self.k.train_chunk
        kernel(self.W, self.G, self.S, self.H, self.family, self.flags, self.t, *self.train,
               self.labels, self.data_index, perms, full, self.B, *self._model_args(),
               self.alive, self.diverged_at, epoch0)
        self.t += epochs * (self.labels.shape[1] // self.B)

    def weights(self) -> Tensor:
        return torch.from_numpy(to_reference_layout(self.W, self.m))

    def _logits(self, csr: tuple, n: int) -> Tensor:
        return torch.from_numpy(self.k.logits(self.W, *csr, self.data_index, n,
                                              *self._model_args()))

    def train_stats(self) -> tuple[Tensor, Tensor, Tensor]:
        y = torch.as_tensor(self.labels[self.data_index])
        F = self._logits(self.train, y.shape[1])
        _, G = self.k.full_gradient(self.W, *self.train, self.labels, self.data_index,
                                    *self._model_args())
        grad = torch.from_numpy(to_reference_layout(G, self.m))
        return (*self._means(F, y), grad)

    def test_stats(self) -> tuple[Tensor, Tensor]:
        y = torch.stack([self.test_labels[u] for u in self.data_index])
        return self._means(self._logits(self.test, self.n_test), y)

    @staticmethod
    def _means(F: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """Mean loss and error, summed in float64 as adamgen.model.evaluate does."""
        loss, error = mean_loss_and_error(F, y)
        return (torch.as_tensor(loss / F.shape[1]).to(F.dtype),
                torch.as_tensor(error / F.shape[1]).to(F.dtype))

    def diverged(self) -> np.ndarray:
        return self.diverged_at

    def stop(self, mask: np.ndarray) -> None:
        self.alive &= ~mask


def choose(requested: str, device: torch.device, datasets: list[PatchData]) -> type:
    """The engine class for a run: `auto` takes the fast path where it applies."""
    if requested == "reference":
        return ReferenceEngine
    fits = device.type == "cpu" and all(is_structured(ds.train.x) for ds in datasets)
    if requested == "fast" and device.type != "cpu":
        raise ValueError("train.engine 'fast' runs on the CPU; use 'reference' on CUDA")
    return FastEngine if requested == "fast" or fits else ReferenceEngine

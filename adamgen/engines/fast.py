"""The fast engine: the two-layer CNN on structured-sparse data, with fused updates (numba).

The math is that of `adamgen.models.two_layer_cnn` and `adamgen.optim`; the kernels
(`adamgen.engines.kernels`) touch only the nonzero input coordinates and fuse each optimizer's
update into one pass. tests/test_fast.py checks every optimizer with a kernel against the
reference engine, step for step.
"""

import numba
import numpy as np
import torch
from torch import Tensor

from ..models.losses import loss_and_error_sums
from ..optim import OPTIMIZERS
from .structure import PatchCSR, to_csr


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

    def __init__(self, run, datasets: list, data_index: np.ndarray, W0: Tensor, hyper: dict):
        from . import kernels as fast  # numba compiles on first use: import it only when used

        optimizer = run.optimizer["name"]
        self.k = fast
        self.dtype = W0.numpy().dtype
        self.model, self.B, self.m = run.model, run.batch_size, run.model.m
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
                      | (fast.PADAM if "padam" in variant else 0)
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
        """Mean loss and error, summed as the reference engine sums them (losses.py)."""
        loss, error = loss_and_error_sums(F, y)
        return (torch.as_tensor(loss / F.shape[1]).to(F.dtype),
                torch.as_tensor(error / F.shape[1]).to(F.dtype))

    def diverged(self) -> np.ndarray:
        return self.diverged_at

    def stop(self, mask: np.ndarray) -> None:
        self.alive &= ~mask

    def checkpoint(self) -> dict:
        return {"W": self.W, "G": self.G, "S": self.S, "t": self.t, "alive": self.alive,
                "diverged_at": self.diverged_at}

    def restore(self, saved: dict) -> None:
        for name, value in saved.items():
            setattr(self, name, value)

"""The fast engine's program (adamgen.engines.fast): the two-layer CNN's steps as numba
kernels over the nonzero input coordinates, with fused optimizer updates.

The math is that of `adamgen.models.two_layer_cnn` and `adamgen.optim`; the weights keep the
network's own layout [R, d, 2m], so the kernels read and write them as they are.
"""

import numba
import numpy as np
import torch
from torch import Tensor

from ..models.losses import loss_and_error_sums
from ..optim import OPTIMIZERS
from . import kernels
from .base import Lockstep
from .structure import PatchCSR, to_csr


def _stack_csr(parts: list[PatchCSR], dtype) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Several data sets' CSR arrays as one: ptr [D, rows + 1] with absolute offsets."""
    offsets = np.cumsum([0] + [len(c.idx) for c in parts[:-1]])
    ptr = np.stack([c.ptr + o for c, o in zip(parts, offsets, strict=True)])
    idx = np.concatenate([c.idx for c in parts])
    val = np.concatenate([c.val for c in parts]).astype(dtype)
    return ptr, idx, val


def _launch(kernel, *args):
    """Run a parallel kernel, then give torch back its thread count: numba's OpenMP threading
    layer shares the OpenMP runtime with torch and sets the runtime's thread count to numba's
    at each launch, which would undo `trainer.one_torch_thread` for every torch computation
    after it (the probes)."""
    threads = torch.get_num_threads()
    try:
        return kernel(*args)
    finally:
        torch.set_num_threads(threads)


class FastLockstep(Lockstep):
    name = "fast"
    saved = ("W", "G", "S", "t")

    def __init__(self, run, datasets: list, data_index: np.ndarray, W0: Tensor, hyper: dict,
                 fused: tuple[str, frozenset[str]]):
        """`fused`: the optimizer's kernel family and variant (adamgen.engines.fast.FUSED)."""
        k = kernels
        optimizer = run.optimizer["name"]
        self.dtype = W0.numpy().dtype
        self.model, self.B, self.m = run.model, run.batch_size, run.model.m
        self.data_index = np.asarray(data_index, dtype=np.int64)
        self.train = _stack_csr([to_csr(ds.train.x) for ds in datasets], self.dtype)
        self.test = _stack_csr([to_csr(ds.test.x) for ds in datasets], self.dtype)
        self.labels = np.stack([ds.train.y for ds in datasets]).astype(np.int8)
        self.test_labels = [torch.as_tensor(ds.test.y) for ds in datasets]
        self.P, self.n_test = datasets[0].train.x.shape[1], len(datasets[0].test.y)
        self.W = W0.numpy().copy()  # the kernels update it in place
        self.G = np.zeros(self.W.shape[:1] + (2,) + self.W.shape[1:], self.dtype)
        family, variant = fused
        self.family = k.FAMILIES[family]
        self.flags = ((k.COUPLED if OPTIMIZERS[optimizer].coupled else 0)
                      | (k.AMSGRAD if "amsgrad" in variant else 0)
                      | (k.PADAM if "padam" in variant else 0)
                      | (k.ROOTS if "padam" in variant and self.dtype == np.float32 else 0)
                      | (k.MOMENTUM_BUFFER if "momentum" in variant else 0)
                      | (k.BIAS_CORRECTION if hyper.get("bias_correction") else 0))
        R = len(self.W)
        self.S = np.zeros((R, k.STATE_SLOTS[self.family], self.W[0].size), dtype=self.dtype)
        self.H = np.zeros((R, k.TINY + 1), dtype=self.dtype)
        self.H[:, k.ONE] = 1
        self.H[:, k.TINY] = np.finfo(self.dtype).tiny
        for key, column in k.COLUMNS.items():
            if key in hyper:
                self.H[:, column] = hyper[key].cpu().numpy()
        if "betas" in hyper:
            self.H[:, k.BETA1] = hyper["betas"][0].cpu().numpy()
            self.H[:, k.BETA2] = hyper["betas"][1].cpu().numpy()
        self.t = 0
        self._start(R)

    def _model_args(self) -> tuple:
        mc = self.model
        K = np.zeros(5, dtype=self.dtype)
        K[[kernels.K_Q, kernels.K_C, kernels.K_H, kernels.K_ONE]] = mc.q, mc.c, mc.h, 1
        return self.P, self.m, K, mc.activation == "huber"

    def advance(self, epoch0: int, perms: np.ndarray | None, epochs: int) -> None:
        full = perms is None
        if full:
            perms = np.zeros((epochs, 1, 1), dtype=np.int64)
        # same numbers either way; the split kernel lets a lone large-batch run use two cores
        few_runs = len(self.W) < numba.get_num_threads()
        split = self.B >= kernels.SPLIT_MIN_BATCH and few_runs
        kernel = kernels.train_chunk_split if split else kernels.train_chunk
        _launch(kernel, self.W, self.G, self.S, self.H, self.family, self.flags, self.t,
                *self.train, self.labels, self.data_index, perms, full, self.B,
                *self._model_args(), self.alive, self.diverged_at, epoch0)
        self.t += epochs * (self.labels.shape[1] // self.B)

    def weights(self) -> Tensor:
        return torch.from_numpy(self.W)

    def _logits(self, csr: tuple, n: int) -> Tensor:
        return torch.from_numpy(_launch(kernels.logits, self.W, *csr, self.data_index, n,
                                        *self._model_args()))

    def train_stats(self) -> tuple[Tensor, Tensor, Tensor]:
        y = torch.as_tensor(self.labels[self.data_index])
        F = self._logits(self.train, y.shape[1])
        _, G = _launch(kernels.full_gradient, self.W, *self.train, self.labels,
                       self.data_index, *self._model_args())
        return (*self._means(F, y), torch.from_numpy(G))

    def test_stats(self) -> tuple[Tensor, Tensor]:
        y = torch.stack([self.test_labels[u] for u in self.data_index])
        return self._means(self._logits(self.test, self.n_test), y)

    @staticmethod
    def _means(F: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """Mean loss and error, summed as the network's `evaluate` sums them (losses.py)."""
        loss, error = loss_and_error_sums(F, y)
        return (torch.as_tensor(loss / F.shape[1]).to(F.dtype),
                torch.as_tensor(error / F.shape[1]).to(F.dtype))

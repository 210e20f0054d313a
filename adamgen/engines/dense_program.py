"""The torch engine's program (adamgen.engines.dense): R runs as one dense tensor program.

The network's loss and gradient are its own torch implementation (`loss_and_grad` of its
module in adamgen.models: for the two-layer CNN two batched products per step, Z_r = X_r W_r
and −(c/B) X_rᵀ (ℓ ⊙ σ'(Z_r)) [Tang Lemma A.5]); the update is the optimizer's transforms
(adamgen.optim). Everything between the products is elementwise over [R, ...], so that
compiled it becomes a few fused kernels per step; a step never waits on the host: batch
indices for a whole chunk of epochs are moved to the device once, and divergence is a flag
on the device read at probe points.

Data are stored once per data set on the device and gathered per batch; a full-batch job
gathers each run's inputs once and keeps them. Why dense products and not the fast engine's
sparse gathers on a GPU: a noise patch has K = s + 1 nonzeros of d (101 of 1000 at paper
scale); a gather of the K weight rows of 2m values per (example, patch) moves B·P·K·2m values
per run and step, which exceeds the d·2m weights themselves from B·P ≥ d/K (B ≥ 5 here) and
grows with B, while a batched product reads each run's weights once per step whatever B, with
no scatter (no atomic adds, so the numbers do not depend on scheduling).
"""

import logging

import numpy as np
import torch
from torch import Tensor

from ..models import network
from ..optim import build_optimizer
from ..optim.transforms import tree_map
from .base import Lockstep

log = logging.getLogger("adamgen")
# 'auto' compiles a job of at least this many steps: compiling costs tens of seconds and is
# expected to save of the order of 100 µs of kernel launches a step (an estimate: this
# threshold has not been measured on a GPU yet; benchmarks/bench_gpu.py reports both)
COMPILE_MIN_STEPS = 200_000


def compile_mode(run, device: torch.device) -> str:
    """train.compile resolved: 'auto' compiles on CUDA for jobs of COMPILE_MIN_STEPS steps or
    more and runs eagerly otherwise (and always on the CPU)."""
    mode = run.train.compile
    if mode == "auto":
        steps = run.train.epochs * run.steps_per_epoch
        return "default" if device.type == "cuda" and steps >= COMPILE_MIN_STEPS else "off"
    return mode


class TorchLockstep(Lockstep):
    """A lockstep program whose runs live in torch tensors: the flag `bad` (a loss that was
    not finite) and the divergence epochs stay on the device, so that steps never wait on the
    host."""

    W: Tensor
    saved = ("W", "state", "bad")

    def _start(self, runs: int, device=None) -> None:
        super()._start(runs)
        self.bad = torch.zeros(runs, dtype=torch.bool, device=device)
        self.diverged_at = torch.full((runs,), -1, dtype=torch.long, device=device)

    def _note_divergence(self, epoch: int) -> None:
        """At the end of `epoch`: runs flagged bad for the first time diverged then."""
        newly = self.bad & (self.diverged_at < 0)
        self.diverged_at = torch.where(newly, epoch, self.diverged_at)

    def diverged(self) -> np.ndarray:
        return self.diverged_at.cpu().numpy()


def _counts_as_tensors(state, device):
    """An optimizer state with its step counts (Python ints) as 0-d tensors on the device, so
    that a compiled step sees the same program at every step (no recompilation per count)."""
    def leaf(v):
        if isinstance(v, int) and not isinstance(v, bool):
            return torch.tensor(v, dtype=torch.int64, device=device)
        return v

    return tree_map(leaf, state)


def make_step(net, model, optimizer):
    """One step of R runs: (W, state, bad, X, y) → (W, state, bad), pure torch: the network's
    `loss_and_grad` and the optimizer's update. X [R, N, ...] the batch's inputs; y [R, N]
    its labels; bad [R] the runs whose loss has been non-finite."""

    def step(W: Tensor, state, bad: Tensor, X: Tensor, y: Tensor):
        loss, grad = net.loss_and_grad(W, X, y, model)
        update, state = optimizer.update(grad, state, W)
        return W + update, state, bad | ~torch.isfinite(loss)

    return step


def compiled(step, mode: str):
    """`step` as train.compile asks: 'off' runs it eagerly.

    Every program's step shares one code object (`make_step`'s inner function), and dynamo
    caps the recompilations of a code object (8), after which a fullgraph compile fails: a
    process that builds many programs (the benchmark, the tests) would hit it. So dynamo's
    in-memory caches are dropped before each compile; a job builds one program, and compiled
    graphs stay cached on disk by Inductor.
    """
    if mode == "off":
        return step
    torch._dynamo.reset()
    return torch.compile(step, mode=None if mode == "default" else mode, dynamic=False,
                         fullgraph=True)


class DenseLockstep(TorchLockstep):
    name = "torch"

    def __init__(self, run, datasets: list, data_index: np.ndarray, W0: Tensor, hyper: dict):
        self._data(run, datasets, data_index, W0)
        device = W0.device
        self.W = W0.clone()
        optimizer = build_optimizer(run.optimizer["name"], hyper)
        self.state = _counts_as_tensors(optimizer.init(self.W), device)
        self.mode = compile_mode(run, device)
        log.info("torch engine: train.compile %s -> %s", run.train.compile, self.mode)
        self.step = compiled(make_step(self.net, run.model, optimizer), self.mode)
        self._start(len(W0), device)

    def _data(self, run, datasets: list, data_index: np.ndarray, W0: Tensor) -> None:
        """The network and every data set, once, on the weights' device: [U, n, ...] training
        inputs and labels, each set's runs and its test set; `rows` gathers a batch per run."""
        device, dtype = W0.device, W0.dtype
        self.net, self.model, self.B = network(run).impl(), run.model, run.batch_size
        self.index = torch.as_tensor(data_index, dtype=torch.int64, device=device)
        # every data set once on the device: [U, n, ...] inputs, [U, n] labels
        self.x = torch.stack([torch.as_tensor(ds.train.x) for ds in datasets]).to(device, dtype)
        self.y = torch.stack([torch.as_tensor(ds.train.y) for ds in datasets]).to(device)
        self.sets = []  # (data set, its runs, its test inputs, its test labels)
        for u, ds in enumerate(datasets):
            members = torch.as_tensor(np.flatnonzero(data_index == u), device=device)
            self.sets.append((u, members, torch.as_tensor(ds.test.x).to(device, dtype),
                              torch.as_tensor(ds.test.y).to(device)))
        self.rows = self.index[:, None]
        self._full = None  # full-batch inputs per run, gathered on first use

    def _batches(self, perms: Tensor | None, e: int):
        """The batches of epoch e: (inputs [R, B, ...], labels [R, B]) for each step."""
        if perms is None:
            if self._full is None:
                self._full = (self.x[self.index], self.y[self.index])
            return [self._full]
        return ((self.x[self.rows, idx], self.y[self.rows, idx])
                for idx in perms[e].split(self.B, dim=1))

    def _mark(self) -> None:
        if self.mode == "reduce-overhead":  # a new iteration of the CUDA-graph replay
            torch.compiler.cudagraph_mark_step_begin()

    def _perms(self, perms: np.ndarray | None) -> Tensor | None:
        """A chunk's batch orders on the device: one transfer, from pinned memory so that the
        host does not wait for the device to drain its queue first."""
        if perms is None:
            return None
        perms = torch.from_numpy(perms)
        if self.index.device.type == "cuda":
            perms = perms.pin_memory().to(self.index.device, non_blocking=True)
        return perms

    def advance(self, epoch0: int, perms: np.ndarray | None, epochs: int) -> None:
        perms = self._perms(perms)
        for e in range(epochs):
            for X, y in self._batches(perms, e):
                self._mark()
                self.W, self.state, self.bad = self.step(self.W, self.state, self.bad, X, y)
            self._note_divergence(epoch0 + e + 1)
        if self.mode == "reduce-overhead":  # outputs of a replay are overwritten by the next
            self.W, self.state, self.bad = (self.W.clone(), _clone(self.state),
                                            self.bad.clone())

    def weights(self) -> Tensor:
        return self.W

    def train_stats(self) -> tuple[Tensor, Tensor, Tensor]:
        W = self.W
        loss, error, grad = W.new_zeros(len(W)), W.new_zeros(len(W)), torch.zeros_like(W)
        for u, runs, _, _ in self.sets:
            loss[runs], error[runs] = self.net.evaluate(W[runs], self.x[u], self.y[u],
                                                        self.model)
            grad[runs] = self.net.loss_and_grad(W[runs], self.x[u], self.y[u], self.model)[1]
        return loss, error, grad

    def test_stats(self) -> tuple[Tensor, Tensor]:
        W = self.W
        loss, error = W.new_zeros(len(W)), W.new_zeros(len(W))
        for _, runs, x_test, y_test in self.sets:
            loss[runs], error[runs] = self.net.evaluate(W[runs], x_test, y_test, self.model)
        return loss, error

    def restore(self, saved: dict) -> None:
        super().restore(saved)
        self.state = _counts_as_tensors(self.state, self.W.device)


def _clone(state):
    return tree_map(lambda v: v.clone() if isinstance(v, Tensor) else v, state)

"""The module engine's program (adamgen.engines.module): the torch-module networks
(adamgen.models.image_nets) on images, on any device [docs/science.md §4.3].

Each run's parameters are one row of the flat tensor W [R, P]: the optimizer's transforms
(adamgen.optim) update W exactly as they update the two-layer CNN's filters, so every
optimizer of the registry trains these networks with the one implementation of its math. Each
run has its own module, which holds only its batch-norm statistics.

    loss     mean cross-entropy over the mini-batch, −log softmax(f(x_i))_{y_i}
    error    1[f(x_i)_{y_i} ≤ max_{c ≠ y_i} f(x_i)_c] (ties and non-numbers are errors)
    inputs   bytes scaled to [0, 1]; with the data's `augment`, a random 32×32 crop of the
             image padded by 4 zero pixels and a horizontal flip with probability 1/2, drawn
             per example from the run's own stream; with `normalize`, each channel
             standardised by the training set's mean and standard deviation
    modes    training steps in train mode (batch statistics, running averages updated);
             probes in eval mode (running averages) without augmentation
    precision  `train.precision: bf16` runs forward and backward passes under torch's
             bfloat16 autocast; W, the gradients and the optimizer's state stay float32

Sums over examples are taken on the host in float64 in a fixed order, so a rerun on the same
device gives the same numbers.
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..models.image_nets import FlatModule
from ..optim import build_optimizer
from ..resources import eval_chunk
from ..seeding import generator
from .dense_program import TorchLockstep

PAD = 4  # pixels of zero padding for the random crops


def example_errors(logits: Tensor, y: Tensor) -> Tensor:
    """1[f_y ≤ max_{c ≠ y} f_c]: ties and NaN count as errors."""
    own = logits.gather(1, y[:, None]).squeeze(1)
    others = logits.scatter(1, y[:, None], -torch.inf).amax(dim=1)
    return (~(own > others)).to(torch.float64)


def channel_statistics(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of each channel of images [N, C, H, W] scaled as the
    engine scales them (bytes / 255), in float64, a slice of images at a time."""
    scale = 1 / 255 if x.dtype == np.uint8 else 1.0
    total = np.zeros(x.shape[1])
    squares = np.zeros(x.shape[1])
    for start in range(0, len(x), 4096):
        part = x[start:start + 4096].astype(np.float64) * scale
        total += part.sum(axis=(0, 2, 3))
        squares += (part * part).sum(axis=(0, 2, 3))
    count = len(x) * x.shape[2] * x.shape[3]
    mean = total / count
    return mean, np.sqrt(np.maximum(squares / count - mean**2, 0.0))


class ImageSet:
    """One data set's images on the device, and how they become a network's inputs."""

    def __init__(self, x: np.ndarray, y: np.ndarray, statistics: tuple | None, device, dtype):
        """`statistics`: the training set's channel mean and std to standardise by, or None."""
        self.x = torch.from_numpy(np.ascontiguousarray(x)).to(device)  # bytes stay bytes
        self.y = torch.from_numpy(np.asarray(y, dtype=np.int64)).to(device)
        self.scale = 1 / 255 if x.dtype == np.uint8 else 1.0
        self.dtype = dtype
        self.mean = self.std = None
        if statistics is not None:
            self.mean, self.std = (torch.tensor(a, dtype=dtype, device=device)[None, :, None, None]
                                   for a in statistics)

    def __len__(self) -> int:
        return len(self.y)

    def inputs(self, index: Tensor | slice, crops: tuple | None = None) -> Tensor:
        x = self.x[index].to(self.dtype) * self.scale
        if crops is not None:
            x = crop_and_flip(x, *crops)
        if self.mean is not None:
            x = (x - self.mean) / self.std
        return x


def crop_and_flip(x: Tensor, dy: Tensor, dx: Tensor, flip: Tensor) -> Tensor:
    """Per example: the H×W window at (dy, dx) of the image padded by PAD zeros, mirrored
    left to right where flip is true."""
    b, c, h, w = x.shape
    padded = F.pad(x, (PAD, PAD, PAD, PAD))
    rows = dy[:, None] + torch.arange(h, device=x.device)  # [b, h]
    cols = dx[:, None] + torch.arange(w, device=x.device)  # [b, w]
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    return padded[torch.arange(b, device=x.device)[:, None, None, None],
                  torch.arange(c, device=x.device)[None, :, None, None],
                  rows[:, None, :, None], cols[:, None, None, :]]


class ModuleLockstep(TorchLockstep):
    name = "module"
    saved = ("W", "state", "bad", "buffers", "crops")

    def __init__(self, run, datasets: list, data_index: np.ndarray, W0: Tensor, hyper: dict):
        self.device, self.dtype = W0.device, W0.dtype
        self.B = run.batch_size
        self.data_index = np.asarray(data_index)
        self.nets = [FlatModule(run.model, run.data, self.device, self.dtype)
                     for _ in range(len(W0))]
        # the training set's channel statistics, once per data set, for both of its splits
        stats = [channel_statistics(ds.train.x) if getattr(run.data, "normalize", False)
                 else None for ds in datasets]
        self.train = [ImageSet(ds.train.x, ds.train.y, st, self.device, self.dtype)
                      for ds, st in zip(datasets, stats, strict=True)]
        self.test = [ImageSet(ds.test.x, ds.test.y, st, self.device, self.dtype)
                     for ds, st in zip(datasets, stats, strict=True)]
        self.augment = bool(getattr(run.data, "augment", False))
        self.streams = [generator(datasets[u].seed, "augment") for u in self.data_index]
        self.autocast = run.train.precision == "bf16"
        self.chunk = eval_chunk(run.model.activations_per_example(run.data))
        self.W = W0.clone()
        self.optimizer = build_optimizer(run.optimizer["name"], hyper)
        self.state = self.optimizer.init(self.W)
        self._start(len(W0), self.device)

    def _context(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast)

    def _draw_crops(self, r: int, b: int) -> tuple:
        """Run r's crop offsets and flips for a batch of b images, from its own stream."""
        g = self.streams[r]
        dy, dx = g.integers(0, 2 * PAD + 1, size=(2, b))
        flip = g.integers(0, 2, size=b).astype(bool)
        return tuple(torch.from_numpy(a).to(self.device) for a in (dy, dx, flip))

    def _step_gradient(self, r: int, index: Tensor | slice) -> tuple[Tensor, Tensor]:
        data = self.train[self.data_index[r]]
        b = len(data.y[index])
        crops = self._draw_crops(r, b) if self.augment else None
        x, y = data.inputs(index, crops), data.y[index]
        Wr = self.W[r].detach().requires_grad_(True)
        net = self.nets[r]
        net.module.train()
        with self._context():
            logits = net(Wr, x)
        loss = F.cross_entropy(logits.to(self.dtype), y)
        (grad,) = torch.autograd.grad(loss, Wr)
        return loss.detach(), grad.to(self.dtype)

    def advance(self, epoch0: int, perms: np.ndarray | None, epochs: int) -> None:
        n = len(self.train[0])
        if perms is not None:
            perms = torch.from_numpy(perms).to(self.device)
        for e in range(epochs):
            for start in range(0, n, self.B):
                grad = torch.zeros_like(self.W)
                for r in np.flatnonzero(self.alive):
                    index = slice(None) if perms is None else perms[e, r, start:start + self.B]
                    loss, grad[r] = self._step_gradient(r, index)
                    self.bad[r] |= ~torch.isfinite(loss)
                update, self.state = self.optimizer.update(grad, self.state, self.W)
                self.W = self.W + update
            self._note_divergence(epoch0 + e + 1)

    def _evaluate(self, r: int, data: ImageSet, gradient: bool, examples: int | None = None
                  ) -> tuple[float, float, Tensor | None]:
        """Mean loss and error of run r over a data set (its first `examples`), in eval mode,
        and the gradient of the mean loss where asked."""
        net, N = self.nets[r], len(data) if examples is None else min(examples, len(data))
        net.module.eval()
        Wr = self.W[r].detach().requires_grad_(gradient)
        losses, errors = [], []
        grad = torch.zeros_like(self.W[r]) if gradient else None
        for start in range(0, N, self.chunk):
            index = slice(start, min(start + self.chunk, N))
            with torch.set_grad_enabled(gradient), self._context():
                logits = net(Wr, data.inputs(index)).to(self.dtype)
            y = data.y[index]
            loss = F.cross_entropy(logits, y, reduction="none")
            if gradient:
                grad += torch.autograd.grad(loss.sum(), Wr)[0].to(self.dtype)
            losses.append(loss.detach().to("cpu", torch.float64).numpy())
            errors.append(example_errors(logits.detach(), y).cpu().numpy())
        return (np.concatenate(losses).sum() / N, np.concatenate(errors).sum() / N,
                None if grad is None else grad / N)

    def weights(self) -> Tensor:
        return self.W

    def _per_run(self, sets: list[ImageSet], gradient: bool):
        R = len(self.W)
        loss, error = np.full(R, np.nan), np.full(R, np.nan)
        grad = torch.full_like(self.W, torch.nan)
        for r in np.flatnonzero(self.alive):
            loss[r], error[r], g = self._evaluate(r, sets[self.data_index[r]], gradient)
            if gradient:
                grad[r] = g
        as_w = {"device": self.device, "dtype": self.dtype}
        return torch.as_tensor(loss).to(**as_w), torch.as_tensor(error).to(**as_w), grad

    def train_stats(self) -> tuple[Tensor, Tensor, Tensor]:
        return self._per_run(self.train, gradient=True)

    def test_stats(self) -> tuple[Tensor, Tensor]:
        return self._per_run(self.test, gradient=False)[:2]

    def objective(self, W: Tensor, examples: int) -> Tensor:
        """Σ_r of run r's mean training loss over its first `examples` examples (all: 0) at
        the parameters W [R, P], in eval mode: what the hessian probe differentiates twice."""
        total = W.new_zeros(())
        for r in range(len(W)):
            data = self.train[self.data_index[r]]
            N = len(data) if examples == 0 else min(examples, len(data))
            net = self.nets[r]
            net.module.eval()
            for start in range(0, N, self.chunk):
                index = slice(start, min(start + self.chunk, N))
                logits = net(W[r].to(self.dtype), data.inputs(index)).to(self.dtype)
                total = total + F.cross_entropy(logits, data.y[index], reduction="sum") / N
        return total

    @property
    def buffers(self) -> list[dict]:
        """Each run's module state (its batch-norm statistics)."""
        return [net.module.state_dict() for net in self.nets]

    @buffers.setter
    def buffers(self, saved: list[dict]) -> None:
        for net, state in zip(self.nets, saved, strict=True):
            net.module.load_state_dict(state)

    @property
    def crops(self) -> list[dict]:
        """Each run's augmentation stream."""
        return [g.bit_generator.state for g in self.streams]

    @crops.setter
    def crops(self, saved: list[dict]) -> None:
        for g, state in zip(self.streams, saved, strict=True):
            g.bit_generator.state = state

"""What every data model produces: a training and a test split, plus what the probes read."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..resources import Estimate


@dataclass
class Split:
    """Examples of one split.

    x: [N, P, d] patches (images: [N, C, H, W]); y: [N] labels in {−1, +1} (a data model with
    `classes` > 2: class indices 0 … classes − 1); signal_patch: [N] index of the patch holding
    the signal (None where no patch does); xi: [N, P − 1, d] the noise vectors (kept for the
    training split, which the noise probes read).
    """

    x: np.ndarray
    y: np.ndarray
    signal_patch: np.ndarray | None = None
    xi: np.ndarray | None = None


@dataclass
class Dataset:
    """A data set of one seed; `signal` is the signal vector (the patch model's v, the benign
    model's μ) where the model has one."""

    config: Any
    seed: int
    train: Split
    test: Split
    signal: np.ndarray | None = None

    @property
    def kind(self) -> str:
        return self.config.kind


@dataclass(frozen=True)
class DataModel:
    """One row of the data-model registry (`adamgen.data.DATA_MODELS`).

    config     the frozen dataclass of its keys (`adamgen.settings.key`)
    generate   (config, seed) → Dataset, bit for bit the same for the same arguments
    memory     config → Estimate of a data set's memory, checked before drawing it
    sparse     config → whether its inputs are sparse enough for the fast engine's kernels
    signal     its data sets carry a signal vector and the noise vectors ξ_i (the probes of
               feature learning and noise memorization read them)
    probes     the probe sets recorded by default (adamgen.probes)
    reference  where the model comes from, for the docs
    classes    2: labels ±1 (binary); more: class indices, images [N, C, H, W] for the
               torch-module networks
    stored     its data sets are drawn once per (settings, seed) into a data file; False: the
               training job reads them itself (bundled or external images, nothing to draw)
    sources    config → the external files it reads (None: none), the workflow's inputs
    missing    config → why those files cannot be read (a line naming the path and how to
               get them), or None; an experiment whose data are missing is not planned
    """

    kind: str
    config: type
    generate: Callable[[Any, int], Dataset]
    memory: Callable[[Any], Estimate]
    doc: str
    sparse: Callable[[Any], bool]
    signal: bool
    probes: tuple[str, ...]
    reference: str
    classes: int = 2
    stored: bool = True
    sources: Callable[[Any], list[str]] | None = None
    missing: Callable[[Any], str | None] | None = None


def labels(n: int, balanced: bool, rng: np.random.Generator) -> np.ndarray:
    """Rademacher labels; with `balanced`, exactly n/2 of each in random order."""
    if balanced:
        return rng.permutation(np.repeat(np.array([1, -1], dtype=np.int8), n // 2))
    return rng.choice(np.array([1, -1], dtype=np.int8), size=n)


def random_supports(rng: np.random.Generator, rows: int, width: int, s: int, offset: int,
                    block: int = 1024) -> np.ndarray:
    """[rows, s] sorted coordinates, each row a uniformly random s-subset of
    {offset, ..., offset + width − 1}: the s smallest of `width` i.i.d. uniforms.

    The uniforms are drawn in blocks of rows, the same stream as one big draw (so the same
    numbers), which keeps the peak memory of a 10^4-example set near the size of the result.
    """
    support = np.empty((rows, s), dtype=np.int64)
    for start in range(0, rows, block):
        u = rng.random((min(block, rows - start), width))
        support[start:start + len(u)] = np.sort(np.argpartition(u, s - 1, axis=1)[:, :s], 1)
    return support + offset

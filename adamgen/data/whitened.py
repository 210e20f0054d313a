"""Whitened Gaussian regression: the data of Jiang, Malik & Li's theorem [NeurIPS 2023, §5;
docs/science.md §1.3].

The n training inputs x_i ∈ R^d are Gaussian, then whitened exactly, so that
Λ_xx = (1/n) Σ_i x_i x_iᵀ = I (n ≥ d). Targets are linear and noiseless: y_i = ⟨a, x_i⟩ with
a_j drawn uniformly from [a_min, a_max], so that A = (1/n) Σ_i y_i x_iᵀ = aᵀ has positive Θ(1)
entries, as the theorem assumes. The test inputs are i.i.d. N(0, I) (not whitened). Inputs
have one patch ([N, 1, d]), the layout the networks read.
"""

from dataclasses import dataclass

import numpy as np

from ..resources import Estimate
from ..seeding import generator
from ..settings import at_least, choice, key, positive
from .base import DataModel, Dataset, Split


@dataclass(frozen=True)
class WhitenedConfig:
    """Whitened Gaussian inputs, linear targets [Jiang et al. Assumptions 1-2]."""

    kind: str = key("whitened", "data model (adamgen.data.DATA_MODELS)", choice("whitened"))
    d: int = key(64, "input dimension", at_least(1))
    n: int = key(128, "training examples (at least d, for whitening)", at_least(1))
    a_min: float = key(0.5, "smallest target coefficient a_j", positive)
    a_max: float = key(1.5, "largest target coefficient a_j", positive)
    n_test: int = key(1000, "test examples, x ~ N(0, I)", at_least(1))

    PER_RUN = ("a_min", "a_max")
    patches = 1

    def cross_checks(self):
        if self.n < self.d:
            yield "n", self.n, f"must be >= data.d = {self.d} (the inputs are whitened)"
        if self.a_max < self.a_min:
            yield "a_max", self.a_max, f"must be >= data.a_min = {self.a_min}"

    def label(self) -> str:
        return f"d{self.d}-n{self.n}"

    def example_size(self) -> int:
        return self.d


def _whiten(x: np.ndarray) -> np.ndarray:
    """x (I − its covariance)^(−1/2): (1/n) xᵀx = I exactly (to rounding)."""
    values, vectors = np.linalg.eigh(x.T @ x / len(x))
    return x @ (vectors / np.sqrt(values)) @ vectors.T


def generate(cfg: WhitenedConfig, seed: int) -> Dataset:
    rng = generator(seed, "train_data")
    a = rng.uniform(cfg.a_min, cfg.a_max, size=cfg.d)
    x = _whiten(rng.normal(size=(cfg.n, cfg.d)))
    x_test = generator(seed, "test_data").normal(size=(cfg.n_test, cfg.d))
    return Dataset(config=cfg, seed=seed, train=Split(x=x[:, None], y=x @ a),
                   test=Split(x=x_test[:, None], y=x_test @ a), signal=a)


def memory(cfg: WhitenedConfig) -> Estimate:
    return Estimate({"training inputs": 8.0 * 3 * cfg.n * cfg.d,
                     "test inputs": 8.0 * cfg.n_test * cfg.d})


MODEL = DataModel(
    kind="whitened", config=WhitenedConfig, generate=generate, memory=memory,
    doc="whitened Gaussian inputs with linear targets y = <a, x>, a_j > 0",
    sparse=lambda cfg: False, signal=False, probes=("core",),
    reference="Jiang, Malik & Li (NeurIPS 2023) Assumptions 1-2")

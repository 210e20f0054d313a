"""Signal plus dense Gaussian noise: the data of benign and harmful overfitting
[Cao, Chen, Belkin & Gu, NeurIPS 2022; the talk slides; docs/science.md §1.2].

Each example is x = [y·μ, ξ] with a label y ∈ {−1, +1}:

1. y is Rademacher (balanced training set unless data.balanced is false; i.i.d. test set).
2. The signal patch is y·μ with μ = ‖μ‖ e_1. It is always the first patch: the two-layer CNN
   sums over patches, so its position does not change what the network computes.
3. The noise patch is ξ ~ N(0, σ_p² (I − μμᵀ/‖μ‖²)): a Gaussian vector with its component
   along μ removed, so ξ ⟂ μ (here: ξ's first coordinate is 0).

The signal-to-noise ratio is SNR = ‖μ‖ / (σ_p √d) ≈ ‖μ‖ / ‖ξ‖. A config sets either `snr` or
`mu_norm`; the other is derived (‖μ‖ = SNR · σ_p · √d) and stored with the run. Cao et al.:
gradient descent reaches training loss ≈ 0 either way, and test loss ≈ 0 when n·SNR^q is
large (benign overfitting), Θ(1) when n⁻¹·SNR⁻q is large (harmful overfitting).
"""

import math
from dataclasses import dataclass, replace

import numpy as np

from ..resources import Estimate
from ..seeding import generator
from ..settings import at_least, choice, key, positive
from .base import DataModel, Dataset, Split, labels


@dataclass(frozen=True)
class BenignConfig:
    """Signal y·μ plus noise orthogonal to μ [Cao et al. 2022; slides]."""

    kind: str = key("benign", "data model (adamgen.data.DATA_MODELS)", choice("benign"))
    d: int = key(1000, "dimension of each patch", at_least(2))
    n: int = key(200, "training examples", at_least(1))
    sigma_p: float = key(1.0, "noise scale σ_p: ξ ~ N(0, σ_p² (I − μμᵀ/‖μ‖²))", positive)
    snr: float | None = key(None, "signal-to-noise ratio ‖μ‖ / (σ_p √d); give snr or mu_norm",
                            positive)
    mu_norm: float | None = key(None, "signal strength ‖μ‖ (μ = ‖μ‖ e_1); give snr or mu_norm",
                                positive)
    n_test: int = key(10000, "test examples (i.i.d. Rademacher labels)", at_least(1))
    balanced: bool = key(True, "training set holds n/2 examples of each label")

    PER_RUN = ("sigma_p", "snr", "mu_norm")

    def resolve(self) -> "BenignConfig":
        """Fill whichever of snr and mu_norm was left out; both given must agree."""
        scale = self.sigma_p * math.sqrt(self.d)
        if self.snr is None and self.mu_norm is None:
            return self  # cross_checks names the missing key
        if self.mu_norm is None:
            return replace(self, mu_norm=self.snr * scale)
        if self.snr is None:
            return replace(self, snr=self.mu_norm / scale)
        return self

    def cross_checks(self):
        if self.snr is None and self.mu_norm is None:
            yield "snr", None, "is missing: set data.snr (or data.mu_norm = ‖μ‖)"
        elif not math.isclose(self.mu_norm, self.snr * self.sigma_p * math.sqrt(self.d),
                              rel_tol=1e-9):
            yield "mu_norm", self.mu_norm, (
                f"disagrees with data.snr = {self.snr} (‖μ‖ = snr · σ_p · √d = "
                f"{self.snr * self.sigma_p * math.sqrt(self.d):.6g}); set only one of them")
        if self.d < self.n + 1:
            yield "d", self.d, (
                f"must be >= data.n + 1 = {self.n + 1}: the n noise vectors live in the "
                "(d − 1)-dimensional complement of μ and must be linearly independent there "
                "(the signal-noise decomposition needs it)")
        if self.balanced and self.n % 2:
            yield "n", self.n, "must be even when data.balanced is true"

    def label(self) -> str:
        return f"d{self.d}-n{self.n}"

    @property
    def patches(self) -> int:
        """Two patches: the signal y·μ and the noise ξ."""
        return 2

    def example_size(self) -> int:
        return self.patches * self.d


def signal_vector(cfg: BenignConfig) -> np.ndarray:
    mu = np.zeros(cfg.d)
    mu[0] = cfg.mu_norm
    return mu


def sample_split(cfg: BenignConfig, n: int, balanced: bool, rng: np.random.Generator,
                 keep_noise: bool = True) -> Split:
    """Draw n examples: labels, then the noise, in that order."""
    y = labels(n, balanced, rng)
    x = np.zeros((n, 2, cfg.d))
    x[:, 0, 0] = y * cfg.mu_norm
    x[:, 1, 1:] = rng.normal(0.0, cfg.sigma_p, size=(n, cfg.d - 1))  # (I − μμᵀ/‖μ‖²) g
    return Split(x=x, y=y, signal_patch=np.zeros(n, dtype=np.int8),
                 xi=x[:, 1:].copy() if keep_noise else None)


def generate(cfg: BenignConfig, seed: int) -> Dataset:
    train = sample_split(cfg, cfg.n, cfg.balanced, generator(seed, "train_data"))
    test = sample_split(cfg, cfg.n_test, False, generator(seed, "test_data"), keep_noise=False)
    return Dataset(config=cfg, seed=seed, train=train, test=test, signal=signal_vector(cfg))


def memory(cfg: BenignConfig) -> Estimate:
    return Estimate({
        "training inputs": 8.0 * cfg.n * 2 * cfg.d,
        "noise vectors": 8.0 * cfg.n * cfg.d,
        "test inputs": 8.0 * cfg.n_test * 2 * cfg.d,
        "sampling scratch": 8.0 * cfg.n_test * cfg.d,
    })


MODEL = DataModel(
    kind="benign", config=BenignConfig, generate=generate, memory=memory,
    doc="signal patch y·μ and a dense Gaussian noise patch orthogonal to μ; SNR = ‖μ‖/(σ_p√d)",
    sparse=lambda cfg: False, signal=True, probes=("core", "signal_noise"),
    reference="Cao, Chen, Belkin & Gu (NeurIPS 2022); the talk slides")

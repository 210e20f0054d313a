"""The feature–noise patch model [Zou et al. Def. 3.1; Tang et al. Def. 3.1; docs/science.md §1.1].

Each example is x = [x_1, ..., x_P] with P patches in R^d and a label y ∈ {−1, +1}:

1. y is Rademacher (the training set is balanced, n/2 of each label, unless data.balanced is
   false; the test set is always i.i.d.).
2. The feature is v = e_1.
3. Each noise patch ξ has s coordinates drawn uniformly without replacement from {2..d} (never
   the first), filled with i.i.d. N(0, σ_p²); then feature noise is added: ξ ← ξ − α y v.
4. One patch, uniformly at random, is the signal patch y·v; the other P − 1 are noise patches,
   drawn independently.
"""

from dataclasses import dataclass

import numpy as np

from ..resources import Estimate
from ..seeding import generator
from ..settings import at_least, choice, key, positive
from .base import DataModel, Dataset, Split, labels, random_supports


@dataclass(frozen=True)
class PatchConfig:
    """Feature–noise patch model [Zou Def. 3.1; Tang Def. 3.1]."""

    kind: str = key("patch", "data model (adamgen.data.DATA_MODELS)", choice("patch"))
    d: int = key(1000, "dimension of each patch", at_least(2))
    n: int = key(200, "training examples", at_least(1))
    s: int = key(100, "noise sparsity: Gaussian coordinates of ξ, drawn from {2..d}", at_least(1))
    sigma_p: float = key(0.1, "standard deviation σ_p of ξ's Gaussian coordinates", positive)
    alpha: float = key(0.2, "feature-noise strength α: ξ ← ξ − α y v", at_least(0))
    n_test: int = key(10000, "test examples (i.i.d. Rademacher labels)", at_least(1))
    balanced: bool = key(True, "training set holds n/2 examples of each label")
    patches: int = key(2, "patches P per example: one signal patch, P − 1 noise patches",
                       at_least(2))

    # keys that may differ between runs trained as one tensor program (same array shapes)
    PER_RUN = ("s", "sigma_p", "alpha")

    def cross_checks(self):
        if self.s > self.d - 1:
            yield "s", self.s, f"must be <= data.d - 1 = {self.d - 1}"
        if self.balanced and self.n % 2:
            yield "n", self.n, "must be even when data.balanced is true"

    def label(self) -> str:
        return f"d{self.d}-n{self.n}"

    def example_size(self) -> int:
        """Input values per example (P patches of d)."""
        return self.patches * self.d

    def nonzeros(self) -> int:
        """Nonzero input values per example: the feature patch's one, the noise patch's s and
        its feature noise (what the fast engine's kernels touch)."""
        return self.s + 2


# above this share of nonzero inputs the dense path is faster than the sparse kernels
DENSE_FRACTION = 0.25


def feature_vector(cfg: PatchConfig) -> np.ndarray:
    v = np.zeros(cfg.d)
    v[0] = 1.0
    return v


def sample_split(cfg: PatchConfig, n: int, balanced: bool, rng: np.random.Generator,
                 keep_noise: bool = True, block: int = 1024) -> Split:
    """Draw n examples. The order of draws is fixed: labels, signal positions, supports, values.

    Supports are drawn in blocks of rows (`random_supports`) and the noise is written straight
    into x, which keeps a 10^4-example test set's peak memory near the size of x itself.
    """
    d, P, s = cfg.d, cfg.patches, cfg.s
    y = labels(n, balanced, rng)
    signal_patch = rng.integers(0, P, size=n).astype(np.int8)

    k = n * (P - 1)  # one ξ per noise patch, rows in example order
    support = random_supports(rng, k, d - 1, s, offset=1, block=block)  # s-subsets of {2..d}
    values = rng.normal(0.0, cfg.sigma_p, size=(k, s))

    v = feature_vector(cfg)
    on = np.flatnonzero(v)  # v's coordinates: no (n × d) temporaries for y·v
    x = np.zeros((n, P, d))
    is_signal = np.arange(P)[None, :] == signal_patch[:, None]
    example, patch = np.nonzero(~is_signal)  # the noise rows, example-major as in `support`
    x[np.arange(n)[:, None], signal_patch[:, None], on] = y[:, None] * v[on]
    x[example[:, None], patch[:, None], support] = values
    x[example[:, None], patch[:, None], on] -= cfg.alpha * y[example, None] * v[on]  # ξ − α y v
    xi = x[example, patch].reshape(n, P - 1, d) if keep_noise else None
    return Split(x=x, y=y, signal_patch=signal_patch, xi=xi)


def generate(cfg: PatchConfig, seed: int) -> Dataset:
    """Training and test sets for one seed; same (cfg, seed) → same arrays, bit for bit."""
    train = sample_split(cfg, cfg.n, cfg.balanced, generator(seed, "train_data"))
    test = sample_split(cfg, cfg.n_test, False, generator(seed, "test_data"), keep_noise=False)
    return Dataset(config=cfg, seed=seed, train=train, test=test, signal=feature_vector(cfg))


def memory(cfg: PatchConfig) -> Estimate:
    """A data set in float64, while it is drawn and after."""
    P, d = cfg.patches, cfg.d
    return Estimate({
        "training inputs": 8.0 * cfg.n * P * d,
        "noise vectors": 8.0 * cfg.n * (P - 1) * d,
        "test inputs": 8.0 * cfg.n_test * P * d,
        "sampling scratch": 16.0 * min(1024, (cfg.n + cfg.n_test) * (P - 1)) * d,
    })


MODEL = DataModel(
    kind="patch", config=PatchConfig, generate=generate, memory=memory,
    doc="1-sparse feature patch y·v and an s-sparse Gaussian noise patch with feature noise −αyv",
    sparse=lambda cfg: (1 + (cfg.patches - 1) * (cfg.s + 1)) <= DENSE_FRACTION * cfg.patches
    * cfg.d, signal=True, probes=("core", "feature_noise"),
    reference="Zou et al. (ICLR 2023) Def. 3.1; Tang et al. (2025) Def. 3.1")

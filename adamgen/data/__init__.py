"""Data models: one module and one row each in `DATA_MODELS` (their NetCDF files:
`adamgen.datafile`).

    patch     Zou et al. / Tang et al.: 1-sparse feature patch, sparse noise with feature noise
    benign    Cao et al.: signal y·μ and dense Gaussian noise orthogonal to μ
    whitened  Jiang et al.: whitened Gaussian inputs, linear targets (regression)
    digits        scikit-learn's 8×8 digits, 10 classes (bundled: no download)
    noisy_digits  a digit patch and a sparse Gaussian noise patch, digit < 5 against ≥ 5
    cifar10       CIFAR-10 from a local copy of its python version

A run's `data.kind` picks the row; its keys are that model's config dataclass. To add a data
model, write a module with a config dataclass (`adamgen.settings.key` fields), `generate` and
`memory`, add its `MODEL` here, and test it (tests/test_data.py runs every row).
"""

from ..resources import check_memory
from . import benign, images, patch, whitened
from .base import DataModel, Dataset, Split

DATA_MODELS: dict[str, DataModel] = {m.kind: m for m in (
    patch.MODEL, benign.MODEL, whitened.MODEL, images.DIGITS_MODEL, images.NOISY_DIGITS_MODEL,
    images.CIFAR10_MODEL)}

__all__ = ["DATA_MODELS", "DataModel", "Dataset", "Split", "check_fits", "generate"]


def check_fits(cfg) -> None:
    """Fail before drawing a data set that cannot fit in memory."""
    check_memory(DATA_MODELS[cfg.kind].memory(cfg),
                 f"a '{cfg.kind}' data set with n = {cfg.n} and n_test = {cfg.n_test}",
                 "lower its dimension, data.n or data.n_test")


def generate(cfg, seed: int) -> Dataset:
    """Training and test sets of one seed; same (cfg, seed) → same arrays, bit for bit."""
    check_fits(cfg)
    return DATA_MODELS[cfg.kind].generate(cfg, seed)

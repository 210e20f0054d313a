"""Real images [docs/science.md §1.4]: scikit-learn's bundled 8×8 digits, a noisy-digit
counterpart of the patch model, and CIFAR-10 from a local copy.

    digits        the 1797 digits (10 classes), images [N, 1, 8, 8] in [0, 1]
    noisy_digits  a binary task (digit < 5 against ≥ 5) in the patch model's form: one patch
                  holds the digit (unit norm, in the first 64 of d coordinates), the other an
                  s-sparse Gaussian noise vector on the other coordinates [the talk slides'
                  noisy-MNIST example; the real-image counterpart of E1/E4]
    cifar10       CIFAR-10 read from its python version (cifar-10-batches-py: data_batch_1..5,
                  test_batch, batches.meta), images [N, 3, 32, 32] kept as bytes

The training/test split of the digits is a permutation drawn from the seed's data stream.
"""

import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataFileError
from ..resources import Estimate
from ..seeding import generator
from ..settings import at_least, choice, key, positive
from .base import DataModel, Dataset, Split, random_supports

DIGITS = 1797  # images in scikit-learn's digits
PIXELS = 64  # 8 × 8
PER_SIDE = 896  # digits ≥ 5 (901 are < 5): the most noisy_digits can draw of one label


def _digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled digits: images [1797, 8, 8] scaled to [0, 1], labels [1797]."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.images / 16.0, bunch.target.astype(np.int64)


@dataclass(frozen=True)
class DigitsConfig:
    """scikit-learn's 8×8 digits, 10 classes (a real-image set that runs on a laptop)."""

    kind: str = key("digits", "data model (adamgen.data.DATA_MODELS)", choice("digits"))
    n: int = key(1200, "training images", at_least(1))
    n_test: int = key(597, "test images (n + n_test <= 1797)", at_least(1))
    normalize: bool = key(False, "standardise the pixels with the training set's mean and std")

    PER_RUN = ()

    def cross_checks(self):
        if self.n + self.n_test > DIGITS:
            yield "n_test", self.n_test, f"data.n + data.n_test must be <= {DIGITS}"

    def label(self) -> str:
        return f"n{self.n}"

    def example_size(self) -> int:
        return PIXELS

    def image_shape(self) -> tuple[int, int, int]:
        return 1, 8, 8


def generate_digits(cfg: DigitsConfig, seed: int) -> Dataset:
    images, labels = _digits()
    order = generator(seed, "train_data").permutation(DIGITS)
    train, test = order[:cfg.n], order[cfg.n:cfg.n + cfg.n_test]
    return Dataset(config=cfg, seed=seed, train=Split(x=images[train][:, None], y=labels[train]),
                   test=Split(x=images[test][:, None], y=labels[test]))


@dataclass(frozen=True)
class NoisyDigitsConfig:
    """Digits < 5 against ≥ 5, each a digit patch and an s-sparse noise patch [the slides]."""

    kind: str = key("noisy_digits", "data model (adamgen.data.DATA_MODELS)",
                    choice("noisy_digits"))
    d: int = key(1000, "dimension of each patch (the digit fills the first 64 coordinates)",
                 at_least(PIXELS + 1))
    n: int = key(200, "training examples, n/2 of each label", at_least(2))
    s: int = key(100, "noise sparsity: Gaussian coordinates of ξ, drawn from {65..d}",
                 at_least(1))
    sigma_p: float = key(0.1, "standard deviation σ_p of ξ's Gaussian coordinates", positive)
    n_test: int = key(1000, "test examples (the digits not drawn for training)", at_least(1))

    PER_RUN = ("s", "sigma_p")
    patches = 2

    def cross_checks(self):
        if self.s > self.d - PIXELS:
            yield "s", self.s, f"must be <= data.d - 64 = {self.d - PIXELS}"
        if self.n % 2:
            yield "n", self.n, "must be even (n/2 of each label)"
        if self.n // 2 > PER_SIDE:
            yield "n", self.n, f"must be <= {2 * PER_SIDE} (n/2 digits >= 5 exist)"
        if self.n + self.n_test > DIGITS:
            yield "n_test", self.n_test, f"data.n + data.n_test must be <= {DIGITS}"

    def label(self) -> str:
        return f"d{self.d}-n{self.n}"

    def example_size(self) -> int:
        return self.patches * self.d

    def nonzeros(self) -> int:
        """Nonzero input values per example: the digit's pixels and the noise's s."""
        return PIXELS + self.s


def _noisy_split(cfg: NoisyDigitsConfig, digits: np.ndarray, y: np.ndarray,
                 rng: np.random.Generator, keep_noise: bool) -> Split:
    """Examples whose signal patch holds the digit (unit norm) and whose noise patch holds an
    s-sparse Gaussian vector off the digit's coordinates."""
    n, d, s = len(y), cfg.d, cfg.s
    signal_patch = rng.integers(0, 2, size=n).astype(np.int8)
    support = random_supports(rng, n, d - PIXELS, s, offset=PIXELS)  # off the digit
    values = rng.normal(0.0, cfg.sigma_p, size=(n, s))
    x = np.zeros((n, 2, d))
    rows = np.arange(n)
    flat = digits.reshape(n, PIXELS)
    x[rows, signal_patch, :PIXELS] = flat / np.linalg.norm(flat, axis=1, keepdims=True)
    x[rows[:, None], 1 - signal_patch[:, None], support] = values
    xi = x[rows, 1 - signal_patch][:, None] if keep_noise else None
    return Split(x=x, y=y, signal_patch=signal_patch, xi=xi)


def generate_noisy_digits(cfg: NoisyDigitsConfig, seed: int) -> Dataset:
    images, labels = _digits()
    y_all = np.where(labels < 5, 1, -1).astype(np.int8)
    rng = generator(seed, "train_data")
    order = rng.permutation(DIGITS)
    pos, neg = order[y_all[order] == 1], order[y_all[order] == -1]
    train = rng.permutation(np.concatenate([pos[:cfg.n // 2], neg[:cfg.n // 2]]))
    test_rng = generator(seed, "test_data")
    rest = np.setdiff1d(order, train, assume_unique=True)
    test = test_rng.permutation(rest)[:cfg.n_test]
    tr = _noisy_split(cfg, images[train], y_all[train], rng, keep_noise=True)
    te = _noisy_split(cfg, images[test], y_all[test], test_rng, keep_noise=False)
    # the feature direction v the probes read: the difference of the two classes' mean
    # (unit-norm) training digits, normalised
    digits_train = tr.x[np.arange(cfg.n), tr.signal_patch]
    difference = digits_train[tr.y == 1].mean(0) - digits_train[tr.y == -1].mean(0)
    return Dataset(config=cfg, seed=seed, train=tr, test=te,
                   signal=difference / np.linalg.norm(difference))


@dataclass(frozen=True)
class Cifar10Config:
    """CIFAR-10 from a local copy of its python version [Krizhevsky 2009]."""

    kind: str = key("cifar10", "data model (adamgen.data.DATA_MODELS)", choice("cifar10"))
    path: str = key("data/cifar-10-batches-py", "directory holding data_batch_1..5, test_batch "
                    "and batches.meta (https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz)")
    n: int = key(50000, "training images (the first n of the five batches)", at_least(1))
    n_test: int = key(10000, "test images (the first n_test of test_batch)", at_least(1))
    normalize: bool = key(False, "standardise each channel with the training set's mean and "
                          "std (Tang et al.: none)")
    augment: bool = key(False, "random 32×32 crops of the 4-pixel padded image and horizontal "
                        "flips during training (Zou et al.'s standard augmentation; Tang: none)")

    PER_RUN = ()

    def cross_checks(self):
        if self.n > 50000:
            yield "n", self.n, "must be <= 50000 (the five training batches)"
        if self.n_test > 10000:
            yield "n_test", self.n_test, "must be <= 10000 (test_batch)"

    def label(self) -> str:
        return f"n{self.n}"

    def example_size(self) -> int:
        return 3 * 32 * 32

    def image_shape(self) -> tuple[int, int, int]:
        return 3, 32, 32


CIFAR_FILES = (*(f"data_batch_{k}" for k in range(1, 6)), "test_batch", "batches.meta")
CIFAR_SOURCE = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"


def cifar_sources(cfg: Cifar10Config) -> list[str]:
    return [str(Path(cfg.path) / name) for name in CIFAR_FILES]


def missing_sources(cfg) -> str | None:
    """Why CIFAR-10 cannot be read at `data.path`: a line naming the file and how to get it,
    or None when every file is there. Files that are there are read and checked (a truncated
    or foreign file raises DataFileError naming it), so bad data stop the plan, not a job."""
    for path in map(Path, cifar_sources(cfg)):
        problem = _not_a_file(path)
        if problem == "does not exist":
            return (f"CIFAR-10 not found: '{path}' does not exist; download {CIFAR_SOURCE} "
                    f"and unpack it so that '{Path(cfg.path) / 'data_batch_1'}' exists (or "
                    "set data.path)")
        if problem:
            raise DataFileError(f"CIFAR-10 file '{path}' {problem}")
    x, _, x_test, _ = _read(cfg)
    if len(x) < cfg.n or len(x_test) < cfg.n_test:
        raise DataFileError(f"CIFAR-10 at '{cfg.path}' holds {len(x)} training and "
                            f"{len(x_test)} test images; the config asks for data.n = {cfg.n} "
                            f"and data.n_test = {cfg.n_test}")
    return None


def _not_a_file(path: Path) -> str | None:
    """Why `path` is not a readable regular file, or None if it is one."""
    try:
        path.stat()
    except FileNotFoundError:
        return "does not exist" if not path.is_symlink() else "is a broken symbolic link"
    except OSError as err:  # a loop of symbolic links, no permission
        return f"cannot be read ({err.strerror})"
    if path.is_dir():
        return "is a directory, not a CIFAR-10 batch"
    if not path.is_file():
        return "is not a regular file"
    return None


def _labels(raw, path: str) -> np.ndarray:
    """A batch's labels: one whole number in 0..9 per image."""
    labels = np.asarray(raw)
    if labels.ndim != 1:
        raise DataFileError(f"CIFAR-10 file '{path}' has labels of shape {labels.shape}; "
                            "expected one label per image, a list of N integers")
    if labels.size and labels.dtype.kind not in "iufb":
        raise DataFileError(f"CIFAR-10 file '{path}' has labels that are not numbers "
                            f"(e.g. {labels[0].item()!r}); expected integers 0..9")
    if labels.dtype.kind in "fb":
        fraction = np.flatnonzero(labels != np.round(labels))
        if fraction.size:
            raise DataFileError(f"CIFAR-10 file '{path}' has labels that are not whole numbers "
                                f"(e.g. {labels[fraction[:1]].tolist()}); expected integers "
                                "0..9")
    labels = labels.astype(np.int64)
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise DataFileError(f"CIFAR-10 file '{path}' has labels outside 0..9")
    return labels


def _batch(path: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(path, "rb") as f:
            raw = pickle.load(f, encoding="bytes")
    except FileNotFoundError:
        raise DataFileError(f"CIFAR-10 file '{path}' does not exist; download {CIFAR_SOURCE}") \
            from None
    except (OSError, EOFError, pickle.UnpicklingError, ValueError) as err:
        raise DataFileError(f"CIFAR-10 file '{path}' is not a readable batch (truncated or "
                            f"damaged: {err}); download {CIFAR_SOURCE} again") from None
    try:
        data, labels = np.asarray(raw[b"data"]), _labels(raw[b"labels"], path)
    except (KeyError, TypeError) as err:
        raise DataFileError(f"CIFAR-10 file '{path}' lacks {err} (b'data' and b'labels')") \
            from None
    if len(data) == 0 and len(labels) == 0:  # a batch with no images (a reduced copy)
        data = data.reshape(0, 3 * 32 * 32).astype(np.uint8)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or data.dtype != np.uint8 \
            or len(labels) != len(data):
        raise DataFileError(f"CIFAR-10 file '{path}' holds images of shape {data.shape} "
                            f"({data.dtype}) and {len(labels)} labels; expected [N, 3072] uint8 "
                            "images, one label each")
    return data.reshape(-1, 3, 32, 32), labels  # an empty batch counts towards data.n as 0


def _read(cfg: Cifar10Config) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every file at `data.path`, checked: training and test images [N, 3, 32, 32] and labels.
    Read once per process and path (the files are large and do not change under a run)."""
    root = Path(cfg.path)
    stamp = tuple((p, os.stat(p).st_mtime_ns, os.stat(p).st_size) for p in cifar_sources(cfg))
    if _CACHE.get("stamp") != stamp:
        _meta(cfg)
        parts = [_batch(str(root / f"data_batch_{k}")) for k in range(1, 6)]
        x, y = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
        x_test, y_test = _batch(str(root / "test_batch"))
        _CACHE.clear()
        _CACHE.update(stamp=stamp, arrays=(x, y, x_test, y_test))
    return _CACHE["arrays"]


_CACHE: dict = {}


def generate_cifar10(cfg: Cifar10Config, seed: int) -> Dataset:
    """The images as bytes [N, 3, 32, 32] (the engine scales them a batch at a time)."""
    reason = missing_sources(cfg)
    if reason:
        raise DataFileError(reason)
    x, y, x_test, y_test = _read(cfg)
    return Dataset(config=cfg, seed=seed, train=Split(x=x[:cfg.n], y=y[:cfg.n]),
                   test=Split(x=x_test[:cfg.n_test], y=y_test[:cfg.n_test]))


def _meta(cfg: Cifar10Config) -> list[str]:
    path = Path(cfg.path) / "batches.meta"
    try:
        with open(path, "rb") as f:
            meta = pickle.load(f, encoding="bytes")
        return [name.decode() for name in meta[b"label_names"]]
    except (OSError, EOFError, pickle.UnpicklingError, KeyError, TypeError, AttributeError) as err:
        raise DataFileError(f"CIFAR-10 file '{path}' is not a readable batches.meta ({err})") \
            from None


def write_cifar_like(path: str | Path, n: int, n_test: int, seed: int = 0,
                     noise: float = 60.0) -> Path:
    """A CIFAR-10 look-alike in the python format (cifar-10-batches-py), for tests and
    benchmarks: 10 classes, each a random smooth colour template plus Gaussian pixel noise,
    n training images in five batches and n_test in test_batch. Same arguments, same bytes."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, size=(10, 3, 4, 4))
    templates = coarse.repeat(8, axis=2).repeat(8, axis=3)  # [10, 3, 32, 32]

    def draw(count: int) -> tuple[np.ndarray, list[int]]:
        labels = rng.integers(0, 10, size=count)
        pixels = templates[labels] + rng.normal(0, noise, size=(count, 3, 32, 32))
        return np.clip(pixels, 0, 255).astype(np.uint8).reshape(count, 3072), labels.tolist()

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    sizes = [n // 5 + (k < n % 5) for k in range(5)]
    for k, size in enumerate(sizes, start=1):
        data, labels = draw(size)
        _dump(path / f"data_batch_{k}", {b"batch_label": f"training batch {k} of 5".encode(),
                                          b"labels": labels, b"data": data,
                                          b"filenames": [b"%d.png" % i for i in range(size)]})
    data, labels = draw(n_test)
    _dump(path / "test_batch", {b"batch_label": b"testing batch 1 of 1", b"labels": labels,
                                b"data": data, b"filenames": [b"%d.png" % i
                                                              for i in range(n_test)]})
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse",
             b"ship", b"truck"]
    _dump(path / "batches.meta", {b"num_cases_per_batch": max(sizes), b"label_names": names,
                                  b"num_vis": 3072})
    return path


def _dump(path: Path, obj: dict) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=4)


DIGITS_MODEL = DataModel(
    kind="digits", config=DigitsConfig, generate=generate_digits,
    memory=lambda cfg: Estimate({"images": 8.0 * DIGITS * PIXELS * 3}),
    doc="scikit-learn's 8x8 digits, 10 classes", sparse=lambda cfg: False, signal=False,
    probes=("core",), reference="scikit-learn's load_digits (UCI optical digits)",
    classes=10, stored=False)
NOISY_DIGITS_MODEL = DataModel(
    kind="noisy_digits", config=NoisyDigitsConfig, generate=generate_noisy_digits,
    memory=lambda cfg: Estimate({"inputs": 8.0 * (cfg.n * 3 + cfg.n_test * 2) * cfg.d}),
    doc="a digit patch and an s-sparse Gaussian noise patch; digit < 5 against >= 5",
    sparse=lambda cfg: (PIXELS + cfg.s) <= 0.25 * 2 * cfg.d, signal=True,
    probes=("core", "feature_noise"), reference="the talk slides' noisy-MNIST example, on "
    "scikit-learn's digits")
CIFAR10_MODEL = DataModel(
    kind="cifar10", config=Cifar10Config, generate=generate_cifar10,
    memory=lambda cfg: Estimate({"images": 1.0 * (cfg.n + cfg.n_test) * 3072 * 2}),
    doc="CIFAR-10 from a local copy (cifar-10-batches-py)", sparse=lambda cfg: False,
    signal=False, probes=("core",), reference="Krizhevsky (2009); Zou et al. 2022, Table 1; "
    "Tang et al. App. D.1/D.3", classes=10, stored=False, sources=cifar_sources,
    missing=missing_sources)

"""The feature–noise patch model [SPEC §1.1; Zou Def. 3.1; Tang Def. 3.1], and its NetCDF file.

Each example is x = [x_1, ..., x_P] with P patches in R^d and a label y ∈ {−1, +1}:

1. y is Rademacher (the training set is balanced, n/2 of each label, unless data.balanced is
   false; the test set is always i.i.d.).
2. The feature is v = e_1.
3. Each noise patch ξ has s coordinates drawn uniformly without replacement from {2..d} (never
   the first), filled with i.i.d. N(0, σ_p²); then feature noise is added: ξ ← ξ − α y v.
4. One patch, uniformly at random, is the signal patch y·v; the other P − 1 are noise patches,
   drawn independently.
"""

import json
from dataclasses import dataclass

import numpy as np
import xarray as xr

from . import __version__
from ._io import open_netcdf, write_netcdf, zlib
from .config import DataConfig, RunConfig
from .errors import DataFileError
from .resources import check_memory, data_memory
from .seeding import generator


@dataclass
class Split:
    """Examples of one split. x: [N, P, d]; y: [N] in {−1, +1}; xi: [N, P − 1, d] or None."""

    x: np.ndarray
    y: np.ndarray
    signal_patch: np.ndarray
    xi: np.ndarray | None = None


@dataclass
class PatchData:
    config: DataConfig
    seed: int
    feature: np.ndarray  # v, [d]
    train: Split
    test: Split


def feature_vector(cfg: DataConfig) -> np.ndarray:
    v = np.zeros(cfg.d)
    v[0] = 1.0
    return v


def sample_split(cfg: DataConfig, n: int, balanced: bool, rng: np.random.Generator,
                 keep_noise: bool = True, block: int = 1024) -> Split:
    """Draw n examples. The order of draws is fixed: labels, signal positions, supports, values.

    Supports are drawn in blocks of rows (the same stream as one big draw, so the same numbers)
    and the noise is written straight into x, which keeps a 10^4-example test set's peak memory
    near the size of x itself.
    """
    d, P, s = cfg.d, cfg.patches, cfg.s
    if balanced:
        y = rng.permutation(np.repeat(np.array([1, -1], dtype=np.int8), n // 2))
    else:
        y = rng.choice(np.array([1, -1], dtype=np.int8), size=n)
    signal_patch = rng.integers(0, P, size=n).astype(np.int8)

    k = n * (P - 1)  # one ξ per noise patch, rows in example order
    support = np.empty((k, s), dtype=np.int64)
    for start in range(0, k, block):
        # the s smallest of d − 1 i.i.d. uniforms index a uniformly random s-subset of {2..d}
        u = rng.random((min(block, k - start), d - 1))
        support[start:start + len(u)] = np.sort(np.argpartition(u, s - 1, axis=1)[:, :s], 1) + 1
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


def check_fits(cfg: DataConfig) -> None:
    """Fail before drawing a data set that cannot fit in memory."""
    check_memory(data_memory(cfg), f"a data set with d = {cfg.d}, n = {cfg.n} and n_test = "
                 f"{cfg.n_test}", "lower data.d, data.n or data.n_test")


def generate(cfg: DataConfig, seed: int) -> PatchData:
    """Training and test sets for one seed; same (cfg, seed) → same arrays, bit for bit."""
    check_fits(cfg)
    train = sample_split(cfg, cfg.n, cfg.balanced, generator(seed, "train_data"))
    test = sample_split(cfg, cfg.n_test, False, generator(seed, "test_data"), keep_noise=False)
    return PatchData(config=cfg, seed=seed, feature=feature_vector(cfg), train=train, test=test)


# --- NetCDF ---------------------------------------------------------------------------------

_REQUIRED = ("x", "y", "xi", "signal_patch", "x_test", "y_test", "feature")


def to_xarray(data: PatchData) -> xr.Dataset:
    cfg = data.config
    ds = xr.Dataset(
        {
            "x": (("i", "patch", "k"), data.train.x,
                  {"long_name": "training inputs x_i = [x_i1, ..., x_iP]"}),
            "y": (("i",), data.train.y, {"long_name": "training labels y_i"}),
            "xi": (("i", "noise_patch", "k"), data.train.xi,
                   {"long_name": "noise vectors ξ_i, feature noise −α y_i v included"}),
            "signal_patch": (("i",), data.train.signal_patch,
                             {"long_name": "index of the patch holding y_i v"}),
            "x_test": (("i_test", "patch", "k"), data.test.x, {"long_name": "test inputs"}),
            "y_test": (("i_test",), data.test.y, {"long_name": "test labels"}),
            "signal_patch_test": (("i_test",), data.test.signal_patch,
                                  {"long_name": "index of the test signal patch"}),
            "feature": (("k",), data.feature, {"long_name": "feature vector v"}),
        },
        attrs={
            "title": "adamgen feature-noise patch data (SPEC 1.1)",
            "seed": data.seed,
            **{k: int(v) if isinstance(v, bool) else v for k, v in vars(cfg).items()},
            "data_config": json.dumps(vars(cfg)),
            "adamgen_version": __version__,
        },
    )
    return ds


def save(data: PatchData, path) -> None:
    ds = to_xarray(data)
    encoding = zlib(ds)
    for name in ("x", "xi", "x_test"):
        encoding[name]["chunksizes"] = (min(500, ds.sizes[ds[name].dims[0]]),) + ds[name].shape[1:]
    write_netcdf(ds, path, encoding)


def load(path) -> PatchData:
    ds = open_netcdf(path, "data file", _REQUIRED)
    try:
        cfg = DataConfig(**json.loads(ds.attrs["data_config"]))
        seed = int(ds.attrs["seed"])
    except (KeyError, TypeError, ValueError) as err:
        raise DataFileError(f"data file '{path}' has no valid data_config/seed ({err})") from None
    return PatchData(
        config=cfg,
        seed=seed,
        feature=ds["feature"].values,
        train=Split(ds["x"].values, ds["y"].values, ds["signal_patch"].values, ds["xi"].values),
        test=Split(ds["x_test"].values, ds["y_test"].values, ds["signal_patch_test"].values),
    )


def check_matches(data: PatchData, run: RunConfig, path) -> None:
    """A data file may only feed a run whose data section and seed it was generated from."""
    if data.seed != run.seed:
        raise DataFileError(f"data file '{path}' was generated with seed {data.seed}, "
                            f"but the run has seed {run.seed}")
    for key, value in vars(run.data).items():
        if getattr(data.config, key) != value:
            raise DataFileError(f"data file '{path}' was generated with data.{key} = "
                                f"{getattr(data.config, key)!r}, but the run has {value!r}")

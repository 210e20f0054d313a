"""The convex counterpart of the CNN experiments (Zou Thm 4.2; docs/science.md, E3).

A linear model F(w, x) = ⟨w, vec(x)⟩ on the flattened patches (w ∈ R^{P·d}) with logistic loss
and coupled L2 regularisation,

    L(w) = (1/n) Σ_i log(1 + exp(−y_i F(w, x_i))) + (λ/2)‖w‖²,

is λ-strongly convex, so it has one minimiser w*. Thm 4.2: Adam and GD, started from the same
point, both converge to it, with the same training and test errors. `fit` trains both with the
project's optimizers (`adamgen.optim`, the same code the CNN runs use) on one data set, and
records along the way each one's distance to w* (computed by Newton's method), the distance
between the two iterates, their errors and gradient norms.
"""

from dataclasses import dataclass

import numpy as np
import torch
import xarray as xr

from ._io import CONVENTIONS, history
from ._version import __version__
from .data import Dataset
from .optim import OPTIMIZERS, REQUIRED, build_optimizer, per_run_hyperparameters


@dataclass(frozen=True)
class ConvexSettings:
    weight_decay: float
    steps: int
    optimizers: dict  # name -> hyperparameters (lr, betas, ...), e.g. {"adam": {...}, "gd": {...}}
    init_scale: float = 0.0  # w0 ~ N(0, init_scale² I); 0 starts at the origin
    per_decade: int = 8


def _loss_grad(w: torch.Tensor, X: torch.Tensor, y: torch.Tensor):
    """Mean logistic loss and its gradient (without the L2 term), for w: [R, D]."""
    margins = y * (w @ X.T)  # [R, n]
    loss = torch.nn.functional.softplus(-margins).mean(-1)
    coef = -y * torch.sigmoid(-margins) / X.shape[0]  # dℓ/dF / n
    return loss, coef @ X


def minimiser(X: np.ndarray, y: np.ndarray, weight_decay: float, tol: float = 1e-13) -> np.ndarray:
    """w* of the regularised objective by Newton's method (it converges quadratically)."""
    n, dim = X.shape
    w = np.zeros(dim)
    for _ in range(100):
        m = y * (X @ w)
        s = 1.0 / (1.0 + np.exp(m))  # sigmoid(−m)
        grad = -(X.T @ (y * s)) / n + weight_decay * w
        if np.linalg.norm(grad) < tol:
            break
        h = s * (1.0 - s) / n
        hess = (X.T * h) @ X + weight_decay * np.eye(dim)
        w -= np.linalg.solve(hess, grad)
    return w


def _probe_steps(steps: int, per_decade: int) -> np.ndarray:
    decades = np.log10(steps)
    points = np.unique(np.round(np.logspace(0, decades, int(per_decade * decades) + 1)))
    return np.unique(np.concatenate([[0], points, [steps]])).astype(np.int64)


def fit(data: Dataset, settings: ConvexSettings) -> xr.Dataset:
    """Train every optimizer in `settings` from the same start; return the trajectories."""
    torch_dtype = torch.float64
    X = torch.from_numpy(data.train.x.reshape(len(data.train.y), -1)).to(torch_dtype)
    y = torch.from_numpy(data.train.y).to(torch_dtype)
    Xt = torch.from_numpy(data.test.x.reshape(len(data.test.y), -1)).to(torch_dtype)
    yt = torch.from_numpy(data.test.y).to(torch_dtype)
    lam = settings.weight_decay
    w_star = torch.from_numpy(minimiser(X.numpy(), y.numpy(), lam))

    names = list(settings.optimizers)
    gen = torch.Generator().manual_seed(data.seed)
    w0 = settings.init_scale * torch.randn(X.shape[1], generator=gen, dtype=torch_dtype)
    weights = {name: w0.clone()[None] for name in names}
    transforms, states = {}, {}
    for name in names:
        hyper = {"weight_decay": lam, **settings.optimizers[name]}
        t = build_optimizer(name, per_run_hyperparameters(name, [_with_defaults(name, hyper)],
                                                          w0[None]))
        transforms[name], states[name] = t, t.init(weights[name])

    probe_at = _probe_steps(settings.steps, settings.per_decade)
    rec = {k: np.full((len(probe_at), len(names)), np.nan) for k in
           ("train_loss", "train_error", "test_error", "grad_norm_l2", "distance_to_optimum")}
    distance = np.full(len(probe_at), np.nan)
    k = 0
    for step in range(settings.steps + 1):
        if step == probe_at[k]:
            for a, name in enumerate(names):
                w = weights[name]
                loss, g = _loss_grad(w, X, y)
                rec["train_loss"][k, a] = float(loss[0] + 0.5 * lam * (w * w).sum())
                rec["grad_norm_l2"][k, a] = float((g + lam * w).norm())
                rec["train_error"][k, a] = float((~(y * (w @ X.T) > 0)).double().mean())
                rec["test_error"][k, a] = float((~(yt * (w @ Xt.T) > 0)).double().mean())
                rec["distance_to_optimum"][k, a] = float((w[0] - w_star).norm() / w_star.norm())
            if len(names) == 2:
                distance[k] = float((weights[names[0]] - weights[names[1]]).norm() / w_star.norm())
            k += 1
        if step == settings.steps:
            break
        for name in names:
            _, g = _loss_grad(weights[name], X, y)
            step_, states[name] = transforms[name].update(g, states[name], weights[name])
            weights[name] = weights[name] + step_

    ds = xr.Dataset(
        {name: (("step", "optimizer"), values, {"long_name": LONG_NAMES[name], "units": "1"})
         for name, values in rec.items()},
        coords={"step": ("step", probe_at, {"long_name": "full-batch step", "units": "1"}),
                "optimizer": ("optimizer", names, {"long_name": "optimizer"})},
    )
    ds["distance"] = ("step", distance, {"long_name": LONG_NAMES["distance"], "units": "1"})
    ds["test_error_optimum"] = ((), float((~(yt * (Xt @ w_star) > 0)).double().mean()),
                                {"long_name": "test error of the minimiser w*", "units": "1"})
    ds["weights_final"] = (("optimizer", "k"), np.stack([weights[n][0].numpy() for n in names]),
                           {"long_name": "final weights w", "units": "1"})
    ds.attrs.update({"title": "adamgen convex counterpart (linear logistic model, L2)",
                     "Conventions": CONVENTIONS, "history": history("fitted"),
                     "weight_decay": lam, "steps": settings.steps, "seed": data.seed,
                     "data_n": int(X.shape[0]), "adamgen_version": __version__})
    return ds


LONG_NAMES = {
    "train_loss": "training objective (mean logistic loss plus (lambda/2)|w|^2)",
    "train_error": "training error, ties counted as errors",
    "test_error": "test error, ties counted as errors",
    "grad_norm_l2": "Euclidean norm of the gradient of the training objective",
    "distance_to_optimum": "|w - w*| / |w*|",
    "distance": "|w_a - w_b| / |w*| between the two optimizers' iterates",
}


def _with_defaults(name: str, hyper: dict) -> dict:
    out = dict(OPTIMIZERS[name].defaults) | hyper
    missing = [k for k, v in out.items() if v is REQUIRED]
    if missing:
        raise ValueError(f"convex {name}: missing {', '.join(missing)}")
    return out


def summarize(fits: dict[int, xr.Dataset], name: str, description: str = "") -> xr.Dataset:
    """The fits of every seed along a `seed` axis, with `final_<name>` at the last step."""
    ds = xr.concat([fits[s].drop_vars("weights_final") for s in sorted(fits)],
                   dim=xr.DataArray(sorted(fits), dims="seed", name="seed"))
    for var in ("train_loss", "train_error", "test_error", "grad_norm_l2",
                "distance_to_optimum", "distance"):
        ds[f"final_{var}"] = ds[var].isel(step=-1, drop=True)
    ds["seed"].attrs.update(long_name="seed of the data set", units="1")
    first = fits[min(fits)].attrs
    if "data_n" in first:  # the training set's size, a setting the claims read
        ds = ds.assign_coords(data_n=((), int(first["data_n"]),
                                      {"long_name": "training examples", "units": "1"}))
    ds.attrs = {"title": f"adamgen convex counterpart, experiment {name}", "experiment": name,
                "Conventions": CONVENTIONS, "history": history("summarized"),
                "description": description, "grid_dims": '["optimizer", "seed"]',
                "weight_decay": fits[min(fits)].attrs["weight_decay"],
                "steps": fits[min(fits)].attrs["steps"]}
    return ds

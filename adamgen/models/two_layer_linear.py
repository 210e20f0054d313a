"""Two-layer linear network with one output [Jiang, Malik & Li, NeurIPS 2023, §5;
docs/science.md §2.3], with a leading run axis.

    f(x) = w_2ᵀ W_1 x,   W_1 ∈ R^{d×d},  w_2 ∈ R^d,   L = (1/2n) Σ_i (f(x_i) − y_i)²

The parameters of one run are one tensor W of shape [d + 1, d]: rows 0..d−1 are W_1, row d is
w_2 (entry-wise optimizers need no more). Initialisation, small as the theorem's:
w_2i ~ N(0, d^{−2α}), W_1[i, j] ~ N(0, d^{−4α}). The "error" of this regression network is the
relative squared error Σ (f − y)² / Σ y².

Hessian diagonal, exact for any inputs (for whitened ones it is w_2i² and ‖W_1[i, :]‖²):

    ∂²L/∂W_1[i, j]² = w_2i² · (1/n) Σ_k x_kj²,      ∂²L/∂w_2i² = (1/n) Σ_k (W_1[i, :] x_k)²
"""

import numpy as np
import torch
from torch import Tensor

from ..models.losses import fixed_sum
from ..seeding import generator


def init_weights(run) -> Tensor:
    d, alpha = run.data.d, run.model.alpha
    rng = generator(run.seed, "init")
    W = np.empty((d + 1, d))
    W[:d] = rng.normal(0.0, d ** (-2 * alpha), size=(d, d))
    W[d] = rng.normal(0.0, d ** (-alpha), size=d)
    return torch.from_numpy(W)


def parameter_groups(W: Tensor) -> list[Tensor]:
    """One run's W [d + 1, d] as its two layers: W_1 [d, d] and w_2 [d]."""
    return [W[:-1], W[-1]]


def from_parameter_groups(groups: list[Tensor]) -> Tensor:
    """The inverse of `parameter_groups`: [d + 1, d]."""
    return torch.cat([groups[0], groups[1][None]], dim=0)


def stored_weights(W: Tensor) -> Tensor:
    """W as run files hold it: as it is ([d + 1, d] per run)."""
    return W


def _inputs(x: Tensor) -> Tensor:
    return x[..., 0, :]  # one patch: [R, N, d] or [N, d]


def predictions(W: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
    """f [R, N] and the hidden layer h = W_1 x [R, N, d]."""
    x = _inputs(x)
    W1, w2 = W[:, :-1], W[:, -1]
    h = torch.einsum("nd,rid->rni", x, W1) if x.ndim == 2 else torch.einsum(
        "rnd,rid->rni", x, W1)
    return torch.einsum("rni,ri->rn", h, w2), h


def mean_loss(W: Tensor, x: Tensor, y: Tensor, model) -> Tensor:
    f, _ = predictions(W, x)
    return 0.5 * ((f - y.to(f.dtype)) ** 2).mean(dim=1)


def loss_and_grad(W: Tensor, x: Tensor, y: Tensor, model) -> tuple[Tensor, Tensor]:
    f, h = predictions(W, x)
    residual = f - y.to(f.dtype)  # [R, N]
    inputs = _inputs(x)
    N = f.shape[1]
    spec = "nd" if inputs.ndim == 2 else "rnd"
    grad = torch.empty_like(W)
    # ∂L/∂W_1[i, j] = (1/N) Σ_n r_n w_2i x_nj;  ∂L/∂w_2i = (1/N) Σ_n r_n h_ni
    grad[:, :-1] = torch.einsum(f"rn,ri,{spec}->rid", residual, W[:, -1], inputs) / N
    grad[:, -1] = torch.einsum("rn,rni->ri", residual, h) / N
    return 0.5 * (residual**2).mean(dim=1), grad


def evaluate(W: Tensor, x: Tensor, y: Tensor, model) -> tuple[Tensor, Tensor]:
    """Mean loss and relative squared error [R], summed in a fixed order."""
    f, _ = predictions(W, x)
    residual = f - y.to(f.dtype)
    N = f.shape[1]
    squares = fixed_sum(residual**2)
    target = fixed_sum(y.to(f.dtype).expand_as(f) ** 2)
    as_w = {"device": W.device, "dtype": W.dtype}
    return (torch.as_tensor(0.5 * squares / N).to(**as_w),
            torch.as_tensor(squares / target).to(**as_w))


def hessian_diagonal(W: Tensor, x: Tensor, y: Tensor, model) -> Tensor:
    inputs = _inputs(x)
    _, h = predictions(W, x)
    H = torch.empty_like(W)
    second_moment = (inputs**2).mean(dim=-2)  # (1/N) Σ_n x_nj²: [R, d] or [d]
    H[:, :-1] = W[:, -1, :, None] ** 2 * second_moment[..., None, :]
    H[:, -1] = (h**2).mean(dim=1)
    return H


def layer_values(T: Tensor, run=None) -> list[Tensor]:
    """W_1 ([R, d·d]) and w_2 ([R, d])."""
    return [T[:, :-1].flatten(1), T[:, -1]]

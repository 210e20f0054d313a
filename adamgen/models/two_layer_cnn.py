"""The two-layer CNN [Zou eq. 3.1; Tang Def. 3.2; docs/science.md §2], with a leading run axis.

    F_j(W, x) = c Σ_{r=1..m} Σ_{p=1..P} σ(⟨w_{j,r}, x_p⟩),   j ∈ {+1, −1},   σ(z) = max(0, z)^q

Shapes: W is [R, 2, m, d] (class index 0 is j = +1, index 1 is j = −1); inputs are [R, N, P, d]
(one set per run) or [N, P, d] (shared by every run); labels are [R, N] or [N] in {−1, +1}.

    L_i = −log softmax(F(x_i))_{y_i}                      (two-class cross-entropy)
    ∇_{w_{j,r}} L_i = −ℓ_{j,i} c Σ_p σ'(⟨w_{j,r}, x_{i,p}⟩) x_{i,p},
    ℓ_{j,i} = 1[y_i = j] − softmax_j(F(x_i))              [Tang Lemma A.5]

This is the dense reference path; faster paths must agree with it.
"""

import numpy as np
import torch
from torch import Tensor

from ..seeding import generator
from .losses import class_index, example_losses, loss_and_error_sums


def activation(z: Tensor, model) -> tuple[Tensor, Tensor]:
    """σ(z) and σ'(z).

    relu:  σ(z) = max(0, z)^q
    huber: σ(z) = z^q / (q h^(q−1)) on [0, h] and z − h (1 − 1/q) beyond [slides; Cao et al.]
    """
    q = model.q
    zp = z.clamp(min=0)
    positive = z > 0
    if model.activation == "relu":
        value = zp**q
        slope = torch.where(positive, q * zp ** (q - 1), torch.zeros_like(z))
        return value, slope
    h = model.h
    inner = zp.clamp(max=h)
    value = torch.where(z > h, z - h * (1 - 1 / q), inner**q / (q * h ** (q - 1)))
    slope = torch.where(positive, (inner / h) ** (q - 1), torch.zeros_like(z))
    return value, slope


def curvature(z: Tensor, model) -> Tensor:
    """σ''(z): q(q−1) z^(q−2) for ReLU^q; (q−1)/h · (z/h)^(q−2) on (0, h) for the Huberized
    ReLU, 0 beyond (where it is linear) and for z ≤ 0."""
    q, positive = model.q, z > 0
    zp = z.clamp(min=0)
    if model.activation == "relu":
        second = q * (q - 1) * zp ** (q - 2) if q != 1 else torch.zeros_like(z)
    else:
        h = model.h
        second = torch.where(z < h, (q - 1) / h * (zp.clamp(max=h) / h) ** (q - 2),
                             torch.zeros_like(z))
    return torch.where(positive, second, torch.zeros_like(z))


def hessian_diagonal(W: Tensor, x: Tensor, y: Tensor, model,
                     elements: int = 1 << 22) -> Tensor:
    """Diagonal of the Hessian of the mean data loss with respect to W: [R, 2, m, d], exact.

        ∂²L/∂w_{j,r,k}² = (1/N) Σ_i [ −ℓ_{j,i} c Σ_p σ''(z_{ijrp}) x_{ipk}²
                                       + s_{+1,i} s_{−1,i} c² (Σ_p σ'(z_{ijrp}) x_{ipk})² ]

    with z_{ijrp} = ⟨w_{j,r}, x_{i,p}⟩, s the softmax of F and ℓ_{j,i} = 1[y_i = j] − s_{j,i}
    (the two-class loss's second derivative in F_j is s_{+1} s_{−1}). Examples are taken in
    chunks, so that the per-example sums Σ_p σ' x hold at most `elements` values.
    """
    R, _, m, d = W.shape
    N = x.shape[-3]
    shared = x.ndim == 3
    chunk = max(1, elements // (R * 2 * m * d))
    total = torch.zeros_like(W)
    for start in range(0, N, chunk):
        xs, ys = x[..., start:start + chunk, :, :], y[..., start:start + chunk]
        z = preactivations(W, xs)
        value, slope = activation(z, model)
        F = model.c * value.sum(dim=(3, 4))
        s = torch.softmax(F, dim=-1)
        ell = torch.nn.functional.one_hot(class_index(ys), 2).to(F.dtype) - s
        first = -model.c * ell[..., None, None] * curvature(z, model)  # [R, n, 2, m, P]
        spec = "npd" if shared else "rnpd"
        total += torch.einsum(f"rnjmp,{spec}->rjmd", first, xs * xs)
        u = torch.einsum(f"rnjmp,{spec}->rnjmd", slope, xs)  # Σ_p σ'(z) x_p
        weight = model.c**2 * s[..., 0] * s[..., 1]  # [R, n]
        total += torch.einsum("rn,rnjmd->rjmd", weight, u * u)
    return total / N


def init_weights(run) -> Tensor:
    """w_{j,r} ~ N(0, σ_0² I_d), from the seed's own stream: [2, m, d] in float64."""
    rng = generator(run.seed, "init")
    w = rng.normal(0.0, run.model.sigma_0, size=(2, run.model.m, run.data.d))
    return torch.from_numpy(w)


def preactivations(W: Tensor, x: Tensor) -> Tensor:
    """z[r, i, j, m, p] = ⟨w_{j,m}, x_{i,p}⟩ for per-run [R, N, P, d] or shared [N, P, d] x."""
    if x.ndim == 3:
        return torch.einsum("npd,rjmd->rnjmp", x, W)
    return torch.einsum("rnpd,rjmd->rnjmp", x, W)


def logits(W: Tensor, x: Tensor, model) -> tuple[Tensor, Tensor]:
    """F [R, N, 2] and σ'(z) [R, N, 2, m, P]."""
    value, slope = activation(preactivations(W, x), model)
    return model.c * value.sum(dim=(3, 4)), slope


def loss_and_grad(W: Tensor, x: Tensor, y: Tensor, model) -> tuple[Tensor, Tensor]:
    """Mean data loss over the batch [R] and its gradient with respect to W [R, 2, m, d]."""
    F, slope = logits(W, x, model)
    onehot = torch.nn.functional.one_hot(class_index(y), 2).to(F.dtype)
    ell = onehot - torch.softmax(F, dim=-1)  # ℓ_{j,i}: [R, N, 2]
    coef = ell[..., None, None] * slope  # [R, N, 2, m, P]
    N = F.shape[1]
    if x.ndim == 3:
        grad = torch.einsum("rnjmp,npd->rjmd", coef, x)
    else:
        grad = torch.einsum("rnjmp,rnpd->rjmd", coef, x)
    return example_losses(F, y).mean(dim=1), grad * (-model.c / N)


def mean_loss(W: Tensor, x: Tensor, y: Tensor, model) -> Tensor:
    """Mean data loss [R], differentiable by autograd (for Hessian-vector products)."""
    F, _ = logits(W, x, model)
    return example_losses(F, y).mean(dim=1)


def layer_values(T: Tensor, run=None) -> list[Tensor]:
    """A tensor shaped like W split into the network's layers (NETWORKS row `layers`): the
    filters of class j = +1 and of j = −1, each [R, m·d]."""
    return [T[:, 0].flatten(1), T[:, 1].flatten(1)]


def evaluate(W: Tensor, x: Tensor, y: Tensor, model,
             chunk: int = 2048) -> tuple[Tensor, Tensor]:
    """Mean loss and error [R] over a (possibly large, shared or per-run) set, in chunks.

    Sums accumulate in float64 in a fixed order (`fixed_sum`), so a float32 mean of large but
    finite losses stays finite and the bits do not depend on the thread count.
    """
    total_loss = np.zeros(W.shape[0])
    total_err = np.zeros(W.shape[0])
    N = x.shape[-3]
    for start in range(0, N, chunk):
        xs, ys = x[..., start:start + chunk, :, :], y[..., start:start + chunk]
        F, _ = logits(W, xs, model)
        loss, err = loss_and_error_sums(F, ys)
        total_loss += loss
        total_err += err
    as_w = {"device": W.device, "dtype": W.dtype}
    return torch.as_tensor(total_loss / N).to(**as_w), torch.as_tensor(total_err / N).to(**as_w)

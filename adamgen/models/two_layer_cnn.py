"""The two-layer CNN [Zou eq. 3.1; Tang Def. 3.2; docs/science.md §2], with a leading run axis:
the one torch implementation of its maths. The torch engine trains on it (eagerly, or compiled
on CUDA), the curvature probes differentiate it, the naive benchmark checks against it, and
the numba kernels of the fast engine are tested against it.

    F_j(W, x) = c Σ_{r=1..m} Σ_{p=1..P} σ(⟨w_{j,r}, x_p⟩),   j ∈ {+1, −1},   σ(z) = max(0, z)^q

Layout: run r's filters are one matrix W_r [d, 2m], column q = j·m + r' holding w_{j,r'}
(class index j: 0 ↔ +1, 1 ↔ −1), so that a batch's pre-activations are one product
Z_r = X_r W_r [N·P, 2m] and its gradient −(c/N) X_rᵀ (ℓ ⊙ σ'(Z_r)) another [Tang Lemma A.5].
W is [R, d, 2m]; inputs are [R, N, P, d] (one set per run) or [N, P, d] (shared by every run);
labels are [R, N] or [N] in {−1, +1}. Run files and the papers write the filters w_{j,r} as
[2, m, d]: `to_filters` and `from_filters` are the one converter between the two.

    L_i = −log softmax(F(x_i))_{y_i}                      (two-class cross-entropy)
    ∇_{w_{j,r}} L_i = −ℓ_{j,i} c Σ_p σ'(⟨w_{j,r}, x_{i,p}⟩) x_{i,p},
    ℓ_{j,i} = 1[y_i = j] − softmax_j(F(x_i))              [Tang Lemma A.5]
"""

import numpy as np
import torch
from torch import Tensor

from ..resources import eval_chunk
from ..seeding import generator
from .losses import class_index, example_losses, loss_and_error_sums


def to_filters(W: Tensor) -> Tensor:
    """[R, d, 2m] → the filters w_{j,r} as [R, 2, m, d]."""
    R, d, Q = W.shape
    return W.transpose(1, 2).reshape(R, 2, Q // 2, d)


def parameter_groups(W: Tensor) -> list[Tensor]:
    """One run's W [d, 2m] as the papers' two filter banks W₊₁ and W₋₁, each [m, d] (what an
    outside optimizer is given: one tensor per layer, never the lockstep stack)."""
    m = W.shape[-1] // 2
    return [W[:, :m].T, W[:, m:].T]


def from_parameter_groups(groups: list[Tensor]) -> Tensor:
    """The inverse of `parameter_groups`: [d, 2m]."""
    return torch.cat([g.T for g in groups], dim=-1)


def stored_weights(W: Tensor) -> Tensor:
    """W as run files hold it (the network row's weight_dims j, r, k): the filters."""
    return to_filters(W)


def from_filters(filters: Tensor) -> Tensor:
    """[R, 2, m, d] → [R, d, 2m] (contiguous)."""
    R, _, m, d = filters.shape
    return filters.reshape(R, 2 * m, d).transpose(1, 2).contiguous()


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


def init_weights(run) -> Tensor:
    """w_{j,r} ~ N(0, σ_0² I_d), from the seed's own stream (drawn as [2, m, d]): [d, 2m] in
    float64."""
    rng = generator(run.seed, "init")
    w = rng.normal(0.0, run.model.sigma_0, size=(2, run.model.m, run.data.d))
    return from_filters(torch.from_numpy(w)[None])[0]


def _rows(x: Tensor) -> Tensor:
    """Inputs as rows of patches: [R, N·P, d] or shared [N·P, d]."""
    return x.reshape(*x.shape[:-3], -1, x.shape[-1])


def preactivations(W: Tensor, x: Tensor) -> Tensor:
    """Z[r, i, p, q] = ⟨w_q, x_{i,p}⟩: [R, N, P, 2m] (one matrix product per run)."""
    N, P = x.shape[-3:-1]
    return torch.matmul(_rows(x), W).reshape(W.shape[0], N, P, W.shape[-1])


def logits(W: Tensor, x: Tensor, model) -> tuple[Tensor, Tensor]:
    """F [R, N, 2] and σ'(z) [R, N, P, 2m]."""
    value, slope = activation(preactivations(W, x), model)
    R, N, P, Q = value.shape
    return model.c * value.reshape(R, N, P, 2, Q // 2).sum(dim=(2, 4)), slope


def loss_and_grad(W: Tensor, x: Tensor, y: Tensor, model) -> tuple[Tensor, Tensor]:
    """Mean data loss over the batch [R] and its gradient with respect to W [R, d, 2m]."""
    F, slope = logits(W, x, model)
    R, N, P, Q = slope.shape
    ell = torch.nn.functional.one_hot(class_index(y), 2).to(F.dtype) - torch.softmax(F, -1)
    ell = ell.expand(R, N, 2)  # ℓ_{j,i}
    coef = (ell[:, :, None, :, None] * slope.reshape(R, N, P, 2, Q // 2)).reshape(R, N * P, Q)
    grad = torch.matmul(_rows(x).transpose(-1, -2), coef)
    return example_losses(F, y).mean(dim=1), grad * (-model.c / N)


def mean_loss(W: Tensor, x: Tensor, y: Tensor, model) -> Tensor:
    """Mean data loss [R], differentiable by autograd (for Hessian-vector products)."""
    F, _ = logits(W, x, model)
    return example_losses(F, y).mean(dim=1)


def hessian_diagonal(W: Tensor, x: Tensor, y: Tensor, model,
                     elements: int = 1 << 22) -> Tensor:
    """Diagonal of the Hessian of the mean data loss with respect to W: [R, d, 2m], exact.

        ∂²L/∂W[k, q]² = (1/N) Σ_i [ −ℓ_{j(q),i} c Σ_p σ''(z_{ipq}) x_{ipk}²
                                    + s_{+1,i} s_{−1,i} c² (Σ_p σ'(z_{ipq}) x_{ipk})² ]

    with z_{ipq} = ⟨w_q, x_{i,p}⟩, s the softmax of F and ℓ_{j,i} = 1[y_i = j] − s_{j,i}
    (the two-class loss's second derivative in F_j is s_{+1} s_{−1}). Examples are taken in
    chunks, so that the per-example sums Σ_p σ' x hold at most `elements` values.
    """
    R, d, Q = W.shape
    N = x.shape[-3]
    spec = "npd" if x.ndim == 3 else "rnpd"
    chunk = max(1, elements // (R * Q * d))
    total = torch.zeros_like(W)
    for start in range(0, N, chunk):
        xs, ys = x[..., start:start + chunk, :, :], y[..., start:start + chunk]
        z = preactivations(W, xs)  # [R, n, P, Q]
        value, slope = activation(z, model)
        n, P = z.shape[1:3]
        F = model.c * value.reshape(R, n, P, 2, Q // 2).sum(dim=(2, 4))
        s = torch.softmax(F, dim=-1)
        ell = torch.nn.functional.one_hot(class_index(ys), 2).to(F.dtype) - s
        ell_q = ell.expand(R, n, 2).repeat_interleave(Q // 2, dim=-1)  # [R, n, Q]
        first = -model.c * ell_q[:, :, None, :] * curvature(z, model)  # [R, n, P, Q]
        total += torch.einsum(f"rnpq,{spec}->rdq", first, xs * xs)
        u = torch.einsum(f"rnpq,{spec}->rndq", slope, xs)  # Σ_p σ'(z) x_p
        weight = model.c**2 * s[..., 0] * s[..., 1]  # [R, n]
        total += torch.einsum("rn,rndq->rdq", weight, u * u)
    return total / N


def layer_values(T: Tensor, run=None) -> list[Tensor]:
    """A tensor shaped like W split into the network's layers (NETWORKS row `layers`): the
    filters of class j = +1 and of j = −1, each [R, d·m]."""
    m = T.shape[-1] // 2
    return [T[..., :m].flatten(1), T[..., m:].flatten(1)]


def evaluate(W: Tensor, x: Tensor, y: Tensor, model,
             chunk: int | None = None) -> tuple[Tensor, Tensor]:
    """Mean loss and error [R] over a (possibly large, shared or per-run) set, in chunks.

    Sums accumulate in float64 in a fixed order (`fixed_sum`), so a float32 mean of large but
    finite losses stays finite and the bits do not depend on the thread count.
    """
    total_loss = np.zeros(W.shape[0])
    total_err = np.zeros(W.shape[0])
    N, P = x.shape[-3:-1]
    chunk = chunk or eval_chunk(W.shape[-1] * P)
    for start in range(0, N, chunk):
        xs, ys = x[..., start:start + chunk, :, :], y[..., start:start + chunk]
        F, _ = logits(W, xs, model)
        loss, err = loss_and_error_sums(F, ys)
        total_loss += loss
        total_err += err
    as_w = {"device": W.device, "dtype": W.dtype}
    return torch.as_tensor(total_loss / N).to(**as_w), torch.as_tensor(total_err / N).to(**as_w)

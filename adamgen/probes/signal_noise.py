"""The signal-noise decomposition of the two-layer CNN's filters [Cao, Chen, Belkin & Gu,
NeurIPS 2022; the talk slides; docs/science.md §5]:

    w_{j,r}(t) = w_{j,r}(0) + j·γ_{j,r}·μ/‖μ‖² + Σ_i ρ_{j,r,i}·ξ_i/‖ξ_i‖²

Gradient descent without weight decay keeps w_{j,r}(t) − w_{j,r}(0) in span{μ, ξ_1, ..., ξ_n},
so the coefficients exist and are unique (the vectors are linearly independent when d > n);
coupled weight decay adds a multiple of w(0) and leaves the span. Cao et al. split ρ into
its positive part ρ̄ (memorization of an example's own noise, j = y_i) and its negative part ρ̲
(j = −y_i). Here the coefficients are those of the least-squares projection of w(t) − w(0) on
that span, which is the decomposition itself for GD; for optimizers that leave the span (Adam,
sign descent) `decomposition_residual` says how much of the change the span does not hold.

    signal_learning[j, r]   γ_{j,r}
    rho[j, r, i]            ρ_{j,r,i}                                  (optional)
    rho_pos_min/max[j]      min/max over i with y_i = j of max_r ρ̄_{j,r,i}
    rho_neg_min/max[j]      min/max over i with y_i = −j of min_r ρ̲_{j,r,i}
    decomposition_residual  ‖Δ − projection of Δ‖_F / ‖Δ‖_F over all filters, Δ = W − W(0)

μ is the data's signal vector (the patch model's v works the same way).
"""

from dataclasses import dataclass

import torch
from torch import Tensor

from ..models.losses import J_SIGN
from ..models.two_layer_cnn import to_filters
from .feature_noise import class_summaries, per_run_data


@dataclass
class State:
    W0: Tensor  # [R, 2, m, d]
    y: Tensor  # [R, n]
    coefficients: Tensor  # [R, 1 + n, d]: c = coefficients @ Δ gives (j·γ, ρ_1, ..., ρ_n)
    basis: Tensor  # [R, 1 + n, d]: μ/‖μ‖², ξ_i/‖ξ_i‖²
    full: bool


def _projector(signal: Tensor, xi: Tensor) -> tuple[Tensor, Tensor]:
    """Basis B (rows μ/‖μ‖², ξ_i/‖ξ_i‖²) and the map (B Bᵀ)⁻¹ B, in float64."""
    vectors = torch.cat([signal[None], xi.reshape(-1, xi.shape[-1])]).double()
    basis = vectors / (vectors * vectors).sum(dim=1, keepdim=True)
    gram = basis @ basis.T
    return basis, torch.linalg.solve(gram, basis)


def prepare(run, datasets, data_index, W0) -> State:
    per_data = [_projector(torch.as_tensor(ds.signal), torch.as_tensor(ds.train.xi))
                for ds in datasets]
    return State(
        W0=to_filters(W0).clone(),
        y=per_run_data(datasets, data_index, lambda d: d.train.y, W0, torch.int8),
        basis=torch.stack([per_data[u][0] for u in data_index]).to(W0.device),
        coefficients=torch.stack([per_data[u][1] for u in data_index]).to(W0.device),
        full=run.probes.noise_memorization_full)


def record(state: State, W: Tensor, stats) -> dict:
    delta = (to_filters(W) - state.W0).double()  # [R, 2, m, d]
    c = torch.einsum("rkd,rjmd->rjmk", state.coefficients, delta)  # [R, 2, m, 1 + n]
    sign = c.new_tensor(J_SIGN)[None, :, None]
    rho = c[..., 1:]  # [R, 2, m, n]
    out = {"signal_learning": c[..., 0] * sign}
    pos = rho.clamp(min=0).amax(dim=2)  # max_r ρ̄: [R, 2, n]
    neg = rho.clamp(max=0).amin(dim=2)  # min_r ρ̲
    own = pos.gather(1, (state.y < 0).long()[:, None, :]).squeeze(1)  # j = y_i: [R, n]
    other = neg.gather(1, (state.y > 0).long()[:, None, :]).squeeze(1)  # j = −y_i
    out["rho_pos_min"], out["rho_pos_max"] = class_summaries(own, state.y)
    out["rho_neg_min"], out["rho_neg_max"] = class_summaries(other, state.y, label_sign=-1)
    fitted = torch.einsum("rjmk,rkd->rjmd", c, state.basis)
    size = delta.pow(2).sum(dim=(1, 2, 3)).sqrt()
    residual = (delta - fitted).pow(2).sum(dim=(1, 2, 3)).sqrt()
    out["decomposition_residual"] = torch.where(size > 0, residual / size.clamp(min=1e-300), 0)
    if state.full:
        out["rho"] = rho
    return {k: v.to(W.dtype) if k != "decomposition_residual" else v for k, v in out.items()}

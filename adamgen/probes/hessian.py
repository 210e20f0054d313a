"""Curvature: the diagonal of the training objective's Hessian and its uniformity
[Jiang, Malik & Li, NeurIPS 2023, eq. 1; docs/science.md §5].

    R_med = max_i |H_ii| / median_i |H_ii|        over the parameters of one layer

A smaller R_med means a more uniform diagonal. Jiang et al. add 0.001 · max_i |H_ii| to the
denominator on random data, where the median can vanish (`rmed_damped`). The layers are the
network's parameter groups (the two-layer CNN's: the filters of class j = +1 and of j = −1).

The diagonal is the network's exact one where its module has `hessian_diagonal` and
`probes.hessian_probes` is 0; otherwise Hutchinson's estimate diag(H) ≈ mean_k v_k ⊙ H v_k over
Rademacher vectors v_k, with H v_k by automatic differentiation (any torch model; the image
networks' loss in eval mode, over the first `probes.hessian_examples` training examples). Where
the weight decay is coupled, the objective's (λ/2)‖W‖² adds λ to every diagonal entry. An image
network's layers are its weight tensors (convolutions and linear maps; biases and batch-norm
scales enter the diagonal but no layer).
"""

from dataclasses import dataclass

import torch
from torch import Tensor

from ..models import network
from ..seeding import generator
from . import QUANTILES
from .feature_noise import per_run_data

DAMPING = 1e-3  # Jiang et al.'s 0.001 · max |H_ii| on random data


def hutchinson_diagonal(loss, W: Tensor, probes: int, generators: list[torch.Generator]
                        ) -> Tensor:
    """Hutchinson's estimate of the Hessian diagonal of `loss(W)` (a sum over runs of each
    run's loss): mean over `probes` Rademacher vectors v of v ⊙ Hv. Run r draws its vectors
    from generators[r], so its estimate does not depend on the other runs of its group."""
    W = W.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(loss(W), W, create_graph=True)
    total = torch.zeros_like(W)
    for _ in range(probes):
        v = torch.stack([torch.randint(0, 2, W.shape[1:], generator=g, dtype=W.dtype) * 2 - 1
                         for g in generators])
        (hv,) = torch.autograd.grad(grad, W, grad_outputs=v, retain_graph=True)
        total += v * hv
    return (total / probes).detach()


def summaries(diagonal: Tensor, layers: list[Tensor]) -> dict[str, Tensor]:
    """R_med, its damped form and quantiles of |H_ii| per layer: [R, L] and [R, L, Q].

    The median is torch's lower median (of an even count, the smaller middle value)."""
    out = {"rmed": [], "rmed_damped": [], "hessian_diagonal_quantiles": []}
    for layer in layers:  # layers differ in size
        values = layer.abs()  # [R, n]
        top, median = values.amax(dim=-1), values.median(dim=-1).values
        out["rmed"].append(torch.where(median > 0, top / median.clamp(min=1e-300), torch.inf))
        out["rmed_damped"].append(top / (median + DAMPING * top))
        out["hessian_diagonal_quantiles"].append(
            torch.quantile(values, values.new_tensor(QUANTILES), dim=-1).T)
    return {k: torch.stack(v, dim=1) for k, v in out.items()}


@dataclass
class State:
    net: object
    run: object
    x: Tensor | None  # [R, n, ...] training inputs, float64 (None: the engine's objective)
    y: Tensor | None  # [R, n]
    probes: int
    examples: int  # training examples the estimate reads (0: all)
    generators: list


def prepare(run, datasets, data_index, W0) -> State:
    runs_seeds = [datasets[u].seed for u in data_index]
    gens = [torch.Generator().manual_seed(int(generator(s, "hessian").integers(2**62)))
            for s in runs_seeds]
    k = run.probes.hessian_examples or None
    own = not network(run).module  # a torch-module network's loss is its engine's
    return State(
        net=network(run).impl(), run=run,
        x=per_run_data(datasets, data_index, lambda d: d.train.x[:k], W0, torch.float64)
        if own else None,
        y=torch.stack([torch.as_tensor(datasets[u].train.y[:k]) for u in data_index])
        if own else None,
        probes=run.probes.hessian_probes, examples=run.probes.hessian_examples,
        generators=gens)


def diagonal(state: State, W: Tensor, objective=None) -> Tensor:
    """The Hessian diagonal of the mean data loss at W, in float64."""
    W = W.double()
    if state.probes == 0:
        return state.net.hessian_diagonal(W, state.x, state.y, state.run.model)

    def loss(w):
        if state.x is None:
            return objective(w, state.examples)
        return state.net.mean_loss(w, state.x, state.y, state.run.model).sum()

    return hutchinson_diagonal(loss, W, state.probes, state.generators)


def record(state: State, W: Tensor, stats) -> dict:
    H = diagonal(state, W, stats.get("objective"))
    H = H + stats["l2"].double().reshape((-1,) + (1,) * (W.ndim - 1))
    return summaries(H, state.net.layer_values(H, state.run))

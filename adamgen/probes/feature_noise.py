"""Feature learning and noise memorization of the two-layer CNN [Zou Fig. 2; Tang App. D.2;
docs/science.md §5].

    feature_learning[j, r]        = ⟨w_{j,r}, j·v⟩
    noise_memorization[j, r, i]   = ⟨w_{j,r}, ξ_i⟩            (optional, every j, r, i)
    noise_memorization_min[j]     = min_{i: y_i = j} max_r ⟨w_{j,r}, ξ_i⟩
    noise_memorization_max[j]     = max_{i: y_i = j} max_r ⟨w_{j,r}, ξ_i⟩

v is the data's signal vector (the patch model's feature e_1, the benign model's μ). With
P > 2 patches an example has several noise vectors; its memorization is the largest inner
product over them.
"""

from dataclasses import dataclass

import torch
from torch import Tensor

from ..models.losses import J_SIGN, class_index
from ..models.two_layer_cnn import to_filters


@dataclass
class State:
    """What the probes read, for R runs (each with the run axis)."""

    y: Tensor  # [R, n]
    xi: Tensor  # [R, n, P − 1, d]
    signal: Tensor  # [R, d]
    full: bool


def per_run_data(datasets, data_index, field, like: Tensor, dtype=None) -> Tensor:
    """One data array per run, stacked along the run axis, on `like`'s device."""
    return torch.stack([torch.as_tensor(field(datasets[u])) for u in data_index]).to(
        like.device, dtype or like.dtype)


def prepare(run, datasets, data_index, W0) -> State:
    return State(
        y=per_run_data(datasets, data_index, lambda d: d.train.y, W0, torch.int8),
        xi=per_run_data(datasets, data_index, lambda d: d.train.xi, W0),
        signal=per_run_data(datasets, data_index, lambda d: d.signal, W0),
        full=run.probes.noise_memorization_full)


def class_summaries(own: Tensor, y: Tensor, label_sign: int = 1) -> tuple[Tensor, Tensor]:
    """own[r, i] → per class j, the min and max over i with y_i = label_sign·j: [R, 2] each."""
    idx = class_index(y * label_sign)
    lo, hi = [], []
    for j in range(2):
        mine = idx == j
        lo.append(torch.where(mine, own, torch.inf).amin(dim=1))
        hi.append(torch.where(mine, own, -torch.inf).amax(dim=1))
    return torch.stack(lo, dim=1), torch.stack(hi, dim=1)


def record(state: State, W: Tensor, stats) -> dict:
    W = to_filters(W)  # w_{j,r}: [R, 2, m, d]
    R, _, m, _ = W.shape
    sign = W.new_tensor(J_SIGN)[None, :, None]
    out = {"feature_learning": torch.einsum("rjmd,rd->rjm", W, state.signal) * sign}
    inner = torch.einsum("rjmd,riqd->rjmiq", W, state.xi).amax(dim=-1)  # [R, 2, m, n]
    idx = class_index(state.y)[:, None, None, :].expand(R, 1, m, -1)
    own = inner.gather(1, idx).squeeze(1).amax(dim=1)  # max_r ⟨w_{y_i,r}, ξ_i⟩: [R, n]
    out["noise_memorization_min"], out["noise_memorization_max"] = class_summaries(own, state.y)
    if state.full:
        out["noise_memorization"] = inner
    return out

"""What is recorded along a trajectory [SPEC §5; Zou Fig. 2; Tang App. D.2].

    feature_learning[j, r]        = ⟨w_{j,r}, j·v⟩
    noise_memorization[j, r, i]   = ⟨w_{j,r}, ξ_i⟩            (optional, every j, r, i)
    noise_memorization_min[j]     = min_{i: y_i = j} max_r ⟨w_{j,r}, ξ_i⟩
    noise_memorization_max[j]     = max_{i: y_i = j} max_r ⟨w_{j,r}, ξ_i⟩
    train/test loss and error, ‖∇L‖_1, ‖∇L‖_F (gradient of the training objective, with
    (λ/2)‖W‖² when the weight decay is coupled), ‖W‖_F.

With P > 2 patches an example has several noise vectors; its memorization is the largest
inner product over them.
"""

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .model import J_SIGN, class_index, fixed_sum
from .optim.transforms import per_run


@dataclass
class ProbeData:
    """What the feature and noise probes read, for R runs (each with the run axis)."""

    y: Tensor  # [R, n]
    xi: Tensor  # [R, n, P − 1, d]
    feature: Tensor  # [R, d]


# name → (dims after the run axis, long_name, units)
VARIABLES: dict[str, tuple[tuple[str, ...], str, str]] = {
    "feature_learning": (("j", "r"), "feature learning <w_{j,r}, j v>", "1"),
    "noise_memorization": (("j", "r", "i"), "noise memorization <w_{j,r}, xi_i>", "1"),
    "noise_memorization_min": (("j",), "min over i with y_i = j of max_r <w_{j,r}, xi_i>", "1"),
    "noise_memorization_max": (("j",), "max over i with y_i = j of max_r <w_{j,r}, xi_i>", "1"),
    "train_loss": ((), "mean training cross-entropy (without the L2 term)", "nat"),
    "test_loss": ((), "mean test cross-entropy", "nat"),
    "train_error": ((), "training error, ties counted as errors", "1"),
    "test_error": ((), "test error, ties counted as errors", "1"),
    "grad_norm_l1": ((), "l1 norm of the full-batch gradient of the training objective", "1"),
    "grad_norm_l2": ((), "Frobenius norm of the full-batch gradient of the training objective",
                     "1"),
    "weight_norm": ((), "Frobenius norm of W", "1"),
}
OPTIONAL = ("noise_memorization",)  # recorded only when asked for


def _noise_summaries(own: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """own[r, i] = max_r ⟨w_{y_i,r}, ξ_i⟩ → per-class min and max over i: [R, 2] each."""
    idx = class_index(y)
    lo, hi = [], []
    for j in range(2):
        mine = idx == j
        lo.append(torch.where(mine, own, torch.inf).amin(dim=1))
        hi.append(torch.where(mine, own, -torch.inf).amax(dim=1))
    return torch.stack(lo, dim=1), torch.stack(hi, dim=1)


def record(W: Tensor, data: ProbeData, l2: Tensor, train: tuple[Tensor, Tensor, Tensor],
           test: tuple[Tensor, Tensor], full_noise: bool = False) -> dict[str, Tensor]:
    """All probes for R runs at once.

    `train` is the engine's (mean loss, error, full-batch data gradient) on the training set,
    `test` its (mean loss, error) on the test set; `l2` is λ where the decay is coupled, else 0.
    """
    R, _, m, _ = W.shape
    sign = W.new_tensor(J_SIGN)[None, :, None]
    out = {"feature_learning": torch.einsum("rjmd,rd->rjm", W, data.feature) * sign}

    inner = torch.einsum("rjmd,riqd->rjmiq", W, data.xi).amax(dim=-1)  # [R, 2, m, n]
    idx = class_index(data.y)[:, None, None, :].expand(R, 1, m, -1)
    own = inner.gather(1, idx).squeeze(1).amax(dim=1)  # max_r ⟨w_{y_i,r}, ξ_i⟩: [R, n]
    out["noise_memorization_min"], out["noise_memorization_max"] = _noise_summaries(own, data.y)
    if full_noise:
        out["noise_memorization"] = inner

    out["train_loss"], out["train_error"], data_grad = train
    out["test_loss"], out["test_error"] = test
    grad = data_grad + per_run(l2, W) * W

    # norms in float64, summed in a fixed order: the same bits for any thread count
    g64, w64 = grad.double(), W.double()
    out["grad_norm_l1"] = torch.from_numpy(fixed_sum(g64.abs()))
    out["grad_norm_l2"] = torch.from_numpy(np.sqrt(fixed_sum(g64 * g64)))
    out["weight_norm"] = torch.from_numpy(np.sqrt(fixed_sum(w64 * w64)))
    return out

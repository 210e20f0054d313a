"""Losses, errors and norms of any network [docs/science.md §5].

    train/test loss and error     the engine's means over the training and test sets
    ‖∇L‖_1, ‖∇L‖_F                the full-batch gradient of the training objective: the data
                                  gradient plus λW where the weight decay is coupled (L2)
    ‖W‖_F

Norms are summed in float64 in a fixed order (`losses.fixed_sum`): the same bits for any
thread count.
"""

import numpy as np
import torch

from ..models.losses import fixed_sum
from ..optim.transforms import per_run


def prepare(run, datasets, data_index, W0):
    return None


def record(state, W, stats) -> dict:
    out = {}
    out["train_loss"], out["train_error"], data_grad = stats["train"]
    out["test_loss"], out["test_error"] = stats["test"]
    grad = (data_grad + per_run(stats["l2"], W) * W).double()
    w = W.double()
    out["grad_norm_l1"] = torch.from_numpy(fixed_sum(grad.abs()))
    out["grad_norm_l2"] = torch.from_numpy(np.sqrt(fixed_sum(grad * grad)))
    out["weight_norm"] = torch.from_numpy(np.sqrt(fixed_sum(w * w)))
    return out

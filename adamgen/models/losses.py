"""Two-class cross-entropy on logits F = (F_{+1}, F_{−1}) with labels y ∈ {−1, +1}, and sums
whose bits do not depend on the thread count.

    L_i = −log softmax(F(x_i))_{y_i} = logsumexp_j F_j − F_{y_i}
    error_i = 1[F_{y_i} ≤ F_{−y_i}]   (ties are errors)
"""

import numpy as np
import torch
from torch import Tensor

J_SIGN = (1, -1)  # class index → j


def class_index(y: Tensor) -> Tensor:
    """Label ±1 → class index (0 for +1, 1 for −1)."""
    return (y < 0).long()


def example_losses(F: Tensor, y: Tensor) -> Tensor:
    """L_i = logsumexp_j F_j − F_{y_i}: [R, N]."""
    idx = class_index(y).expand(F.shape[:2])
    return torch.logsumexp(F, dim=-1) - F.gather(-1, idx.unsqueeze(-1)).squeeze(-1)


def example_errors(F: Tensor, y: Tensor) -> Tensor:
    """1[F_y ≤ F_{−y}] (ties are errors): [R, N].

    Written as 1 − 1[margin > 0] so that a margin that is not a number (inf − inf after an
    overflow) counts as an error, never as a correct prediction.
    """
    margin = (F[..., 0] - F[..., 1]) * y.to(F.dtype)
    return (~(margin > 0)).to(F.dtype)


def fixed_sum(x: Tensor) -> np.ndarray:
    """Σ over every axis but the first, in float64: [R] on the host.

    NumPy's pairwise summation runs in one thread, in an order fixed by the shape alone, so
    the result does not depend on how many threads torch or numba use (torch splits a large
    sum between threads, which changes its last bits).
    """
    values = x.detach().to("cpu", torch.float64).numpy()
    return values.reshape(values.shape[0], -1).sum(axis=1)


def loss_and_error_sums(F: Tensor, y: Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Sums over examples of the loss and the error [R] (float64, fixed order)."""
    return fixed_sum(example_losses(F, y)), fixed_sum(example_errors(F, y))

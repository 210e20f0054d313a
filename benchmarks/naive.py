"""The loop a researcher would write: an nn.Module, autograd and torch.optim, one run.

This is the baseline that bench_engine.py measures adamgen against. It is deliberately plain.
"""

import torch
from torch import nn
from torch.nn import functional as F


class TwoLayerCNN(nn.Module):
    """F_j(x) = Σ_r Σ_p relu(⟨w_{j,r}, x_p⟩)^q, second layer fixed to 1."""

    def __init__(self, initial_weights: torch.Tensor, q: float):
        super().__init__()
        self.weight = nn.Parameter(initial_weights.clone())  # [2, m, d]
        self.q = q

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [B, P, d] → logits [B, 2]
        z = torch.einsum("bpd,jmd->bjmp", x, self.weight)
        return torch.relu(z).pow(self.q).sum(dim=(2, 3))


def make_optimizer(name: str, params, lr: float, weight_decay: float):
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    return torch.optim.SGD(params, lr=lr, weight_decay=weight_decay)


def train(model: TwoLayerCNN, optimizer, x: torch.Tensor, y: torch.Tensor,
          batches: list[torch.Tensor]) -> None:
    target = (y < 0).long()  # class 0 is j = +1
    for idx in batches:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x[idx]), target[idx])
        loss.backward()
        optimizer.step()

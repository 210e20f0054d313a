"""Networks: one row each in `NETWORKS`; `model.name` in a run config picks the row.

    two_layer_cnn     F_j(W, x) = c Σ_r Σ_p σ(⟨w_{j,r}, x_p⟩) with σ = ReLU^q [Zou eq. 3.1;
                      Tang Def. 3.2; Cao et al.], trained as lockstep tensor programs
    two_layer_linear  f(x) = w_2ᵀ W_1 x, squared loss [Jiang et al. §5]

A row holds the network's config dataclass (its keys, read by validation and `adamgen keys`)
and the module that implements it in torch, imported only when a run trains: reading a
config never imports torch.
"""

import importlib
from dataclasses import dataclass
from types import ModuleType

from ..settings import at_least, choice, key, positive


@dataclass(frozen=True)
class CNNConfig:
    """Two-layer CNN F_j(W, x) = c Σ_r Σ_p σ(⟨w_{j,r}, x_p⟩) [Zou eq. 3.1; Tang Def. 3.2]."""

    name: str = key("two_layer_cnn", "network (adamgen.models.NETWORKS)",
                    choice("two_layer_cnn"))
    q: float = key(3, "activation power: σ(z) = max(0, z)^q", at_least(1))
    m: int = key(20, "neurons per class", at_least(1))
    c: float = key(1.0, "output scale c (1 in Zou/Tang, 1/m in Cao et al.)", positive)
    sigma_0: float = key(0.01, "initialization: w_{j,r} ~ N(0, σ_0² I_d)", at_least(0))
    activation: str = key("relu", "'relu' (ReLU^q) or 'huber' (z^q/(q h^(q−1)) on [0, h], "
                          "linear beyond)", choice("relu", "huber"))
    h: float = key(1.0, "threshold of the Huberized ReLU (activation: huber)", positive)

    PER_RUN = ("sigma_0",)

    def parameters(self, data) -> int:
        """Trainable values: 2 m filters of the data's patch dimension."""
        return 2 * self.m * data.d

    def activations_per_example(self, data) -> int:
        """Pre-activations ⟨w_{j,r}, x_p⟩ of one example."""
        return 2 * self.m * data.patches


@dataclass(frozen=True)
class LinearConfig:
    """Two-layer linear network f(x) = w_2ᵀ W_1 x with one output [Jiang et al. §5]."""

    name: str = key("two_layer_linear", "network (adamgen.models.NETWORKS)",
                    choice("two_layer_linear"))
    alpha: float = key(1.0, "initialisation scale: w_2 ~ N(0, d^(-2 alpha)), W_1 ~ "
                       "N(0, d^(-4 alpha))", positive)

    PER_RUN = ()

    def parameters(self, data) -> int:
        return data.d * (data.d + 1)

    def activations_per_example(self, data) -> int:
        return data.d


@dataclass(frozen=True)
class Network:
    """One row of the network registry.

    implementation  module defining init_weights, logits, loss_and_grad, evaluate (torch)
    data            data models whose inputs it reads (patches [N, P, d], labels ±1)
    layers          names of its parameter groups (the CNN's class j = +1 and j = −1), for
                    per-layer statistics such as R_med
    """

    name: str
    config: type
    doc: str
    implementation: str
    data: tuple[str, ...]
    layers: tuple[str, ...]
    reference: str
    exact_hessian: bool = False  # its module has hessian_diagonal (else: Hutchinson)
    weight_dims: tuple[str, ...] = ("j", "r", "k")  # one run's parameter tensor, in run files

    def impl(self) -> ModuleType:
        return importlib.import_module(self.implementation)


NETWORKS: dict[str, Network] = {
    "two_layer_cnn": Network(
        name="two_layer_cnn", config=CNNConfig,
        doc="two-layer CNN with ReLU^q (or Huberized ReLU) filters, second layer fixed to c",
        implementation="adamgen.models.two_layer_cnn", data=("patch", "benign"),
        layers=("j=+1", "j=-1"), exact_hessian=True,
        reference="Zou et al. (ICLR 2023) eq. 3.1; Tang et al. (2025) Def. 3.2; Cao et al. "
                  "(NeurIPS 2022)"),
    "two_layer_linear": Network(
        name="two_layer_linear", config=LinearConfig,
        doc="two-layer linear network w_2^T W_1 x with one output, squared loss",
        implementation="adamgen.models.two_layer_linear", data=("whitened",),
        layers=("W1", "W2"), exact_hessian=True, weight_dims=("row", "k"),
        reference="Jiang, Malik & Li (NeurIPS 2023) §5"),
}


def network(run) -> Network:
    return NETWORKS[run.model.name]

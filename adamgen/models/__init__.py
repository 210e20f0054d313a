"""Networks: one row each in `NETWORKS`; `model.name` in a run config picks the row.

    two_layer_cnn     F_j(W, x) = c Σ_r Σ_p σ(⟨w_{j,r}, x_p⟩) with σ = ReLU^q [Zou eq. 3.1;
                      Tang Def. 3.2; Cao et al.], trained as lockstep tensor programs
    two_layer_linear  f(x) = w_2ᵀ W_1 x, squared loss [Jiang et al. §5]
    small_cnn         two 3×3 convolutions and a linear layer, for the 8×8 digits
    alexnet, vgg16, resnet18   the papers' CIFAR-10 networks [Zou et al. 2022, Table 1; Tang App. D]
                      (torch modules: adamgen.models.image_nets)

A row holds the network's config dataclass (its keys, read by validation and `adamgen keys`)
and the module that implements it in torch, imported only when a run trains: reading a
config never imports torch.
"""

import importlib
from dataclasses import dataclass
from types import ModuleType

from ..settings import at_least, choice, key, positive

IMAGE_NETS = "adamgen.models.image_nets"


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


class ImageNetwork:
    """What the image networks' configs share: their sizes, read off the torch module built
    on the meta device (torch is imported only when a plan asks for them)."""

    PER_RUN = ()

    def _info(self, data) -> tuple:
        from .image_nets import shape_info  # lazy: reading a config never imports torch

        return shape_info(self, data)

    def parameters(self, data) -> int:
        return self._info(data)[0]

    def layer_names(self, data) -> tuple[str, ...]:
        return self._info(data)[1]

    def activations_per_example(self, data) -> int:
        return self._info(data)[2]


def _image_name(name: str):
    return key(name, "network (adamgen.models.NETWORKS)", choice(name))


@dataclass(frozen=True)
class SmallCNNConfig(ImageNetwork):
    """conv 3×3 (width) – ReLU – conv 3×3 (2·width) – ReLU – max-pool – linear."""

    name: str = _image_name("small_cnn")
    width: int = key(16, "channels of the first convolution (the second has twice as many)",
                     at_least(1))


@dataclass(frozen=True)
class AlexNetConfig(ImageNetwork):
    """The CIFAR AlexNet (five convolutions, three max-pools, no batch norm) [Zou et al. 2022,
    Table 1]."""

    name: str = _image_name("alexnet")


@dataclass(frozen=True)
class VGG16Config(ImageNetwork):
    """VGG-16 in its CIFAR form [Zou et al. 2022, Table 1; Tang App. D]."""

    name: str = _image_name("vgg16")
    batch_norm: bool = key(True, "batch norm after every convolution")


@dataclass(frozen=True)
class ResNet18Config(ImageNetwork):
    """ResNet-18 in its CIFAR form (3×3 stem, no max-pool) [Zou et al. 2022, Table 1; Tang
    App. D]."""

    name: str = _image_name("resnet18")


@dataclass(frozen=True)
class Network:
    """One row of the network registry.

    implementation  module defining init_weights, loss_and_grad, evaluate, layer_values and
                    stored_weights (torch; its layout is the engines'); a torch-module
                    network's module defines init_weights, build, FlatModule, layer_values and
                    stored_weights
    data            data models whose inputs it reads
    layers          names of its parameter groups (the CNN's class j = +1 and j = −1), for
                    per-layer statistics such as R_med; a torch-module network's depend on
                    its config (its weight tensors: `layer_names`)
    module          a torch module with state (batch norm), trained by the module engine
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
    module: bool = False

    def impl(self) -> ModuleType:
        return importlib.import_module(self.implementation)

    def layer_names(self, run) -> tuple[str, ...]:
        return run.model.layer_names(run.data) if self.module else self.layers


def _image_row(name: str, config: type, data: tuple[str, ...], reference: str,
               doc: str) -> Network:
    """A torch-module network of adamgen.models.image_nets: its layers are its weight tensors
    (`layer_names`), its parameters one flat row, trained by the module engine."""
    return Network(name=name, config=config, doc=doc, implementation=IMAGE_NETS, data=data,
                   layers=(), weight_dims=("parameter",), module=True, reference=reference)


NETWORKS: dict[str, Network] = {
    "two_layer_cnn": Network(
        name="two_layer_cnn", config=CNNConfig,
        doc="two-layer CNN with ReLU^q (or Huberized ReLU) filters, second layer fixed to c",
        implementation="adamgen.models.two_layer_cnn",
        data=("patch", "benign", "noisy_digits"),
        layers=("j=+1", "j=-1"), exact_hessian=True,
        reference="Zou et al. (ICLR 2023) eq. 3.1; Tang et al. (2025) Def. 3.2; Cao et al. "
                  "(NeurIPS 2022)"),
    "two_layer_linear": Network(
        name="two_layer_linear", config=LinearConfig,
        doc="two-layer linear network w_2^T W_1 x with one output, squared loss",
        implementation="adamgen.models.two_layer_linear", data=("whitened",),
        layers=("W1", "W2"), exact_hessian=True, weight_dims=("row", "k"),
        reference="Jiang, Malik & Li (NeurIPS 2023) §5"),
    **{row.name: row for row in (
        _image_row("small_cnn", SmallCNNConfig, ("digits", "cifar10"), "ours",
                   "two 3x3 convolutions and a linear layer (a laptop-size image network)"),
        _image_row("alexnet", AlexNetConfig, ("cifar10",), "Zou et al. 2022, Table 1",
                   "CIFAR AlexNet: five convolutions, no batch norm"),
        _image_row("vgg16", VGG16Config, ("cifar10",),
                   "Zou et al. 2022, Table 1; Tang et al. App. D",
                   "VGG-16, CIFAR form, batch norm"),
        _image_row("resnet18", ResNet18Config, ("cifar10",),
                   "Zou et al. 2022, Table 1; Tang et al. App. D; Padam",
                   "ResNet-18, CIFAR form"))},
}


def network(run) -> Network:
    return NETWORKS[run.model.name]

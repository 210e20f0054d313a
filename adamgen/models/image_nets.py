"""The papers' image networks as torch modules [Zou et al. 2022 review version, Table 1; Tang
et al. App. D; docs/science.md §2.4], in their CIFAR forms, and a small CNN for the 8×8 digits.

    small_cnn   conv 3×3 (w) – ReLU – conv 3×3 (2w) – ReLU – max-pool 2 – linear
    alexnet     the CIFAR AlexNet: five convolutions (64, 192, 384, 256, 256; the first 11×11
                with stride 4) with ReLU and three max-pools, one linear layer; no batch norm
    vgg16       VGG-16: thirteen 3×3 convolutions (64, 64, M, 128, 128, M, 256 ×3, M,
                512 ×3, M, 512 ×3, M), batch norm after each (optional), one linear layer
    resnet18    ResNet-18: a 3×3 stem (64) and four stages of two basic blocks (64, 128, 256,
                512; stride 2 from the second stage), batch norm, global average pool, linear

A network's parameters travel as one flat vector per run (`adamgen.engines.module`): the
optimizer's transforms update it as they update the two-layer CNN's filters; the module holds
only the batch-norm statistics. Initialisation is torch's default for each layer, drawn from
the run's seed: the same seed gives the same weights on any machine.
"""

import math
from functools import lru_cache

import torch
from torch import Tensor, nn

from ..data import DATA_MODELS
from ..seeding import generator


class SmallCNN(nn.Module):
    def __init__(self, channels: int, size: int, classes: int, width: int):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Linear(2 * width * (size // 2) ** 2, classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x).flatten(1))


class AlexNet(nn.Module):
    def __init__(self, channels: int, size: int, classes: int):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(channels, 64, 11, stride=4, padding=5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Linear(256 * (size // 32) ** 2, classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x).flatten(1))


VGG16_LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
                512, 512, 512, "M")


class VGG16(nn.Module):
    def __init__(self, channels: int, size: int, classes: int, batch_norm: bool):
        super().__init__()
        layers: list[nn.Module] = []
        for width in VGG16_LAYOUT:
            if width == "M":
                layers.append(nn.MaxPool2d(2))
                continue
            layers.append(nn.Conv2d(channels, width, 3, padding=1))
            layers += [nn.BatchNorm2d(width)] if batch_norm else []
            layers.append(nn.ReLU())
            channels = width
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(512 * (size // 32) ** 2, classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x).flatten(1))


class BasicBlock(nn.Module):
    def __init__(self, inputs: int, width: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(inputs, width, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.shortcut = nn.Sequential()
        if stride != 1 or inputs != width:
            self.shortcut = nn.Sequential(nn.Conv2d(inputs, width, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(width))

    def forward(self, x: Tensor) -> Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet18(nn.Module):
    def __init__(self, channels: int, size: int, classes: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, 64, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        stages, inputs = [], 64
        for width, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            stages.append(nn.Sequential(BasicBlock(inputs, width, stride),
                                        BasicBlock(width, width, 1)))
            inputs = width
        self.stages = nn.Sequential(*stages)
        self.linear = nn.Linear(512, classes)

    def forward(self, x: Tensor) -> Tensor:
        out = self.stages(torch.relu(self.bn1(self.conv1(x))))
        return self.linear(out.mean(dim=(2, 3)))


def build(model, data) -> nn.Module:
    """The network of a model config for a data config's images, with torch's default
    initialisation from the global generator (see `init_weights` for a seeded one)."""
    channels, size, _ = data.image_shape()
    classes = DATA_MODELS[data.kind].classes
    if model.name == "small_cnn":
        return SmallCNN(channels, size, classes, model.width)
    if model.name == "alexnet":
        return AlexNet(channels, size, classes)
    if model.name == "vgg16":
        return VGG16(channels, size, classes, model.batch_norm)
    if model.name == "resnet18":
        return ResNet18(channels, size, classes)
    raise KeyError(model.name)  # the registry lists exactly these


@lru_cache(maxsize=32)
def shape_info(model, data) -> tuple[int, tuple[str, ...], int]:
    """Parameters, the names of the weight tensors (R_med's layers), and activations per
    example, from the network built on the meta device (no memory, no arithmetic)."""
    with torch.device("meta"):
        net = build(model, data)
        channels, size, _ = data.image_shape()
        count = 0

        def hook(module, args, out):
            nonlocal count
            count += out.numel()

        handles = [m.register_forward_hook(hook) for m in net.modules()
                   if not list(m.children())]
        net(torch.empty(1, channels, size, size))
        for h in handles:
            h.remove()
    params = sum(p.numel() for p in net.parameters())
    layers = tuple(name for name, p in net.named_parameters() if p.ndim >= 2)
    return params, layers, count


def init_weights(run) -> Tensor:
    """The flat parameter vector [P] (float64) of a freshly initialised network: torch's
    default initialisation, drawn from the run's seed."""
    seed = int(generator(run.seed, "init").integers(2**62))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = build(run.model, run.data).double()
    return nn.utils.parameters_to_vector(net.parameters()).detach()


@lru_cache(maxsize=32)
def stored_weights(W: Tensor) -> Tensor:
    """W as run files hold it: one flat row per run."""
    return W


def parameter_shapes(model, data) -> tuple[tuple[str, ...], tuple[torch.Size, ...]]:
    """The names and shapes of the network's parameters, in the order of its flat vector
    (read off the network built on the meta device)."""
    with torch.device("meta"):
        named = list(build(model, data).named_parameters())
    return tuple(name for name, _ in named), tuple(p.shape for _, p in named)


def _weight_tensors(T: Tensor, shapes) -> list[Tensor]:
    """The weight tensors (ndim ≥ 2) of [R, P], each flattened: [R, size]."""
    parts = T.split([math.prod(shape) for shape in shapes], dim=-1)
    return [part for part, shape in zip(parts, shapes, strict=True) if len(shape) >= 2]


class FlatModule:
    """A network whose parameters come from a flat vector: `module(W_r, x)` is the network
    with parameters W_r ([P], views, no copy) applied to x; the module keeps only its buffers
    (batch-norm running statistics)."""

    def __init__(self, model, data, device, dtype):
        self.names, self.shapes = parameter_shapes(model, data)
        self.sizes = [math.prod(s) for s in self.shapes]
        self.module = build(model, data).to(device, dtype)  # its parameters are never read
        for p in self.module.parameters():
            p.requires_grad_(False)

    def parameters(self, W: Tensor) -> dict[str, Tensor]:
        return {name: part.view(shape) for name, part, shape in zip(
            self.names, W.split(self.sizes), self.shapes, strict=True)}

    def __call__(self, W: Tensor, x: Tensor) -> Tensor:
        return torch.func.functional_call(self.module, self.parameters(W), (x,))


def layer_values(T: Tensor, run) -> list[Tensor]:
    """Per-layer values of a flat [R, P] tensor (a Hessian diagonal): its weight tensors."""
    return _weight_tensors(T, parameter_shapes(run.model, run.data)[1])

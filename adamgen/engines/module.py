"""The module engine: the torch-module image networks (adamgen.models.image_nets: batch norm,
augmentation, bf16 autocast), one module per run, the parameters a flat vector that the
optimizer's transforms update (its program: adamgen.engines.module_program)."""

from ..models import NETWORKS
from ..optim import external
from ..settings import choice
from .base import CUDA_FLOPS, Engine, EngineKey


def _bf16_keeps_float32_weights(train) -> str | None:
    if train.precision == "bf16" and train.dtype != "float32":
        return "bf16 autocast keeps float32 weights (train.dtype)"
    return None


class ModuleEngine(Engine):
    name = "module"
    doc = ("torch-module image networks, one module per run, any device, optional bf16 "
           "autocast")
    keys = {"precision": EngineKey(
        "float32", "'float32', or 'bf16': forward and backward passes under bfloat16 autocast "
        "with float32 weights and optimizer state (module engine; off for parity tests)",
        choice("float32", "bf16"), binding=True, cross=_bf16_keeps_float32_weights)}

    def supports(self, run) -> str | None:
        if not NETWORKS[run.model.name].module:
            return f"'{run.model.name}' is not a torch-module network"
        if external.is_import_path(run.optimizer["name"]):
            return "an outside optimizer trains on the torch engine (the two-layer networks)"
        return None

    def seconds(self, run, runs: int, probe_count: int) -> float:
        """A convolution reuses each weight at many positions: an example's forward pass is
        taken as 32 multiply-adds a parameter (VGG-16's 15 M parameters and 0.31 GFLOP on a
        CIFAR image are 10; ResNet-18's 25), backward twice more, at 10 GFLOP/s on a CPU core
        and CUDA_FLOPS on a GPU (neither measured yet for these networks)."""
        flops_per_example = 2 * 3 * 32 * run.model.parameters(run.data)
        examples = runs * (run.train.epochs * run.data.n
                           + probe_count * (run.data.n + run.data.n_test) / 3)
        speed = 10e9 if run.train.device == "cpu" else CUDA_FLOPS
        return flops_per_example * examples / speed

    def program(self):
        from .module_program import ModuleLockstep  # lazy: torch loads when a run trains

        return ModuleLockstep

"""The module engine: the torch-module image networks (adamgen.models.image_nets: batch norm,
augmentation, bf16 autocast), one module per run, the parameters a flat vector that the
optimizer's transforms update (its program: adamgen.engines.module_program)."""

from ..models import NETWORKS
from ..settings import choice
from .base import Engine, EngineKey


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
        return None

    def program(self):
        from .module_program import ModuleLockstep  # lazy: torch loads when a run trains

        return ModuleLockstep

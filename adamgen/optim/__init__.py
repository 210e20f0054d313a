"""The optimizer family of SPEC §3: composable transforms and the named optimizers."""

from .alias import HYPERS, OPTIMIZERS, REQUIRED, build_optimizer, per_run_hyperparameters
from .transforms import Transform, chain

__all__ = [
    "HYPERS",
    "OPTIMIZERS",
    "REQUIRED",
    "Transform",
    "build_optimizer",
    "chain",
    "per_run_hyperparameters",
]

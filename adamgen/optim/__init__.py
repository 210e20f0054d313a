"""The optimizer family [docs/science.md §3]: the table of named optimizers (`alias`) and the
composable transforms they are built from (`transforms`, imported when a run trains)."""

from .alias import HYPERS, OPTIMIZERS, REQUIRED, build_optimizer, per_run_hyperparameters

__all__ = ["HYPERS", "OPTIMIZERS", "REQUIRED", "build_optimizer", "per_run_hyperparameters"]

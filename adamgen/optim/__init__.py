"""The optimizer family [docs/science.md §3]: the table of named optimizers (`alias`) and the
composable transforms they are built from (`transforms`, imported when a run trains)."""

from . import external
from .alias import HYPERS, OPTIMIZERS, REQUIRED, NamedOptimizer, build_optimizer
from .alias import per_run_hyperparameters as _per_run


def optimizer_row(name: str) -> NamedOptimizer | external.Outside:
    """The declaration of an optimizer: a row of OPTIMIZERS, or an outside optimizer's (a name
    with a dot or a colon: its import path, adamgen.optim.external)."""
    return external.row(name) if external.is_import_path(name) else OPTIMIZERS[name]


def per_run_hyperparameters(name: str, settings: list[dict], like):
    """The hyperparameters of R runs as [R] tensors (see alias.per_run_hyperparameters); an
    outside optimizer keeps its own, and the trainer reads only its lr and its decay, which
    is its own (none in the objective)."""
    if external.is_import_path(name):
        return {"lr": like.new_tensor([external.value(s, "lr") for s in settings]),
                "weight_decay": like.new_zeros(len(settings)), "settings": list(settings)}
    return _per_run(name, settings, like)


__all__ = ["HYPERS", "OPTIMIZERS", "REQUIRED", "build_optimizer", "external", "optimizer_row",
           "per_run_hyperparameters"]

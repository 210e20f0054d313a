"""adamgen: how optimizers shape what a two-layer CNN learns.

    adamgen.open_runs("results/runs/*/*.nc")    every run file as one xarray Dataset
"""

from ._version import __version__

__all__ = ["__version__", "open_runs"]


def __getattr__(name: str):
    if name == "open_runs":
        from .analysis import open_runs  # lazy: the command line starts without xarray

        return open_runs
    raise AttributeError(f"module 'adamgen' has no attribute '{name}'")

"""adamgen: how optimizers shape what a two-layer CNN learns.

    adamgen.open_runs("results/runs/*/*.nc")    every run file as one xarray Dataset
"""

__version__ = "0.1.0"
__all__ = ["__version__", "open_runs"]


def __getattr__(name: str):
    # the analysis API is imported on first use: the command line starts without xarray
    if name == "open_runs":
        from .analysis import open_runs

        return open_runs
    raise AttributeError(f"module 'adamgen' has no attribute '{name}'")

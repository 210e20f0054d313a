"""File helpers shared by the dataset and run writers."""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import xarray as xr

from .errors import DataFileError
from .resources import free_space, remove_stale_temps, temp_name


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds.

    An interrupted or failed write never leaves a file under the final name, and never
    touches a finished file that is already there. Temporary files left by writers that were
    killed (kill -9, a lost node) are removed first.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    tmp = temp_name(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_netcdf(ds: xr.Dataset, path: str | Path, encoding: dict) -> None:
    """Write atomically; a failure (a full disk, say) is one line naming the file."""
    with atomic_path(path) as tmp:
        try:
            ds.to_netcdf(tmp, engine="netcdf4", encoding=encoding)
        except (OSError, RuntimeError) as err:
            free = free_space(path)
            room = f"; its file system has {free} free" if free else ""
            raise DataFileError(f"cannot write '{path}': {err}{room}") from None


def open_netcdf(path: str | Path, what: str, required: tuple[str, ...]) -> xr.Dataset:
    """Open and load a NetCDF file, checking that it holds the variables `what` must have."""
    try:
        with xr.open_dataset(path, engine="netcdf4") as ds:
            ds = ds.load()
    except FileNotFoundError:
        raise DataFileError(f"{what} '{path}' does not exist") from None
    except (OSError, ValueError) as err:
        raise DataFileError(f"{what} '{path}' is not a readable NetCDF file ({err})") from None
    missing = [v for v in required if v not in ds.variables]
    if missing:
        raise DataFileError(f"{what} '{path}' lacks {', '.join(missing)}: not an adamgen {what}")
    return ds


def zlib(ds: xr.Dataset, level: int = 1) -> dict:
    """Compression settings for every data variable of `ds`."""
    return {name: {"zlib": True, "complevel": level, "shuffle": True} for name in ds.data_vars}

"""What every adamgen file shares: atomic writes, the NetCDF conventions and provenance, and
the check that a file is the adamgen file it is read as."""

import datetime
import functools
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import xarray as xr

from ._version import __version__
from .errors import DataFileError
from .resources import free_space, remove_stale_temps, temp_name

CONVENTIONS = "CF-1.11"


@functools.cache
def git_commit() -> str:
    """The commit of the adamgen source tree, with '-dirty' for local changes; '' outside git."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "."], cwd=here,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
    return commit + ("-dirty" if dirty else "")


def history(action: str) -> str:
    """A file's `history` attribute: when, what, and which adamgen did it."""
    when = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    return f"{when} {action} by adamgen {__version__} (git {git_commit() or 'unknown'})"


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds.

    An interrupted or failed write never leaves a file under the final name, and never
    touches a finished file that is already there. Temporary files left by writers that were
    killed (kill -9, a lost node) are removed first. A write that fails on the file system (a
    full disk, a directory in the way, no permission) is one line naming the file and the
    free space (DataFileError), whatever wrote it: NetCDF, torch, matplotlib or text.
    """
    path = Path(path)
    tmp = temp_name(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(path)
        yield tmp
        os.replace(tmp, path)
    except DataFileError:
        raise
    except (OSError, RuntimeError) as err:  # netCDF4 and torch report a full disk as either
        free = free_space(path)
        room = f"; its file system has {free} free" if free else ""
        reason = err.strerror if isinstance(err, OSError) and err.strerror else err
        raise DataFileError(f"cannot write '{path}': {reason}{room}") from None
    finally:
        tmp.unlink(missing_ok=True)


def write_netcdf(ds: xr.Dataset, path: str | Path, encoding: dict) -> None:
    """Write atomically (`atomic_path`: a failure is one line naming the file)."""
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp, engine="netcdf4", encoding=encoding)


# what each kind of adamgen file says it is: the start of its `title` attribute, which every
# adamgen version has written
TITLES = {
    "run file": ("adamgen run:",),
    "data file": ("adamgen data set:",),
    "summary": ("adamgen summary of experiment", "adamgen convex counterpart, experiment"),
    "convex fit": ("adamgen convex counterpart (",),
}


def check_kind(ds: xr.Dataset | dict, path: str | Path, what: str) -> None:
    """A NetCDF file (a Dataset, or its attributes) must be the adamgen file it is read as; a
    foreign one is named."""
    title = str((ds.attrs if isinstance(ds, xr.Dataset) else ds).get("title", ""))
    if not title.startswith(TITLES[what]):
        found = f"its title is {title!r}" if title else "it has no title"
        raise DataFileError(f"{what} '{path}' is not an adamgen {what} ({found})")


def open_netcdf(path: str | Path, what: str, required: tuple[str, ...]) -> xr.Dataset:
    """Open and load a NetCDF file, checking that it is an adamgen file of the kind `what`
    (`TITLES`) and holds the variables that kind must have."""
    try:
        with xr.open_dataset(path, engine="netcdf4") as ds:
            ds = ds.load()
    except FileNotFoundError:
        raise DataFileError(f"{what} '{path}' does not exist") from None
    except (OSError, ValueError) as err:
        raise DataFileError(f"{what} '{path}' is not a readable NetCDF file ({err})") from None
    check_kind(ds, path, what)
    missing = [v for v in required if v not in ds.variables]
    if missing:
        raise DataFileError(f"{what} '{path}' lacks {', '.join(missing)}: not an adamgen {what}")
    return ds


def zlib(ds: xr.Dataset, level: int = 1) -> dict:
    """Compression settings for every data variable of `ds`."""
    return {name: {"zlib": True, "complevel": level, "shuffle": True} for name in ds.data_vars}

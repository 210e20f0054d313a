"""What a run will need, estimated before anything is allocated or trained.

One estimate serves three purposes: the scheduler's `mem_mb` for a training job, a clear error
before a run (or a data set) that cannot fit in memory starts, and a free-space check before
a run trains for hours and then cannot write its file.

The memory limit is the memory the machine has available now (Linux: MemAvailable), or
`ADAMGEN_MAX_MEMORY_GB` where that is set.
"""

import os
import shutil
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import DataFileError, ResourceError

GiB = 2**30
MiB = 2**20


@dataclass(frozen=True)
class Estimate:
    """Bytes, by what holds them."""

    parts: dict[str, float]

    @property
    def total(self) -> float:
        return sum(self.parts.values())

    def describe(self) -> str:
        shown = sorted(self.parts.items(), key=lambda kv: -kv[1])
        return ", ".join(f"{name} {human(b)}" for name, b in shown if b >= MiB)


def eval_chunk(activations_per_example: int) -> int:
    """Examples evaluated at once: at most 2048, and at most 2^28 activations (1 GiB in
    float32) per chunk."""
    return int(max(1, min(2048, 2**28 // max(1, activations_per_example))))


def human(n_bytes: float) -> str:
    for unit, size in (("TiB", 2**40), ("GiB", GiB), ("MiB", MiB), ("KiB", 2**10)):
        if n_bytes >= size:
            return f"{n_bytes / size:.1f} {unit}"
    return f"{n_bytes:.0f} B"


def available_memory() -> float:
    """Bytes this process may use: ADAMGEN_MAX_MEMORY_GB, else what the machine has free."""
    limit = os.environ.get("ADAMGEN_MAX_MEMORY_GB")
    if limit:
        return float(limit) * GiB
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return float(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return float("inf")


def check_memory(estimate: Estimate, what: str, advice: str) -> None:
    """Fail before allocating when `estimate` exceeds the memory limit."""
    limit = available_memory()
    if estimate.total > limit:
        raise ResourceError(
            f"{what} needs about {human(estimate.total)} of memory ({estimate.describe()}), "
            f"more than the {human(limit)} available (ADAMGEN_MAX_MEMORY_GB sets the limit); "
            f"{advice}")


def check_output(path: str | Path, size_bytes: float = 0.0) -> Path:
    """Check, before any work, that `path` can be written and its file system has room.

    Makes the parent directory, writes and removes a probe file beside the target, and
    compares the free space with the expected (uncompressed, so generous) file size.
    """
    if not str(path).strip():
        raise DataFileError("the output path is empty")
    path = Path(path)
    if path.is_dir():
        raise DataFileError(f"the output '{path}' is a directory; give a file name (.nc)")
    parent = path.resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=parent, prefix=f".{path.name}.check-"):
            pass
    except OSError as err:
        raise DataFileError(f"cannot write '{path}': {err.strerror or err}") from None
    free = shutil.disk_usage(parent).free
    if size_bytes > free:
        raise DataFileError(f"cannot write '{path}': it needs about {human(size_bytes)} and "
                            f"its file system has {human(free)} free")
    return path


def free_space(path: str | Path) -> str:
    """Free space on the file system of `path` (for error messages), or '' if unknown."""
    try:
        return human(shutil.disk_usage(Path(path).resolve().parent).free)
    except OSError:
        return ""


def temp_name(path: Path) -> Path:
    """The temporary sibling a writer uses: `.<name>.tmp-<host>-<pid>`."""
    return path.with_name(f".{path.name}.tmp-{socket.gethostname()}-{os.getpid()}")


def remove_stale_temps(path: Path) -> list[Path]:
    """Remove temporary siblings of `path` left by writers that were killed.

    A temp file is stale when the process that named it no longer runs on this host; files
    from other hosts (a shared file system) are left alone unless older than a day.
    """
    host = socket.gethostname()
    removed = []
    for tmp in path.parent.glob(f".{path.name}.tmp-*"):
        tag = tmp.name.rsplit(".tmp-", 1)[1]
        owner, _, pid = tag.rpartition("-")
        stale = False
        if owner in (host, "") and pid.isdigit():
            stale = not process_running(int(pid))
        else:
            try:
                stale = os.path.getmtime(tmp) < time.time() - 86400
            except OSError:
                continue
        if stale:
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def process_running(pid: int) -> bool:
    """Whether a process with this pid runs on this host."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


"""Stale Snakemake locks: a workflow killed hard (kill -9, a lost login node) keeps its lock.

Snakemake locks the working directory while it runs (`.snakemake/locks/`) and removes the lock
when it ends; a process that is killed cannot, and the next run then stops with "Directory
cannot be locked" until someone runs `--unlock`. The workflow records which process holds the
lock (`record_owner`, from the Snakefile's `onstart`), and the next main Snakemake process
removes the lock when that process no longer runs on this host (`clear_stale_lock`). A lock
held by a live process, or by a process on another host, is left alone.
"""

import os
import shutil
import socket
from pathlib import Path

from .resources import process_running

LOCKS = Path(".snakemake") / "locks"
OWNER = "adamgen-owner"


def record_owner(locks: Path = LOCKS) -> None:
    """Note this process (host and pid) as the lock's holder."""
    if locks.is_dir():
        (locks / OWNER).write_text(f"{socket.gethostname()} {os.getpid()}\n")


def _snakemake_running_here() -> bool:
    """Whether another process on this host runs Snakemake in this directory (Linux /proc)."""
    here = os.path.realpath(".")
    for proc in Path("/proc").glob("[0-9]*"):
        if int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
            cwd = os.path.realpath(proc / "cwd")
        except OSError:
            continue
        if b"snakemake" in cmdline and cwd == here:
            return True
    return False


def clear_stale_lock(locks: Path = LOCKS) -> str | None:
    """Remove the lock if its holder is gone; returns what was done, for the log."""
    if not locks.is_dir() or not any(locks.glob("*.lock")):
        return None
    owner = locks / OWNER
    if owner.exists():
        host, _, pid = owner.read_text().strip().partition(" ")
        if host != socket.gethostname() or not pid.isdigit() or process_running(int(pid)):
            return None
        reason = f"Snakemake process {pid} on this host, which no longer runs"
    elif Path("/proc/self").exists() and not _snakemake_running_here():
        reason = "a Snakemake process that was killed before it started its jobs"
    else:
        return None
    shutil.rmtree(locks, ignore_errors=True)
    return f"removed the lock left in {locks} by {reason}"

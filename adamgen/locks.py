"""Stale Snakemake locks: a workflow killed hard (kill -9, a lost login node) keeps its lock.

Snakemake locks the files a run reads and writes (`.snakemake/locks/<k>.input.lock` and
`<k>.output.lock`, one pair per running Snakemake process) and removes its own when it ends; a
process that is killed cannot, and the next run whose files overlap then stops with
"Directory cannot be locked" until someone runs `--unlock`. Several Snakemake processes may
run in one directory at once when their files do not overlap, so each keeps a record of its
own lock files (`record_owner`, from the Snakefile's `onstart`): `adamgen-owner-<host>-<pid>`,
the host, the pid and each lock file with its inode. The next main Snakemake process removes
the lock files of a record whose process no longer runs on this host, and nothing else
(`clear_stale_locks`): the locks of a live process, or of a process on another host, stay.
Lock files that no record names belong to a Snakemake process that was killed before it
started its jobs; they are removed only when no other Snakemake runs in this directory.
"""

import os
import socket
from pathlib import Path

from .resources import process_running

LOCKS = Path(".snakemake") / "locks"
OWNER = "adamgen-owner"


def _lock_files(locks: Path) -> list[Path]:
    return sorted(p for p in locks.glob("*.lock") if p.is_file())


def record_owner(own: list[str], locks: Path = LOCKS) -> None:
    """Note this process (host and pid) as the holder of the lock files `own` (Snakemake's
    record of the locks it wrote), each with its inode, so that a later process can tell
    them from another process's files of the same name."""
    if not locks.is_dir():
        return
    host, pid = socket.gethostname(), os.getpid()
    lines = [f"{host} {pid}"]
    for path in map(Path, own):
        try:
            lines.append(f"{path.stat().st_ino} {path.name}")
        except OSError:  # not written (a dry run, --nolock) or already gone
            continue
    (locks / f"{OWNER}-{host}-{pid}").write_text("\n".join(lines) + "\n")


def _owners(locks: Path) -> list[tuple[Path, str, int | None, dict[str, int]]]:
    """(record, host, pid, {lock file name: inode}) of every owner record."""
    out = []
    for record in sorted(locks.glob(f"{OWNER}-*")):
        try:
            head, *rest = record.read_text().splitlines()
        except (OSError, ValueError):
            continue
        host, _, pid = head.partition(" ")
        files = {}
        for line in rest:
            inode, _, name = line.partition(" ")
            if inode.isdigit() and name:
                files[name] = int(inode)
        out.append((record, host, int(pid) if pid.isdigit() else None, files))
    return out


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


def _remove(path: Path, inode: int | None = None) -> bool:
    """Remove a lock file (only if it is still the file of that inode)."""
    try:
        if inode is not None and path.stat().st_ino != inode:
            return False
        path.unlink()
    except OSError:
        return False
    return True


def clear_stale_locks(locks: Path = LOCKS) -> list[str]:
    """Remove the lock files of Snakemake processes that are gone; returns what was done, a
    line each, for the log."""
    if not locks.is_dir():
        return []
    here, done = socket.gethostname(), []
    named = set()
    for record, host, pid, files in _owners(locks):
        named |= set(files)
        if host != here or pid is None or process_running(pid):
            continue
        removed = [name for name, inode in files.items() if _remove(locks / name, inode)]
        record.unlink(missing_ok=True)
        if removed:
            done.append(f"removed the lock left in {locks} by Snakemake process {pid} on this "
                        f"host, which no longer runs ({', '.join(removed)})")
    orphans = [p for p in _lock_files(locks) if p.name not in named]
    if orphans and Path("/proc/self").exists() and not _snakemake_running_here():
        removed = [p.name for p in orphans if _remove(p)]
        if removed:
            done.append(f"removed the lock left in {locks} by a Snakemake process that was "
                        f"killed before it started its jobs ({', '.join(removed)})")
    return done

"""A training job's checkpoint: its whole state in one file, with a checksum of its contents.

The file is a header line `adamgen-checkpoint <sha256 of the payload>` followed by the payload,
the state as `torch.save` writes it. `torch.load` does not check the zip container's CRCs, so a
byte flipped inside the pickled weights would otherwise be loaded and trained on; here the
checksum is compared before anything is unpickled. A checkpoint that is missing, damaged or
foreign (another job's runs, another format) is reported in the job's log and the job starts
from epoch 0; one that cannot be written (a full disk) is reported with the free space, and
the job trains on: its last good checkpoint stays in place.
"""

import hashlib
import io
import logging
from pathlib import Path

import torch

from ._io import atomic_path
from .errors import DataFileError

log = logging.getLogger("adamgen")

MAGIC = b"adamgen-checkpoint "


def check_path(path: Path) -> None:
    """Fail before training when the checkpoint's path cannot hold a file."""
    if path.is_dir():
        raise DataFileError(f"the checkpoint path '{path}' is a directory; remove it (the job "
                            "keeps its checkpoint in a file of that name)")


def save(path: Path, state: dict) -> bool:
    """Write `state` atomically with its checksum; False (and a log line naming the file and
    the free space) if it cannot be written."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    payload = buffer.getvalue()
    header = MAGIC + hashlib.sha256(payload).hexdigest().encode() + b"\n"
    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            f.write(header)
            f.write(payload)
    except DataFileError as err:  # the file and the free space, in one line
        log.warning("checkpoint not saved: %s; training goes on from the last checkpoint", err)
        return False
    return True


def belongs(path: Path, fingerprint: str) -> bool:
    """Whether `path` holds an intact checkpoint of the runs `fingerprint` names."""
    return _read(path, fingerprint)[0] is not None


def load(path: Path, fingerprint: str) -> dict | None:
    """The saved state if `path` holds an intact checkpoint of the runs `fingerprint` names;
    else None, with a log line saying why (a missing file needs none)."""
    saved, problem = _read(path, fingerprint)
    if problem:
        log.warning("checkpoint %s %s; starting from epoch 0", path, problem)
    return saved


def _read(path: Path, fingerprint: str) -> tuple[dict | None, str | None]:
    """The saved state, or None and what is wrong with the file (None where there is none)."""
    if not path.exists():
        return None, None
    try:
        raw = path.read_bytes()
    except OSError as err:
        return None, f"is unreadable ({err})"
    header, _, payload = raw.partition(b"\n")
    if not header.startswith(MAGIC):
        return None, "is not an adamgen checkpoint of this version"
    if hashlib.sha256(payload).hexdigest().encode() != header[len(MAGIC):]:
        return None, "is damaged (its contents do not match their checksum)"
    try:
        saved = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=False)
    except Exception as err:  # a checksum that matches a payload torch cannot read
        return None, f"is unreadable ({err})"
    if not isinstance(saved, dict) or saved.get("runs") != fingerprint:
        return None, "belongs to other runs"
    return saved, None

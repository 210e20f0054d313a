"""adamgen's log lines: to stderr on the command line, to the job's log in the workflow."""

import logging
import os
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import AdamgenError

log = logging.getLogger("adamgen")


def setup_logging(path: str | Path | None = None) -> None:
    """Send adamgen's progress lines to a file (a Snakemake log) or to stderr."""
    handler = logging.FileHandler(path) if path else logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s adamgen: %(message)s", "%H:%M:%S"))
    log.handlers[:] = [handler]
    log.setLevel(logging.INFO)
    log.propagate = False
    if path:  # a workflow job's log starts with where it ran (a Slurm job id, its GPUs)
        where = [f"host {socket.gethostname()}"]
        where += [f"{k}={os.environ[k]}" for k in ("SLURM_JOB_ID", "CUDA_VISIBLE_DEVICES")
                  if k in os.environ]
        log.info("job on %s", ", ".join(where))


@contextmanager
def workflow_job(log_path: str) -> Iterator[None]:
    """Body of a rule script: adamgen's lines go to the job's log, and bad input ends the job
    with one line naming the file or key (no traceback) and a non-zero exit status."""
    setup_logging(log_path)
    try:
        yield
    except AdamgenError as err:
        log.error("error: %s", err)
        print(f"adamgen: error: {err}", file=sys.stderr)
        raise SystemExit(1) from None

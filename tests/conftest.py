import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from adamgen.config import parse_run_config
from adamgen.planner import merge

TINY = {
    "seed": 0,
    "data": {"d": 60, "n": 20, "s": 8, "sigma_p": 0.35, "alpha": 0.2, "n_test": 300},
    "model": {"q": 3, "m": 4, "sigma_0": 0.05},
    "optimizer": {"name": "adam", "lr": 1e-3, "weight_decay": 1e-4},
    "train": {"batch_size": 20, "epochs": 30, "dtype": "float64"},
    "probes": {"per_decade": 4},
}


def _cnn_engines() -> list[str]:
    """Every engine (adamgen.engines.ENGINES) that can train the tiny CNN run on the CPU."""
    from adamgen.engines import ENGINES, refusal

    run = parse_run_config(TINY)
    return [name for name, engine in ENGINES.items() if refusal(engine, run) is None]


CNN_ENGINES = _cnn_engines()


@pytest.fixture
def tiny_raw():
    """A factory for tiny raw run configs: tiny_raw(optimizer={...}, train={...})."""
    return lambda **changes: merge(TINY, changes)


@pytest.fixture
def tiny():
    """A factory for tiny resolved RunConfigs."""
    return lambda **changes: parse_run_config(merge(TINY, changes))


@pytest.fixture(autouse=True)
def _deterministic_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


# --- the Snakemake workflow on config/tiny.yaml, shared by the workflow and cluster tests -----

ROOT = Path(__file__).resolve().parents[1]
TINY_WORKFLOW = yaml.safe_load((ROOT / "config" / "tiny.yaml").read_text())


def run_snakemake(workdir: Path, args: list[str], env: dict | None = None,
                  timeout: float | None = None) -> subprocess.CompletedProcess:
    """Run this checkout's workflow in `workdir` with exactly these arguments (a README
    command's own), in the environment the tests give Snakemake."""
    env = {**os.environ, "XDG_CACHE_HOME": str(workdir / ".cache"), **(env or {})}
    argv = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"),
            "--directory", str(workdir), *args]
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout)


def snakemake(workdir: Path, config: dict, *args: str, env: dict | None = None,
              background: bool = False, timeout: float | None = None):
    """Run this checkout's workflow in `workdir` on `config` (written to workdir/config.yaml).

    In the background, Snakemake leads a process group of its own with its jobs, so that a
    test can kill the whole of it at once.
    """
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {**os.environ, "XDG_CACHE_HOME": str(workdir / ".cache"), **(env or {})}
    argv = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"),
            "--directory", str(workdir), "--configfile", str(path), *args]
    if background:
        return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=env, start_new_session=True)
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout)


@pytest.fixture(scope="session")
def run_workflow():
    """snakemake(workdir, config, *args, env=None, background=False), as a fixture."""
    return snakemake


def complete_workflow(tmp_path_factory, name: str, config: dict) -> Path:
    """A fresh directory in which the workflow has run `config` to completion (`--cores 2`)."""
    workdir = tmp_path_factory.mktemp(name)
    proc = snakemake(workdir, config, "--cores", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return workdir


@pytest.fixture(scope="session")
def tiny_workflow(tmp_path_factory):
    """The tiny workflow, run once to completion with local jobs."""
    return complete_workflow(tmp_path_factory, "workflow", TINY_WORKFLOW)

"""config/cifar.yaml through Snakemake: planned on CIFAR-format data the tests write, not
planned (with the reason) without them, refused on a damaged file, and run end to end, shrunk,
on a small fixture."""

import re
from pathlib import Path

import conftest
import pytest
import xarray as xr

from adamgen import planner as ex
from adamgen.config import load_yaml
from adamgen.data.images import write_cifar_like

ROOT = Path(__file__).resolve().parents[1]
CIFAR = load_yaml(ROOT / "config" / "cifar.yaml")
DATA = "data/cifar-10-batches-py"  # the config's data.path, relative to the working directory
pytestmark = pytest.mark.slow

# every experiment of config/cifar.yaml, shrunk: the small CNN, 60 images, 2 epochs, the CPU
SHRINK = {
    "claims": str(ROOT / "config" / "claims.yaml"),
    "runs_per_job": 16,  # fewer, larger jobs: the suite's time
    "experiments": {name: {
        "base": {"data": {"n": 60, "n_test": 30}, "train": {"epochs": 2, "device": "cpu"}},
        "grid": {"model.name": ["small_cnn"], "seed": [0]},
    } for name in CIFAR["experiments"]},
}
SHRINK["experiments"]["tang_e5_batch"]["grid"] |= {"batch_size": [16, 60], "lr": [1.0e-4]}
SHRINK["experiments"]["tang_e5_decay"]["optimizers"] = {
    "adam": {"grid": {"weight_decay": [0.1, 1.0e-4]}},
    "adamw": {"grid": {"weight_decay": [0.5, 1.0e-4]}}}
for name in ("zou_e2", "padam_cifar", "jiang_cifar"):
    SHRINK["experiments"][name]["base"]["probes"] = {"linear_points": 2,
                                                     "hessian_examples": 20}
    SHRINK["experiments"][name]["base"]["train"]["batch_size"] = 20


def test_the_config_plans_its_full_grid_on_data_of_the_real_size(tmp_path):
    write_cifar_like(tmp_path / DATA, 50_000, 10_000)
    proc = conftest.snakemake(tmp_path, CIFAR, "--dry-run", "--cores", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    planned = ex.plan(CIFAR).values()
    assert [len(e.runs) for e in planned] == [18, 420, 200, 24, 6]
    # B = 16, eta 1e-4 with Tang's lambdas is in both E5 grids: one file serves both
    runs = len({r.path for e in planned for r in e.runs})
    assert runs == 18 + 420 + 200 + 24 + 6 - 2 * 2 * 5
    assert re.search(rf"^train\s+{runs}\s*$", out, re.M), out[-2000:]
    # the README's count (its table of configs)
    assert f"{runs} training jobs" in (conftest.ROOT / "README.md").read_text()
    assert "gpu=1" in out and "not planned" not in out


def test_without_the_data_nothing_is_planned_and_the_claims_say_why(tmp_path):
    proc = conftest.snakemake(tmp_path, CIFAR, "--cores", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    # one line for the five experiments that read the one missing folder
    names = ", ".join(sorted(CIFAR["experiments"]))
    (line,) = [x for x in proc.stderr.splitlines() if "not planned" in x]
    assert (f"adamgen: not planned ({names}): CIFAR-10 not found: '{DATA}/data_batch_1' "
            "does not exist") in line
    assert not (tmp_path / "results" / "runs").exists()
    claims = (tmp_path / "results" / "cifar" / "claims.md").read_text()  # its name's folder
    row = next(line for line in claims.splitlines() if "E2.resnet18.sgd_beats_adam" in line)
    assert claims.index(row) > claims.index("## Not run in this config")
    assert f"not planned: CIFAR-10 not found: '{DATA}/data_batch_1'" in row


def test_a_truncated_batch_stops_the_plan_naming_the_file(tmp_path):
    root = write_cifar_like(tmp_path / DATA, 60, 30)
    (root / "data_batch_3").write_bytes((root / "data_batch_3").read_bytes()[:500])
    proc = conftest.snakemake(tmp_path, CIFAR, "--dry-run")
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert (f"bad input: CIFAR-10 file '{DATA}/data_batch_3' is not a readable batch "
            "(truncated or damaged") in out
    assert "rule train" not in out


def test_the_config_runs_end_to_end_shrunk_on_a_small_fixture(tmp_path):
    write_cifar_like(tmp_path / DATA, 60, 30)
    config = ex.merge(CIFAR, SHRINK)
    proc = conftest.snakemake(tmp_path, config, "--cores", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = tmp_path / "results"
    planned = ex.plan(config)
    for name, experiment in planned.items():
        summary = xr.open_dataset(results / "cifar" / name / "summary.nc", engine="netcdf4")
        assert int((summary["status"] == "completed").sum()) == len(experiment.runs)
        summary.close()
    run = xr.open_dataset(planned["zou_e2"].runs[0].path.replace("results", str(results), 1),
                          engine="netcdf4")
    assert run.attrs["engine"] == "module" and run["rmed"].dims == ("epoch", "layer")
    assert run["layer"].values.tolist() == ["features.0.weight", "features.2.weight",
                                           "classifier.weight"]
    run.close()
    assert not list(results.rglob("*.checkpoint"))  # spent checkpoints are removed
    claims = (results / "cifar" / "claims.md").read_text()
    for claim in ("E2.sgd_beats_adam", "E5.decay.adam_spikes", "E8.cifar.padam_beats_adam",
                  "E6.cifar.rmed"):
        row = next(line for line in claims.splitlines() if claim in line)
        assert "**" in row  # among the claims that ran, with a verdict

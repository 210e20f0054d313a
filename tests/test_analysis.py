"""Analysis after the run: run files that combine in one call, files that follow the CF
conventions, and the figure-reproduction example of docs/examples."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import conftest
import numpy as np
import pytest
import xarray as xr

import adamgen
from adamgen import experiments as ex

ROOT = conftest.ROOT


@pytest.fixture(scope="module")
def runs_dir(tiny_workflow):
    return tiny_workflow / "results" / "runs"


@pytest.mark.slow
def test_every_run_file_combines_in_one_call_with_its_own_settings(runs_dir):
    planned = {r.path: r for e in ex.plan(conftest.TINY_WORKFLOW).values() for r in e.runs}
    with adamgen.open_runs(str(runs_dir / "*" / "*.nc")) as runs:
        assert runs.sizes["run"] == len(planned) == 34
        assert "dask" in type(runs["test_error"].data).__module__  # opened lazily
        for k in range(runs.sizes["run"]):
            path = str(runs["path"].values[k]).split(str(runs_dir.parent.parent) + "/")[1]
            run = planned[path]
            assert runs["optimizer"].values[k] == run.coords["optimizer"]
            assert runs["seed"].values[k] == run.config.seed
            assert runs["lr"].values[k] == run.config.optimizer["lr"]
        # a setting a run does not have is NaN there: gd has no beta1
        gd = runs.where(runs.optimizer == "gd", drop=True)
        assert np.isnan(gd["beta1"].values).all()
        by = runs.where(runs.data_kind == "patch", drop=True).groupby("optimizer")
        assert set(by.groups) == {"adam", "adamw", "gd", "sgd_momentum", "padam"}


@pytest.mark.slow
def test_runs_that_form_a_grid_unfold_along_its_axes(runs_dir):
    files = sorted(str(p) for p in (runs_dir / "adam").glob("B20-*.nc"))
    with adamgen.open_runs(files) as grid:
        assert dict(grid.sizes) == {"weight_decay": 2, "seed": 2, "epoch": grid.sizes["epoch"],
                                    "j": 2, "r": 4}
        final = grid["test_error"].isel(epoch=-1).compute()
    with xr.open_dataset(files[0], engine="netcdf4") as one:
        point = {"weight_decay": one["weight_decay"].item(), "seed": one["seed"].item()}
        assert final.sel(point).item() == one["test_error"].values[-1]
    with pytest.raises(ValueError, match="'lr' is not a setting that differs"):
        adamgen.open_runs(files, dims=["lr"])


@pytest.mark.slow
def test_the_plain_xarray_call_keeps_each_files_settings(runs_dir):
    """What failed before: hyperparameters were global attributes, lost when combining."""
    # the runs of one experiment (one data model: files of different models have different
    # settings, which plain xarray will not combine without being told how)
    files = [str(runs_dir.parent.parent / r.path) for r in ex.plan(conftest.TINY_WORKFLOW)[
        "tiny"].runs]
    with xr.open_mfdataset(files, combine="nested", concat_dim="run", engine="netcdf4") as ds:
        assert set(ds["optimizer"].values.tolist()) == {"adam", "adamw", "gd"}
        assert ds.sizes["run"] == len(files)


def _cf_failures(path) -> list[str]:
    """What the IOOS compliance checker (CF-1.11) finds wrong in a file; [] when all passes."""
    out = path.parent / f"{path.name}.cf.json"
    # beside this interpreter (a venv's bin need not be on PATH), else on PATH
    beside = Path(sys.executable).with_name("compliance-checker")
    checker = str(beside) if beside.exists() else shutil.which("compliance-checker")
    assert checker, "compliance-checker is not installed (pip install -e '.[dev]')"
    subprocess.run([checker, "--test",
                    "cf:1.11", "--format", "json", "-o", str(out), str(path)],
                   capture_output=True, text=True)
    report = json.loads(out.read_text())["cf:1.11"]
    failed = [f"{r['name']}: {'; '.join(r['msgs'])}" for level in
              ("high_priorities", "medium_priorities", "low_priorities")
              for r in report[level] if r["value"][0] < r["value"][1]]
    assert failed or report["scored_points"] == report["possible_points"]
    return failed


@pytest.mark.slow
def test_every_kind_of_file_follows_the_cf_conventions(tiny_workflow, tmp_path):
    results = tiny_workflow / "results"
    files = {
        "run file": next((results / "runs" / "adam").glob("*.nc")),
        "benign run file": next((results / "runs" / "gd").glob("B10-*.nc")),
        "summary": results / "tiny" / "summary.nc",
        "phase summary": results / "tiny_e7" / "summary.nc",
        "data file": next((results / "data").rglob("seed0.nc")),
        "convex summary": results / "tiny_convex" / "summary.nc",
        "convex fit": results / "tiny_convex" / "convex" / "seed0.nc",
    }
    for what, path in files.items():
        copy = tmp_path / f"{what.replace(' ', '_')}.nc"
        shutil.copy(path, copy)
        assert _cf_failures(copy) == [], what


@pytest.mark.slow
def test_the_figure_example_reproduces_zou_fig2_from_the_files(runs_dir, tmp_path):
    out = tmp_path / "fig2.png"
    proc = subprocess.run([sys.executable, str(ROOT / "docs" / "examples" / "zou_fig2.py"),
                           str(runs_dir / "*" / "*.nc"), "1e-4", str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert out.stat().st_size > 10_000
    assert len((ROOT / "docs" / "examples" / "zou_fig2.py").read_text().split("\n")) < 40


def test_open_runs_names_what_is_missing(tmp_path):
    with pytest.raises(OSError, match="no run files match"):
        adamgen.open_runs(str(tmp_path / "*.nc"))
    with pytest.raises(OSError, match="nope.nc' does not exist"):
        adamgen.open_runs([str(tmp_path / "nope.nc")])

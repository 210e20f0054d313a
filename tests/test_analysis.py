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
from adamgen import planner as ex

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
    files = sorted(str(runs_dir.parent.parent / r.path) for r in ex.plan(
        conftest.TINY_WORKFLOW)["tiny"].runs if r.coords["optimizer"] == "adam"
        and r.config.batch_size == 20)
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
    # runs with the same settings (plain xarray will not combine files whose settings differ,
    # as GD's lack of beta1 or the benign data's snr: that is what adamgen.open_runs adds)
    files = [str(runs_dir.parent.parent / r.path) for r in ex.plan(conftest.TINY_WORKFLOW)[
        "tiny"].runs if r.coords["optimizer"] in ("adam", "adamw")]
    with xr.open_mfdataset(files, combine="nested", concat_dim="run", engine="netcdf4",
                           join="outer") as ds:
        assert set(ds["optimizer"].values.tolist()) == {"adam", "adamw"}
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


def test_runs_of_different_models_combine_with_nan_where_one_lacks_a_variable(tmp_path):
    """A run with the hessian probes has `rmed` along `layer`, one without has neither; a
    benign-data run has settings a patch run lacks. Before, the concatenation refused the mix
    and left its files open."""
    a = xr.Dataset({"test_error": ("epoch", [0.5, 0.1]),
                    "rmed": (("epoch", "layer"), [[1.0, 2.0], [3.0, 4.0]])},
                   coords={"epoch": [0, 10], "layer": ["j=+1", "j=-1"], "optimizer": "adam",
                           "lr": 1e-3, "beta1": 0.9})
    b = xr.Dataset({"test_error": ("epoch", [0.5, 0.0, 0.0])},
                   coords={"epoch": [0, 10, 20], "optimizer": "gd", "lr": 0.5, "data_snr": 0.4})
    for name, ds in (("a", a), ("b", b)):
        ds.attrs["title"] = "adamgen run: probe trajectory of one training run"
        ds.to_netcdf(tmp_path / f"{name}.nc", engine="netcdf4")
    for _ in range(3):  # opened again and again: every file is closed each time
        with adamgen.open_runs([str(tmp_path / "a.nc"), str(tmp_path / "b.nc")], lazy=False) \
                as runs:
            assert runs.sizes["run"] == 2
            assert runs["rmed"].sel(run=0, epoch=10).values.tolist() == [3.0, 4.0]
            assert np.isnan(runs["rmed"].sel(run=1)).all()
            assert np.isnan(runs["test_error"].sel(run=0, epoch=20))
            assert np.isnan(runs["beta1"].values[1]) and np.isnan(runs["data_snr"].values[0])
            assert runs["optimizer"].values.tolist() == ["adam", "gd"]

"""Analysis after the run: run files that combine in one call, each run on its own probe
epochs; files that follow the CF conventions; the README's analysis examples and the
figure-reproduction example of docs/examples."""

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
from adamgen.analysis import at_epoch, final, shared_epochs

ROOT = conftest.ROOT


@pytest.fixture(scope="module")
def runs_dir(tiny_workflow):
    return tiny_workflow / "results" / "runs"


@pytest.mark.slow
def test_every_run_file_combines_in_one_call_with_its_own_settings(runs_dir):
    planned = {r.path: r for e in ex.plan(conftest.TINY_WORKFLOW).values() for r in e.runs}
    with adamgen.open_runs(str(runs_dir / "*" / "*.nc")) as runs:
        assert runs.sizes["run"] == len(planned) == 34
        assert isinstance(runs["test_error"].data, np.ndarray)  # read into memory
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
        # each run on its own probe epochs: nothing is NaN before a run's last probe
        for k in range(runs.sizes["run"]):
            path = str(runs["path"].values[k])
            with xr.open_dataset(path, engine="netcdf4") as one:
                mine = runs.isel(run=k)
                E = one.sizes["epoch"]
                assert mine["epoch"].values[:E].tolist() == one["epoch"].values.tolist()
                assert np.isnan(mine["epoch"].values[E:]).all()
                np.testing.assert_array_equal(mine["test_error"].values[:E],
                                              one["test_error"].values)
    # the same Dataset from a directory, and lazily with dask
    with adamgen.open_runs(runs_dir) as again, adamgen.open_runs(
            str(runs_dir / "*" / "*.nc"), lazy=True) as lazy:
        assert again.sizes == runs.sizes
        assert "dask" in type(lazy["test_error"].data).__module__
        np.testing.assert_array_equal(lazy["test_error"].values, again["test_error"].values)
        np.testing.assert_array_equal(lazy["epoch"].values, again["epoch"].values)


@pytest.mark.slow
def test_runs_that_form_a_grid_unfold_along_its_axes(runs_dir):
    files = sorted(str(runs_dir.parent.parent / r.path) for r in ex.plan(
        conftest.TINY_WORKFLOW)["tiny"].runs if r.coords["optimizer"] == "adam"
        and r.config.batch_size == 20)
    with adamgen.open_runs(files) as grid:
        assert dict(grid.sizes) == {"weight_decay": 2, "seed": 2, "probe": grid.sizes["probe"],
                                    "j": 2, "r": 4}
        last = final(grid)["test_error"]
    with xr.open_dataset(files[0], engine="netcdf4") as one:
        point = {"weight_decay": one["weight_decay"].item(), "seed": one["seed"].item()}
        assert last.sel(point).item() == one["test_error"].values[-1]
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
        "summary": results / "test" / "tiny" / "summary.nc",
        "phase summary": results / "test" / "tiny_e7" / "summary.nc",
        "data file": next((results / "data").rglob("seed0.nc")),
        "convex summary": results / "test" / "tiny_convex" / "summary.nc",
        "convex fit": next((results / "test" / "tiny_convex" / "convex").glob("seed0-*.nc")),
    }
    for what, path in files.items():
        copy = tmp_path / f"{what.replace(' ', '_')}.nc"
        shutil.copy(path, copy)
        assert _cf_failures(copy) == [], what


@pytest.mark.slow
def test_the_figure_example_reproduces_zou_fig2_from_the_files(tiny_workflow, tmp_path,
                                                               monkeypatch):
    """docs/examples/zou_fig2.py on the tiny config's full-batch runs: unbroken curves (every
    plotted point a number: the runs are probed at the same epochs), seed means that are the
    files' own, and the figure it writes."""
    out = tmp_path / "fig2.png"
    config = ROOT / "config" / "tiny.yaml"
    script = ROOT / "docs" / "examples" / "zou_fig2.py"
    proc = subprocess.run([sys.executable, str(script), "tiny", str(config), str(out), "1e-4"],
                          capture_output=True, text=True, cwd=tiny_workflow)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert out.stat().st_size > 10_000
    monkeypatch.chdir(tiny_workflow)
    monkeypatch.syspath_prepend(str(script.parent))
    import zou_fig2

    curves = zou_fig2.curves("tiny", str(config), 1e-4)
    for name, (epoch, feature, noise) in curves.items():
        assert len(epoch) > 5 and np.isfinite(feature).all() and np.isfinite(noise).all(), name
        files = [r.path for r in ex.plan(conftest.TINY_WORKFLOW)["tiny"].runs
                 if r.coords["optimizer"] == name and r.config.batch_size == 20
                 and r.config.optimizer["weight_decay"] == 1e-4]
        means = []
        for f in files:
            with xr.open_dataset(f, engine="netcdf4") as one:
                assert one["epoch"].values.tolist() == epoch.tolist()
                means.append(one["feature_learning"].sel(j=1).max("r").values)
        np.testing.assert_allclose(feature, np.mean(means, axis=0), rtol=1e-6)


def test_open_runs_names_what_is_missing(tmp_path):
    with pytest.raises(OSError, match="no run files match"):
        adamgen.open_runs(str(tmp_path / "*.nc"))
    with pytest.raises(OSError, match="nope.nc' does not exist"):
        adamgen.open_runs([str(tmp_path / "nope.nc")])
    with pytest.raises(OSError, match=r"no run files \(\*.nc\) under the directory"):
        adamgen.open_runs(tmp_path)


def test_a_directory_a_glob_matches_is_opened_as_a_directory(tmp_path):
    """A directory named b.nc that a glob matched was reported as a run file that "does not
    exist"; it is read as the directory it is."""
    (tmp_path / "b.nc").mkdir()
    with pytest.raises(OSError, match=r"no run files \(\*.nc\) under the directory '.*b\.nc'"):
        adamgen.open_runs(str(tmp_path / "b*.nc"))
    _run_file(tmp_path / "b.nc" / "r.nc", [0, 10], [0.5, 0.1], seed=3, lr=1e-3)
    with adamgen.open_runs(str(tmp_path / "*.nc")) as runs:
        assert runs.sizes["run"] == 1 and runs["seed"].values.tolist() == [3]


def test_lazy_keeps_integer_settings_over_mixed_and_old_files(tmp_path):
    """Opened lazily, runs of which one lacks a setting (GD has no beta1) or an old file
    without the config attribute turned `seed` and `batch_size` into floats; the lazy path
    reads the settings as the eager one does."""
    _run_file(tmp_path / "a.nc", [0, 10], [0.5, 0.1], seed=0, batch_size=20, lr=1e-3,
              beta1=0.9)
    _run_file(tmp_path / "b.nc", [0, 10], [0.5, 0.2], seed=1, batch_size=2, lr=1e-3)
    config = json.dumps({"seed": 2, "data": {"kind": "patch", "n": 20}, "model": {},
                         "optimizer": {"name": "gd", "lr": 0.5},
                         "train": {"batch_size": 20, "epochs": 10, "dtype": "float64"}})
    ds = xr.Dataset({"test_error": ("epoch", [0.5, 0.0])}, coords={"epoch": [0, 10]},
                    attrs={"title": "adamgen run: probe trajectory of one training run",
                           "config": config})
    ds.to_netcdf(tmp_path / "c.nc", engine="netcdf4")
    for lazy in (False, True):
        with adamgen.open_runs(sorted(map(str, tmp_path.glob("*.nc"))), lazy=lazy) as runs:
            for name in ("seed", "batch_size"):
                assert runs[name].dtype == np.int64, (lazy, name, runs[name].dtype)
            assert runs["seed"].values.tolist() == [0, 1, 2]
            assert np.isnan(runs["beta1"].values[1:]).all()
            assert runs["optimizer"].values.tolist() == ["adam", "adam", "gd"]


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
    for lazy in (False, True, False):  # opened again and again: every file is closed
        with adamgen.open_runs([str(tmp_path / "a.nc"), str(tmp_path / "b.nc")], lazy=lazy) \
                as runs:
            assert runs.sizes["run"] == 2 and runs.sizes["probe"] == 3
            assert at_epoch(runs, 10)["rmed"].sel(run=0).values.tolist() == [3.0, 4.0]
            assert np.isnan(runs["rmed"].sel(run=1)).all()
            assert np.isnan(at_epoch(runs, 20)["test_error"].sel(run=0))
            assert at_epoch(runs, 20)["test_error"].sel(run=1) == 0.0
            assert np.isnan(runs["beta1"].values[1]) and np.isnan(runs["data_snr"].values[0])
            assert runs["optimizer"].values.tolist() == ["adam", "gd"]
            assert final(runs)["test_error"].values.tolist() == [0.1, 0.0]
            assert final(runs)["epoch"].values.tolist() == [10, 20]


def _run_file(path, epochs, error, **settings):
    ds = xr.Dataset({"test_error": ("epoch", error)},
                    coords={"epoch": epochs, "optimizer": "adam", **settings},
                    attrs={"title": "adamgen run: probe trajectory of one training run"})
    ds.to_netcdf(path, engine="netcdf4")


def test_runs_keep_their_own_probe_epochs(tmp_path):
    """What went wrong before: every run was put on the union of the runs' epochs, so a run
    was NaN wherever another run was probed and it was not; the last epoch of the union was NaN
    for every shorter run."""
    _run_file(tmp_path / "short.nc", [0, 1, 3, 10], [0.5, 0.4, 0.3, 0.2], seed=0, lr=1e-3)
    _run_file(tmp_path / "long.nc", [0, 2, 30, 300], [0.5, 0.1, 0.05, 0.0], seed=1, lr=2e-3)
    with adamgen.open_runs(tmp_path) as runs:  # a directory: its files in name order
        assert [Path(p).name for p in runs["path"].values] == ["long.nc", "short.nc"]
        assert runs.sizes == {"run": 2, "probe": 4}
        assert np.isfinite(runs["test_error"].values).all()  # no hole
        assert final(runs)["test_error"].values.tolist() == [0.0, 0.2]
        assert np.isnan(at_epoch(runs, 2)["test_error"].values[1])  # never probed there
        with pytest.raises(ValueError, match="probed at different epochs"):
            shared_epochs(runs)
        one = shared_epochs(runs.isel(run=[0]))
        assert one["epoch"].values.tolist() == [0, 2, 30, 300]
        assert one["test_error"].sel(epoch=30).item() == 0.05
    # two runs that differ in their seed alone form a grid: `seed` is their dimension
    _run_file(tmp_path / "short.nc", [0, 1, 3, 10], [0.5, 0.4, 0.3, 0.2], seed=2, lr=2e-3)
    with adamgen.open_runs(tmp_path) as runs:
        assert runs.sizes == {"seed": 2, "probe": 4} and runs["seed"].values.tolist() == [1, 2]
        assert final(runs)["test_error"].sel(seed=2).item() == 0.2


@pytest.mark.slow
def test_an_experiment_opens_by_name_from_the_plan(tiny_workflow, monkeypatch):
    monkeypatch.chdir(tiny_workflow)
    config = ROOT / "config" / "tiny.yaml"
    with adamgen.open_runs(experiment="tiny_e6", config=config) as runs:
        planned = ex.plan(conftest.TINY_WORKFLOW)["tiny_e6"].runs
        assert sorted(runs["path"].values.tolist()) == sorted(r.path for r in planned)
        assert "rmed" in runs  # its hessian probes
    with pytest.raises(OSError, match="'tiny_e9' is not an experiment of"):
        adamgen.open_runs(experiment="tiny_e9", config=config)


@pytest.mark.slow
def test_an_experiment_opens_from_anywhere_given_its_root(tiny_workflow, tmp_path,
                                                          monkeypatch):
    """Outside the workflow's folder (a notebook elsewhere), `root` names it, and a relative
    config is looked for under it; a config found nowhere is one message naming both."""
    root = tmp_path / "checkout"
    (root / "config").mkdir(parents=True)
    (root / "config" / "tiny.yaml").write_text((ROOT / "config" / "tiny.yaml").read_text())
    (root / "results").symlink_to(tiny_workflow / "results")
    monkeypatch.chdir(tmp_path)
    with adamgen.open_runs(experiment="tiny_e6", config="config/tiny.yaml", root=root) as runs:
        assert runs["path"].size == len(ex.plan(conftest.TINY_WORKFLOW)["tiny_e6"].runs)
    with pytest.raises(OSError, match=r"workflow config 'config/nope.yaml' not found \(here"):
        adamgen.open_runs(experiment="tiny_e6", config="config/nope.yaml", root=root)


def _readme_analysis_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Analysis after the run", 1)[1].split("\n## ", 1)[0]
    return [b for b in section.split("```python\n")[1:]]


@pytest.mark.slow
def test_the_readme_analysis_examples_run_and_print_the_files_numbers(tiny_workflow,
                                                                      monkeypatch, capsys):
    """The README's analysis section, run on the tiny config (its experiment `tiny` stands
    for tang_e4 and zou_e1: the same kinds of grid at a smaller size); every number it prints
    is computed again here from the run files themselves."""
    import contextlib
    import io

    config = ROOT / "config" / "tiny.yaml"
    swaps = {'"results/tang_e4/summary.nc"': '"results/test/tiny/summary.nc"',
             "weight_decay=1e-5": "weight_decay=1e-4",
             'experiment="zou_e1"': f'experiment="tiny", config="{config}"',
             "at_epoch(runs, 100)": "at_epoch(runs, 10)"}
    monkeypatch.chdir(tiny_workflow)
    printed = []
    for block in _readme_analysis_blocks():
        code = block.split("```", 1)[0]
        for old, new in swaps.items():
            code = code.replace(old, new)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(code, "README.md", "exec"), {})
        printed += out.getvalue().splitlines()
    assert all(old in "".join(_readme_analysis_blocks()) for old in swaps)
    runs = [(r, xr.open_dataset(r.path, engine="netcdf4").load())
            for r in ex.plan(conftest.TINY_WORKFLOW)["tiny"].runs]

    def mean_final(keep, variable="test_error"):
        return np.mean([ds[variable].values[-1] for r, ds in runs if keep(r)])

    # 1. the summary: Adam's final test error at λ = 1e-4, at each batch size of the grid
    adam_wd = [mean_final(lambda r, b=b: r.coords["optimizer"] == "adam"
                          and r.config.optimizer["weight_decay"] == 1e-4
                          and r.config.batch_size == b) for b in (20, 5)]
    shown = np.array(printed[0].strip("[]").split(), dtype=float)
    np.testing.assert_allclose(sorted(shown), sorted(adam_wd), rtol=1e-6)
    # 2. runs and probes
    assert printed[1].split() == [str(len(runs)), str(max(ds.sizes["epoch"] for _, ds in runs))]
    # 3. each optimizer's mean final test error, each run at its own last epoch
    names = sorted({r.coords["optimizer"] for r, _ in runs})
    expected = [mean_final(lambda r, o=o: r.coords["optimizer"] == o) for o in names]
    np.testing.assert_allclose(np.array(printed[2].strip("[]").split(), dtype=float), expected,
                               rtol=1e-6)
    # 4. full-batch Adam's feature learning at the end, mean over its runs
    feature = [ds["feature_learning"].sel(j=1).max("r").values[-1] for r, ds in runs
               if r.coords["optimizer"] == "adam" and r.config.batch_size == 20]
    assert float(printed[3]) == pytest.approx(np.mean(feature), rel=1e-6)
    # 5. every run at epoch 10: its own value there (each run here was probed at 10)
    at10 = np.array(" ".join(printed[4:]).replace("[", "").replace("]", "").split(),
                    dtype=float)  # numpy wraps a long array over lines
    assert len(at10) == len(runs) and np.isfinite(at10).all()
    assert sorted(at10) == pytest.approx(sorted(
        float(ds["test_error"].sel(epoch=10)) for _, ds in runs), rel=1e-6)

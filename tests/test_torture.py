"""Faults and bad input, each the way a user meets it: the run, the file or the message must
never lie, and finished results are never lost.

Numbered as in the reliability issue: (1) non-finite runs, (2) corrupted data files, (3) run
files at the wrong path, (4) tracebacks instead of one line, (5) validation gaps, (6) litter,
(7) thread-count dependence, (8) formatting of huge values and of diverged claims.
"""

import copy
import os
import shutil
import socket
import subprocess
import sys

import conftest
import numpy as np
import pytest
import torch
import xarray as xr
import yaml

from adamgen import aggregate, claims, jobs, planner, runfile, tables
from adamgen.claims.metrics import _first_above
from adamgen.cli import main
from adamgen.config import parse_run_config
from adamgen.models.losses import example_errors
from adamgen.trainer import train

ROOT = conftest.ROOT
TINY = conftest.TINY_WORKFLOW


@pytest.fixture
def config_file(tmp_path, tiny_raw):
    def write(text: str | None = None, **changes):
        path = tmp_path / "run.yaml"
        path.write_text(text if text is not None else yaml.safe_dump(tiny_raw(**changes)))
        return path

    return write


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("adamgen: error: "), err
    return err[0]


# --- (1) a run whose outputs are infinite is diverged, never correct --------------------------

def test_a_nan_margin_counts_as_an_error():
    F = torch.tensor([[[np.inf, np.inf], [1.0, 0.0], [np.nan, 0.0], [0.0, 0.0]]])
    y = torch.tensor([1, 1, 1, 1])
    assert example_errors(F, y).tolist() == [[1.0, 0.0, 1.0, 1.0]]


@pytest.mark.parametrize("engine", conftest.CNN_ENGINES)
def test_weights_that_overflow_at_the_last_step_mark_the_run_diverged(tiny, engine):
    # the case: coupled decay at this η multiplies W by 1 − ηλ = −99 every step
    run = tiny(optimizer={"name": "gd", "lr": 1e6, "weight_decay": 1e-4},
               train={"epochs": 3, "dtype": "float32", "engine": engine})
    (result,) = train([run])
    assert result.status == "diverged" and result.diverged_epoch is not None
    last = {k: v[-1] for k, v in result.probes.items()}
    assert np.isnan(last["train_error"]) and np.isnan(last["test_error"])


def _summary_with(tmp_path, tiny, statuses: dict) -> xr.Dataset:
    """A summary of two seeds of one grid point, from real run files."""
    entries = []
    for seed, lr in statuses.items():
        run = tiny(seed=seed, optimizer={"name": "gd", "lr": lr, "weight_decay": 1e-4},
                   train={"epochs": 3, "dtype": "float32"})
        (result,) = train([run])
        path = str(tmp_path / f"seed{seed}.nc")
        runfile.save(result, path)
        entries.append({"path": path, "coords": {"optimizer": "gd", "seed": seed},
                        "hash": planner.run_hash(run)})
    return aggregate.summarize({"name": "e", "axes": {"optimizer": ["gd"],
                                                      "seed": list(statuses)}, "runs": entries})


def test_a_claim_over_a_diverged_point_is_inconclusive_never_holds(tmp_path, tiny):
    summary = _summary_with(tmp_path, tiny, {0: 1e6, 1: 0.5})
    assert summary["status"].values.tolist() == [["diverged", "completed"]]
    claim = claims.parse_claims({"claims": [{
        "id": "c", "claim": "GD generalises", "kind": "paper", "source": "t", "experiment": "e",
        "where": {"optimizer": "gd"}, "metric": "test_error", "rule": "o1"}]})
    (row,) = claims.evaluate(claim, {"e": summary})
    assert row.verdict == "inconclusive" and row.reason.startswith("diverged: 1 of 2 seeds")
    md = tables.write(summary, tmp_path / "t.csv", tmp_path / "t.md", tmp_path / "t.tex")
    assert md[0]["diverged"] == 1
    assert "1/2 (1 diverged)" in (tmp_path / "t.md").read_text()


def test_a_boundary_scan_stops_at_a_diverged_run():
    status = xr.DataArray([["completed", "diverged", "completed"]], dims=("seed", "weight_decay"),
                          coords={"weight_decay": [0.1, 1.0, 10.0]})
    error = xr.DataArray([[0.0, np.nan, 0.9]], dims=status.dims, coords=status.coords)
    assert np.isnan(_first_above(error, status, "weight_decay", 0.25).item())
    status[0, 1] = ""  # not run at all: skipped
    assert _first_above(error, status, "weight_decay", 0.25).item() == 10.0


# --- (2, 3) the workflow keeps finished work and checks what it reads ------------------------

def _numbers(path) -> xr.Dataset:
    """A run file's numbers and settings, without the timing of the process that wrote it."""
    with xr.open_dataset(path, engine="netcdf4") as ds:
        ds = ds.load()
    volatile = ("history", "wall_time_s", "train_time_s", "steps_per_second", "host")
    ds.attrs = {k: v for k, v in ds.attrs.items() if k not in volatile}
    return ds


def _results(workdir) -> dict:
    return {str(p.relative_to(workdir)): p.read_bytes() for p in sorted(
        list((workdir / "results" / "runs").rglob("*.nc"))
        + list((workdir / "results").glob("**/convex/*.nc")))}


@pytest.mark.slow
def test_a_corrupted_data_file_costs_no_finished_run(tiny_workflow, tmp_path, run_workflow):
    workdir = tmp_path / "copy"
    shutil.copytree(tiny_workflow, workdir, symlinks=True)
    data = sorted((workdir / "results" / "data").glob("patch-*/seed0.nc"))[0]  # tiny's
    os.truncate(data, 5000)
    # a run of that data set is missing, so its job must read the damaged file
    run = sorted((workdir / "results" / "runs" / "adam").glob("B20-*seed0*.nc"))[0]
    reference = _numbers(run)
    run.unlink()
    before = _results(workdir)
    proc = run_workflow(workdir, TINY, "--cores", "2")
    assert proc.returncode != 0
    assert f"adamgen: error: data file '{data.relative_to(workdir)}' is not a readable" \
           in proc.stderr
    assert _results(workdir) == before  # every other run file and convex fit, byte for byte
    # the natural fix: the data file is drawn again and the missing run trained from it
    data.unlink()
    proc = run_workflow(workdir, TINY, "--cores", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert data.exists()
    xr.testing.assert_identical(_numbers(run), reference)
    assert {k: v for k, v in _results(workdir).items() if k in before} == before
    assert "Nothing to be done" in run_workflow(workdir, TINY, "--dry-run").stdout


@pytest.mark.slow
def test_a_run_file_at_another_runs_path_is_refused(tiny_workflow, tmp_path, run_workflow):
    workdir = tmp_path / "copy"
    shutil.copytree(tiny_workflow, workdir, symlinks=True)
    adam = sorted((workdir / "results" / "runs" / "adam").glob("*.nc"))[0]
    gd = sorted((workdir / "results" / "runs" / "gd").glob("*.nc"))[0]
    shutil.copy(adam, gd)
    proc = run_workflow(workdir, TINY, "--cores", "2")
    assert proc.returncode != 0
    assert f"run file '{gd.relative_to(workdir)}' holds the run adam/" in proc.stderr


# --- (4) one line instead of a traceback, before any training --------------------------------

def test_output_paths_are_checked_before_training(config_file, tmp_path, capsys):
    cfg = str(config_file())
    (tmp_path / "adir").mkdir()
    for out, fragment in [(str(tmp_path / "adir"), "is a directory"),
                          ("", "the output path is empty"),
                          ("/proc/x.nc", "cannot write '/proc/x.nc'")]:
        assert main(["train", cfg, "--out", out]) == 2
        assert fragment in one_error_line(capsys)


def test_a_full_disk_is_named_before_and_during_the_write(config_file, tmp_path, capsys,
                                                          monkeypatch):
    cfg, out = str(config_file()), tmp_path / "r.nc"
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage._replace(free=1000))
    assert main(["train", cfg, "--out", str(out)]) == 2
    assert "its file system has 1000 B free" in one_error_line(capsys)
    monkeypatch.undo()

    def full(self, *args, **kwargs):
        raise RuntimeError("NetCDF: HDF error")

    monkeypatch.setattr(xr.Dataset, "to_netcdf", full)
    assert main(["train", cfg, "--out", str(out)]) == 2
    *progress, line = capsys.readouterr().err.strip().splitlines()  # after training: the end
    assert not any("Traceback" in p for p in progress)
    assert f"cannot write '{out}': NetCDF: HDF error; its file system has" in line
    assert not out.exists() and not list(tmp_path.glob(".r.nc.tmp-*"))


def test_memory_is_estimated_before_anything_is_allocated(config_file, tmp_path, capsys):
    cfg, out = str(config_file()), str(tmp_path / "r.nc")
    assert main(["train", cfg, "--set", "data.d=1000000000", "--out", out]) == 2
    assert "needs about" in one_error_line(capsys)
    assert main(["data", cfg, "--set", "data.n_test=1000000000", "--out", out]) == 2
    line = one_error_line(capsys)
    assert "n_test = 1000000000 needs about 894.1 GiB of memory (test inputs 894.1 GiB)" in line
    assert not os.path.exists(out)


@pytest.mark.parametrize("text, fragment", [
    ("seed: 0\n".encode("utf-16"), "is not UTF-8 text"),
    (b"a: &a [*a]\n", "an alias (*name) refers to a node that contains it"),
    (b"seed: 0\nseed: 1\n", "line 2, column 1: not valid YAML: duplicate key 'seed' (first on "
                            "line 1)"),
], ids=["utf-16", "recursive-alias", "duplicate-key"])
def test_unreadable_configs_are_one_line(tmp_path, capsys, text, fragment):
    path = tmp_path / "c.yaml"
    path.write_bytes(text)
    assert main(["config", str(path)]) == 2
    assert fragment in one_error_line(capsys)


def test_a_run_file_without_a_variable_is_named(tiny, tmp_path):
    (result,) = train([tiny(train={"epochs": 2})])
    path = tmp_path / "r.nc"
    runfile.save(result, path)
    with xr.open_dataset(path, engine="netcdf4") as ds:
        ds.load().drop_vars("weight_norm").to_netcdf(tmp_path / "cut.nc", engine="netcdf4")
    with pytest.raises(Exception, match="cut.nc' lacks weight_norm"):
        runfile.load(tmp_path / "cut.nc")


# --- (5) every value is checked --------------------------------------------------------------

@pytest.mark.parametrize("key", ["optimizer.lr", "optimizer.weight_decay", "data.sigma_p",
                                 "model.c", "optimizer.eps"])
@pytest.mark.parametrize("value", [".inf", "-.inf", ".nan"])
def test_infinite_and_nan_numbers_are_refused(config_file, capsys, key, value):
    assert main(["config", str(config_file()), "--set", f"{key}={value}"]) == 2
    assert f"config key '{key}'" in one_error_line(capsys)


def test_an_infinite_weight_decay_in_a_grid_is_refused():
    config = copy.deepcopy(TINY)
    config["experiments"]["tiny"]["optimizers"]["adam"]["grid"]["weight_decay"] = [float("inf")]
    with pytest.raises(ValueError, match="'optimizer.weight_decay' = inf: must be a finite"):
        planner.plan(config)


@pytest.mark.parametrize("key, value", [("probes.linear_points", 10**9),
                                        ("probes.per_decade", 10**8)])
def test_probe_settings_are_bounded(tiny_raw, key, value):
    section, name = key.split(".")
    with pytest.raises(ValueError, match=f"'{key}' = {value}: must be in"):
        parse_run_config(tiny_raw(**{section: {name: value}}))


def test_an_experiment_and_a_convex_entry_may_not_share_a_name():
    config = copy.deepcopy(TINY)
    config["convex"] = {"tiny": config["convex"]["tiny_convex"]}
    with pytest.raises(ValueError, match="'convex.tiny': has the name of an experiment"):
        planner.plan_convex(config)


@pytest.mark.slow
def test_a_workflow_config_with_a_duplicate_key_fails_before_any_job(tmp_path):
    text = yaml.safe_dump(TINY).replace("claims:", "runs_per_job: 1\nruns_per_job: 2\nclaims:", 1)
    (tmp_path / "config.yaml").write_text(text)
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"),
         "--directory", str(tmp_path), "--configfile", str(tmp_path / "config.yaml"),
         "--cores", "1"], capture_output=True, text=True,
        env={**os.environ, "XDG_CACHE_HOME": str(tmp_path / ".cache")})
    assert proc.returncode != 0
    assert "duplicate key 'runs_per_job'" in proc.stderr
    assert not (tmp_path / "results").exists()


# --- (6) nothing is left behind --------------------------------------------------------------

def test_temporary_files_of_killed_writers_are_removed(tmp_path):
    from adamgen.resources import remove_stale_temps, temp_name

    path = tmp_path / "run.nc"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    stale = path.with_name(f".run.nc.tmp-{socket.gethostname()}-{dead}")
    old_style = path.with_name(f".run.nc.tmp-{dead}")
    live = temp_name(path)  # this process: still writing
    for p in (stale, old_style, live):
        p.write_text("half")
    assert sorted(remove_stale_temps(path)) == sorted([stale, old_style])
    assert live.exists()


def test_a_killed_write_leaves_nothing_for_the_next_one(tiny, tmp_path):
    (result,) = train([tiny(train={"epochs": 2})])
    path = tmp_path / "r.nc"
    code = ("import os, sys, xarray as xr\n"
            "from adamgen import _io\n"
            "with _io.atomic_path(sys.argv[1]) as tmp:\n"
            "    open(tmp, 'w').write('half')\n"
            "    os._exit(9)\n")
    subprocess.run([sys.executable, "-c", code, str(path)])
    assert len(list(tmp_path.glob(".r.nc.tmp-*"))) == 1
    runfile.save(result, path)
    assert [p.name for p in tmp_path.iterdir()] == ["r.nc"]


# --- (7) the bits do not depend on the thread count ------------------------------------------

def _paper_size_runs(tiny, engine: str, dtype: str, count: int) -> list:
    """Runs of the paper's model size (W has 2·20·1000 = 40 000 entries, more than torch sums
    in one piece), `count` of them in lockstep."""
    sizes = {"data": {"d": 1000, "n": 20, "s": 100, "sigma_p": 0.1, "n_test": 100},
             "model": {"m": 20, "sigma_0": 0.01}}
    return [tiny(seed=seed, optimizer={"name": "adam", "lr": 1e-2},
                 train={"engine": engine, "dtype": dtype, "epochs": 5, "batch_size": 10},
                 probes={"store_weights": True}, **sizes) for seed in range(count)]


@pytest.mark.parametrize("count", [1, 3], ids=["lone run", "three runs"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("engine", conftest.CNN_ENGINES)
def test_every_probe_is_the_same_for_one_and_two_threads(tiny, engine, dtype, count):
    """The same runs trained with a job's threads at 1 and at 2 give the same bits: every probe
    and the final weights.

    Why this cannot depend on the CPU or the BLAS the test meets: torch computes on one
    thread inside training whatever the job's threads (`trainer.one_torch_thread`; the next
    test checks it at every torch call), so no reduction is split between threads, whatever
    MKL or torch would choose on this CPU; the fast engine's kernels split their work by run
    and, for one run, into two half-batches added in a fixed order, never one sum between
    threads. On a 2-core Intel Xeon the torch engine's probes and weights, and the fast
    engine's noise memorization, differed in their last bits between 1 and 2 threads before
    torch was held to one thread."""
    import numba

    runs = _paper_size_runs(tiny, engine, dtype, count)
    out = {}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        out[threads] = train(runs)
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    for a, b in zip(out[1], out[2], strict=True):
        for k in a.probes:
            np.testing.assert_array_equal(a.probes[k], b.probes[k], err_msg=k)
        np.testing.assert_array_equal(a.weights_final, b.weights_final)


@pytest.mark.parametrize("engine", conftest.CNN_ENGINES)
def test_torch_computes_on_one_thread_inside_training(tiny, engine):
    """Every torch call made while a run trains on the CPU (the step, the probes, the
    evaluation) sees one torch thread, though the job was given two: checked at each call
    (torch's function mode sees them all), so on any CPU and BLAS no torch reduction of a
    run is split between threads. The job's own setting is restored afterwards. (numba's
    OpenMP layer resets the shared OpenMP runtime to its own thread count at every kernel
    launch: the fast engine's probes ran on two threads until each launch gave it back.)"""
    from torch.overrides import TorchFunctionMode

    class Threads(TorchFunctionMode):
        seen: set

        def __torch_function__(self, func, types, args=(), kwargs=None):
            if func is not torch.device:  # naming the device computes nothing
                self.seen.add(torch.get_num_threads())
            return func(*args, **(kwargs or {}))

    torch.set_num_threads(2)
    mode = Threads()
    mode.seen = set()
    with mode:
        train(_paper_size_runs(tiny, engine, "float32", 2))
    assert mode.seen == {1}
    assert torch.get_num_threads() == 2


# --- (8) messages and tables read right at any magnitude -------------------------------------

def test_huge_and_tiny_values_are_printed_in_exponent_form():
    assert tables.number(1.234e21) == "1.234e+21"
    assert tables.number(0.25) == "0.2500" and tables.number(3e-5) == "3.000e-05"


def test_the_log_says_a_run_diverged():
    class Result:
        status, diverged_epoch = "diverged", 3
        timing = {"wall_time_s": 1.0, "steps_per_second": 3.0}

    assert jobs.outcome(Result()).startswith("DIVERGED at epoch 3")


# --- kill -9 anywhere, then a plain rerun: every run file present and identical -------------

@pytest.mark.slow
def test_kill_9_at_random_points_then_a_plain_rerun_loses_nothing(tiny_workflow, tmp_path,
                                                                   run_workflow):
    """Kill Snakemake and its jobs (SIGKILL to the process group) at random points, as a
    crash or an OOM kill would, then rerun with nothing but the default profile.

    ADAMGEN_KILLS sets the number of kills (default 3; the reliability issue's 20 take about
    six minutes). The undisturbed reference is the session's tiny workflow: a run's file name
    depends on its own settings only, so the subset here has the same paths.
    """
    import random
    import signal
    import time

    config = copy.deepcopy(TINY)
    config["experiments"] = {"tiny": config["experiments"]["tiny"]}
    config["experiments"]["tiny"]["grid"]["seed"] = [0]  # 7 runs: a quicker round
    config["convex"]["tiny_convex"]["seeds"] = [0]
    workdir = tmp_path / "killed"
    workdir.mkdir()
    rng = random.Random(int(os.environ.get("ADAMGEN_KILL_SEED", "0")))
    kills = int(os.environ.get("ADAMGEN_KILLS", "3"))
    seen = []
    for _ in range(kills):
        proc = run_workflow(workdir, config, "--cores", "2", background=True)
        time.sleep(rng.uniform(0.5, 8.0))  # startup takes ~3 s: kills land in every phase
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        seen.append(len(list((workdir / "results" / "runs").rglob("*.nc"))))
    proc = run_workflow(workdir, config, "--cores", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = sorted((workdir / "results" / "runs").rglob("*.nc"))
    fits = sorted((workdir / "results" / "test" / "tiny_convex" / "convex").glob("*.nc"))
    assert len(runs) == 7 and len(fits) == 1
    for path in runs + fits:
        reference = tiny_workflow / path.relative_to(workdir)
        xr.testing.assert_identical(_numbers(path), _numbers(reference))
    assert not list(workdir.rglob(".*.tmp-*"))
    print(f"\n{kills} kills (run files present at each: {seen}); the rerun restored all 7 runs "
          "and the convex fit, identical to the undisturbed run")


# --- two Snakemake processes in one directory: each its own lock, removed only when it dies --

def test_a_dead_processs_lock_is_removed_and_a_live_ones_is_kept(tmp_path):
    """The reliability issue's case: A runs, B (another config, no shared files) starts in
    the same directory and overwrote the one owner record with its pid; B is killed; C
    (A's config again) removed every lock as B's and trained A's running job a second
    time. Each process now records its own lock files; C removes B's and keeps A's, so
    Snakemake stops C with "Directory cannot be locked" instead."""
    from adamgen import locks

    lockdir = tmp_path / ".snakemake" / "locks"
    lockdir.mkdir(parents=True)
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = socket.gethostname()
    try:
        for k, pid in ((0, alive.pid), (1, dead.pid)):
            files = [lockdir / f"{k}.input.lock", lockdir / f"{k}.output.lock"]
            for f in files:
                f.write_text(f"results/runs/{k}.nc\n")
            record = [f"{host} {pid}"] + [f"{f.stat().st_ino} {f.name}" for f in files]
            (lockdir / f"{locks.OWNER}-{host}-{pid}").write_text("\n".join(record) + "\n")
        done = locks.clear_stale_locks(lockdir)
        assert [line.split(" (")[0] for line in done] == [
            f"removed the lock left in {lockdir} by Snakemake process {dead.pid} on this host, "
            "which no longer runs"]
        assert sorted(p.name for p in lockdir.iterdir()) == [
            "0.input.lock", "0.output.lock", f"{locks.OWNER}-{host}-{alive.pid}"]
        # a lock file of a dead process's name that is now another file is not its
        record = lockdir / f"{locks.OWNER}-{host}-{dead.pid}"
        (lockdir / "1.input.lock").write_text("another process's\n")
        record.write_text(f"{host} {dead.pid}\n1 1.input.lock\n")
        locks.clear_stale_locks(lockdir)
        assert (lockdir / "1.input.lock").exists() and not record.exists()
    finally:
        alive.kill()
        alive.wait()
    assert locks.clear_stale_locks(lockdir) and not (lockdir / "0.input.lock").exists()


# --- configs that would never return are refused at once, with their size ------------------

def test_a_yaml_alias_bomb_is_refused_at_once(tmp_path):
    """Nine levels of ten aliases each stand for 10^10 values; the config reader walked them
    all (without a message, for hours). Each node is now visited once."""
    import time

    from adamgen.config import load_yaml
    from adamgen.errors import DataFileError

    lines = ["a0: &a0 [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]"]
    lines += [f"a{k}: &a{k} [" + ", ".join([f"*a{k - 1}"] * 10) + "]" for k in range(1, 10)]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\nexperiments: {}\n")
    start = time.perf_counter()
    with pytest.raises(DataFileError, match=r"its aliases \(\*name\) expand to 12,345,679,012 "
                                            r"values, more than the 1,000,000"):
        load_yaml(path)
    assert time.perf_counter() - start < 1
    shared = tmp_path / "shared.yaml"  # aliases that repeat a node a few times are fine
    shared.write_text("base: &b {d: 1000, n: 200}\ne1: {base: *b}\ne2: {base: *b}\n")
    assert load_yaml(shared)["e2"]["base"]["d"] == 1000


def test_a_grid_too_large_to_plan_is_refused_with_its_count():
    """A grid of 10^7 runs planned for about 45 minutes and more than 10 GB without a word; the
    planner counts a config's runs before expanding them and stops at max_runs (stated,
    overridable)."""
    import time

    from adamgen.errors import ConfigError

    config = copy.deepcopy(TINY)
    grid = config["experiments"]["tiny"]["grid"]
    grid["seed"] = list(range(10_000))
    grid["model.sigma_0"] = [0.01 * k for k in range(1, 101)]
    start = time.perf_counter()
    with pytest.raises(ConfigError) as err:
        planner.plan(config)
    assert time.perf_counter() - start < 1
    assert str(err.value).startswith("config key 'max_runs' = 100000: the config's grids hold "
                                     "7,000,020 runs ('tiny' 7,000,000), more than max_runs")
    small = copy.deepcopy(TINY)
    small["max_runs"] = 10
    with pytest.raises(ConfigError, match="holds? 3[0-9] runs|hold 3[0-9] runs"):
        planner.plan(small)
    small["max_runs"] = 100
    assert planner.plan(small)


@pytest.mark.parametrize("name, message", [
    ("", "config key 'name' = '': is empty: leave the key out"),
    ("tiny", "config key 'name' = 'tiny': is also an experiment of the config, whose files "
             "would go to results/tiny/tiny/"),
])
def test_a_config_name_that_is_empty_or_an_experiment_is_refused(name, message):
    """`name: ""` wrote into results/ itself and a name equal to an experiment's wrote
    results/e/e/."""
    from adamgen.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        planner.outputs({**TINY, "name": name})
    assert str(err.value).startswith(message)
    assert planner.outputs({k: v for k, v in TINY.items() if k != "name"}) == "results"

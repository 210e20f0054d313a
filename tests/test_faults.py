"""The second fault-injection pass: what a new user met on the newer parts (checkpoints, image
data, the GPU overlay, `every_run`, open_runs, reruns), each case reproduced and held.

Numbered as in the reliability issue: (1) `every_run` merging grid arms, (2) a bit-flipped
checkpoint, (3) a foreign NetCDF among the run files, (4) a full disk under a checkpoint,
(5) damaged CIFAR batches, (6) the GPU overlay on a machine without a GPU, (7) a repeated run
in open_runs, (8) the small ones: a checkpoint path that is a directory, the wall time after a
resume, a symlink loop among the CIFAR files, a changed checkpoint interval, a touched script.
"""

import copy
import errno
import logging
import os
import pickle
import re
import signal
import subprocess
import sys
import time

import conftest
import numpy as np
import pytest
import torch
import xarray as xr
import yaml

from adamgen import aggregate, jobs, open_runs, planner, runfile
from adamgen import checkpoint as checkpoints
from adamgen.config import parse_run_config
from adamgen.data import images
from adamgen.errors import ConfigError, DataFileError
from adamgen.trainer import train

ROOT = conftest.ROOT
TINY = conftest.TINY_WORKFLOW


@pytest.fixture
def log_lines(caplog):
    caplog.set_level(logging.INFO, logger="adamgen")
    logger = logging.getLogger("adamgen")
    logger.addHandler(caplog.handler)
    yield caplog
    logger.removeHandler(caplog.handler)


class Killed(Exception):
    pass


def _killed_midway(monkeypatch, runs, saved, after_epochs):
    """Train `runs` with checkpoints until the engine has advanced `after_epochs` epochs, then
    die as a killed job would (the checkpoint of the last interval stays)."""
    from adamgen.engines import choose

    cls = choose(runs[0])[0].program()
    advance = cls.advance

    def dies(self, epoch0, perms, epochs):
        if epoch0 >= after_epochs:
            raise Killed
        return advance(self, epoch0, perms, epochs)

    monkeypatch.setattr(cls, "advance", dies)
    with pytest.raises(Killed):
        train(runs, checkpoint=saved)
    monkeypatch.setattr(cls, "advance", advance)
    assert saved.exists()


# --- (1) every_run may not merge grid arms; a summary never folds two runs into one cell -----

def _arms(every_run: dict) -> dict:
    return {"every_run": every_run, "experiments": {"arms": {
        "base": copy.deepcopy(TINY["experiments"]["tiny"]["base"]),
        "grid": {"seed": [0, 1]},
        "optimizers": {"adam": {"optimizer": {"lr": 1.0e-3}},
                       "gd": {"optimizer": {"lr": 0.5}}}}}}


@pytest.mark.parametrize("every_run, key", [
    ({"optimizer": {"name": "sgd"}}, "every_run.optimizer.name"),
    ({"seed": 3}, "every_run.seed"),
])
def test_every_run_may_not_set_what_tells_grid_points_apart(every_run, key):
    """The issue's case: arms adam (lr 1e-3) and gd (lr 0.5) with every_run setting the
    optimizer to sgd gave four runs named sgd, and the summary kept only the lr = 0.5 ones."""
    with pytest.raises(ConfigError, match=rf"'{key}'.*tells the grid points of experiment "
                                          "'arms' apart"):
        planner.plan(_arms(every_run))
    config = _arms({"optimizer": {"lr": 0.01}, "train": {"device": "cpu"}})
    config["experiments"]["arms"]["grid"]["lr"] = [0.01, 0.02]
    with pytest.raises(ConfigError, match="'every_run.optimizer.lr'.*the grid axis 'lr'"):
        planner.plan(config)
    assert planner.plan(_arms({"train": {"device": "cpu"}}))  # how runs are carried out


def test_a_summary_refuses_two_runs_in_one_cell_naming_both(tiny, tmp_path):
    entries = []
    for lr in (1e-3, 0.5):
        run = tiny(optimizer={"name": "sgd", "lr": lr}, train={"epochs": 2})
        (result,) = train([run])
        path = str(tmp_path / f"lr{lr}.nc")
        runfile.save(result, path)
        entries.append({"path": path, "coords": {"optimizer": "sgd", "seed": 0},
                        "hash": planner.run_hash(run)})
    manifest = {"name": "arms", "axes": {"optimizer": ["sgd"], "seed": [0]}, "runs": entries}
    with pytest.raises(DataFileError, match=rf"run files '{entries[0]['path']}' and "
                                            rf"'{entries[1]['path']}' fall into one cell "
                                            r"\(optimizer=sgd, seed=0\) of experiment 'arms'"):
        aggregate.summarize(manifest)


# --- (2) a checkpoint carries a checksum of its contents --------------------------------------

def test_a_bit_flipped_checkpoint_is_refused(tiny, tmp_path, monkeypatch, log_lines):
    """The issue's case: one byte changed inside the pickled weights; torch.load took it, the
    job resumed and ended with train error 0.125 where the uninterrupted run has 0."""
    runs = [tiny(seed=s, optimizer={"name": "sgd", "lr": 0.5},
                 train={"epochs": 20, "checkpoint_every": 4, "batch_size": 10},
                 probes={"store_weights": True}) for s in (0, 1)]
    whole = train(runs)
    saved = tmp_path / "job.checkpoint"
    _killed_midway(monkeypatch, runs, saved, after_epochs=12)
    raw = bytearray(saved.read_bytes())
    raw[len(raw) // 2] ^= 0x10  # inside the payload, past the header
    saved.write_bytes(bytes(raw))
    resumed = train(runs, checkpoint=saved)
    assert f"checkpoint {saved} is damaged (its contents do not match their checksum); " \
           "starting from epoch 0" in log_lines.text
    assert "resumed from checkpoint" not in log_lines.text
    for a, b in zip(whole, resumed, strict=True):
        assert np.array_equal(a.weights_final, b.weights_final)


def test_a_checkpoint_of_another_format_or_other_runs_is_not_used(tiny, tmp_path, log_lines):
    saved = tmp_path / "job.checkpoint"
    run = tiny(train={"epochs": 10, "checkpoint_every": 2})
    torch.save({"runs": "anything"}, saved)  # what adamgen 0.1 wrote: no checksum
    train([run], checkpoint=saved)
    assert "is not an adamgen checkpoint of this version; starting from epoch 0" \
        in log_lines.text
    checkpoints.save(saved, {"runs": "other runs"})
    (result,) = train([run], checkpoint=saved)
    assert "belongs to other runs; starting from epoch 0" in log_lines.text
    assert result.status == "completed"


# --- (3) every reader checks that a file is the adamgen file it reads -------------------------

def test_open_runs_refuses_a_foreign_netcdf_naming_it(tiny, tmp_path):
    """The issue's case: a foreign.nc with test_error(time) and seed = 5 among two run files
    opened without a word and moved the mean final test error from 0.38 to 0.248."""
    for seed in (0, 1):
        (result,) = train([tiny(seed=seed, train={"epochs": 2})])
        runfile.save(result, tmp_path / f"run{seed}.nc")
    foreign = tmp_path / "foreign.nc"
    xr.Dataset({"test_error": ("time", [0.1, 0.0])}, attrs={"seed": 5}).to_netcdf(foreign)
    with pytest.raises(DataFileError, match=rf"run file '{foreign}' is not an adamgen run file "
                                            r"\(it has no title\)"):
        open_runs(str(tmp_path / "*.nc"))
    for reader, what in ((runfile.load, "run file"), (aggregate.load, "summary")):
        with pytest.raises(DataFileError, match=f"'{foreign}' is not an adamgen {what}"):
            reader(foreign)
    data = tmp_path / "run0.nc"  # a run file where a data file is expected
    with pytest.raises(DataFileError, match=f"data file '{data}' is not an adamgen data file "
                                            r"\(its title is 'adamgen run:"):
        __import__("adamgen.datafile", fromlist=["load"]).load(data)


# --- (4) a full disk under a checkpoint is one line; training goes on ------------------------

def test_a_full_disk_while_saving_a_checkpoint_is_one_line_and_training_goes_on(
        tiny, tmp_path, monkeypatch, log_lines):
    """The issue's case: a raw `RuntimeError: [enforce fail at inline_container.cc:672] .
    unexpected pos 64 vs 0` ended the job."""
    run = tiny(train={"epochs": 12, "checkpoint_every": 3}, probes={"store_weights": True})
    (whole,) = train([run])
    saved = tmp_path / "job.checkpoint"
    real_open, calls = open, []

    def full_after_one(path, mode="r", *args, **kwargs):
        if "w" in mode and ".checkpoint.tmp-" in str(path):
            calls.append(path)
            if len(calls) > 1:
                raise OSError(errno.ENOSPC, "No space left on device")
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr("builtins.open", full_after_one)
    (result,) = train([run], checkpoint=saved)
    monkeypatch.undo()
    lines = [r.getMessage() for r in log_lines.records if "checkpoint not saved" in r.message]
    assert lines and lines[0].startswith(f"checkpoint not saved: cannot write '{saved}': No "
                                         "space left on device; its file system has ")
    assert lines[0].endswith("free; training goes on from the last checkpoint")
    assert np.array_equal(result.weights_final, whole.weights_final)  # trained to the end
    assert checkpoints.load(saved, checkpoints_fingerprint(run))["epoch"] == 3  # the good one
    assert not list(tmp_path.glob(".job.checkpoint.tmp-*"))


def checkpoints_fingerprint(run):
    from adamgen.trainer import fingerprint

    return fingerprint([run])


# --- (5) damaged CIFAR batches: one line naming the file -------------------------------------

def _cifar(tmp_path, n=60, n_test=30):
    return images.write_cifar_like(tmp_path / "cifar", n, n_test)


def _rewrite(path, change):
    with open(path, "rb") as f:
        batch = pickle.load(f, encoding="bytes")
    change(batch)
    with open(path, "wb") as f:
        pickle.dump(batch, f)


def _cfg(root, n=60, n_test=30):
    return parse_run_config({"data": {"kind": "cifar10", "path": str(root), "n": n,
                                      "n_test": n_test},
                             "model": {"name": "small_cnn"},
                             "optimizer": {"name": "sgd", "lr": 0.1}}).data


@pytest.mark.parametrize("damage, fragment", [
    (lambda b: b.update({b"labels": [str(v) for v in b[b"labels"]]}),
     "has labels that are not numbers (e.g. '"),
    (lambda b: b.update({b"labels": [[v] for v in b[b"labels"]]}),
     "has labels of shape (12, 1); expected one label per image"),
    (lambda b: b.update({b"labels": [v + 0.7 for v in b[b"labels"]]}),
     "has labels that are not whole numbers (e.g. ["),
    (lambda b: b.update({b"data": b[b"data"][:0], b"labels": []}),
     "holds 48 training and 30 test images; the config asks for data.n = 60"),
])
def test_a_damaged_cifar_batch_is_one_line_naming_it(tmp_path, damage, fragment):
    root = _cifar(tmp_path)
    _rewrite(root / "data_batch_5", damage)
    images._CACHE.clear()
    with pytest.raises(DataFileError) as err:
        images.missing_sources(_cfg(root))
    assert fragment in str(err.value)
    assert "data_batch_5" in str(err.value) or "holds 48" in str(err.value)


def test_small_cifar_look_alikes_can_be_written_and_read(tmp_path):
    """write_cifar_like(path, 3, 5) crashed on a reshape (two of its five batches are empty)."""
    root = images.write_cifar_like(tmp_path / "small", 3, 5)
    images._CACHE.clear()
    cfg = _cfg(root, n=3, n_test=5)
    assert images.missing_sources(cfg) is None
    ds = images.generate_cifar10(cfg, 0)
    assert ds.train.x.shape == (3, 3, 32, 32) and ds.test.x.shape == (5, 3, 32, 32)


def test_a_directory_or_a_symlink_loop_in_place_of_a_batch_is_named_for_what_it_is(tmp_path):
    """Both were reported as 'does not exist'."""
    root = _cifar(tmp_path)
    (root / "data_batch_2").unlink()
    (root / "data_batch_2").mkdir()
    images._CACHE.clear()
    with pytest.raises(DataFileError, match="data_batch_2' is a directory, not a CIFAR-10 "
                                            "batch"):
        images.missing_sources(_cfg(root))
    (root / "data_batch_2").rmdir()
    os.symlink(root / "loop_b", root / "data_batch_2")
    os.symlink(root / "data_batch_2", root / "loop_b")
    with pytest.raises(DataFileError, match=r"data_batch_2' cannot be read \(Too many levels "
                                            "of symbolic links"):
        images.missing_sources(_cfg(root))


# --- (6) the GPU overlay on a machine without one: one line before any job --------------------

def test_runs_asking_for_cuda_are_counted_once_however_many_experiments_share_them():
    """The paper config's GPU dry run said '1636 runs ask for a CUDA device' of its 1613
    distinct runs (the README's count): a run two experiments share trains once."""
    overlay = yaml.safe_load((ROOT / "config" / "gpu.yaml").read_text())
    tiny = copy.deepcopy(TINY["experiments"]["tiny"])
    config = {**copy.deepcopy(TINY), **overlay, "experiments": {"a": tiny, "b": tiny}}
    experiments = planner.plan(config)
    assert sum(len(e.runs) for e in experiments.values()) == 28
    assert planner.asks_for_cuda(experiments) == 14


@pytest.mark.slow
def test_the_gpu_overlay_without_a_gpu_stops_before_any_job(tmp_path, run_workflow):
    """The issue's case: planned without a word, built the data sets, then 34 jobs failed one
    by one with 'CUDA is not available on this machine' (90 s). And with runs_per_job 1 the
    overlay planned 34 single-run jobs."""
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the overlay would run")
    overlay = yaml.safe_load((ROOT / "config" / "gpu.yaml").read_text())
    config = {**copy.deepcopy(TINY), **overlay}
    config["experiments"] = {"tiny": config["experiments"]["tiny"]}
    started = time.monotonic()
    proc = run_workflow(tmp_path, config, "--cores", "2")
    assert proc.returncode != 0
    assert time.monotonic() - started < 60
    assert "adamgen: 14 runs ask for a CUDA device (train.device: cuda, e.g. through " \
           "config/gpu.yaml), but this machine has none" in proc.stderr
    assert not (tmp_path / "results" / "data").exists()  # nothing ran
    dry = run_workflow(tmp_path, config, "--dry-run")
    assert dry.returncode == 0, dry.stderr[-2000:]
    # the dry run plans them (a cluster profile would send them to GPU nodes) and says so
    assert "adamgen: warning: 14 runs ask for a CUDA device and torch sees no GPU on this " \
           "machine" in dry.stderr
    groups = len({planner.lockstep_key(r.config)
                  for r in planner.plan(config)["tiny"].runs})
    planned = set(re.findall(r"^(train_\S+)\s+1$", dry.stdout, re.M))  # job-stats tables
    assert len(planned) == groups  # grouped, although runs_per_job is 1


# --- (7) open_runs keeps a repeated run as a row ----------------------------------------------

def test_open_runs_takes_a_repeated_run_without_complaint(tiny, tmp_path):
    """Seeds {0, 1} × weight decays {a, b} with (1, b) missing and (1, a) twice: as many files
    as the grid has cells, so open_runs tried to unfold them and refused ('several runs share
    the settings ...') although no dims were asked for."""
    cells = [(0, 1e-4), (0, 1e-2), (1, 1e-4), (1, 1e-4)]
    for k, (seed, wd) in enumerate(cells):
        run = tiny(seed=seed, optimizer={"name": "adam", "lr": 1e-3, "weight_decay": wd},
                   train={"epochs": 2})
        (result,) = train([run])
        runfile.save(result, tmp_path / f"run{k}.nc")
    with open_runs(str(tmp_path / "*.nc")) as runs:
        assert runs.sizes["run"] == 4 and runs["seed"].values.tolist() == [0, 0, 1, 1]


# --- (8) the small ones ---------------------------------------------------------------------

def test_a_checkpoint_path_that_is_a_directory_is_one_line_before_training(tiny, tmp_path):
    saved = tmp_path / "job.checkpoint"
    saved.mkdir()
    with pytest.raises(DataFileError, match=f"the checkpoint path '{saved}' is a directory"):
        train([tiny(train={"epochs": 4, "checkpoint_every": 2})], checkpoint=saved)


def test_after_a_resume_the_wall_time_covers_the_training_time(tiny, tmp_path, monkeypatch):
    """wall_time_s (2.9 s) was below train_time_s (16.8 s) after a resume: the job's wall time
    counts its earlier lives too."""
    runs = [tiny(train={"epochs": 40, "checkpoint_every": 10, "batch_size": 5})]
    saved = tmp_path / "job.checkpoint"
    _killed_midway(monkeypatch, runs, saved, after_epochs=30)
    (result,) = train(runs, checkpoint=saved)
    timing = result.timing
    assert timing["wall_time_s"] >= timing["train_time_s"] > 0
    assert timing["steps_per_second"] == pytest.approx(timing["steps"] / timing["train_time_s"])


def test_a_changed_checkpoint_interval_still_resumes(tiny, tmp_path, monkeypatch, log_lines):
    """checkpoint_every is not part of a run's identity; changing it between the kill and the
    resume restarted from epoch 0."""
    runs = [tiny(seed=s, train={"epochs": 20, "checkpoint_every": 4, "batch_size": 10},
                 probes={"store_weights": True}) for s in (0, 1)]
    whole = train(runs)
    saved = tmp_path / "job.checkpoint"
    _killed_midway(monkeypatch, runs, saved, after_epochs=12)
    other = [parse_run_config({**r.to_dict(), "train": {**r.to_dict()["train"],
                                                          "checkpoint_every": 5}})
             for r in runs]
    resumed = train(other, checkpoint=saved)
    assert f"resumed from checkpoint {saved} at epoch 12/20" in log_lines.text
    for a, b in zip(whole, resumed, strict=True):
        assert np.array_equal(a.weights_final, b.weights_final)


@pytest.mark.slow
def test_touching_a_script_replans_nothing(tiny_workflow, run_workflow, tmp_path):
    """A git checkout touches scripts/train.py; that re-planned every job ('Code has changed')
    and re-aggregated for 80 s. Run files are content-addressed: code is not their identity."""
    import shutil

    work = tmp_path / "copy"
    shutil.copytree(tiny_workflow, work, symlinks=True)
    os.utime(ROOT / "scripts" / "train.py")
    proc = run_workflow(work, TINY, "--dry-run")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Nothing to be done" in proc.stdout + proc.stderr


# --- the kill loop, on the checkpoints of the module and torch engines ------------------------

@pytest.mark.slow
@pytest.mark.parametrize("engine", ["module", "torch"])
def test_kill_9_during_checkpointed_training_resumes_to_the_same_numbers(engine, tmp_path,
                                                                         tiny_raw):
    """`adamgen train` with a checkpoint every epoch, killed with SIGKILL at random moments (in a
    step, in a probe, in the middle of writing a checkpoint), then run to the end: the run file
    is the one an undisturbed run writes."""
    import random

    if engine == "module":
        raw = {"data": {"kind": "digits", "n": 400, "n_test": 200},
               "model": {"name": "small_cnn", "width": 8},
               "optimizer": {"name": "adam", "lr": 1e-3},
               "train": {"batch_size": 20, "epochs": 12, "checkpoint_every": 1},
               "probes": {"per_decade": 0, "linear_points": 12, "store_weights": True}}
    else:
        raw = tiny_raw(optimizer={"name": "adam", "lr": 1e-3},
                       train={"engine": "torch", "epochs": 400, "batch_size": 2,
                              "checkpoint_every": 20},
                       probes={"store_weights": True})
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(raw))
    argv = [sys.executable, "-m", "adamgen", "train", str(config), "--threads", "1"]
    reference = tmp_path / "reference.nc"
    subprocess.run([*argv, "--out", str(reference)], check=True, capture_output=True)
    out = tmp_path / "killed.nc"
    rng = random.Random(0)
    for _ in range(4):
        proc = subprocess.Popen([*argv, "--out", str(out)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(1.5, 4.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if out.exists():
            break
    if not out.exists():
        subprocess.run([*argv, "--out", str(out)], check=True, capture_output=True)
    a, b = runfile.load(reference), runfile.load(out)
    assert not jobs.checkpoint_path(out).exists()
    for name in a.data_vars:
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)

"""Workflow jobs: a lockstep job trains only what is missing and keeps what is finished."""

import hashlib
import os
from pathlib import Path

from adamgen import data, datafile, jobs


def test_a_job_trains_the_missing_runs_and_keeps_the_finished_ones(tiny, tmp_path):
    a, b = tiny(seed=0), tiny(seed=0, optimizer={"name": "adam", "lr": 2e-3})
    data_path = tmp_path / "data.nc"
    datafile.save(data.generate(a.data, 0), data_path)
    outs = [str(tmp_path / "a.nc"), str(tmp_path / "b.nc")]
    runs = dict(zip(outs, (a, b), strict=True))
    data_paths = dict.fromkeys(outs, str(data_path))
    assert jobs.train_missing(runs, outs[:1], data_paths) == outs[:1]
    digest = hashlib.sha1(Path(outs[0]).read_bytes()).hexdigest()
    os.utime(outs[0], (0, 0))
    os.utime(data_path)  # the data set was regenerated after the run

    assert jobs.train_missing(runs, outs, data_paths) == outs[1:]
    assert hashlib.sha1(Path(outs[0]).read_bytes()).hexdigest() == digest  # not redone
    assert os.path.getmtime(outs[0]) >= os.path.getmtime(data_path)  # but current again
    # every output present: nothing to train, and no error
    assert jobs.train_missing(runs, outs, data_paths) == []

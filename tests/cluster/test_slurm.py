"""The SLURM profile against a real one-node Slurm (tests/cluster/slurm.sh brings it up).

The tiny workflow runs through `profiles/slurm` with the train jobs asking for a GPU
(the node has four fake `gpu` gres); every job must have run as a Slurm job, the results must
equal those of the local run, a second invocation must plan nothing, and a train job killed on
the cluster must be reported with its Slurm log and recovered by a rerun without losing
finished results.

The cluster needs root (the daemons) and Debian's packages (installed when missing). On a
machine that cannot host it, the tests are skipped with that reason; CI runs them as root.
"""

import copy
import csv
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import conftest
import pytest
import xarray as xr

from adamgen import planner as ex

pytestmark = pytest.mark.slow  # a real Slurm cluster, minutes
SCRIPT = Path(__file__).with_name("slurm.sh")
PROFILE = conftest.ROOT / "profiles" / "slurm"
# the tiny workflow's first experiment and its convex counterpart: the others (the phase
# diagram, curvature) would add 32 Slurm jobs and minutes, and nothing new for Slurm
TINY = {**conftest.TINY_WORKFLOW, "experiments": {
    "tiny": conftest.TINY_WORKFLOW["experiments"]["tiny"]}}
# what a test cluster needs on top of the profile: its partition, quick first status checks
CLUSTER_ARGS = ("--workflow-profile", str(PROFILE), "--jobs", "8", "--latency-wait", "5",
                "--slurm-init-seconds-before-status-checks", "2",
                "--seconds-between-status-checks", "2",
                "--default-resources", "slurm_partition=debug", "runtime=30", "mem_mb=1000",
                "--set-resources", "train:gpu=1")


@pytest.fixture(scope="module")
def cluster():
    if os.geteuid() != 0:
        pytest.skip("a one-node Slurm cluster needs root to start its daemons "
                    "(tests/cluster/slurm.sh)")
    # not under pytest's private temporary directory: the munge user must reach its socket
    base = Path(tempfile.mkdtemp(prefix="adamgen-slurm-"))
    base.chmod(0o755)
    up = subprocess.run(["bash", str(SCRIPT), "up", str(base)], capture_output=True, text=True)
    try:
        assert up.returncode == 0, up.stderr[-3000:]
        yield dict(line.split("=", 1) for line in up.stdout.splitlines() if "=" in line)
    finally:
        subprocess.run(["bash", str(SCRIPT), "down", str(base)], check=True)
        shutil.rmtree(base, ignore_errors=True)


def squeue(env: dict) -> list[tuple[str, str, str]]:
    """(job id, name, state) of every job the controller still knows, finished ones too."""
    out = subprocess.run(["squeue", "-h", "-t", "all", "-o", "%i|%j|%T"], capture_output=True,
                         text=True, env={**os.environ, **env}, check=True).stdout
    return [tuple(line.split("|")) for line in out.split()]


@pytest.fixture(scope="module")
def on_slurm(cluster, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("on_slurm")
    start = time.monotonic()
    proc = conftest.snakemake(workdir, TINY, *CLUSTER_ARGS, env=cluster)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return workdir, proc.stdout + proc.stderr, time.monotonic() - start


def slurm_logs(workdir: Path) -> dict[str, list[Path]]:
    """rule → the Slurm logs the executor kept (.snakemake/slurm_logs/rule_<rule>/.../<id>.log)."""
    out: dict[str, list[Path]] = {}
    for log in (workdir / ".snakemake" / "slurm_logs").rglob("*.log"):
        rule = next(p for p in log.relative_to(workdir).parts if p.startswith("rule_"))
        out.setdefault(rule.removeprefix("rule_"), []).append(log)
    return out


def test_every_job_ran_as_a_slurm_job(on_slurm, cluster):
    workdir, output, seconds = on_slurm
    logs = slurm_logs(workdir)
    runs = ex.plan(TINY)["tiny"].runs
    assert len(logs["train"]) == len(runs) == 14
    assert len(logs["dataset"]) == 2 and len(logs["convex"]) == 2
    assert set(logs) == {"train", "dataset", "convex"}  # the rest are local rules
    ids = {log.stem for rule_logs in logs.values() for log in rule_logs}
    submitted = set(re.findall(r"submitted with SLURM jobid (\d+)", output))
    assert ids == submitted and len(ids) == sum(map(len, logs.values())) == 18
    known = {job_id: state for job_id, _, state in squeue(cluster)}
    assert all(known.get(i) == "COMPLETED" for i in ids), known
    # each train job saw its Slurm job id and the GPU it was given (--gpus=1)
    for run in runs:
        log = (workdir / "results" / "logs" / "runs" / f"{run.id}.log").read_text()
        job = re.search(r"SLURM_JOB_ID=(\d+), CUDA_VISIBLE_DEVICES=[0-3]\b", log)
        assert job and job.group(1) in ids, log[:500]
    print(f"\n{len(ids)} Slurm jobs ({min(map(int, ids))}-{max(map(int, ids))}) "
          f"in {seconds:.0f} s")


def test_results_equal_those_of_a_local_run(on_slurm, tiny_workflow):
    workdir, _, _ = on_slurm
    paths = [r.path for r in ex.plan(TINY)["tiny"].runs]
    paths += ["results/test/tiny/summary.nc", "results/test/tiny_convex/summary.nc"]
    for path in paths:
        with (xr.open_dataset(workdir / path, engine="netcdf4") as a,
              xr.open_dataset(tiny_workflow / path, engine="netcdf4") as b):
            xr.testing.assert_identical(a.drop_attrs(), b.drop_attrs())
    assert (workdir / "results/test/tiny/tables/final.csv").read_text() == \
        (tiny_workflow / "results/test/tiny/tables/final.csv").read_text()
    # the claims of the experiments both ran (the others' say "not in config" here)
    mine, local = (list(csv.DictReader((d / "results" / "test" / "claims.csv").read_text()
                                       .splitlines())) for d in (workdir, tiny_workflow))
    names = {*TINY["experiments"], *TINY["convex"]}
    planned = [row for row in local if row["experiment"] in names]
    assert len(planned) >= 3 and [row for row in mine if row in planned] == planned
    print(f"\n{len(paths)} NetCDF files, the table and {len(planned)} claims identical "
          "to the local run")


def test_a_second_invocation_plans_nothing(on_slurm, cluster):
    workdir, _, _ = on_slurm
    proc = conftest.snakemake(workdir, TINY, *CLUSTER_ARGS, env=cluster)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Nothing to be done" in proc.stdout + proc.stderr
    assert "SLURM jobid" not in proc.stdout + proc.stderr


def test_a_killed_job_is_reported_and_recovered_without_losing_results(on_slurm, cluster):
    workdir, _, _ = on_slurm
    config = copy.deepcopy(TINY)
    # one more experiment with one run, long enough (about 15 s) to be cancelled while it trains
    slow_spec = copy.deepcopy(config["experiments"]["tiny"])
    slow_spec["base"]["train"]["epochs"] = 1_000_000
    gd = copy.deepcopy(config["experiments"]["tiny"]["optimizers"]["gd"])
    gd.pop("grid")
    slow_spec.update(grid={"seed": [0]}, when=[], optimizers={"gd": gd})
    config["experiments"]["slow"] = slow_spec
    slow = ex.plan(config)["slow"].runs
    finished = {p: p.stat().st_mtime_ns for p in (workdir / "results" / "runs").rglob("*.nc")}
    before = {i for i, _, _ in squeue(cluster)}

    proc = conftest.snakemake(workdir, config, *CLUSTER_ARGS, env=cluster, background=True)
    deadline = time.monotonic() + 120
    victim = None
    while victim is None and time.monotonic() < deadline:
        running = [i for i, _, state in squeue(cluster) if i not in before and state == "RUNNING"]
        logs = [workdir / "results" / "logs" / "runs" / f"{r.id}.log" for r in slow]
        if running and all(p.exists() and "epoch" in p.read_text() for p in logs[:1]):
            victim = running[0]
        time.sleep(0.5)
    assert victim, "the long train job never started"
    subprocess.run(["scancel", victim], env={**os.environ, **cluster}, check=True)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode != 0
    assert re.search(r"Error in rule train", out + err), (out + err)[-3000:]
    slurm_log = re.search(r"(\S*slurm_logs/rule_train/\S*/" + victim + r"\.log)", out + err)
    assert slurm_log, (out + err)[-3000:]
    assert (workdir / slurm_log.group(1)).exists() or Path(slurm_log.group(1)).exists()
    assert not any(workdir.joinpath(r.path).exists() for r in slow)  # nothing half-written
    assert {p: p.stat().st_mtime_ns for p in finished} == finished  # nothing finished lost

    # the killed run's own output is the target: the summaries and figures of the extra
    # experiment are local rules that the first test already covers
    rerun = conftest.snakemake(workdir, config, *CLUSTER_ARGS, "--rerun-incomplete",
                               *(r.path for r in slow), env=cluster)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    for run in slow:
        with xr.open_dataset(workdir / run.path, engine="netcdf4") as ds:
            assert ds.attrs["status"] == "completed"
    assert {p: p.stat().st_mtime_ns for p in finished} == finished
    print(f"\nSlurm job {victim} cancelled: reported with {slurm_log.group(1)}; "
          "the rerun completed it and left the finished runs untouched")

"""Every cluster command of the README, dry-run: each job keeps a time limit and a memory
request whatever partition or account the command adds, and a training job's time limit
covers its estimated time."""

import math
import re
import shlex

import conftest
import pytest

from adamgen import planner
from adamgen.config import load_yaml
from adamgen.data.images import write_cifar_like

ROOT = conftest.ROOT
pytestmark = pytest.mark.slow  # each dry run plans a whole config


def readme_cluster_commands() -> list[str]:
    """The README's `snakemake ... --workflow-profile slurm ...` commands, lines joined."""
    text = (ROOT / "README.md").read_text()
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for command in block.replace("\\\n", " ").splitlines():
            if command.startswith("snakemake") and "--workflow-profile slurm" in command:
                commands.append(re.sub(r"\s+", " ", command.split("  #")[0]).strip())
    return commands


def dry_run_jobs(text: str) -> list[tuple[str, str, dict[str, str]]]:
    """(rule, first output, resources) of every job a dry run prints."""
    jobs, rule, output = [], None, ""
    for line in text.splitlines():
        header = re.match(r"^(?:local)?rule (\w+):$", line)
        if header:
            rule, output = header.group(1), ""
        elif rule and (out := re.match(r"^\s+output: (.+)$", line)):
            output = out.group(1).split(", ")[0].split(" (")[0]
        elif rule and (res := re.match(r"^\s+resources: (.+)$", line)):
            pairs = dict(item.split("=", 1) for item in res.group(1).split(", "))
            jobs.append((rule, output, pairs))
            rule = None
    return jobs


def test_the_readme_has_the_cluster_commands_this_test_checks():
    commands = readme_cluster_commands()
    assert len(commands) >= 4, commands
    assert any("--set-resources train:slurm_partition" in c for c in commands)
    assert all("--default-resources slurm_partition" in c for c in commands)


@pytest.mark.parametrize("command", readme_cluster_commands())
def test_every_job_of_a_readme_cluster_command_keeps_its_limits(command, tmp_path):
    """The first-hour issue's case: `--default-resources slurm_partition=cpu` replaced the
    profile's default resources (data jobs got mem_mb = 1000 and no runtime), and
    `--set-resources train:slurm_partition=gpu` dropped training's runtime. The limits are the
    workflow's own now, per job."""
    argv = shlex.split(re.sub(r"<([^>]+)>", lambda m: m.group(1).split()[0], command))[1:]
    configs = [a for a in argv if a.endswith(".yaml")] or ["config/config.yaml"]
    if any("cifar" in c for c in configs):  # the data its experiments read, at its size
        write_cifar_like(tmp_path / "data" / "cifar-10-batches-py", 50_000, 10_000)
    argv = [str(ROOT / a) if a.endswith(".yaml") else a for a in argv]
    if not any(a.endswith(".yaml") for a in argv):
        argv += ["--configfile", str(ROOT / "config" / "config.yaml")]
    proc = conftest.run_snakemake(tmp_path, ["--dry-run", *argv])
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = dry_run_jobs(proc.stdout + proc.stderr)
    assert jobs
    config: dict = {}
    for path in configs:
        config = planner.merge(config, load_yaml(ROOT / path))
    experiments = planner.plan(config)
    estimate = {f"train_{job.name}": job.seconds() for job in planner.training_jobs(
        experiments, config.get("runs_per_job", 1), config.get("gpu_runs_per_job", "auto"),
        config.get("gpu_memory_gb", 40))}
    kinds = set()
    for rule, output, resources in jobs:
        assert resources.get("mem_mb", "<TBD>").isdigit(), (rule, output, resources)
        assert resources.get("runtime", "<TBD>").isdigit(), (rule, output, resources)
        assert "slurm_partition" in resources, (rule, resources)
        kinds.add(rule.split("_")[0])
        if rule in estimate:
            assert int(resources["runtime"]) * 60 >= estimate[rule], (rule, resources)
            assert int(resources["runtime"]) >= math.ceil(planner.SAFETY * estimate[rule] / 60)
    assert "train" in kinds, kinds
    if "train:slurm_partition" in command:
        partition = re.search(r"train:slurm_partition=(\S+)", argv_text := " ".join(argv))
        assert partition and all(r["slurm_partition"] != "cpu" for rule, _, r in jobs
                                 if rule.startswith("train")), argv_text

"""The README opens with the two set-up commands, and CI runs exactly its test command."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _opening_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```bash\n(.*?)```", text, re.S).group(1)
    return [line for line in block.splitlines() if line and not line.startswith("#")]


def test_readme_opens_with_the_main_job_and_the_tests():
    main_job, tests = _opening_commands()
    assert tests.endswith("python -m pytest")
    assert main_job.split(" && ")[:2] == tests.split(" && ")[:2]  # the same set-up


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert ci == _opening_commands()[1]


def _section(title: str) -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else None]


def test_what_the_main_job_produces_is_what_the_default_config_writes():
    """The README's table of the main job's outputs is the one `produces_table` makes from
    config/config.yaml's plan and figure registry: its experiments, run and seed counts,
    tables and figure names."""
    from adamgen.progress import produces_table

    section = _section("What the main job produces")
    assert produces_table([str(ROOT / "config" / "config.yaml")]) in section, \
        "regenerate it: python -c \"from adamgen.progress import produces_table; " \
        "print(produces_table(['config/config.yaml']))\""


def test_the_opening_names_only_the_default_configs_experiments():
    from adamgen.planner import plan, read_workflow_config

    config = read_workflow_config([str(ROOT / "config" / "config.yaml")])
    names = set(plan(config)) | set(config.get("convex") or {})
    prose = _section("What the main job produces").split("|")[0]
    named = set(re.findall(r"`([a-z]+_[a-z0-9]+)`", prose))
    assert named == names, (named, names)


def test_every_workflow_config_is_listed_in_both_readmes():
    configs = sorted(p.name for p in (ROOT / "config").glob("*.yaml")
                     if not p.name.startswith("claims"))
    readme, config_readme = (ROOT / "README.md").read_text(), \
        (ROOT / "config" / "README.md").read_text()
    for name in configs:
        assert f"config/{name}" in readme, name
        assert f"`{name}`" in config_readme or f"config/{name}" in config_readme, name


def test_the_license_is_the_one_pyproject_names():
    assert 'license = { text = "MIT" }' in (ROOT / "pyproject.toml").read_text()
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")


MACHINE = re.compile(r"development machine|AMD EPYC|Intel Xeon|H100|H200|GPU")
TIMING = re.compile(r"\b\d+(\.\d+)? ?(min\b|minutes?\b|s\b|seconds?\b|hours?\b)|\d+ min \d+ s")


def test_every_timing_names_its_machine():
    """A paragraph (or table) of the README that states a time says which machine gave it."""
    text = (ROOT / "README.md").read_text()
    unnamed = [block.strip()[:120] for block in re.split(r"\n\s*\n", text)
               if TIMING.search(block) and not MACHINE.search(block)]
    assert not unnamed, unnamed


@pytest.mark.slow  # plans the paper config
def test_the_gpu_section_counts_the_paper_configs_gpu_jobs():
    from adamgen import planner

    config = planner.read_workflow_config([str(ROOT / "config" / "paper.yaml"),
                                           str(ROOT / "config" / "gpu.yaml")])
    experiments, _ = planner.available(planner.plan(config))
    jobs = planner.training_jobs(experiments, config["runs_per_job"],
                                 config["gpu_runs_per_job"], config["gpu_memory_gb"])
    runs = {r.path for e in experiments.values() for r in e.runs}
    assert all(j.runs[0].config.train.device == "cuda" for j in jobs)
    assert f"the paper config ({len(jobs)} GPU jobs, {len(runs)} runs;" in \
        _section("Running on a GPU").replace("\n", " ")

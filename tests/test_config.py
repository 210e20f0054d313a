from pathlib import Path

import numpy as np
import pytest

from adamgen.config import (
    apply_overrides,
    load_yaml_text,
    lockstep_key,
    parse_run_config,
    probe_epochs,
)
from adamgen.errors import ConfigError
from adamgen.optim import OPTIMIZERS

ROOT = Path(__file__).resolve().parents[1]


def test_defaults_are_the_papers_experiment(tiny_raw):
    run = parse_run_config({"optimizer": {"name": "adam", "lr": 5e-5}})
    assert (run.data.d, run.data.n, run.data.s, run.data.sigma_p, run.data.alpha) == (
        1000, 200, 100, 0.1, 0.2)
    assert (run.data.n_test, run.model.m, run.model.q, run.model.sigma_0) == (10000, 20, 3, 0.01)
    assert run.optimizer["betas"] == (0.9, 0.999) and run.optimizer["eps"] == 1e-8
    assert run.batch_size == 200 and run.train.epochs == 10000


def test_resolved_config_round_trips(tiny):
    run = tiny(optimizer={"name": "padam", "lr": 0.1, "p": 0.25})
    assert parse_run_config(run.to_dict()) == run
    assert parse_run_config(run.to_dict()).to_dict() == run.to_dict()


def test_integers_and_floats_resolve_to_the_same_config(tiny):
    assert tiny(model={"q": 3}) == tiny(model={"q": 3.0})


@pytest.mark.parametrize(
    "changes, key, fragment",
    [
        ({"optimizer": {"name": "adamm", "lr": 1e-3}}, "optimizer.name", "did you mean 'adam'"),
        ({"train": {"batch_size": 3}}, "train.batch_size", "must divide data.n = 20"),
        ({"optimizer": {"name": "adam", "lr": -1e-3}}, "optimizer.lr", "must be > 0"),
        ({"optimizer": {"name": "adam", "lr": 1e-3, "weight_decay": -1.0}},
         "optimizer.weight_decay", "must be >= 0"),
        ({"optimizer": {"name": "padam", "lr": 1e-3, "p": 0.7}}, "optimizer.p", "[0, 1/2]"),
        ({"optimizer": {"name": "adam", "lr": 1e-3, "betas": [0.9, 1.0]}}, "optimizer.betas",
         "[0, 1)"),
        ({"optimizer": {"name": "adam", "lr": 1e-3, "p": 0.1}}, "optimizer.p",
         "not a setting of adam"),
        ({"optimizer": {"name": "adam", "lr": 1e-3, "learning_rate": 0.1}},
         "optimizer.learning_rate", "unknown key"),
        ({"model": {"widht": 3}}, "model.widht", "unknown key"),
        ({"data": {"sigma_p": "a tenth"}}, "data.sigma_p", "must be a number"),
        ({"optimizer": {"name": "adam", "lr": "1e-5 or so"}}, "optimizer.lr",
         "must be a number"),
        ({"data": {"s": 60}}, "data.s", "<= data.d - 1 = 59"),
        ({"data": {"n": 21}, "train": {"batch_size": 21}}, "data.n", "must be even"),
        ({"train": {"epochs": 2.5}}, "train.epochs", "must be an integer"),
        ({"train": {"device": "gpu"}}, "train.device", "'cpu', 'cuda'"),
        ({"optimizer": {"name": "gd", "lr": 0.1}, "train": {"batch_size": 10}},
         "train.batch_size", "full-batch"),
        ({"probes": {"epochs": [5, 99]}}, "probes.epochs", "<= train.epochs = 30"),
        ({"sede": 1}, "sede", "did you mean 'seed'"),
    ],
)
def test_bad_values_name_the_key(tiny_raw, changes, key, fragment):
    with pytest.raises(ConfigError) as err:
        parse_run_config(tiny_raw(**changes))
    assert err.value.key == key
    assert fragment in str(err.value)
    assert str(err.value).startswith(f"config key '{key}'")


def test_missing_learning_rate(tiny_raw):
    raw = tiny_raw()
    del raw["optimizer"]["lr"]
    with pytest.raises(ConfigError, match="'optimizer.lr': is missing"):
        parse_run_config(raw)


def test_missing_optimizer_section(tiny_raw):
    raw = tiny_raw()
    del raw["optimizer"]
    with pytest.raises(ConfigError, match="'optimizer'.*missing"):
        parse_run_config(raw)


def test_every_optimizer_resolves_with_only_a_learning_rate():
    for name in OPTIMIZERS:
        run = parse_run_config({"optimizer": {"name": name, "lr": 0.1}})
        assert set(run.optimizer) == {"name", *OPTIMIZERS[name].defaults}


def test_yaml_reads_exponent_floats_as_numbers():
    assert load_yaml_text("a: 1e-5\nb: 5.0e-5\nc: 1E3\nd: 7\ne: .5") == {
        "a": 1e-5, "b": 5e-5, "c": 1e3, "d": 7, "e": 0.5}


def test_overrides_parse_values_and_create_sections(tiny_raw):
    raw = apply_overrides(tiny_raw(), ["optimizer.lr=1e-2", "train.device=cpu", "seed=4",
                                       "optimizer.betas=[0.5, 0.9]"])
    run = parse_run_config(raw)
    assert run.optimizer["lr"] == 1e-2 and run.seed == 4 and run.optimizer["betas"] == (0.5, 0.9)
    with pytest.raises(ConfigError, match="section.key=value"):
        apply_overrides(tiny_raw(), ["optimizer.lr"])


def test_probe_schedule_is_log_spaced_with_both_ends(tiny):
    epochs = probe_epochs(tiny(train={"epochs": 10000}, probes={"per_decade": 16}))
    assert epochs[0] == 0 and epochs[-1] == 10000
    assert np.all(np.diff(epochs) > 0)
    assert 40 < len(epochs) <= 66
    assert {1, 10, 100, 1000} <= set(epochs.tolist())
    # runs of different lengths share their probe epochs, which keeps aggregates aligned
    short = probe_epochs(tiny(train={"epochs": 300}, probes={"per_decade": 16}))
    assert set(short.tolist()) - {300} <= set(epochs.tolist())
    linear = probe_epochs(tiny(train={"epochs": 100}, probes={"per_decade": 0,
                                                              "linear_points": 11}))
    assert linear.tolist() == list(range(0, 101, 10))


def test_coordinates_name_every_setting_as_grids_and_summaries_do(tiny):
    coords = tiny().coordinates()
    assert coords["lr"] == 1e-3 and coords["beta1"] == 0.9 and coords["optimizer"] == "adam"
    assert coords["batch_size"] == 20 and coords["data_balanced"] == 1 and coords["seed"] == 0
    assert coords["model_sigma_0"] == 0.05 and coords["data_sigma_p"] == 0.35
    # RMSprop's alpha is not the patch model's alpha: only the dotted name is short-free
    rms = tiny(optimizer={"name": "rmsprop", "lr": 1e-3}).coordinates()
    assert rms["optimizer_alpha"] == 0.99 and rms["data_alpha"] == 0.2 and "alpha" not in rms


def test_lockstep_key_separates_what_changes_the_program(tiny):
    base = lockstep_key(tiny())
    assert lockstep_key(tiny(seed=3, optimizer={"name": "adam", "lr": 0.1})) == base
    assert lockstep_key(tiny(model={"sigma_0": 0.2}, data={"alpha": 0.5})) == base
    assert lockstep_key(tiny(train={"batch_size": 10})) != base
    assert lockstep_key(tiny(optimizer={"name": "adamw", "lr": 1e-3})) != base
    assert lockstep_key(tiny(optimizer={"name": "adam", "lr": 1e-3,
                                        "bias_correction": False})) != base


def test_the_config_readme_lists_every_registry_row():
    """config/README.md's key tables are `adamgen keys --markdown`, so no list goes stale."""
    from adamgen.config import describe_keys_markdown

    text = (ROOT / "config" / "README.md").read_text()
    block = text.split("<!-- generated: adamgen keys --markdown -->\n")[1].split(
        "\n<!-- end generated -->")[0]
    assert block == describe_keys_markdown(), \
        "config/README.md is stale: paste the output of `adamgen keys --markdown`"
    for name in ("cifar10", "resnet18", "lion", "hessian", "module"):
        assert f"`{name}`" in block
    from adamgen.claims.metrics import describe_metrics_markdown

    metrics = text.split("<!-- generated: adamgen keys --metrics -->\n")[1].split(
        "\n<!-- end generated -->")[0]
    assert metrics == describe_metrics_markdown(), \
        "config/README.md is stale: paste the output of `adamgen keys --metrics`"
    from adamgen.claims.rules import describe_rules_markdown

    for path in (ROOT / "config" / "README.md", ROOT / "docs" / "science.md"):
        rules = path.read_text().split("<!-- generated: adamgen keys --rules -->\n")[1].split(
            "\n<!-- end generated -->")[0]
        assert rules == describe_rules_markdown(), \
            f"{path.name} is stale: paste the output of `adamgen keys --rules`"


def test_runs_finished_before_later_keys_existed_keep_their_paths():
    """A key added since the first release (model.name, probes.extra, train.precision, ...)
    at its old behaviour leaves the run's path as it was: finished runs are not redone after
    an update. The path below is E1's first Adam run as adamgen 0.1 (edaff24) named it."""
    import yaml

    from adamgen import planner as ex

    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    run = ex.plan(config)["zou_e1"].runs[0]
    assert run.path == "results/runs/adam/B200-lr5e-05-wd1e-05-T10000-seed0-6b62af9691.nc"
    # bookkeeping does not change a run's numbers, so not its path either
    every = parse_run_config({**run.config.to_dict(), "train": {
        **run.config.to_dict()["train"], "checkpoint_every": 5}})
    assert ex.run_path(every) == run.path
    # a later key set to anything else is part of the hash
    hessian = parse_run_config({**run.config.to_dict(), "probes": {
        **run.config.to_dict()["probes"], "extra": ["hessian"]}})
    assert ex.run_path(hessian) != run.path


def test_a_later_optimizer_setting_and_a_changed_update_move_paths_only_where_they_should(
        monkeypatch):
    """RMSprop's momentum (added after 0.1) at 0 keeps the path an RMSprop run had before
    (E6's first RMSprop run, as 20244a9 named it); at 0.9 it is another run. Padam's update
    changed to its authors' form (revision 1): its runs get new paths, so a run file computed
    by the old update is never taken for the new one's."""
    import dataclasses

    import yaml

    from adamgen import planner as ex
    from adamgen.optim import OPTIMIZERS

    config = yaml.safe_load((ROOT / "config" / "paper.yaml").read_text())
    spec = config["experiments"]["jiang_e6"]
    spec["optimizers"] = {"rmsprop": {"optimizer": {"lr": 5.0e-5}}}
    spec["grid"] = {"batch_size": [200], "seed": [0]}
    (run,) = ex.expand("jiang_e6", spec).runs
    assert run.path == "results/runs/rmsprop/B200-lr5e-05-wd1e-05-T10000-seed0-b2e78c486b.nc"
    momentum = parse_run_config({**run.config.to_dict(), "optimizer": {
        **run.config.optimizer, "momentum": 0.9}})
    assert ex.run_path(momentum) != run.path

    spec = config["experiments"]["padam_e8"]
    spec["optimizers"] = {"padam": spec["optimizers"]["padam"]}
    spec["grid"] = {"batch_size": [200], "seed": [0]}
    spec["optimizers"]["padam"]["grid"] = {"p": [0.0]}
    (padam,) = ex.expand("padam_e8", spec).runs
    before = "results/runs/padam/B200-lr0.02-wd1e-05-T10000-seed0-8aac9bf5de.nc"
    assert padam.path != before
    monkeypatch.setitem(OPTIMIZERS, "padam", dataclasses.replace(OPTIMIZERS["padam"],
                                                                 revision=0))
    assert ex.run_path(padam.config) == before  # the revision is the only difference


def test_numbers_are_numbers_as_researchers_write_them_in_every_config(tiny_raw, tmp_path):
    """`lr: 5e-5` worked in a run config and was refused in a workflow config (Snakemake's
    YAML 1.1 reader took it as text). One rule now (config.NUMBER): 5e-5, 1E4 and 1.0e-5 are
    numbers in run configs, --set values, workflow configs and their --config values, and
    claims files, whoever read the YAML."""
    import yaml

    from adamgen import claims, planner
    from adamgen.config import apply_overrides, numbers, parse_run_config

    raw = tiny_raw(optimizer={"name": "adam", "lr": "5e-5", "weight_decay": "1E-4"})
    run = parse_run_config(raw)
    assert run.optimizer["lr"] == 5e-5 and run.optimizer["weight_decay"] == 1e-4
    assert parse_run_config(apply_overrides(tiny_raw(), ["optimizer.lr=2e-3"])).optimizer[
        "lr"] == 2e-3
    workflow = yaml.safe_load("""
experiments:
  e:
    base: {data: {d: 60, n: 20, s: 8, n_test: 50}, model: {m: 4}, train: {epochs: 2}}
    grid: {seed: [0]}
    optimizers:
      adam: {optimizer: {lr: 5e-5}, grid: {weight_decay: [1e-5, 1E-3]}}
convex:
  c: {data: {d: 60, n: 20, s: 8}, seeds: [0], weight_decay: 1e-2, steps: 10,
      optimizers: {gd: {lr: 1E0}}}
""")  # as Snakemake reads it: YAML 1.1 takes every one of these numbers as text
    assert workflow["experiments"]["e"]["optimizers"]["adam"]["optimizer"]["lr"] == "5e-5"
    read = numbers(workflow)
    runs = planner.plan(read)["e"].runs
    assert sorted(r.config.optimizer["weight_decay"] for r in runs) == [1e-5, 1e-3]
    assert planner.plan_convex(read)["c"].settings["weight_decay"] == 0.01
    assert numbers({"description": "a run of 2e5 steps", "name": "e1"}) == {
        "description": "a run of 2e5 steps", "name": "e1"}  # text stays text
    path = tmp_path / "claims.yaml"
    path.write_text("claims:\n  - {id: c, claim: c, kind: paper, source: s, experiment: e, "
                    "metric: test_error, rule: o1, threshold: 1e-3}\n")
    assert claims.load_claims(path)[0].threshold == 1e-3

"""Optimizer cards (adamgen.battery, adamgen.card): a card's config, its battery as experiments,
its verdicts read with the claims' rules, and the one command on the tiny battery."""

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from summaries import cnn_summary

from adamgen import battery, card, planner
from adamgen.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent


def config(**card_keys) -> dict:
    spec = {"optimizer": {"name": "torch.optim.NAdam", "lr": 1e-3}, "battery": "tiny"}
    return {"name": "cards", "runs_per_job": 16, "claims": "", "card": spec | card_keys}


@pytest.mark.parametrize("keys, key, words", [
    ({"optimizer": {"lr": 1e-3}}, "card.optimizer", "must name an optimizer"),
    ({"batery": "tiny"}, "card.batery", "did you mean 'battery'"),
    ({"battery": "huge"}, "card.battery", "is not a battery (default, tiny)"),
    ({"lrs": {"caos": 1.0}}, "card.lrs.caos", "did you mean 'cao'"),
    ({"lrs": {"cao": -1.0}}, "card.lrs.cao", "must be a positive number"),
    ({"lrs": [1.0]}, "card.lrs", "must map a test to its learning rate"),
])
def test_a_bad_card_is_one_message_naming_its_key(keys, key, words):
    with pytest.raises(ConfigError) as err:
        battery.cards(config(**keys))
    assert key in str(err.value) and words in str(err.value)


def test_two_cards_of_one_name_are_refused():
    c = config()
    c["cards"] = [dict(c["card"])]
    with pytest.raises(ConfigError, match="cards\\[1\\].name.*is the name of another card"):
        battery.cards(c)


def test_the_battery_puts_the_candidate_in_its_place():
    """Every test of the battery is an experiment; the candidate takes the card's arguments,
    a test's own lr where `lrs` gives one, and the test's grid; the references stay adamgen's
    rows at the battery's settings."""
    exps = battery.experiments(config(lrs={"cao": 0.25}))
    assert sorted(exps) == [f"card_torch_optim_nadam_{t}" for t in sorted(battery.TESTS)]
    tiny = battery.load_battery("tiny")
    for test in battery.TESTS:
        optimizers = exps[f"card_torch_optim_nadam_{test}"]["optimizers"]
        assert set(optimizers) == {"torch.optim.NAdam"} | (set(tiny[test]["optimizers"])
                                                            - {"candidate"})
        mine = optimizers["torch.optim.NAdam"]
        assert mine["optimizer"]["lr"] == (0.25 if test == "cao" else 1e-3)
        grid = (tiny[test]["optimizers"]["candidate"] or {}).get("grid", {})
        assert mine.get("grid", {}) == grid
    # the battery scales the card's lr where a test's problem needs another step (Cao's plane)
    plain = battery.experiments(config())["card_torch_optim_nadam_cao"]
    assert plain["optimizers"]["torch.optim.NAdam"]["optimizer"]["lr"] == pytest.approx(
        1e-3 * tiny["cao"]["optimizers"]["candidate"]["lr_scale"])
    assert "lr_scale" not in plain["optimizers"]["torch.optim.NAdam"]
    # an optimizer without a weight decay argument runs the tests without the decay grid
    # and has no window; its default lr is its own in every test (no lr given, none scaled)
    rprop = battery.experiments(config(optimizer={"name": "torch.optim.Rprop"}))
    assert sorted(rprop) == ["card_torch_optim_rprop_cao", "card_torch_optim_rprop_tang",
                             "card_torch_optim_rprop_zou"]
    for spec in rprop.values():
        assert "weight_decay" not in spec["optimizers"]["torch.optim.Rprop"]["optimizer"]
        assert "lr" not in spec["optimizers"]["torch.optim.Rprop"]["optimizer"]
    assert "grid" not in rprop["card_torch_optim_rprop_tang"]["optimizers"]["torch.optim.Rprop"]
    assert planner.plan(config(optimizer={"name": "torch.optim.Rprop"}))  # every run valid
    # a full-batch row has neither Tang's batch sizes nor the window (B = 5)
    gd = battery.experiments(config(optimizer={"name": "gd", "lr": 0.5}))
    assert sorted(gd) == ["card_gd_cao", "card_gd_zou"]
    assert planner.plan(config(optimizer={"name": "gd", "lr": 0.5}))
    # tune_lr: lr x {0.1, 1, 10} in every test
    tuned = battery.experiments(config(tune_lr=True))
    assert tuned["card_torch_optim_nadam_zou"]["optimizers"]["torch.optim.NAdam"]["grid"][
        "lr"] == pytest.approx([1e-4, 1e-3, 1e-2])


def test_an_outside_optimizer_card_is_planned_as_any_experiment():
    exps = planner.plan(config())
    zou = exps["card_torch_optim_nadam_zou"]
    names = {r.config.optimizer["name"] for r in zou.runs}
    assert names == {"torch.optim.NAdam", "gd", "adam", "sgd_momentum"}


def rows(**verdicts):
    return [SimpleNamespace(claim=SimpleNamespace(id=f"c.{k.replace('__', '.')}"), verdict=v)
            for k, v in verdicts.items()]


@pytest.mark.parametrize("test, verdicts, words, side", [
    ("zou", {"zou__feature": "holds", "zou__flip": "fails", "zou__generalises": "holds",
             "zou__chance": "fails"}, "learns the feature like GD", 1),
    ("zou", {"zou__feature": "fails", "zou__flip": "holds", "zou__generalises": "fails",
             "zou__chance": "holds"}, "memorizes the noise like Adam", -1),
    ("zou", {"zou__feature": "holds", "zou__flip": "fails", "zou__generalises": "fails",
             "zou__chance": "fails"}, "in between", 0),
    ("zou", {"zou__feature": "fails", "zou__flip": "fails", "zou__generalises": "holds",
             "zou__chance": "fails"}, "generalises, with a feature outside GD's Θ(1)", 1),
    ("tang", {"tang__large_own": "holds", "tang__small_own": "holds"},
     "a small batch rescues it", -1),
    ("tang", {"tang__large_own": "fails", "tang__small_own": "holds"},
     "generalises at both batch sizes", 1),
    ("tang", {"tang__large_1e-05": "holds", "tang__small_1e-05": "holds",
              "tang__large_0.01": "fails", "tang__small_0.01": "holds"},
     "generalises at both batch sizes at lambda = 0.01; a small batch rescues it at "
     "lambda = 1e-05", 0),
    ("cao", {"cao__fits": "holds", "cao__boundary": "holds"},
     "harmful over more of the plane than GD", -1),
    ("cao", {"cao__fits": "holds", "cao__boundary": "fails"},
     "benign over more of the plane than GD", 1),
    ("cao", {"cao__fits": "fails", "cao__boundary": "holds"},
     "does not fit its training data: no boundary to place", 0),
    ("jiang", {"jiang__rmed": "holds"}, "a more uniform Hessian diagonal than SGD+M", -1),
    ("jiang", {"jiang__rmed": "fails"}, "no more uniform than SGD+M", 1),
    ("jiang", {"jiang__rmed": "inconclusive"}, "R_med undefined (a median |H_ii| of 0)", 0),
    ("window", {"window__trains": "holds", "window__stall": "holds"},
     "stalls by lambda = 0.1, like Adam", -1),
    ("window", {"window__trains": "holds", "window__stall": "fails"},
     "trains past lambda = 0.1, like AdamW", 1),
    ("window", {"window__trains": "fails", "window__stall": "holds"},
     "does not train at the smallest lambda: no window", 0),
])
def test_each_verdict_in_words_follows_its_claims(test, verdicts, words, side):
    """Every verdict of the card can go either way, and the atlas colours it by its side."""
    assert card._words(test, rows(**verdicts)) == words
    assert card._kind(test, words) == side
    assert 0 < len(card.short(test, words)) <= len(words)  # the atlas cell


@pytest.mark.parametrize("optimizer", [{"name": "torch.optim.NAdam", "lr": 1e-3},
                                       {"name": "torch.optim.Rprop"}, {"name": "gd", "lr": 0.5}],
                         ids=["NAdam", "Rprop", "gd"])
def test_the_card_reads_its_summaries_with_the_claims_rules(tmp_path, optimizer):
    """The card's claims on a battery's summaries (drawn, not trained): every test has a
    verdict from rules of the table, with a measured number, and the files are written; an
    optimizer without a weight decay has no window."""
    plan = planner.plan(config(optimizer=optimizer))
    rng = np.random.default_rng(0)
    summaries = {name: cnn_summary(e, rng) for name, e in plan.items()}
    spec = battery.cards(config(optimizer=optimizer))[0]
    data = card.write(spec, summaries, tmp_path / "card.md", tmp_path / "card.html",
                      tmp_path / "card.png", tmp_path / "card.json")
    from adamgen.claims.rules import RULES
    assert set(data["tests"]) == {*battery.TESTS, "jiang"}
    for test, t in data["tests"].items():
        assert t["verdict"], test
        for c in t["claims"]:
            assert c["rule"] in RULES
            assert c["verdict"] in ("holds", "fails", "inconclusive"), c
    assert json.loads((tmp_path / "card.json").read_text()) == data
    if optimizer["name"] == "torch.optim.Rprop":
        assert data["tests"]["window"] == {"verdict": "not applicable (no weight decay "
                                           "argument)", "lr": None, "claims": []}
    if optimizer["name"] == "gd":
        for test in ("tang", "window"):
            assert data["tests"][test] == {"verdict": "not applicable (a full-batch "
                                           "optimizer)", "lr": None, "claims": []}
    md = (tmp_path / "card.md").read_text()
    assert optimizer["name"] in md and "(source sha256" not in md  # torch's version instead
    assert (tmp_path / "card.png").stat().st_size > 10_000


@pytest.mark.slow
def test_an_optimizer_of_its_own_package_gets_a_card_in_one_command(tmp_path):
    """tests/outside is a package of its own (SignSGD with momentum as a torch.optim
    subclass): `adamgen card outside.signum:Signum --battery tiny` trains the tiny battery
    through the workflow and writes the card; a second call trains nothing."""
    env = {**os.environ, "PYTHONPATH": str(TESTS)}
    argv = [sys.executable, "-m", "adamgen.cli", "card", "outside.signum:Signum",
            "--set", "lr=1e-3", "--battery", "tiny", "--out", str(tmp_path / "card")]
    done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    for title in card.TITLES.values():
        assert any(line.startswith(title + ": ") for line in lines), done.stdout
    data = json.loads((tmp_path / "card" / "card.json").read_text())
    assert data["optimizer"] == {"name": "outside.signum:Signum", "lr": 1e-3}
    assert data["package"].startswith("outside (source sha256 ")
    # a verdict comes with its number, or with the reason the grid defines none
    assert all(c["mean"] is not None or "undefined on this grid" in c["note"]
               for t in data["tests"].values() for c in t["claims"]
               if c["verdict"] != "inconclusive")
    for name in ("card.md", "card.html", "card.png"):
        assert (tmp_path / "card" / name).stat().st_size > 1000
    folder = tmp_path / "results" / "cards"
    assert (folder / "outside_signum_signum" / "card.md").is_file()
    # a card's experiments give their summaries only: no figures of their own
    assert not list(folder.glob("card_*/figures/*"))
    again = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert again.returncode == 0 and "Nothing to be done" in again.stderr, again.stderr[-2000:]


@pytest.mark.parametrize("argv, words", [
    (["nopkg.opt:Nope"], "config key 'optimizer.name' = 'nopkg.opt:Nope': does not import"),
    (["torch.optim.NAdam", "--set", "lrr=1e-3"], "did you mean 'lr'"),
    (["torch.optim.NAdam", "--set", "lr=1e-3", "--test-lr", "caoo=1"], "did you mean 'cao'"),
    (["torch.optim.NAdam", "--set", "lr=1e-3", "--battery", "huge"], "is not a battery"),
    (["torch.nn.Linear"], "is not a torch.optim.Optimizer"),
])
def test_a_bad_card_command_is_one_line_and_writes_nothing(argv, words, tmp_path):
    done = subprocess.run([sys.executable, "-m", "adamgen.cli", "card", *argv],
                          cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert words in line, line
    assert not list(tmp_path.iterdir())  # no results/, no .snakemake/

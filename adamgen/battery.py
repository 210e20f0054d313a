"""Optimizer cards as workflow experiments: a card's battery (config/batteries/<name>.yaml)
with its optimizer put in the place of `candidate`.

A workflow config holds one card (`card:`) or several (`cards:`, the atlas):

    card:
      optimizer: {name: torch.optim.NAdam, lr: 1.0e-3}   # any optimizer, as a run names it
      name: nadam           # its folder, results/<config name>/<name>/ (default: from the name)
      battery: default      # or tiny (the test suite's)
      tune_lr: false        # true: lr x {0.1, 1, 10} in each test, chosen by training loss
      lrs: {cao: 4.0}       # a test's own learning rate, where the optimizer's does not suit it

Each test of the battery becomes an experiment `card_<name>_<test>` of the plan, trained and
summarised as any other (the references are adamgen's own rows, content-addressed run files
shared by every card); `adamgen.card` reads the summaries into the card.
"""

import copy
from pathlib import Path

from .config import load_yaml
from .errors import ConfigError
from .optim import external, optimizer_row
from .settings import did_you_mean

BATTERIES = Path(__file__).resolve().parents[1] / "config" / "batteries"
CANDIDATE = "candidate"
TESTS = ("zou", "tang", "cao", "window")
LR_FACTORS = (0.1, 1.0, 10.0)  # tune_lr's grid, around the card's lr
CARD_KEYS = ("optimizer", "name", "battery", "tune_lr", "lrs")


def card_name(optimizer: dict) -> str:
    """A card's default name: the optimizer's, in letters, digits and '_'."""
    return external.slug(str(optimizer.get("name", "")))


def cards(config: dict) -> list[dict]:
    """The config's cards (`card` and `cards`), each complete: optimizer, name, battery,
    tune_lr, lrs."""
    raw = ([config["card"]] if config.get("card") else []) + list(config.get("cards") or [])
    out, names = [], set()
    for k, card in enumerate(raw):
        where = "card" if config.get("card") and k == 0 else f"cards[{k}]"
        if not isinstance(card, dict) or not isinstance(card.get("optimizer"), dict) \
                or "name" not in card["optimizer"]:
            raise ConfigError(f"{where}.optimizer", "must name an optimizer: {name: ..., lr: ...}")
        for key in card:
            if key not in CARD_KEYS:
                hint = did_you_mean(key, list(CARD_KEYS))
                raise ConfigError(f"{where}.{key}", f"is not a card key ({hint}keys: "
                                  f"{', '.join(CARD_KEYS)})")
        name = card.get("name") or card_name(card["optimizer"])
        if name in names:
            raise ConfigError(f"{where}.name", "is the name of another card", name)
        names.add(name)
        battery = card.get("battery", "default")
        if not (BATTERIES / f"{battery}.yaml").is_file():
            known = sorted(p.stem for p in BATTERIES.glob("*.yaml"))
            raise ConfigError(f"{where}.battery", f"is not a battery ({', '.join(known)})",
                              battery)
        lrs = card.get("lrs") or {}
        if not isinstance(lrs, dict):
            raise ConfigError(f"{where}.lrs", "must map a test to its learning rate", lrs)
        for test, lr in lrs.items():
            if test not in TESTS:
                hint = did_you_mean(str(test), list(TESTS))
                raise ConfigError(f"{where}.lrs.{test}", f"is not a test of the battery ({hint}"
                                  f"tests: {', '.join(TESTS)}; jiang's runs are zou's)")
            if isinstance(lr, bool) or not isinstance(lr, int | float) or not lr > 0 \
                    or lr == float("inf"):
                raise ConfigError(f"{where}.lrs.{test}", "must be a positive number", lr)
        out.append({"optimizer": dict(card["optimizer"]), "name": name, "battery": battery,
                    "tune_lr": bool(card.get("tune_lr", False)), "lrs": dict(lrs)})
    return out


def load_battery(name: str) -> dict:
    return load_yaml(BATTERIES / f"{name}.yaml")


def experiment(card: str, test: str) -> str:
    return f"card_{card}_{test}"


def has_decay(optimizer: dict) -> bool:
    """Whether the optimizer takes a weight decay (every row of adamgen's table does)."""
    return "weight_decay" in optimizer_row(optimizer["name"]).defaults


def not_applicable(optimizer: dict, test: str) -> str | None:
    """Why a test of the battery does not apply to the optimizer, or None."""
    row = optimizer_row(optimizer["name"])
    if test == "window" and not has_decay(optimizer):
        return "no weight decay argument"
    if test in ("tang", "window") and row.full_batch:
        return "a full-batch optimizer"
    return None


def _candidate(card: dict, test: str, spec: dict) -> tuple[str, dict]:
    """The candidate's entry of an experiment's optimizers: its name, and its fragment (the
    card's arguments; its lr times the test's `lr_scale`, or the test's own lr from the card's
    `lrs`; the test's grid; lr's grid where the card tunes it)."""
    decays = has_decay(card["optimizer"])
    settings = spec.get("optimizer") or {}  # the test's settings of the candidate
    optimizer = {k: v for k, v in settings.items() if k != "weight_decay"}
    optimizer |= {k: v for k, v in card["optimizer"].items() if k != "name"}  # the card's win
    if decays and "weight_decay" in settings:  # but a test's weight decay is the test's
        optimizer["weight_decay"] = settings["weight_decay"]
    if test in card["lrs"]:
        optimizer["lr"] = card["lrs"][test]
    elif "lr" in card["optimizer"] and spec.get("lr_scale", 1) != 1:
        # the card's lr scaled to the test's problem; an optimizer left at its own default lr
        # (Adadelta's, L-BFGS's: a multiplier of a step of their own scale) keeps it
        optimizer["lr"] = card["optimizer"]["lr"] * spec["lr_scale"]
    grid = dict(spec.get("grid") or {})
    if not decays:
        grid.pop("weight_decay", None)  # its own decay or none: the test runs without it
    if card["tune_lr"]:
        lr = optimizer.get("lr")
        if not isinstance(lr, int | float):
            raise ConfigError("card.tune_lr", "needs the optimizer's lr to grid around")
        grid["lr"] = [lr * f for f in LR_FACTORS]
    fragment = {**{k: v for k, v in spec.items() if k not in ("grid", "lr_scale")},
                "optimizer": optimizer}
    if grid:
        fragment["grid"] = grid
    return card["optimizer"]["name"], fragment


def experiments(config: dict) -> dict[str, dict]:
    """Every card's battery as experiments of the workflow config."""
    out = {}
    for card in cards(config):
        battery = load_battery(card["battery"])
        for test, spec in battery.items():
            if not_applicable(card["optimizer"], test):
                continue
            spec = copy.deepcopy(spec)
            optimizers = {}
            for key, fragment in spec["optimizers"].items():
                if key == CANDIDATE:
                    name, fragment = _candidate(card, test, fragment or {})
                    optimizers[name] = fragment
                elif key not in optimizers:  # a reference (the candidate's own row wins)
                    optimizers[key] = fragment
            spec["optimizers"] = optimizers
            out[experiment(card["name"], test)] = spec
    return out

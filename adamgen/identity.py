"""A run's identity: the hash of everything that determines its numbers, and the name of its
file. Run files are content-addressed: a run keeps its path until one of its own settings
changes, and experiments (or configs) that contain the same run share its file.
"""

import hashlib
import json
from typing import Any

from .config import RunConfig
from .engines import engine_keys
from .optim import external, optimizer_row


def digest(obj: Any, length: int) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"))
    return hashlib.sha1(text.encode()).hexdigest()[:length]


# keys that came after the first release, left out of the hash at these values (what every
# run had before they existed), so that runs finished then keep their paths
LATER_KEYS = {("model", "name"): "two_layer_cnn", ("probes", "extra"): [],
              ("probes", "hessian_probes"): 0, ("probes", "hessian_examples"): 0,
              ("train", "precision"): "float32"}
# the same for settings added to one optimizer later: (optimizer, key) → the old behaviour
LATER_OPTIMIZER_KEYS = {("rmsprop", "momentum"): 0.0}
# how a run is carried out, not what it computes (with the engines' keys that do not bind:
# train.compile)
NOT_HASHED = {("train", "device"), ("train", "engine"), ("train", "checkpoint_every"),
              *(("train", name) for name, (key, _) in engine_keys().items() if not key.binding)}


def run_hash(run: RunConfig) -> str:
    """Hash of everything that determines the run's numbers.

    Where it runs (device, engine) is left out: the engines agree to float tolerance (tests),
    and the run file records which one ran. So is how often it saves a checkpoint (a resumed
    run gives the same numbers), and a key added since the first release at the value that
    reproduces the runs from before it (`LATER_KEYS`, `LATER_OPTIMIZER_KEYS`). An optimizer
    whose update has changed since (`NamedOptimizer.revision`) adds its revision.
    """
    d = run.to_dict()
    for section, values in d.items():
        if isinstance(values, dict):
            d[section] = {k: v for k, v in values.items() if (section, k) not in NOT_HASHED
                          and LATER_KEYS.get((section, k), object()) != v}
    name = run.optimizer["name"]
    d["optimizer"] = {k: v for k, v in d["optimizer"].items()
                      if LATER_OPTIMIZER_KEYS.get((name, k), object()) != v}
    revision = optimizer_row(name).revision
    if revision:  # its update changed: its old run files are not this run
        d["optimizer"]["revision"] = revision
    return digest(d, 10)


def run_id(run: RunConfig) -> str:
    """<optimizer>/B..-lr..-wd..-T..-seed..-<hash>; an outside optimizer's folder is its
    import path in letters, digits and '_' (external.slug)."""
    o = run.optimizer
    if external.is_import_path(o["name"]):
        folder, lr, wd = (external.slug(o["name"]), external.value(o, "lr"),
                          external.value(o, "weight_decay"))
    else:
        folder, lr, wd = o["name"], o["lr"], o["weight_decay"]
    label = f"B{run.batch_size}-lr{lr:g}-wd{wd:g}-T{run.train.epochs}-seed{run.seed}"
    return f"{folder}/{label}-{run_hash(run)}"

import copy

import pytest
import torch

from adamgen.config import parse_run_config

TINY = {
    "seed": 0,
    "data": {"d": 60, "n": 20, "s": 8, "sigma_p": 0.35, "alpha": 0.2, "n_test": 300},
    "model": {"q": 3, "m": 4, "sigma_0": 0.05},
    "optimizer": {"name": "adam", "lr": 1e-3, "weight_decay": 1e-4},
    "train": {"batch_size": 20, "epochs": 30, "dtype": "float64"},
    "probes": {"per_decade": 4},
}


def merge(base: dict, changes: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


@pytest.fixture
def tiny_raw():
    """A factory for tiny raw run configs: tiny_raw(optimizer={...}, train={...})."""
    return lambda **changes: merge(TINY, changes)


@pytest.fixture
def tiny():
    """A factory for tiny resolved RunConfigs."""
    return lambda **changes: parse_run_config(merge(TINY, changes))


@pytest.fixture(autouse=True)
def _deterministic_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)

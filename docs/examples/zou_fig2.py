"""Zou et al. Fig. 2 from the run files alone: feature learning and noise memorization of
full-batch Adam and GD (E1, docs/science.md §6), means over seeds.

    python docs/examples/zou_fig2.py zou_e1 config/config.yaml fig2.png [weight_decay]
"""

import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import adamgen  # noqa: E402
from adamgen.analysis import shared_epochs  # noqa: E402


def curves(experiment: str, config: str, weight_decay: float | None = None) -> dict:
    """optimizer → (epochs, max_r ⟨w_{+1,r}, v⟩, max_i max_r ⟨w_{+1,r}, ξ_i⟩): means over the
    seeds of its full-batch runs (at one weight decay, if given)."""
    runs = adamgen.open_runs(experiment=experiment, config=config)
    out = {}
    for name in ("adam", "gd"):
        mine = (runs.optimizer == name) & (runs.batch_size == runs.data_n)
        if weight_decay is not None:
            mine &= runs.weight_decay == weight_decay
        one = shared_epochs(runs.where(mine, drop=True))  # its seeds, on one schedule
        feature = one.feature_learning.sel(j=1).max("r").mean("run")
        noise = one.noise_memorization_max.sel(j=1).mean("run")
        out[name] = (one.epoch.values, feature.values, noise.values)
    return out


def main(experiment: str, config: str, out: str, weight_decay: str | None = None) -> None:
    fig, (left, right) = plt.subplots(1, 2, figsize=(7, 2.8), constrained_layout=True)
    wd = None if weight_decay is None else float(weight_decay)
    for name, (epoch, feature, noise) in curves(experiment, config, wd).items():
        left.plot(epoch, feature, label=name)
        right.plot(epoch, noise, label=name)
    for ax, what in ((left, "max_r <w_(+1,r), v>"), (right, "max_i max_r <w_(+1,r), xi_i>")):
        ax.set(xscale="symlog", xlabel="epoch", ylabel=what)
    left.legend()
    fig.savefig(out, dpi=120)


if __name__ == "__main__":
    main(*sys.argv[1:5])

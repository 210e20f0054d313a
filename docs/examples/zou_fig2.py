"""Zou et al. Fig. 2 from the run files alone: feature learning and noise memorization of
full-batch Adam and GD (E1, docs/science.md §6), means over seeds.

    python docs/examples/zou_fig2.py "results/runs/*/*.nc" 1e-5 fig2.png
"""

import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import adamgen  # noqa: E402

pattern, weight_decay, out = sys.argv[1], float(sys.argv[2]), sys.argv[3]
runs = adamgen.open_runs(pattern)
e1 = runs.where((runs.batch_size == runs.data_n) & (runs.weight_decay == weight_decay)
                & (runs.data_kind == "patch"), drop=True)
fig, (left, right) = plt.subplots(1, 2, figsize=(7, 2.8), constrained_layout=True)
for name, group in e1.groupby("optimizer"):
    longest = group.where(group.epochs == group.epochs.max(), drop=True)
    left.plot(longest.epoch, longest.feature_learning.sel(j=1).max("r").mean("run"), label=name)
    right.plot(longest.epoch, longest.noise_memorization_max.sel(j=1).mean("run"), label=name)
for ax, what in ((left, "max_r <w_(+1,r), v>"), (right, "max_i max_r <w_(+1,r), xi_i>")):
    ax.set(xscale="symlog", xlabel="epoch", ylabel=what)
left.legend()
fig.savefig(out, dpi=120)

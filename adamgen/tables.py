"""Tables of final metrics, mean ± std over seeds, for every grid point of an experiment.

Columns: the grid axes (all but seed), the number of runs and of diverged runs, then for each
metric its mean and sample standard deviation over the seeds whose run completed. Feature
learning is max_r ⟨w_{j,r}, j v⟩; noise memorization is min (or max) over i with y_i = j of
max_r ⟨w_{j,r}, ξ_i⟩, for j = +1 and j = −1.
"""

import csv
import itertools
import math
from pathlib import Path

import numpy as np
import xarray as xr

from ._io import atomic_path
from .aggregate import grid_dims

# column → (summary variable, class index or None, header)
METRICS = {
    "train_error": ("final_train_error", None, "train error"),
    "test_error": ("final_test_error", None, "test error"),
    "feature_pos": ("final_feature_learning_max", 0, "feature (j=+1)"),
    "feature_neg": ("final_feature_learning_max", 1, "feature (j=-1)"),
    "noise_min_pos": ("final_noise_memorization_min", 0, "noise min (j=+1)"),
    "noise_min_neg": ("final_noise_memorization_min", 1, "noise min (j=-1)"),
    "noise_max_pos": ("final_noise_memorization_max", 0, "noise max (j=+1)"),
    "noise_max_neg": ("final_noise_memorization_max", 1, "noise max (j=-1)"),
}


def rows(summary: xr.Dataset) -> list[dict]:
    """One row per grid point with at least one run: axes, counts, mean and std per metric."""
    dims = [d for d in grid_dims(summary) if d != "seed"]
    out = []
    for values in itertools.product(*(summary[d].values.tolist() for d in dims)):
        cell = summary.sel(dict(zip(dims, values, strict=True)))
        status = np.atleast_1d(cell["status"].values)
        if not (status != "").any():
            continue
        row = dict(zip(dims, values, strict=True))
        row["runs"] = int((status != "").sum())
        row["diverged"] = int((status == "diverged").sum())
        for column, (var, j, _) in METRICS.items():
            data = cell[var] if j is None else cell[var].isel(j=j)
            finite = np.atleast_1d(data.values)
            finite = finite[np.isfinite(finite)]
            row[f"{column}_mean"] = float(finite.mean()) if finite.size else math.nan
            row[f"{column}_std"] = float(finite.std(ddof=1)) if finite.size > 1 else math.nan
        out.append(row)
    return out


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def number(x: float) -> str:
    """Four decimals where that reads well, else four significant digits in exponent form."""
    if x == 0 or 1e-3 <= abs(x) < 1e4:
        return f"{x:.4f}"
    return f"{x:.3e}"


def _pm(row: dict, column: str) -> str:
    mean, std = row[f"{column}_mean"], row[f"{column}_std"]
    if math.isnan(mean):
        return "n/a"
    return number(mean) if math.isnan(std) else f"{number(mean)} ± {number(std)}"


def _runs(row: dict) -> str:
    done = f"{row['runs'] - row['diverged']}/{row['runs']}"
    return f"{done} ({row['diverged']} diverged)" if row["diverged"] else done


def write(summary: xr.Dataset, csv_path, md_path, tex_path) -> list[dict]:
    table = rows(summary)
    dims = [d for d in grid_dims(summary) if d != "seed"]
    with atomic_path(csv_path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(table[0]) if table else dims)
        writer.writeheader()
        writer.writerows(table)

    headers = [*dims, "runs", *(h for _, _, h in METRICS.values())]
    body = [[*(_fmt(r[d]) for d in dims), _runs(r), *(_pm(r, c) for c in METRICS)]
            for r in table]
    name = summary.attrs["experiment"]
    md = [f"### {name}: final metrics, mean ± std over seeds", "",
          "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    md += ["| " + " | ".join(line) + " |" for line in body]
    md += ["", "runs: completed/all seeds of the grid point; a diverged run (its loss became "
           "infinite or NaN) is left out of the means. feature: max_r <w_(j,r), j v>; "
           "noise min/max: min/max over i with y_i = j of max_r <w_(j,r), xi_i>."]
    with atomic_path(md_path) as tmp:
        Path(tmp).write_text("\n".join(md) + "\n")

    def tex(text: str) -> str:
        return text.replace("_", r"\_").replace("±", r"$\pm$")

    lines = [r"\begin{tabular}{" + "l" * len(dims) + "r" * (len(headers) - len(dims)) + "}",
             r"\hline", " & ".join(tex(h) for h in headers) + r" \\", r"\hline"]
    lines += [" & ".join(tex(c) for c in line) + r" \\" for line in body]
    lines += [r"\hline", r"\end{tabular}"]
    with atomic_path(tex_path) as tmp:
        Path(tmp).write_text("\n".join(lines) + "\n")
    return table

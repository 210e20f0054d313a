"""Tables of final metrics, mean ± std over seeds, for every grid point of an experiment.

Columns: the grid axes (all but seed), the number of runs and of diverged runs, then for each
metric its mean and sample standard deviation over the seeds whose run completed. The metrics
are the final training and test error and every per-class summary the runs' probe sets
declare (adamgen.probes): feature learning and noise memorization for the patch model, signal
learning and the noise coefficients ρ̄, ρ̲ for the benign model, each for j = +1 and j = −1.
"""

import csv
import itertools
import math
from pathlib import Path

import numpy as np
import xarray as xr

from ._io import atomic_path
from .aggregate import grid_dims
from .probes import ALL_VARIABLES

_BY_SUMMARY_NAME = {var.summarized(name): (name, var) for name, var in ALL_VARIABLES.items()}


def metrics(summary: xr.Dataset) -> dict[str, tuple[str, int | None, str]]:
    """column → (summary variable, class index or None, header)."""
    out = {"train_error": ("final_train_error", None, "train error"),
           "test_error": ("final_test_error", None, "test error")}
    for var in summary.data_vars:
        base = var.removeprefix("final_")
        if var.startswith("final_") and summary[var].dims[-1:] == ("j",) and \
                base in _BY_SUMMARY_NAME:
            label = _BY_SUMMARY_NAME[base][1].label or base
            for j, sign in ((0, "+1"), (1, "-1")):
                out[f"{base}_{'pos' if j == 0 else 'neg'}"] = (var, j, f"{label} (j={sign})")
    return out


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
        for column, (var, j, _) in metrics(summary).items():
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

    columns = metrics(summary)
    headers = [*dims, "runs", *(h for _, _, h in columns.values())]
    body = [[*(_fmt(r[d]) for d in dims), _runs(r), *(_pm(r, c) for c in columns)]
            for r in table]
    name = summary.attrs["experiment"]
    md = [f"### {name}: final metrics, mean ± std over seeds", "",
          "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    md += ["| " + " | ".join(line) + " |" for line in body]
    md += ["", "runs: completed/all seeds of the grid point; a diverged run (its loss became "
           "infinite or NaN) is left out of the means."]
    md += [f"{h.split(' (j=')[0]}: {summary[v].attrs.get('long_name', v)}."
           for v, j, h in columns.values() if j == 0]
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

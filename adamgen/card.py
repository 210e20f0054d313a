"""An optimizer's card: where the papers' tests put it, read from its battery's summaries
(adamgen.battery) with the claims' reading rules (adamgen.claims.rules).

    zou      Zou et al.'s separation at full batch: does it learn the feature like GD, or
             memorize the noise like Adam?
    tang     Tang et al.'s batch size: does B = 2 rescue it where B = n/2 fails?
    cao      Cao et al.'s plane: is its benign/harmful boundary at a larger SNR than GD's?
    jiang    Jiang et al.'s geometry: is its Hessian diagonal more uniform than SGD+M's?
    window   the weight-decay window: does it stall by lambda = 0.1 like Adam, or train on
             like AdamW?

Each question is a few claims (`card_claims`), evaluated as the papers' claims are: a rule of
the table reads the statement, the measured numbers stand beside the verdict, and every claim
can fail. With `tune_lr`, each test's learning rate is the one of lr x {0.1, 1, 10} whose runs
end with the lowest training loss (never the test error).
"""

import html
import json
import math
import textwrap
from pathlib import Path

import numpy as np
import xarray as xr

from . import battery, claims, planner
from ._io import atomic_path
from .config import load_yaml_text, numbers
from .errors import ConfigError
from .optim import external

LAMBDA_ADAM = 0.1  # the window test: Adam stalls by here (sigma_0^(q-2) = 0.01 on its grid)


def _lr(summaries: dict, card: dict, test: str) -> float | None:
    """The test's learning rate: the card's, or with tune_lr the one of the grid whose runs
    end with the lowest mean training loss."""
    if not card["tune_lr"]:
        return None
    ds = summaries.get(battery.experiment(card["name"], test))
    if ds is None or "lr" not in ds.dims:
        return None
    loss = ds["final_train_loss"].sel(optimizer=card["optimizer"]["name"])
    per_lr = loss.mean([d for d in loss.dims if d != "lr"], skipna=True)
    finite = per_lr.where(np.isfinite(per_lr), drop=True)
    return float(finite["lr"][int(finite.argmin())]) if finite.size else None


def _entry(card: dict, test: str, cid: str, text: str, lr: float | None, **fields) -> dict:
    where = dict(fields.pop("where", {}))
    if lr is not None:
        where["lr"] = lr
    return {"id": f"{card['name']}.{cid}", "claim": text, "kind": "beyond",
            "source": fields.pop("source"), "experiment": battery.experiment(card["name"], test),
            "where": where, **fields}


def card_claims(card: dict, lrs: dict) -> dict[str, list]:
    """The card's statements, by test, as claims (kind beyond: the papers' tests asked of
    another optimizer)."""
    me = card["optimizer"]["name"]
    out: dict[str, list] = {}
    zou = {"where": {"optimizer": me}, "source": "Zou et al. ICLR 2023 §6, Thm 4.1"}
    out["zou"] = [
        _entry(card, "zou", "zou.feature", "learns the feature: final max_r <w_{+1,r}, v> of "
               "a constant order", lrs["zou"], metric="feature_learning", rule="theta",
               value=1, **zou),
        _entry(card, "zou", "zou.flip", "flips the feature: final max_r <w_{+1,r}, v> below 0",
               lrs["zou"], metric="feature_learning", rule="sign", value=-1, **zou),
        _entry(card, "zou", "zou.generalises", "generalises: test error o(1)", lrs["zou"],
               metric="test_error", rule="o1", **zou),
        _entry(card, "zou", "zou.chance", "no better than chance: test error >= 1/2 - o(1)",
               lrs["zou"], metric="test_error", rule="half_minus_o1", **zou),
    ]
    out["tang"] = []
    tang = battery.load_battery(card["battery"])["tang"]
    if battery.not_applicable(card["optimizer"], "tang"):
        decays = []
    elif battery.has_decay(card["optimizer"]):
        decays = tang["optimizers"][battery.CANDIDATE]["grid"]["weight_decay"]
    else:
        decays = [None]
    large, small = max(tang["grid"]["batch_size"]), min(tang["grid"]["batch_size"])
    for lam in decays:
        where = {"optimizer": me} | ({} if lam is None else {"weight_decay": lam})
        tag, key = ("", "own") if lam is None else (f" (lambda = {lam:g})", f"{lam:g}")
        source = "Tang et al. 2025, Thms 4.1-4.2"
        out["tang"] += [
            _entry(card, "tang", f"tang.large_{key}", f"fails at B = {large}{tag}: test error "
                   ">= 1/2 - o(1)", lrs["tang"], metric="test_error", rule="half_minus_o1",
                   where={**where, "batch_size": large}, source=source),
            _entry(card, "tang", f"tang.small_{key}", f"generalises at B = {small}{tag}: test "
                   "error o(1)", lrs["tang"], metric="test_error", rule="o1",
                   where={**where, "batch_size": small}, source=source),
        ]
    undefined = {"verdict": "inconclusive", "because": "a boundary beyond the plane's grid "
                 "(no SNR of it on one side) places it nowhere"}
    side = {} if lrs["cao"] is None else {"lr": lrs["cao"]}
    out["cao"] = [_entry(
        card, "cao", "cao.fits", "fits its training data over the whole plane (benign or "
        "harmful overfitting presumes it): the largest final training error o(1)", lrs["cao"],
        metric="train_error", where={"optimizer": me}, maximum=["data.n", "data.snr"],
        rule="o1", source="Cao et al. NeurIPS 2022, Thm 4.2 (training loss to zero)"),
        _entry(
        card, "cao", "cao.boundary", "its benign/harmful boundary at a larger SNR than GD's: "
        "log10 SNR* over GD's, mean over n", None, metric="log10_boundary_snr",
        compare={"a": {"optimizer": "gd"}, "b": {"optimizer": me, **side}}, as_="difference",
        average=["data.n"], rule="sign", value=1, undefined=undefined,
        source="Cao et al. NeurIPS 2022; Zou et al. (Adam memorises where GD learns)")]
    side = {} if lrs["zou"] is None else {"lr": lrs["zou"]}
    out["jiang"] = [_entry(
        card, "zou", "jiang.rmed", "a more uniform Hessian diagonal than SGD+M's: log10 R_med "
        "(filters of class +1, median along the run) over SGD+M's", None, metric="rmed",
        layer="j=+1", at="median", compare={"a": {"optimizer": "sgd_momentum"},
                                            "b": {"optimizer": me, **side}},
        as_="log10_ratio", rule="sign", value=-1,
        undefined={"verdict": "inconclusive", "because": "R_med is undefined where a layer's "
                   "median |H_ii| vanishes"}, source="Jiang et al. NeurIPS 2023 §4")]
    out["window"] = []
    if not battery.not_applicable(card["optimizer"], "window"):
        window = battery.load_battery(card["battery"])["window"]
        least = min(window["optimizers"][battery.CANDIDATE]["grid"]["weight_decay"])
        out["window"] = [_entry(
            card, "window", "window.trains", f"trains at the grid's smallest lambda = "
            f"{least:g} (a window needs a start): final training error o(1)", lrs["window"],
            metric="train_error", where={"optimizer": me, "weight_decay": least}, rule="o1",
            source="Tang et al. 2025, Thms 4.1 and 4.4 (small lambda)"), _entry(
            card, "window", "window.stall", f"stalls by lambda = {LAMBDA_ADAM:g}, as Adam does: "
            "the smallest lambda whose training error reaches 0.25", lrs["window"],
            metric="stall_boundary", where={"optimizer": me}, rule="within",
            value=[0, LAMBDA_ADAM], axis="weight_decay",
            undefined={"verdict": "fails", "because": "it trains at every lambda of the grid"},
            source="Tang et al. 2025, Cor. 4.3 and 4.6")]
    return {test: claims.parse_claims({"claims": [
        {("as" if k == "as_" else k): v for k, v in e.items()} for e in entries]})
        for test, entries in out.items()}


def _words(test: str, rows: dict) -> str:
    """The test's verdict in words, from its claims' verdicts."""
    v = {r.claim.id.split(".", 1)[1]: r.verdict for r in rows}
    if test == "zou":
        if v.get("zou.feature") == "holds" and v.get("zou.generalises") == "holds":
            return "learns the feature like GD"
        if v.get("zou.flip") == "holds" and v.get("zou.chance") == "holds":
            return "memorizes the noise like Adam"
        if v.get("zou.generalises") == "holds" and v.get("zou.flip") == "fails":
            return "generalises, with a feature outside GD's Θ(1)"
        return "in between"
    if test == "tang":
        words = []
        for key in sorted({k.split("_", 1)[1] for k in v if k.startswith("tang.large_")}):
            large, small = v[f"tang.large_{key}"], v[f"tang.small_{key}"]
            tag = "" if key == "own" else f" at lambda = {key}"
            words.append({("holds", "holds"): "a small batch rescues it",
                          ("holds", "fails"): "generalises at both batch sizes",
                          ("fails", "holds"): "fails at both batch sizes",
                          ("fails", "fails"): "generalises at the large batch only"}.get(
                (small, large), "neither side (see the numbers)") + tag)
        return "; ".join(words)
    if not rows:
        return "not applicable"
    if test == "window":
        if v.get("window.trains") != "holds":
            return "does not train at the smallest lambda: no window"
        return {"holds": f"stalls by lambda = {LAMBDA_ADAM:g}, like Adam",
                "fails": f"trains past lambda = {LAMBDA_ADAM:g}, like AdamW"}.get(
            v.get("window.stall"), "undefined")
    if test == "cao":
        if v.get("cao.fits") != "holds":
            return "does not fit its training data: no boundary to place"
        return {"holds": "harmful over more of the plane than GD",
                "fails": "benign over more of the plane than GD"}.get(
            v.get("cao.boundary"), "its boundary lies beyond the plane's grid")
    (row,) = rows  # jiang
    return {"holds": "a more uniform Hessian diagonal than SGD+M",
            "fails": "no more uniform than SGD+M"}.get(
        row.verdict, "R_med undefined (a median |H_ii| of 0)")


def evaluate(card: dict, summaries: dict) -> dict:
    """The card's verdicts, by test: its words, and its claims' rows."""
    lrs = {test: _lr(summaries, card, test) for test in battery.TESTS}
    out = {}
    for test, cs in card_claims(card, lrs).items():
        rows = claims.evaluate(cs, summaries)
        why = battery.not_applicable(card["optimizer"], test)
        out[test] = {"words": f"not applicable ({why})" if why else _words(test, rows),
                     "rows": rows,
                     "lr": lrs["zou" if test == "jiang" else test]}
    return out


def _row_dict(r) -> dict:
    return {"id": r.claim.id, "claim": r.claim.claim, "rule": r.claim.rule,
            "expected": r.expected, "verdict": r.verdict,
            "mean": None if math.isnan(r.mean) else r.mean, "seeds": f"{r.passing}/{r.n}",
            "note": r.reason}


def to_json(card: dict, verdicts: dict) -> dict:
    optimizer = card["optimizer"]
    name = optimizer["name"]
    return {"card": card["name"], "optimizer": optimizer,
            "package": external.package(name) if external.is_import_path(name)
            else "adamgen's table", "battery": card["battery"],
            "tests": {t: {"verdict": v["words"], "lr": v["lr"],
                          "claims": [_row_dict(r) for r in v["rows"]]}
                      for t, v in verdicts.items()}}


TITLES = {"zou": "Zou et al.'s separation (full batch)", "tang": "Tang et al.'s batch size",
          "cao": "Cao et al.'s plane (benign vs harmful)",
          "jiang": "Jiang et al.'s geometry (R_med)", "window": "the weight-decay window"}


def to_markdown(data: dict) -> str:
    o = data["optimizer"]
    args = ", ".join(f"{k}={v}" for k, v in o.items() if k not in ("name", "package"))
    lines = [f"# Optimizer card: {o['name']}", "",
             f"`{o['name']}` ({data['package']}) with {args or 'its defaults'}, battery "
             f"`{data['battery']}`. Each verdict reads the papers' test with adamgen's reading "
             "rules (docs/science.md); the numbers are the means over the battery's seeds.",
             "", "| test | verdict | learning rate |", "| --- | --- | --- |"]
    for test, t in data["tests"].items():
        lr = "the card's" if t["lr"] is None else f"{t['lr']:g} (lowest training loss)"
        lines.append(f"| {TITLES[test]} | **{t['verdict']}** | {lr} |")
    lines += ["", "| statement | rule | measured | expected | verdict |",
              "| --- | --- | --- | --- | --- |"]
    for t in data["tests"].values():
        for c in t["claims"]:
            mean = "–" if c["mean"] is None else f"{c['mean']:.4g} ({c['seeds']})"
            lines.append(f"| {c['claim']} | {c['rule']} | {mean} | {c['expected']} | "
                         f"{c['verdict']}{': ' + c['note'] if c['note'] else ''} |")
    lines += ["", "![card](card.png)", ""]
    return "\n".join(lines)


def to_html(data: dict) -> str:
    md = to_markdown(data)
    rows = []
    for line in md.splitlines():
        if line.startswith("| ---"):
            continue
        if line.startswith("|"):
            cells = [html.escape(c.strip()).replace("**", "") for c in line.strip("|").split("|")]
            rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
        elif line.startswith("# "):
            rows.append(f"</table><h2>{html.escape(line[2:])}</h2><table>")
        elif line.startswith("!["):
            rows.append('</table><img src="card.png" style="max-width:100%"><table>')
        elif line.strip():
            rows.append(f"</table><p>{html.escape(line)}</p><table>")
    body = "".join(rows)
    return ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>Optimizer card</title>"
            "<style>body{font-family:sans-serif;font-size:13px}table{border-collapse:collapse}"
            "td{border:1px solid #bbb;padding:3px 6px}</style></head><body><table>"
            f"{body}</table></body></html>\n")


def figure(card: dict, summaries: dict, verdicts: dict):
    """One figure: the candidate against the references in each test."""
    from .figures.plots import _panels, _title  # lazy: matplotlib loads for figures only

    me = card["optimizer"]["name"]
    fig, axes = _panels(6, height=2.6)
    colours = {me: "C3", "gd": "C0", "adam": "C1", "sgd_momentum": "C2"}

    def trajectory(ax, test, variable, ylabel, sel=None):
        ds = summaries.get(battery.experiment(card["name"], test))
        if ds is None or variable not in ds:
            return
        present = [o for o in ds["optimizer"].values.tolist() if o in colours]
        for opt in sorted(present, key=lambda o: o == me):  # the card's optimizer on top
            da = ds[variable].sel(optimizer=opt, **(sel or {}))
            if verdicts[test]["lr"] is not None and opt == me:
                da = da.sel(lr=verdicts[test]["lr"])
            da = da.mean([d for d in da.dims if d != "epoch"], skipna=True)
            ok = np.isfinite(da.values)
            ax.plot(ds["epoch"].values[ok], da.values[ok], color=colours[opt], label=opt,
                    **({"ls": "--", "lw": 2} if opt == me else {}))
        ax.set_xscale("symlog", linthresh=1)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)

    def title(ax, text):  # a verdict in words, wrapped to the panel
        ax.set_title(textwrap.fill(text, 48), fontsize=8)

    trajectory(axes[0], "zou", "feature_learning_max", "max_r <w_(+1,r), v>", {"j": 1})
    title(axes[0], f"zou: {verdicts['zou']['words']}")
    trajectory(axes[1], "zou", "noise_memorization_min", "min_i max_r <w, xi_i>", {"j": 1})
    title(axes[1], "zou: noise memorization")
    trajectory(axes[2], "zou", "rmed", "R_med (j=+1)", {"layer": "j=+1"})
    _log(axes[2], "y")
    title(axes[2], f"jiang: {verdicts['jiang']['words']}")
    _final_against(axes[3], summaries, card, "tang", "batch_size", "final_test_error",
                   "test error", colours, verdicts)
    title(axes[3], f"tang: {verdicts['tang']['words']}")
    _boundary(axes[4], summaries, card, colours)
    title(axes[4], f"cao: {verdicts['cao']['words']}")
    _final_against(axes[5], summaries, card, "window", "weight_decay", "final_train_error",
                   "training error", colours, verdicts)
    title(axes[5], f"window: {verdicts['window']['words']}")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncol=4)
    _title(fig, f"Optimizer card: {me} (battery {card['battery']})")
    return fig


def _log(ax, *axes: str) -> None:
    """Log scales on the axes whose drawn data have a positive value (none: left linear, with
    a word that nothing positive was drawn)."""
    data = [line.get_xydata() for line in ax.get_lines()]
    for name in axes:
        col = 0 if name == "x" else 1
        values = np.concatenate([d[:, col] for d in data]) if data else np.array([])
        if (values[np.isfinite(values)] > 0).any():
            (ax.set_xscale if name == "x" else ax.set_yscale)("log")
        elif name == "y":
            ax.text(0.5, 0.5, "nothing defined to draw", ha="center", transform=ax.transAxes,
                    fontsize=7)


def _final_against(ax, summaries, card, test, axis, variable, ylabel, colours, verdicts):
    ds = summaries.get(battery.experiment(card["name"], test))
    me = card["optimizer"]["name"]
    if ds is None or axis not in ds.dims:
        ax.text(0.5, 0.5, "not applicable", ha="center", transform=ax.transAxes)
        return
    sub = ds[variable].sel(optimizer=me)
    if verdicts[test]["lr"] is not None:
        sub = sub.sel(lr=verdicts[test]["lr"])
    sub = sub.mean([d for d in sub.dims if d == "seed"], skipna=True)
    lines = ([(f"{d}={v:g}", sub.sel({d: v})) for d in sub.dims if d != axis
              for v in sub[d].values.tolist()] or [(me, sub)])
    for k, (label, line) in enumerate(lines):  # one line per value of the other axis (lambda)
        line = line.mean([d for d in line.dims if d != axis], skipna=True)
        ok = np.isfinite(line.values)
        ax.plot(line[axis].values[ok], line.values[ok], "o-", color=f"C{3 + k}", label=label)
    _log(ax, "x")
    ax.set_xlabel(axis)
    ax.set_ylabel(ylabel)
    ax.set_ylim(-0.03, 1.03)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6)


def _boundary(ax, summaries, card, colours):
    from .analysis import boundary_fit  # lazy: as figure

    ds = summaries.get(battery.experiment(card["name"], "cao"))
    if ds is None:
        return
    me = card["optimizer"]["name"]
    present = [o for o in ds["optimizer"].values.tolist() if o in colours]
    for opt in sorted(present, key=lambda o: o == me):  # the card's optimizer on top
        error = ds["final_test_error"].sel(optimizer=opt)
        error = error.mean([d for d in error.dims if d not in ("data_n", "data_snr")],
                           skipna=True)
        _, _, star = boundary_fit(error, 0.25)
        ok = np.isfinite(star)
        ax.plot(error["data_n"].values[ok], star[ok], "o--" if opt == me else "o-",
                color=colours[opt], label=opt)
    _log(ax, "x", "y")
    ax.set_xlabel("n")
    ax.set_ylabel("SNR* (test error 0.25)")
    ax.grid(alpha=0.3)


def write(card: dict, summaries: dict[str, xr.Dataset], md, html_path, png, json_path) -> dict:
    """The card's files: Markdown, HTML, its figure and its verdicts as JSON (the atlas)."""
    from .figures import save  # lazy: matplotlib loads for figures only

    verdicts = evaluate(card, summaries)
    data = to_json(card, verdicts)
    for path, text in ((md, to_markdown(data)), (html_path, to_html(data)),
                       (json_path, json.dumps(data, indent=1))):
        with atomic_path(path) as tmp:
            Path(tmp).write_text(text)
    save(figure(card, summaries, verdicts), png)
    return data


# --- the atlas: every card of a config side by side ------------------------------------------

def _kind(test: str, words: str) -> int:
    """A verdict's side for the atlas's colours: 1 GD's (or AdamW's), -1 Adam's, 0 neither."""
    if test == "zou":
        return {"learns the feature like GD": 1, "memorizes the noise like Adam": -1,
                "generalises, with a feature outside GD's Θ(1)": 1}.get(words, 0)
    if test == "tang":  # one side only when every weight decay's verdict takes it
        sides = {-1 if "rescues" in part else 1 if "generalises at both" in part else 0
                 for part in words.split("; ")}
        return sides.pop() if len(sides) == 1 else 0
    if test == "cao":
        return -1 if words.startswith("harmful") else 1 if words.startswith("benign") else 0
    if test == "jiang":
        return -1 if words.startswith("a more uniform") else 1 if words.startswith("no") \
            else 0
    return 1 if words.endswith("like AdamW") else -1 if words.endswith("like Adam") else 0


SHORT = {  # a verdict in a few words, for the atlas's cells (the cards say it in full)
    "learns the feature like GD": "learns (GD)",
    "memorizes the noise like Adam": "memorizes (Adam)",
    "generalises, with a feature outside GD's Θ(1)": "generalises, feature ≫ Θ(1)",
    "harmful over more of the plane than GD": "harmful > GD",
    "benign over more of the plane than GD": "benign > GD",
    "does not fit its training data: no boundary to place": "no fit",
    "its boundary lies beyond the plane's grid": "beyond grid",
    "a more uniform Hessian diagonal than SGD+M": "more uniform",
    "no more uniform than SGD+M": "not more uniform",
    "R_med undefined (a median |H_ii| of 0)": "R_med undefined",
    "stalls by lambda = 0.1, like Adam": "stalls ≤ 0.1 (Adam)",
    "trains past lambda = 0.1, like AdamW": "trains past 0.1 (AdamW)",
    "does not train at the smallest lambda: no window": "no start",
    "a small batch rescues it": "rescued",
    "generalises at both batch sizes": "both generalise",
    "fails at both batch sizes": "both fail",
    "generalises at the large batch only": "large B only",
}


def short(test: str, words: str) -> str:
    """The atlas cell of a verdict: SHORT's words, Tang's one line per weight decay."""
    if words.startswith("not applicable"):
        return "n/a"
    if test == "tang":
        out = []
        for part in words.split("; "):
            verdict, _, lam = part.partition(" at lambda = ")
            out.append((f"λ={lam}: " if lam else "") + SHORT.get(verdict, verdict))
        return "\n".join(sorted(out))
    return SHORT.get(words, words)


def _labels(cards: list[dict]) -> list[str]:
    """Each card's row label: its optimizer, or where two cards share one, the card's name."""
    names = [c["optimizer"]["name"] for c in cards]
    return [n if names.count(n) == 1 else c["card"] for n, c in zip(names, cards, strict=True)]


def write_atlas(cards: list[dict], md, csv_path, png) -> None:
    """One table and one figure, optimizer × test, of the cards' verdicts."""
    import csv
    import io

    from .figures import save  # lazy: matplotlib loads for figures only
    from .figures.plots import _pyplot  # lazy: as above

    tests = list(TITLES)
    labels = _labels(cards)
    lines = ["# Atlas of optimizer cards", "",
             "Each cell is a card's verdict on one of the papers' tests, in short (docs/"
             "science.md §9; atlas.csv and each card say it in full, with the numbers behind "
             "it). Tang: per weight decay λ, B = 2 against B = n/2.", "",
             "| optimizer | lr | " + " | ".join(TITLES[t] for t in tests) + " |",
             "| --- | --- |" + " --- |" * len(tests)]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["card", "optimizer", "arguments", "package", *tests])
    for c, label in zip(cards, labels, strict=True):
        words = [c["tests"][t]["verdict"] if t in c["tests"] else "–" for t in tests]
        args = ", ".join(f"{k}={v}" for k, v in c["optimizer"].items() if k != "name")
        lr = c["optimizer"].get("lr", "its default")
        lines.append(f"| [{label}]({c['card']}/card.md) | {lr} | " + " | ".join(
            short(t, w).replace("\n", "; ").replace("|", "\\|")
            for t, w in zip(tests, words, strict=True)) + " |")
        writer.writerow([c["card"], c["optimizer"]["name"], args, c["package"], *words])
    for path, text in ((md, "\n".join(lines) + "\n"), (csv_path, buf.getvalue())):
        with atomic_path(path) as tmp:
            Path(tmp).write_text(text)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(2.6 + 1.55 * len(tests), 1.0 + 0.34 * len(cards)),
                           constrained_layout=True)
    grid = np.array([[_kind(t, c["tests"][t]["verdict"]) if t in c["tests"] else 0
                      for t in tests] for c in cards], dtype=float)
    ax.imshow(grid, cmap="coolwarm_r", vmin=-1.6, vmax=1.6, aspect="auto")
    for (i, j), _ in np.ndenumerate(grid):
        words = cards[i]["tests"][tests[j]]["verdict"] if tests[j] in cards[i]["tests"] else "–"
        ax.text(j, i, short(tests[j], words), ha="center", va="center", fontsize=6)
    ax.set_xticks(range(len(tests)), [textwrap.fill(TITLES[t], 22) for t in tests], fontsize=7)
    ax.xaxis.tick_top()
    ax.set_yticks(range(len(cards)), labels, fontsize=7)
    ax.set_title("Where each optimizer lands on the papers' tests. Blue: GD's side (the window: "
                 "AdamW's), red: Adam's, grey: neither or mixed", fontsize=8)
    save(fig, png)


# --- adamgen card: one command, through the workflow ------------------------------------------

CHECKOUT = Path(__file__).resolve().parents[1]  # the Snakefile beside the package


def card_config(optimizer: str, overrides: list[str], battery_name: str = "default",
                name: str | None = None, tune_lr: bool = False,
                lrs: list[str] | None = None) -> dict:
    """The workflow config of one card (config/card.yaml's shape), validated: a bad optimizer
    or argument is one line naming it, before Snakemake starts."""
    spec = {"name": optimizer}
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ConfigError(item, "--set takes an argument of the optimizer: key=value")
        spec[key.removeprefix("optimizer.")] = load_yaml_text(text, f"--set {item}")
    card = {"optimizer": numbers(spec), "battery": battery_name, "tune_lr": tune_lr}
    for item in lrs or []:
        test, sep, text = item.partition("=")
        if not sep or not test:
            raise ConfigError(item, "--test-lr takes a test and its lr: test=lr")
        card.setdefault("lrs", {})[test] = numbers(load_yaml_text(text, f"--test-lr {item}"))
    if name:
        card["name"] = name
    config = {"name": "cards", "runs_per_job": 16, "claims": "", "card": card}
    planner.plan(config)  # every run of the battery, validated
    return config


def run_card(optimizer: str, overrides: list[str], battery_name: str = "default",
             name: str | None = None, out: str | None = None, tune_lr: bool = False,
             lrs: list[str] | None = None, cores: int = 2, dry_run: bool = False) -> int:
    """Write the card's workflow config and run Snakemake on it; print the verdicts."""
    import shutil
    import subprocess
    import sys

    import yaml

    config = card_config(optimizer, overrides, battery_name, name, tune_lr, lrs)
    (card,) = battery.cards(config)
    folder = Path(planner.outputs(config)) / card["name"]
    path = Path(".snakemake") / "adamgen" / f"card-{card['name']}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    argv = [sys.executable, "-m", "snakemake", "--snakefile", str(CHECKOUT / "Snakefile"),
            "--configfile", str(path), "--cores", str(cores)] + (["-n"] if dry_run else [])
    print(f"adamgen card: {optimizer} on the {battery_name} battery ({path}); "
          f"snakemake {' '.join(argv[3:])}", file=sys.stderr)
    code = subprocess.call(argv)
    if code or dry_run:
        return code
    data = json.loads((folder / "card.json").read_text())
    for test, t in data["tests"].items():
        print(f"{TITLES[test]}: {t['verdict']}")
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        for f in ("card.md", "card.html", "card.png", "card.json"):
            shutil.copy(folder / f, Path(out) / f)
        folder = Path(out)
    print(f"the card: {folder / 'card.md'} (and card.html, card.png)")
    return 0

"""The claims page: every claim's verdict as Markdown, CSV and a standalone HTML page.

Claims that ran come first, in the order of the claims file; the ones this config did not run
follow in a section of their own (collapsed on the HTML page), each with its reason. The HTML
page filters by kind: the papers' statements, our own (beyond the papers), or both.
"""

import csv
import html
import io
import math
from pathlib import Path

from .._io import atomic_path
from .rules import RULES

VERDICTS = ("holds", "fails", "inconclusive", "not run")
TITLE = "Claims of the papers, checked"


def _fmt(x: float) -> str:
    if not math.isfinite(x):
        return "–"
    return f"{x:.4g}" if abs(x) >= 1e-3 or x == 0 else f"{x:.2e}"


def measured(row) -> str:
    if row.verdict in ("not run", "inconclusive") or not math.isfinite(row.mean):
        return "–"
    return f"{_fmt(row.mean)} ± {_fmt(row.std)} (n={row.n})"


def _seeds(row) -> str:
    return f"{row.passing}/{row.n}" if row.verdict in ("holds", "fails") else "–"


def expected(row) -> str:
    """The check: the metric and what the rule's reading accepts on this summary."""
    c = row.claim
    if row.expected:
        return f"{c.metric}: {row.expected}"
    if c.rule:  # not run: the rule and value, not yet read on a summary
        return f"{c.metric}: {c.rule}({'' if c.value is None else c.value})"
    return f"{c.metric} {c.expect}"


def rule(c) -> str:
    """The reading rule and the notation it reads, or why no rule fits."""
    if not c.rule:
        return f"none: {c.rule_note}"
    return f"{c.rule} ({RULES[c.rule].notation})"


def _counts(rows) -> str:
    counts = ", ".join(f"{sum(r.verdict == v for r in rows)} {v}" for v in VERDICTS)
    kinds = ", ".join(f"{sum(r.claim.kind == k for r in rows)} {k}"
                      for k in ("paper", "beyond"))
    return f"{counts} of {len(rows)} claims ({kinds} the papers)"


def _split(rows) -> tuple[list, list]:
    return [r for r in rows if r.verdict != "not run"], [r for r in rows if r.verdict == "not run"]


_MD_HEAD = ("| id | kind | claim | source | paper | measured | expected | rule | seeds | verdict "
            "| figure | note |")


def _md_row(r) -> str:
    c = r.claim
    cells = [c.id, c.kind, c.claim, c.source, c.paper or "–", measured(r), expected(r),
             rule(c), _seeds(r), f"**{r.verdict}**", c.figure or "–", r.reason]
    return "| " + " | ".join(s.replace("|", "\\|") for s in cells) + " |"


def to_markdown(rows: list, title: str = TITLE) -> str:
    ran, not_run = _split(rows)
    lines = [f"# {title}", "", f"{_counts(rows)}. Measured: mean ± std over seeds (n seeds); "
             "'rule' names how the paper's notation is read (docs/science.md, reading rules) "
             "and whether the mean, a majority of the seeds or their range decides; 'seeds' "
             "counts the seeds that pass on their own. kind: paper is a statement of the "
             "paper, beyond is ours.", "", _MD_HEAD,
             "| " + " | ".join(["---"] * 12) + " |", *map(_md_row, ran)]
    if not_run:
        lines += ["", f"## Not run in this config ({len(not_run)})", "",
                  "| id | kind | claim | experiment | reason |", "| --- | --- | --- | --- | --- |"]
        lines += ["| " + " | ".join(s.replace("|", "\\|") for s in (
            r.claim.id, r.claim.kind, r.claim.claim, r.claim.experiment, r.reason)) + " |"
            for r in not_run]
    return "\n".join(lines) + "\n"


def to_csv(rows: list) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["id", "kind", "claim", "source", "experiment", "metric", "paper", "expected",
                "rule", "mean", "std", "n_seeds", "seeds_passing", "verdict", "figure", "note"])
    for r in rows:
        c = r.claim
        w.writerow([c.id, c.kind, c.claim, c.source, c.experiment, c.metric, c.paper,
                    expected(r), rule(c), "" if math.isnan(r.mean) else repr(r.mean),
                    "" if math.isnan(r.std) else repr(r.std), r.n, r.passing, r.verdict,
                    c.figure, r.reason])
    return buf.getvalue()


_COLOURS = {"holds": "#d9f2d9", "fails": "#f8d7d7", "inconclusive": "#fff3cd",
            "not run": "#e9ecef"}
# column widths (%) of the claims page: the table fits the window, claims and notes wrap
_WIDTHS = {"id": 8, "kind": 4, "claim": 15, "source": 8, "paper": 6,
           "measured (mean ± std, n)": 8, "expected": 8, "rule": 9, "seeds": 4, "verdict": 6,
           "figure": 10, "note": 14}
_FILTER = ("<p>Show: <label><input type='radio' name='kind' value='all' checked> all</label> "
           "<label><input type='radio' name='kind' value='paper'> the papers' statements</label> "
           "<label><input type='radio' name='kind' value='beyond'> beyond the papers</label>"
           "</p><script>document.querySelectorAll('input[name=kind]').forEach(b => "
           "b.addEventListener('change', () => document.querySelectorAll('tr[data-kind]')"
           ".forEach(r => r.style.display = (b.value === 'all' || r.dataset.kind === b.value)"
           " ? '' : 'none')));</script>")


def _figure_cell(path: str) -> str:
    """A thumbnail linking to the figure (paths are relative to results/, as the page is)."""
    if not path:
        return "–"
    esc = html.escape(path)
    if path.endswith(".png"):
        return (f'<a href="{esc}"><img src="{esc}" alt="{esc}" loading="lazy"></a>'
                f'<div class="path">{esc}</div>')
    return f'<a href="{esc}">{esc}</a>'


def _html_row(r) -> str:
    esc = html.escape
    c = r.claim
    cells = [esc(c.id), esc(c.kind), esc(c.claim), esc(c.source), esc(c.paper or "–"),
             esc(measured(r)), esc(expected(r)), esc(rule(c)), esc(_seeds(r)),
             f"<b>{esc(r.verdict)}</b>", _figure_cell(c.figure), esc(r.reason)]
    return (f'<tr data-kind="{esc(c.kind)}" style="background:{_COLOURS[r.verdict]}">'
            + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")


def _table(rows) -> str:
    columns = "".join(f'<col style="width:{w}%">' for w in _WIDTHS.values())
    return (f"<table><colgroup>{columns}</colgroup><tr>"
            + "".join(f"<th>{h}</th>" for h in _WIDTHS) + "</tr>"
            + "".join(map(_html_row, rows)) + "</table>")


def to_html(rows: list, title: str = TITLE) -> str:
    """A standalone page (the report embeds it): one coloured row per claim, every column
    inside the window, each row's figure as a thumbnail that links to it; the claims this
    config did not run in a collapsed section at the end."""
    esc = html.escape
    ran, not_run = _split(rows)
    style = ("body{font-family:sans-serif;font-size:13px;margin:12px}"
             "table{border-collapse:collapse;width:100%;table-layout:fixed}"
             "td,th{border:1px solid #bbb;padding:3px 5px;vertical-align:top;"
             "overflow-wrap:anywhere}th{background:#f3f3f3;text-align:left}"
             "td img{width:100%;height:auto;display:block}"
             ".path{font-size:10px;color:#555}summary{font-weight:bold;margin:10px 0}")
    rest = (f"<details><summary>Not run in this config ({len(not_run)}): the reason is in "
            f"each row's note</summary>{_table(not_run)}</details>" if not_run else "")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{esc(title)}</title>"
            f"<style>{style}</style></head><body><h2>{esc(title)}</h2><p>{esc(_counts(rows))}"
            ". 'rule' names how the paper's notation is read (docs/science.md, reading rules), "
            "'expected' what that reading accepts here; the rule says whether the mean, a "
            "majority of the seeds or their range decides; 'seeds' counts the seeds that pass "
            f"on their own. Click a figure to open it.</p>{_FILTER}{_table(ran)}{rest}"
            "</body></html>\n")


def write(rows: list, md_path, csv_path, html_path=None) -> None:
    outputs = [(md_path, to_markdown(rows)), (csv_path, to_csv(rows))]
    if html_path is not None:
        outputs.append((html_path, to_html(rows)))
    for path, text in outputs:
        with atomic_path(path) as tmp:
            Path(tmp).write_text(text)

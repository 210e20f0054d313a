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


THUMBNAIL_PX = 360  # a thumbnail's largest width


def thumbnail(path: str | Path) -> str:
    """A PNG figure as a small PNG in a data: URI (block averages to at most THUMBNAIL_PX
    wide), so that the page shows it wherever it is opened: in results/, or embedded in
    Snakemake's report, where relative paths do not resolve."""
    import base64

    from matplotlib import image  # lazy: matplotlib loads for the HTML page only

    pixels = image.imread(str(path))
    k = max(1, -(-pixels.shape[1] // THUMBNAIL_PX))
    h, w = pixels.shape[0] // k * k, pixels.shape[1] // k * k
    small = pixels[:h, :w].reshape(h // k, k, w // k, k, -1).mean(axis=(1, 3))
    buf = io.BytesIO()
    image.imsave(buf, small.clip(0, 1), format="png")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _figure_cell(path: str, figures: dict) -> str:
    """A thumbnail that links to the figure (paths relative to the page, as in results/);
    a figure this config did not make is named without a picture."""
    if not path:
        return "–"
    esc = html.escape(path)
    if path in figures:
        return (f'<a href="{esc}"><img src="{figures[path]}" alt="{esc}"></a>'
                f'<div class="path">{esc}</div>')
    return f'<a href="{esc}">{esc}</a>'


def _html_row(r, figures: dict) -> str:
    esc = html.escape
    c = r.claim
    cells = [esc(c.id), esc(c.kind), esc(c.claim), esc(c.source), esc(c.paper or "–"),
             esc(measured(r)), esc(expected(r)), esc(rule(c)), esc(_seeds(r)),
             f"<b>{esc(r.verdict)}</b>", _figure_cell(c.figure, figures), esc(r.reason)]
    return (f'<tr data-kind="{esc(c.kind)}" style="background:{_COLOURS[r.verdict]}">'
            + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")


def _table(rows, figures: dict) -> str:
    columns = "".join(f'<col style="width:{w}%">' for w in _WIDTHS.values())
    return (f"<table><colgroup>{columns}</colgroup><tr>"
            + "".join(f"<th>{h}</th>" for h in _WIDTHS) + "</tr>"
            + "".join(_html_row(r, figures) for r in rows) + "</table>")


def _not_run_table(rows) -> str:
    """The claims this config did not run: no figure (none was made), the reason, and the
    configs that do run each one's experiment."""
    esc = html.escape
    head = "".join(f"<th>{h}</th>" for h in ("id", "kind", "claim", "experiment", "reason"))
    body = "".join(
        f'<tr data-kind="{esc(r.claim.kind)}" style="background:{_COLOURS[r.verdict]}">'
        + "".join(f"<td>{esc(x)}</td>" for x in (r.claim.id, r.claim.kind, r.claim.claim,
                                                 r.claim.experiment, r.reason)) + "</tr>"
        for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def to_html(rows: list, title: str = TITLE, figures: dict | None = None) -> str:
    """A standalone page (the report embeds it): one coloured row per claim, every column
    inside the window, each row's figure as a thumbnail (`figures`: a figure's path to its
    image source) that links to it; the claims this config did not run, without figures, in a
    collapsed section at the end."""
    esc = html.escape
    figures = figures or {}
    ran, not_run = _split(rows)
    style = ("body{font-family:sans-serif;font-size:13px;margin:12px}"
             "table{border-collapse:collapse;width:100%;table-layout:fixed}"
             "td,th{border:1px solid #bbb;padding:3px 5px;vertical-align:top;"
             "overflow-wrap:anywhere}th{background:#f3f3f3;text-align:left}"
             "td img{width:100%;height:auto;display:block}"
             ".path{font-size:10px;color:#555}summary{font-weight:bold;margin:10px 0}")
    rest = (f"<details><summary>Not run in this config ({len(not_run)}): each row says "
            f"why, and which config runs it</summary>{_not_run_table(not_run)}</details>"
            if not_run else "")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{esc(title)}</title>"
            f"<style>{style}</style></head><body><h2>{esc(title)}</h2><p>{esc(_counts(rows))}"
            ". 'rule' names how the paper's notation is read (docs/science.md, reading rules), "
            "'expected' what that reading accepts here; the rule says whether the mean, a "
            "majority of the seeds or their range decides; 'seeds' counts the seeds that pass "
            f"on their own. Click a figure to open it.</p>{_FILTER}{_table(ran, figures)}{rest}"
            "</body></html>\n")


def write(rows: list, md_path, csv_path, html_path=None, figures_root=None) -> None:
    """The claims page as Markdown, CSV and HTML; the HTML page's thumbnails are the PNG
    figures under `figures_root` (the page's folder) that the claims that ran name."""
    outputs = [(md_path, to_markdown(rows)), (csv_path, to_csv(rows))]
    if html_path is not None:
        figures = {}
        if figures_root is not None:
            for r in _split(rows)[0]:
                path = r.claim.figure
                if (path and path.endswith(".png") and path not in figures
                        and (Path(figures_root) / path).is_file()):  # once a figure
                    figures[path] = thumbnail(Path(figures_root) / path)
        outputs.append((html_path, to_html(rows, figures=figures)))
    for path, text in outputs:
        with atomic_path(path) as tmp:
            Path(tmp).write_text(text)

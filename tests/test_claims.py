"""Claims as data: parsing, and evaluation against summaries built by hand."""

import base64
import math
import re
from dataclasses import replace

import numpy as np
import pytest
import xarray as xr

from adamgen import claims
from adamgen.errors import ConfigError

BS = [2, 20, 200]
LAMBDAS = [1e-4, 1e-2, 1.0]
SEEDS = [0, 1, 2]


def summary(test_error, train_error=None, sigma=None) -> xr.Dataset:
    """A summary with axes optimizer × batch_size × weight_decay (× model_sigma_0) × seed."""
    dims = ["optimizer", "batch_size", "weight_decay"] + (["model_sigma_0"] if sigma else [])
    dims.append("seed")
    coords = {"optimizer": ["adam", "adamw"], "batch_size": BS, "weight_decay": LAMBDAS,
              "seed": SEEDS, "epoch": [0, 10], "j": [1, -1]}
    if sigma:
        coords["model_sigma_0"] = sigma
    test_error = np.asarray(test_error, float)
    train_error = np.zeros_like(test_error) if train_error is None else train_error
    epoch_traj = np.stack([np.full_like(test_error, 0.5), test_error], -1)
    feature = np.stack([np.stack([np.full_like(test_error, 0.02)] * 2, -1),
                        np.stack([np.full_like(test_error, -0.5), np.full_like(test_error, 1.5)],
                                 -1)], -2)  # [..., epoch, j]: +1 flips, −1 learns
    ds = xr.Dataset({
        "final_test_error": (dims, test_error),
        "final_train_error": (dims, train_error),
        "test_error": ((*dims, "epoch"), epoch_traj),
        "feature_learning_max": ((*dims, "epoch", "j"), feature),
        "final_feature_learning_max": ((*dims, "j"), feature[..., -1, :]),
        "status": (dims, np.full(test_error.shape, "completed")),
    }, coords=coords)
    return ds


def grid_errors(fn) -> np.ndarray:
    """[optimizer, B, λ, seed] filled by fn(optimizer index, B, λ, seed)."""
    out = np.zeros((2, len(BS), len(LAMBDAS), len(SEEDS)))
    for idx in np.ndindex(out.shape):
        o, b, w, s = idx
        out[idx] = fn(o, BS[b], LAMBDAS[w], SEEDS[s])
    return out


BASE = {"id": "c", "claim": "a claim", "kind": "paper", "source": "test", "experiment": "e",
        "metric": "test_error", "expect": "< 0.5", "rule_note": "a test"}


def raw_claim(**fields) -> dict:
    """A claim's entry: a typed `expect` with a rule_note, or a `rule` of the table."""
    base = {k: v for k, v in BASE.items() if "rule" not in fields
            or k not in ("expect", "rule_note")}
    return {**base, **fields}


def claim(**fields) -> claims.Claim:
    return claims.parse_claims({"claims": [raw_claim(**fields)]})[0]


def evaluate(c: claims.Claim, ds: xr.Dataset) -> claims.Row:
    return claims.evaluate([c], {"e": ds})[0]


def test_a_claim_holds_fails_or_was_not_run():
    ds = summary(grid_errors(lambda o, b, w, s: 0.1 * s))  # seeds: 0, 0.1, 0.2
    where = {"optimizer": "adam", "batch_size": 2, "weight_decay": 1e-4}
    row = evaluate(claim(where=where, expect="< 0.15"), ds)
    assert row.verdict == "holds" and row.n == 3 and row.passing == 2
    assert math.isclose(row.mean, 0.1) and math.isclose(row.std, 0.1)
    assert evaluate(claim(where=where, expect="0.3 ± 0.1"), ds).verdict == "fails"
    assert evaluate(claim(where=where, expect="0.15 ± 0.05"), ds).verdict == "holds"
    missing = {**where, "batch_size": 4}
    assert evaluate(claim(where=missing), ds).verdict == "not run"
    assert claims.evaluate([claim(where=where)], {})[0].verdict == "not run"


def test_contrasts_compare_two_grid_points_per_seed():
    ds = summary(grid_errors(lambda o, b, w, s: 0.9 if o == 0 else 0.1 + 0.01 * s))
    c = claim(where={"batch_size": 2, "weight_decay": 1e-4},
              contrast={"optimizer": ["adam", "adamw"]}, expect="< -0.7")
    row = evaluate(c, ds)
    assert row.verdict == "holds" and math.isclose(row.mean, -0.79)


def test_an_axis_left_open_must_be_averaged_or_fixed():
    ds = summary(grid_errors(lambda o, b, w, s: b / 200))
    with pytest.raises(ConfigError, match="leaves the axes"):
        evaluate(claim(where={"optimizer": "adam", "weight_decay": 1e-4}), ds)
    row = evaluate(claim(where={"optimizer": "adam", "weight_decay": 1e-4},
                         average=["batch_size"], expect="> 0"), ds)
    assert math.isclose(row.mean, np.mean(BS) / 200)


def test_an_axis_with_one_populated_value_is_fixed_to_it():
    ds = summary(grid_errors(lambda o, b, w, s: 0.3))
    ds["status"][:, 1:] = ""  # only B = 2 ran
    row = evaluate(claim(where={"optimizer": "adam", "weight_decay": 1e-4}), ds)
    assert row.verdict == "holds" and row.n == 3


def test_critical_batch_size_and_stall_boundary():
    test = grid_errors(lambda o, b, w, s: 0.9 if b >= (20 if s < 2 else 200) else 0.0)
    train = grid_errors(lambda o, b, w, s: 0.5 if w >= (1e-2 if o == 0 else 1.0) else 0.0)
    ds = summary(test, train)
    row = evaluate(claim(metric="critical_batch_size", where={"optimizer": "adam",
                                                              "weight_decay": 1e-4},
                         expect="> 2"), ds)
    assert row.verdict == "holds" and math.isclose(row.mean, (20 + 20 + 200) / 3)
    gap = claim(metric="stall_boundary", where={"batch_size": 2},
                contrast={"optimizer": ["adam", "adamw"]}, **{"as": "log10_ratio"},
                expect="2 ± 0.01")
    assert evaluate(gap, ds).verdict == "holds"


def test_a_boundary_beyond_the_grid_is_inconclusive():
    ds = summary(grid_errors(lambda o, b, w, s: 0.0))  # no batch size fails
    row = evaluate(claim(metric="critical_batch_size", if_fails="needs larger B",
                         where={"optimizer": "adam", "weight_decay": 1e-4}), ds)
    assert row.verdict == "inconclusive" and row.reason.endswith("needs larger B")


def test_an_undefined_value_fails_where_the_paper_puts_the_event_inside_the_grid():
    """Before, every undefined value was inconclusive, so 'a critical batch size exists inside
    the grid' could never fail. A claim now says what an undefined value means."""
    ds = summary(grid_errors(lambda o, b, w, s: 0.0 if s else (0.9 if b == 200 else 0.0)))
    where = {"optimizer": "adam", "weight_decay": 1e-4}
    because = "Thm 4.1 puts the failure at B = n"
    row = evaluate(claim(metric="critical_batch_size", where=where, expect="> 2",
                         undefined={"verdict": "fails", "because": because}), ds)
    assert row.verdict == "fails" and because in row.reason and "2 of 3 seeds" in row.reason
    assert row.passing == 1 and row.n == 3  # the seed with a boundary (B = 200) passes
    said = evaluate(claim(metric="critical_batch_size", where=where, expect="> 2",
                          undefined={"verdict": "inconclusive", "because": "says nothing"}), ds)
    assert said.verdict == "inconclusive" and "says nothing" in said.reason


def test_a_diverged_run_stays_inconclusive_even_where_undefined_fails():
    ds = summary(grid_errors(lambda o, b, w, s: 0.0))
    ds["status"].loc[{"optimizer": "adam", "batch_size": 20, "weight_decay": 1e-4}] = "diverged"
    row = evaluate(claim(metric="critical_batch_size", expect="> 2",
                         where={"optimizer": "adam", "weight_decay": 1e-4},
                         undefined={"verdict": "fails", "because": "inside the grid"}), ds)
    assert row.verdict == "inconclusive" and row.reason.startswith("diverged")


@pytest.mark.parametrize("expect, inside, outside", [
    ("< 0.5", [0.49], [0.5, 0.7]), ("<= 0.5", [0.5], [0.51]), ("> 0", [1e-9], [0.0]),
    (">= 0.45", [0.45], [0.44]), ("0.884 ± 0.05", [0.834, 0.934], [0.83, 0.94]),
    ("in [0.1, 10]", [0.1, 10.0], [0.099, 10.1]), ("in (1.0e-5, 0.1]", [0.1, 2e-5], [1e-5, 0.2]),
])
def test_expectations_accept_what_they_say(expect, inside, outside):
    accepted = claim(expect=expect).reading(xr.Dataset()).accepted
    assert all(v in accepted for v in inside) and not any(v in accepted for v in outside)


def test_a_claim_over_the_whole_range_of_its_metric_cannot_fail():
    """The vacuous claims the falsifiability test catches: a test error below 1, a Padam p
    of the grid [0, 1/2] within 0.25 ± 0.25 (E8.padam.switch before)."""
    ds = summary(grid_errors(lambda o, b, w, s: 0.3))
    where = {"optimizer": "adam", "batch_size": 2, "weight_decay": 1e-4}
    assert claims.falsifiable(ds, claim(where=where, expect="<= 1")) is None
    assert claims.falsifiable(ds, claim(where=where, expect="0.5 ± 0.6")) is None
    # just past the edge: the smallest violation
    assert claims.falsifiable(ds, claim(where=where, expect="< 0.3")) == pytest.approx(0.300001)
    assert claims.falsifiable(ds, claim(where=where, expect=">= 0.3")) == pytest.approx(0.299999)
    grid = claim(metric="critical_batch_size", where={"optimizer": "adam",
                                                      "weight_decay": 1e-4})
    assert claims.falsifiable(ds, replace(grid, expect="100 ± 100")) is None
    assert claims.falsifiable(ds, replace(grid, expect="> 2")) == 2.0
    assert np.isnan(claims.falsifiable(ds, replace(
        grid, expect="100 ± 100", undefined={"verdict": "fails", "because": "inside"})))


def test_dotted_axes_name_summary_dimensions():
    errors = np.zeros((2, len(BS), len(LAMBDAS), 2, len(SEEDS)))
    errors[..., 1, :] = 0.4
    ds = summary(errors, sigma=[0.01, 0.1])
    c = claim(where={"optimizer": "adam", "batch_size": 2, "weight_decay": 1e-4},
              contrast={"model.sigma_0": [0.01, 0.1]}, expect="0.4 ± 1e-9")
    assert evaluate(c, ds).verdict == "holds"


def test_the_flip_metrics_read_the_trajectories():
    ds = summary(grid_errors(lambda o, b, w, s: 0.9))
    where = {"optimizer": "adam", "batch_size": 2, "weight_decay": 1e-4}
    assert evaluate(claim(where=where, metric="feature_learning"), ds).mean == -0.5
    assert evaluate(claim(where=where, metric="feature_learning", j=-1), ds).mean == 1.5
    rise = evaluate(claim(where=where, metric="feature_learning_rise", expect="> 0"), ds)
    assert rise.verdict == "fails" and rise.mean == 0.0


def test_reports_show_every_row_with_its_verdict():
    ds = summary(grid_errors(lambda o, b, w, s: 0.2))
    where = {"optimizer": "adam", "batch_size": 2, "weight_decay": 1e-4}
    rows = claims.evaluate([claim(id="ok", where=where),
                            claim(id="bad", where=where, expect="> 0.5", if_fails="because"),
                            claim(id="absent", experiment="other")], {"e": ds})
    md, csv, html = claims.to_markdown(rows), claims.to_csv(rows), claims.to_html(rows)
    assert "1 holds, 1 fails, 0 inconclusive, 1 not run of 3 claims" in md
    assert "| bad | paper |" in md and "**fails**" in md and "because" in md
    assert csv.splitlines()[2].startswith("bad,paper,") and ",fails," in csv.splitlines()[2]
    # the claims this config did not run come last, in a section of their own (collapsed on
    # the page), each with its reason; the page filters by kind
    assert md.index("## Not run in this config (1)") > md.index("| bad |")
    assert "| absent | paper | a claim | other | experiment 'other' not in config |" in md
    assert html.count("<tr") == 5 and html.index("<details>") > html.index(">bad<")
    assert "name='kind' value='beyond'" in html and html.count('data-kind="paper"') == 3


def test_the_page_shows_the_figures_made_and_names_the_config_of_a_claim_not_run(tmp_path):
    """A claim's figure is a thumbnail inside the page (a data: URI: the report embeds the
    page, where a relative path would not resolve), smaller than the figure; a claim this
    config did not run shows no image and names the configs that run its experiment."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ds = summary(grid_errors(lambda o, b, w, s: 0.2))
    where = {"optimizer": "adam", "batch_size": 2, "weight_decay": 1e-4}
    (tmp_path / "e" / "figures").mkdir(parents=True)
    fig = plt.figure(figsize=(8, 6), dpi=100)
    fig.savefig(tmp_path / "e" / "figures" / "f.png")
    rows = claims.evaluate([claim(id="ok", where=where, figure="e/figures/f.png"),
                            claim(id="absent", experiment="zou_e1",
                                  figure="zou_e1/figures/dynamics-adam.png")], {"e": ds})
    assert rows[1].reason == ("experiment 'zou_e1' not in config; config/config.yaml and "
                              "config/paper.yaml run it")
    claims.write(rows, tmp_path / "c.md", tmp_path / "c.csv", tmp_path / "c.html",
                 figures_root=tmp_path)
    page = (tmp_path / "c.html").read_text()
    (uri,) = re.findall(r'<img src="(data:image/png;base64,[^"]+)"', page)
    png = base64.b64decode(uri.split(",", 1)[1])
    assert png[:4] == b"\x89PNG" and len(png) < (tmp_path / "e/figures/f.png").stat().st_size
    assert "dynamics-adam.png" not in page.split("<details>")[1]  # no image, no path
    assert "config/paper.yaml run it" in page.split("<details>")[1]


@pytest.mark.parametrize("entry, key", [
    ({"metric": "accuracy"}, "metric"),
    ({"expect": "about 0.5"}, "expect"),
    ({"colour": "red"}, "colour"),
    ({"as": "ratio"}, "as"),
    ({"contrast": {"optimizer": ["adam"]}}, "contrast"),
    ({"metric": "final_weights"}, "as"),
    ({"kind": "ours"}, "kind"),
    ({"expect": "in [1, 0]"}, "expect"),
    ({"at": "start"}, "at"),
    ({"undefined": "fails"}, "undefined"),
    ({"undefined": {"verdict": "holds", "because": "x"}}, "undefined"),
    ({"undefined": {"verdict": "fails"}}, "undefined"),
])
def test_a_bad_claim_is_rejected_naming_its_key(entry, key):
    with pytest.raises(ConfigError, match=rf"claims\[0\] \(c\)\.{key}"):
        claims.parse_claims({"claims": [{**BASE, **entry}]})


@pytest.mark.parametrize("fields, key, fragment", [
    ({"rule": "thetta", "value": 1}, "rule", "is not a reading rule (did you mean 'theta'?"),
    ({"rule": "theta"}, "value", "is missing: rule theta reads the paper's quantity"),
    ({"rule": "independent_of"}, "axis", "is missing: rule independent_of reads the step"),
    ({"rule": "within", "value": 3}, "value", "must be [a, b] for rule within"),
    ({"rule": "o1", "expect": "< 1"}, "expect", "is computed from the claim's rule and value"),
    ({"rule": "o1", "expect": "< 1", "rule_note": "x"}, "rule", "goes without rule_note"),
])
def test_a_claim_names_a_reading_rule_or_says_why_none_fits(fields, key, fragment):
    with pytest.raises(ConfigError) as err:
        claims.parse_claims({"claims": [{**{k: v for k, v in BASE.items()
                                            if k not in ("expect", "rule_note")}, **fields}]})
    assert err.value.key.endswith(f".{key}") and fragment in str(err.value)


@pytest.mark.parametrize("field", ["source", "kind", "experiment"])
def test_missing_fields_and_duplicate_ids_are_rejected(field):
    with pytest.raises(ConfigError, match=rf"\.{field}.*missing"):
        claims.parse_claims({"claims": [{k: v for k, v in BASE.items() if k != field}]})
    with pytest.raises(ConfigError, match="used twice"):
        claims.parse_claims({"claims": [BASE, BASE]})


def test_the_shipped_claims_files_parse():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    paper = claims.load_claims(root / "config" / "claims.yaml")
    ids = {c.id for c in paper}
    assert {"E1.adam.test_error", "E3.distance", "E4.adamw.B100.test_error",
            "B.cor4.3.sigma0", "B.adamw.stall.sigma0", "TE.adam.shift.size"} <= ids
    assert "B.cor4.6.batch" not in ids and "E8.padam.p05.amsgrad" not in ids  # item 4, 3
    assert claims.load_claims(root / "config" / "claims_tiny.yaml")


# --- one statement, two claims: E7's slope and collapse accept the same boundaries ---------

def _boundary(slope: float, q: float = 3.0) -> xr.Dataset:
    """A phase plane whose test loss crosses the E7 claims' threshold exactly at
    SNR*(n) = 0.5 (n / 10)^slope: linear in log SNR, so that the interpolation is exact."""

    ns = [10, 20, 40, 80, 160]
    snr = np.geomspace(0.01, 10.0, 241)
    threshold = 0.3466
    star = {n: 0.5 * (n / 10) ** slope for n in ns}
    loss = np.array([[threshold + 0.1 * (np.log(star[n]) - np.log(s)) for s in snr]
                     for n in ns])
    shape = (1, len(ns), len(snr), 1, 2)
    values = np.broadcast_to(loss[None, :, :, None, None], shape).copy()
    dims = ["optimizer", "data_n", "data_snr", "model_q", "seed"]
    return xr.Dataset({"final_test_loss": (dims, values),
                       "status": (dims, np.full(shape, "completed"))},
                      coords={"optimizer": ["gd"], "data_n": ns, "data_snr": snr,
                              "model_q": [q], "seed": [0, 1]},
                      attrs={"grid_dims": str(dims).replace("'", '"')})


def test_the_slope_and_the_collapse_of_e7_accept_the_same_boundaries():
    """The reading-rule issue's case: E7's collapse claims allowed one log factor at the
    crossing while the slope claims allowed ±0.05 around −1/q, so a crossing C ∝ ln n (slope
    −0.24 for q = 3) was accepted by one and rejected by the other. Both now read the same
    one factor ln n across the grid's n (rules power_law and log_factor): boundaries built at
    either edge of the slope's band are at the edge of the collapse's, and just outside one
    is just outside the other."""
    import math
    from pathlib import Path

    shipped = {c.id: c for c in claims.load_claims(
        Path(__file__).resolve().parents[1] / "config" / "claims.yaml")}
    slope, collapse = shipped["E7.gd.slope.q3.loss"], shipped["E7.gd.collapse.q3"]
    delta = math.log(math.log(160) / math.log(10)) / math.log(16)
    for edge in ((-1 - delta) / 3, (-1 + delta) / 3):
        for step, verdict in ((1e-6, "holds"), (-1e-3, "fails")):
            s = edge + step * np.sign(-1 / 3 - edge)  # inside the band, then outside it
            rows = claims.evaluate([slope, collapse], {"cao_e7": _boundary(s)})
            assert [r.verdict for r in rows] == [verdict, verdict], (s, [
                (r.verdict, r.mean, r.expected) for r in rows])
    # the example: a crossing C ∝ ln n, slope about -0.24 for q = 3, accepted by both
    ln_n = claims.evaluate([slope, collapse], {"cao_e7": _boundary(-1 / 3 + delta / 3)})
    assert [r.verdict for r in ln_n] == ["holds", "holds"]
    assert math.isclose(ln_n[0].mean, -0.238, abs_tol=0.01)


# --- every claim reads its paper by a rule; none is inconclusive by construction ------------

def _shipped() -> list:
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "config"
    return [c for name in ("claims.yaml", "claims_tiny.yaml")
            for c in claims.load_claims(root / name)]


# the claims no rule of the table reads, each saying why in its rule_note
RULE_NOTES = {"E1.cnn.test_gap", "tiny.adam.train_error", "tiny.convex.distance", "tiny.e6.rmed"}


def test_every_claim_reads_its_paper_by_a_rule_or_says_why_none_fits():
    """The reading-rule issue: bands typed one claim at a time disagreed with each other. A
    claim names a rule of claims.rules.RULES and the paper's quantity, and its expectation is
    computed from them; the few that no rule fits are listed here, each with its rule_note."""
    shipped = _shipped()
    for c in shipped:
        assert c.rule in claims.RULES or c.rule_note.strip(), c.id
    assert {c.id for c in shipped if not c.rule} == RULE_NOTES


def test_no_claim_is_inconclusive_by_construction():
    """jiang_thm1's claims were inconclusive on every config: their runs ended 10^12 steps
    before the theorem's window ('no run reaches the window the proof names'). A claim may be
    inconclusive where a value needs data the grid or a run may lack (a boundary beyond the
    grid, a positive initial level), never because the config cannot reach the regime."""
    import re

    for c in _shipped():
        if c.undefined and c.undefined["verdict"] == "inconclusive":
            assert not re.search(r"regime|reach|window", c.undefined["because"]), c.id


@pytest.mark.slow
def test_on_real_summaries_an_inconclusive_verdict_names_missing_data_or_divergence(
        tiny_workflow):
    """Every claim evaluated on the tiny config's summaries: an inconclusive verdict says a
    run diverged or the grid does not hold the value (with the claim's reason)."""
    from conftest import TINY_WORKFLOW

    from adamgen._io import open_netcdf
    from adamgen.planner import plan, plan_convex

    out = tiny_workflow / "results" / "test"
    names = [*plan(TINY_WORKFLOW), *plan_convex(TINY_WORKFLOW)]
    summaries = {n: open_netcdf(out / n / "summary.nc", "summary", ()) for n in names}
    rows = claims.evaluate(_shipped(), summaries)
    assert {r.verdict for r in rows} >= {"holds", "fails", "not run"}
    for row in rows:
        if row.verdict == "inconclusive":
            assert row.reason.startswith(("diverged:", "undefined on this grid")), row.reason
            assert "regime" not in row.reason and "reach" not in row.reason, row.reason


# --- the reading-rule issue's items, each on the shipped claim it names ---------------------

def _tang_e4(variable: str, where: dict, seeds: list[float]):
    """The default config's tang_e4 summary with `variable` at `seeds` at one grid point."""
    from pathlib import Path

    from summaries import cnn_summary

    from adamgen.config import load_yaml
    from adamgen.planner import plan

    config = load_yaml(Path(__file__).resolve().parents[1] / "config" / "config.yaml")
    ds = cnn_summary(plan(config)["tang_e4"])
    point = ds[variable].loc[where]
    ds[variable].loc[where] = xr.DataArray(np.asarray(seeds, float), dims="seed").broadcast_like(
        point).transpose(*point.dims)
    return ds


def _shipped_claim(claim_id: str):
    (c,) = [c for c in _shipped() if c.id == claim_id]
    return c


def test_lemma_c18s_bound_is_read_with_its_polylog_not_with_constant_1():
    """Item 1: E4.adamw.B2.noise expected <= 0.1 = B s sigma_p / n, the bound of Lemma C.18
    read with constant 1, and failed on 0.309. Its Θ̃ hides a polylog (Lemma B.11 gives the same
    quantity divided by lambda): Õ reads it as at most 10 ln n times B s sigma_p / n."""
    import math

    for claim_id in ("E4.adamw.B2.noise", "E4.adamw.B2.noise.max"):
        c = _shipped_claim(claim_id)
        assert (c.rule, c.value) == ("o_tilde", "B * s * sigma_p / n")
        where, variable = dict(c.where), f"final_{c.metric}"
        ds = _tang_e4(variable, where, [0.309, 0.3, 0.32])
        bound = 10 * math.log(200) * 2 * 100 * 0.1 / 200
        assert c.reading(ds).accepted.hi == pytest.approx(bound)
        (row,) = claims.evaluate([c], {"tang_e4": ds})
        assert row.verdict == "holds", (row.mean, row.expected)
        ds = _tang_e4(variable, where, [bound * 1.1] * 3)
        (row,) = claims.evaluate([c], {"tang_e4": ds})
        assert row.verdict == "fails"


def test_one_runs_number_is_read_against_the_seeds_range_and_a_sign_by_majority():
    """Item 4: E4.adam.B100.test_error expected 0.9545 ± 0.05 around the mean of seeds that
    spread 0.27; now the paper's single run must fall inside the seeds' range (± 0.05). And
    E4.adam.B100.flip tested the mean of a sign the seeds split on; now a majority decides and
    the page says how many seeds have it."""
    c = _shipped_claim("E4.adam.B100.test_error")
    where = dict(c.where)
    spread = _tang_e4("final_test_error", where, [0.30, 0.94, 0.99])  # mean 0.74
    (row,) = claims.evaluate([c], {"tang_e4": spread})
    assert row.verdict == "holds", (row.mean, row.expected)
    narrow = _tang_e4("final_test_error", where, [0.30, 0.35, 0.40])
    (row,) = claims.evaluate([c], {"tang_e4": narrow})
    assert row.verdict == "fails"
    flip = _shipped_claim("E4.adam.B100.flip")
    for seeds, verdict, passing in (([-0.2, -0.1, 0.9], "holds", 2),
                                    ([-0.2, 0.1, 0.9], "fails", 1)):
        ds = _tang_e4("final_feature_learning_max", dict(flip.where), seeds)
        (row,) = claims.evaluate([flip], {"tang_e4": ds})
        assert (row.verdict, row.passing, row.n) == (verdict, passing, 3)


def test_tang_eps_is_labelled_our_extrapolation_and_the_new_statements_have_claims():
    """Item 5: tang_eps varies eps with lambda * eta fixed, outside Thm 4.2's eps = Θ(lambda eta):
    its claims are `beyond`, their source saying so. Items 7-10: Zou Thm 4.1's gradient norms,
    Tang Lemmas B.7 and B.8, Jiang §6's rank one and uniform singular vector have claims, on
    experiments the paper config runs."""
    from pathlib import Path

    from adamgen.config import load_yaml

    eps = [c for c in _shipped() if c.experiment == "tang_eps"]
    assert eps and all(c.kind == "beyond" for c in eps), [c.id for c in eps]
    paper = load_yaml(Path(__file__).resolve().parents[1] / "config" / "paper.yaml")
    for claim_id in ("E1.adam.gradient", "E1.gd.gradient", "B.lemmaB7.flip_time",
                     "B.lemmaB8.noise", "B.lemmaB8.feature", "E6.thm1.adam.rank_one",
                     "E6.thm1.adam.uniform_u", "E6.thm1.sgdm.gaussian_u"):
        c = _shipped_claim(claim_id)
        assert c.rule in claims.RULES and c.experiment in paper["experiments"], claim_id

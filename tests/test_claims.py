"""Claims as data: parsing, and evaluation against summaries built by hand."""

import math
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
        "metric": "test_error", "expect": "< 0.5", "rule": "a test"}


def claim(**fields) -> claims.Claim:
    return claims.parse_claims({"claims": [{**BASE, **fields}]})[0]


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
    c = claim(expect=expect)
    assert all(c.check(v) for v in inside) and not any(c.check(v) for v in outside)


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


@pytest.mark.parametrize("field", ["source", "kind", "rule"])
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

"""The heatmaps' theory lines: where Tang et al.'s bounds are drawn (a summary built by hand)."""

import numpy as np
import pytest
import xarray as xr

from adamgen.figures import plots

BS = [2, 20, 200]
LAMBDAS = [1e-4, 1e-2, 1.0, 10.0]
EPS = [1e-14, 1e-10, 1e-6]


def _summary(axis: str, values: list, test_error) -> xr.Dataset:
    dims = ["optimizer", "batch_size", axis, "seed"]
    shape = (2, len(BS), len(values), 2)
    error = np.broadcast_to(np.asarray(test_error, float)[None, :, :, None], shape)
    return xr.Dataset({
        "final_test_error": (dims, error.copy()),
        "final_train_error": (dims, np.zeros(shape)),
        "status": (dims, np.full(shape, "completed")),
    }, coords={"optimizer": ["adam", "adamw"], "batch_size": BS, axis: values, "seed": [0, 1],
               "model_q": 3.0, "model_sigma_0": 0.01, "data_n": 200},
        attrs={"experiment": "e", "grid_dims": f'["optimizer", "batch_size", "{axis}", "seed"]'})


def _lines(ax) -> dict:
    return {line.get_label(): line for line in ax.get_lines() if not line.get_label()
            .startswith("_")}


@pytest.fixture(autouse=True)
def _close():
    yield
    plots._pyplot().close("all")


def test_tang_bounds_are_drawn_as_the_paper_states_them():
    """Adam: the stall point sigma_0^(q-2) (Cor. 4.3). AdamW: the lower end B^2/n ^ 1 of its
    admissible weight decay (Thm 4.5, a sufficient condition) and the upper end Õ(1) at
    lambda = 1, where it stops training whatever B (Thms 4.4-4.5) — not, as drawn before, a
    stall point that grows with B."""
    fig = plots.heatmap(_summary("weight_decay", LAMBDAS, np.zeros((3, 4))))
    adam, adamw = fig.axes[:2]  # the panels (their colour bars follow)
    (stall,) = [line for label, line in _lines(adam).items() if "Cor. 4.3" in label]
    assert np.allclose(stall.get_xdata(), 0.01)
    lines = _lines(adamw)
    lower = next(line for label, line in lines.items() if "lower end" in label)
    upper = next(line for label, line in lines.items() if "upper end" in label)
    b = lower.get_ydata()
    assert np.allclose(lower.get_xdata(), np.minimum(b**2 / 200, 1.0))
    assert np.allclose(upper.get_xdata(), 1.0)


def test_the_eps_heatmap_marks_the_critical_batch_size_and_the_predicted_shape():
    # the first failing B: 200 at eps 1e-14 and 1e-10, none at 1e-6
    error = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.9, 0.9, 0.0]])
    fig = plots.heatmap_eps(_summary("eps", EPS, error))
    lines = _lines(fig.axes[0])
    dots = next(line for label, line in lines.items() if label.startswith("critical B"))
    assert list(dots.get_xdata()) == [1e-14, 1e-10] and list(dots.get_ydata()) == [200, 200]
    curve = next(line for label, line in lines.items() if "ln(1/ε)" in label)
    x, y = curve.get_xdata(), curve.get_ydata()
    assert np.allclose(y * np.log(1 / x), (y * np.log(1 / x))[0])  # B* ∝ 1 / ln(1/eps)
    assert y[-1] > y[0]  # a larger eps, a larger critical batch size


def test_a_cell_where_training_fails_is_marked_inside_the_panel_even_on_its_edge():
    """What went wrong before: a red bar on the left edge of the first failing cell, drawn on
    the panel's frame (invisible) where that cell was the first column."""
    summary = _summary("weight_decay", LAMBDAS, np.zeros((3, 4)))
    summary["final_train_error"].loc[{"optimizer": "adam", "batch_size": 2}] = 0.9  # every λ
    fig = plots.heatmap(summary)
    adam = fig.axes[0]
    marks = [p for p in adam.patches if "training fails" in p.get_label()]
    assert len(marks) == 4  # one per failing cell: the row B = 2
    (x0, x1), (y0, y1) = adam.get_xlim(), adam.get_ylim()
    for mark in marks:
        left, bottom = mark.get_x(), mark.get_y()
        right, top = left + mark.get_width(), bottom + mark.get_height()
        assert x0 < left < right < x1 and y0 < bottom < top < y1  # inside, never on the frame
    assert not [p for p in fig.axes[1].patches if "training fails" in p.get_label()]


def _trajectory_summary(points: int) -> xr.Dataset:
    epoch = np.array([0, 1, 10, 100])
    shape = (1, points, 2, len(epoch))
    return xr.Dataset({
        "train_error": (("optimizer", "lr", "seed", "epoch"), np.full(shape, 0.1)),
        "test_error": (("optimizer", "lr", "seed", "epoch"), np.full(shape, 0.2)),
        "status": (("optimizer", "lr", "seed"), np.full(shape[:3], "completed")),
        "diverged_epoch": (("optimizer", "lr", "seed"), np.full(shape[:3], -1)),
    }, coords={"optimizer": ["adam"], "lr": np.geomspace(1e-5, 1e-2, points), "seed": [0, 1],
               "epoch": epoch},
        attrs={"experiment": "e", "grid_dims": '["optimizer", "lr", "seed"]'})


def test_a_large_grid_draws_sixteen_of_its_points_and_says_where_the_rest_are():
    fig = plots.errors(_trajectory_summary(88), "adam")
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert len(panels) == 16
    assert "16 of its 88 grid points" in fig._suptitle.get_text().replace("\n", " ")
    lrs = [float(ax.get_title().split("=")[1]) for ax in panels]
    assert lrs[0] == pytest.approx(1e-5) and lrs[-1] == pytest.approx(1e-2)  # both ends
    small = plots.errors(_trajectory_summary(4), "adam")
    assert len([ax for ax in small.axes if ax.get_visible()]) == 4
    assert "grid points" not in small._suptitle.get_text()


def test_a_panel_title_does_not_repeat_the_optimizer_of_the_figure_title():
    fig = plots.errors(_trajectory_summary(1).isel(lr=0, drop=True).assign_attrs(
        grid_dims='["optimizer", "seed"]'), "adam")
    assert "adam" in fig._suptitle.get_text()
    assert fig.axes[0].get_title() == ""


# --- every figure of the default and tiny configs: legends true in every panel ---------------

def _colour(handle) -> str:
    """The colour a legend entry stands for."""
    import matplotlib.colors as mcolors
    from matplotlib.container import ErrorbarContainer

    if isinstance(handle, ErrorbarContainer):
        handle = handle.lines[0]
    for getter in ("get_color", "get_edgecolor", "get_facecolor"):
        if hasattr(handle, getter):
            value = getattr(handle, getter)()
            value = value[0] if hasattr(value, "ndim") and value.ndim == 2 else value
            return mcolors.to_hex(value, keep_alpha=False)
    raise AssertionError(f"no colour for {handle!r}")


def _every_figure():
    import summaries
    from conftest import ROOT, TINY_WORKFLOW

    from adamgen import figures
    from adamgen.config import load_yaml
    from adamgen.planner import plan

    rng = np.random.default_rng(0)
    # and the paper config's tang_lemmas: each optimizer sweeps an axis of its own (adam
    # sigma_0, adamw lambda), so a panel's other axis holds the other optimizer's values only
    paper = load_yaml(ROOT / "config" / "paper.yaml")
    lemmas = {"experiments": {"tang_lemmas": paper["experiments"]["tang_lemmas"]}}
    for config in (load_yaml(ROOT / "config" / "config.yaml"), TINY_WORKFLOW, lemmas):
        for name, experiment in plan(config).items():
            summary = summaries.cnn_summary(experiment, rng)
            for stem in figures.names(experiment):
                yield f"{name}/{stem}", summary, stem


@pytest.mark.parametrize("name, summary, stem", list(_every_figure()),
                         ids=[f[0] for f in _every_figure()])
def test_every_legend_is_true_in_every_panel(name, summary, stem):
    """The first-hour issue's cases: one shared legend while colours were assigned per panel
    (digits_e9's adamw panel drew lambda = 0.1 in the colour the legend gave 0.01; tang_e4 drew
    lambda = 1e-5 and 0.01 both blue), a 48-entry legend over cao_e7's plot, ticks 3.2 ... 3.8
    for an integer q. Each figure is drawn and its matplotlib objects read back: every
    labelled artist of every panel has the colour the legend gives its label, a legend has
    at most MAX_LEGEND series (and the markers of diverged seeds and failed training), and
    an axis of whole numbers is labelled with whole numbers."""
    from adamgen import figures

    fig = figures.draw(stem, summary)
    legends = fig.legends
    assert len(legends) <= 1
    legend = {}
    if legends:
        for handle, text in zip(legends[0].legend_handles, legends[0].get_texts(),
                                strict=True):
            legend[text.get_text()] = _colour(handle)
        assert len(legend) <= plots.MAX_LEGEND + 2, list(legend)
    for ax in fig.axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            assert label in legend, (stem, label)
            assert _colour(handle) == legend[label], (stem, ax.get_title(), label)
        if stem.startswith(("test_error_vs_", "feature_vs_")) and ax.get_xlabel():
            axis = stem.split("_vs_")[1]
            values = summary[axis].values.astype(float)
            if np.all(values == np.round(values)) and ax.get_xscale() == "linear":
                ticks = [t.get_text() for t in ax.get_xticklabels()]
                assert all(t.lstrip("−-").isdigit() for t in ticks if t), (stem, ticks)


def test_a_sweep_colours_each_weight_decay_alike_in_both_panels():
    """digits_e9's test error against B: adam and adamw share lambda = 0.01 and 0.1; each
    keeps one colour in both panels (it had the colour of its position in each panel)."""
    dims = ["optimizer", "batch_size", "weight_decay", "seed"]
    lams = [1e-5, 1e-3, 1e-2, 0.1, 1.0]
    status = np.full((2, 2, 5, 2), "completed", dtype=object)
    status[0, :, 4] = ""  # adam has no lambda = 1
    status[1, :, 1] = ""  # adamw has no lambda = 1e-3
    summary = xr.Dataset({
        "final_test_error": (dims, np.random.default_rng(1).uniform(0, 1, status.shape)),
        "status": (dims, status.astype(str)),
    }, coords={"optimizer": ["adam", "adamw"], "batch_size": [10, 200], "weight_decay": lams,
               "seed": [0, 1]}, attrs={"experiment": "e", "grid_dims": str(dims).replace(
                   "'", '"')})
    fig = plots.sweep(summary, "batch_size")
    colours = [{label: _colour(h) for h, label in zip(*ax.get_legend_handles_labels(),
                                                       strict=True)}
               for ax in fig.axes if ax.get_legend_handles_labels()[1]]
    assert colours[0]["λ=0.1"] == colours[1]["λ=0.1"]
    assert colours[0]["λ=0.01"] == colours[1]["λ=0.01"] != colours[1]["λ=0.1"]
    assert len(set(colours[0].values()) | set(colours[1].values())) == 5

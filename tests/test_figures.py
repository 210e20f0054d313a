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

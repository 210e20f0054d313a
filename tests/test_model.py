import numpy as np
import pytest
import torch

from adamgen import data as datamod
from adamgen.models import CNNConfig as ModelConfig
from adamgen.models.losses import example_errors, example_losses
from adamgen.models.two_layer_cnn import (
    activation,
    evaluate,
    from_filters,
    logits,
    loss_and_grad,
    to_filters,
)


def _batch(tiny, R=3, patches=2, seed=0):
    cfg = tiny(data={"patches": patches}).data
    xs, ys = [], []
    for r in range(R):
        ds = datamod.generate(cfg, seed + r)
        xs.append(ds.train.x)
        ys.append(ds.train.y)
    x = torch.tensor(np.stack(xs))
    y = torch.tensor(np.stack(ys))
    gen = torch.Generator().manual_seed(seed)
    W = from_filters(0.4 * torch.randn(R, 2, 4, cfg.d, generator=gen, dtype=torch.float64))
    return W, x, y


def _autograd(W, x, y, model):
    W = W.clone().requires_grad_()
    F, _ = logits(W, x, model)
    example_losses(F, y).mean(dim=1).sum().backward()
    return W.grad


@pytest.mark.parametrize(
    "model",
    [
        ModelConfig(q=3, m=4),
        ModelConfig(q=2.5, m=4, c=0.25),
        ModelConfig(q=1, m=4),
        ModelConfig(q=3, m=4, activation="huber", h=0.05),
    ],
    ids=["relu3", "relu2.5-c", "relu1", "huber"],
)
@pytest.mark.parametrize("patches", [2, 3])
def test_analytic_gradient_equals_autograd(tiny, model, patches):
    W, x, y = _batch(tiny, patches=patches)
    _, grad = loss_and_grad(W, x, y, model)
    assert torch.allclose(grad, _autograd(W, x, y, model), rtol=1e-10, atol=1e-13)
    assert grad.abs().max() > 1e-6  # the comparison is not between zeros


def test_the_logits_are_the_papers_sum_over_filters_and_patches(tiny):
    """F_j(W, x) = c Σ_r Σ_p σ(⟨w_{j,r}, x_p⟩) [Zou eq. 3.1], written out filter by filter
    and patch by patch: an independent check of the layout [R, d, 2m] and its products."""
    W, x, y = _batch(tiny, patches=3)
    model = ModelConfig(q=2.5, m=4, c=0.3)
    filters = to_filters(W)  # w_{j,r}: [R, 2, m, d]
    R, _, m, _ = filters.shape
    expected = torch.zeros(R, x.shape[1], 2, dtype=torch.float64)
    for r in range(R):
        for j in range(2):
            for k in range(m):
                for p in range(x.shape[2]):
                    z = x[r, :, p, :] @ filters[r, j, k]
                    expected[r, :, j] += model.c * torch.relu(z) ** model.q
    F, _ = logits(W, x, model)
    assert torch.allclose(F, expected, rtol=1e-12, atol=0) and F.abs().max() > 1e-6


def test_shared_inputs_equal_per_run_copies(tiny):
    W, x, y = _batch(tiny)
    model = ModelConfig(q=3, m=4)
    loss_s, grad_s = loss_and_grad(W, x[0], y[0], model)
    loss_p, grad_p = loss_and_grad(W, x[0].expand_as(x), y[0].expand_as(y), model)
    assert torch.allclose(grad_s, grad_p, rtol=1e-12) and torch.allclose(loss_s, loss_p)


def test_runs_do_not_mix(tiny):
    W, x, y = _batch(tiny)
    model = ModelConfig(q=3, m=4)
    loss, grad = loss_and_grad(W, x, y, model)
    for r in range(W.shape[0]):
        loss_r, grad_r = loss_and_grad(W[r:r + 1], x[r:r + 1], y[r:r + 1], model)
        assert torch.allclose(grad[r:r + 1], grad_r, rtol=1e-12, atol=0)
        assert torch.allclose(loss[r], loss_r[0], rtol=1e-12)


def test_loss_is_the_logistic_loss_on_the_margin(tiny):
    W, x, y = _batch(tiny)
    F, _ = logits(W, x, ModelConfig(q=3, m=4))
    margin = (F[..., 0] - F[..., 1]) * y
    assert torch.allclose(example_losses(F, y), torch.nn.functional.softplus(-margin))


def test_ties_count_as_errors(tiny):
    W, x, y = _batch(tiny)
    model = ModelConfig(q=3, m=4)
    F, _ = logits(torch.zeros_like(W), x, model)
    assert torch.all(example_errors(F, y) == 1)  # F_+ = F_− = 0 everywhere
    loss, err = evaluate(torch.zeros_like(W), x, y, model, chunk=7)
    assert torch.allclose(loss, torch.full_like(loss, np.log(2))) and torch.all(err == 1)


def test_chunked_evaluation_equals_one_pass(tiny):
    W, x, y = _batch(tiny)
    model = ModelConfig(q=3, m=4)
    a = evaluate(W, x, y, model, chunk=3)
    b = evaluate(W, x, y, model, chunk=10_000)
    assert torch.allclose(a[0], b[0], rtol=1e-12) and torch.equal(a[1], b[1])


def test_huberized_relu_is_continuous_with_unit_slope_beyond_h():
    model = ModelConfig(q=3, activation="huber", h=0.5)
    z = torch.tensor([-1.0, 0.0, 0.25, 0.5 - 1e-9, 0.5, 0.5 + 1e-9, 2.0], dtype=torch.float64)
    value, slope = activation(z, model)
    assert value[0] == 0 and slope[0] == 0 and value[1] == 0
    assert torch.isclose(value[2], torch.tensor(0.25**3 / (3 * 0.5**2), dtype=torch.float64))
    assert abs(value[3] - value[5]) < 1e-8 and abs(slope[3] - 1) < 1e-8
    assert torch.isclose(value[6], torch.tensor(2.0 - 0.5 * (1 - 1 / 3), dtype=torch.float64))
    assert slope[6] == 1

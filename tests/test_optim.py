"""The optimizer family against torch.optim, hand-written updates, and each other.

Every comparison runs 150 steps of real model gradients (mini-batches of the tiny patch data)
in float64, three runs in lockstep with different hyperparameters, and requires a relative
difference of at most 1e-10 at every step.
"""

import numpy as np
import pytest
import torch

from adamgen import data as datamod
from adamgen.models import CNNConfig as ModelConfig
from adamgen.models.two_layer_cnn import from_filters, loss_and_grad
from adamgen.optim import OPTIMIZERS, build_optimizer, per_run_hyperparameters

STEPS = 150
TOL = 1e-10
MODEL = ModelConfig(q=3, m=4)


@pytest.fixture(scope="module")
def problem():
    from adamgen.data.patch import PatchConfig

    cfg = PatchConfig(d=60, n=20, s=8, sigma_p=0.35, n_test=10)
    sets = [datamod.generate(cfg, seed) for seed in range(3)]
    x = torch.tensor(np.stack([s.train.x for s in sets]))
    y = torch.tensor(np.stack([s.train.y for s in sets]))
    W0 = from_filters(0.3 * torch.randn(3, 2, 4, cfg.d, dtype=torch.float64,
                                        generator=torch.Generator().manual_seed(0)))
    rng = np.random.default_rng(0)
    batches = [torch.from_numpy(rng.permutation(cfg.n)[:5]) for _ in range(STEPS)]
    return W0, x, y, batches


def _grad(W, x, y, idx):
    return loss_and_grad(W, x[:, idx], y[:, idx], MODEL)[1]


def _ours(name, settings, problem):
    """The trajectory of our optimizer, advancing the three runs in lockstep: [STEPS, R, ...]."""
    W0, x, y, batches = problem
    full = [{**dict(OPTIMIZERS[name].defaults), **s} for s in settings]
    opt = build_optimizer(name, per_run_hyperparameters(name, full, W0))
    W, state, out = W0.clone(), opt.init(W0), []
    for idx in batches:
        update, state = opt.update(_grad(W, x, y, idx), state, W)
        W = W + update
        out.append(W)
    return torch.stack(out)


def _by_hand(step, problem):
    """A reference trajectory: step(r, t, W_r, g_r, memory) -> W_r, one run at a time."""
    W0, x, y, batches = problem
    out = []
    for r in range(W0.shape[0]):
        W, memory, traj = W0[r].clone(), {}, []
        for t, idx in enumerate(batches, start=1):
            g = _grad(W[None], x[r:r + 1], y[r:r + 1], idx)[0]
            W = step(r, t, W, g, memory)
            traj.append(W)
        out.append(torch.stack(traj))
    return torch.stack(out, dim=1)


def _torch(cls, kwargs_per_run, problem):
    def step(r, t, W, g, memory):
        if "opt" not in memory:
            memory["p"] = torch.nn.Parameter(W.clone())
            memory["opt"] = cls([memory["p"]], foreach=False, **kwargs_per_run[r])
        memory["p"].grad = g
        memory["opt"].step()
        return memory["p"].detach().clone()

    return _by_hand(step, problem)


def _assert_same(ours, ref, W0):
    scale = ref.abs().amax(dim=tuple(range(2, ref.ndim)), keepdim=True)
    rel = ((ours - ref).abs() / scale).amax()
    assert rel <= TOL, f"relative difference {rel:.3g}"
    moved = (ref[-1] - W0).norm() / W0.norm()
    assert moved > 0.05, f"the weights barely moved ({moved:.3g}); the test would be vacuous"


ADAM_RUNS = [
    {"lr": 3e-3, "weight_decay": 1e-2, "betas": (0.9, 0.999), "eps": 1e-8},
    {"lr": 1e-2, "weight_decay": 0.0, "betas": (0.5, 0.9), "eps": 1e-6},
    {"lr": 5e-3, "weight_decay": 0.1, "betas": (0.0, 0.99), "eps": 1e-3},
]
TORCH_CASES = {
    "sgd": (torch.optim.SGD, [{"lr": 0.5, "weight_decay": 0.0}, {"lr": 1.0, "weight_decay": 1e-2},
                              {"lr": 2.0, "weight_decay": 0.1}]),
    "sgd_momentum": (torch.optim.SGD, [
        {"lr": 0.2, "weight_decay": 1e-3, "momentum": 0.9},
        {"lr": 0.5, "weight_decay": 0.0, "momentum": 0.5},
        {"lr": 1.0, "weight_decay": 1e-2, "momentum": 0.0}]),
    "adam": (torch.optim.Adam, ADAM_RUNS),
    "adamw": (torch.optim.AdamW, ADAM_RUNS),
    "amsgrad": (torch.optim.Adam, [{**r, "amsgrad": True} for r in ADAM_RUNS]),
    "adagrad": (torch.optim.Adagrad, [
        {"lr": 0.05, "weight_decay": 0.0, "eps": 1e-10},
        {"lr": 0.1, "weight_decay": 1e-2, "eps": 1e-6},
        {"lr": 0.02, "weight_decay": 0.1, "eps": 1e-3}]),
    "rmsprop": (torch.optim.RMSprop, [
        {"lr": 3e-3, "weight_decay": 0.0, "alpha": 0.99, "eps": 1e-8, "momentum": 0.0},
        {"lr": 1e-3, "weight_decay": 1e-2, "alpha": 0.9, "eps": 1e-6, "momentum": 0.9},
        {"lr": 5e-3, "weight_decay": 0.1, "alpha": 0.5, "eps": 1e-3, "momentum": 0.5}]),
}


class AuthorsPadam(torch.optim.Optimizer):
    """Padam's update as its authors' code computes it (uclaml/Padam, Padam.py), transcribed
    from its published step: coupled L2; moments; the running max of the uncorrected second
    moment; p ← p − lr·√(1 − β2^t)/(1 − β1^t) · m / (√v_max + ε)^(2·partial)."""

    def __init__(self, params, lr, betas, eps, weight_decay, partial, foreach=False):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      partial=partial))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                state = self.state[p]
                if not state:
                    state.update(step=0, m=torch.zeros_like(p), v=torch.zeros_like(p),
                                 v_max=torch.zeros_like(p))
                state["step"] += 1
                grad = p.grad + group["weight_decay"] * p
                state["m"].mul_(beta1).add_(grad, alpha=1 - beta1)
                state["v"].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                torch.maximum(state["v_max"], state["v"], out=state["v_max"])
                denom = state["v_max"].sqrt() + group["eps"]
                size = group["lr"] * (1 - beta2 ** state["step"]) ** 0.5 / (
                    1 - beta1 ** state["step"])
                p.sub_(size * state["m"] / denom ** (2 * group["partial"]))


PADAM_RUNS = [{**r, "p": p} for r, p in zip(ADAM_RUNS, (0.125, 0.0, 0.4), strict=True)]


def test_padam_matches_its_authors_update(problem):
    """The Padam of the CIFAR table is the authors' code: a parity test against it."""
    theirs = [{**{k: v for k, v in r.items() if k != "p"}, "partial": r["p"]}
              for r in PADAM_RUNS]
    _assert_same(_ours("padam", PADAM_RUNS, problem), _torch(AuthorsPadam, theirs, problem),
                 problem[0])


@pytest.mark.parametrize("name", list(TORCH_CASES))
def test_agrees_with_torch_optim_step_for_step(name, problem):
    cls, runs = TORCH_CASES[name]
    ours_settings = [{k: v for k, v in r.items() if k != "amsgrad"} for r in runs]
    ours = _ours(name, ours_settings, problem)
    _assert_same(ours, _torch(cls, runs, problem), problem[0])


def test_gd_is_sgd(problem):
    runs = TORCH_CASES["sgd"][1]
    assert torch.equal(_ours("gd", runs, problem), _ours("sgd", runs, problem))


SIGN_RUNS = [{"lr": 1e-3, "weight_decay": 1e-2}, {"lr": 3e-3, "weight_decay": 0.0},
             {"lr": 2e-3, "weight_decay": 0.5}]


def test_signsgd_by_hand(problem):
    def step(r, t, W, g, memory):
        lr, wd = SIGN_RUNS[r]["lr"], SIGN_RUNS[r]["weight_decay"]
        return W - lr * torch.sign(g + wd * W)

    _assert_same(_ours("signsgd", SIGN_RUNS, problem), _by_hand(step, problem), problem[0])


def test_signsgdw_by_hand(problem):
    def step(r, t, W, g, memory):
        lr, wd = SIGN_RUNS[r]["lr"], SIGN_RUNS[r]["weight_decay"]
        return (1 - lr * wd) * W - lr * torch.sign(g)

    _assert_same(_ours("signsgdw", SIGN_RUNS, problem), _by_hand(step, problem), problem[0])


def _adam_family_by_hand(runs, amsgrad, bias_correction, power_of):
    def step(r, t, W, g, memory):
        h = runs[r]
        b1, b2 = h["betas"]
        g = g + h["weight_decay"] * W
        m = b1 * memory.get("m", 0) + (1 - b1) * g
        v = b2 * memory.get("v", 0) + (1 - b2) * g * g
        v_max = torch.maximum(memory["v_max"], v) if "v_max" in memory else v
        memory.update(m=m, v=v, v_max=v_max)
        v_used = v_max if amsgrad else v
        if bias_correction:
            m, v_used = m / (1 - b1**t), v_used / (1 - b2**t)
        return W - h["lr"] * m / (v_used ** power_of(h) + h["eps"])

    return step


def test_padam_without_bias_correction_by_hand(problem):
    runs = [{**r, "bias_correction": False} for r in PADAM_RUNS]

    def step(r, t, W, g, memory):
        h = runs[r]
        b1, b2 = h["betas"]
        g = g + h["weight_decay"] * W
        memory["m"] = b1 * memory.get("m", 0) + (1 - b1) * g
        memory["v"] = b2 * memory.get("v", 0) + (1 - b2) * g * g
        memory["v_max"] = torch.maximum(memory.get("v_max", memory["v"]), memory["v"])
        return W - h["lr"] * memory["m"] / (memory["v_max"].sqrt() + h["eps"]) ** (2 * h["p"])

    _assert_same(_ours("padam", runs, problem), _by_hand(step, problem), problem[0])


def test_adam_without_bias_correction_by_hand(problem):
    """Zou et al.'s Adam [000 §3], which torch.optim does not offer."""
    runs = [{**r, "bias_correction": False} for r in ADAM_RUNS]
    hand = _adam_family_by_hand(runs, amsgrad=False, bias_correction=False,
                                power_of=lambda h: 0.5)
    _assert_same(_ours("adam", runs, problem), _by_hand(hand, problem), problem[0])


def test_padam_with_half_power_is_amsgrad_without_epsilon(problem):
    """p = 1/2 is AMSGrad, up to where ε sits: (√v_max + ε) against PyTorch's √v̂_max + ε,
    the same as ε → 0 (E8's p = 1/2 runs are therefore AMSGrad's: a unit fact, not a claim).
    ε = 1e-300 rather than 0, which makes 0/0 of the coordinates no example touches."""
    no_eps = [{**r, "eps": 1e-300} for r in ADAM_RUNS]
    padam = _ours("padam", [{**r, "p": 0.5} for r in no_eps], problem)
    _assert_same(padam, _ours("amsgrad", no_eps, problem), problem[0])


def test_rmsprop_is_adam_without_first_moment_or_bias_correction(problem):
    runs = [{"lr": 3e-3, "weight_decay": 1e-2, "alpha": 0.99, "eps": 1e-8},
            {"lr": 1e-3, "weight_decay": 0.0, "alpha": 0.9, "eps": 1e-6},
            {"lr": 5e-3, "weight_decay": 0.1, "alpha": 0.5, "eps": 1e-3}]
    as_adam = [{"lr": r["lr"], "weight_decay": r["weight_decay"], "betas": (0.0, r["alpha"]),
                "eps": r["eps"], "bias_correction": False} for r in runs]
    _assert_same(_ours("rmsprop", runs, problem), _ours("adam", as_adam, problem), problem[0])


def test_padam_at_zero_power_is_ema_momentum_sgd(problem):
    runs = [{**r, "p": 0.0, "bias_correction": False} for r in ADAM_RUNS]

    def step(r, t, W, g, memory):
        h = runs[r]
        b1 = h["betas"][0]
        memory["m"] = b1 * memory.get("m", 0) + (1 - b1) * (g + h["weight_decay"] * W)
        return W - h["lr"] * memory["m"]

    _assert_same(_ours("padam", runs, problem), _by_hand(step, problem), problem[0])


def test_lockstep_runs_equal_single_runs(problem):
    W0, x, y, batches = problem
    together = _ours("adam", ADAM_RUNS, problem)
    for r in range(3):
        single = _ours("adam", [ADAM_RUNS[r]], (W0[r:r + 1], x[r:r + 1], y[r:r + 1], batches))
        assert torch.allclose(together[:, r:r + 1], single, rtol=1e-12, atol=0)


LION_RUNS = [{"lr": 1e-3, "weight_decay": 1e-2, "betas": (0.9, 0.99)},
             {"lr": 3e-3, "weight_decay": 0.0, "betas": (0.5, 0.9)},
             {"lr": 2e-3, "weight_decay": 0.5, "betas": (0.0, 0.99)}]


def test_lion_by_hand(problem):
    """Chen et al. 2023, Algorithm 2: the sign of an interpolation, its own β2 for the
    momentum, decoupled weight decay."""
    def step(r, t, W, g, memory):
        h = LION_RUNS[r]
        b1, b2 = h["betas"]
        m = memory.get("m", torch.zeros_like(W))
        u = torch.sign(b1 * m + (1 - b1) * g)
        memory["m"] = b2 * m + (1 - b2) * g
        return W - h["lr"] * (u + h["weight_decay"] * W)

    _assert_same(_ours("lion", LION_RUNS, problem), _by_hand(step, problem), problem[0])


# optimizers checked against an update written out by hand (torch.optim has none of them)
BY_HAND = {"gd", "signsgd", "signsgdw", "padam", "lion"}


def test_every_optimizer_is_checked_against_torch_optim_or_by_hand():
    assert set(TORCH_CASES) | BY_HAND == set(OPTIMIZERS)


def test_an_optimizer_without_a_fast_kernel_trains_on_the_torch_engine(tiny, caplog):
    """`engine: auto` falls back, says why in the log; `engine: fast` is refused up front."""
    import logging

    from adamgen.trainer import train

    run = tiny(optimizer={"name": "lion", "lr": 1e-3}, train={"dtype": "float64"})
    log = logging.getLogger("adamgen")  # the command line stops it propagating to the root
    log.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.INFO, logger="adamgen"):
            (result,) = train([run])
    finally:
        log.removeHandler(caplog.handler)
    assert result.timing["engine"] == "torch"
    assert ("engine: torch (auto: not fast: it has no fused kernel for the optimizer 'lion'; "
            "not linear: it has no kernels for the network 'two_layer_cnn')") in caplog.text
    with pytest.raises(ValueError, match="'train.engine' = 'fast': cannot train this run: it "
                                         "has no fused kernel for the optimizer 'lion'"):
        tiny(optimizer={"name": "lion", "lr": 1e-3}, train={"engine": "fast"})

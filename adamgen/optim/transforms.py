"""Optimizer building blocks: small pure transforms, composed with `chain` (after optax).

A transform is a pair of pure functions

    init(params) -> state
    update(updates, state, params) -> (updates, state)

where `updates` enters as the gradient and leaves as the step to add to the parameters.
Every tensor carries a leading *run* axis: `params` has shape [R, ...] and every numeric
hyperparameter is a tensor of shape [R], one value per run, so a single call advances R
independent runs in lockstep. Nothing here mixes runs.

This module is the readable reference of docs/science.md §3; a fused fast path must match it
(parity tests).
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import Tensor


class Transform(NamedTuple):
    init: Callable[[Tensor], Any]
    update: Callable[[Tensor, Any, Tensor], tuple[Tensor, Any]]


def tree_map(fn: Callable[[Any], Any], tree: Any) -> Any:
    """`fn` applied to every leaf of a state: nested dicts, NamedTuples, tuples and lists are
    rebuilt around the mapped leaves (tensors, counts, None)."""
    if isinstance(tree, dict):
        return {k: tree_map(fn, v) for k, v in tree.items()}
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):
        return type(tree)(*(tree_map(fn, v) for v in tree))
    if isinstance(tree, tuple | list):
        return type(tree)(tree_map(fn, v) for v in tree)
    return fn(tree)


def per_run(h: Tensor, like: Tensor) -> Tensor:
    """View a [R] hyperparameter so that it broadcasts against a [R, ...] tensor."""
    return h.reshape(h.shape + (1,) * (like.ndim - 1))


def chain(*transforms: Transform) -> Transform:
    """Apply transforms in order; the state is the tuple of their states."""

    def init(params: Tensor) -> tuple:
        return tuple(t.init(params) for t in transforms)

    def update(updates: Tensor, state: tuple, params: Tensor) -> tuple[Tensor, tuple]:
        new_state = []
        for t, s in zip(transforms, state, strict=True):
            updates, s = t.update(updates, s, params)
            new_state.append(s)
        return updates, tuple(new_state)

    return Transform(init, update)


def _stateless(fn: Callable[[Tensor, Tensor], Tensor]) -> Transform:
    return Transform(lambda params: (), lambda u, state, params: (fn(u, params), state))


def add_decayed_weights(weight_decay: Tensor) -> Transform:
    """u ← u + λ W.

    Placed before a preconditioner it is coupled L2 regularisation (the gradient of
    (λ/2)‖W‖²_F, as in Adam, SGD, SignSGD); placed after it, and followed by `scale_by_lr`,
    it is decoupled weight decay W ← (1 − ηλ) W − η u (AdamW, SignSGDW) [docs/science.md §3].
    """
    return _stateless(lambda u, params: u + per_run(weight_decay, u) * params)


def scale_by_lr(lr: Tensor) -> Transform:
    """u ← −η u: turns a direction into the step added to the parameters."""
    return _stateless(lambda u, params: -per_run(lr, u) * u)


def scale_by_sign() -> Transform:
    """u ← sign(u): SignSGD, Adam's β → 0 surrogate [Zou §5.1, Tang §5]."""
    return _stateless(lambda u, params: torch.sign(u))


class TraceState(NamedTuple):
    trace: Tensor


def trace(momentum: Tensor) -> Transform:
    """Heavy-ball momentum in PyTorch's convention: b ← μ b + g; u = b."""

    def init(params: Tensor) -> TraceState:
        return TraceState(torch.zeros_like(params))

    def update(g: Tensor, state: TraceState, params: Tensor) -> tuple[Tensor, TraceState]:
        b = per_run(momentum, g) * state.trace + g
        return b, TraceState(b)

    return Transform(init, update)


class AdamState(NamedTuple):
    count: int
    mu: Tensor
    nu: Tensor
    nu_max: Tensor | None


def scale_by_adam(
    b1: Tensor,
    b2: Tensor,
    eps: Tensor,
    *,
    amsgrad: bool = False,
    bias_correction: bool = True,
) -> Transform:
    """Adam's preconditioned direction, and the AMSGrad variant.

        m ← β1 m + (1 − β1) g          v ← β2 v + (1 − β2) g²
        v_max ← max(v_max, v)          (AMSGrad; v̂ below uses v_max)
        m̂ = m / (1 − β1^t), v̂ = v / (1 − β2^t)     (bias_correction; else m̂ = m, v̂ = v)
        u = m̂ / (√v̂ + ε)

    PyTorch applies the bias correction to AMSGrad's running max, as here. Zou et al. analyse
    Adam without bias correction [Zou §3]; PyTorch's default keeps it.
    """

    def init(params: Tensor) -> AdamState:
        zeros = torch.zeros_like(params)
        return AdamState(0, zeros, zeros.clone(), zeros.clone() if amsgrad else None)

    def update(g: Tensor, state: AdamState, params: Tensor) -> tuple[Tensor, AdamState]:
        t = state.count + 1
        beta1, beta2 = per_run(b1, g), per_run(b2, g)
        mu = beta1 * state.mu + (1 - beta1) * g
        nu = beta2 * state.nu + (1 - beta2) * g * g
        nu_max = torch.maximum(state.nu_max, nu) if amsgrad else None
        m_hat, v_hat = mu, (nu_max if amsgrad else nu)
        if bias_correction:
            m_hat = m_hat / (1 - beta1**t)
            v_hat = v_hat / (1 - beta2**t)
        return m_hat / (v_hat.sqrt() + per_run(eps, g)), AdamState(t, mu, nu, nu_max)

    return Transform(init, update)


def scale_by_padam(b1: Tensor, b2: Tensor, eps: Tensor, p: Tensor, *,
                   bias_correction: bool = True) -> Transform:
    """Padam's partially adaptive direction, as its authors' code computes it [Chen et al.
    (IJCAI 2020); the reference implementation uclaml/Padam, Padam.py]:

        m ← β1 m + (1 − β1) g          v ← β2 v + (1 − β2) g²          v_max ← max(v_max, v)
        u = √(1 − β2^t) / (1 − β1^t) · m / (√v_max + ε)^(2p)

    The maximum is of the uncorrected second moment, and the bias corrections scale the step
    (√(1 − β2^t) is not raised to 2p); without bias_correction, u = m / (√v_max + ε)^(2p).
    p = 1/2 is AMSGrad with ε moved inside the correction (the same when ε = 0); p = 0 is
    momentum SGD on the moving average m.
    """

    def init(params: Tensor) -> AdamState:
        zeros = torch.zeros_like(params)
        return AdamState(0, zeros, zeros.clone(), zeros.clone())

    def update(g: Tensor, state: AdamState, params: Tensor) -> tuple[Tensor, AdamState]:
        t = state.count + 1
        beta1, beta2 = per_run(b1, g), per_run(b2, g)
        mu = beta1 * state.mu + (1 - beta1) * g
        nu = beta2 * state.nu + (1 - beta2) * g * g
        nu_max = torch.maximum(state.nu_max, nu)
        step = mu / (nu_max.sqrt() + per_run(eps, g)).pow(2 * per_run(p, g))
        if bias_correction:
            step = step * ((1 - beta2**t).sqrt() / (1 - beta1**t))
        return step, AdamState(t, mu, nu, nu_max)

    return Transform(init, update)


class AccumulatorState(NamedTuple):
    acc: Tensor


def scale_by_rss(eps: Tensor) -> Transform:
    """Adagrad: G ← G + g²; u = g / (√G + ε)."""

    def init(params: Tensor) -> AccumulatorState:
        return AccumulatorState(torch.zeros_like(params))

    def update(g: Tensor, state: AccumulatorState, params: Tensor):
        acc = state.acc + g * g
        return g / (acc.sqrt() + per_run(eps, g)), AccumulatorState(acc)

    return Transform(init, update)


def scale_by_rms(alpha: Tensor, eps: Tensor) -> Transform:
    """RMSprop: v ← a v + (1 − a) g²; u = g / (√v + ε)."""

    def init(params: Tensor) -> AccumulatorState:
        return AccumulatorState(torch.zeros_like(params))

    def update(g: Tensor, state: AccumulatorState, params: Tensor):
        a = per_run(alpha, g)
        acc = a * state.acc + (1 - a) * g * g
        return g / (acc.sqrt() + per_run(eps, g)), AccumulatorState(acc)

    return Transform(init, update)


class LionState(NamedTuple):
    mu: Tensor


def scale_by_lion(b1: Tensor, b2: Tensor) -> Transform:
    """Lion's direction [Chen et al. 2023, Algorithm 2]:

        u = sign(β1 m + (1 − β1) g)        (an interpolation of the momentum and g)
        m ← β2 m + (1 − β2) g               (the momentum, with its own β2)

    Followed by decoupled weight decay and the step: W ← W − η (u + λ W).
    """

    def init(params: Tensor) -> LionState:
        return LionState(torch.zeros_like(params))

    def update(g: Tensor, state: LionState, params: Tensor) -> tuple[Tensor, LionState]:
        beta1, beta2 = per_run(b1, g), per_run(b2, g)
        u = torch.sign(beta1 * state.mu + (1 - beta1) * g)
        return u, LionState(beta2 * state.mu + (1 - beta2) * g)

    return Transform(init, update)

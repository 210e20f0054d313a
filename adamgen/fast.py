"""Fused CPU kernels (numba) for the structured fast path.

The math is that of `adamgen.model` (forward pass, loss, gradient) and of the transforms in
`adamgen.optim` (updates); `tests/test_fast.py` checks every optimizer against that reference,
step for step. What is different is how it is computed:

- only the nonzero input coordinates are touched (`adamgen.structure.PatchCSR`): ⟨w, x_p⟩ and
  the gradient cost O(nnz·m) per example instead of O(d·m);
- each optimizer's update is one pass over the parameters that also clears the gradient buffer;
- one call trains a whole chunk of epochs, each run in one thread (runs never share work, so
  a run's numbers do not depend on how many runs share the call or on the thread count).

Layout: weights and state are [R, d, 2m] with column q = j·m + r (class index j: 0 ↔ +1,
1 ↔ −1), so the 2m weights of one input coordinate are contiguous.
"""

import math

import numpy as np
from numba import njit, prange

# optimizer families (see adamgen.optim.alias: NamedOptimizer.fused)
SGD, ADAM, SIGN, ADAGRAD, RMSPROP = range(5)
FAMILIES = {"sgd": SGD, "adam": ADAM, "sign": SIGN, "adagrad": ADAGRAD, "rmsprop": RMSPROP}
# flags
COUPLED, AMSGRAD, POWER, BIAS_CORRECTION, MOMENTUM_BUFFER = 1, 2, 4, 8, 16
# columns of the per-run hyperparameter table H
LR, WD, BETA1, BETA2, EPS, P, MOMENTUM, ALPHA = range(8)
COLUMNS = {"lr": LR, "weight_decay": WD, "eps": EPS, "p": P, "momentum": MOMENTUM,
           "alpha": ALPHA}
STATE_SLOTS = {SGD: 1, ADAM: 3, SIGN: 1, ADAGRAD: 1, RMSPROP: 1}


@njit(cache=True, inline="always")
def _power(x, e):
    if e == 0.0:
        return 1.0
    if e == 1.0:
        return x
    if e == 2.0:
        return x * x
    if e == 3.0:
        return x * x * x
    return x**e


@njit(cache=True, inline="always")
def _activation(z, q, huber, h):
    """σ(z) and σ'(z): max(0, z)^q, or the Huberized ReLU (see adamgen.model.activation)."""
    if z <= 0.0:
        return 0.0, 0.0
    if huber:
        if z > h:
            return z - h * (1.0 - 1.0 / q), 1.0
        slope = _power(z / h, q - 1.0)
        return z * slope / q, slope
    zq1 = _power(z, q - 1.0)
    return zq1 * z, q * zq1


@njit(cache=True)
def _batch_grad(W, G, ptr, idx, val, labels, rows, P, m, q, c, huber, h, z, slope, F):
    """Mean loss over the examples `rows`; adds the gradient of that mean to G ([d, 2m]).

        F_j = c Σ_p Σ_r σ(⟨w_{j,r}, x_p⟩);   L = logsumexp_j F_j − F_y
        ∇_{w_{j,r}} L = −ℓ_j c Σ_p σ'(⟨w_{j,r}, x_p⟩) x_p,   ℓ_j = 1[y = j] − softmax_j(F)

    The scratch arrays z, slope ([P, 2m]) and F ([2]) have the weights' dtype, so that a
    float32 run overflows (and diverges) where the reference does.
    """
    Q = 2 * m
    B = len(rows)
    scale = c / B
    total = 0.0
    for b in range(B):
        i = rows[b]
        F[0] = 0.0
        F[1] = 0.0
        for p in range(P):
            row = i * P + p
            for j in range(Q):
                z[p, j] = 0.0
            for e in range(ptr[row], ptr[row + 1]):
                k = idx[e]
                x = val[e]
                for j in range(Q):
                    z[p, j] += W[k, j] * x
            for j in range(Q):
                a, s = _activation(z[p, j], q, huber, h)
                slope[p, j] = s
                F[0 if j < m else 1] += a
        F[0] *= c
        F[1] *= c
        F0, F1 = float(F[0]), float(F[1])
        top = max(F0, F1)
        lse = top + math.log(math.exp(F0 - top) + math.exp(F1 - top))
        positive = labels[i] > 0
        total += lse - (F0 if positive else F1)
        l0 = (1.0 if positive else 0.0) - math.exp(F0 - lse)
        l1 = (0.0 if positive else 1.0) - math.exp(F1 - lse)
        for p in range(P):
            row = i * P + p
            for j in range(Q):
                slope[p, j] *= -scale * (l0 if j < m else l1)
            for e in range(ptr[row], ptr[row + 1]):
                k = idx[e]
                x = val[e]
                for j in range(Q):
                    G[k, j] += slope[p, j] * x
    return total / B


@njit(cache=True)
def _update(family, flags, W, G, S, H, t):
    """One fused pass: W ← W + step(G), the optimizer state S updated, G cleared.

    Coupled decay adds λW to the gradient; decoupled decay adds it to the direction
    (W ← W − η(u + λW)); see adamgen.optim.transforms for each family's equation.
    """
    lr, wd = H[LR], H[WD]
    b1, b2, eps, power = H[BETA1], H[BETA2], H[EPS], H[P]
    coupled = (flags & COUPLED) != 0
    amsgrad = (flags & AMSGRAD) != 0
    use_power = (flags & POWER) != 0
    bc1, bc2 = 1.0, 1.0
    if flags & BIAS_CORRECTION:
        bc1, bc2 = 1.0 - b1**t, 1.0 - b2**t
    for e in range(W.shape[0]):
        w = W[e]
        g = G[e]
        G[e] = 0.0
        if coupled:
            g = g + wd * w
        if family == SGD:
            if flags & MOMENTUM_BUFFER:
                g = H[MOMENTUM] * S[0, e] + g
                S[0, e] = g
            u = g
        elif family == ADAM:
            mu = b1 * S[0, e] + (1.0 - b1) * g
            nu = b2 * S[1, e] + (1.0 - b2) * g * g
            S[0, e] = mu
            S[1, e] = nu
            if amsgrad:
                if nu > S[2, e]:
                    S[2, e] = nu
                nu = S[2, e]
            v_hat = nu / bc2
            denom = v_hat**power if use_power else math.sqrt(v_hat)
            u = (mu / bc1) / (denom + eps)
        elif family == SIGN:
            u = 1.0 if g > 0.0 else (-1.0 if g < 0.0 else g)  # sign; keeps 0 and NaN
        elif family == ADAGRAD:
            acc = S[0, e] + g * g
            S[0, e] = acc
            u = g / (math.sqrt(acc) + eps)
        else:  # RMSPROP
            a = H[ALPHA]
            acc = a * S[0, e] + (1.0 - a) * g * g
            S[0, e] = acc
            u = g / (math.sqrt(acc) + eps)
        if not coupled:
            u = u + wd * w
        W[e] = w - lr * u


@njit(cache=True, parallel=True)
def train_chunk(W, G, S, H, family, flags, t0, ptr, idx, val, labels, data_index, perms,
                full_batch, B, P, m, q, c, huber, h, alive, diverged_at, epoch0):
    """Train every live run for perms.shape[0] epochs (epoch0 + 1, ...), in parallel over runs.

    perms[e, r] is run r's permutation of its n examples in epoch e (ignored for full batch).
    A run whose batch loss becomes non-finite stops, with diverged_at[r] set to that epoch.
    Returns nothing; W, S and the flags are updated in place.
    """
    R, d, Q = W.shape
    n = labels.shape[1]
    epochs = perms.shape[0]
    steps = n // B
    for r in prange(R):
        if not alive[r]:
            continue
        u = data_index[r]
        z = np.empty((P, Q), W.dtype)
        slope = np.empty((P, Q), W.dtype)
        F = np.empty(2, W.dtype)
        w_flat = W[r].reshape(-1)
        g_flat = G[r].reshape(-1)
        every = np.arange(n).reshape(1, 1, n)  # the full batch, typed like a permutation
        t = t0
        for e in range(epochs):
            for s in range(steps):
                rows = every[0, 0, 0:n] if full_batch else perms[e, r, s * B:(s + 1) * B]
                loss = _batch_grad(W[r], G[r], ptr[u], idx, val, labels[u], rows, P, m, q, c,
                                   huber, h, z, slope, F)
                t += 1
                _update(family, flags, w_flat, g_flat, S[r], H[r], t)
                if not math.isfinite(loss):
                    alive[r] = False
                    diverged_at[r] = epoch0 + e + 1
                    break
            if not alive[r]:
                break


@njit(cache=True, parallel=True)
def full_gradient(W, ptr, idx, val, labels, data_index, P, m, q, c, huber, h):
    """Mean training loss [R] and its gradient [R, d, 2m] over every training example."""
    R, d, Q = W.shape
    n = labels.shape[1]
    G = np.zeros((R, d, Q), W.dtype)
    loss = np.empty(R)
    for r in prange(R):
        u = data_index[r]
        loss[r] = _batch_grad(W[r], G[r], ptr[u], idx, val, labels[u], np.arange(n), P, m, q,
                              c, huber, h, np.empty((P, Q), W.dtype), np.empty((P, Q), W.dtype),
                              np.empty(2, W.dtype))
    return loss, G


@njit(cache=True, parallel=True)
def logits(W, ptr, idx, val, data_index, N, P, m, q, c, huber, h):
    """F [R, N, 2] for N examples of each run's data set (test sets, probes)."""
    R, d, Q = W.shape
    F = np.zeros((R, N, 2), W.dtype)
    for r in prange(R):
        u = data_index[r]
        z = np.empty(Q, W.dtype)
        for i in range(N):
            for p in range(P):
                row = i * P + p
                for j in range(Q):
                    z[j] = 0.0
                for e in range(ptr[u, row], ptr[u, row + 1]):
                    k = idx[e]
                    x = val[e]
                    for j in range(Q):
                        z[j] += W[r, k, j] * x
                for j in range(Q):
                    a, _ = _activation(z[j], q, huber, h)
                    F[r, i, 0 if j < m else 1] += a
        for i in range(N):
            F[r, i, 0] *= c
            F[r, i, 1] *= c
    return F

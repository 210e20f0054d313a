"""Fused CPU kernels (numba) for the structured fast path.

The math is that of `adamgen.models.two_layer_cnn` (forward pass, loss, gradient) and of the
transforms in `adamgen.optim` (updates); `tests/test_fast.py` checks every optimizer against
that reference, step for step. What is different is how it is computed:

- only the nonzero input coordinates are touched (`adamgen.engines.structure.PatchCSR`):
  ⟨w, x_p⟩ and the gradient cost O(nnz·m) per example instead of O(d·m);
- each optimizer's update is one pass over the parameters that also clears the gradient buffer;
- one call trains a whole chunk of epochs, each run in one thread (runs never share work, so
  a run's numbers do not depend on how many runs share the call or on the thread count).

Layout: weights and state are [R, d, 2m] with column q = j·m + r (class index j: 0 ↔ +1,
1 ↔ −1), so the 2m weights of one input coordinate are contiguous.
"""

import math
import platform

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

# optimizer families (each optimizer's: adamgen.engines.fast.FUSED)
SGD, ADAM, SIGN, ADAGRAD, RMSPROP = range(5)
FAMILIES = {"sgd": SGD, "adam": ADAM, "sign": SIGN, "adagrad": ADAGRAD, "rmsprop": RMSPROP}
# flags
COUPLED, AMSGRAD, PADAM, BIAS_CORRECTION, MOMENTUM_BUFFER, ROOTS = 1, 2, 4, 8, 16, 32
# the model's constants, in the weights' dtype: typed zeros and ones come from here, never from
# data (an uninitialized or overflowed entry times 0 is not always 0)
K_Q, K_C, K_H, K_ZERO, K_ONE = range(5)
# columns of the per-run hyperparameter table H, in the weights' dtype (ONE holds 1, TINY the
# smallest normal number of the dtype)
LR, WD, BETA1, BETA2, EPS, P, MOMENTUM, ALPHA, ONE, TINY = range(10)
COLUMNS = {"lr": LR, "weight_decay": WD, "eps": EPS, "p": P, "momentum": MOMENTUM,
           "alpha": ALPHA}
STATE_SLOTS = {SGD: 1, ADAM: 3, SIGN: 1, ADAGRAD: 1, RMSPROP: 2}


@njit(cache=True, error_model="numpy", inline="always")
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


@njit(cache=True, error_model="numpy", inline="always")
def _activation(z, q, huber, h):
    """σ(z) and σ'(z): max(0, z)^q, or the Huberized ReLU (adamgen.models.two_layer_cnn)."""
    if z <= 0.0:
        return 0.0, 0.0
    if huber:
        if z > h:
            return z - h * (1.0 - 1.0 / q), 1.0
        slope = _power(z / h, q - 1.0)
        return z * slope / q, slope
    zq1 = _power(z, q - 1.0)
    return zq1 * z, q * zq1


@njit(cache=True, error_model="numpy")
def _gather(z, W, idx, val, start, end):
    """z = Σ_e W[idx[e]] · val[e] over entries start..end (one patch), four entries at a time
    (a shorter chain of dependent additions into z)."""
    for j in range(z.shape[0]):
        z[j] = 0
    e = start
    while e + 4 <= end:
        w0, w1, w2, w3 = W[idx[e]], W[idx[e + 1]], W[idx[e + 2]], W[idx[e + 3]]
        x0, x1, x2, x3 = val[e], val[e + 1], val[e + 2], val[e + 3]
        for j in range(z.shape[0]):
            z[j] += (w0[j] * x0 + w1[j] * x1) + (w2[j] * x2 + w3[j] * x3)
        e += 4
    while e < end:
        w0, x0 = W[idx[e]], val[e]
        for j in range(z.shape[0]):
            z[j] += w0[j] * x0
        e += 1


@njit(cache=True, error_model="numpy")
def _scatter(G, coef, idx, val, start, end):
    """G[idx[e]] += coef · val[e] over entries start..end (one patch), four entries at a time.

    The four rows of one patch are distinct coordinates, and coef is read once for all four.
    """
    e = start
    while e + 4 <= end:
        g0, g1, g2, g3 = G[idx[e]], G[idx[e + 1]], G[idx[e + 2]], G[idx[e + 3]]
        x0, x1, x2, x3 = val[e], val[e + 1], val[e + 2], val[e + 3]
        for j in range(coef.shape[0]):
            c = coef[j]
            g0[j] += c * x0
            g1[j] += c * x1
            g2[j] += c * x2
            g3[j] += c * x3
        e += 4
    while e < end:
        g0, x0 = G[idx[e]], val[e]
        for j in range(coef.shape[0]):
            g0[j] += coef[j] * x0
        e += 1


@njit(cache=True, error_model="numpy")
def _activate_row(z, slope, m, K, huber):
    """z ← σ(z) and slope ← σ'(z) over one row of 2m pre-activations; returns the class sums.

    ReLU^q with q ∈ {1, 2, 3} takes a branch-free loop that vectorizes; anything else the
    general `_activation`.
    """
    q, h, zero, one = K[K_Q], K[K_H], K[K_ZERO], K[K_ONE]
    Q = z.shape[0]
    if not huber and (q == 1.0 or q == 2.0 or q == 3.0):
        for j in range(Q):
            x = z[j] if z[j] > zero else zero
            xq1 = x * x if q == 3.0 else (x if q == 2.0 else one)
            slope[j] = q * xq1 if z[j] > zero else zero
            z[j] = xq1 * x
    else:
        for j in range(Q):
            z[j], slope[j] = _activation(z[j], q, huber, h)
    f0, f1 = zero, zero
    for j in range(m):
        f0 += z[j]
    for j in range(m, Q):
        f1 += z[j]
    return f0, f1


@njit(cache=True, error_model="numpy")
def _batch_grad(W, G, ptr, idx, val, labels, rows, batch, P, m, K, huber, z, slope, F):
    """Mean loss over the examples `rows`; adds their part of the gradient of the mean loss
    over a batch of `batch` examples to G ([d, 2m]).

        F_j = c Σ_p Σ_r σ(⟨w_{j,r}, x_p⟩);   L = logsumexp_j F_j − F_y
        ∇_{w_{j,r}} L = −ℓ_j c Σ_p σ'(⟨w_{j,r}, x_p⟩) x_p,   ℓ_j = 1[y = j] − softmax_j(F)

    The scratch arrays z, slope ([P, 2m]) and F ([2]) have the weights' dtype, so that a
    float32 run overflows (and diverges) where the reference does.
    """
    c = K[K_C]
    scale = c / batch
    total = 0.0
    for b in range(len(rows)):
        i = rows[b]
        F[0] = 0.0
        F[1] = 0.0
        for p in range(P):
            _gather(z[p], W, idx, val, ptr[i * P + p], ptr[i * P + p + 1])
            f0, f1 = _activate_row(z[p], slope[p], m, K, huber)
            F[0] += f0
            F[1] += f1
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
            for j in range(2 * m):
                slope[p, j] *= -scale * (l0 if j < m else l1)
            _scatter(G, slope[p], idx, val, ptr[i * P + p], ptr[i * P + p + 1])
    return total / len(rows)


# --- subnormal numbers -----------------------------------------------------------------------
# Under coupled weight decay Adam shrinks the weights off the feature geometrically; after a few
# hundred epochs much of W, of its moments and of the intermediate products are subnormal
# (below 1.2e-38 in float32), and x86 computes with subnormals in microcode: runs became up to
# 14 times slower. The kernels therefore run with the CPU's flush-to-zero and denormals-are-zero
# modes on (x86), and the updates also store subnormals as zero (`_flush`, any CPU). Only
# magnitudes below the smallest normal number change; NaN is kept, so divergence still shows.

FTZ_DAZ = 0x8040  # MXCSR bits: flush to zero (15), denormals are zero (6)


def _mxcsr_slot(builder):
    slot = cgutils.alloca_once(builder, ir.IntType(32))
    return slot, ir.FunctionType(ir.VoidType(), [slot.type])


@intrinsic
def _mxcsr_or(typingctx, bits):
    """MXCSR |= bits on this thread; returns the previous MXCSR."""

    def codegen(context, builder, signature, args):
        slot, fnty = _mxcsr_slot(builder)
        builder.call(cgutils.get_or_insert_function(builder.module, fnty,
                                                    "llvm.x86.sse.stmxcsr"), [slot])
        old = builder.load(slot)
        builder.store(builder.or_(old, builder.trunc(args[0], ir.IntType(32))), slot)
        builder.call(cgutils.get_or_insert_function(builder.module, fnty,
                                                    "llvm.x86.sse.ldmxcsr"), [slot])
        return builder.zext(old, ir.IntType(64))

    return types.int64(types.int64), codegen


@intrinsic
def _mxcsr_set(typingctx, value):
    """MXCSR = value on this thread."""

    def codegen(context, builder, signature, args):
        slot, fnty = _mxcsr_slot(builder)
        builder.store(builder.trunc(args[0], ir.IntType(32)), slot)
        builder.call(cgutils.get_or_insert_function(builder.module, fnty,
                                                    "llvm.x86.sse.ldmxcsr"), [slot])
        return context.get_dummy_value()

    return types.none(types.int64), codegen


if platform.machine().lower() in ("x86_64", "amd64"):

    @njit(cache=True)
    def _subnormals_off() -> int:
        return _mxcsr_or(FTZ_DAZ)

    @njit(cache=True)
    def _restore(state: int) -> None:
        _mxcsr_set(state)

else:  # other CPUs: the updates' _flush still keeps the stored state normal

    @njit(cache=True)
    def _subnormals_off() -> int:
        return 0

    @njit(cache=True)
    def _restore(state: int) -> None:
        pass


# Each family is one tight loop. Scalars are read from H, so they keep the weights' dtype
# (a Python literal such as 1.0 would turn float32 arithmetic into float64 and stop the loop
# from vectorizing); flags become selects, which vectorize.


@njit(cache=True, error_model="numpy", inline="always")
def _flush(x, tiny):
    """x, or 0 where x is subnormal."""
    return x if abs(x) >= tiny else x - x  # x − x: 0 in the dtype of x, NaN stays NaN


# The update loops' shared steps, on one weight's scalars (a helper taking arrays would stop
# LLVM from vectorizing the loop; these are inlined into it).
@njit(cache=True, error_model="numpy", inline="always")
def _gradient(g, w, wd, coupled):
    """g + λw under coupled weight decay (L2 in the loss), else g."""
    return g + wd * w if coupled else g


@njit(cache=True, error_model="numpy", inline="always")
def _descend(w, u, lr, wd, coupled, tiny):
    """w − η u, or w − η (u + λw) under decoupled weight decay; subnormals flushed."""
    return _flush(w - lr * (u if coupled else u + wd * w), tiny)


@njit(cache=True, error_model="numpy", inline="always")
def _moments(m, v, g, b1, b2, c1, c2, tiny):
    """Adam's moving averages β1 m + (1 − β1) g and β2 v + (1 − β2) g², subnormals flushed."""
    return _flush(b1 * m + c1 * g, tiny), _flush(b2 * v + c2 * g * g, tiny)


@njit(cache=True, error_model="numpy")
def _sgd(W, G, S, H, coupled, buffer):
    """g ← g + λW (coupled); b ← μ b + g (momentum); W ← W − η (g or b) [− ηλW decoupled]."""
    lr, wd, mu, tiny = H[LR], H[WD], H[MOMENTUM], H[TINY]
    for e in range(W.shape[0]):
        w = W[e]
        g = _gradient(G[e], w, wd, coupled)
        G[e] = 0
        if buffer:
            g = _flush(mu * S[0, e] + g, tiny)
            S[0, e] = g
        W[e] = _descend(w, g, lr, wd, coupled, tiny)


# the variants of the Adam family's loop (`_adam`)
ADAM_PLAIN, ADAM_MAX, PADAM_POWER, PADAM_HALF, PADAM_NONE, PADAM_ROOTS, ADAM_UNIT = range(7)


@njit(cache=True, error_model="numpy", inline="always")
def _root_power(b, half, quarter, eighth):
    """b^(half/2 + quarter/4 + eighth/8) for a float32 b: the roots b^(1/2), b^(1/4), b^(1/8)
    in float64, the ones named multiplied, the product rounded once to float32."""
    r1 = np.sqrt(np.float64(b))
    r2 = np.sqrt(r1)
    r3 = np.sqrt(r2)
    return np.float32((r1 if half else 1.0) * (r2 if quarter else 1.0) * (r3 if eighth else 1.0))


@njit(cache=True, error_model="numpy")
def _adam(W, G, S, H, coupled, variant, c1m, c2v, eighths=0):
    """m ← β1 m + (1−β1) g; v ← β2 v + (1−β2) g²; v_max ← max(v_max, v) (AMSGrad, Padam);
    Adam, AdamW:  u = (m / c1m) / (√(v / c2v) + ε)
    AMSGrad:      u = (m / c1m) / (√(v_max / c2v) + ε)
    Padam:        u = (m / c1m) / (√v_max + ε)^(2p)       (c1m = (1 − β1^t) / √(1 − β2^t))
    then W ← W − η u [− ηλW decoupled].

    One loop per variant: a branch or a helper taking arrays inside the loop stops LLVM from
    vectorizing it (measured: 30 µs against 300-800 µs per 40,000 weights); what the loops
    share is in the scalar helpers `_gradient`, `_moments` and `_descend`. Padam at p = 1/2
    has its own loop: a square root, not a power, per weight (7x faster); so has p = 0, where
    the power is 1 for every base (IEEE 754 pow(x, 0) = 1): the same numbers, bit for bit.
    For float32 weights and 2p = eighths / 8 (p = 1/16, 1/8, 3/16, ..., 7/16: the ROOTS flag),
    the power is a product of square roots taken in float64 (`_root_power`): 5x faster per
    step at B = 2. For every positive float32 base it equals the float64 power rounded once to
    float32 (checked for all 2^31 of them); the float32 power function the PADAM_POWER loop
    calls differs from that by one unit in the last place on 0.06% of the bases.
    Adam's loop once both bias corrections are 1 in the weights' dtype (float32 at β2 = 0.999:
    from step 17,300 on, 98% of a run of 10^6 steps) leaves out the divisions by them: x / 1 is
    x exactly, m and v are never subnormal here (flushed; the CPU's denormals-are-zero mode
    would turn a subnormal x / 1 into 0), so the numbers are the same, bit for bit; a step at
    B = 2 takes 14% less time (B = 10: 10%).
    """
    lr, wd, b1, b2, eps, two_p = H[LR], H[WD], H[BETA1], H[BETA2], H[EPS], H[P] + H[P]
    c1, c2, tiny = H[ONE] - b1, H[ONE] - b2, H[TINY]
    if variant == ADAM_PLAIN:
        for e in range(W.shape[0]):
            w = W[e]
            g = _gradient(G[e], w, wd, coupled)
            G[e] = 0
            mu, nu = _moments(S[0, e], S[1, e], g, b1, b2, c1, c2, tiny)
            S[0, e], S[1, e] = mu, nu
            u = (mu / c1m) / (np.sqrt(nu / c2v) + eps)
            W[e] = _descend(w, u, lr, wd, coupled, tiny)
    elif variant == ADAM_UNIT:
        for e in range(W.shape[0]):
            w = W[e]
            g = _gradient(G[e], w, wd, coupled)
            G[e] = 0
            mu, nu = _moments(S[0, e], S[1, e], g, b1, b2, c1, c2, tiny)
            S[0, e], S[1, e] = mu, nu
            u = mu / (np.sqrt(nu) + eps)
            W[e] = _descend(w, u, lr, wd, coupled, tiny)
    elif variant == ADAM_MAX:
        for e in range(W.shape[0]):
            w = W[e]
            g = _gradient(G[e], w, wd, coupled)
            G[e] = 0
            mu, nu = _moments(S[0, e], S[1, e], g, b1, b2, c1, c2, tiny)
            v_max = S[2, e] if S[2, e] > nu else nu
            S[0, e], S[1, e], S[2, e] = mu, nu, v_max
            u = (mu / c1m) / (np.sqrt(v_max / c2v) + eps)
            W[e] = _descend(w, u, lr, wd, coupled, tiny)
    elif variant == PADAM_HALF:
        for e in range(W.shape[0]):
            w = W[e]
            g = _gradient(G[e], w, wd, coupled)
            G[e] = 0
            mu, nu = _moments(S[0, e], S[1, e], g, b1, b2, c1, c2, tiny)
            v_max = S[2, e] if S[2, e] > nu else nu
            S[0, e], S[1, e], S[2, e] = mu, nu, v_max
            u = (mu / c1m) / (np.sqrt(v_max) + eps)
            W[e] = _descend(w, u, lr, wd, coupled, tiny)
    elif variant == PADAM_NONE:
        for e in range(W.shape[0]):
            w = W[e]
            g = _gradient(G[e], w, wd, coupled)
            G[e] = 0
            mu, nu = _moments(S[0, e], S[1, e], g, b1, b2, c1, c2, tiny)
            v_max = S[2, e] if S[2, e] > nu else nu
            S[0, e], S[1, e], S[2, e] = mu, nu, v_max
            u = mu / c1m
            W[e] = _descend(w, u, lr, wd, coupled, tiny)
    elif variant == PADAM_ROOTS:
        half, quarter, eighth = (eighths & 4) != 0, (eighths & 2) != 0, (eighths & 1) != 0
        for e in range(W.shape[0]):
            w = W[e]
            g = _gradient(G[e], w, wd, coupled)
            G[e] = 0
            mu, nu = _moments(S[0, e], S[1, e], g, b1, b2, c1, c2, tiny)
            v_max = S[2, e] if S[2, e] > nu else nu
            S[0, e], S[1, e], S[2, e] = mu, nu, v_max
            u = (mu / c1m) / _root_power(np.sqrt(v_max) + eps, half, quarter, eighth)
            W[e] = _descend(w, u, lr, wd, coupled, tiny)
    else:  # PADAM_POWER
        for e in range(W.shape[0]):
            w = W[e]
            g = _gradient(G[e], w, wd, coupled)
            G[e] = 0
            mu, nu = _moments(S[0, e], S[1, e], g, b1, b2, c1, c2, tiny)
            v_max = S[2, e] if S[2, e] > nu else nu
            S[0, e], S[1, e], S[2, e] = mu, nu, v_max
            u = (mu / c1m) / (np.sqrt(v_max) + eps) ** two_p
            W[e] = _descend(w, u, lr, wd, coupled, tiny)


@njit(cache=True, error_model="numpy")
def _sign(W, G, S, H, coupled):
    """u = sign(g + λW) (coupled) or sign(g) + λW (decoupled); W ← W − η u."""
    lr, wd, tiny = H[LR], H[WD], H[TINY]
    for e in range(W.shape[0]):
        w = W[e]
        g = _gradient(G[e], w, wd, coupled)
        G[e] = 0
        u = np.sign(g)
        W[e] = _descend(w, u, lr, wd, coupled, tiny)


@njit(cache=True, error_model="numpy")
def _adagrad(W, G, S, H, coupled):
    """G ← G + g²; u = g / (√G + ε)."""
    lr, wd, eps, tiny = H[LR], H[WD], H[EPS], H[TINY]
    for e in range(W.shape[0]):
        w = W[e]
        g = _gradient(G[e], w, wd, coupled)
        G[e] = 0
        acc = _flush(S[0, e] + g * g, tiny)
        S[0, e] = acc
        u = g / (np.sqrt(acc) + eps)
        W[e] = _descend(w, u, lr, wd, coupled, tiny)


@njit(cache=True, error_model="numpy")
def _rmsprop(W, G, S, H, coupled):
    """v ← a v + (1−a) g²; b ← μ b + g / (√v + ε) (torch.optim's momentum; μ = 0 gives b =
    g / (√v + ε) exactly); u = b."""
    lr, wd, eps, a, mu, tiny = H[LR], H[WD], H[EPS], H[ALPHA], H[MOMENTUM], H[TINY]
    add = H[ONE] - a
    for e in range(W.shape[0]):
        w = W[e]
        g = _gradient(G[e], w, wd, coupled)
        G[e] = 0
        acc = _flush(a * S[0, e] + add * g * g, tiny)
        b = _flush(mu * S[1, e] + g / (np.sqrt(acc) + eps), tiny)
        S[0, e], S[1, e] = acc, b
        W[e] = _descend(w, b, lr, wd, coupled, tiny)


@njit(cache=True, error_model="numpy")
def _update(family, flags, W, G, S, H, t, scratch):
    """One fused pass: W ← W + step(G), the optimizer state S updated, G cleared."""
    coupled = (flags & COUPLED) != 0
    if family == SGD:
        _sgd(W, G, S, H, coupled, (flags & MOMENTUM_BUFFER) != 0)
    elif family == ADAM:
        scratch[0], scratch[1] = H[ONE], H[ONE]  # bias corrections, in the weights' dtype
        if flags & BIAS_CORRECTION:
            scratch[0] = H[ONE] - H[BETA1] ** t
            scratch[1] = H[ONE] - H[BETA2] ** t
        if flags & PADAM:  # the step's scale √(1 − β2^t) / (1 − β1^t), as one divisor
            scratch[0] = scratch[0] / np.sqrt(scratch[1])
            eighths = 16 * H[P]  # 2p in eighths
            variant = (PADAM_HALF if H[P] == 0.5 else PADAM_NONE if H[P] == 0
                       else PADAM_ROOTS if (flags & ROOTS and 0 < eighths < 8
                                            and eighths == np.floor(eighths))
                       else PADAM_POWER)
            _adam(W, G, S, H, coupled, variant, scratch[0], scratch[1], int(eighths))
        else:
            unit = scratch[0] == H[ONE] and scratch[1] == H[ONE]  # the corrections, once 1
            variant = ADAM_MAX if flags & AMSGRAD else ADAM_UNIT if unit else ADAM_PLAIN
            _adam(W, G, S, H, coupled, variant, scratch[0], scratch[1])
    elif family == SIGN:
        _sign(W, G, S, H, coupled)
    elif family == ADAGRAD:
        _adagrad(W, G, S, H, coupled)
    else:
        _rmsprop(W, G, S, H, coupled)


SPLIT_MIN_BATCH = 64  # from this batch size on, a step's gradient is the sum of two halves


@njit(cache=True, error_model="numpy")
def _step_gradient(W, G, ptr, idx, val, labels, rows, B, P, m, K, huber, z, slope, F):
    """G[0] ← the batch gradient; returns the batch loss. G is [2, d, 2m].

    From SPLIT_MIN_BATCH examples on, the gradient is the sum of the two half-batch gradients,
    added in this order; train_chunk_split computes the same halves in parallel.
    """
    if B < SPLIT_MIN_BATCH:
        return _batch_grad(W, G[0], ptr, idx, val, labels, rows, B, P, m, K, huber, z, slope, F)
    half = B // 2
    loss0 = _batch_grad(W, G[0], ptr, idx, val, labels, rows[:half], B, P, m, K, huber, z,
                        slope, F)
    loss1 = _batch_grad(W, G[1], ptr, idx, val, labels, rows[half:], B, P, m, K, huber, z,
                        slope, F)
    _add_halves(G)
    return loss0 + loss1


@njit(cache=True, error_model="numpy")
def _add_halves(G):
    """G[0] ← G[0] + G[1]; G[1] ← 0."""
    g0, g1 = G[0].reshape(-1), G[1].reshape(-1)
    for i in range(g0.shape[0]):
        g0[i] += g1[i]
        g1[i] = 0


@njit(cache=True, error_model="numpy", parallel=True)
def train_chunk(W, G, S, H, family, flags, t0, ptr, idx, val, labels, data_index, perms,
                full_batch, B, P, m, K, huber, alive, diverged_at, epoch0):
    """Train every live run for perms.shape[0] epochs (epoch0 + 1, ...), in parallel over runs.

    perms[e, r] is run r's permutation of its n examples in epoch e (ignored for full batch).
    G is [R, 2, d, 2m] (see _step_gradient). A run whose batch loss becomes non-finite stops,
    with diverged_at[r] set to that epoch. W, S and the flags are updated in place.
    """
    R, d, Q = W.shape
    n = labels.shape[1]
    epochs = perms.shape[0]
    steps = n // B
    # scratch space per run, made before the parallel loop: allocations inside a prange body
    # may be hoisted out of it by numba and then shared between threads
    z, slope = np.empty((R, P, Q), W.dtype), np.empty((R, P, Q), W.dtype)
    F, scratch = np.empty((R, 2), W.dtype), np.empty((R, 2), W.dtype)
    every = np.arange(n).reshape(1, 1, n)  # the full batch, typed like a permutation
    for r in prange(R):
        if not alive[r]:
            continue
        mxcsr = _subnormals_off()
        u = data_index[r]
        w_flat = W[r].reshape(-1)
        g_flat = G[r, 0].reshape(-1)
        t = t0
        for e in range(epochs):
            for s in range(steps):
                rows = every[0, 0, 0:n] if full_batch else perms[e, r, s * B:(s + 1) * B]
                loss = _step_gradient(W[r], G[r], ptr[u], idx, val, labels[u], rows, B, P, m,
                                      K, huber, z[r], slope[r], F[r])
                t += 1
                _update(family, flags, w_flat, g_flat, S[r], H[r], t, scratch[r])
                if not math.isfinite(loss):
                    alive[r] = False
                    diverged_at[r] = epoch0 + e + 1
                    break
            if not alive[r]:
                break
        _restore(mxcsr)


@njit(cache=True, error_model="numpy", parallel=True)
def train_chunk_split(W, G, S, H, family, flags, t0, ptr, idx, val, labels, data_index, perms,
                      full_batch, B, P, m, K, huber, alive, diverged_at, epoch0):
    """As train_chunk, for batches of SPLIT_MIN_BATCH examples or more and fewer runs than
    threads: the two half-batch gradients of each step (see _step_gradient) are computed in
    parallel, so that even a single run keeps two cores busy. The numbers are those of
    train_chunk, bit for bit.
    """
    R, d, Q = W.shape
    n = labels.shape[1]
    half = B // 2
    z, slope = np.empty((R, 2, P, Q), W.dtype), np.empty((R, 2, P, Q), W.dtype)
    F, scratch = np.empty((R, 2, 2), W.dtype), np.empty((R, 2), W.dtype)
    losses = np.zeros((R, 2))
    every = np.arange(n).reshape(1, 1, n)
    t = t0
    for e in range(perms.shape[0]):
        for s in range(n // B):
            for task in prange(2 * R):
                r, k = task // 2, task % 2
                if alive[r]:
                    mxcsr = _subnormals_off()
                    lo, hi = s * B + k * half, s * B + (half if k == 0 else B)
                    rows = every[0, 0, lo:hi] if full_batch else perms[e, r, lo:hi]
                    u = data_index[r]
                    losses[r, k] = _batch_grad(W[r], G[r, k], ptr[u], idx, val, labels[u], rows,
                                               B, P, m, K, huber, z[r, k], slope[r, k], F[r, k])
                    _restore(mxcsr)
            t += 1
            for r in prange(R):
                if alive[r]:
                    mxcsr = _subnormals_off()
                    _add_halves(G[r])
                    _update(family, flags, W[r].reshape(-1), G[r, 0].reshape(-1), S[r], H[r], t,
                            scratch[r])
                    if not math.isfinite(losses[r, 0] + losses[r, 1]):
                        alive[r] = False
                        diverged_at[r] = epoch0 + e + 1
                    _restore(mxcsr)


@njit(cache=True, error_model="numpy", parallel=True)
def full_gradient(W, ptr, idx, val, labels, data_index, P, m, K, huber):
    """Mean training loss [R] and its gradient [R, d, 2m] over every training example."""
    R, d, Q = W.shape
    n = labels.shape[1]
    G = np.zeros((R, d, Q), W.dtype)
    loss = np.empty(R)
    z, slope = np.empty((R, P, Q), W.dtype), np.empty((R, P, Q), W.dtype)  # see train_chunk
    F = np.empty((R, 2), W.dtype)
    every = np.arange(n)
    for r in prange(R):
        mxcsr = _subnormals_off()
        u = data_index[r]
        loss[r] = _batch_grad(W[r], G[r], ptr[u], idx, val, labels[u], every, n, P, m, K,
                              huber, z[r], slope[r], F[r])
        _restore(mxcsr)
    return loss, G


@njit(cache=True, error_model="numpy", parallel=True)
def logits(W, ptr, idx, val, data_index, N, P, m, K, huber):
    """F [R, N, 2] for N examples of each run's data set (test sets, probes)."""
    R, d, Q = W.shape
    F = np.zeros((R, N, 2), W.dtype)
    z, slope = np.empty((R, Q), W.dtype), np.empty((R, Q), W.dtype)  # per run (see train_chunk)
    for r in prange(R):
        mxcsr = _subnormals_off()
        u = data_index[r]
        for i in range(N):
            for p in range(P):
                _gather(z[r], W[r], idx, val, ptr[u, i * P + p], ptr[u, i * P + p + 1])
                f0, f1 = _activate_row(z[r], slope[r], m, K, huber)
                F[r, i, 0] += f0
                F[r, i, 1] += f1
            F[r, i, 0] *= K[K_C]
            F[r, i, 1] *= K[K_C]
        _restore(mxcsr)
    return F

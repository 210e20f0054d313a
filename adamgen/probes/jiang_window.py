"""The time window of Jiang, Malik & Li's Theorem 1 [NeurIPS 2023, App. C-D;
docs/science.md §5], on the two-layer linear network f(x) = w_2ᵀ W_1 x.

The theorem states R_med^Adam = 1 ± o(1) and R_med^SGDM = Ω(log d) over a window of time that
its proof defines through the error E = W_1ᵀ w_2 − A (A = (1/n) Σ_i y_i x_iᵀ; A = a for
whitened inputs):

    SGD+M (App. C)  from T1 = the first step at which some |w_2i| or |W_1[i, j]| reaches
                    d^(−α/2), to T2 = the first step at which some E_j reaches −√ε0,
                    ε0 = d^(1 − α/4) (the proof's ε0 = d^(−(α/4 − 1)) + ε log √(d/ε) with
                    the convergence tolerance ε → 0)
    Adam (App. D)   from t_inc, after which W_1 is approximately rank 1 (Lemma 14; here: the
                    top singular value holds 90 % of ‖W_1‖_F², our reading of
                    "approximately"), to T1 = the first step at which some E_j reaches −√(η d)

Each probe records whether the window's opening and closing conditions hold at that epoch
(`window_open`, `window_close`: 1 or 0; NaN for other optimizers) and the quantities they
read; a claim takes the window as the epochs after the first opening and before the first
closing (`adamgen.claims.metrics`). The proof's weight structure, W_1 = u vᵀ + R_1 and
w_2 = c u + R_2 with u_i = sign(w_2i(0)) (App. E.3.3), is tightest at the window's end: W_1
is rank one from about d^α steps on, but |w_2i| is uniform only once ηt ≫ |w_2i(0)|, about
d^(2α) steps, so R_med of W_1 is 1 ± o(1) near T1 and not at t_inc; the claims read it at the
window's end (`at: window_end`). `singular_uniformity` is R_u of §6: max u_i² / median u_i²
of W_1's leading left singular vector (1 for a sign vector; about 4.4 ln d for a Gaussian).
"""

from dataclasses import dataclass

import torch
from torch import Tensor

RANK_ONE = 0.9  # share of ‖W_1‖_F² in the top singular value that counts as "rank 1"


@dataclass
class State:
    A: Tensor  # [R, d]
    optimizer: str
    alpha: float
    d: int


def prepare(run, datasets, data_index, W0) -> State:
    A = torch.stack([torch.as_tensor(datasets[u].train.y[:, None] * datasets[u].train.x[:, 0])
                     .mean(dim=0) for u in data_index]).to(W0.device, torch.float64)
    return State(A=A, optimizer=run.optimizer["name"], alpha=run.model.alpha, d=run.data.d)


def record(state: State, W: Tensor, stats) -> dict:
    W = W.double()
    W1, w2 = W[:, :-1], W[:, -1]
    E = torch.einsum("rij,ri->rj", W1, w2) - state.A
    residual = E.amax(dim=1)
    w_max = torch.maximum(W1.abs().flatten(1).amax(dim=1), w2.abs().amax(dim=1))
    fro = (W1 * W1).sum(dim=(1, 2))
    U, S, _ = torch.linalg.svd(W1)
    top = S[:, 0] ** 2
    rank1 = torch.where(fro > 0, top / fro.clamp(min=1e-300), 0)
    u2 = U[:, :, 0] ** 2  # the leading left singular vector, over the hidden units i
    median = u2.median(dim=1).values  # torch's lower median, as R_med's
    uniformity = torch.where(median > 0, u2.amax(dim=1) / median.clamp(min=1e-300), torch.inf)
    d, alpha = state.d, state.alpha
    nan = torch.full_like(residual, torch.nan)
    if state.optimizer == "sgd_momentum":
        opening = (w_max >= d ** (-alpha / 2)).double()
        closing = (residual >= -(d ** (1 - alpha / 4)) ** 0.5).double()
    elif state.optimizer == "adam":
        opening = (rank1 >= RANK_ONE).double()
        closing = (residual >= -(stats["hyper"]["lr"].double() * d).sqrt()).double()
    else:
        opening = closing = nan
    return {"window_open": opening, "window_close": closing, "w_max": w_max,
            "residual_max": residual, "rank1": rank1, "singular_uniformity": uniformity}

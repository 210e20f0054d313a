"""The fast engine (adamgen.engines.fast) against the torch engine (eager, the definition of
every number), step for step."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from adamgen import data as datamod
from adamgen.data.patch import PatchConfig
from adamgen.engines import ENGINES, kernels
from adamgen.engines.fast import FUSED as KERNELS
from adamgen.engines.structure import to_csr, to_dense
from adamgen.models import CNNConfig as ModelConfig
from adamgen.models.two_layer_cnn import from_filters, to_filters
from adamgen.optim import OPTIMIZERS, per_run_hyperparameters
from adamgen.trainer import train

FUSED = sorted(KERNELS)

N_TRAIN = 20

SETTINGS = {  # three runs per optimizer, with different hyperparameters
    "gd": [{"lr": 0.5, "weight_decay": 0.0}, {"lr": 1.0, "weight_decay": 0.01},
           {"lr": 0.2, "weight_decay": 0.1}],
    "sgd_momentum": [{"lr": 0.2, "weight_decay": 1e-3, "momentum": 0.9},
                     {"lr": 0.5, "weight_decay": 0.0, "momentum": 0.5},
                     {"lr": 0.1, "weight_decay": 0.01, "momentum": 0.0}],
    "adam": [{"lr": 3e-3, "weight_decay": 1e-2, "betas": (0.9, 0.999), "eps": 1e-8},
             {"lr": 1e-2, "weight_decay": 0.0, "betas": (0.5, 0.9), "eps": 1e-6,
              "bias_correction": True},
             {"lr": 5e-3, "weight_decay": 0.1, "betas": (0.0, 0.99), "eps": 1e-3}],
}
SETTINGS["sgd"] = SETTINGS["gd"]
SETTINGS["adamw"] = SETTINGS["amsgrad"] = SETTINGS["adam"]
# p = 1/2 takes the kernel's square-root loop, the other two its power loop
SETTINGS["padam"] = [{**s, "p": p} for s, p in zip(SETTINGS["adam"], (0.125, 0.0, 0.5),
                                                    strict=True)]
SETTINGS["signsgd"] = SETTINGS["signsgdw"] = [
    {"lr": 1e-3, "weight_decay": 1e-2}, {"lr": 3e-3, "weight_decay": 0.0},
    {"lr": 2e-3, "weight_decay": 0.5}]
SETTINGS["adagrad"] = [{"lr": 0.05, "weight_decay": 0.0, "eps": 1e-10},
                       {"lr": 0.1, "weight_decay": 1e-2, "eps": 1e-6},
                       {"lr": 0.02, "weight_decay": 0.1, "eps": 1e-3}]
SETTINGS["rmsprop"] = [
    {"lr": 3e-3, "weight_decay": 0.0, "alpha": 0.99, "eps": 1e-8, "momentum": 0.0},
    {"lr": 1e-3, "weight_decay": 1e-2, "alpha": 0.9, "eps": 1e-6, "momentum": 0.9},
    {"lr": 5e-3, "weight_decay": 0.1, "alpha": 0.5, "eps": 1e-3, "momentum": 0.5}]


def test_every_optimizer_with_a_kernel_has_parity_settings_here():
    assert sorted(SETTINGS) == FUSED


def _spec(name, model, batch, compile="off"):
    """What an engine reads of the run it trains: the program's shared settings."""
    return SimpleNamespace(model=model, batch_size=batch, optimizer={"name": name},
                           train=SimpleNamespace(compile=compile))


def reference_engine(*args):
    """The torch engine, eager: the definition of every number."""
    return ENGINES["torch"].build(*args)


def fast_engine(*args):
    return ENGINES["fast"].build(*args)


def _weights(R, m, d, seed=0, dtype=torch.float64):
    """Random filters w_{j,r} [R, 2, m, d] (as drawn before the layouts merged), in the
    network's layout [R, d, 2m]."""
    filters = 0.3 * torch.randn(R, 2, m, d, generator=torch.Generator().manual_seed(seed),
                                dtype=torch.float64)
    return from_filters(filters).to(dtype)


def _datasets(patches=2):
    cfg = PatchConfig(d=60, n=N_TRAIN, s=8, sigma_p=0.35, n_test=50, patches=patches)
    return [datamod.generate(cfg, seed) for seed in (0, 1)]


def _engines(name, model, dtype=torch.float64, batch=5, bias_correction=True, patches=2):
    datasets = _datasets(patches)
    index = np.array([0, 1, 0])  # three runs, two data sets
    d = datasets[0].train.x.shape[-1]
    W0 = _weights(3, model.m, d, dtype=dtype)
    full = [{**OPTIMIZERS[name].defaults, **s} for s in SETTINGS[name]]
    if "bias_correction" in OPTIMIZERS[name].defaults:
        full = [{**s, "bias_correction": bias_correction} for s in full]
    hyper = per_run_hyperparameters(name, full, W0)
    args = (_spec(name, model, batch), datasets, index, W0, hyper)
    return reference_engine(*args), fast_engine(*args)


def _perms(epochs, runs=3, seed=0):
    rng = np.random.default_rng(seed)
    return np.stack([np.stack([rng.permutation(N_TRAIN) for _ in range(runs)])
                     for _ in range(epochs)])


def _assert_close(fast, ref, rtol):
    fast, ref = np.asarray(fast), np.asarray(ref)
    scale = np.abs(ref).max()
    assert scale > 0
    err = np.abs(fast - ref).max() / scale
    assert err <= rtol, f"relative difference {err:.3g}"


@pytest.mark.parametrize("name", FUSED)
def test_every_optimizer_matches_the_reference_for_30_epochs(name):
    """30 epochs of B = 5 (120 steps), three runs on two data sets, float64."""
    model = ModelConfig(q=3, m=4)
    ref, fast = _engines(name, model, batch=N_TRAIN if name == "gd" else 5)
    W0 = ref.weights().clone()
    perms = None if name == "gd" else _perms(30)
    for engine in (ref, fast):
        engine.advance(0, perms, 30 if name != "gd" else 120)
    _assert_close(fast.weights(), ref.weights(), 1e-10)
    assert (ref.weights() - W0).norm() / W0.norm() > 0.05  # the weights really moved
    for a, b in zip(fast.train_stats(), ref.train_stats(), strict=True):
        _assert_close(a, b, 1e-10)
    for a, b in zip(fast.test_stats(), ref.test_stats(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


# network variants every fast path is checked on (tests/test_batched.py reads them too)
MODEL_VARIANTS = pytest.mark.parametrize(
    "model, patches",
    [(ModelConfig(q=2.5, m=3, c=0.3), 2), (ModelConfig(q=3, m=4, activation="huber", h=0.05), 2),
     (ModelConfig(q=1, m=4), 2), (ModelConfig(q=3, m=4), 3)],
    ids=["power-2.5-scaled", "huber", "relu", "three-patches"])


@MODEL_VARIANTS
def test_model_variants_match_the_reference(model, patches):
    ref, fast = _engines("adam", model, patches=patches)
    perms = _perms(10)
    for engine in (ref, fast):
        engine.advance(0, perms, 10)
    _assert_close(fast.weights(), ref.weights(), 1e-10)


def test_adam_without_bias_correction_matches():
    ref, fast = _engines("adam", ModelConfig(q=3, m=4), bias_correction=False)
    for engine in (ref, fast):
        engine.advance(0, _perms(10), 10)
    _assert_close(fast.weights(), ref.weights(), 1e-10)


def _update_inputs(dtype, special, seed, scale=1.0):
    """Weights, gradients (`special` values first), optimizer state and hyperparameters for
    4096 weights of one run: the inputs of an update loop (`kernels._adam`)."""
    rng = np.random.default_rng(seed)
    n = 4096
    special = np.array(special, dtype)
    W = rng.standard_normal(n).astype(dtype)
    G = np.concatenate([special, scale * rng.standard_normal(n - len(special))]).astype(dtype)
    S = np.abs(scale**2 * rng.standard_normal((3, n))).astype(dtype)
    H = np.zeros(10, dtype)
    H[[kernels.LR, kernels.WD, kernels.BETA1, kernels.BETA2, kernels.EPS, kernels.ONE,
       kernels.TINY]] = [1e-3, 1e-2, 0.9, 0.999, 1e-8, 1.0, np.finfo(dtype).tiny]
    return W, G, S, H


def _three_steps(update, W, G, S):
    """W and S after three calls of `update(w, g, s, step)`, the gradient G at each."""
    w, g, s = W.copy(), G.copy(), S.copy()
    for step in range(3):
        update(w, g, s, step)
        g[:] = G
    return w, s


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_padam_at_p_0_gives_the_power_loops_numbers_bit_for_bit(dtype):
    """Padam's p = 0 loop skips (√v_max + ε)^0, which IEEE 754 makes 1 for every base (0, a
    subnormal, inf and nan included): its weights and state equal the power loop's."""
    special = [0.0, np.finfo(dtype).tiny / 4, np.inf, np.nan, 1e30, -1e-30]
    W, G, S, H = _update_inputs(dtype, special, seed=0)
    S[2, :len(special)] = np.abs(special)
    out = {variant: _three_steps(lambda w, g, s, _, v=variant: kernels._adam(
        w, g, s, H, False, v, dtype(0.5), dtype(1.0)), W, G, S)
        for variant in (kernels.PADAM_POWER, kernels.PADAM_NONE)}
    np.testing.assert_array_equal(out[kernels.PADAM_NONE][0], out[kernels.PADAM_POWER][0])
    np.testing.assert_array_equal(out[kernels.PADAM_NONE][1], out[kernels.PADAM_POWER][1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("coupled", [True, False])
def test_adam_once_its_corrections_are_1_gives_the_plain_loops_numbers_bit_for_bit(dtype,
                                                                                 coupled):
    """Once 1 - β^t rounds to 1 in the weights' dtype, Adam's update takes a loop without the
    divisions by the bias corrections (x / 1 = x): the same weights and state, bit for bit,
    with zeros, subnormals, infinities and NaN among the gradients; and the kernel's update
    picks it at such a step with the same numbers."""
    special = [0.0, -0.0, np.finfo(dtype).tiny / 4, np.inf, -np.inf, np.nan, 1e30, -1e-30]
    W, G, S, H = _update_inputs(dtype, special, seed=1, scale=1e-3)
    out = {variant: _three_steps(lambda w, g, s, _, v=variant: kernels._adam(
        w, g, s, H, coupled, v, dtype(1.0), dtype(1.0)), W, G, S)
        for variant in (kernels.ADAM_PLAIN, kernels.ADAM_UNIT)}
    flags = kernels.BIAS_CORRECTION | (kernels.COUPLED if coupled else 0)
    t = 10**6  # 1 - β2^t is 1 in float32 and float64
    out["update"] = _three_steps(lambda w, g, s, step: kernels._update(
        kernels.ADAM, flags, w, g, s, H, t + step, np.empty(2, dtype)), W, G, S)
    for key in (kernels.ADAM_UNIT, "update"):
        for a, b in zip(out[key], out[kernels.ADAM_PLAIN], strict=True):
            np.testing.assert_array_equal(a.view(np.uint8), b.view(np.uint8))
    assert not np.array_equal(out[kernels.ADAM_UNIT][0], W)


def test_float32_matches_to_float32_precision():
    ref, fast = _engines("adam", ModelConfig(q=3, m=4), dtype=torch.float32)
    for engine in (ref, fast):
        engine.advance(0, _perms(20), 20)
    assert fast.weights().dtype == torch.float32
    _assert_close(fast.weights(), ref.weights(), 2e-4)


def test_a_run_does_not_depend_on_its_group_or_the_thread_count():
    import numba

    model = ModelConfig(q=3, m=4)
    _, together = _engines("adam", model)
    perms = _perms(10)
    together.advance(0, perms, 10)
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        datasets = _datasets()
        W0 = _weights(3, 4, 60)
        full = {**OPTIMIZERS["adam"].defaults, **SETTINGS["adam"][2]}
        hyper = per_run_hyperparameters("adam", [full], W0[2:])
        alone = fast_engine(_spec("adam", model, 5), datasets, np.array([0]), W0[2:], hyper)
        alone.advance(0, perms[:, 2:], 10)
    finally:
        numba.set_num_threads(threads)
    assert torch.equal(alone.weights()[0], together.weights()[2])


def test_the_trainer_gives_the_same_trajectories_on_both_engines(tiny):
    for optimizer in ({"name": "adam", "lr": 1e-3}, {"name": "signsgdw", "lr": 1e-3,
                                                      "weight_decay": 0.1}):
        runs = {e: tiny(optimizer=optimizer, train={"batch_size": 5, "engine": e},
                        probes={"noise_memorization_full": True})
                for e in ("torch", "fast")}
        (ref,), (fast,) = train([runs["torch"]]), train([runs["fast"]])
        assert ref.timing["engine"] == "torch" and fast.timing["engine"] == "fast"
        for k in ref.probes:
            np.testing.assert_allclose(fast.probes[k], ref.probes[k], rtol=1e-9, atol=1e-12,
                                       err_msg=k)


def test_csr_round_trip_and_which_data_count_as_sparse():
    from adamgen.data import DATA_MODELS

    ds = _datasets()[0]
    csr = to_csr(ds.test.x)
    assert np.array_equal(to_dense(csr), ds.test.x)
    assert np.diff(csr.ptr).max() == 8 + 1  # s Gaussian coordinates plus the feature noise
    assert DATA_MODELS["patch"].sparse(ds.config)
    assert csr.density < 0.25
    assert not DATA_MODELS["patch"].sparse(PatchConfig(d=60, s=40))


def test_layouts_round_trip():
    W = torch.from_numpy(np.random.default_rng(0).normal(size=(3, 2, 4, 7)))
    Wt = from_filters(W)
    assert Wt.shape == (3, 7, 8) and Wt[1, 5, 4 + 2] == W[1, 1, 2, 5]
    assert torch.equal(to_filters(Wt), W)


def test_probes_of_runs_in_lockstep_equal_each_run_alone():
    """Every kernel keeps per-run scratch space: threads must never share it."""
    model = ModelConfig(q=3, m=4)
    datasets = _datasets()
    R = 8
    W0 = _weights(R, 4, 60, seed=1)
    settings = [{**OPTIMIZERS["adam"].defaults, "lr": 1e-3 * (1 + r)} for r in range(R)]
    index = np.arange(R) % 2
    together = fast_engine(_spec("adam", model, 5), datasets, index, W0,
                          per_run_hyperparameters("adam", settings, W0))
    perms = _perms(3, runs=R)
    together.advance(0, perms, 3)
    stats = [together.train_stats(), together.test_stats()]
    for r in range(R):
        alone = fast_engine(_spec("adam", model, 5), datasets, index[r:r + 1], W0[r:r + 1],
                           per_run_hyperparameters("adam", settings[r:r + 1], W0))
        alone.advance(0, perms[:, r:r + 1], 3)
        assert torch.equal(alone.weights()[0], together.weights()[r])
        for whole, single in zip(stats, [alone.train_stats(), alone.test_stats()], strict=True):
            for a, b in zip(whole, single, strict=True):
                assert torch.equal(a[r], b[0])


def test_kernels_do_not_read_their_scratch_space_before_writing_it():
    """Scratch arrays start with whatever memory holds; filled with NaN, nothing may change."""
    model = ModelConfig(q=3, m=4)
    ref, engine = _engines("adam", model)
    P, m, K, huber = engine._model_args()
    ptr, idx, val = engine.train
    rows = np.arange(N_TRAIN)
    for dirty in (False, True):
        fill = np.nan if dirty else 0.0
        z, slope, F = np.full((P, 8), fill), np.full((P, 8), fill), np.full(2, fill)
        G = np.zeros_like(engine.W[0])
        loss = kernels._batch_grad(engine.W[0], G, ptr[0], idx, val, engine.labels[0], rows,
                                N_TRAIN, P, m, K, huber, z, slope, F)
        assert np.isfinite(loss) and np.isfinite(G).all()
        if not dirty:
            clean = (loss, G)
    assert loss == clean[0] and np.array_equal(G, clean[1])


@pytest.mark.parametrize("name, batch", [("gd", 128), ("adam", 128), ("adamw", 64),
                                         ("signsgd", 64)])
def test_large_batches_split_in_halves_match_the_reference(name, batch):
    """B ≥ SPLIT_MIN_BATCH: two half-batch gradients per step, computed in parallel for fewer
    runs than threads (train_chunk_split) and in turn otherwise (train_chunk), bit for bit."""
    cfg = PatchConfig(d=60, n=128, s=8, sigma_p=0.35, n_test=50)
    datasets = [datamod.generate(cfg, seed) for seed in (0, 1)]
    index = np.array([0, 1, 0])
    W0 = _weights(3, 4, 60)
    full = [{**OPTIMIZERS[name].defaults, **s} for s in SETTINGS[name]]
    hyper = per_run_hyperparameters(name, full, W0)
    args = (_spec(name, ModelConfig(q=3, m=4), batch), datasets, index, W0, hyper)
    ref, engine = reference_engine(*args), fast_engine(*args)
    assert batch >= kernels.SPLIT_MIN_BATCH
    rng = np.random.default_rng(0)
    perms = None if batch == 128 else np.stack(
        [np.stack([rng.permutation(128) for _ in range(3)]) for _ in range(40)])
    for e in (ref, engine):
        e.advance(0, perms, 40)
    _assert_close(engine.weights(), ref.weights(), 1e-10)
    assert (ref.weights() - W0).norm() / W0.norm() > 0.05
    # a run's numbers do not depend on the other runs or on the thread count
    import numba

    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        alone = fast_engine(_spec(name, ModelConfig(q=3, m=4), batch), datasets, index[1:2],
                           W0[1:2], per_run_hyperparameters(name, full[1:2], W0))
        alone.advance(0, None if perms is None else perms[:, 1:2], 40)
    finally:
        numba.set_num_threads(threads)
    assert torch.equal(alone.weights()[0], engine.weights()[1])


@pytest.mark.parametrize("full_batch", [True, False])
def test_the_split_kernel_gives_the_per_run_kernels_numbers_bit_for_bit(full_batch):
    cfg = PatchConfig(d=60, n=128, s=8, sigma_p=0.35, n_test=50)
    datasets = [datamod.generate(cfg, seed) for seed in (0, 1)]
    W0 = from_filters(0.3 * torch.randn(2, 2, 4, 60, generator=torch.Generator().manual_seed(0)))
    full = [{**OPTIMIZERS["adam"].defaults, **s} for s in SETTINGS["adam"][:2]]
    batch = 128 if full_batch else 64
    engine = fast_engine(_spec("adam", ModelConfig(q=3, m=4), batch), datasets, np.array([0, 1]),
                        W0, per_run_hyperparameters("adam", full, W0))
    rng = np.random.default_rng(0)
    perms = (np.zeros((15, 1, 1), np.int64) if full_batch else
             np.stack([np.stack([rng.permutation(128) for _ in range(2)]) for _ in range(15)]))
    results = []
    for kernel in (kernels.train_chunk, kernels.train_chunk_split):
        W, G, S = engine.W.copy(), engine.G.copy(), engine.S.copy()
        alive, diverged = engine.alive.copy(), engine.diverged_at.copy()
        kernel(W, G, S, engine.H, engine.family, engine.flags, 0, *engine.train, engine.labels,
               engine.data_index, perms, full_batch, batch, *engine._model_args(), alive,
               diverged, 0)
        results.append((W, S))
    assert np.array_equal(results[0][0], results[1][0])
    assert np.array_equal(results[0][1], results[1][1])
    assert not np.array_equal(results[0][0], engine.W)


def test_float32_padam_powers_are_the_float64_power_rounded_once():
    """Float32 Padam at 2p = k/8 takes its power from square roots in float64 (the kernel's
    ROOTS loop): the float64 power rounded once to float32, here on a million random bases of
    every binade and the special ones (every positive float32 base was checked once, off the
    suite)."""
    rng = np.random.default_rng(0)
    bits = rng.integers(1, 0x7F800000, 1_000_000, dtype=np.uint32)
    special = np.array([0.0, np.finfo(np.float32).tiny, 1.0, np.finfo(np.float32).max, np.inf],
                       np.float32)
    bases = np.concatenate([bits.view(np.float32), special])
    for k in range(1, 8):
        roots = _root_powers(bases, k)
        exact = (bases.astype(np.float64) ** (k / 8)).astype(np.float32)
        np.testing.assert_array_equal(roots, exact)
    assert np.isnan(_root_powers(np.array([np.nan, -1.0], np.float32), 3)).all()


def _root_powers(bases, k):
    from numba import njit

    @njit
    def powers(b, half, quarter, eighth):
        out = np.empty_like(b)
        for i in range(b.shape[0]):
            out[i] = kernels._root_power(b[i], half, quarter, eighth)
        return out

    return powers(bases, k & 4 != 0, k & 2 != 0, k & 1 != 0)


def test_float32_padam_matches_the_reference_with_roots_and_powers():
    """p = 1/16 and 3/8 take the ROOTS loop in float32, p = 0.3 the power loop; both match the
    torch engine to float32 precision."""
    model = ModelConfig(q=3, m=4)
    datasets = _datasets()
    W0 = _weights(3, model.m, 60, dtype=torch.float32)
    full = [{**OPTIMIZERS["padam"].defaults, **s, "p": p}
            for s, p in zip(SETTINGS["adam"], (0.0625, 0.375, 0.3), strict=True)]
    hyper = per_run_hyperparameters("padam", full, W0)
    args = (_spec("padam", model, 5), datasets, np.array([0, 1, 0]), W0, hyper)
    ref, fast = reference_engine(*args), fast_engine(*args)
    assert fast.flags & kernels.ROOTS
    for engine in (ref, fast):
        engine.advance(0, _perms(20), 20)
    _assert_close(fast.weights(), ref.weights(), 2e-4)
    assert (ref.weights() - W0).norm() / W0.norm() > 0.05

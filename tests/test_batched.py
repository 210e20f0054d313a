"""The torch engine (adamgen.engines.dense) on every device this machine has and compiled
(its CUDA path) against itself eager on the CPU in float64 (the reference), step for step;
GPU group sizes and the `every_run` section.

The CUDA cases run where torch sees a GPU and are skipped, with the reason, where it does not.
"""

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY
from test_fast import MODEL_VARIANTS, N_TRAIN, SETTINGS, _assert_close, _datasets, _perms

from adamgen import data as datamod
from adamgen import planner as ex
from adamgen.config import parse_run_config
from adamgen.data.benign import BenignConfig
from adamgen.engines import ENGINES, choose
from adamgen.engines.dense import device_memory
from adamgen.models import CNNConfig
from adamgen.models.two_layer_cnn import from_filters, to_filters
from adamgen.optim import OPTIMIZERS, per_run_hyperparameters
from adamgen.trainer import train

ROOT = Path(__file__).resolve().parents[1]
runs_per_device = ENGINES["torch"].fit


def torch_engine(*args):
    """The torch engine: eager on the CPU in float64 it is the reference; the same engine on
    another device or compiled is what is checked against it."""
    return ENGINES["torch"].build(*args)

PARITY = {**SETTINGS, "lion": [{"lr": 1e-3, "weight_decay": 0.0, "betas": (0.9, 0.99)},
                               {"lr": 3e-3, "weight_decay": 0.1, "betas": (0.5, 0.9)},
                               {"lr": 1e-3, "weight_decay": 0.01, "betas": (0.0, 0.999)}]}
NO_GPU = "no CUDA device on this machine: the CUDA parity cases run where torch sees a GPU"
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason=NO_GPU))]


def _spec(name, model, batch, compile="off"):
    """What an engine reads of the run it trains."""
    from types import SimpleNamespace

    return SimpleNamespace(model=model, batch_size=batch, optimizer={"name": name},
                           train=SimpleNamespace(compile=compile))


def _pair(name, model, device, batch=5, datasets=None, compile="off", dtype=torch.float64):
    """The torch engine eager on the CPU in float64 and on `device` (compiled as asked): three
    runs with their own hyperparameters on two data sets."""
    datasets = datasets or _datasets()
    index = np.array([0, 1, 0])
    d = datasets[0].train.x.shape[-1]
    W0 = from_filters(0.3 * torch.randn(3, 2, model.m, d, dtype=torch.float64,
                                        generator=torch.Generator().manual_seed(0)))
    full = [{**OPTIMIZERS[name].defaults, **s} for s in PARITY[name]]
    spec = _spec(name, model, batch, compile)
    ref = torch_engine(_spec(name, model, batch), datasets, index, W0,
                          per_run_hyperparameters(name, full, W0))
    W1 = W0.to(device, dtype)
    batched = torch_engine(spec, datasets, index, W1, per_run_hyperparameters(name, full, W1))
    return ref, batched


def test_every_optimizer_has_parity_settings_here():
    assert sorted(PARITY) == sorted(OPTIMIZERS)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_optimizer_matches_the_reference_for_30_epochs(name, device):
    """30 epochs of B = 5 (120 steps; 120 full-batch steps for gd), three runs with their own
    hyperparameters on two data sets, float64, and every probe statistic after them."""
    ref, batched = _pair(name, CNNConfig(q=3, m=4), device,
                         batch=N_TRAIN if name == "gd" else 5)
    W0 = ref.weights().clone()
    perms = None if name == "gd" else _perms(30)
    ref.advance(0, perms, 120 if name == "gd" else 30)
    batched.advance(0, perms, 120 if name == "gd" else 30)
    assert batched.weights().device.type == device
    _assert_close(batched.weights().cpu(), ref.weights(), 1e-10)
    assert (ref.weights() - W0).norm() / W0.norm() > 0.05  # the weights really moved
    for a, b in zip(batched.train_stats(), ref.train_stats(), strict=True):
        _assert_close(a.cpu(), b, 1e-10)
    for a, b in zip(batched.test_stats(), ref.test_stats(), strict=True):
        np.testing.assert_allclose(a.cpu(), b, rtol=1e-10, atol=1e-12)


@MODEL_VARIANTS
def test_model_variants_match_the_reference(model, patches):
    ref, batched = _pair("adam", model, "cpu", datasets=_datasets(patches))
    perms = _perms(10)
    for engine in (ref, batched):
        engine.advance(0, perms, 10)
    _assert_close(batched.weights(), ref.weights(), 1e-10)


def test_dense_gaussian_data_match_the_reference():
    """The torch engine does not need sparse inputs: Cao et al.'s dense noise patches."""
    cfg = BenignConfig(d=40, n=N_TRAIN, snr=0.5, n_test=30).resolve()
    datasets = [datamod.generate(cfg, seed) for seed in (0, 1)]
    ref, batched = _pair("adam", CNNConfig(q=3, m=4, c=0.25), "cpu", batch=N_TRAIN,
                         datasets=datasets)
    W0 = ref.weights().clone()
    for engine in (ref, batched):
        engine.advance(0, None, 50)
    assert (ref.weights() - W0).norm() / W0.norm() > 0.05 and ref.weights().isfinite().all()
    _assert_close(batched.weights(), ref.weights(), 1e-10)


@pytest.mark.parametrize("device", DEVICES)
def test_float32_matches_the_float64_reference_to_float32_precision(device):
    ref, batched = _pair("adam", CNNConfig(q=3, m=4), device, dtype=torch.float32)
    perms = _perms(20)
    for engine in (ref, batched):
        engine.advance(0, perms, 20)
    assert batched.weights().dtype == torch.float32
    _assert_close(batched.weights().cpu().double(), ref.weights(), 2e-4)


def _compiler_missing() -> bool:
    return shutil.which("g++") is None and shutil.which("c++") is None


@pytest.mark.slow
@pytest.mark.skipif(_compiler_missing(), reason="torch.compile on the CPU needs a C++ compiler")
@pytest.mark.parametrize("device", DEVICES)
def test_the_compiled_step_matches_the_reference(device, monkeypatch):
    """train.compile: default (Inductor: C++ on the CPU, Triton on CUDA), float64, for three
    optimizer families in one process. Every engine's step is one code object; with dynamo's
    recompilation cap lowered to 2, a third engine compiles only because each engine starts
    from fresh dynamo caches (a process that builds many engines, such as the benchmark)."""
    monkeypatch.setattr(torch._dynamo.config, "recompile_limit", 2)
    for name in ("adamw", "padam", "lion"):
        ref, batched = _pair(name, CNNConfig(q=3, m=4), device, compile="default")
        assert batched.mode == "default"
        perms = _perms(5)
        for engine in (ref, batched):
            engine.advance(0, perms, 5)
        _assert_close(batched.weights().cpu(), ref.weights(), 1e-10)


@pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_GPU)
def test_cuda_graphs_match_the_reference():
    ref, batched = _pair("adamw", CNNConfig(q=3, m=4), "cuda", compile="reduce-overhead")
    perms = _perms(10)
    for engine in (ref, batched):
        engine.advance(0, perms, 5)
        engine.advance(5, perms[5:], 5)
    _assert_close(batched.weights().cpu(), ref.weights(), 1e-10)


@pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_GPU)
def test_a_cuda_run_gives_the_same_numbers_twice(tiny):
    run = tiny(train={"device": "cuda", "dtype": "float32", "batch_size": 5})
    (a,), (b,) = train([run]), train([run])
    assert a.timing["engine"] == "torch"
    for k in a.probes:
        np.testing.assert_array_equal(a.probes[k], b.probes[k], err_msg=k)


def test_layouts_round_trip():
    W = torch.randn(3, 2, 4, 7, dtype=torch.float64)
    Wb = from_filters(W)
    assert Wb.shape == (3, 7, 8) and Wb[1, 5, 4 + 2] == W[1, 1, 2, 5]
    assert torch.equal(to_filters(Wb), W)


def test_auto_takes_the_torch_engine_on_cuda_and_where_no_kernel_exists(tiny):
    engine, why = choose(tiny(train={"device": "cuda"}))
    assert engine.name == "torch" and why.startswith("auto: not fast: it runs on the CPU")
    engine, _ = choose(tiny())
    assert engine.name == "fast"
    benign = {"kind": "benign", "d": 40, "n": 20, "n_test": 30, "snr": 0.5}
    on_cpu = parse_run_config({**TINY, "data": benign})
    assert choose(on_cpu)[0].name == "torch"  # CPU, dense data: no fast kernel
    on_gpu = parse_run_config({**TINY, "data": benign, "train": {"device": "cuda"}})
    assert choose(on_gpu)[0].name == "torch"
    # the engines it replaced are still accepted by name, on the CPU too
    assert tiny(train={"engine": "batched"}).train.engine == "torch"
    assert tiny(train={"engine": "reference"}).train.engine == "torch"


def test_the_trainer_trains_several_seeds_on_the_torch_engine_as_on_the_fast_one(tiny):
    runs = {e: [tiny(seed=s, optimizer={"name": "adamw", "lr": 1e-3, "weight_decay": 0.1 * s},
                     train={"batch_size": 5, "engine": e}) for s in (0, 1, 2)]
            for e in ("fast", "torch")}
    ref, batched = train(runs["fast"]), train(runs["torch"])
    assert batched[0].timing["engine"] == "torch"
    for a, b in zip(batched, ref, strict=True):
        for k in a.probes:
            np.testing.assert_allclose(a.probes[k], b.probes[k], rtol=1e-9, atol=1e-12,
                                       err_msg=k)


# --- GPU jobs: group sizes from the device's memory, the `every_run` section -----------------

PAPER = {"data": {"kind": "patch", "d": 1000, "n": 200, "s": 100, "sigma_p": 0.1,
                  "n_test": 10000},
         "model": {"q": 3, "m": 20}, "optimizer": {"name": "adam", "lr": 5e-5},
         "train": {"batch_size": 2, "device": "cuda"}}


def test_the_device_estimate_grows_with_the_runs_and_sets_the_group_size():
    run = parse_run_config(PAPER)
    small, large = device_memory(run, 64, 5), device_memory(run, 1024, 5)
    assert large.total > 10 * small.parts["weights, optimizer state and step temporaries"]
    fits = runs_per_device(run, 20 * 2**30)
    assert device_memory(run, fits, fits).total <= 20 * 2**30
    assert device_memory(run, fits + 1, fits + 1).total > 20 * 2**30
    assert runs_per_device(run, 40 * 2**30) > fits
    assert runs_per_device(run, 1e15) == 4096 and runs_per_device(run, 1) == 1


def _experiments(device: str, seeds: int = 40) -> dict:
    config = {"experiments": {"e": {"base": {k: v for k, v in PAPER.items() if k != "optimizer"},
                                    "grid": {"seed": list(range(seeds))},
                                    "optimizers": {"adam": {"optimizer": {"lr": 5e-5}}}}},
              "every_run": {"train": {"device": device}}}
    return ex.plan(config)


def test_runs_on_a_gpu_are_grouped_by_device_memory_and_cpu_runs_by_runs_per_job():
    on_gpu = _experiments("cuda")
    assert all(r.config.train.device == "cuda" for r in on_gpu["e"].runs)
    run = on_gpu["e"].runs[0].config
    fits = runs_per_device(run, 3 * 2**30)
    assert 1 < fits < 40
    for experiments, size, gpu_runs in ((on_gpu, fits, "auto"), (on_gpu, 16, 16),
                                        (_experiments("cpu"), 4, "auto")):
        groups = ex.lockstep_groups(experiments, 4, gpu_runs, 3.0)
        sizes = [len(g.runs) for g in groups]  # hash buckets (planner.buckets): each at most
        assert max(sizes) <= size and sum(sizes) == 40  # the size, every run once
        assert len(groups) >= -(-40 // size) and sorted(p for g in groups for p in g.paths) \
            == sorted(r.path for r in experiments["e"].runs)


def test_every_run_is_applied_last_and_leaves_the_run_paths_alone():
    on_cpu, on_gpu = _experiments("cpu", 2), _experiments("cuda:1", 2)
    assert [r.config.train.device for r in on_gpu["e"].runs] == ["cuda:1"] * 2
    assert [r.path for r in on_gpu["e"].runs] == [r.path for r in on_cpu["e"].runs]


def test_a_bad_every_run_key_is_named():
    from adamgen.errors import ConfigError

    config = {"experiments": {"e": {"optimizers": {"adam": {"optimizer": {"lr": 1e-3}}}}},
              "every_run": {"train": {"devise": "cuda"}}}
    with pytest.raises(ConfigError, match="train.devise"):
        ex.plan(config)


def test_the_gpu_benchmark_runs_on_the_cpu_and_checks_its_numbers(tmp_path):
    """benchmarks/bench_gpu.py end to end on the CPU at toy sizes: it verifies the engine
    against the naive loop in float64 and writes one row per cell."""
    import json
    import sys

    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import bench_gpu
    finally:
        sys.path.pop(0)
    out = tmp_path / "gpu.json"
    bench_gpu.main(["--device", "cpu", "--runs", "1", "3", "--batches", "2", "200",
                    "--optimizers", "adamw", "--compile", "off", "--seconds", "0.05",
                    "--out", str(out)])
    rows = json.loads(out.read_text())["rows"]
    assert [(r["batch_size"], r["runs"]) for r in rows] == [(2, 1), (2, 3), (200, 1), (200, 3)]
    for r in rows:
        assert r["run_steps_per_s"] > 0 and r["naive_run_steps_per_s"] > 0
        assert r["max_relative_difference_vs_naive"] <= 1e-9
        assert r["estimated_device_bytes"] > 0 and r["peak_device_bytes"] is None


def test_auto_compiles_long_jobs_on_cuda_only(tiny):
    from adamgen.engines.dense_program import COMPILE_MIN_STEPS, compile_mode

    cuda = torch.device("cuda")
    long = tiny(train={"device": "cuda", "batch_size": 2, "epochs": COMPILE_MIN_STEPS // 10})
    short = tiny(train={"device": "cuda", "batch_size": 2, "epochs": 10})
    assert long.train.epochs * long.steps_per_epoch >= COMPILE_MIN_STEPS
    assert compile_mode(long, cuda) == "default" and compile_mode(short, cuda) == "off"
    assert compile_mode(long, torch.device("cpu")) == "off"
    asked = tiny(train={"device": "cuda", "epochs": 10, "compile": "reduce-overhead"})
    assert compile_mode(asked, cuda) == "reduce-overhead"


def test_the_gpu_overlay_and_profile_plan_gpu_jobs_sized_by_device_memory(tmp_path,
                                                                          run_workflow):
    """config/gpu.yaml over config/tiny.yaml with runs_per_job 2, through profiles/gpu, in a
    dry run: every training job asks for the GPU, and the CNN's groups are sized by the
    overlay's gpu_memory_gb, not by runs_per_job."""
    import yaml
    from conftest import TINY_WORKFLOW

    config = {**TINY_WORKFLOW, "runs_per_job": 2}
    overlay = ROOT / "config/gpu.yaml"
    proc = run_workflow(tmp_path, config, str(overlay), "--workflow-profile",
                        str(ROOT / "profiles/gpu"), "-n", "--set-resources",
                        "train:runtime=77")
    assert proc.returncode == 0, proc.stderr
    merged = {"gpu_memory_gb": 40,  # the schema's default, which the overlay keeps
              **config, **yaml.safe_load(overlay.read_text())}  # top-level keys of its own
    groups = ex.lockstep_groups(ex.plan(merged), 2, merged["gpu_runs_per_job"],
                                merged["gpu_memory_gb"])
    cnn = [g for g in groups if g.runs[0].config.model.name == "two_layer_cnn"]
    assert cnn and all(r.config.train.device == "cuda" for g in groups for r in g.runs)
    budget = merged["gpu_memory_gb"] * 2**30
    assert all(len(g.runs) <= runs_per_device(g.runs[0].config, budget) for g in groups)
    assert any(len(g.runs) > 2 for g in cnn)  # larger than runs_per_job: sized by memory
    linear = [g for g in groups if g.runs[0].config.model.name == "two_layer_linear"]
    assert linear  # the torch engine trains it too, in groups sized by the same estimate
    jobs = proc.stdout.split("\nrule ")[1:]
    planned = {job.split(":")[0]: job for job in jobs if job.startswith("train_")}
    assert sorted(planned) == sorted(f"train_{g.name}" for g in groups)
    assert all("gpu=1" in job for job in planned.values())
    # what --set-resources gives `train` reaches every training rule (a GPU partition)
    assert all("runtime=77" in job for job in planned.values())


def test_a_gpu_job_states_its_device_memory_and_refuses_a_group_that_cannot_fit(
        monkeypatch, caplog):
    """The device's free memory is read from torch (faked here: no GPU needed)."""
    import logging

    from adamgen.errors import ResourceError
    from adamgen.trainer import check_fits

    run = parse_run_config(PAPER)
    runs = [run] * 64
    need = device_memory(run, 64, 1).total
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Fake GPU")
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (2 * need, 4 * need))
    logging.getLogger("adamgen").addHandler(caplog.handler)
    caplog.set_level(logging.INFO, logger="adamgen")
    try:
        check_fits(runs, torch.device("cuda"), 1)
    finally:
        logging.getLogger("adamgen").removeHandler(caplog.handler)
    assert "device cuda (Fake GPU)" in caplog.text and "64 run(s) in lockstep need about" \
        in caplog.text and "such runs would fit" in caplog.text
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (need / 2, 4 * need))
    with pytest.raises(ResourceError, match="lower gpu_runs_per_job or gpu_memory_gb"):
        check_fits(runs, torch.device("cuda"), 1)


MEMORY_CHILD = """
import sys, torch
sys.path.insert(0, sys.argv[1])
import bench_gpu
from adamgen import data as datamod
from adamgen.engines.dense import device_memory

def status(key):
    line = next(l for l in open("/proc/self/status") if l.startswith(key))
    return int(line.split()[1]) * 1024

R, B = 64, 200
datasets = [datamod.generate(bench_gpu.run_config("adam", B, "cpu").data, s) for s in range(16)]
runs = [bench_gpu.run_config("adam", B, "cpu", seed=r % 16) for r in range(R)]
before = status("VmRSS")
group = bench_gpu.Group(runs, datasets, torch.device("cpu"))
group.advance(2)
group.engine.train_stats(), group.engine.test_stats()
estimate = device_memory(runs[0], R, 16)
print(status("VmHWM") - before, estimate.total - estimate.parts["CUDA context and caching"])
"""


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads Linux's /proc")
def test_the_device_estimate_bounds_what_the_batched_engine_allocates():
    """On the CPU the engine's tensors live in the process: the peak it adds (VmHWM) for 64
    paper-size runs at B = 200 on 16 data sets, two epochs and a probe, stays within the
    estimate that sizes GPU jobs (less its CUDA part), and the estimate is not loose beyond 4×."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", MEMORY_CHILD, str(ROOT / "benchmarks")],
                          capture_output=True, text=True, check=True)
    measured, estimate = map(int, proc.stdout.split())
    assert measured <= estimate <= 4 * measured, (measured, estimate)

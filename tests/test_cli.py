import shutil
import subprocess
import sys

import pytest
import xarray as xr
import yaml

from adamgen.cli import main


@pytest.fixture
def config_file(tmp_path, tiny_raw):
    def write(**changes):
        path = tmp_path / "run.yaml"
        path.write_text(yaml.safe_dump(tiny_raw(**changes)))
        return path

    return write


def test_train_writes_a_run_file(config_file, tmp_path, capsys):
    out = tmp_path / "out" / "run.nc"
    assert main(["train", str(config_file()), "--out", str(out), "--set", "optimizer.lr=2e-3",
                 "--threads", "1"]) == 0
    ds = xr.open_dataset(out, engine="netcdf4")
    assert ds["lr"].item() == 2e-3 and ds.attrs["status"] == "completed"
    ds.close()
    assert "wrote" in capsys.readouterr().err


def test_data_then_train_from_the_data_file(config_file, tmp_path):
    cfg = config_file()
    assert main(["data", str(cfg), "--out", str(tmp_path / "d.nc")]) == 0
    assert main(["train", str(cfg), "--data", str(tmp_path / "d.nc"),
                 "--out", str(tmp_path / "a.nc")]) == 0
    assert main(["train", str(cfg), "--out", str(tmp_path / "b.nc")]) == 0
    a = xr.open_dataset(tmp_path / "a.nc", engine="netcdf4")
    b = xr.open_dataset(tmp_path / "b.nc", engine="netcdf4")
    xr.testing.assert_identical(a.drop_attrs(), b.drop_attrs())


@pytest.mark.parametrize(
    "changes, overrides, fragment",
    [
        ({"optimizer": {"name": "adma", "lr": 1e-3}}, [], "'optimizer.name' = 'adma'"),
        ({}, ["train.batch_size=3"], "'train.batch_size' = 3: must divide data.n = 20"),
        ({}, ["optimizer.weight_decay=-1e-5"], "'optimizer.weight_decay' = -1e-05"),
        ({}, ["optimizer.lr=-0.1"], "'optimizer.lr' = -0.1: must be > 0"),
        ({"optimizer": {"name": "padam", "lr": 1e-3, "p": 0.6}}, [], "'optimizer.p' = 0.6"),
        ({"model": {"widht": 3}}, [], "'model.widht': unknown key"),
        ({}, ["optimizer.lrr=1"], "'optimizer.lrr': unknown key (did you mean 'optimizer.lr'"),
    ],
)
def test_bad_input_is_one_line_naming_the_key(config_file, tmp_path, capsys, changes, overrides,
                                              fragment):
    out = tmp_path / "out" / "run.nc"
    args = ["train", str(config_file(**changes)), "--out", str(out)]
    for o in overrides:
        args += ["--set", o]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("adamgen: error: config key")
    assert fragment in err[0]
    assert not out.parent.exists()


def test_unreadable_files_are_named(tmp_path, capsys, config_file):
    assert main(["train", str(tmp_path / "nope.yaml"), "--out", str(tmp_path / "r.nc")]) == 2
    assert "cannot read config file" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("optimizer: [unclosed")
    assert main(["train", str(bad), "--out", str(tmp_path / "r.nc")]) == 2
    assert "bad.yaml', line 1, column 21: not valid YAML" in capsys.readouterr().err
    junk = tmp_path / "junk.nc"
    junk.write_text("x")
    assert main(["train", str(config_file()), "--data", str(junk),
                 "--out", str(tmp_path / "r.nc")]) == 2
    assert "junk.nc' is not a readable NetCDF" in capsys.readouterr().err
    assert not (tmp_path / "r.nc").exists()


def test_a_data_file_for_another_seed_is_refused(config_file, tmp_path, capsys):
    cfg = config_file()
    assert main(["data", str(cfg), "--out", str(tmp_path / "d.nc")]) == 0
    assert main(["train", str(cfg), "--set", "seed=1", "--data", str(tmp_path / "d.nc"),
                 "--out", str(tmp_path / "r.nc")]) == 2
    assert "generated with seed 0, but the run has seed 1" in capsys.readouterr().err
    assert not (tmp_path / "r.nc").exists()


def test_config_and_keys_commands(config_file, capsys):
    assert main(["config", str(config_file())]) == 0
    resolved = yaml.safe_load(capsys.readouterr().out)
    assert resolved["optimizer"]["betas"] == [0.9, 0.999] and resolved["train"]["batch_size"] == 20
    assert main(["keys"]) == 0
    listing = capsys.readouterr().out
    assert "sigma_p" in listing and "padam" in listing


def test_console_script_runs(config_file, tmp_path):
    exe = shutil.which("adamgen") or f"{sys.executable} -m adamgen"
    cmd = exe.split() + ["train", str(config_file()), "--out", str(tmp_path / "r.nc"),
                         "--set", "optimizer.name=nope"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 2 and "unknown optimizer" in proc.stderr


def test_help_and_version_import_no_heavy_library():
    """What makes `adamgen --help` answer at once (the time itself is measured by
    benchmarks/bench_cli.py): torch, numba, xarray and matplotlib stay unimported."""
    code = ("import sys, contextlib, io\n"
            "from adamgen.cli import main\n"
            "for argv in (['--help'], ['--version']):\n"
            "    with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
            "        main(argv)\n"
            "print(sorted(m for m in ('torch', 'numba', 'xarray', 'matplotlib', 'netCDF4')\n"
            "             if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_keys_prints_yaml_that_loads_back_to_the_defaults(capsys):
    from adamgen.config import parse_run_config

    assert main(["keys"]) == 0
    listing = yaml.safe_load(capsys.readouterr().out)
    assert listing["data"]["kind"] == "patch" and listing["train"]["batch_size"] is None
    assert listing["probes"]["noise_memorization_full"] is False
    assert listing["optimizer"]["lr"] is None  # required: no default
    listing["optimizer"] = {"name": "adam", "lr": 1e-3}
    run = parse_run_config(listing)
    assert run == parse_run_config({"optimizer": {"name": "adam", "lr": 1e-3}})


def test_unset_drops_a_key_and_a_foreign_key_says_how(config_file, capsys):
    cfg = str(config_file(optimizer={"name": "adam", "lr": 1e-3, "betas": [0.9, 0.99]}))
    assert main(["config", cfg, "--set", "optimizer.name=sgd"]) == 2
    err = capsys.readouterr().err
    assert "'optimizer.betas': is not a setting of sgd" in err
    assert "drop it with --unset optimizer.betas" in err
    assert main(["config", cfg, "--set", "optimizer.name=sgd", "--unset", "optimizer.betas"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["optimizer"] == {
        "name": "sgd", "lr": 1e-3, "weight_decay": 1e-4}
    assert main(["config", cfg, "--unset", "optimizer.nothing"]) == 2
    assert "'optimizer.nothing': --unset: the config does not set this key" in \
        capsys.readouterr().err


def test_a_workflow_config_is_named_as_one(capsys):
    """`adamgen config config/tiny.yaml` used to answer '--unset experiments'."""
    from pathlib import Path

    tiny = Path(__file__).resolve().parents[1] / "config" / "tiny.yaml"
    assert main(["config", str(tiny)]) == 2
    err = capsys.readouterr().err
    assert "is a workflow config (it has 'experiments'), not one run's config" in err
    assert f"snakemake --configfile {tiny}" in err and "--unset" not in err


def test_every_train_option_has_help():
    text = _parser_help("train")
    assert "--progress-every SECONDS" in text and "progress line" in text


def _parser_help(command: str) -> str:
    from adamgen.cli import _parser

    parser = _parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return sub.choices[command].format_help()

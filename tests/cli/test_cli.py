"""End-to-end tests of the ``selfrecon`` command on tiny data (16×16 digits, a few steps).

The main flow runs through subprocesses (``python -m selfrecon ...``) exactly as a user types it;
the many bad-input cases call :func:`selfrecon.cli.main.main` in-process (same code path, no
interpreter start-up per case) and check exit code 2, one ``selfrecon:`` line on stderr and that
no file was left behind.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from selfrecon.cli.main import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}

# a tiny EI compressed-sensing run: 8 training digits of 16×16, one epoch of two steps
TINY = [
    "--set", "data.train=8", "--set", "data.val=2", "--set", "data.test=4",
    "--set", "model.width=8", "--set", "model.depth=2", "--set", "loss.n_trans=1",
    "--set", "train.epochs=1", "--set", "train.batch_size=4", "--set", "train.progress=none",
    "--set", "train.check_identifiability=false", "--set", "train.plot_every=1",
]  # fmt: skip


def run(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    p = subprocess.run(
        [sys.executable, "-m", "selfrecon", *args],
        cwd=cwd, env=ENV, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    if check and p.returncode != 0:
        raise AssertionError(f"selfrecon {' '.join(args)} failed ({p.returncode}):\n{p.stderr}")
    return p


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.fixture(scope="module")
def flow(tmp_path_factory):
    """init → check → simulate → train through subprocesses; returns the working folder.

    Its tests share the xdist group ``cli_flow`` (``--dist loadgroup`` in pyproject.toml), so
    under ``-n 2`` one worker builds it once instead of every worker building its own."""
    wd = tmp_path_factory.mktemp("flow")
    r = run("init", "cs", "-o", "cs.yaml", cwd=wd)
    assert "wrote cs.yaml" in r.stdout
    text = (wd / "cs.yaml").read_text()
    assert "# " in text and "loss:" in text  # commented
    r = run("check", "cs.yaml", *TINY, "--no-identify", cwd=wd)
    assert "OK" in r.stdout and "y (64)" in r.stdout and "one batch" in r.stdout
    run("simulate", "cs.yaml", "-o", "sets", *TINY, cwd=wd)
    for split, n in (("train", 8), ("val", 2), ("test", 4)):
        manifest = yaml.safe_load((wd / "sets" / split / "manifest.json").read_text())
        assert manifest["n"] == n
    run("train", "cs.yaml", *TINY, "--set", "output.dir=runs/a", "--set", "train.lr=3e-4",
        cwd=wd)  # fmt: skip
    return wd


@pytest.mark.xdist_group("cli_flow")  # one worker builds the flow once
def test_train_writes_run_folder_with_resolved_config(flow):
    rdir = flow / "runs" / "a"
    for f in ("config.yaml", "spec.yaml", "run.pt", "metrics.csv", "train.log", "env.json",
              "checkpoints/last.pt", "checkpoints/best.pt", "plots/loss.png"):  # fmt: skip
        assert (rdir / f).is_file(), f
    cfg = yaml.safe_load((rdir / "config.yaml").read_text())
    # --set overrides are in the saved config, with YAML-parsed types
    assert cfg["train"]["lr"] == pytest.approx(3e-4)
    assert cfg["data"]["train"] == 8 and cfg["model"]["width"] == 8
    assert cfg["output"]["dir"] == "runs/a"
    rows = list(csv.DictReader(open(rdir / "metrics.csv")))
    assert len(rows) == 1 and float(rows[0]["lr"]) == pytest.approx(3e-4)


@pytest.mark.xdist_group("cli_flow")  # one worker builds the flow once
def test_eval_writes_table_and_csv(flow):
    r = run("eval", "runs/a", "--checkpoint", "last", cwd=flow)
    assert "A†y" in r.stdout and "PSNR" in r.stdout
    rows = list(csv.DictReader(open(flow / "runs" / "a" / "eval_last_test.csv")))
    assert len(rows) == 5 and rows[-1]["item"] == "mean"  # 4 test images + mean
    psnr = np.array([float(r["psnr_pinv"]) for r in rows[:-1]])
    assert np.isfinite(psnr).all() and float(rows[-1]["psnr_pinv"]) == pytest.approx(psnr.mean())
    # on a simulated measurement set given with --data (in-process: same code path)
    assert main(["eval", str(flow / "runs/a"), "--data", str(flow / "sets/val")]) == 0
    assert (flow / "runs" / "a" / "eval_best_val.csv").is_file()


@pytest.mark.xdist_group("cli_flow")  # one worker builds the flow once
def test_predict_mirrors_names_and_refuses_overwrite(flow, capsys):
    # the user's own files: a folder of .npy measurements (one each)
    (flow / "meas").mkdir()
    ys = np.random.default_rng(0).normal(size=(3, 64)).astype(np.float32)
    for i, name in enumerate(("a", "b", "c")):
        np.save(flow / "meas" / f"{name}.npy", ys[i])
    run("predict", "runs/a", "--input", "meas", "--output", "recon", cwd=flow)
    for name in ("a", "b", "c"):
        x = np.load(flow / "recon" / f"{name}.npy")
        assert x.shape == (1, 16, 16) and x.dtype == np.float32
        assert (flow / "recon" / f"{name}.png").is_file()
    before = (flow / "recon" / "a.npy").stat().st_mtime_ns
    _bad(flow, capsys, ["predict", "runs/a", "--input", "meas", "--output", "recon"],
         "--overwrite", cwd=flow)  # fmt: skip
    assert (flow / "recon" / "a.npy").stat().st_mtime_ns == before
    assert main(["predict", str(flow / "runs/a"), "--input", str(flow / "meas"), "--output",
                 str(flow / "recon"), "--overwrite"]) == 0  # fmt: skip
    assert (flow / "recon" / "a.npy").stat().st_mtime_ns != before
    # a measurement set works too
    assert main(["predict", str(flow / "runs/a"), "--input", str(flow / "sets/test"), "--output",
                 str(flow / "recon2")]) == 0  # fmt: skip
    assert len(list((flow / "recon2").glob("*.npy"))) == 4


@pytest.mark.xdist_group("cli_flow")  # one worker builds the flow once
def test_plot_redraws(flow):
    (flow / "runs" / "a" / "plots" / "loss.png").unlink()
    r = run("plot", "runs/a", cwd=flow)
    assert (flow / "runs" / "a" / "plots" / "loss.png").is_file() and "wrote" in r.stdout


@pytest.mark.xdist_group("cli_flow")  # one worker builds the flow once
def test_train_on_measurement_set_then_resume_continues(flow):
    cfg = {
        "data": {"source": "measurements", "path": "sets"},
        "model": {"width": 8, "depth": 2},
        "loss": {"method": "ei", "group": "shift"},
        "train": {
            "epochs": 1,
            "batch_size": 4,
            "progress": "none",
            "check_identifiability": False,
        },  # fmt: skip
        "output": {"dir": "runs/ms"},
    }
    (flow / "ms.yaml").write_text(yaml.safe_dump(cfg))
    old = os.getcwd()
    os.chdir(flow)
    try:
        assert main(["train", "ms.yaml"]) == 0
        rdir = flow / "runs" / "ms"
        assert len(list(csv.DictReader(open(rdir / "metrics.csv")))) == 1
        assert main(["train", "--resume", "runs/ms", "--set", "train.epochs=2"]) == 0
    finally:
        os.chdir(old)
    rows = list(csv.DictReader(open(rdir / "metrics.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert int(rows[-1]["step"]) == 4  # 8 items / batch 4 = 2 steps per epoch, continued
    assert "resumed from" in (rdir / "train.log").read_text()
    assert yaml.safe_load((rdir / "config.yaml").read_text())["train"]["epochs"] == 2


def test_help_is_instant_and_imports_nothing_heavy(tmp_path):
    code = (
        "import sys, selfrecon.cli.main as m; "
        "print(sorted(k for k in ('torch', 'pydantic', 'numpy') if k in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True, text=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
    r = run("--help", cwd=tmp_path)
    for cmd in ("demo", "init", "check", "simulate", "train", "eval", "predict", "plot", "info",
                "identify", "calibrate"):  # fmt: skip
        assert cmd in r.stdout


def test_info_lists_versions_and_datasets(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "torch" in out and "usps-like" in out and "device:" in out


def test_identify_prints_report(tmp_path, capsys):
    cfg = {
        "data": {"name": "usps-like", "size": 8, "train": 2, "val": 0, "test": 0},
        "physics": {"operator": {"name": "inpainting", "rate": 0.7}},
        "loss": {"method": "ei", "group": "shift"},
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["identify", str(tmp_path / "c.yaml"), "--time-budget", "5"]) == 0
    out = capsys.readouterr().out
    assert "IDENTIFIABLE" in out and "n = 64" in out


def test_calibrate_writes_outputs(tmp_path, capsys):
    from skimage import data as skdata

    from selfrecon.data import write_image

    clean = skdata.camera()[::8, ::8].astype(np.float32) / 255.0
    noisy = clean + 0.1 * np.random.default_rng(0).normal(size=clean.shape).astype(np.float32)
    write_image(tmp_path / "noisy.npy", noisy)
    write_image(tmp_path / "clean.npy", clean)
    rc = main(["calibrate", str(tmp_path / "noisy.npy"), "--denoiser", "median", "--grid", "1:3",
               "--truth", str(tmp_path / "clean.npy"), "-o", str(tmp_path / "out")])  # fmt: skip
    assert rc == 0
    for f in ("denoised.png", "denoised.npy", "calibration.csv", "calibration.png"):
        assert (tmp_path / "out" / f).is_file()


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_every_example_config_checks(path, capsys):
    small = ["--set", "data.train=2", "--set", "data.val=1", "--set", "data.test=1",
             "--set", "data.size=16", "--set", "model.width=4", "--no-identify"]  # fmt: skip
    assert main(["check", str(path), *small]) == 0, capsys.readouterr().err
    assert "OK" in capsys.readouterr().out


def test_examples_are_the_init_templates():
    from selfrecon.cli.templates import EXAMPLE_FILES, render

    assert len(EXAMPLE_FILES) == 9
    for task, name in EXAMPLE_FILES.items():
        assert (EXAMPLES / name).read_text() == render(task), name


def test_schema_names_match_the_library():
    from selfrecon.cli.config import BUILTIN_NAMES, GROUP_NAMES, SOLVER_NAMES
    from selfrecon.data import BUILTIN_NAMES as LIB_BUILTIN
    from selfrecon.groups import GROUPS, build_group
    from selfrecon.models.solvers import SOLVERS

    assert tuple(SOLVER_NAMES) == tuple(SOLVERS)
    assert tuple(BUILTIN_NAMES) == tuple(LIB_BUILTIN)
    for g in GROUP_NAMES:
        assert build_group(g) is not None
    assert set(GROUPS) <= set(GROUP_NAMES)


# -- bad inputs: exit 2, one line, no files left behind --------------------------------------
def _bad(tmp_path, capsys, argv, expect: str, cwd: Path | None = None):
    root = cwd or tmp_path
    before = tree(root)
    old = os.getcwd()
    os.chdir(root)
    try:
        rc = main(argv)
    finally:
        os.chdir(old)
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == 2, err
    assert len(lines) == 1 and lines[0].startswith("selfrecon: "), err
    assert "Traceback" not in err
    assert expect.lower() in lines[0].lower(), lines[0]
    assert tree(root) == before, "files were left behind"
    return lines[0]


def _write(tmp_path, name, cfg) -> str:
    p = tmp_path / name
    p.write_text(cfg if isinstance(cfg, str) else yaml.safe_dump(cfg))
    return str(p)


GOOD = {
    "data": {"name": "usps-like", "size": 16, "train": 4, "val": 0, "test": 0},
    "physics": {"operator": {"name": "cs", "m": 32}},
    "model": {"width": 4, "depth": 2},
    "loss": {"method": "ei", "group": "shift"},
    "train": {"epochs": 1, "batch_size": 2, "progress": "none", "check_identifiability": False},
    "output": {"dir": "runs/bad"},
}


def _with(section, key, value):
    cfg = yaml.safe_load(yaml.safe_dump(GOOD))
    cfg[section][key] = value
    return cfg


def _noisy(noise: dict) -> dict:
    """GOOD on denoising with this physics.noise."""
    return {**GOOD, "physics": {"operator": {"name": "denoising"}, "noise": noise}}


BAD_CONFIGS = {
    "bad_yaml": ("data: [unclosed\n  name: x", "invalid yaml"),
    "unknown_key": (_with("data", "nmae", "mnist"), "unknown key data.nmae"),
    "wrong_type": (_with("train", "epochs", "many"), "train.epochs"),
    "negative_lr": (_with("train", "lr", -0.1), "train.lr"),
    "unknown_method": (_with("loss", "method", "magic"), "loss.method"),
    "group_not_in_list": (_with("loss", "group", "spin"), "unknown group 'spin'"),
    "unknown_dataset": (_with("data", "name", "cifar"), "data.name"),
    "unknown_operator": ({**GOOD, "physics": {"operator": {"name": "xray"}}}, "unknown operator"),
    "missing_data_path": (
        {**GOOD, "data": {"source": "measurements", "path": "nowhere"}, "physics": None},
        "does not exist",
    ),
    "sure_without_noise": (_with("loss", "method", "rei"), "noise"),
    "probe_fraction_above_one": (_with("loss", "probe_fraction", 1.5), "loss.probe_fraction"),
    "n2s_on_vectors": (_with("loss", "method", "n2s"), "n2s"),
    "not_a_mapping": ("- just\n- a list\n", "mapping"),
    "unknown_init": (_with("model", "init", "magic"), "unknown initial reconstruction 'magic'"),
    "dc_with_noise": (
        {
            **_with("model", "dc", "projection"),
            "physics": {
                "operator": {"name": "cs", "m": 32},
                "noise": {"name": "gaussian", "sigma": 0.1},
            },
        },
        "copies the noise",
    ),  # fmt: skip
    "masks_on_cs": (
        {**GOOD, "physics": {"operator": {"name": "cs", "m": 32, "masks": 3}}},
        "unknown key physics.operator.masks",
    ),
    "moei_without_group": ({**GOOD, "loss": {"method": "moei", "group": None}}, "needs loss.group"),
    "negative_sigma": (_noisy({"name": "gaussian", "sigma": -0.1}), "number ≥ 0 or auto"),
    "unknown_estimator": (
        _noisy({"name": "gaussian", "sigma": "auto", "estimator": "magic"}),
        "physics.noise.estimator",
    ),
    "auto_without_simulation_noise": (
        _noisy({"name": "gaussian", "sigma": "auto"}),
        "give the noise they are simulated with as data.noise",
    ),
    "r2r_without_noise": (_with("loss", "method", "r2r"), "uses R2R, which needs noisy"),
    "rei_r2r_without_noise": (
        {**GOOD, "loss": {"method": "rei", "consistency": "r2r"}},
        "uses R2R, which needs noisy",
    ),
    "unknown_consistency": (_with("loss", "consistency", "n2n"), "loss.consistency"),
    "ssdu_on_cs": (_with("loss", "method", "ssdu"), "measured entries are a mask"),
    "n2n_not_denoising": (_with("loss", "method", "n2n"), "needs physics.operator denoising"),
    "modl_with_dc": (
        {**GOOD, "model": {"width": 4, "depth": 2, "unroll": 2, "dc": "projection"}},
        "set model.dc to none",
    ),
    "modl_on_lowdose_ct": (
        {
            **GOOD,
            "data": {"name": "ellipses", "size": 16, "train": 2, "val": 0, "test": 0},
            "physics": {"operator": {"name": "lowdose_ct", "views": 8}},
            "model": {"width": 4, "depth": 2, "unroll": 2},
        },
        "needs a linear physics",
    ),
    "r2r_on_poisson_gaussian": (
        {
            **_noisy({"name": "poisson_gaussian", "gain": 0.1, "sigma": 0.1}),
            "loss": {"method": "r2r"},
        },
        "R2R splits",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_bad_config_exits_2_with_one_line(case, tmp_path, capsys):
    cfg, expect = BAD_CONFIGS[case]
    if isinstance(cfg, dict):
        cfg = {k: v for k, v in cfg.items() if v is not None}
    path = _write(tmp_path, "c.yaml", cfg)
    _bad(tmp_path, capsys, ["train", path], expect)


def test_bad_set_syntax(tmp_path, capsys):
    path = _write(tmp_path, "c.yaml", GOOD)
    _bad(tmp_path, capsys, ["check", path, "--set", "train.lr"], "--set section.key=value")
    _bad(tmp_path, capsys, ["check", path, "--set", "train.epochs.x=1"], "not a section")


def test_missing_config_file(tmp_path, capsys):
    _bad(tmp_path, capsys, ["check", str(tmp_path / "nope.yaml")], "does not exist")


def test_unknown_task_and_existing_init_file(tmp_path, capsys):
    _bad(tmp_path, capsys, ["init", "teleport", "-o", str(tmp_path / "c.yaml")], "unknown task")
    _write(tmp_path, "c.yaml", "keep: me\n")
    _bad(tmp_path, capsys, ["init", "cs", "-o", str(tmp_path / "c.yaml")], "--overwrite")
    assert (tmp_path / "c.yaml").read_text() == "keep: me\n"
    _bad(tmp_path, capsys, ["demo", "--task", "teleport"], "invalid choice")


def test_unknown_option_and_command(tmp_path, capsys):
    _bad(tmp_path, capsys, ["train", "c.yaml", "--epochz", "3"], "unrecognized arguments")
    _bad(tmp_path, capsys, ["frobnicate"], "invalid choice")


def test_nonexistent_run(tmp_path, capsys):
    for cmd in (["eval", "norun"], ["plot", "norun"], ["train", "--resume", "norun"],
                ["predict", "norun", "--input", ".", "--output", "o"]):  # fmt: skip
        _bad(tmp_path, capsys, cmd, "")


def test_mask_shape_mismatch(tmp_path, capsys):
    (tmp_path / "k").mkdir()
    for i in range(2):
        np.save(tmp_path / "k" / f"s{i}.npy", np.ones((1, 16, 16), np.complex64))
    np.save(tmp_path / "mask.npy", np.ones((16, 12), np.float32))
    cfg = {
        "data": {"source": "files", "files": "k", "mask_file": "mask.npy"},
        "physics": {"operator": {"name": "mri"}, "noise": {"name": "gaussian", "sigma": 0.01}},
        "loss": {"method": "rei", "group": "rotate"},
    }
    path = _write(tmp_path, "c.yaml", cfg)
    _bad(tmp_path, capsys, ["check", path], "mask")
    cfg["data"].pop("mask_file")
    path = _write(tmp_path, "c.yaml", cfg)
    _bad(tmp_path, capsys, ["check", path], "mask_file")


def test_calibrate_bad_grid_and_missing_image(tmp_path, capsys):
    np.save(tmp_path / "n.npy", np.random.default_rng(0).random((16, 16)).astype(np.float32))
    _bad(tmp_path, capsys, ["calibrate", str(tmp_path / "n.npy"), "--grid", "6:1", "-o",
                            str(tmp_path / "o")], "grid")  # fmt: skip
    _bad(tmp_path, capsys, ["calibrate", str(tmp_path / "x.png"), "-o", str(tmp_path / "o")],
         "not found")  # fmt: skip


@pytest.mark.xdist_group("cli_flow")  # one worker builds the flow once
def test_run_folder_errors(flow, capsys):
    # predicting into the input folder, an existing run without --resume, a missing checkpoint
    _bad(flow, capsys, ["predict", "runs/a", "--input", "sets/test", "--output", "sets/test/out"],
         "inside the input", cwd=flow)  # fmt: skip
    _bad(flow, capsys, ["train", "cs.yaml", "--set", "output.dir=runs/a"], "already holds a run",
         cwd=flow)  # fmt: skip
    best = flow / "runs" / "a" / "checkpoints" / "best.pt"
    best.rename(best.with_suffix(".bak"))
    try:
        _bad(flow, capsys, ["eval", "runs/a"], "--checkpoint last", cwd=flow)
    finally:
        best.with_suffix(".bak").rename(best)
    _bad(flow, capsys, ["eval", "runs/a", "--data", "nowhere"], "does not exist", cwd=flow)


def test_failed_training_start_leaves_no_run_folder(tmp_path, capsys):
    # the config is valid but the data are too few: the error comes before any file is written
    cfg = _with("data", "name", "shepp-logan")
    path = _write(tmp_path, "c.yaml", cfg)
    _bad(tmp_path, capsys, ["train", path], "")
    assert not (tmp_path / "runs").exists()


def test_demo_quick(tmp_path):
    """The README's headline claim, at --quick size (seconds on 2 cores): runs in CI."""
    r = run("demo", "--quick", "--out", "d", cwd=tmp_path)
    assert "learned (EI)" in r.stdout and (tmp_path / "d" / "plots" / "samples.png").is_file()
    table = [ln for ln in r.stdout.splitlines() if ln.startswith(("A†y", "learned"))]
    pinv, learned = (float(ln.split()[-2]) for ln in table)
    assert learned > pinv + 2.0


def test_demo_takes_set_overrides(tmp_path, capsys):
    """demo --set changes the demo's config (here: a tiny run); output.* stays with --out."""
    tiny = ["data.train=4", "data.val=2", "data.test=2", "train.epochs=1", "model.width=4",
            "model.depth=2", "train.check_identifiability=false", "loss.n_trans=1"]  # fmt: skip
    argv = ["demo", "--task", "mri", "--out", "d", "--device", "cpu"]
    argv += [a for kv in tiny for a in ("--set", kv)]
    old = os.getcwd()
    os.chdir(tmp_path)
    try:
        assert main(argv) == 0
    finally:
        os.chdir(old)
    assert "learned (REI)" in capsys.readouterr().out
    resolved = yaml.safe_load((tmp_path / "d" / "config.yaml").read_text())
    assert resolved["model"]["width"] == 4 and resolved["data"]["train"] == 4
    _bad(tmp_path, capsys, ["demo", "--set", "output.dir=x"], "--out")


@pytest.mark.xdist_group("cli_flow")  # one worker builds the flow once
def test_ctrl_c_saves_and_says_how_to_resume(flow):
    import signal
    import time

    # many epochs: it must still be running when the signal comes on a loaded machine
    args = [sys.executable, "-m", "selfrecon", "train", "cs.yaml", *TINY,
            "--set", "train.epochs=100000", "--set", "train.plot_every=0",
            "--set", "output.dir=runs/int"]  # fmt: skip
    p = subprocess.Popen(args, cwd=flow, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)  # fmt: skip
    last = flow / "runs" / "int" / "checkpoints" / "last.pt"
    deadline = time.time() + 120
    while not last.is_file() and time.time() < deadline and p.poll() is None:
        time.sleep(0.2)
    assert last.is_file(), "no checkpoint written"
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    msg = [ln for ln in err.splitlines() if ln.startswith("selfrecon:")]
    assert (
        len(msg) == 1 and "selfrecon train --resume runs/int" in msg[0] and "Traceback" not in err
    )


@pytest.mark.xdist_group("cli_flow")  # one worker builds the flow once
def test_torchrun_two_processes(flow):
    # torchrun's module entry point: never skipped for a missing PATH entry
    args = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
            "-m", "selfrecon", "train", "cs.yaml", *TINY,
            "--set", "output.dir=runs/ddp"]  # fmt: skip
    p = subprocess.run(args, cwd=flow, env=ENV, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    spec = yaml.safe_load((flow / "runs" / "ddp" / "spec.yaml").read_text())
    assert spec["distributed"]["world_size"] == 2
    assert p.stdout.count("run folder:") == 1  # rank 0 reports, once


def test_simulate_overwrite_never_deletes_a_users_folder(tmp_path, capsys):
    """--overwrite replaces an earlier simulate output only; a user's folder stays as it was."""
    path = _write(tmp_path, "c.yaml", GOOD)
    mine = tmp_path / "my_scans"
    mine.mkdir()
    (mine / "scan1.npy").write_bytes(b"precious")
    _bad(tmp_path, capsys, ["simulate", path, "-o", str(mine), "--overwrite"], "not the output")
    assert (mine / "scan1.npy").read_bytes() == b"precious"


def test_overwrite_never_replaces_a_folder_that_only_holds_a_config(tmp_path, capsys):
    """output.overwrite replaces runs only: a user's folder with a config.yaml is left alone."""
    mine = tmp_path / "experiments"
    mine.mkdir()
    (mine / "config.yaml").write_text("my notes\n")
    cfg = {**GOOD, "output": {"dir": str(mine), "overwrite": True}}
    path = _write(tmp_path, "c.yaml", cfg)
    _bad(tmp_path, capsys, ["train", path], "not a selfrecon run")
    assert (mine / "config.yaml").read_text() == "my notes\n"


def test_calibrate_writes_the_chosen_denoised_image(tmp_path, capsys):
    """Default: the shrunk J-invariant output; --denoised plain: the plain filter at the optimum."""
    from skimage import data as skdata

    from selfrecon.classical import calibrate
    from selfrecon.data import write_image

    clean = skdata.camera()[::8, ::8].astype(np.float32) / 255.0
    noisy = clean + 0.1 * np.random.default_rng(1).normal(size=clean.shape).astype(np.float32)
    write_image(tmp_path / "noisy.npy", noisy)
    ref = calibrate("gaussian", noisy, [0.5, 1.0, 2.0], noise_var=0.01)
    for choice, expect in (("shrunk", ref.shrink(noise_var=0.01)), ("plain", ref.denoised)):
        out = tmp_path / choice
        argv = ["calibrate", str(tmp_path / "noisy.npy"), "--denoiser", "gaussian", "--grid",
                "0.5,1,2", "--noise-var", "0.01", "-o", str(out)]  # fmt: skip
        if choice != "shrunk":
            argv += ["--denoised", choice]
        assert main(argv) == 0, capsys.readouterr().err
        got = np.load(out / "denoised.npy").squeeze()
        np.testing.assert_allclose(got, np.asarray(expect).squeeze(), atol=1e-5)


def test_probe_fraction_reaches_the_sure_estimator():
    from selfrecon.cli.build import build_experiment, loss_of
    from selfrecon.cli.config import validate_config

    cfg = yaml.safe_load(yaml.safe_dump(GOOD))
    cfg["physics"]["noise"] = {"name": "gaussian", "sigma": 0.1}
    cfg["loss"].update(method="rei", probe_fraction=0.25)
    cfg = validate_config(cfg, "test")
    loss = loss_of(cfg, build_experiment(cfg))
    assert loss.risk.probe_fraction == 0.25


def test_masks_cycle_and_multi_operator_losses_build():
    """``physics.operator.masks`` gives per-item masks; moei/morei build their terms; multi-coil
    MRI is a config operator."""
    import torch

    from selfrecon.cli.build import build_experiment, loss_of
    from selfrecon.cli.config import validate_config

    base = {
        "data": {"name": "brain-mri", "size": 16, "train": 6, "val": 0, "test": 3},
        "physics": {"operator": {"name": "mri", "acceleration": 4, "masks": 3}},
        "loss": {"method": "moei", "group": "rotate"},
    }
    exp = build_experiment(validate_config(base))
    masks = [exp.train[i]["params"]["mask"] for i in range(6)]
    torch.testing.assert_close(masks[0], masks[3])
    assert not torch.equal(masks[0], masks[1])
    assert len(exp.physics_list) == 3
    torch.testing.assert_close(exp.physics_list[1].operator.mask[0], masks[1])
    cfg = validate_config(base)
    names = [type(p).__name__ for p in loss_of(cfg, exp).parts]
    assert names == ["MCLoss", "MOILoss", "EILoss"]
    noisy = {**base, "physics": {**base["physics"], "noise": {"name": "gaussian", "sigma": 0.1}},
             "loss": {"method": "morei", "group": "rotate"}}  # fmt: skip
    cfg = validate_config(noisy)
    loss = loss_of(cfg, build_experiment(cfg))
    assert [type(p).__name__ for p in loss.parts] == ["REILoss", "MOILoss"]
    assert loss.parts[1].noisy
    coils = {**base, "physics": {"operator": {"name": "multicoil_mri", "coils": 3}},
             "loss": {"method": "ei", "group": "rotate"}}  # fmt: skip
    exp = build_experiment(validate_config(coils))
    assert exp.train[0]["y"].shape == (3, 16, 16) and exp.channels == 2


def test_sigma_auto_is_estimated_and_check_compares_it(tmp_path, capsys):
    cfg = {
        **GOOD,
        "data": {"name": "mnist", "size": 32, "train": 16, "val": 0, "test": 2,
                 "noise": {"name": "gaussian", "sigma": 0.1}},
        "physics": {"operator": {"name": "denoising"},
                    "noise": {"name": "gaussian", "sigma": "auto"}},
        "loss": {"method": "rei", "group": "shift", "consistency": "r2r"},
    }  # fmt: skip
    path = _write(tmp_path, "c.yaml", cfg)
    assert main(["check", path, "--no-identify"]) == 0
    out = capsys.readouterr().out
    (line,) = [ln for ln in out.splitlines() if ln.startswith("noise ")]
    assert "auto: gaussian σ = " in line and "95 % CI" in line
    sigma = float(line.split("σ = ")[1].split()[0])
    assert abs(sigma / 0.1 - 1) < 0.1
    assert f"sigma={sigma:g}"[:10] in out  # the physics trains with the estimate
    # a configured level outside the interval is a warning, not silence
    assert main(["check", path, "--no-identify", "--set", "physics.noise.sigma=0.05"]) == 0
    out = capsys.readouterr().out
    assert "warning: configured σ = 0.05 but the measurements give σ =" in out


def test_r2r_training_evaluates_with_the_recorrupted_average(tmp_path, capsys):
    from selfrecon.cli.build import inference_model, load_run
    from selfrecon.models import RecorruptedAverage

    cfg = {
        **GOOD,
        "data": {"name": "mnist", "size": 16, "train": 4, "val": 2, "test": 2},
        "physics": {"operator": {"name": "denoising"}, "noise": {"name": "poisson", "gain": 0.05}},
        "loss": {"method": "r2r", "alpha": 0.7, "recorruptions": 3},
        "output": {"dir": str(tmp_path / "run")},
    }
    path = _write(tmp_path, "c.yaml", cfg)
    assert main(["train", path]) == 0
    assert main(["eval", str(tmp_path / "run")]) == 0
    rcfg, _, _, model = load_run(tmp_path / "run")
    net = inference_model(rcfg, model)
    assert isinstance(net, RecorruptedAverage) and net.count == 3 and net.alpha == 0.7


def test_sigma_auto_on_the_users_own_kspace_files(tmp_path, capsys):
    """k-space written with numpy (centred orthonormal FFT), σ unknown to selfrecon: `check`
    estimates it from the files and trains with the estimate."""
    from selfrecon.data import builtin

    rng = np.random.default_rng(0)
    size, sigma = 48, 0.05
    mask = np.zeros((size, size), np.float32)
    mask[:, rng.choice(size, size // 3, replace=False)] = 1
    mask[:, size // 2 - 3 : size // 2 + 3] = 1
    (tmp_path / "k").mkdir()
    ds = builtin("brain-mri", "train", size, n=24, channels=1, seed=0)
    for i in range(24):
        x = (ds[i] if not isinstance(ds[i], dict) else ds[i]["x"])[0].numpy()
        k = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(x), norm="ortho"))
        noise = sigma * (rng.standard_normal(k.shape) + 1j * rng.standard_normal(k.shape))
        np.save(tmp_path / "k" / f"scan{i}.npy", ((k + noise) * mask).astype(np.complex64))
    np.save(tmp_path / "mask.npy", mask)
    cfg = {
        "data": {"source": "files", "files": "k", "mask_file": "mask.npy"},
        "physics": {"operator": {"name": "mri"}, "noise": {"name": "gaussian", "sigma": "auto"}},
        "model": {"width": 4, "depth": 2},
        "loss": {"method": "rei", "group": "rotate"},
    }
    path = _write(tmp_path, "c.yaml", cfg)
    assert main(["check", path, "--no-identify"]) == 0
    out = capsys.readouterr().out
    (line,) = [ln for ln in out.splitlines() if ln.startswith("noise ")]
    estimate = float(line.split("σ = ")[1].split()[0])
    assert abs(estimate / sigma - 1) < 0.15, line


@pytest.mark.parametrize(
    "operator",
    [
        {"name": "downsampling", "factor": 2},
        {"name": "blur", "kernel": "gaussian", "sigma": 1.5},
        {"name": "blur", "kernel": "motion", "length": 5, "angle": 30},
    ],  # fmt: skip
)
def test_super_resolution_and_deblurring_configs_build_and_train(operator, tmp_path, capsys):
    cfg = {
        **GOOD,
        "data": {"name": "natural", "size": 16, "train": 4, "val": 0, "test": 2},
        "physics": {"operator": operator},
        "loss": {"method": "ei", "group": "scale", "stop_gradient": True},
        "output": {"dir": str(tmp_path / "run")},
    }
    path = _write(tmp_path, "c.yaml", cfg)
    assert main(["check", path, "--no-identify"]) == 0
    out = capsys.readouterr().out
    assert f"physics     {operator['name']}" in out and "stop_gradient=True" in out
    assert main(["train", path]) == 0


def test_init_tasks_in_the_help_are_the_templates():
    from selfrecon.cli.main import INIT_TASKS
    from selfrecon.cli.templates import TASKS

    assert set(INIT_TASKS) == set(TASKS)


def test_noise_parameters_in_the_schema_match_the_library():
    """The schema keeps its own copy (validating a config imports no torch): kept in sync."""
    from selfrecon.cli.config import _NOISE_NEEDS
    from selfrecon.physics.noise import NOISE_PARAMS

    assert _NOISE_NEEDS == NOISE_PARAMS

"""``selfrecon bench``: rows, settings, seeds, validation-only choices, caching, outputs, errors."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
import yaml

from selfrecon.cli.bench import load_experiment
from selfrecon.cli.main import main

CONFIGS = Path(__file__).resolve().parents[2] / "benchmarks" / "configs"

TINY = {
    "data": {"source": "builtin", "name": "usps-like", "size": 16, "train": 8, "val": 4,
             "test": 4, "seed": 0},
    "physics": {"operator": {"name": "cs", "m": 64, "seed": 0}, "noise": {"name": "none"}},
    "model": {"name": "unet", "width": 4, "depth": 2, "init": "pinv", "dc": "projection",
              "zero_init_last": True},
    "loss": {"method": "ei", "group": "shift", "n_trans": 1},
    "train": {"steps": 2, "batch_size": 4, "check_identifiability": False},
    "bench": {
        "title": "tiny",
        "notes": "Analysis: kept in the config, revised without training.",
        "seeds": [0, 1],
        "main": ["EI"],
        "recommended": "EI",
        "settings": [{"name": "a"}, {"name": "b", "set": {"physics.operator.m": 96}}],
        "rows": [
            {"name": "A†y", "classical": "pinv"},
            {"name": "TV", "classical": {"name": "tv", "n_iter": 5}, "grid": {"lam": [0.01, 0.1]}},
            {"name": "MC", "set": {"loss.method": "mc"}, "grid": {"train.lr": [1e-3, 1e-2]}},
            {"name": "EI", "set": {"loss.method": "ei"}},
            {"name": "supervised", "set": {"loss.method": "supervised"}, "settings": ["b"]},
        ],
        "targets": [
            {"row": "MC", "ref": "A†y", "min_gap": -1.0, "max_gap": 1.0},
            {"row": "EI", "ref": "best_classical", "min_gap": 0.0, "settings": ["a"]},
        ],
    },
}  # fmt: skip


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench")
    (root / "configs").mkdir()
    (root / "configs" / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    args = ["bench", "tiny", "--configs", str(root / "configs"), "--out", str(root / "results")]
    assert main(args) == 0
    return root, args


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_bench_writes_tables_figures_and_results_md(bench_run):
    root, _ = bench_run
    res = root / "results"
    for name in ("tiny.csv", "tiny_per_image.csv", "tiny.png", "tiny_samples.png", "tiny.md"):
        assert (res / name).is_file(), name
    rows = _rows(res / "tiny.csv")
    assert [(r["setting"], r["method"]) for r in rows] == [
        ("a", "A†y"), ("a", "TV"), ("a", "MC"), ("a", "EI"),
        ("b", "A†y"), ("b", "TV"), ("b", "MC"), ("b", "EI"), ("b", "supervised"),
    ]  # fmt: skip
    seeds = {(r["setting"], r["method"]): r["seeds"] for r in rows}
    assert seeds[("a", "EI")] == "0 1" and seeds[("a", "MC")] == "0"
    per_image = _rows(res / "tiny_per_image.csv")
    assert len([r for r in per_image if r["setting"] == "a" and r["method"] == "EI"]) == 2 * 4
    md = (root / "RESULTS.md").read_text()
    assert "## tiny: tiny" in md and "| **EI** |" in md and "Targets:" in md
    assert "selfrecon bench tiny" in md and "Identifiability:" in md
    assert "Analysis: kept in the config" in md and "Analysis" not in (res / "tiny.md").read_text()


def test_grid_choices_use_the_validation_split_only(bench_run):
    root, _ = bench_run
    runs = root / "results" / "runs" / "tiny" / "a" / "MC"
    val = {k: json.loads((runs / f"grid{k}" / "seed0" / "bench.json").read_text())["val_psnr"]
           for k in (0, 1)}  # fmt: skip
    best = max(val, key=val.get)
    chosen = next(r for r in _rows(root / "results" / "tiny.csv")
                  if r["setting"] == "a" and r["method"] == "MC")["chosen"]  # fmt: skip
    assert chosen == f"train.lr={[1e-3, 1e-2][best]}"


def test_mc_with_projection_cannot_leave_the_pseudo_inverse(bench_run):
    # zero-initialised residual + dc: f = A†y at the start and the MC gradient is exactly 0
    root, _ = bench_run
    rows = {(r["setting"], r["method"]): r for r in _rows(root / "results" / "tiny.csv")}
    assert abs(float(rows[("a", "MC")]["psnr"]) - float(rows[("a", "A†y")]["psnr"])) < 1e-3


def test_finished_runs_are_reused_unless_forced(bench_run):
    root, args = bench_run
    log = root / "results" / "runs" / "tiny" / "a" / "EI" / "seed0.log"
    before = log.stat().st_mtime_ns
    md = root / "results" / "tiny.md"
    compute = float(re.search(r"([0-9.]+) min of compute in all", md.read_text()).group(1))
    (root / "results" / "peer.md").write_text("## peer: side by side\n")
    assert main(args) == 0
    assert log.stat().st_mtime_ns == before
    # a rerun that reuses every run still reports the compute those runs took (the classical
    # rows, solved again, may differ by milliseconds: one rounding step)
    again = float(re.search(r"([0-9.]+) min of compute in all", md.read_text()).group(1))
    assert abs(again - compute) <= 0.1
    assert "## peer: side by side" in (root / "RESULTS.md").read_text()
    assert main([*args, "--force", "--quick"]) == 0
    assert log.stat().st_mtime_ns != before
    assert "Quick smoke run" in (root / "results" / "tiny.md").read_text()


def test_shipped_benchmark_configs_validate():
    names = sorted(p.stem for p in CONFIGS.glob("*.yaml"))
    assert {"cs", "inpainting", "ct", "mri", "mri_study", "denoising"} <= set(names)
    for p in CONFIGS.glob("*.yaml"):
        raw, bench = load_experiment(p)
        assert "bench" not in raw and bench.rows


def test_bench_errors_are_one_line(tmp_path, capsys):
    (tmp_path / "plain.yaml").write_text(yaml.safe_dump({k: v for k, v in TINY.items()
                                                         if k != "bench"}))  # fmt: skip
    bad = json.loads(json.dumps(TINY))
    bad["bench"]["main"] = ["nope"]
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(bad))
    for name, msg in (("plain", "no bench section"), ("bad", "'nope' is not a row name"),
                      ("missing", "no benchmark 'missing'")):  # fmt: skip
        assert main(["bench", name, "--configs", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and msg in err[0], err


def test_rows_whose_names_share_a_slug_get_distinct_folders():
    from selfrecon.cli.bench import _folders

    folders = _folders(["REI", "REI σ̂", "REI γ̂", "σ=0.1", "supervised"])
    assert len(set(folders.values())) == 5
    assert folders["supervised"] == "supervised" and folders["σ=0.1"] == "0.1"  # unchanged
    assert folders == _folders(["REI", "REI σ̂", "REI γ̂", "σ=0.1", "supervised"])  # stable

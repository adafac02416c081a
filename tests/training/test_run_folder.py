"""RunFolder: the one overwrite policy, registered files, metrics rows and resume truncation."""

import csv

import pytest
import torch

from selfrecon.errors import ConfigError
from selfrecon.training.run_folder import RunFolder, describe, environment


def _prepared(path):
    run = RunFolder(path)
    run.claim(resume=False, overwrite=False)
    run.prepare({"a": 1}, None, environment(0, torch.device("cpu"), 1))
    return run


def test_claim_never_deletes_what_is_not_a_run(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        RunFolder(tmp_path / "file").claim(False, True)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    with pytest.raises(ConfigError, match="not a selfrecon run"):
        RunFolder(mine).claim(False, overwrite=True)
    assert (mine / "notes.txt").read_text() == "keep"


def test_claim_replaces_an_earlier_run_only_when_asked(tmp_path):
    run = _prepared(tmp_path / "run")
    run.write_row({"epoch": 1, "loss": 0.5})
    with pytest.raises(ConfigError, match="already holds a run"):
        RunFolder(tmp_path / "run").claim(False, overwrite=False)
    RunFolder(tmp_path / "run").claim(resume=True, overwrite=False)  # resume keeps it
    assert run.metrics.is_file()
    again = RunFolder(tmp_path / "run")
    again.claim(False, overwrite=True)
    assert not (tmp_path / "run").exists() and again.created
    again.discard_if_empty_run()  # nothing was written: nothing to remove, no error


def test_prepare_writes_descriptions_and_registered_files(tmp_path):
    run = RunFolder(tmp_path / "run")
    run.register("run.pt", lambda p: torch.save({"k": 1}, p))
    run.prepare({"t": torch.ones(20)}, {"train": {"lr": 1}}, {"seed": 0})
    assert (tmp_path / "run" / "spec.yaml").read_text().startswith("t: tensor(20,) float32")
    assert "rerun: selfrecon train" in (tmp_path / "run" / "config.yaml").read_text()
    assert torch.load(tmp_path / "run" / "run.pt") == {"k": 1}
    assert describe(torch.tensor([1.0, 2.0])) == [1.0, 2.0]


def test_rows_gain_columns_and_truncate_on_resume(tmp_path):
    run = _prepared(tmp_path / "run")
    run.write_row({"epoch": 1, "train_total": 0.5})
    run.write_row({"epoch": 2, "train_total": 0.4, "val_psnr": 20.0})
    run.write_row({"epoch": 3, "train_total": 0.3, "val_psnr": 21.0})
    rows = list(csv.DictReader(run.metrics.open()))
    assert [r["val_psnr"] for r in rows] == ["", "20.0", "21.0"]
    resumed = RunFolder(tmp_path / "run")
    resumed.truncate(2)
    resumed.write_row({"epoch": 3, "train_total": 0.25, "val_psnr": 22.0})
    rows = list(csv.DictReader(run.metrics.open()))
    assert [r["epoch"] for r in rows] == ["1", "2", "3"] and rows[-1]["val_psnr"] == "22.0"


def test_other_ranks_write_nothing(tmp_path):
    run = RunFolder(tmp_path / "run", is_main=False)
    run.claim(False, False)
    run.prepare({}, None, {})
    run.log("x")
    run.write_row({"epoch": 1})
    assert not (tmp_path / "run").exists()

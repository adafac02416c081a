"""Two gloo processes on CPU give the same training as one process with the same global batch."""

import csv
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from _training_toys import CFG_DDP, ddp_setup, ddp_worker, mc_loss

from selfrecon.training import Trainer, load_checkpoint


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed unavailable")
def test_two_process_ddp_matches_single_process(tmp_path):
    model, physics, train, val = ddp_setup()
    cfg = dict(CFG_DDP, device="cpu")
    Trainer(
        model, mc_loss(), physics, train, val=val, config=cfg, run_dir=tmp_path / "single"
    ).fit()
    mp.spawn(ddp_worker, args=(2, _free_port(), str(tmp_path / "ddp")), nprocs=2, join=True)
    single = load_checkpoint(tmp_path / "single/checkpoints/last.pt")
    ddp = load_checkpoint(tmp_path / "ddp/checkpoints/last.pt")
    assert ddp["world_size"] == 2 and ddp["step"] == single["step"] == 4
    assert len(ddp["rng"]["ranks"]) == 2
    for k, v in single["model"].items():
        torch.testing.assert_close(ddp["model"][k], v, rtol=1e-4, atol=1e-5)
    # rank 0 alone wrote the run folder; the logged epoch losses agree
    rows = []
    for d in ("single", "ddp"):
        with open(tmp_path / d / "metrics.csv", newline="") as f:
            rows.append(list(csv.DictReader(f)))
    assert len(rows[0]) == len(rows[1]) == 2
    for a, b in zip(*rows, strict=True):
        assert float(a["train_mc"]) == pytest.approx(float(b["train_mc"]), rel=1e-4)
        assert float(a["val_mc"]) == pytest.approx(float(b["val_mc"]), rel=1e-4)

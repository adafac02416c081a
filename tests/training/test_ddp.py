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


def _unsure_worker(rank, world, port, out):
    from selfrecon.losses import UNSURE, Step
    from selfrecon.physics import Denoising, Physics

    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world
    )
    try:
        loss = UNSURE("gaussian", sigma_init=0.1, lr=0.5)
        g = torch.Generator().manual_seed(rank)  # different data and probes on each rank
        y = torch.rand(2, 1, 8, 8, generator=g) * (1 + rank)
        loss(Step(y, Physics(Denoising()), lambda t, p: (1 + rank) * t, g))
        torch.save(loss.learned_state(), f"{out}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed unavailable")
def test_unsure_keeps_one_noise_level_across_ranks(tmp_path):
    mp.spawn(_unsure_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    a, b = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2))
    assert float(a["log_sigma2"]) != 2 * torch.tensor(0.1).log().item()  # it moved
    for k in a:
        torch.testing.assert_close(a[k], b[k])

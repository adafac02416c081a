"""Two gloo processes on CPU give the same training as one process with the same global batch."""

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from _training_toys import DictSet, ToyMC, inpainting, small_model, smooth_images

from selfrecon.training import Trainer, load_checkpoint

CFG = dict(
    epochs=2, batch_size=4, lr=5e-3, plot_every=0, progress="none", check_identifiability=False
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _setup():
    physics = inpainting(16)
    train = DictSet(smooth_images(8, 16), physics)
    val = DictSet(smooth_images(4, 16, seed=1), physics, seed=1)
    # norm="none": batch-norm statistics would be per-rank under DDP (see Trainer docs, sync_bn)
    return small_model(norm="none"), physics, train, val


def _worker(rank: int, world: int, port: int, run_dir: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world),
    )
    torch.set_num_threads(1)
    model, physics, train, val = _setup()
    try:
        Trainer(
            model, ToyMC(), physics, train, val=val, config=dict(CFG, device="cpu"), run_dir=run_dir
        ).fit()
    finally:
        dist.destroy_process_group()


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed unavailable")
def test_two_process_ddp_matches_single_process(tmp_path):
    model, physics, train, val = _setup()
    Trainer(model, ToyMC(), physics, train, val=val, config=CFG, run_dir=tmp_path / "single").fit()
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path / "ddp")), nprocs=2, join=True)
    single = load_checkpoint(tmp_path / "single/checkpoints/last.pt")
    ddp = load_checkpoint(tmp_path / "ddp/checkpoints/last.pt")
    assert ddp["world_size"] == 2 and ddp["step"] == single["step"] == 4
    for k, v in single["model"].items():
        torch.testing.assert_close(ddp["model"][k], v, rtol=1e-4, atol=1e-5)
    # rank 0 alone wrote the run folder; logged epoch losses agree
    import csv

    rows = [list(csv.DictReader(open(tmp_path / d / "metrics.csv"))) for d in ("single", "ddp")]
    for a, b in zip(*rows, strict=True):
        assert float(a["train_mc"]) == pytest.approx(float(b["train_mc"]), rel=1e-4)
        assert float(a["val_mc"]) == pytest.approx(float(b["val_mc"]), rel=1e-4)

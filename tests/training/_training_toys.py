"""Tiny data, models and losses for the Trainer tests (fast on 2 CPU cores)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from selfrecon.models import ArtifactRemoval, UNet
from selfrecon.physics import Inpainting, Physics


def smooth_images(n: int, size: int = 16, seed: int = 0) -> torch.Tensor:
    """Random smooth images in [0, 1]: white noise low-passed by a Gaussian, rescaled per image."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, 1, size, size, generator=g)
    t = torch.arange(-4, 5, dtype=torch.float32)
    k = torch.exp(-0.5 * (t / 2.0) ** 2)
    k = k / k.sum()
    z = F.conv2d(F.pad(z, (4, 4, 0, 0), mode="circular"), k.view(1, 1, 1, -1))
    z = F.conv2d(F.pad(z, (0, 0, 4, 4), mode="circular"), k.view(1, 1, -1, 1))
    z = z - z.amin(dim=(-2, -1), keepdim=True)
    return z / z.amax(dim=(-2, -1), keepdim=True)


class DictSet(torch.utils.data.Dataset):
    """Items ``{"y", "x"}`` (``with_x=False``: ``{"y"}`` only), simulated once with a seed."""

    def __init__(self, images, physics, seed=0, with_x=True):
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            self.y = physics.measure(images, g)
        self.x = images
        self.with_x = with_x

    def __len__(self):
        return self.y.shape[0]

    def __getitem__(self, i):
        item = {"y": self.y[i]}
        if self.with_x:
            item["x"] = self.x[i]
        return item


def inpainting(size: int = 16, rate: float = 0.5, sigma: float | None = None, seed: int = 3):
    from selfrecon.physics import GaussianNoise

    op = Inpainting(
        rate=rate, img_shape=(size, size), generator=torch.Generator().manual_seed(seed)
    )
    return Physics(op, GaussianNoise(sigma) if sigma else None)


def small_model(norm: str = "batch", width: int = 8, depth: int = 2, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return ArtifactRemoval(UNet(1, width=width, depth=depth, norm=norm))


def mc_loss():
    from selfrecon.losses import MCLoss

    return MCLoss()


def ei_loss():
    from selfrecon.groups import Shift
    from selfrecon.losses import EILoss, MCLoss

    return MCLoss() + EILoss(Shift())


class NaNAfter(nn.Module):
    """MC loss that turns NaN after ``n`` calls in training mode."""

    def __init__(self, n: int):
        super().__init__()
        self.n, self.calls = n, 0

    def forward(self, step):
        self.calls += 1
        mc = F.mse_loss(step.physics.A(step.x_hat), step.y)
        return {"mc": mc * float("nan") if self.calls > self.n else mc}


class InterruptAfter(nn.Module):
    """MC + EI that raises KeyboardInterrupt on call ``n`` (simulates Ctrl-C mid-epoch)."""

    def __init__(self, n: int):
        super().__init__()
        self.inner = ei_loss()
        self.n, self.calls = n, 0

    def forward(self, *args, **kwargs):
        self.calls += 1
        if self.calls == self.n:
            raise KeyboardInterrupt
        return self.inner(*args, **kwargs)


CFG_DDP = dict(
    epochs=2, batch_size=4, lr=5e-3, plot_every=0, progress="none", check_identifiability=False
)


def ddp_setup():
    physics = inpainting(16)
    train = DictSet(smooth_images(8, 16), physics)
    val = DictSet(smooth_images(4, 16, seed=1), physics, seed=1)
    # norm="none": batch-norm statistics would be per-rank under DDP (see Trainer docs, sync_bn)
    return small_model(norm="none"), physics, train, val


def ddp_worker(rank: int, world: int, port: int, run_dir: str) -> None:
    """One torchrun-like process: environment variables, then the ordinary Trainer."""
    import os

    import torch.distributed as dist

    from selfrecon.training import Trainer

    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world),
    )
    torch.set_num_threads(1)
    model, physics, train, val = ddp_setup()
    try:
        Trainer(
            model,
            mc_loss(),
            physics,
            train,
            val=val,
            config=dict(CFG_DDP, device="cpu"),
            run_dir=run_dir,
        ).fit()
    finally:
        dist.destroy_process_group()

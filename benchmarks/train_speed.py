"""Training-step speed: supervised vs MC vs EI vs REI, through the Trainer's own step.

Setting (issue 4): 32×32 grey patches from scikit-image's bundled photos, 50 % pixel inpainting,
Gaussian noise σ = 0.1 on the measured pixels, ``ArtifactRemoval(UNet(1, width=16, depth=4))``
(≈0.54 M parameters), batch 16, 2 threads. Each row is the median wall time of one optimizer step
(``Trainer._train_step``: forward passes, loss, backward, Adam) after warm-up.

Targets: EI/supervised ≤ 2.0 and REI/supervised ≤ 2.5 — the network passes each loss needs
(EI: 2 forward passes, REI: f(y) and f(y + τb) batched as one pass of 2B, plus f(A x₂ + n)),
no more.
If ``deepinv`` is importable, its MCLoss + EILoss on the same data/network size/batch is timed too.

Wall-clock and process-CPU medians are both printed (CPU time is steadier on a shared machine).

Usage: ``python benchmarks/train_speed.py [--steps 30] [--warmup 5] [--variants]``
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import numpy as np
import torch

from selfrecon.groups import Shift
from selfrecon.losses import EILoss, MCLoss, REILoss, SupervisedLoss
from selfrecon.models import ArtifactRemoval, UNet, count_parameters
from selfrecon.physics import GaussianNoise, Inpainting, Physics
from selfrecon.training import Trainer


def patches(n: int = 256, size: int = 32, seed: int = 0) -> torch.Tensor:
    """Random ``size``² grey patches in [0, 1] from scikit-image's bundled photos."""
    from skimage import color, data, img_as_float

    photos = [data.camera(), data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]
    grey = [
        img_as_float(color.rgb2gray(p) if p.ndim == 3 else p).astype(np.float32) for p in photos
    ]
    rng = np.random.default_rng(seed)
    out = np.empty((n, 1, size, size), dtype=np.float32)
    for i in range(n):  # setup only, not timed
        img = grey[rng.integers(len(grey))]
        r, c = rng.integers(0, img.shape[0] - size), rng.integers(0, img.shape[1] - size)
        out[i, 0] = img[r : r + size, c : c + size]
    return torch.from_numpy(out)


def make_batch(x: torch.Tensor, physics: Physics, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {"y": physics.measure(x, g), "x": x}


def time_steps(trainers: dict, batches: list[dict], steps: int, warmup: int) -> dict:
    """Median ms per step of each trainer, stepping them round-robin.

    Interleaving makes the ratios robust to load changes on a shared machine: every loss sees the
    same background load.
    """
    times: dict = {name: [] for name in trainers}
    cpu: dict = {name: [] for name in trainers}
    for i in range(warmup + steps):
        for name, trainer in trainers.items():
            t0, c0 = time.perf_counter(), time.process_time()
            trainer._train_step(batches[i % len(batches)])
            if i >= warmup:
                times[name].append(time.perf_counter() - t0)
                cpu[name].append(time.process_time() - c0)
    out = {name: statistics.median(t) * 1e3 for name, t in times.items()}
    out.update({f"{name} cpu": statistics.median(t) * 1e3 for name, t in cpu.items()})
    return out


def run(steps: int, warmup: int, channels_last: bool, norm: str, batch: int = 16) -> dict:
    torch.manual_seed(0)
    physics = Physics(
        Inpainting(rate=0.5, img_shape=(32, 32), generator=torch.Generator().manual_seed(1)),
        GaussianNoise(0.1),
    )
    x = patches(4 * batch)
    batches = [make_batch(x[i * batch : (i + 1) * batch], physics, i) for i in range(4)]
    losses = {
        "supervised": SupervisedLoss(),
        "MC": MCLoss(),
        "EI (shifts)": MCLoss() + EILoss(Shift()),
        "REI (σ=0.1)": REILoss(Shift()),
    }
    trainers = {}
    cfg = dict(
        batch_size=batch,
        lr=1e-4,
        progress="none",
        plot_every=0,
        device="cpu",
        check_identifiability=False,
        channels_last=channels_last,
    )
    with tempfile.TemporaryDirectory() as d:
        for name, loss in losses.items():
            torch.manual_seed(0)
            model = ArtifactRemoval(UNet(1, width=16, depth=4, norm=norm))
            trainers[name] = Trainer(model, loss, physics, batches, config=cfg, run_dir=d)
        out = time_steps(trainers, batches, steps, warmup)
    out["params"] = count_parameters(model)
    return out


def deepinv_ei(steps: int, warmup: int, batch: int = 16) -> float | None:
    """deepinv's MCLoss + EILoss(Shift) step with the SAME network (our UNet, width 16, BN).

    The network is shared so that only the loss machinery and the step differ.
    """
    try:
        import deepinv as dinv
    except ImportError:
        return None

    class Recon(torch.nn.Module):  # f(y) = G(Aᵀ y), as deepinv's ArtifactRemoval
        def __init__(self):
            super().__init__()
            self.backbone = UNet(1, width=16, depth=4)

        def forward(self, y, physics, **kwargs):
            return self.backbone(physics.A_adjoint(y))

    torch.manual_seed(0)
    mask = (torch.rand(1, 32, 32, generator=torch.Generator().manual_seed(1)) < 0.5).float()
    physics = dinv.physics.Inpainting(tensor_size=(1, 32, 32), mask=mask)
    physics.noise_model = dinv.physics.GaussianNoise(sigma=0.1)
    model = Recon()
    losses = [dinv.loss.MCLoss(), dinv.loss.EILoss(dinv.transform.Shift())]
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    x = patches(4 * batch)[:batch]
    y = physics(x)
    times = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        opt.zero_grad()
        x_net = model(y, physics)
        total = sum(loss(x_net=x_net, y=y, physics=physics, model=model).mean() for loss in losses)
        total.backward()
        opt.step()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--variants", action="store_true", help="also time channels_last and norm='none' variants"
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    variants = [("batch-norm, contiguous", False, "batch")]
    if args.variants:
        variants += [
            ("batch-norm, channels_last", True, "batch"),
            ("no norm, contiguous", False, "none"),
        ]
    print(
        f"torch {torch.__version__}, {args.threads} threads, batch 16, 32×32, "
        f"median of {args.steps} steps after {args.warmup} warm-up"
    )
    for label, cl, norm in variants:
        r = run(args.steps, args.warmup, cl, norm)
        print(f"\n{label}  (UNet {r['params'] / 1e6:.2f} M parameters)")
        print(f"{'loss':<14}{'ms/step':>10}{'÷ supervised':>15}{'CPU ms/step':>13}{'÷ sup.':>8}")
        for name in ("supervised", "MC", "EI (shifts)", "REI (σ=0.1)"):
            c, cs = r[f"{name} cpu"], r["supervised cpu"]
            print(f"{name:<14}{r[name]:>10.1f}{r[name] / r['supervised']:>15.2f}"
                  f"{c:>13.1f}{c / cs:>8.2f}")
        ei, rei = r["EI (shifts)"] / r["supervised"], r["REI (σ=0.1)"] / r["supervised"]
        print(
            f"EI/supervised {ei:.2f} (target ≤ 2.0: {'ok' if ei <= 2.0 else 'MISSED'}); "
            f"REI/supervised {rei:.2f} (target ≤ 2.5: {'ok' if rei <= 2.5 else 'MISSED'})"
        )
        if label == variants[0][0]:
            d = deepinv_ei(args.steps, args.warmup)
            if d is None:
                print("deepinv not importable: no comparison")
            else:
                print(
                    f"deepinv MC+EI {d:.1f} ms/step; selfrecon speed-up "
                    f"{d / r['EI (shifts)']:.2f}× (target ≥ 1.3×)"
                )


if __name__ == "__main__":
    main()

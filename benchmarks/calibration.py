"""Self-supervised calibration of classical denoisers (Noise2Self without a network).

For each photo and denoiser: the parameter chosen by the self-supervised loss (no clean image),
the PSNR of the plain denoiser at that parameter, the best PSNR over the same grid (chosen with the
clean image), and the regret = best − chosen (target ≤ 0.3 dB). The J-invariant columns show the
same for f_J (whose error the loss estimates), and "shrunk" the optimal shrinkage of f_J toward the
noisy image with σ² estimated from the image.

Setting of the Noise2Self notebook: Gaussian noise of variance 0.01 (σ = 0.1), clipped to [0, 1]
as skimage.util.random_noise does, grid masks of width 4. Noise drawn from a seeded torch.Generator.

    python benchmarks/calibration.py                   # camera, astronaut (grey), coins
    python benchmarks/calibration.py --images camera --denoisers median,nlmeans
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from selfrecon.classical import DENOISERS, calibrate, psnr

GRIDS = {
    "median": [1, 2, 3, 4, 5, 6],
    "gaussian": [0.5, 0.75, 1.0, 1.25, 1.5, 2.0],
    "wavelet": [0.04, 0.06, 0.08, 0.1, 0.12, 0.15],
    "tv": [0.04, 0.06, 0.08, 0.1, 0.13],
    "nlmeans": [0.05, 0.07, 0.09, 0.12],
}


def load(name: str) -> np.ndarray:
    from skimage import data, img_as_float
    from skimage.color import rgb2gray

    img = img_as_float(getattr(data, name)())
    return rgb2gray(img) if img.ndim == 3 else img


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", default="camera,astronaut,coins")
    ap.add_argument("--denoisers", default=",".join(GRIDS))
    ap.add_argument("--sigma", type=float, default=0.1)
    ap.add_argument("--width", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))

    head = (
        f"{'image':<10} {'denoiser':<9} {'param':<7} {'chosen':>7} {'PSNR':>6} {'best':>6} "
        f"{'at':>6} {'regret':>6} | {'J PSNR':>6} {'J best':>6} {'J reg':>5} {'shrunk':>6} "
        f"| {'time s':>6}"
    )
    print(f"noise σ = {args.sigma} (clipped), grid width {args.width}, seed {args.seed}")
    print(head)
    print("-" * len(head))
    worst = 0.0
    t_all = time.perf_counter()
    for img_name in args.images.split(","):
        x = load(img_name)
        g = torch.Generator().manual_seed(args.seed)
        noise = args.sigma * torch.randn(x.shape, generator=g, dtype=torch.float64).numpy()
        y = np.clip(x + noise, 0.0, 1.0)
        size = f"({x.shape[0]}×{x.shape[1]})"
        print(f"{img_name:<10} {'noisy':<9} {'':<7} {'':>7} {psnr(y, x):6.2f}   {size}")
        for den in args.denoisers.split(","):
            grid = GRIDS.get(den, list(DENOISERS[den].default_grid))
            t0 = time.perf_counter()
            r = calibrate(den, y, grid, ground_truth=x, width=args.width)
            dt = time.perf_counter() - t0
            i = r.params.index(r.best)
            p_plain, p_j = r.psnr_plain, r.psnr
            regret = float(p_plain.max() - p_plain[i])
            regret_j = float(p_j.max() - p_j[i])
            worst = max(worst, regret)
            shr = psnr(r.shrunk, x)
            print(
                f"{img_name:<10} {den:<9} {r.param_name:<7} {r.best:>7} {p_plain[i]:6.2f} "
                f"{p_plain.max():6.2f} {r.best_true_plain:>6} {regret:6.2f} | {p_j[i]:6.2f} "
                f"{p_j.max():6.2f} {regret_j:5.2f} {shr:6.2f} | {dt:6.1f}",
                flush=True,
            )
    print(f"worst regret {worst:.2f} dB (target ≤ 0.3); total {time.perf_counter() - t_all:.0f} s")


if __name__ == "__main__":
    main()

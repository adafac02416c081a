"""Speed of the identifiability check (selfrecon.theory.identifiability) on the CPU.

    python benchmarks/identifiability.py [--threads 2] [--repeats 3] [--size-fft 256] [--size-mf 64]
                                         [--size-large 96]

Three blocks of rows:

* FFT path, 256×256, the full cyclic shift group (|G| = 65 536): MRI (4× Cartesian mask, complex
  images), inpainting (30 % removed), 2×2 box blur and 2× super-resolution. Target: < 1 s each.
* 64×64, non-shift groups, ``method="auto"`` (the Gram path: exact ``S``, split into the isotypic
  blocks of the quarter turn): MRI + Rotate90*Flip (real images), inpainting + Rotate90, CT (32
  views) + Rotate90, MRI + 36 rotation angles (interpolating). Target: < 30 s each.
* matrix-free (LOBPCG) beyond the Gram path's size, ``--size-large`` (default 96, ``n = 9216``):
  inpainting + Rotate90, whose nullspace is spanned by the pixels whose whole orbit is unobserved
  (72 with the seed used); LOBPCG with ``k = 16`` can only certify "null ≥ 16". Informative only
  (no target); ``--size-large 0`` skips it.

Each time is the median over ``--repeats`` runs of ``identifiability(..., recommend=False)`` (the
recommendation re-runs the check for five candidate groups). Seeds are fixed.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from selfrecon.groups import Flip, Rotate, Rotate90, Shift
from selfrecon.physics import Inpainting
from selfrecon.physics.blur import Blur, Downsampling
from selfrecon.physics.mri import MRI, mri_mask
from selfrecon.physics.tomography import Tomography
from selfrecon.theory import identifiability


def cases(size_fft: int, size_mf: int, size_large: int):
    g = torch.Generator().manual_seed(0)
    s, t = size_fft, size_mf
    fft = [
        ("MRI 4x + Shift", MRI(mri_mask((s, s), 4, 0.08, generator=g)), Shift(), {}),
        (
            "inpainting 30% + Shift",
            Inpainting(rate=0.7, img_shape=(s, s), generator=g),
            Shift(),
            {},
        ),
        ("2x2 box blur + Shift", Blur(torch.full((2, 2), 0.25), img_shape=(s, s)), Shift(), {}),
        ("2x SR + Shift", Downsampling(2, img_shape=(s, s)), Shift(), {}),
    ]
    mf = [
        (
            "MRI 4x (real) + Rotate90*Flip",
            MRI(mri_mask((t, t), 4, 0.08, generator=g)),
            Rotate90() * Flip(),
            {"real_images": True},
        ),
        (
            "inpainting 30% + Rotate90",
            Inpainting(rate=0.7, img_shape=(t, t), generator=g),
            Rotate90(),
            {},
        ),
        ("CT 32 views + Rotate90", Tomography(32, t), Rotate90(), {"img_shape": (1, t, t)}),
        (
            "MRI 4x (real) + Rotate 36 angles",
            MRI(mri_mask((t, t), 4, 0.08, generator=g)),
            Rotate(),
            {"real_images": True},
        ),
    ]
    large = []
    if size_large:
        u = size_large
        large.append(
            (
                "inpainting 30% + Rotate90",
                Inpainting(rate=0.7, img_shape=(u, u), generator=g),
                Rotate90(),
                {"k": 16},
            )
        )
    return (
        [("fft", s, *c) for c in fft]
        + [("auto", t, *c) for c in mf]
        + [("matrix_free", size_large, *c) for c in large]
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--size-fft", type=int, default=256)
    ap.add_argument("--size-mf", type=int, default=64)
    ap.add_argument("--size-large", type=int, default=96)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    head = f"{'case':34s} {'size':>7s} {'n':>7s} {'m':>7s} {'|G|':>6s} {'method':>11s} "
    head += f"{'verdict':>17s} {'rank / null':>14s} {'seconds':>8s} {'target':>6s}"
    print(head)
    print("-" * len(head))
    for method, size, name, op, group, kw in cases(args.size_fft, args.size_mf, args.size_large):
        times, rep = [], None
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            rep = identifiability(op, group, method=method, recommend=False, **kw)
            times.append(time.perf_counter() - t0)
        sec = statistics.median(times)
        if rep.rank is not None:
            rk = f"{rep.rank}"
        else:
            rk = f"null {'≥' if rep.nullspace_dim_is_lower_bound else ''}{rep.nullspace_dim}"
        target = {"fft": 1.0, "auto": 30.0}.get(method)
        ok = "-" if target is None else "ok" if sec < target else "SLOW"
        print(
            f"{name:34s} {size:>4d}²  {rep.n:>7d} {rep.m:>7d} {rep.group_order:>6d} "
            f"{rep.method:>11s} "
            f"{rep.verdict:>17s} {rk:>14s} {sec:>8.3f} {ok:>6s}"
        )


if __name__ == "__main__":
    main()

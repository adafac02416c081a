r"""Cheap structure tests on ``AᵀA`` by random probes, shared by the identifiability paths.

A Gaussian probe ``x`` detects, almost surely, whether ``AᵀA`` is pixel-diagonal, commutes with
shifts by a period ``(p_h, p_w)``, or commutes with every ``T_g`` of an exact group; the FFT and
Gram paths then assemble their matrices from a few impulse responses instead of ``n`` of them.
"""

from __future__ import annotations

import torch
from torch import Tensor

from selfrecon.theory._groups import GroupAction
from selfrecon.theory._linear import RealMap

__all__ = ["close", "divisors", "fft_structure", "equivariant_exact"]


def divisors(n: int, limit: int = 8) -> list[int]:
    """Candidate periods: divisors of ``n`` below ``n`` and at most ``limit``."""
    return [p for p in range(1, min(n - 1, limit) + 1) if n % p == 0]


def close(a: Tensor, b: Tensor, tol: float) -> bool:
    scale = max(float(a.norm()), float(b.norm()), 1e-300)
    return float((a - b).norm()) <= tol * scale


def fft_structure(rm: RealMap, generator: torch.Generator) -> tuple[str, object]:
    """Detect ``AᵀA`` = pixel-diagonal, or shift-invariant with period ``(p_h, p_w)``.

    One random probe ``x``: ``AᵀA`` is pixel-diagonal iff ``AᵀA x = AᵀA(1) ⊙ x`` and commutes with
    the shift by ``p`` iff ``AᵀA T_p x = T_p AᵀA x`` (almost surely, for a Gaussian ``x``). Period 1
    is tried first; other divisors (≤ 8) only when it fails.
    """
    c, h, w = rm.sig_shape
    tol = max(1e-8, 1e4 * rm.eps)
    x = torch.randn((1, c, h, w), generator=generator, dtype=torch.float64)
    first = [x, torch.ones_like(x)]
    if h > 1:
        first.append(torch.roll(x, 1, dims=-2))
    if w > 1:
        first.append(torch.roll(x, 1, dims=-1))
    out = rm.normal_images(torch.cat(first, dim=0))
    kx, d = out[:1], out[1:2]
    if close(kx, d * x, tol):
        return "diagonal", d

    def commutes(resp: Tensor, p: int, dim: int) -> bool:
        return close(resp, torch.roll(kx, p, dims=dim), tol)

    ph = 1 if h == 1 or commutes(out[2:3], 1, -2) else None
    pw = 1 if w == 1 or commutes(out[-1:], 1, -1) else None
    if ph is None or pw is None:
        more_h = [p for p in divisors(h) if p > 1] if ph is None else []
        more_w = [p for p in divisors(w) if p > 1] if pw is None else []
        batch = [torch.roll(x, p, dims=-2) for p in more_h] + [
            torch.roll(x, p, dims=-1) for p in more_w
        ]
        if batch:
            res = rm.normal_images(torch.cat(batch, dim=0))
            if ph is None:
                ph = next(
                    (p for i, p in enumerate(more_h) if commutes(res[i : i + 1], p, -2)), None
                )
            res = res[len(more_h) :]
            if pw is None:
                pw = next(
                    (p for i, p in enumerate(more_w) if commutes(res[i : i + 1], p, -1)), None
                )
    if ph is not None and pw is not None:
        return "periodic", (ph, pw)
    return "generic", None


def equivariant_exact(rm: RealMap, ga: GroupAction, generator) -> bool | None:
    """Does ``AᵀA`` commute with every ``T_g`` (exact groups; one random probe)?"""
    if not ga.exact or ga.src is None or ga.order > 4096:
        return None
    x = torch.randn((1, *rm.sig_shape), generator=generator, dtype=torch.float64)
    tx = ga.forward_all(x)[:, 0]
    ktx = rm.normal_images(tx)
    tkx = ga.forward_all(rm.normal_images(x))[:, 0]
    return close(ktx, tkx, max(1e-8, 1e4 * rm.eps))

r"""The FFT path, for the full cyclic shift group.

``S`` commutes with shifts, so it is diagonal in the 2-D DFT and its eigenvalue at frequency ω is
``|G|·‖A e_ω‖²`` (``e_ω`` the unit Fourier mode; a ``C × C`` block for ``C`` channels).
``‖A e_ω‖² = e_ωᴴ AᵀA e_ω`` is read off cheaply when ``AᵀA`` has structure
(:func:`selfrecon.theory._structure.fft_structure`): pixel-diagonal ``AᵀA = diag(d)``
(inpainting) gives ``mean(d)`` at every ω; ``AᵀA`` commuting with shifts by ``(p_h, p_w)`` (MRI,
circular blur, denoising; 2× downsampling) is fixed by ``C·p_h·p_w`` impulse responses. Otherwise
all Fourier modes go through ``A`` in batches (cos and sin parts, exact, ``2·C·n`` applications).
"""

from __future__ import annotations

import math
import time

import torch
from torch import Tensor

from selfrecon.theory._groups import GroupAction
from selfrecon.theory._linear import RealMap
from selfrecon.theory._structure import fft_structure
from selfrecon.theory.spectrum import Spectrum, from_eigenvalues

__all__ = ["fft_spectrum", "fourier_blocks", "block_eigvalsh"]


def block_eigvalsh(G: Tensor) -> Tensor:
    """Eigenvalues of Hermitian ``(…, C, C)`` blocks; closed forms for ``C ≤ 2`` (fast at 256²)."""
    c = G.shape[-1]
    if c == 1:
        return G[..., 0, 0].real.reshape(-1)
    if c == 2:
        a, d = G[..., 0, 0].real, G[..., 1, 1].real
        b = G[..., 0, 1]
        mean = 0.5 * (a + d)
        rad = torch.sqrt((0.5 * (a - d)) ** 2 + b.abs() ** 2)
        return torch.stack([mean - rad, mean + rad], -1).reshape(-1)
    return torch.linalg.eigvalsh(G).reshape(-1)


def fourier_blocks(
    rm: RealMap, generator: torch.Generator, deadline: float
) -> tuple[Tensor | None, str, bool]:
    r"""``G_ω[c', c] = e_{ω,c'}ᴴ AᵀA e_{ω,c}`` for all ω: ``(H, W, C, C)`` complex; and the
    structure.

    The third value says whether ``AᵀA`` commutes with all shifts (A is shift-equivariant).
    """
    c, h, w = rm.sig_shape
    kind, info = fft_structure(rm, generator)
    if kind == "diagonal":
        mean = info.reshape(c, h * w).mean(-1)  # per channel
        G = torch.zeros((h, w, c, c), dtype=torch.complex128)
        G[..., torch.arange(c), torch.arange(c)] = mean.to(torch.complex128)
        const = bool((info == info.reshape(c, -1)[:, :1, None].reshape(1, c, 1, 1)).all())
        return G, "pixel-diagonal AᵀA", const
    kh = torch.arange(h, dtype=torch.float64)
    kw = torch.arange(w, dtype=torch.float64)
    if kind == "periodic":
        ph, pw = info
        a = torch.arange(ph)
        b = torch.arange(pw)
        probes = torch.zeros((c, ph, pw, c, h, w), dtype=torch.float64)
        ci, ai, bi = torch.meshgrid(torch.arange(c), a, b, indexing="ij")
        probes[ci, ai, bi, ci, ai, bi] = 1.0
        resp = rm.normal_images(probes.reshape(-1, c, h, w)).reshape(c, ph, pw, c, h, w)
        spec = torch.fft.fft2(resp)  # Σ_x e^{-iωx} R(x): (c_in, a, b, c_out, H, W)
        phase = torch.exp(
            2j
            * math.pi
            * (
                a[:, None, None, None].double() * kh[None, None, :, None] / h
                + b[None, :, None, None].double() * kw[None, None, None, :] / w
            )
        )  # (a, b, H, W)
        G = (spec * phase[None, :, :, None]).sum(dim=(1, 2)) / (ph * pw)  # (c_in, c_out, H, W)
        G = G.permute(2, 3, 1, 0).contiguous()  # (H, W, c_out, c_in)
        return G, f"AᵀA commutes with shifts by {(ph, pw)}", (ph, pw) == (1, 1)
    # generic: every Fourier mode through A (cos and sin parts)
    n_freq = h * w
    chunk = max(1, 2**22 // max(1, 2 * c * max(rm.n, rm.m)))
    ii = torch.arange(h, dtype=torch.float64)[:, None]
    jj = torch.arange(w, dtype=torch.float64)[None, :]
    blocks = []
    for start in range(0, n_freq, chunk):
        if time.perf_counter() > deadline:
            return None, "generic (time budget exceeded)", False
        f = torch.arange(start, min(n_freq, start + chunk))
        fh, fw = (f // w).double(), (f % w).double()
        ang = 2 * math.pi * (fh[:, None, None] * ii / h + fw[:, None, None] * jj / w)
        mode = torch.exp(1j * ang) / math.sqrt(h * w)  # (F, H, W)
        imgs = torch.zeros((f.numel(), c, c, h, w), dtype=torch.complex128)
        imgs[:, torch.arange(c), torch.arange(c)] = mode[:, None]
        imgs = imgs.reshape(-1, c * h * w)
        y = torch.complex(rm.forward(imgs.real.contiguous()), rm.forward(imgs.imag.contiguous()))
        y = y.reshape(f.numel(), c, -1)
        blocks.append(torch.einsum("fim,fjm->fij", y.conj(), y))
    G = torch.cat(blocks).reshape(h, w, c, c)
    return G, "generic (all Fourier modes through A)", False


def _fft_eigenvalues(rm: RealMap, ga: GroupAction, generator, deadline):
    G, structure, equiv = fourier_blocks(rm, generator, deadline)
    if G is None:
        return None, structure, equiv
    G = 0.5 * (G + G.conj().transpose(-1, -2))
    eigs = block_eigvalsh(G).numpy() * ga.order
    return eigs, structure, equiv


def fft_spectrum(rm: RealMap, ga: GroupAction, tol: float, generator, deadline: float) -> Spectrum:
    """The Fourier-mode eigenvalues of ``S``; undetermined when the time budget runs out."""
    eigs, structure, equiv = _fft_eigenvalues(rm, ga, generator, deadline)
    notes = [f"FFT path: {structure}"]
    if eigs is None:
        why = "the time budget ran out before all Fourier modes were measured"
        return Spectrum("fft", tol, equivariant=equiv, notes=notes, undetermined=why)
    spec = from_eigenvalues("fft", eigs, rm.n, tol, equivariant=equiv, notes=notes)
    if equiv:  # S = |G| AᵀA: the group adds nothing, rank of A alone is the same
        spec.rank_operator = spec.rank
    return spec

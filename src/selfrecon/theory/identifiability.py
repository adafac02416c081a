r"""Can this operator and this group be learned from measurements alone? The sensing theorems.

Tachella, Chen & Davies, "Sensing Theorems for Unsupervised Learning in Linear Inverse Problems",
JMLR 24 (2023) — with an invariant signal set, the measurements ``y = A x`` of many signals identify
the signal model only if

1. the stacked operator ``[A T_1; …; A T_|G|]`` has rank ``n`` (Thm. 1/Prop. 3): equivalently
   ``S = Σ_g T_gᵀ AᵀA T_g`` is positive definite. If ``A`` is equivariant (``AᵀA T_g = T_g AᵀA``)
   then ``S = |G| AᵀA`` and the group adds nothing;
2. ``m ≥ max_j c_j / s_j`` (Thm. 3), ``c_j``/``s_j`` the multiplicity/dimension of the ``j``-th
   irreducible representation of the action (:mod:`selfrecon.theory.characters`); typically
   ``n/|G|``.

:func:`identifiability` checks both and picks how to compute ``rank S`` (see
:func:`identifiability`):

* ``"dense"`` — ``A`` as a matrix ``M`` (identity basis through the operator), ``K = MᵀM`` and
  ``S = Σ_g P_gᵀ K P_g`` (index gathers for permutations, ``T_gᵀ K T_g`` otherwise); the rank counts
  singular values ``σ_i = √λ_i(S)`` above ``tol · σ_max``;
* ``"fft"`` — the full cyclic shift group: ``S`` commutes with shifts, so it is diagonal in the 2-D
DFT
  and its eigenvalue at frequency ω is ``|G|·‖A e_ω‖²`` (``e_ω`` the unit Fourier mode; a ``C × C``
  block for ``C`` channels). ``‖A e_ω‖² = e_ωᴴ AᵀA e_ω`` is read off cheaply when ``AᵀA`` has
  structure, which is *detected numerically* (two random probes): pixel-diagonal ``AᵀA = diag(d)``
  (inpainting) gives ``mean(d)`` at every ω; ``AᵀA`` commuting with shifts by ``(p_h, p_w)`` (``p =
  1``:
  MRI, circular blur, denoising — the eigenvalues are the k-space mask or ``|H(ω)|²``; ``p = 2``:
  2× downsampling) is fixed by its responses to ``C·p_h·p_w`` impulses (one FFT each). Otherwise all
  Fourier modes go through ``A`` in batches (cos and sin parts, exact, ``2·C·n`` applications);
* ``"gram"`` — moderate ``n`` (``DENSE_MAX_N < n ≤ GRAM_MAX_N``, e.g. 64×64 images): ``K = AᵀA``
  assembled exactly (from impulse responses when ``AᵀA`` commutes with shifts), every ``T_g`` as a
  sparse local map measured from the group's ``apply`` (≤ 4 sources per pixel for bilinear
  resampling), and ``S`` split into the isotypic blocks of a cyclic pixel symmetry it commutes with
  (a quarter turn or a flip), all eigenvalues by ``eigvalsh``
  (:mod:`selfrecon.theory._gram`);
* ``"matrix_free"`` — the smallest eigenvalues of ``S`` by LOBPCG (Knyazev, SIAM J. Sci. Comput.
2001)
  on a block of ``k`` vectors, ``S`` applied with ``A``, ``Aᵀ`` and the group actions only; the
  near-nullspace dimension is the number of Ritz values below ``tol_mf² · λ_max``, a lower bound
  when all ``k`` are below it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from selfrecon.errors import ConfigError
from selfrecon.groups import Flip, Group, Rotate, Rotate90, Shift
from selfrecon.physics.base import LinearOperator
from selfrecon.physics.physics import Physics
from selfrecon.theory._gram import (
    GRAM_MAX_N,
    full_S,
    gram_eigenvalues,
    gram_matrix,
    local_maps,
)
from selfrecon.theory._groups import GroupAction, group_label
from selfrecon.theory._linear import RealMap
from selfrecon.theory.characters import Multiplicities, multiplicities

__all__ = ["Report", "identifiability", "quick_check", "candidate_groups", "VERDICTS"]

VERDICTS = ("identifiable", "not identifiable", "undetermined")
_METHODS = ("auto", "dense", "gram", "fft", "matrix_free")
#: Largest ``n`` the automatic choice sends to the dense path.
DENSE_MAX_N = 2304
#: Relative singular-value threshold of the matrix-free path (its Ritz values are less accurate).
MATRIX_FREE_TOL = 1e-3


@dataclass
class Report:
    r"""The answer of :func:`identifiability`; ``str(report)`` is the readable summary.

    ``rank`` is the rank of the stacked operator ``[A T_g]_g`` (equivalently of ``S``), where known;
    ``rank_operator`` that of ``A`` alone. ``min_eigenvalue``/``max_eigenvalue`` are those of ``S``.
    ``bound`` is ``max_j c_j/s_j`` (``bound_method`` says how it was obtained) and
    ``bound_satisfied``
    is ``m ≥ bound``. ``verdict`` is one of :data:`VERDICTS`.
    """

    operator: str
    group: str
    n: int
    m: int
    group_order: int
    method: str
    rank: int | None = None
    rank_operator: int | None = None
    min_eigenvalue: float | None = None
    max_eigenvalue: float | None = None
    nullspace_dim: int | None = None
    nullspace_dim_is_lower_bound: bool = False
    multiplicities: list[tuple[int, int]] | None = None
    bound: float = 0.0
    bound_method: str = ""
    bound_satisfied: bool = True
    equivariant: bool | None = None
    verdict: str = "undetermined"
    reason: str = ""
    recommendation: list[str] = field(default_factory=list)
    recommendation_notes: list[str] = field(default_factory=list)
    tol: float = 0.0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def identifiable(self) -> bool:
        return self.verdict == "identifiable"

    def __str__(self) -> str:
        lines = [
            f"identifiability of {self.operator} with group {self.group}: {self.verdict.upper()}",
            f"  signal dimension n = {self.n}, real measurements m = {self.m}, "
            f"|G| = {self.group_order}",
        ]
        if self.rank is not None:
            extra = f" (A alone: {self.rank_operator})" if self.rank_operator is not None else ""
            lines.append(f"  rank of stacked [A T_g] = {self.rank} of {self.n}{extra}")
        if self.nullspace_dim is not None:
            ge = "≥ " if self.nullspace_dim_is_lower_bound else ""
            lines.append(f"  nullspace of S = Σ T_gᵀAᵀA T_g: dimension {ge}{self.nullspace_dim}")
        if self.min_eigenvalue is not None and self.max_eigenvalue:
            lines.append(
                f"  eigenvalues of S: min {self.min_eigenvalue:.3g}, max {self.max_eigenvalue:.3g} "
                f"(ratio {self.min_eigenvalue / self.max_eigenvalue:.2g})"
            )
        ok = "holds" if self.bound_satisfied else "FAILS"
        lines.append(f"  bound m ≥ max_j c_j/s_j = {self.bound:.4g} ({self.bound_method}): {ok}")
        if self.multiplicities:
            pairs = ", ".join(f"{c}×dim{s}" for c, s in self.multiplicities)
            lines.append(f"  irreducible representations (multiplicity×dimension): {pairs}")
        if self.equivariant is not None:
            lines.append(f"  A equivariant to the group: {'yes' if self.equivariant else 'no'}")
        lines.append(f"  reason: {self.reason}")
        if self.recommendation:
            lines.append(f"  groups that make it identifiable: {', '.join(self.recommendation)}")
        for note in self.recommendation_notes:
            lines.append(f"  note: {note}")
        for note in self.notes:
            lines.append(f"  note: {note}")
        lines.append(f"  method: {self.method}, tol {self.tol:.1e}, {self.seconds:.2f} s")
        return "\n".join(lines)


# ------------------------------------------------------------------------------------------
# paths
# ------------------------------------------------------------------------------------------
def _rank_from_eigs(eigs: np.ndarray, tol: float) -> tuple[int, float, float]:
    """Rank counting ``σ = √λ > tol·σ_max``; returns ``(rank, λ_min, λ_max)``."""
    eigs = np.clip(np.asarray(eigs, dtype=float), 0.0, None)
    lmax = float(eigs.max()) if eigs.size else 0.0
    if lmax <= 0.0:
        return 0, 0.0, 0.0
    rank = int((np.sqrt(eigs) > tol * math.sqrt(lmax)).sum())
    return rank, float(eigs.min()), lmax


def _dense(rm: RealMap, ga: GroupAction) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues of ``S`` and singular values² of ``A`` by dense linear algebra."""
    M = rm.dense()
    K = M.T @ M
    if ga.src is not None:
        c = rm.sig_shape[0]
        hw = ga.src.shape[-1]
        # coordinate index (c, p) → c·HW + p; T_gᵀ K T_g = K[inv_g][:, inv_g] for a permutation
        inv = ga.inverse_src  # (order, HW)
        full = (torch.arange(c)[:, None] * hw + inv[:, None, :]).reshape(ga.order, -1)
        S = torch.zeros_like(K)
        for g in range(ga.order):
            idx = full[g]
            S += K[idx][:, idx]
    else:
        maps = local_maps(ga)
        if maps is not None:  # sparse T_g (≤ 4 sources per pixel): no dense (order, n, n) stack
            S = full_S(K, maps, rm.sig_shape[0], ga.hw)
        else:
            T = ga.matrices()
            S = torch.einsum("gij,jk,gkl->il", T.transpose(1, 2), K, T)
    S = 0.5 * (S + S.T)
    return torch.linalg.eigvalsh(S).numpy(), torch.linalg.eigvalsh(K).numpy()


def _gap_note(eigs: np.ndarray, tol: float) -> str:
    """How clearly the rank threshold separates the spectrum (``λ/λ_max`` either side of it)."""
    eigs = np.clip(np.asarray(eigs, dtype=float), 0.0, None)
    rel = eigs / max(float(eigs.max()), 1e-300)
    below, above = rel[rel <= tol**2], rel[rel > tol**2]
    lo = f"{below.max():.1e}" if below.size else "none"
    hi = f"{above.min():.1e}" if above.size else "none"
    return (
        f"spectral gap at the threshold λ/λ_max = {tol**2:.0e}: largest below {lo}, "
        f"smallest above {hi}"
    )


def _divisors(n: int, limit: int = 8) -> list[int]:
    """Candidate periods: divisors of ``n`` below ``n`` and at most ``limit``."""
    return [p for p in range(1, min(n - 1, limit) + 1) if n % p == 0]


def _close(a: Tensor, b: Tensor, tol: float) -> bool:
    scale = max(float(a.norm()), float(b.norm()), 1e-300)
    return float((a - b).norm()) <= tol * scale


def _fft_structure(rm: RealMap, generator: torch.Generator) -> tuple[str, object]:
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
    if _close(kx, d * x, tol):
        return "diagonal", d

    def commutes(resp: Tensor, p: int, dim: int) -> bool:
        return _close(resp, torch.roll(kx, p, dims=dim), tol)

    ph = 1 if h == 1 or commutes(out[2:3], 1, -2) else None
    pw = 1 if w == 1 or commutes(out[-1:], 1, -1) else None
    if ph is None or pw is None:
        more_h = [p for p in _divisors(h) if p > 1] if ph is None else []
        more_w = [p for p in _divisors(w) if p > 1] if pw is None else []
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


def _gram_K(rm: RealMap, generator: torch.Generator) -> Tensor:
    """``K = AᵀA`` densely; from one impulse response per channel when ``AᵀA`` is pixel-diagonal
    or commutes with all shifts (:func:`_fft_structure`: MRI, blur, inpainting), else through
    the identity basis (:func:`selfrecon.theory._gram.gram_matrix`)."""
    c, h, w = rm.sig_shape
    kind, info = _fft_structure(rm, generator)
    if kind == "diagonal":
        return torch.diag(info.reshape(-1))
    if kind != "periodic" or tuple(info) != (1, 1):
        return gram_matrix(rm)
    probes = torch.zeros((c, c, h, w), dtype=torch.float64)
    probes[torch.arange(c), torch.arange(c), 0, 0] = 1.0
    resp = rm.normal_images(probes)  # (c_in, c_out, H, W): AᵀA e_{c_in, (0, 0)}
    # K[(c_out, p), (c_in, q)] = resp[c_in, c_out, p − q] (AᵀA commutes with shifts)
    ii, jj = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    ii, jj = ii.reshape(-1), jj.reshape(-1)
    di = (ii[:, None] - ii[None, :]) % h
    dj = (jj[:, None] - jj[None, :]) % w
    K = resp.permute(1, 0, 2, 3)[:, :, di, dj]  # (c_out, c_in, HW, HW)
    K = K.permute(0, 2, 1, 3).reshape(rm.n, rm.n).contiguous()
    return 0.5 * (K + K.T)


def _block_eigvalsh(G: Tensor) -> Tensor:
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


def _fourier_blocks(
    rm: RealMap, generator: torch.Generator, deadline: float
) -> tuple[Tensor | None, str, bool]:
    r"""``G_ω[c', c] = e_{ω,c'}ᴴ AᵀA e_{ω,c}`` for all ω: ``(H, W, C, C)`` complex; and the
    structure.

    The third value says whether ``AᵀA`` commutes with all shifts (A is shift-equivariant).
    """
    c, h, w = rm.sig_shape
    kind, info = _fft_structure(rm, generator)
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


def _fft(rm: RealMap, ga: GroupAction, generator, deadline):
    G, structure, equiv = _fourier_blocks(rm, generator, deadline)
    if G is None:
        return None, structure, equiv
    G = 0.5 * (G + G.conj().transpose(-1, -2))
    eigs = _block_eigvalsh(G).numpy() * ga.order
    return eigs, structure, equiv


def _s_apply(rm: RealMap, ga: GroupAction, v: Tensor) -> Tensor:
    """``S v = Σ_g T_gᵀ AᵀA T_g v`` for a block ``v`` ``(b, n)``."""
    b = v.shape[0]
    x = rm.images(v)
    z = ga.forward_all(x).reshape(ga.order * b, *rm.sig_shape)
    kz = rm.normal_images(z).reshape(ga.order, b, *rm.sig_shape)
    return ga.transpose_all(kz).reshape(b, -1)


class _OutOfTime(Exception):
    pass


def _matrix_free(rm, ga: GroupAction, k: int, generator, deadline: float, maxiter: int = 150):
    """Smallest ``k`` Ritz values of ``S`` (LOBPCG), ``λ_max``, and the Ritz residual norms.

    Ritz values are upper bounds of the smallest eigenvalues (Courant–Fischer), so the number below
    a threshold is a valid lower bound on the near-nullspace dimension even without convergence.
    """
    from scipy.sparse.linalg import LinearOperator as SpLinOp
    from scipy.sparse.linalg import lobpcg

    n = rm.n

    def mv(X):
        if time.perf_counter() > deadline:
            raise _OutOfTime
        X = np.asarray(X, dtype=float)
        X2 = X.reshape(n, -1)
        out = _s_apply(rm, ga, torch.from_numpy(X2.T.copy())).numpy().T
        return out.reshape(X.shape)

    op = SpLinOp((n, n), matvec=mv, matmat=mv, dtype=float)
    x0 = torch.randn((n, k + 1), generator=generator, dtype=torch.float64).numpy()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lmax, _ = lobpcg(op, x0[:, :1], largest=True, maxiter=100, tol=1e-6)
        lam_max = float(lmax[0])
        vals, vecs = lobpcg(op, x0[:, :k], largest=False, maxiter=maxiter, tol=1e-7 * lam_max)
    order = np.argsort(vals)
    vals, vecs = np.asarray(vals, dtype=float)[order], np.asarray(vecs)[:, order]
    res = np.linalg.norm(mv(vecs) - vecs * vals[None, :], axis=0)
    return vals, lam_max, res


def _equivariant_exact(rm: RealMap, ga: GroupAction, generator) -> bool | None:
    """Does ``AᵀA`` commute with every ``T_g`` (exact groups; one random probe)?"""
    if not ga.exact or ga.src is None or ga.order > 4096:
        return None
    x = torch.randn((1, *rm.sig_shape), generator=generator, dtype=torch.float64)
    tx = ga.forward_all(x)[:, 0]
    ktx = rm.normal_images(tx)
    tkx = ga.forward_all(rm.normal_images(x))[:, 0]
    return _close(ktx, tkx, max(1e-8, 1e4 * rm.eps))


# ------------------------------------------------------------------------------------------
# public API
# ------------------------------------------------------------------------------------------
def candidate_groups(img_shape: Sequence[int]) -> list[Group]:
    """The library's groups tried by the recommendation (rotations only for square images)."""
    h, w = int(img_shape[-2]), int(img_shape[-1])
    groups: list[Group] = [Shift(), Flip()]
    if h == w:
        groups += [Rotate90(), Rotate90() * Flip(), Rotate()]
    return groups


def identifiability(
    physics: Physics | LinearOperator,
    group: Group | None,
    img_shape: Sequence[int] | None = None,
    method: str = "auto",
    tol: float = 1e-6,
    k: int | None = None,
    real_images: bool | None = None,
    recommend: bool = True,
    time_budget: float | None = None,
    generator: torch.Generator | None = None,
) -> Report:
    r"""Check the necessary conditions of the sensing theorems for ``physics`` and ``group``.

    Tachella, Chen & Davies, JMLR 2023: rank ``[A T_g]_g = n`` (Thm. 1) and ``m ≥ max_j c_j/s_j``
    (Thm. 3). See the module docstring for the three computation paths.

    Parameters
    ----------
    physics : Physics or LinearOperator
        The measurement process (a nonlinear physics contributes its linear operator).
    group : Group or None
        The invariance assumed by EI/REI; ``None`` checks ``A`` alone (no invariance). Interpolating
        groups are made finite (their configured ``angles``/``values``, else 36 angles every 10° /
        9 scales; see :mod:`selfrecon.theory._groups`).
    img_shape : tuple, optional
        One image ``(C, H, W)`` as the operator sees it, when the operator does not know it.
    method : {"auto", "dense", "gram", "fft", "matrix_free"}
        ``"auto"``: FFT for the full shift group, dense for ``n ≤ 2304``, the Gram path for
        ``n ≤ 8192`` (``GRAM_MAX_N``), else matrix-free. ``"gram"`` falls back to matrix-free (and
        says so in the notes) when a ``T_g`` is not a local resampling.
    tol : float
        Relative singular-value threshold: ``σ_i(stacked) > tol·σ_max`` counts towards the rank
        (``λ_i(S) > tol²·λ_max``). Widened to ``10·√eps`` for float32 operators, and to ``1e-3`` on
        the matrix-free path, whose Ritz values are accurate to about ``1e-7·λ_max``.
    k : int, optional
        Block size of the matrix-free path (number of smallest eigenvalues computed; default 32).
    real_images : bool, optional
        Complex operators (MRI): restrict to real images (``n = C·H·W``) instead of the network's
        2-channel complex layout (``n = 2·C·H·W``, the default).
    recommend : bool
        Also try the library's groups (:func:`candidate_groups`) and list those that work.
    time_budget : float, optional
        Seconds allowed (generic FFT path and the recommendations stop when it runs out and say so).
    generator : torch.Generator, optional
        Seeds the random probes (structure tests, LOBPCG start). Default: seeded with 0.
    """
    _check_args(method, tol)
    t0 = time.perf_counter()
    deadline = t0 + (time_budget if time_budget is not None else float("inf"))
    if generator is None:
        generator = torch.Generator().manual_seed(0)
    rm = RealMap(physics, img_shape=img_shape, real_images=real_images)
    report = _check(rm, group, method, tol, k, generator, deadline)
    if recommend:
        _recommend(rm, report, group, tol, generator, deadline)
    report.seconds = time.perf_counter() - t0
    return report


def _check_args(method: str, tol: float) -> None:
    """Reject an unknown ``method`` or a ``tol`` outside ``(0, 1)``."""
    if method not in _METHODS:
        raise ConfigError(f"unknown method {method!r}; choose one of {list(_METHODS)}")
    if not 0 < tol < 1:
        raise ConfigError(f"tol is a relative singular-value threshold in (0, 1), got {tol}")


def _check(rm: RealMap, group, method, tol, k, generator, deadline) -> Report:
    """Check ``rm`` with ``group`` by one computation path and give the report its verdict."""
    ga = GroupAction(group, rm.sig_shape)
    method = _resolve_method(method, ga, rm.n)
    tol_eff = max(tol, 10 * math.sqrt(rm.eps))
    rep = _new_report(rm, ga, method, tol_eff)
    undetermined_why = ""
    if method == "dense":
        _dense_path(rep, rm, ga, tol_eff, generator)
    elif method == "gram" and (res := gram_eigenvalues(rm, ga, _gram_K(rm, generator))):
        _gram_path(rep, rm, ga, res, tol_eff, generator)
    elif method == "fft":
        undetermined_why = _fft_path(rep, rm, ga, tol_eff, generator, deadline)
    else:
        try:
            undetermined_why = _matrix_free_path(
                rep, rm, ga, method, tol_eff, k, generator, deadline
            )
        except _OutOfTime:
            rep.verdict = "undetermined"
            rep.reason = "the time budget ran out during the matrix-free eigenvalue computation"
            return rep
    _verdict(rep, rm, ga, undetermined_why)
    return rep


def _resolve_method(method: str, ga: GroupAction, n: int) -> str:
    """The computation path ``"auto"`` stands for; ``"fft"`` only for the full shift group."""
    if method == "auto":
        if ga.full_shift:
            method = "fft"
        elif n <= DENSE_MAX_N:
            method = "dense"
        elif n <= GRAM_MAX_N:
            method = "gram"
        else:
            method = "matrix_free"
    if method == "fft" and not ga.full_shift:
        raise ConfigError(
            f"method='fft' needs the full cyclic shift group (Shift()); {ga.label} is not; "
            "use method='dense' or 'matrix_free'"
        )
    return method


def _new_report(rm: RealMap, ga: GroupAction, method: str, tol_eff: float) -> Report:
    """A report with the sizes, the multiplicity bound and the notes, before any rank is known."""
    n, m = rm.n, rm.m
    mult: Multiplicities = multiplicities(ga, n)
    rep = Report(
        operator=rm.name,
        group=ga.label,
        n=n,
        m=m,
        group_order=ga.order,
        method=method,
        bound=float(mult.bound),
        bound_method=mult.method,
        bound_satisfied=m >= mult.bound - 1e-9,
        multiplicities=mult.pairs() or None,
        tol=tol_eff,
        notes=list(ga.notes),
    )
    if rm.real_images and rm.is_complex:
        rep.notes.append("real images only (imaginary part zero): n = C·H·W")
    return rep


def _dense_path(rep: Report, rm: RealMap, ga: GroupAction, tol_eff: float, generator) -> None:
    """Fill ``rep`` from all eigenvalues of the dense ``S`` and the singular values of ``A``."""
    eigs, sv2 = _dense(rm, ga)
    rep.rank, rep.min_eigenvalue, rep.max_eigenvalue = _rank_from_eigs(eigs, tol_eff)
    rep.rank_operator = _rank_from_eigs(sv2, tol_eff)[0]
    rep.nullspace_dim = rm.n - rep.rank
    rep.equivariant = _equivariant_exact(rm, ga, generator)


def _gram_path(rep: Report, rm: RealMap, ga: GroupAction, res, tol_eff: float, generator) -> None:
    """Fill ``rep`` from the Gram path's eigenvalues ``res = (eigs, notes)`` of ``S``."""
    eigs, gram_notes = res
    rep.notes.extend(gram_notes)
    rep.rank, rep.min_eigenvalue, rep.max_eigenvalue = _rank_from_eigs(eigs, tol_eff)
    rep.nullspace_dim = rm.n - rep.rank
    rep.notes.append(_gap_note(eigs, tol_eff))
    rep.equivariant = _equivariant_exact(rm, ga, generator)


def _fft_path(
    rep: Report, rm: RealMap, ga: GroupAction, tol_eff: float, generator, deadline
) -> str:
    """Fill ``rep`` from the Fourier-mode eigenvalues of ``S``; the reason when undetermined."""
    eigs, structure, equiv = _fft(rm, ga, generator, deadline)
    rep.notes.append(f"FFT path: {structure}")
    rep.equivariant = equiv
    if eigs is None:
        return "the time budget ran out before all Fourier modes were measured"
    rep.rank, rep.min_eigenvalue, rep.max_eigenvalue = _rank_from_eigs(eigs, tol_eff)
    rep.nullspace_dim = rm.n - rep.rank
    if equiv:
        rep.rank_operator = rep.rank
    return ""


def _matrix_free_path(
    rep: Report, rm: RealMap, ga: GroupAction, method: str, tol_eff: float, k, generator, deadline
) -> str:
    """Fill ``rep`` from LOBPCG's smallest eigenvalues of ``S``; the reason when undetermined."""
    if method == "gram":  # T_g is not a local resampling: no sparse form
        rep.notes.append("Gram path unavailable (T_g is not local); matrix-free instead")
        rep.method = "matrix_free"
    tol_eff = max(tol_eff, MATRIX_FREE_TOL)
    rep.tol = tol_eff
    n = rm.n
    kk = int(k) if k is not None else 32
    kk = max(1, min(kk, max(1, n // 5 - 1)))
    vals, lam_max, res = _matrix_free(rm, ga, kk, generator, deadline)
    thr = (tol_eff**2) * lam_max
    below = int((vals <= thr).sum())
    rep.min_eigenvalue, rep.max_eigenvalue = float(max(vals[0], 0.0)), lam_max
    rep.nullspace_dim = below
    # exact count only when the first Ritz value above the threshold is certified above it
    # (Ritz values bound the eigenvalues from above, so `below` is always a lower bound)
    certified = below < len(vals) and vals[below] - res[below] > thr
    rep.nullspace_dim_is_lower_bound = not certified
    if certified:
        rep.rank = n - below
    undetermined_why = ""
    if below == 0 and vals[0] - res[0] <= thr:
        undetermined_why = (
            f"LOBPCG did not converge: smallest Ritz value {vals[0]:.3g} ± {res[0]:.2g} is not "
            f"clearly above the threshold {thr:.3g}; try method='dense' on a smaller image"
        )
        rep.rank = None
    rep.equivariant = _equivariant_exact(rm, ga, generator)
    rep.notes.append(f"matrix-free: {len(vals)} smallest eigenvalues of S by LOBPCG")
    return undetermined_why


def _verdict(rep: Report, rm: RealMap, ga: GroupAction, undetermined_why: str) -> None:
    n, m = rep.n, rep.m
    name = rep.operator
    grp = "no group" if ga.group is None else f"the group {rep.group}"
    if undetermined_why:
        rep.verdict, rep.reason = "undetermined", undetermined_why
        return
    if not rep.bound_satisfied:
        rep.verdict = "not identifiable"
        rep.reason = (
            f"m = {m} < max_j c_j/s_j = {rep.bound:.4g}: too few measurements for any operator "
            "with "
            f"{grp}; use a larger group or more measurements"
        )
        return
    null = rep.nullspace_dim or 0
    if rep.rank == n or (rep.rank is None and null == 0 and not rep.nullspace_dim_is_lower_bound):
        rep.verdict = "identifiable"
        rep.reason = (
            f"the stacked operator [A T_g] has full rank {n} and m = {m} ≥ {rep.bound:.4g}: the "
            f"necessary conditions hold (sufficient for a.e. A when m > 2k + max c_j + 1)"
        )
        return
    if null > 0:
        rep.verdict = "not identifiable"
        ge = "≥ " if rep.nullspace_dim_is_lower_bound else ""
        if ga.group is None:
            rep.reason = (
                f"A has a nullspace of dimension {ge}{null} and no invariance is assumed; choose a "
                "group the signals are invariant to"
            )
        elif rep.equivariant or (rep.rank_operator is not None and rep.rank == rep.rank_operator):
            rep.reason = (
                f"{name} is equivariant to {rep.group}: this group adds no information "
                f"(rank {rep.rank if rep.rank is not None else '< n'} of {n}, as for A alone)"
            )
        elif rep.rank is not None and rep.rank_operator is not None:
            rep.reason = (
                f"{rep.group} adds information (rank {rep.rank_operator} → {rep.rank}) but a "
                f"nullspace of dimension {null} remains (needs rank {n})"
            )
        else:
            rep.reason = f"S = Σ T_gᵀAᵀA T_g has a nullspace of dimension {ge}{null}"
        if ga.order * m < n:
            rep.reason += (
                f"; |G|·m = {ga.order * m} < n = {n}, so no operator of this size can work"
            )
        return
    rep.verdict, rep.reason = "undetermined", "the rank could not be established"


def _short(group: Group) -> str:
    """Names users type: ``Shift``, ``Rotate90*Flip``, ``Rotate (36 angles)``."""
    factors = getattr(group, "factors", (group,))
    names = [type(f).__name__ for f in factors]
    label = "*".join(names)
    if any(isinstance(f, Rotate) and f.angles is None for f in factors):
        label += " (36 angles)"
    return label


def _recommend(rm: RealMap, rep: Report, group, tol, generator, deadline) -> None:
    works, notes = [], []
    c, h, w = rm.sig_shape
    for cand in candidate_groups((h, w)):
        label = _short(cand)
        if time.perf_counter() > deadline:
            notes.append(f"{label}: not checked (time budget)")
            continue
        try:
            ga = GroupAction(cand, rm.sig_shape)
            if ga.order * rm.m < rm.n:
                continue  # rank ≤ |G|·m < n
            r = _check(rm, cand, "auto", tol, None, generator, deadline)
        except (ValueError, ArithmeticError) as err:  # pragma: no cover - reported, not raised
            notes.append(f"{label}: not checked ({err})")
            continue
        if r.verdict == "identifiable":
            works.append(label)
    rep.recommendation = works
    rep.recommendation_notes = notes
    if rep.verdict == "not identifiable":
        if works:
            rep.reason += f"; use {' or '.join(works)}"
        else:
            rep.reason += (
                "; none of the library's groups makes it identifiable at this size "
                "(consider measurements from several operators, MOI, or more measurements)"
            )


def quick_check(
    physics: Physics | LinearOperator,
    group: Group | None,
    img_shape: Sequence[int] | None = None,
    time_budget: float = 10.0,
    real_images: bool | None = None,
) -> Report:
    """:func:`identifiability` within a time budget, for the Trainer's start and the CLI's
    ``check``.

    Never raises on a computation it cannot finish: the verdict is then ``"undetermined"``.
    """
    try:
        return identifiability(
            physics,
            group,
            img_shape=img_shape,
            real_images=real_images,
            time_budget=time_budget,
        )
    except (ValueError, TypeError, NotImplementedError) as err:
        op = getattr(getattr(physics, "operator", physics), "name", type(physics).__name__)
        return Report(
            operator=str(op),
            group=group_label(group),
            n=0,
            m=0,
            group_order=0,
            method="none",
            verdict="undetermined",
            reason=f"could not check: {err}",
        )

r"""What one numerical path establishes about ``S = Σ_g T_gᵀ AᵀA T_g``: a :class:`Spectrum`.

Each path of :func:`selfrecon.theory.identifiability` (``_dense``, ``_fourier``, ``_gram``,
``_lobpcg``) returns one record; the report and its verdict are built from it
(:mod:`selfrecon.theory.identifiability`). Ranks count singular values ``σ = √λ(S)`` of the stacked
operator ``[A T_g]_g`` above ``tol · σ_max`` (Tachella, Chen & Davies, JMLR 2023, Thm. 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Spectrum", "from_eigenvalues", "rank_from_eigs", "gap_note"]


@dataclass
class Spectrum:
    """The rank facts one path established (``None``: not established by it).

    ``nullspace_dim_is_lower_bound`` marks a count that only bounds the nullspace from below
    (LOBPCG's Ritz values); ``undetermined`` is why the path could not decide (empty when it
    did); ``notes`` say how it was computed, for the report."""

    method: str
    tol: float
    rank: int | None = None
    rank_operator: int | None = None
    min_eigenvalue: float | None = None
    max_eigenvalue: float | None = None
    nullspace_dim: int | None = None
    nullspace_dim_is_lower_bound: bool = False
    equivariant: bool | None = None
    notes: list[str] = field(default_factory=list)
    undetermined: str = ""


def from_eigenvalues(method: str, eigs: np.ndarray, n: int, tol: float, **facts) -> Spectrum:
    """A record from all ``n`` eigenvalues of ``S``: rank, extreme eigenvalues, nullspace."""
    rank, lmin, lmax = rank_from_eigs(eigs, tol)
    return Spectrum(
        method,
        tol,
        rank=rank,
        min_eigenvalue=lmin,
        max_eigenvalue=lmax,
        nullspace_dim=n - rank,
        **facts,
    )


def rank_from_eigs(eigs: np.ndarray, tol: float) -> tuple[int, float, float]:
    """Rank counting ``σ = √λ > tol·σ_max``; returns ``(rank, λ_min, λ_max)``."""
    eigs = np.clip(np.asarray(eigs, dtype=float), 0.0, None)
    lmax = float(eigs.max()) if eigs.size else 0.0
    if lmax <= 0.0:
        return 0, 0.0, 0.0
    rank = int((np.sqrt(eigs) > tol * math.sqrt(lmax)).sum())
    return rank, float(eigs.min()), lmax


def gap_note(eigs: np.ndarray, tol: float) -> str:
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

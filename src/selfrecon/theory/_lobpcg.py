r"""The matrix-free path: the smallest eigenvalues of ``S`` by LOBPCG (Knyazev, SIAM J. Sci.
Comput. 2001) on a block of ``k`` vectors, ``S`` applied with ``A``, ``Aᵀ`` and the group actions
only. The near-nullspace dimension is the number of Ritz values below ``tol² · λ_max`` — a lower
bound (Ritz values bound the eigenvalues from above), exact when the first Ritz value above the
threshold is certified above it by its residual.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import torch
from torch import Tensor

from selfrecon.theory._groups import GroupAction
from selfrecon.theory._linear import RealMap
from selfrecon.theory._structure import equivariant_exact
from selfrecon.theory.spectrum import Spectrum

__all__ = ["MATRIX_FREE_TOL", "matrix_free_spectrum", "s_apply", "smallest_eigenvalues"]

#: Relative singular-value threshold of the matrix-free path (its Ritz values are less accurate).
MATRIX_FREE_TOL = 1e-3


def s_apply(rm: RealMap, ga: GroupAction, v: Tensor) -> Tensor:
    """``S v = Σ_g T_gᵀ AᵀA T_g v`` for a block ``v`` ``(b, n)``."""
    b = v.shape[0]
    x = rm.images(v)
    z = ga.forward_all(x).reshape(ga.order * b, *rm.sig_shape)
    kz = rm.normal_images(z).reshape(ga.order, b, *rm.sig_shape)
    return ga.transpose_all(kz).reshape(b, -1)


class _OutOfTime(Exception):
    """Raised inside SciPy's LOBPCG loop (the only way out of it) when the budget is spent;
    caught in :func:`matrix_free_spectrum`, never beyond this module."""


def smallest_eigenvalues(
    rm, ga: GroupAction, k: int, generator, deadline: float, maxiter: int = 150
):
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
        out = s_apply(rm, ga, torch.from_numpy(X2.T.copy())).numpy().T
        return out.reshape(X.shape)

    op = SpLinOp((n, n), matvec=mv, matmat=mv, dtype=float)
    x0 = torch.randn((n, k + 1), generator=generator, dtype=torch.float64).numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lmax, _ = lobpcg(op, x0[:, :1], largest=True, maxiter=100, tol=1e-6)
        lam_max = float(lmax[0])
        vals, vecs = lobpcg(op, x0[:, :k], largest=False, maxiter=maxiter, tol=1e-7 * lam_max)
    order = np.argsort(vals)
    vals, vecs = np.asarray(vals, dtype=float)[order], np.asarray(vecs)[:, order]
    res = np.linalg.norm(mv(vecs) - vecs * vals[None, :], axis=0)
    return vals, lam_max, res


def matrix_free_spectrum(
    rm: RealMap, ga: GroupAction, tol: float, k: int | None, generator, deadline: float
) -> Spectrum:
    """LOBPCG's smallest eigenvalues of ``S`` (block of ``k``, default 32) at the threshold
    ``max(tol, MATRIX_FREE_TOL)``; undetermined when it runs out of time or does not converge."""
    tol = max(tol, MATRIX_FREE_TOL)
    n = rm.n
    kk = int(k) if k is not None else 32
    kk = max(1, min(kk, max(1, n // 5 - 1)))
    try:
        vals, lam_max, res = smallest_eigenvalues(rm, ga, kk, generator, deadline)
    except _OutOfTime:
        why = "the time budget ran out during the matrix-free eigenvalue computation"
        return Spectrum("matrix_free", tol, undetermined=why)
    thr = (tol**2) * lam_max
    below = int((vals <= thr).sum())
    # exact count only when the first Ritz value above the threshold is certified above it
    # (Ritz values bound the eigenvalues from above, so `below` is always a lower bound)
    certified = below < len(vals) and vals[below] - res[below] > thr
    spec = Spectrum(
        "matrix_free",
        tol,
        rank=n - below if certified else None,
        min_eigenvalue=float(max(vals[0], 0.0)),
        max_eigenvalue=lam_max,
        nullspace_dim=below,
        nullspace_dim_is_lower_bound=not certified,
    )
    if below == 0 and vals[0] - res[0] <= thr:
        spec.undetermined = (
            f"LOBPCG did not converge: smallest Ritz value {vals[0]:.3g} ± {res[0]:.2g} is not "
            f"clearly above the threshold {thr:.3g}; try method='dense' on a smaller image"
        )
        spec.rank = None
    spec.equivariant = equivariant_exact(rm, ga, generator)
    spec.notes.append(f"matrix-free: {len(vals)} smallest eigenvalues of S by LOBPCG")
    return spec

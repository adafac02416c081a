r"""The dense path: ``A`` as a matrix ``M`` (identity basis through the operator), ``K = MᵀM`` and
``S = Σ_g T_gᵀ K T_g`` (index gathers for permutations, sparse local maps for resampling, dense
``T_g`` otherwise); every eigenvalue by ``eigvalsh``. Exact to float64 rounding; for ``n`` up to
``DENSE_MAX_N``."""

from __future__ import annotations

import numpy as np
import torch

from selfrecon.theory._gram import full_S, local_maps
from selfrecon.theory._groups import GroupAction
from selfrecon.theory._linear import RealMap
from selfrecon.theory._structure import equivariant_exact
from selfrecon.theory.spectrum import Spectrum, from_eigenvalues, rank_from_eigs

__all__ = ["DENSE_MAX_N", "dense_eigenvalues", "dense_spectrum"]

#: Largest ``n`` the automatic choice sends to the dense path.
DENSE_MAX_N = 2304


def dense_eigenvalues(rm: RealMap, ga: GroupAction) -> tuple[np.ndarray, np.ndarray]:
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


def dense_spectrum(rm: RealMap, ga: GroupAction, tol: float, generator) -> Spectrum:
    """All eigenvalues of the dense ``S`` and the singular values of ``A`` alone."""
    eigs, sv2 = dense_eigenvalues(rm, ga)
    spec = from_eigenvalues("dense", eigs, rm.n, tol)
    spec.rank_operator = rank_from_eigs(sv2, tol)[0]
    spec.equivariant = equivariant_exact(rm, ga, generator)
    return spec

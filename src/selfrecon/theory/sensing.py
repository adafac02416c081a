r"""Measurement counts from the sensing theorems: sufficient conditions, several operators, and
``k``.

* :func:`sufficient_measurements` — Tachella, Chen & Davies (JMLR 2023, Thm. 4): for a cyclic group
  and a signal set of box-counting dimension ``k``, almost every ``A`` with
  ``m > 2k + max_j c_j + 1`` identifies the signal set from measurements alone.
* :func:`moi_identifiability` — multiple operators without invariance (Tachella, Chen & Davies,
  "Unsupervised learning from incomplete measurements for inverse problems", NeurIPS 2022, Thm. 1
  and 2): with ``G`` operators of ``m`` measurements each, ``m ≥ n/G`` is necessary (and the stacked
  ``[A_1; …; A_G]`` must have rank ``n``), ``m > n/G + k`` suffices for generic operators.
* :func:`estimate_box_dimension` — a data-driven estimate of ``k`` (see its docstring).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from selfrecon.errors import ConfigError
from selfrecon.groups import Group
from selfrecon.physics.base import LinearOperator
from selfrecon.physics.physics import Physics
from selfrecon.theory._groups import GroupAction
from selfrecon.theory._linear import RealMap
from selfrecon.theory.characters import multiplicities

__all__ = [
    "SufficientCondition",
    "sufficient_measurements",
    "MOIReport",
    "moi_identifiability",
    "estimate_box_dimension",
]


@dataclass
class SufficientCondition:
    """``m_min`` = the smallest integer ``m > 2k + max_c + 1``; ``cyclic`` says whether the
    theorem's
    hypothesis (a cyclic group) holds for the group given."""

    m_min: int
    k: float
    max_c: float
    cyclic: bool
    n: int
    group_order: int


def _is_cyclic(ga: GroupAction) -> bool:
    """An exact group is cyclic when one of its pixel maps has order ``|G|``."""
    if ga.order == 1:
        return True
    if ga.full_shift:
        h, w = ga.hw
        return math.gcd(h, w) == 1
    if ga.src is None:
        return False
    ident = torch.arange(ga.src.shape[-1])
    for g in range(1, ga.order):
        p, k = ga.src[g], 1
        cur = p.clone()
        while not bool((cur == ident).all()):
            cur = cur[p]
            k += 1
        if k == ga.order:
            return True
    return False


def sufficient_measurements(
    k: float, group: Group | None, img_shape: Sequence[int]
) -> SufficientCondition:
    r"""Measurements that suffice for identification: ``m > 2k + max_j c_j + 1``.

    Tachella, Chen & Davies, JMLR 2023, Thm. 4 (cyclic groups; ``c_j`` the multiplicities of the
    action, :mod:`selfrecon.theory.characters`; for a free action ``c_j = n/|G|``). ``img_shape`` is
    the signal ``(C, H, W)`` in the network's layout. For a non-cyclic group the number is returned
    with ``cyclic=False``: the theorem does not cover it.
    """
    if k < 0:
        raise ConfigError(f"the box-counting dimension k must be ≥ 0, got {k}")
    shape = tuple(int(s) for s in img_shape)
    if len(shape) == 2:
        shape = (1, *shape)
    n = math.prod(shape)
    ga = GroupAction(group, shape)
    mult = multiplicities(ga, n)
    max_c = max(mult.c) if mult.c is not None else mult.bound  # free action: c_j = s_j n/|G|, s_j=1
    m_min = math.floor(2 * k + max_c + 1) + 1
    return SufficientCondition(int(m_min), float(k), float(max_c), _is_cyclic(ga), n, ga.order)


@dataclass
class MOIReport:
    """Identifiability from several operators without invariance (NeurIPS 2022)."""

    n: int
    m: int
    n_operators: int
    rank: int | None
    necessary_bound: float
    necessary_satisfied: bool
    sufficient_m: int | None
    verdict: str
    reason: str


class _Stacked:
    """``Σ_i A_iᵀ A_i`` on images, with the attributes the matrix-free solver reads."""

    def __init__(self, maps: list[RealMap]):
        self.maps = maps
        self.sig_shape = maps[0].sig_shape
        self.n = maps[0].n
        self.m = sum(r.m for r in maps)
        self.eps = max(r.eps for r in maps)

    def images(self, v: Tensor) -> Tensor:
        return v.reshape(v.shape[0], *self.sig_shape)

    def normal_images(self, x: Tensor) -> Tensor:
        return sum(r.normal_images(x) for r in self.maps)


def moi_identifiability(
    operators: Sequence[Physics | LinearOperator],
    img_shape: Sequence[int] | None = None,
    k: float | None = None,
    tol: float = 1e-6,
) -> MOIReport:
    r"""Can ``G`` operators together identify the signal set, with no invariance assumed?

    Necessary (NeurIPS 2022, Thm. 1): ``rank [A_1; …; A_G] = n`` and ``m ≥ n/G`` with ``m`` the
    measurements per operator (the smallest if they differ). Sufficient for generic operators
    (Thm. 2): ``m > n/G + k`` with ``k`` the box-counting dimension (give ``k`` to get
    ``sufficient_m``).
    The rank is computed densely (``n ≤ 2304``) or from the smallest eigenvalues of ``Σ A_iᵀA_i``
    (LOBPCG) otherwise.
    """
    from selfrecon.theory._dense import DENSE_MAX_N
    from selfrecon.theory._lobpcg import MATRIX_FREE_TOL, smallest_eigenvalues

    if len(operators) < 1:
        raise ConfigError("moi_identifiability needs at least one operator")
    maps = [RealMap(op, img_shape=img_shape) for op in operators]
    n = maps[0].n
    if any(r.n != n for r in maps):
        raise ConfigError(
            f"all operators must act on the same images; signal sizes {[r.n for r in maps]}"
        )
    g = len(maps)
    m = min(r.m for r in maps)
    bound = n / g
    rank: int | None
    if n <= DENSE_MAX_N:
        M = torch.cat([r.dense() for r in maps], dim=0)
        s = torch.linalg.svdvals(M).numpy()
        rank = int((s > tol * s.max()).sum()) if s.size and s.max() > 0 else 0
    else:
        st = _Stacked(maps)
        trivial = GroupAction(None, st.sig_shape)
        gen = torch.Generator().manual_seed(0)
        vals, lam, _ = smallest_eigenvalues(st, trivial, 16, gen, float("inf"))
        below = int((vals <= (max(tol, MATRIX_FREE_TOL) ** 2) * lam).sum())
        rank = n - below if below < len(vals) else None
    suff = math.floor(bound + k) + 1 if k is not None else None
    ok_bound = m >= bound
    if not ok_bound:
        verdict = "not identifiable"
        reason = f"m = {m} < n/G = {bound:.4g}: too few measurements per operator"
    elif rank is not None and rank < n:
        verdict = "not identifiable"
        reason = f"the stacked operators have rank {rank} < n = {n}"
    elif rank is None:
        verdict = "not identifiable"
        reason = "the stacked operators have a nullspace of dimension ≥ 16"
    else:
        verdict = "identifiable"
        reason = f"the stacked operators have full rank {n} and m = {m} ≥ n/G = {bound:.4g}"
        if suff is not None:
            reason += f"; m > n/G + k needs m ≥ {suff}"
    return MOIReport(n, m, g, rank, bound, ok_bound, suff, verdict, reason)


def estimate_box_dimension(images: Tensor, energy: float = 0.99, max_samples: int = 4096) -> int:
    r"""Estimate the dimension ``k`` of the signal set from example images, by PCA energy.

    Method: flatten the images (``(N, C, H, W)`` → ``(N, n)``), remove the mean and return the
    smallest
    ``d`` whose leading principal components hold a fraction ``energy`` of the variance,
    ``Σ_{i≤d} σ_i² ≥ energy · Σ σ_i²`` (Jolliffe, *Principal Component Analysis*, 2002, §6.1). For a
    signal set inside a ``k``-dimensional linear subspace this equals ``k`` (with ``N > k``
    samples);
    for a curved low-dimensional set it is an upper bound on the box-counting dimension (a set of
    dimension ``k`` may span more linear directions), so sufficient-condition counts built on it
    are conservative. At most ``N − 1`` (the sample cannot reveal more).
    """
    if images.dim() < 2:
        raise ConfigError(
            f"images must be (N, ...) with N examples, got shape {tuple(images.shape)}"
        )
    if not 0 < energy <= 1:
        raise ConfigError(f"energy is a fraction of the variance in (0, 1], got {energy}")
    X = images.reshape(images.shape[0], -1).to(torch.float64)[:max_samples]
    if X.shape[0] < 2:
        raise ConfigError("estimate_box_dimension needs at least 2 images")
    X = X - X.mean(0, keepdim=True)
    s = torch.linalg.svdvals(X).numpy()
    power = s**2
    total = power.sum()
    if total <= 0:
        return 0
    cum = np.cumsum(power) / total
    return int(np.searchsorted(cum, energy - 1e-12) + 1)

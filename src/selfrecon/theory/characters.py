r"""Multiplicities of the irreducible representations in a permutation action, from characters.

The necessary condition of Tachella, Chen & Davies (JMLR 2023, Thm. 3) reads ``m ≥ max_j c_j /
s_j``,
where the action ``T_g`` on ``R^n`` decomposes into irreducible representations ``ρ_j`` of dimension
``s_j`` appearing ``c_j`` times. For a permutation action the character is the number of fixed
coordinates, ``tr T_g = #{p : src_g[p] = p}``, so by the orthogonality of characters (Serre,
*Linear Representations of Finite Groups*, §2.3, Thm. 4)

    c_j = (1/|G|) Σ_g conj(χ_j(g)) · tr(T_g),

and no ``n × n`` matrix is ever built. The irreducible characters ``χ_j`` of a small finite group
are
computed from its multiplication table by Burnside's method as made practical by Dixon (Numer. Math.
10, 1967): the class sums ``Z_K`` span the centre of the group algebra, ``Z_K Z_L = Σ_M a_{KLM}
Z_M``,
and the central characters ``ω_j(K) = |K| χ_j(K) / s_j`` are the common eigenvectors of the matrices
``(A_K)_{LM} = a_{KLM}``; ``s_j`` follows from ``Σ_g |χ_j(g)|² = |G|``. Irreducible means over ℂ
(cyclic groups have 1-D characters; the dihedral group of order 8 has four 1-D and one 2-D irrep).

A *free* action (no pixel fixed by any ``g ≠ e``, e.g. all cyclic shifts) is ``n/|G|`` copies of the
regular representation, so ``c_j = s_j · n/|G|`` and the bound is exactly ``n/|G|`` — no table
needed.
"""

from __future__ import annotations

import numpy as np
from torch import Tensor

from selfrecon.errors import ConfigError

__all__ = ["cayley_table", "character_table", "multiplicities", "Multiplicities"]

#: Largest group order whose character table is computed (the table costs |G|² permutations).
MAX_ORDER = 128


def cayley_table(src: Tensor) -> np.ndarray:
    """``table[g, h]`` = index of ``T_g ∘ T_h`` among the pixel maps ``src`` (``(|G|, P)``).

    ``(T_g T_h x)[p] = (T_h x)[src_g[p]] = x[src_h[src_g[p]]]``.
    """
    order = src.shape[0]
    keys = {bytes(row.numpy().astype(np.int64).tobytes()): i for i, row in enumerate(src)}
    if len(keys) != order:
        raise ConfigError("pixel maps must be distinct transformations")
    comp = src[None, :, :].expand(order, -1, -1).gather(-1, src[:, None, :].expand(-1, order, -1))
    table = np.empty((order, order), dtype=np.int64)
    flat = comp.reshape(order * order, -1).numpy().astype(np.int64)
    for k in range(order * order):
        idx = keys.get(flat[k].tobytes())
        if idx is None:
            raise ConfigError("the transformations are not closed under composition (not a group)")
        table[k // order, k % order] = idx
    return table


def character_table(table: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Irreducible characters of the group with multiplication table ``table``.

    Returns ``(chars, dims, class_of)``: ``chars[j, g] = χ_j(g)`` (complex), ``dims[j] = s_j`` and
    ``class_of[g]`` the conjugacy class index of every element (Burnside–Dixon, see module docs).
    ``seed`` fixes the random combination of class matrices whose eigenvectors are taken.
    """
    order = table.shape[0]
    e = int(np.flatnonzero((table == np.arange(order)[None, :]).all(1))[0])
    inv = np.argmax(table == e, axis=1)
    # conjugacy classes: x ~ g x g⁻¹
    conj = table[table, inv[:, None]]  # conj[g, x] = g x g⁻¹
    class_of = -np.ones(order, dtype=np.int64)
    reps = []
    for x in range(order):
        if class_of[x] < 0:
            class_of[np.unique(conj[:, x])] = len(reps)
            reps.append(x)
    n_cls = len(reps)
    sizes = np.bincount(class_of, minlength=n_cls).astype(float)
    # a[K, L, M] = #{(x, y) ∈ K × L : x y = z_M}
    a = np.zeros((n_cls, n_cls, n_cls))
    xs = np.arange(order)
    for mi, z in enumerate(reps):
        ys = table[inv[xs], z]  # y = x⁻¹ z
        np.add.at(a[:, :, mi], (class_of[xs], class_of[ys]), 1.0)
    rng = np.random.default_rng(seed)
    coef = rng.standard_normal(n_cls) + 1j * rng.standard_normal(n_cls)
    comb = np.tensordot(coef, a, axes=(0, 0))  # Σ_K r_K A_K, (L, M)
    _, vecs = np.linalg.eig(comb)
    e_cls = class_of[e]
    omega = (vecs / vecs[e_cls][None, :]).T  # ω_j(M), rows j
    dims = np.sqrt(order / (np.abs(omega) ** 2 / sizes[None, :]).sum(1))
    dims = np.rint(dims.real).astype(np.int64)
    chi_cls = dims[:, None] * omega / sizes[None, :]
    chars = chi_cls[:, class_of]
    if int((dims**2).sum()) != order:
        raise ArithmeticError(
            f"character table failed: Σ s_j² = {int((dims**2).sum())} ≠ |G| = {order}"
        )
    return chars, dims, class_of


class Multiplicities:
    r"""``c_j`` and ``s_j`` of an action, and the bound ``max_j c_j / s_j`` (see module docs).

    ``method`` says how they were obtained: ``"characters"``, ``"free action"`` or
    ``"n/|G| (no character table)"`` — the last is a lower bound on ``max_j c_j/s_j`` (from
    ``Σ_j s_j c_j = n`` and ``Σ_j s_j² = |G|``), used for interpolating or very large groups.
    """

    def __init__(self, c: list[int] | None, s: list[int] | None, bound: float, method: str):
        self.c, self.s, self.bound, self.method = c, s, bound, method

    def pairs(self) -> list[tuple[int, int]]:
        return list(zip(self.c or [], self.s or [], strict=True))

    def __repr__(self) -> str:
        return (
            f"Multiplicities(c={self.c}, s={self.s}, bound={self.bound:g}, method={self.method!r})"
        )


def multiplicities(action, n: int) -> Multiplicities:
    """Multiplicities for a :class:`~selfrecon.theory._groups.GroupAction` on ``R^n``."""
    order = int(action.order)
    if not action.exact:
        return Multiplicities(None, None, n / order, "n/|G| (no character table)")
    if order == 1:
        return Multiplicities([n], [1], float(n), "characters")
    fixed = action.fixed_points()
    if bool((fixed[1:] == 0).all()) and n % order == 0:  # identity is first
        return Multiplicities(None, None, n / order, "free action")
    if order > MAX_ORDER or action.src is None:
        return Multiplicities(None, None, n / order, "n/|G| (no character table)")
    chars, dims, _ = character_table(cayley_table(action.src))
    tr = fixed.numpy().astype(float)
    c = (np.conj(chars) * tr[None, :]).sum(1) / order
    c_int = np.rint(c.real).astype(np.int64)
    if np.abs(c - c_int).max() > 1e-6:
        raise ArithmeticError("character formula gave non-integer multiplicities")
    bound = max(ci / si for ci, si in zip(c_int, dims, strict=True))
    order_idx = np.lexsort((-c_int, dims))
    return Multiplicities(
        [int(c_int[i]) for i in order_idx],
        [int(dims[i]) for i in order_idx],
        float(bound),
        "characters",
    )

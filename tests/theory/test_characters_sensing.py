"""Multiplicities from characters against dense linear algebra; sufficient and MOI conditions."""

from __future__ import annotations

import pytest
import torch

from selfrecon.groups import Flip, Rotate90, Shift
from selfrecon.physics import CompressedSensing
from selfrecon.theory import (
    character_table,
    estimate_box_dimension,
    moi_identifiability,
    multiplicities,
    sufficient_measurements,
)
from selfrecon.theory._groups import GroupAction
from selfrecon.theory.characters import cayley_table


def perm_matrix(src: torch.Tensor) -> torch.Tensor:
    n = src.numel()
    T = torch.zeros(n, n, dtype=torch.float64)
    T[torch.arange(n), src] = 1.0
    return T


def null_dim(M: torch.Tensor) -> int:
    s = torch.linalg.svdvals(M)
    return int((s <= 1e-9 * max(1.0, float(s.max()))).sum())


@pytest.mark.parametrize("size", [3, 4, 5])
def test_cyclic_multiplicities_match_eigenvalue_counts(size):
    # Rotate90: c_j = multiplicity of the eigenvalue i^j of the quarter-turn permutation matrix
    ga = GroupAction(Rotate90(), (1, size, size))
    mult = multiplicities(ga, size * size)
    T = perm_matrix(Rotate90().source_index(torch.tensor([1]), (size, size))[0])
    eig = torch.linalg.eigvals(T)
    counts = sorted(int((eig - 1j**j).abs().lt(1e-8).sum()) for j in range(4))
    if mult.c is None:  # free action: n/|G| copies of each 1-D irrep
        assert mult.method == "free action" and counts == [size * size // 4] * 4
    else:
        assert sorted(mult.c) == counts and mult.bound == max(counts)


@pytest.mark.parametrize("size", [3, 4])
def test_dihedral_multiplicities_match_dense_isotypic_dimensions(size):
    ga = GroupAction(Rotate90() * Flip(), (1, size, size))
    assert ga.order == 8
    mult = multiplicities(ga, size * size)
    n = size * size
    R = perm_matrix(Rotate90().source_index(torch.tensor([1]), (size, size))[0])
    F = perm_matrix(Flip().source_index(torch.tensor([[0, 1]]), (size, size))[0])
    I = torch.eye(n, dtype=torch.float64)  # noqa: E741
    one_d = []
    for r_sign in (1, -1):  # 1-D irreps of D4: r ↦ ±1, s ↦ ±1
        for f_sign in (1, -1):
            one_d.append(null_dim(torch.cat([R - r_sign * I, F - f_sign * I])))
    two_d = (n - sum(one_d)) // 2
    got = sorted(zip(mult.c, mult.s, strict=True))
    assert got == sorted([(c, 1) for c in one_d] + [(two_d, 2)])


def test_character_table_orthogonality():
    ga = GroupAction(Rotate90() * Flip(), (1, 4, 4))
    chars, dims, _ = character_table(cayley_table(ga.src))
    gram = chars @ chars.conj().T / 8
    assert torch.allclose(torch.from_numpy(gram), torch.eye(5, dtype=torch.complex128), atol=1e-9)
    assert sorted(dims.tolist()) == [1, 1, 1, 1, 2]


def test_shift_action_is_free():
    mult = multiplicities(GroupAction(Shift(), (2, 4, 6)), 48)
    assert mult.method == "free action" and mult.bound == pytest.approx(2.0)


def test_sufficient_measurements():
    s = sufficient_measurements(3, Rotate90(), (5, 5))
    assert s.cyclic and s.max_c == 7  # centre pixel + 6 orbits of 4: trivial irrep 7 times
    assert s.m_min == 2 * 3 + 7 + 1 + 1
    assert not sufficient_measurements(1, Rotate90() * Flip(), (4, 4)).cyclic
    assert not sufficient_measurements(1, Shift(), (4, 4)).cyclic  # Z_4 × Z_4
    with pytest.raises(ValueError, match="k"):
        sufficient_measurements(-1, Rotate90(), (4, 4))


@pytest.mark.parametrize("m, verdict", [(16, "identifiable"), (15, "not identifiable")])
def test_moi_needs_n_over_number_of_operators(rng, m, verdict):
    ops = [CompressedSensing(m, (8, 8), generator=rng) for _ in range(4)]
    r = moi_identifiability(ops, k=2)
    assert r.necessary_bound == 16 and r.verdict == verdict
    assert r.rank == min(64, 4 * m) and r.sufficient_m == 19


def test_box_dimension_of_a_linear_subspace(rng):
    basis = torch.randn(64, 5, generator=rng, dtype=torch.float64)
    coef = torch.randn(200, 5, generator=rng, dtype=torch.float64)
    x = (coef @ basis.T).reshape(200, 1, 8, 8) + 3.0
    assert estimate_box_dimension(x) == 5
    noisy = x + 1e-6 * torch.randn(x.shape, generator=rng, dtype=torch.float64)
    assert estimate_box_dimension(noisy, energy=0.999) == 5
    with pytest.raises(ValueError, match="energy"):
        estimate_box_dimension(x, energy=0.0)

"""The Gram path (exact ``S``, block-diagonalised by a cyclic symmetry) against brute force."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch

from selfrecon.groups import Flip, Rotate, Rotate90
from selfrecon.physics import CompressedSensing, Inpainting
from selfrecon.physics.mri import MRI
from selfrecon.physics.tomography import Tomography
from selfrecon.theory import identifiability
from selfrecon.theory._gram import GRAM_MAX_N, gram_eigenvalues, local_maps
from selfrecon.theory._groups import GroupAction
from selfrecon.theory._linear import RealMap

ident = importlib.import_module("selfrecon.theory.identifiability")  # the module, not the function


def brute_force_eigs(rm: RealMap, ga: GroupAction) -> np.ndarray:
    """``eig(Σ_g T_gᵀ MᵀM T_g)`` with dense ``T_g`` from ``apply`` on the identity basis."""
    M = rm.dense()
    T = ga.matrices()
    S = torch.einsum("gji,jk,gkl->il", T, M.T @ M, T)
    return torch.linalg.eigvalsh(0.5 * (S + S.T)).numpy()


def mri_mask(size: int, seed: int) -> torch.Tensor:
    return (torch.rand(size, size, generator=torch.Generator().manual_seed(seed)) < 0.3).float()


CASES = [
    ("CT + D4", Tomography(5, 10), Rotate90() * Flip(), {"img_shape": (1, 10, 10)}, "quarter"),
    ("MRI complex + Flip", MRI(mri_mask(8, 1)), Flip(), {}, "flip"),
    ("MRI real + 36 angles", MRI(mri_mask(10, 2)), Rotate(), {"real_images": True}, "quarter"),
    (
        "CT + 4 angles",
        Tomography(3, 9),
        Rotate(angles=[0, 20, 45, 70]),
        {"img_shape": (1, 9, 9)},
        None,
    ),
    (
        "CT + angles closed under 90°",
        Tomography(3, 9),
        Rotate(angles=[0, 25, 90, 115, 180, 205, 270, 295]),
        {"img_shape": (1, 9, 9)},  # odd size: the centre pixel is a fixed point (orbit of size 1)
        "quarter",
    ),
]


@pytest.mark.parametrize("name, op, group, kw, sym", CASES, ids=[c[0] for c in CASES])
def test_gram_spectrum_matches_brute_force(name, op, group, kw, sym):
    img_shape = kw.get("img_shape")
    rm = RealMap(op, img_shape=img_shape, real_images=kw.get("real_images"))
    ga = GroupAction(group, rm.sig_shape)
    expected = brute_force_eigs(rm, ga)
    got, notes = gram_eigenvalues(rm, ga)
    assert got.shape == expected.shape == (rm.n,)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-11 * expected.max())
    if sym is None:
        assert not any("commutes" in s for s in notes)
    else:
        assert any("commutes" in s and sym in s for s in notes)


@pytest.mark.parametrize("name, op, group, kw, sym", CASES, ids=[c[0] for c in CASES])
def test_gram_and_dense_reports_agree(name, op, group, kw, sym):
    dense = identifiability(op, group, method="dense", recommend=False, **kw)
    gram = identifiability(op, group, method="gram", recommend=False, **kw)
    assert gram.method == "gram" and dense.method == "dense"
    assert gram.rank == dense.rank and gram.verdict == dense.verdict
    assert gram.min_eigenvalue == pytest.approx(dense.min_eigenvalue, abs=1e-9)
    assert gram.max_eigenvalue == pytest.approx(dense.max_eigenvalue, rel=1e-9)


def test_local_maps_reproduce_apply_and_reject_nonlocal():
    ga = GroupAction(Rotate(angles=[0, 33, 200]), (1, 8, 8))
    maps = local_maps(ga)
    assert maps is not None and maps.idx.shape == (3, 64, 4)
    x = torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    ref = ga.group.apply(x, ga.elements).reshape(3, 64)
    torch.testing.assert_close(maps.apply(x.reshape(3, 1, 64))[:, 0], ref, rtol=0, atol=1e-12)

    # a map reading far-away pixels is not local: probing must refuse it, not guess
    class Mix(Rotate):
        def apply(self, x, g):
            return super().apply(x, g) + x.flip(-1).flip(-2)

    assert local_maps(GroupAction(Mix(angles=[0, 33]), (1, 8, 8))) is None


def test_cs_rank_and_nullspace_on_gram_path(rng):
    cs = CompressedSensing(35, (12, 12), generator=rng)  # |G|·m = 140 < n = 144: null dim 4
    r = identifiability(cs, Rotate90(), method="gram", recommend=False)
    assert r.rank == 140 and r.nullspace_dim == 4 and r.verdict == "not identifiable"


def test_auto_picks_gram_between_dense_and_matrix_free(rng, monkeypatch):
    assert ident.DENSE_MAX_N < 64 * 64 <= GRAM_MAX_N  # a 64×64 image goes to the Gram path
    op = Inpainting(rate=0.7, img_shape=(12, 12), generator=rng)
    monkeypatch.setattr(ident, "DENSE_MAX_N", 100)
    r = identifiability(op, Rotate90(), recommend=False)
    assert r.method == "gram" and r.n == 144
    m = op.mask[0, 0]
    lost = int(((m + m.rot90(1) + m.rot90(2) + m.rot90(3)) == 0).sum())
    assert r.rank == 144 - lost
    monkeypatch.setattr(ident, "GRAM_MAX_N", 100)
    assert identifiability(op, Rotate90(), recommend=False, k=8).method == "matrix_free"

"""Each numerical path returns one Spectrum record, and the paths agree where they overlap."""

import math

import numpy as np
import pytest
import torch

from selfrecon import physics as P
from selfrecon.groups import Flip, Rotate90, Shift
from selfrecon.theory._dense import dense_spectrum
from selfrecon.theory._fourier import fft_spectrum
from selfrecon.theory._gram import gram_spectrum
from selfrecon.theory._groups import GroupAction
from selfrecon.theory._linear import RealMap
from selfrecon.theory._lobpcg import matrix_free_spectrum
from selfrecon.theory.spectrum import from_eigenvalues, rank_from_eigs

INF = float("inf")


def _gen():
    return torch.Generator().manual_seed(0)


def test_rank_counts_singular_values_above_tol_times_the_largest():
    eigs = np.array([0.0, 1e-14, 1e-8, 1.0, 4.0])  # σ = 0, 1e-7, 1e-4, 1, 2
    assert rank_from_eigs(eigs, 1e-6) == (3, 0.0, 4.0)  # 1e-4 > 1e-6·2
    assert rank_from_eigs(eigs, 1e-3)[0] == 2
    spec = from_eigenvalues("dense", eigs, 5, 1e-6)
    assert (spec.rank, spec.nullspace_dim, spec.undetermined) == (3, 2, "")


def _inpainting(side, rate=0.5):
    return P.Inpainting(rate=rate, img_shape=(1, side, side), generator=_gen())


@pytest.mark.parametrize("group", [None, Rotate90(), Rotate90() * Flip()])
def test_dense_and_gram_paths_agree(group):
    rm = RealMap(_inpainting(10))
    ga = GroupAction(group, rm.sig_shape)
    dense, gram = dense_spectrum(rm, ga, 1e-6, _gen()), gram_spectrum(rm, ga, 1e-6, _gen())
    assert (dense.method, gram.method) == ("dense", "gram")
    assert dense.rank == gram.rank and dense.nullspace_dim == gram.nullspace_dim
    assert math.isclose(dense.max_eigenvalue, gram.max_eigenvalue, rel_tol=1e-9)
    if group is None:  # A alone: the rank is the number of observed pixels
        assert dense.rank == int(_inpainting(10).mask.sum()) == dense.rank_operator


def test_fft_path_for_shifts_matches_dense_and_knows_equivariance():
    op = P.MRI(P.mri_mask((8, 8), 4, 0.1, generator=_gen()))
    rm = RealMap(op)
    ga = GroupAction(Shift(), rm.sig_shape)
    fft, dense = fft_spectrum(rm, ga, 1e-6, _gen(), INF), dense_spectrum(rm, ga, 1e-6, _gen())
    assert fft.rank == dense.rank < rm.n  # MRI commutes with shifts: the group adds nothing
    assert fft.equivariant and fft.rank_operator == fft.rank
    assert fft.notes[0].startswith("FFT path")


def test_fft_path_out_of_time_is_undetermined_not_an_error():
    rm = RealMap(P.Tomography(6, img_size=8))  # generic AᵀA: every Fourier mode through A
    spec = fft_spectrum(rm, GroupAction(Shift(), rm.sig_shape), 1e-6, _gen(), deadline=0.0)
    assert spec.rank is None and "time budget" in spec.undetermined


def test_matrix_free_bounds_the_nullspace_and_certifies_when_it_can():
    op = _inpainting(12, rate=0.9)  # few missing pixels: the block (≤ n/5) can hold them all
    rm = RealMap(op)
    ga = GroupAction(None, rm.sig_shape)
    missing = rm.n - int(op.mask.sum())
    spec = matrix_free_spectrum(rm, ga, 1e-6, 4, _gen(), INF)
    assert spec.nullspace_dim_is_lower_bound and spec.nullspace_dim == 4 < missing
    spec = matrix_free_spectrum(rm, ga, 1e-6, missing + 4, _gen(), INF)
    assert spec.nullspace_dim == missing and spec.rank == rm.n - missing
    late = matrix_free_spectrum(rm, ga, 1e-6, 8, _gen(), deadline=0.0)
    assert late.rank is None and "time budget" in late.undetermined

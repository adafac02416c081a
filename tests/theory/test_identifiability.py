"""Known cases of the sensing theorems (Tachella, Chen & Davies, JMLR 2023), PAPERS.md ranks."""

from __future__ import annotations

import pytest
import torch

from selfrecon.groups import Flip, Rotate, Rotate90, Shift
from selfrecon.physics import CompressedSensing, Inpainting, Physics
from selfrecon.physics.blur import Blur, Downsampling
from selfrecon.physics.mri import MRI
from selfrecon.physics.tomography import Tomography
from selfrecon.theory import VERDICTS, identifiability, quick_check


def central_columns(size: int, n_cols: int) -> torch.Tensor:
    """Cartesian mask: ``n_cols`` full k-space columns around the DC column ``size // 2``."""
    mask = torch.zeros(size, size)
    start = size // 2 - n_cols // 2
    mask[:, start : start + n_cols] = 1
    return mask


def check(*args, **kwargs):
    kwargs.setdefault("recommend", False)
    return identifiability(*args, **kwargs)


# -- inpainting ------------------------------------------------------------------------------
def test_inpainting_with_shifts_is_identifiable(rng):
    op = Inpainting(rate=0.7, img_shape=(16, 16), generator=rng)
    kept = int(op.mask.sum())
    alone = check(op, None)
    assert alone.m == kept and alone.rank == kept and alone.verdict == "not identifiable"
    r = check(Physics(op), Shift())
    assert r.method == "fft" and r.rank == 256 and r.verdict == "identifiable"
    assert r.equivariant is False  # a random mask does not commute with shifts
    # 90° rotations: the nullspace is spanned by the pixels whose whole orbit is unobserved
    # (PAPERS.md's mask has none: rank 256)
    m = op.mask[0, 0]
    lost = int(((m + m.rot90(1) + m.rot90(2) + m.rot90(3)) == 0).sum())
    assert check(op, Rotate90()).rank == 256 - lost


# -- MRI -------------------------------------------------------------------------------------
def test_mri_with_shifts_rank_is_number_of_samples():
    mask = central_columns(16, 4)
    r = check(MRI(mask), Shift())  # complex images (network layout): n = 512
    entries = int(mask.sum())
    assert r.n == 512 and r.m == 2 * entries
    assert r.rank == r.m == 2 * entries
    assert r.verdict == "not identifiable" and r.equivariant is True
    assert "equivariant" in r.reason and "adds no information" in r.reason
    # a random mask: still exactly the number of sampled entries, whatever the group size
    rnd = (torch.rand(16, 16, generator=torch.Generator().manual_seed(3)) < 0.3).float()
    assert check(MRI(rnd), Shift()).rank == 2 * int(rnd.sum())


def test_mri_real_images_reproduces_papers_table():
    op = MRI(central_columns(16, 4))
    alone = check(op, None, real_images=True)
    shifts = check(op, Shift(), real_images=True)
    rot = check(op, Rotate90(), real_images=True)
    assert (alone.n, alone.m) == (256, 128)
    assert (alone.rank, shifts.rank, rot.rank) == (80, 80, 135)
    assert check(op, Shift(), real_images=True, method="dense").rank == 80


def test_mri_rank_rises_with_more_rotation_angles():
    op = MRI(central_columns(12, 3))
    ranks = [
        check(op, g, real_images=True).rank
        for g in (None, Rotate90(), Rotate(angles=[0, 30, 60, 90, 120, 150]), Rotate())
    ]
    assert ranks[0] < ranks[1] < 144  # 90° alone leaves a nullspace
    assert ranks[1] <= ranks[2] <= ranks[3] == 144
    full = check(op, Rotate(), real_images=True)
    assert full.verdict == "identifiable"


def test_mri_recommendation_lists_rotations_not_shifts():
    r = identifiability(MRI(central_columns(12, 3)), Shift(), real_images=True)
    assert r.verdict == "not identifiable"
    assert "Shift" not in r.recommendation and "Rotate (36 angles)" in r.recommendation
    assert "use" in r.reason and "Rotate" in r.reason


# -- CT --------------------------------------------------------------------------------------
def test_ct_rotate90_adds_nothing_and_arbitrary_angles_identify():
    ct = Tomography(4, 16)  # views 0°, 45°, 90°, 135°: mapped onto themselves by 90° rotations
    alone = check(ct, None, img_shape=(1, 16, 16))
    rot = check(ct, Rotate90(), img_shape=(1, 16, 16))
    assert alone.rank < 256 and rot.rank == alone.rank
    assert rot.verdict == "not identifiable" and rot.equivariant is True
    extra = Rotate(angles=[0.0] + [5.0 + 10 * i for i in range(18)])  # 18 arbitrary extra angles
    assert check(ct, extra, img_shape=(1, 16, 16)).rank == 256


# -- compressed sensing ----------------------------------------------------------------------
@pytest.mark.parametrize("m, expected", [(16, "identifiable"), (15, "not identifiable")])
def test_cs_needs_n_over_group_order(rng, m, expected):
    cs = CompressedSensing(m, (8, 8), generator=rng)
    r = check(cs, Rotate90())  # |G| = 4, n = 64: m ≥ 16 needed
    assert r.bound == pytest.approx(16.0) and r.verdict == expected
    assert r.bound_satisfied == (m >= 16)
    assert r.rank == min(64, 4 * m)


# -- blur and super-resolution ---------------------------------------------------------------
def test_box_blur_commutes_with_shifts():
    op = Blur(torch.full((2, 2), 0.25), img_shape=(16, 16))
    fft = check(op, Shift())
    dense = check(op, Shift(), method="dense")
    assert fft.rank == dense.rank == 225 and fft.equivariant is True
    assert fft.verdict == "not identifiable"


def test_super_resolution_ranks():
    op = Downsampling(2, img_shape=(16, 16))
    assert check(op, None).rank == 64
    shifts = check(op, Shift())
    assert shifts.rank == 225 and shifts.equivariant is False
    assert check(op, Shift(), method="dense").rank == 225
    assert check(op, Rotate90()).rank == 64


# -- paths agree -----------------------------------------------------------------------------
@pytest.mark.parametrize("m", [35, 36])
def test_dense_and_matrix_free_agree(rng, m):
    cs = CompressedSensing(m, (12, 12), generator=rng)  # n = 144, |G| = 4: null dim 4 at m = 35
    dense = check(cs, Rotate90())
    free = check(cs, Rotate90(), method="matrix_free", k=16)
    assert dense.nullspace_dim == free.nullspace_dim == 144 - min(144, 4 * m)
    assert dense.verdict == free.verdict
    if m == 36:
        assert free.min_eigenvalue == pytest.approx(dense.min_eigenvalue, rel=1e-3)


def test_dense_and_matrix_free_agree_for_mri_rotations():
    op = MRI(central_columns(12, 8))
    dense = check(op, Rotate90() * Flip(), real_images=True)
    free = check(op, Rotate90() * Flip(), real_images=True, method="matrix_free", k=20)
    assert 0 < dense.nullspace_dim < 20
    assert free.nullspace_dim == dense.nullspace_dim and free.rank == dense.rank


def test_fft_and_dense_agree_on_generic_operator(rng):
    cs = CompressedSensing(3, (6, 6), generator=rng)  # no structure: all Fourier modes through A
    fft = check(cs, Shift())
    assert "generic" in fft.notes[-1]
    dense = check(cs, Shift(), method="dense")
    assert fft.rank == dense.rank == 36
    assert fft.min_eigenvalue == pytest.approx(dense.min_eigenvalue, rel=1e-6, abs=1e-9)


# -- report and errors -----------------------------------------------------------------------
def test_report_text_and_fields(rng):
    r = identifiability(Inpainting(rate=0.5, img_shape=(8, 8), generator=rng), Shift())
    text = str(r)
    assert r.verdict in VERDICTS
    for word in ("n = 64", "|G| = 64", "rank", "reason", "method: fft"):
        assert word in text
    assert "Shift" in r.recommendation


def test_errors():
    ct = Tomography(4, 8)
    with pytest.raises(ValueError, match="img_shape"):
        check(Blur(torch.full((2, 2), 0.25)), Shift())
    with pytest.raises(ValueError, match="per-sample masks"):
        check(MRI(central_columns(8, 2)).update(mask=torch.ones(2, 1, 8, 8)), None)
    with pytest.raises(ValueError, match="method"):
        check(ct, None, img_shape=(1, 8, 8), method="svd")
    with pytest.raises(ValueError, match="Shift"):
        check(ct, Rotate90(), img_shape=(1, 8, 8), method="fft")
    with pytest.raises(ValueError, match="tol"):
        check(ct, None, img_shape=(1, 8, 8), tol=2.0)


def test_quick_check_out_of_time_is_undetermined():
    ct = Tomography(3, 16)  # generic operator with shifts: all Fourier modes, no time left
    r = quick_check(ct, Shift(), img_shape=(1, 16, 16), time_budget=0.0)
    assert r.verdict == "undetermined" and "time" in r.reason


@pytest.mark.parametrize("kind", ["blur", "downsampling"])
def test_super_resolution_and_deblurring_need_scales_not_shifts(kind):
    """Scanvic et al. (IEEE TCI 2026): SR and deblurring commute with shifts, so shift-EI cannot
    learn them; scales can. Blur's A† treats singular values under rcond·σ_max as zero, and so
    does the report (without that, a Gaussian blur is 'invertible' at 10⁻⁶)."""
    from selfrecon.groups import Scale, Shift
    from selfrecon.physics import Blur, Downsampling, Physics
    from selfrecon.physics.blur import gaussian_kernel

    op = (
        Blur(gaussian_kernel(1.0), img_shape=(1, 16, 16))
        if kind == "blur"
        else Downsampling(2, img_shape=(1, 16, 16))
    )
    shift = identifiability(Physics(op), Shift(), time_budget=30)
    assert shift.verdict == "not identifiable"
    assert "Scale (9 scales)" in str(shift)
    assert identifiability(Physics(op), Scale(), recommend=False).verdict == "identifiable"
    if kind == "blur":
        assert shift.tol == pytest.approx(op.rcond) and "equivariant" in shift.reason

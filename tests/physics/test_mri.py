"""MRI: centred orthonormal FFT, unitarity, Cartesian masks, SENSE and coil maps."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from selfrecon.physics import MRI, MultiCoilMRI, birdcage_maps, fft2c, ifft2c, mri_mask


def _cplx(shape, gen):
    return torch.randn(shape, dtype=torch.complex128, generator=gen)


@pytest.mark.parametrize("hw", [(8, 8), (7, 10), (9, 5)])
def test_fft2c_matches_numpy_centred_fft_and_inverts(hw, rng):
    x = _cplx((2, 1, *hw), rng)
    ref = np.fft.fftshift(
        np.fft.fft2(np.fft.ifftshift(x.numpy(), axes=(-2, -1)), norm="ortho"), axes=(-2, -1)
    )
    assert np.allclose(fft2c(x).numpy(), ref, atol=1e-12)
    assert torch.allclose(ifft2c(fft2c(x)), x, atol=1e-12)
    # DC sits at (H // 2, W // 2): a constant image has a single nonzero coefficient there
    k = fft2c(torch.ones(1, 1, *hw, dtype=torch.complex128))
    assert k[0, 0, hw[0] // 2, hw[1] // 2].real == pytest.approx(math.sqrt(hw[0] * hw[1]))
    assert (k.abs() > 1e-9).sum() == 1


def test_mri_full_mask_is_unitary(rng):
    A = MRI(torch.ones(8, 8)).double()
    x = _cplx((3, 2, 8, 8), rng)
    Ax = A(x)
    assert torch.allclose(Ax.flatten(1).norm(dim=1), x.flatten(1).norm(dim=1), rtol=1e-12)
    assert torch.allclose(A.pinv(Ax), x, atol=1e-12)
    assert A.norm() == pytest.approx(1.0, rel=1e-9)


def test_mri_output_is_zero_off_mask_and_pinv_is_zero_filled(rng):
    mask = mri_mask((8, 8), 4, 0.25, generator=rng)
    A = MRI(mask).double()
    x = _cplx((2, 1, 8, 8), rng)
    y = A(x)
    assert torch.all(y[..., mask == 0] == 0)
    assert torch.equal(A.measured_mask, mask[None, None])
    assert torch.allclose(A.pinv(y), ifft2c(fft2c(x) * mask), atol=1e-12)
    # a real image (e.g. magnitude ground truth) is accepted and treated as complex
    xr = torch.randn(2, 1, 8, 8, dtype=torch.float64, generator=rng)
    assert torch.allclose(A(xr), A(xr.to(torch.complex128)))


def test_mri_per_sample_masks(rng):
    masks = torch.stack(
        [mri_mask((8, 8), 2, 0.25, generator=torch.Generator().manual_seed(s)) for s in (0, 1)]
    )
    assert not torch.equal(masks[0], masks[1])
    A = MRI(masks)
    assert A.mask.shape == (2, 1, 8, 8)
    assert torch.equal(MRI(masks[:, None]).mask, A.mask)
    x = torch.randn(2, 1, 8, 8, dtype=torch.complex64, generator=rng)
    y = A(x)
    for i in range(2):
        assert torch.allclose(y[i : i + 1], MRI(masks[i])(x[i : i + 1]))
    with pytest.raises(ValueError, match=r"2 per-sample masks.*3 items"):
        A(torch.zeros(3, 1, 8, 8, dtype=torch.complex64))


@pytest.mark.parametrize("kind", ["random", "equispaced", "gaussian"])
@pytest.mark.parametrize(
    "shape, acc, cf", [((16, 32), 4, 0.125), ((8, 20), 3, 0.1), ((320, 320), 320 / 82, 14 / 320)]
)
def test_mri_mask_acceleration_and_centre(kind, shape, acc, cf):
    mask = mri_mask(shape, acc, cf, kind=kind, generator=torch.Generator().manual_seed(0))
    H, W = shape
    assert mask.shape == shape and mask.dtype == torch.float32
    assert set(mask.unique().tolist()) <= {0.0, 1.0}
    assert torch.all(mask == mask[:1])  # whole lines: every row identical
    n_lines = int(mask[0].sum())
    assert n_lines == math.floor(W / acc + 0.5)
    n_center = math.floor(W * cf + 0.5)
    start = W // 2 - n_center // 2
    assert torch.all(mask[:, start : start + n_center] == 1)
    assert mask[0, W // 2] == 1  # DC line


def test_mri_mask_rei_setting_has_82_lines_and_14_line_centre():
    mask = mri_mask((320, 320), 320 / 82, 14 / 320, generator=torch.Generator().manual_seed(0))
    assert int(mask[0].sum()) == 82
    assert torch.all(mask[0, 153:167] == 1)


def test_mri_mask_seeding_and_kinds():
    def make(kind, seed):
        return mri_mask((16, 64), 4, 0.08, kind=kind, generator=torch.Generator().manual_seed(seed))

    for kind in ("random", "equispaced", "gaussian"):
        assert torch.equal(make(kind, 3), make(kind, 3))
    assert not torch.equal(make("random", 3), make("random", 4))
    masks = [make(k, 3) for k in ("random", "equispaced", "gaussian")]
    assert not torch.equal(masks[0], masks[1])
    assert not torch.equal(masks[0], masks[2])
    assert not torch.equal(masks[1], masks[2])
    # equispaced: counted over the non-centre columns (centre = 5 lines from 30), the gaps between
    # sampled lines differ by at most one column
    cols = [int(c) for c in torch.nonzero(masks[1][0]).flatten()]
    pos = [c if c < 30 else c - 5 for c in cols if not 30 <= c < 35]
    gaps = np.diff(pos)
    assert len(pos) == 16 - 5 and gaps.max() - gaps.min() <= 1


def test_mri_mask_gaussian_is_denser_near_centre():
    counts = torch.zeros(128)
    for s in range(20):
        counts += mri_mask(
            (1, 128), 4, 0.0, kind="gaussian", generator=torch.Generator().manual_seed(s)
        )[0]
    centre = counts[48:80].sum()  # middle quarter
    edges = counts[:16].sum() + counts[112:].sum()  # outer quarter
    assert centre > 3 * edges


def test_mri_mask_errors():
    with pytest.raises(ValueError, match="centre"):
        mri_mask((16, 16), 8, 0.5)
    with pytest.raises(ValueError, match="unknown mask kind"):
        mri_mask((16, 16), 4, 0.1, kind="radial")
    with pytest.raises(ValueError, match="acceleration"):
        mri_mask((16, 16), 0.5, 0.1)


def test_birdcage_maps_are_normalised_smooth_and_distinct():
    maps = birdcage_maps(8, (32, 32))
    assert maps.shape == (8, 32, 32) and maps.is_complex()
    assert torch.allclose(maps.abs().pow(2).sum(0), torch.ones(32, 32), atol=1e-5)
    # smooth: neighbouring pixels differ far less than the maps vary overall, and the step halves
    # when the grid is twice as fine (a continuous field sampled more densely)
    step = (maps[:, 1:] - maps[:, :-1]).abs().max()
    assert step < 0.1 * maps.abs().max()
    fine = birdcage_maps(8, (64, 64))
    assert (fine[:, 1:] - fine[:, :-1]).abs().max() < 0.6 * step
    assert maps.abs().max() > 3 * maps.abs().min()  # spatially selective coils
    # distinct coils: each coil is most sensitive near its own element
    peak = maps.abs().flatten(1).argmax(1)
    assert peak.unique().numel() == 8
    with pytest.raises(ValueError, match="radius"):
        birdcage_maps(4, (8, 8), radius=1.0)


def test_multicoil_full_mask_is_isometry_and_pinv_matches_dense(rng):
    maps = birdcage_maps(4, (8, 8), dtype=torch.complex128)
    full = MultiCoilMRI(torch.ones(8, 8), maps).double()
    x = _cplx((2, 1, 8, 8), rng)
    assert torch.allclose(full(x).flatten(1).norm(dim=1), x.flatten(1).norm(dim=1), rtol=1e-10)
    assert torch.allclose(full.adjoint(full(x)), x, atol=1e-10)  # Σ|S_c|² = 1

    A = MultiCoilMRI(mri_mask((8, 8), 4, 0.25, generator=rng), maps).double()
    eye = torch.eye(64, dtype=torch.complex128).reshape(64, 1, 8, 8)
    M = A(eye).reshape(64, -1).T  # dense (4·64, 64) matrix
    y = _cplx((2, 4, 8, 8), rng) * A.mask
    ref = (torch.linalg.pinv(M) @ y.reshape(2, -1).T).T.reshape(2, 1, 8, 8)
    assert torch.allclose(A.pinv(y, tol=1e-12, max_iter=500), ref, atol=1e-6 * ref.abs().max())


def test_multicoil_shapes_and_errors(rng):
    maps = birdcage_maps(3, (8, 8))
    A = MultiCoilMRI(torch.ones(8, 8), maps)
    x = torch.randn(2, 1, 8, 8, dtype=torch.complex64, generator=rng)
    assert A(x).shape == (2, 3, 8, 8)
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\).*\(2, 2, 8, 8\)"):
        A(torch.zeros(2, 2, 8, 8, dtype=torch.complex64))
    with pytest.raises(ValueError, match=r"\(2, 5, 8, 8\).*3 coils"):
        A.adjoint(torch.zeros(2, 5, 8, 8, dtype=torch.complex64))
    with pytest.raises(ValueError, match=r"coil_maps have shape \(3, 6, 6\).*\(8, 8\)"):
        MultiCoilMRI(torch.ones(8, 8), birdcage_maps(3, (6, 6)))


def test_mri_shape_dtype_device_errors():
    A = MRI(torch.ones(16, 16))
    with pytest.raises(ValueError, match=r"\(16, 16\).*\(2, 1, 16, 12\)"):
        A(torch.zeros(2, 1, 16, 12, dtype=torch.complex64))
    with pytest.raises(ValueError, match="int64"):
        A(torch.zeros(2, 1, 16, 16, dtype=torch.int64))
    with pytest.raises(ValueError, match="meta"):
        A(torch.zeros(2, 1, 16, 16, dtype=torch.complex64, device="meta"))
    with pytest.raises(ValueError, match="only 0"):
        MRI(torch.full((4, 4), 0.5))
    with pytest.raises(ValueError, match=r"\(2, 3, 4, 4\)"):
        MRI(torch.ones(2, 3, 4, 4))


def test_mask_recipe_spec_builds_the_seeded_mask():
    from selfrecon.errors import ConfigError
    from selfrecon.physics import build_operator

    spec = {"name": "mri", "img_shape": [24, 24], "acceleration": 3, "pattern": "gaussian"}
    op = build_operator({**spec, "seed": 4})
    want = mri_mask((24, 24), 3, 0.08, "gaussian", generator=torch.Generator().manual_seed(4))
    assert torch.equal(op.mask.reshape(24, 24), want)
    assert not torch.equal(build_operator({**spec, "seed": 5}).mask, op.mask)
    multi = build_operator({**spec, "name": "multicoil_mri", "coils": 2, "seed": 4})
    assert torch.equal(multi.mask, op.mask) and multi.coil_maps.shape[-3:] == (2, 24, 24)
    with pytest.raises(ConfigError, match="img_shape"):
        build_operator({"name": "mri", "acceleration": 3})

"""Blur (circular convolution) and Downsampling: kernels, conventions, closed-form pinvs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from selfrecon.physics import Blur, Downsampling, gaussian_kernel, motion_kernel


def _circular_conv(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Reference: (k ⊛ x)[n] = Σ_j k[j] x[n - (j - c)], c = (h//2, w//2), via padding + conv2d."""
    h, w = k.shape
    B, C, H, W = x.shape
    pt, pl = h - 1 - h // 2, w - 1 - w // 2  # rows/cols needed before n
    xp = F.pad(x.reshape(B * C, 1, H, W), (pl, w - 1 - pl, pt, h - 1 - pt), mode="circular")
    return F.conv2d(xp, k.flip(0, 1)[None, None].to(x.dtype)).reshape(B, C, H, W)


@pytest.mark.parametrize("shape", [(3, 3), (4, 2), (5, 4), (1, 1)])
def test_blur_is_circular_convolution_with_centred_kernel(shape, rng):
    k = torch.rand(shape, generator=rng, dtype=torch.float64)
    x = torch.randn(2, 3, 8, 10, generator=rng, dtype=torch.float64)
    assert torch.allclose(Blur(k).double()(x), _circular_conv(x, k), atol=1e-12)


def test_delta_kernel_is_identity_and_shifted_delta_shifts(rng):
    x = torch.randn(1, 1, 8, 8, generator=rng)
    delta = torch.zeros(3, 3)
    delta[1, 1] = 1
    assert torch.allclose(Blur(delta)(x), x, atol=1e-6)
    delta = torch.zeros(3, 3)
    delta[1, 2] = 1  # one to the right of the centre: output[n] = x[n - 1]
    assert torch.allclose(Blur(delta)(x), torch.roll(x, 1, dims=-1), atol=1e-6)


def test_per_channel_and_per_sample_kernels(rng):
    ks = torch.stack([gaussian_kernel(0.5, 5), gaussian_kernel(1.0, 5), motion_kernel(5, 30)])
    x = torch.randn(2, 3, 8, 8, generator=rng, dtype=torch.float64)
    y = Blur(ks).double()(x)
    for c in range(3):
        assert torch.allclose(y[:, c : c + 1], Blur(ks[c]).double()(x[:, c : c + 1]), atol=1e-12)
    per_sample = torch.stack([ks[:1], ks[2:]])  # (B=2, 1, 5, 5)
    y = Blur(per_sample).double()(x)
    for b in range(2):
        assert torch.allclose(
            y[b : b + 1], Blur(per_sample[b, 0]).double()(x[b : b + 1]), atol=1e-12
        )


def test_gaussian_kernel_properties():
    k = gaussian_kernel(1.5)
    assert k.shape == (11, 11)  # 2·ceil(3σ) + 1
    assert k.sum().item() == pytest.approx(1.0, abs=1e-6)
    assert torch.allclose(k, k.flip(0)) and torch.allclose(k, k.T)
    assert k[5, 5] == k.max()
    # second moment ≈ σ² along each axis
    i = torch.arange(11.0) - 5
    assert (k.sum(1) * i**2).sum().item() == pytest.approx(1.5**2, rel=0.02)
    ka = gaussian_kernel((0.5, 2.0))
    assert ka.shape == (5, 13)
    with pytest.raises(ValueError, match="sigma > 0"):
        gaussian_kernel(0.0)


def test_motion_kernel_properties():
    k = motion_kernel(5, 0)
    assert k.shape == (5, 5) and k.sum().item() == pytest.approx(1.0, abs=1e-6)
    assert torch.allclose(k[2], torch.full((5,), 0.2)) and k[[0, 1, 3, 4]].abs().max() < 1e-6
    k90 = motion_kernel(5, 90)
    assert torch.allclose(k90, k.T, atol=1e-6)
    k45 = motion_kernel(7, 45)
    assert torch.allclose(k45, k45.flip(0).flip(1), atol=1e-6)  # point symmetric segment
    # counter-clockwise from horizontal: up-right (row -2, col +2) is on it, up-left is not
    assert k45[1, 5] > 0.05 and k45[5, 1] > 0.05 and k45[1, 1] == 0 and k45[5, 5] == 0
    with pytest.raises(ValueError, match="length"):
        motion_kernel(0.5)


def test_blur_pinv_is_exact_where_no_singular_value_is_truncated(rng):
    k = gaussian_kernel(0.7, 3).double()
    A = Blur(k).double()
    x = torch.randn(2, 1, 8, 8, generator=rng, dtype=torch.float64)
    M = A(torch.eye(64, dtype=torch.float64).reshape(64, 1, 8, 8)).reshape(64, 64).T
    y = torch.randn(2, 1, 8, 8, generator=rng, dtype=torch.float64)
    ref = (torch.linalg.pinv(M) @ y.reshape(2, 64).T).T.reshape(2, 1, 8, 8)
    assert torch.allclose(A.pinv(y), ref, atol=1e-9)
    assert torch.allclose(A.pinv(A(x)), x, atol=1e-9)  # invertible: A† A = I


def test_blur_pinv_truncation_bound(rng):
    """With truncation, ‖A A† A x − A x‖ ≤ rcond · ‖A‖ · ‖x‖ (‖A‖ = max|K| = 1 here)."""
    A = Blur(gaussian_kernel(2.0), rcond=1e-3).double()
    x = torch.randn(3, 1, 16, 16, generator=rng, dtype=torch.float64)
    err = (A(A.pinv(A(x))) - A(x)).flatten(1).norm(dim=1)
    assert torch.all(err <= 1e-3 * x.flatten(1).norm(dim=1))
    assert torch.all(err > 0)  # something was truncated: the bound is the relevant statement
    assert A.norm((1, 16, 16), n_iter=300, tol=1e-10) == pytest.approx(1.0, rel=1e-4)


def test_downsampling_box_is_average_pooling_with_orthogonal_rows(rng):
    A = Downsampling(2).double()
    x = torch.randn(2, 3, 8, 12, generator=rng, dtype=torch.float64)
    assert torch.allclose(A(x), F.avg_pool2d(x, 2), atol=1e-12)
    y = torch.randn(2, 3, 4, 6, generator=rng, dtype=torch.float64)
    assert torch.allclose(A(A.adjoint(y)), y / 4, atol=1e-12)  # A Aᵀ = I / factor²
    up = y.repeat_interleave(2, -1).repeat_interleave(2, -2)
    assert torch.allclose(A.pinv(y), up, atol=1e-12)  # A† = pixel replication
    assert Downsampling(2, img_shape=(8, 8)).norm(n_iter=100) == pytest.approx(0.5, rel=1e-5)


@pytest.mark.parametrize("kernel", ["gaussian", "random"])
def test_downsampling_pinv_matches_dense_pseudo_inverse(kernel, rng):
    k = "gaussian" if kernel == "gaussian" else torch.rand(3, 3, generator=rng)
    A = Downsampling(2, k, rcond=1e-9).double()
    M = A(torch.eye(64, dtype=torch.float64).reshape(64, 1, 8, 8)).reshape(64, 16).T  # (16, 64)
    y = torch.randn(2, 1, 4, 4, generator=rng, dtype=torch.float64)
    ref = (torch.linalg.pinv(M) @ y.reshape(2, 16).T).T.reshape(2, 1, 8, 8)
    assert torch.allclose(A.pinv(y), ref, atol=1e-9)


def test_blur_and_downsampling_errors():
    A = Blur(torch.ones(5, 5) / 25)
    with pytest.raises(ValueError, match=r"\(5, 5\).*\(1, 1, 4, 4\)"):
        A(torch.zeros(1, 1, 4, 4))
    with pytest.raises(ValueError, match=r"\(1, 2, 5, 5\).*\(1, 3, 8, 8\)"):
        Blur(torch.ones(2, 5, 5))(torch.zeros(1, 3, 8, 8))
    with pytest.raises(ValueError, match="complex"):
        A(torch.zeros(1, 1, 8, 8, dtype=torch.complex64))
    with pytest.raises(ValueError, match="meta"):
        A(torch.zeros(1, 1, 8, 8, device="meta"))
    with pytest.raises(ValueError, match=r"\(8, 8\).*\(1, 1, 6, 6\)"):
        Blur(torch.ones(3, 3), img_shape=(8, 8))(torch.zeros(1, 1, 6, 6))
    D = Downsampling(2, img_shape=(8, 8))
    with pytest.raises(ValueError, match=r"\(1, 1, 7, 8\).*multiples"):
        D(torch.zeros(1, 1, 7, 8))
    with pytest.raises(ValueError, match=r"\(1, 1, 3, 4\).*\(B, C, 4, 4\)"):
        D.adjoint(torch.zeros(1, 1, 3, 4))
    with pytest.raises(ValueError, match="factor"):
        Downsampling(0)
    with pytest.raises(ValueError, match="unknown kernel"):
        Downsampling(2, "bicubic")

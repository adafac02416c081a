"""Classical baselines (scikit-image, BM3D) wrapped as models."""

import pytest
import torch

from selfrecon.classical.baselines import BM3D, CalibratedDenoiser, SkimageBiharmonic
from selfrecon.errors import ConfigError
from selfrecon.metrics import psnr
from selfrecon.models.solvers import Biharmonic
from selfrecon.physics import Denoising, GaussianNoise, Inpainting, Physics, Tomography


def _smooth(rng, b=2, n=32):
    x = torch.rand(b, 1, n, n, generator=rng)
    return torch.nn.functional.avg_pool2d(x, 7, stride=1, padding=3)


def test_skimage_biharmonic_agrees_with_the_torch_solver(rng):
    x = _smooth(rng)
    physics = Physics(Inpainting(rate=0.7, img_shape=(32, 32), generator=rng))
    y = physics.A(x)
    a, b = SkimageBiharmonic()(y, physics), Biharmonic(n_iter=300, tol=1e-8)(y, physics)
    assert abs(float(psnr(a, x)) - float(psnr(b, x))) < 0.5
    with pytest.raises(ConfigError, match="inpainting physics"):
        SkimageBiharmonic()(torch.zeros(1, 1, 8, 8), Physics(Denoising()))


def test_bm3d_with_the_true_sigma_denoises(rng):
    pytest.importorskip("bm3d")
    x = _smooth(rng, b=1)
    physics = Physics(Denoising(), GaussianNoise(0.1))
    y = physics.measure(x, rng)
    assert float(psnr(BM3D()(y, physics), x)) > float(psnr(y, x)) + 5


def test_bm3d_needs_one_gaussian_sigma(rng):
    pytest.importorskip("bm3d")
    with pytest.raises(ConfigError, match="gaussian"):
        BM3D()(torch.zeros(1, 1, 8, 8), Physics(Denoising()))


def test_calibrated_denoiser_beats_the_noisy_image(rng):
    x = _smooth(rng, b=1)
    physics = Physics(Denoising(), GaussianNoise(0.1))
    y = physics.measure(x, rng)
    out = CalibratedDenoiser("tv")(y, physics)
    assert float(psnr(out, x)) > float(psnr(y, x)) + 2


def test_baselines_refuse_non_image_measurements():
    physics = Physics(Tomography(4, 8))
    with pytest.raises(ConfigError, match="real image measurements"):
        CalibratedDenoiser("tv")(torch.zeros(1, 8), physics)


def test_cubic_upsampling_is_aligned_with_the_operator_and_exact_on_smooth_periodic_images():
    import math

    from selfrecon.classical.baselines import CubicUpsampling
    from selfrecon.errors import ConfigError
    from selfrecon.physics import Denoising, Downsampling, Physics

    n = torch.arange(32, dtype=torch.float32)
    x = (0.5 + 0.3 * torch.cos(2 * math.pi * n / 32)[:, None] * torch.sin(2 * math.pi * n / 16))[
        None, None
    ]
    physics = Physics(
        Downsampling(2, kernel=torch.ones(1, 1), img_shape=(1, 32, 32))
    )  # plain x[::2, ::2]
    up = CubicUpsampling()(physics.A(x), physics)
    assert float((up - x).abs().max()) < 0.01
    assert torch.allclose(up[..., ::2, ::2], x[..., ::2, ::2], atol=1e-5)  # samples kept in place
    with pytest.raises(ConfigError, match="downsampling physics"):
        CubicUpsampling()(x, Physics(Denoising()))

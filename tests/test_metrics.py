import math

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from selfrecon.metrics import psnr, ssim


def _pair(rng, shape):
    x = torch.rand(shape, generator=rng)
    x_hat = (x + 0.1 * torch.randn(shape, generator=rng)).clamp(0, 1)
    return x_hat, x


@pytest.mark.parametrize("channels", [1, 3])
def test_psnr_matches_skimage_per_image(rng, channels):
    x_hat, x = _pair(rng, (3, channels, 16, 20))
    ours = psnr(x_hat, x, data_range=1.0, reduction="none")
    ref = [
        peak_signal_noise_ratio(x[i].numpy(), x_hat[i].numpy(), data_range=1.0) for i in range(3)
    ]
    np.testing.assert_allclose(ours.numpy(), ref, atol=1e-4)
    assert float(psnr(x_hat, x)) == pytest.approx(float(np.mean(ref)), abs=1e-4)


def test_psnr_is_not_the_batch_pooled_value(rng):
    # Per-image averaging differs from the original code's batch-pooled PSNR when errors differ.
    x = torch.rand(2, 1, 8, 8, generator=rng)
    x_hat = x.clone()
    x_hat[0] += 0.01
    x_hat[1] += 0.1
    pooled = 10 * math.log10(1 / float(((x_hat - x) ** 2).mean()))
    per_image = float(psnr(x_hat, x))
    assert per_image == pytest.approx((40.0 + 20.0) / 2, abs=1e-3)
    assert abs(per_image - pooled) > 1.0


def test_psnr_data_range_scales(rng):
    x_hat, x = _pair(rng, (2, 1, 8, 8))
    assert float(psnr(2 * x_hat, 2 * x, data_range=2.0)) == pytest.approx(
        float(psnr(x_hat, x)), abs=1e-4
    )


@pytest.mark.parametrize("channels,size", [(1, (16, 16)), (3, (24, 19)), (2, (11, 11))])
def test_ssim_matches_skimage(rng, channels, size):
    x_hat, x = _pair(rng, (2, channels, *size))
    ours = ssim(x_hat, x, data_range=1.0, reduction="none")
    ref = [
        structural_similarity(
            x_hat[i].numpy().astype(np.float64),
            x[i].numpy().astype(np.float64),
            data_range=1.0,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            channel_axis=0,
        )
        for i in range(2)
    ]
    np.testing.assert_allclose(ours.numpy(), ref, atol=1e-4)


def test_ssim_of_identical_images_is_one(rng):
    x = torch.rand(2, 1, 16, 16, generator=rng)
    assert float(ssim(x, x)) == pytest.approx(1.0, abs=1e-6)


def test_metric_errors(rng):
    x = torch.rand(1, 1, 8, 8, generator=rng)
    with pytest.raises(ValueError, match="at least 11"):
        ssim(x, x)
    with pytest.raises(ValueError, match="same shape"):
        psnr(x, x[..., :4])
    with pytest.raises(ValueError, match="reduction"):
        psnr(x, x + 0.1, reduction="sum")


def test_mean_ci_covers_the_true_mean_95_percent_of_the_time():
    # 2000 samples of n = 10 normal values: the 95 % t-interval must cover μ about 1900 times;
    # a binomial(2000, 0.95) count lies within ±4 sd (±39) of 1900 with overwhelming probability
    import numpy as np

    from selfrecon.metrics import mean_ci

    gen = np.random.default_rng(0)
    hits = 0
    for _ in range(2000):
        v = gen.normal(3.0, 2.0, size=10)
        m, hw = mean_ci(v)
        hits += abs(m - 3.0) <= hw
    assert abs(hits - 1900) <= 4 * (2000 * 0.95 * 0.05) ** 0.5


def test_seeded_mean_ci_adds_the_seed_spread():
    import math

    from selfrecon.metrics import mean_ci, seeded_mean_ci

    same = [[1.0, 2.0, 3.0, 4.0]] * 3
    m, hw, sd = seeded_mean_ci(same)
    assert m == 2.5 and sd == 0 and math.isclose(hw, mean_ci([1, 2, 3, 4])[1])
    shifted = [[1.0, 2.0, 3.0, 4.0], [2.0, 3.0, 4.0, 5.0], [3.0, 4.0, 5.0, 6.0]]
    m2, hw2, sd2 = seeded_mean_ci(shifted)
    assert m2 == 3.5 and sd2 == 1.0 and hw2 > hw
    one = seeded_mean_ci([[1.0, 2.0, 4.0]])
    assert math.isnan(one[2]) and one[:2] == mean_ci([1.0, 2.0, 4.0])
    assert math.isnan(mean_ci([5.0])[1])

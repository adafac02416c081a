r"""Image quality metrics, computed **per image** and then averaged over the batch.

* PSNR: ``10 log10(R² / MSE)`` with ``MSE`` the mean over one image's channels and pixels and ``R``
  the data range (peak-to-peak of the intensity scale), as in scikit-image's
  ``peak_signal_noise_ratio``.
* SSIM: Wang, Bovik, Sheikh & Simoncelli, IEEE TIP 2004, eq. (13), with an 11×11 Gaussian window
  (σ = 1.5), ``K1 = 0.01``, ``K2 = 0.03``, population (not sample) covariances, averaged over the
  valid region (the 5-pixel border where the window leaves the image is excluded) and over channels;
  identical to ``skimage.metrics.structural_similarity(..., gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False, data_range=R, channel_axis=0)``.

The original EI/REI code computed PSNR once over the whole batch and all channels with a peak
taken as the max over everything; its figures read 10·log10(B)-ish low on batches of B images and
4.77 dB (= 10·log10 3) low on RGB images, because it divided by the wrong number of entries. Here
each image gets its own PSNR and the batch value is the mean of those (``reduction="mean"``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from selfrecon.errors import DataError

__all__ = ["psnr", "ssim", "mean_ci", "seeded_mean_ci"]


def _check(x_hat: Tensor, x: Tensor, name: str) -> None:
    if x_hat.shape != x.shape:
        raise DataError(
            f"{name}: reconstruction has shape {tuple(x_hat.shape)} but the reference has "
            f"{tuple(x.shape)}; compare images of the same shape (use physics.display for complex)"
        )
    if x.dim() < 2:
        raise DataError(f"{name} expects batched images (B, ...), got shape {tuple(x.shape)}")


def _check_range(data_range: float) -> None:
    if not math.isfinite(float(data_range)) or data_range <= 0:
        raise DataError(f"data_range must be a positive number, got {data_range}")


def _reduce(v: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return v.mean()
    if reduction == "none":
        return v
    raise DataError(f"reduction must be 'mean' or 'none', got {reduction!r}")


def psnr(x_hat: Tensor, x: Tensor, data_range: float = 1.0, reduction: str = "mean") -> Tensor:
    r"""Peak signal-to-noise ratio in dB, per image: ``10 log10(R² / mean((x̂ - x)²))``.

    Images are ``(B, ...)``; the mean runs over everything but the batch dimension. Returns the
    batch mean (``reduction="mean"``) or ``(B,)`` values (``"none"``).
    Identical images give ``inf``.
    """
    _check(x_hat, x, "psnr")
    _check_range(data_range)
    diff = (x_hat.detach().double() - x.detach().double()).reshape(x.shape[0], -1)
    mse = diff.pow(2).mean(dim=1)
    val = 10.0 * torch.log10(float(data_range) ** 2 / mse)
    return _reduce(val.float(), reduction)


def _gaussian_window(
    sigma: float = 1.5, radius: int = 5, dtype=torch.float64, device=None
) -> Tensor:
    t = torch.arange(-radius, radius + 1, dtype=dtype, device=device)
    g = torch.exp(-0.5 * (t / sigma) ** 2)
    return g / g.sum()


def ssim(
    x_hat: Tensor,
    x: Tensor,
    data_range: float = 1.0,
    reduction: str = "mean",
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
) -> Tensor:
    r"""Structural similarity (Wang et al., IEEE TIP 2004), per image, averaged over channels.

    ``SSIM = ((2 μx μy + C1)(2 σxy + C2)) / ((μx² + μy² + C1)(σx² + σy² + C2))`` with
    ``C1 = (K1 R)²``, ``C2 = (K2 R)²`` and local statistics from a separable Gaussian window
    (σ = 1.5, truncated at 3.5σ → 11×11). The mean map is taken over the valid region, as
    scikit-image does. Images are ``(B, C, H, W)`` with ``H, W ≥ 11``.
    """
    _check(x_hat, x, "ssim")
    _check_range(data_range)
    if x.dim() != 4:
        raise DataError(f"ssim expects images (B, C, H, W), got shape {tuple(x.shape)}")
    radius = int(3.5 * sigma + 0.5)
    win = 2 * radius + 1
    if x.shape[-1] < win or x.shape[-2] < win:
        raise DataError(
            f"ssim needs images of at least {win}×{win} pixels (its Gaussian window), got "
            f"{x.shape[-2]}×{x.shape[-1]}; use psnr for smaller images"
        )
    b, c = x.shape[:2]
    a = x_hat.detach().double().reshape(b * c, 1, *x.shape[-2:])
    r = x.detach().double().reshape(b * c, 1, *x.shape[-2:])
    g = _gaussian_window(sigma, radius, a.dtype, a.device)
    stack = torch.cat([a, r, a * a, r * r, a * r], dim=1).reshape(-1, 1, *x.shape[-2:])
    # separable valid-mode filtering: the output covers exactly the uncropped region of skimage
    f = F.conv2d(stack, g.view(1, 1, -1, 1))
    f = F.conv2d(f, g.view(1, 1, 1, -1))
    f = f.reshape(b * c, 5, f.shape[-2], f.shape[-1])
    mu_a, mu_r, e_aa, e_rr, e_ar = f.unbind(dim=1)
    var_a = e_aa - mu_a**2
    var_r = e_rr - mu_r**2
    cov = e_ar - mu_a * mu_r
    c1 = (k1 * data_range) ** 2
    c2 = (k2 * data_range) ** 2
    s = ((2 * mu_a * mu_r + c1) * (2 * cov + c2)) / (
        (mu_a**2 + mu_r**2 + c1) * (var_a + var_r + c2)
    )
    val = s.reshape(b, -1).mean(dim=1)
    return _reduce(val.float(), reduction)


def _t(level: float, dof: int) -> float:
    from scipy.stats import t

    return float(t.ppf(0.5 + level / 2, dof))


def mean_ci(values, level: float = 0.95) -> tuple[float, float]:
    r"""``(mean, half-width)`` of the Student-t confidence interval ``x̄ ± t_{n−1} s/√n``.

    ``s`` is the sample standard deviation (``n − 1`` in the denominator). One value has an
    undefined interval: the half-width is ``nan``.
    """
    import numpy as np

    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if v.size == 0:
        raise DataError("mean_ci needs at least one value")
    if not 0 < level < 1:
        raise DataError(f"level must be in (0, 1), got {level}")
    if v.size == 1:
        return float(v[0]), float("nan")
    return float(v.mean()), _t(level, v.size - 1) * float(v.std(ddof=1)) / math.sqrt(v.size)


def seeded_mean_ci(values, level: float = 0.95) -> tuple[float, float, float]:
    r"""Mean and confidence half-width of a score measured on ``N`` images for ``S`` seeds.

    ``values`` is ``(S, N)`` (one row per training seed, the same test images in each row). The
    estimate is the grand mean. Its uncertainty has two sources, combined in quadrature: the test
    images (``t_{N−1}·s_img/√N`` with ``s_img`` the standard deviation over images of the
    seed-averaged scores) and, when ``S > 1``, the training seeds (``t_{S−1}·s_seed/√S`` with
    ``s_seed`` the standard deviation of the per-seed means). Returns ``(mean, half-width,
    s_seed)`` (``s_seed`` is ``nan`` for one seed).
    """
    import numpy as np

    v = np.asarray(values, dtype=np.float64)
    if v.ndim == 1:
        v = v[None]
    mean, img_hw = mean_ci(v.mean(axis=0), level)
    if v.shape[0] == 1:
        return mean, img_hw, float("nan")
    _, seed_hw = mean_ci(v.mean(axis=1), level)
    s_seed = float(v.mean(axis=1).std(ddof=1))
    img_hw = 0.0 if math.isnan(img_hw) else img_hw
    return mean, math.sqrt(img_hw**2 + seed_hw**2), s_seed

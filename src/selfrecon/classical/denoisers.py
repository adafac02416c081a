r"""Classical denoisers with one natural parameter each, for self-supervised calibration.

Every denoiser is a function ``f(image, param) -> image`` on a float NumPy array of shape
``(H, W)`` or ``(H, W, C)`` (channels last, filtered independently or jointly as the underlying
scikit-image routine does with ``channel_axis=-1``). The pixel work is done by SciPy / scikit-image;
nothing here re-implements a filter.

=============== ================== ===============================================================
name            parameter          implementation
=============== ================== ===============================================================
``median``      radius (int ≥ 1)   *donut* median: ``scipy.ndimage.median_filter`` with the disk
                                   footprint minus its centre — J-invariant by construction
                                   (Batson & Royer, ICML 2019)
``median-full`` radius (int ≥ 1)   ordinary median over the full disk (NOT J-invariant; the
                                   "trap" of calibrating on ‖f(y) − y‖² directly)
``gaussian``    σ (pixels, > 0)    ``skimage.filters.gaussian``
``wavelet``     σ (noise std, > 0) ``skimage.restoration.denoise_wavelet`` (BayesShrink, soft)
``tv``          weight (> 0)       ``skimage.restoration.denoise_tv_chambolle``
``nlmeans``     h (> 0)            ``skimage.restoration.denoise_nl_means`` (patch 5, distance
                                   6, ``fast_mode=True``)
=============== ================== ===============================================================
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from selfrecon.errors import ConfigError, MissingDependencyError

__all__ = [
    "Denoiser",
    "DENOISERS",
    "get_denoiser",
    "donut_median",
    "median",
    "gaussian",
    "wavelet",
    "tv",
    "nlmeans",
    "disk_footprint",
]


def disk_footprint(radius: int, donut: bool = False) -> np.ndarray:
    """Boolean disk of ``radius`` (``skimage.morphology.disk``), optionally without its centre."""
    from skimage.morphology import disk

    fp = disk(radius).astype(bool)
    if donut:
        fp[radius, radius] = False
    return fp


def _check_image(image: np.ndarray, what: str) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim not in (2, 3):
        raise ConfigError(
            f"{what} expects an image of shape (H, W) or (H, W, C), got shape {image.shape}; "
            "pass one image with channels last"
        )
    if not np.issubdtype(image.dtype, np.floating):
        image = image.astype(np.float64)
    return image


def _channel_axis(image: np.ndarray) -> int | None:
    return -1 if image.ndim == 3 else None


def _radius(param: float, what: str) -> int:
    r = float(param)
    if not math.isfinite(r) or r < 1 or r != round(r):
        raise ConfigError(
            f"{what} radius must be a whole number ≥ 1, got {param}; use a grid like 1:6"
        )
    return int(round(r))


def _positive(param: float, what: str) -> float:
    p = float(param)
    if not math.isfinite(p) or p <= 0:
        raise ConfigError(
            f"{what} must be a positive number, got {param}; use a grid of values > 0"
        )
    return p


def _median(image: np.ndarray, radius: int, donut: bool) -> np.ndarray:
    fp = disk_footprint(radius, donut=donut)
    if image.ndim == 3:  # filter each channel on its own
        fp = fp[:, :, None]
    out = ndimage.median_filter(image, footprint=fp, mode="nearest")
    if donut:
        _wrap_frame(out, image, fp, radius)
    return out


def _wrap_frame(out: np.ndarray, image: np.ndarray, fp: np.ndarray, r: int) -> None:
    """Recompute the outermost rows/columns of a donut median with periodic boundaries.

    Every padding that copies image values (``nearest``, ``reflect``, ``mirror``) maps some
    out-of-image neighbour back onto the centre pixel, which breaks J-invariance there: with
    ``nearest`` (scikit-image's default, used by the Noise2Self notebook) this happens exactly on
    the one-pixel frame; with ``mirror`` on a band of width r/2. Periodic (``wrap``) padding
    never maps an offset ``0 < |d| ≤ r < size`` onto the centre, so the frame is recomputed with it
    and the donut median is J-invariant on every pixel; the interior keeps the ``nearest`` boundary.
    """
    h, w = image.shape[:2]
    if min(h, w) <= r:
        raise ConfigError(
            f"median radius {r} needs an image larger than {r}×{r} pixels, got {h}×{w}"
        )
    pad = [(r, r), (r, r)] + [(0, 0)] * (image.ndim - 2)
    p = np.pad(image, pad, mode="wrap")
    k = 2 * r + 1

    def strip(rows: slice, cols: slice) -> np.ndarray:
        return ndimage.median_filter(p[rows, cols], footprint=fp, mode="nearest")

    out[0] = strip(slice(0, k), slice(None))[r, r : r + w]
    out[-1] = strip(slice(h - 1, h - 1 + k), slice(None))[r, r : r + w]
    out[:, 0] = strip(slice(None), slice(0, k))[r : r + h, r]
    out[:, -1] = strip(slice(None), slice(w - 1, w - 1 + k))[r : r + h, r]


def donut_median(image: np.ndarray, radius: float) -> np.ndarray:
    """Median over the disk of ``radius`` without its centre pixel (J-invariant).

    The output at a pixel never reads that pixel, so ‖f(y) − y‖² is an unbiased estimate of
    ‖f(y) − x‖² + σ²·n (Batson & Royer, ICML 2019, Prop. 1). For an even number of neighbours the
    upper of the two middle values is taken (SciPy's rank ``n // 2``), as in the paper's notebook.
    """
    image = _check_image(image, "median")
    return _median(image, _radius(radius, "median"), donut=True)


donut_median.is_j_invariant = True  # type: ignore[attr-defined]


def median(image: np.ndarray, radius: float) -> np.ndarray:
    """Ordinary median over the full disk of ``radius`` (includes the centre; not J-invariant)."""
    image = _check_image(image, "median-full")
    return _median(image, _radius(radius, "median-full"), donut=False)


def gaussian(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian low-pass filter of std ``sigma`` pixels (``skimage.filters.gaussian``)."""
    from skimage.filters import gaussian as _gaussian

    image = _check_image(image, "gaussian")
    return _gaussian(
        image,
        sigma=_positive(sigma, "gaussian sigma"),
        channel_axis=_channel_axis(image),
        preserve_range=True,
        mode="reflect",
    )


def wavelet(image: np.ndarray, sigma: float) -> np.ndarray:
    """Wavelet shrinkage (``skimage.restoration.denoise_wavelet``, BayesShrink, soft thresholding).

    The parameter is the noise standard deviation handed to BayesShrink, which sets the per-subband
    thresholds σ²/σ_signal (Chang, Yu & Vetterli, IEEE TIP 2000).
    """
    from skimage.restoration import denoise_wavelet

    try:
        import pywt  # noqa: F401  (scikit-image's wavelet backend, an optional dependency)
    except ImportError as err:
        raise MissingDependencyError(
            "the wavelet denoiser needs PyWavelets; install it with `pip install PyWavelets`"
        ) from err
    image = _check_image(image, "wavelet")
    return denoise_wavelet(
        image,
        sigma=_positive(sigma, "wavelet sigma"),
        channel_axis=_channel_axis(image),
        mode="soft",
        method="BayesShrink",
        rescale_sigma=True,
    )


def tv(image: np.ndarray, weight: float) -> np.ndarray:
    """Total-variation denoising (Chambolle 2004, ``skimage.restoration.denoise_tv_chambolle``)."""
    from skimage.restoration import denoise_tv_chambolle

    image = _check_image(image, "tv")
    return denoise_tv_chambolle(
        image, weight=_positive(weight, "tv weight"), channel_axis=_channel_axis(image)
    )


def nlmeans(image: np.ndarray, h: float) -> np.ndarray:
    """Non-local means (Buades et al., CVPR 2005; ``skimage.restoration.denoise_nl_means``).

    Patch size 5, search distance 6, ``fast_mode=True`` (the settings of the Noise2Self notebook);
    ``h`` is the patch-distance cut-off in intensity units.
    """
    from skimage.restoration import denoise_nl_means

    image = _check_image(image, "nlmeans")
    return denoise_nl_means(
        image,
        h=_positive(h, "nlmeans h"),
        patch_size=5,
        patch_distance=6,
        fast_mode=True,
        channel_axis=_channel_axis(image),
    )


@dataclass(frozen=True)
class Denoiser:
    """A named denoiser: the function, its parameter's name, a default grid, and whether it is
    J-invariant by construction (then calibration needs no masking)."""

    name: str
    fn: Callable[[np.ndarray, float], np.ndarray]
    param_name: str
    default_grid: tuple[float, ...] = field(default=())
    j_invariant: bool = False


DENOISERS: dict[str, Denoiser] = {
    d.name: d
    for d in [
        Denoiser("median", donut_median, "radius", (1, 2, 3, 4, 5, 6), j_invariant=True),
        Denoiser("median-full", median, "radius", (1, 2, 3, 4, 5, 6)),
        Denoiser("gaussian", gaussian, "sigma", (0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0)),
        Denoiser("wavelet", wavelet, "sigma", (0.04, 0.06, 0.08, 0.1, 0.12, 0.15, 0.2, 0.25)),
        Denoiser("tv", tv, "weight", (0.02, 0.04, 0.06, 0.08, 0.1, 0.12, 0.15, 0.2)),
        Denoiser("nlmeans", nlmeans, "h", (0.04, 0.06, 0.08, 0.1, 0.12, 0.15)),
    ]
}


def get_denoiser(name: str) -> Denoiser:
    """Look a named denoiser up; unknown names get a one-line error listing the known ones."""
    key = str(name).lower().replace("_", "-")
    if key in ("donut", "donut-median"):
        key = "median"
    if key in ("median-ordinary", "ordinary-median", "full-median"):
        key = "median-full"
    if key in ("nl-means", "nlm", "non-local-means"):
        key = "nlmeans"
    if key not in DENOISERS:
        raise ConfigError(
            f"unknown denoiser {name!r}; choose one of {', '.join(DENOISERS)} or pass a callable "
            "f(image, param)"
        )
    return DENOISERS[key]

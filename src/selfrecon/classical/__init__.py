"""selfrecon.classical — self-supervised (J-invariant) calibration of classical denoisers.

Noise2Self without a network (Batson & Royer, ICML 2019): for a J-invariant denoiser the loss
‖f(y) − y‖² equals the true error plus the noise variance, so its minimiser over the denoiser's
parameter is the best parameter, found from the noisy image alone.

>>> from selfrecon.classical import calibrate
>>> result = calibrate("median", noisy, "1:6")          # doctest: +SKIP
>>> result.best, result.denoised                         # doctest: +SKIP
"""

from selfrecon.classical.calibrate import (
    Result,
    calibrate,
    estimate_noise_var,
    parse_grid,
    psnr,
    shrink,
)
from selfrecon.classical.denoisers import (
    DENOISERS,
    Denoiser,
    donut_median,
    gaussian,
    get_denoiser,
    median,
    nlmeans,
    tv,
    wavelet,
)
from selfrecon.classical.files import calibrate_files
from selfrecon.classical.jinvariant import j_invariant

__all__ = [
    "DENOISERS",
    "Denoiser",
    "Result",
    "calibrate",
    "calibrate_files",
    "donut_median",
    "estimate_noise_var",
    "gaussian",
    "get_denoiser",
    "j_invariant",
    "median",
    "nlmeans",
    "parse_grid",
    "psnr",
    "shrink",
    "tv",
    "wavelet",
]

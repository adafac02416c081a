r"""Classical baselines from scikit-image and BM3D as models ``f(y, physics) -> x̂``.

The methods a user already has, wrapped so that the benchmark (and anyone else) evaluates them
exactly like a trained network. Each loops over the images of a batch in NumPy (they are
per-image library routines); none is used inside training.

* :class:`SkimageBiharmonic` — ``skimage.restoration.inpaint_biharmonic`` on the missing pixels of
  inpainting measurements (Damelin & Hoang, Int. J. Math. Math. Sci. 2018).
* :class:`BM3D` — block-matching and 3-D filtering (Dabov, Foi, Katkovnik & Egiazarian, IEEE TIP
  2007) from the ``bm3d`` package, with the true noise level of ``physics.noise`` (the classical
  state of the art for Gaussian denoising; needs ``pip install bm3d``).
* :class:`CalibratedDenoiser` — a scikit-image denoiser (NL-means, TV, wavelet, …) whose parameter
  is chosen per image from the noisy image alone by J-invariant calibration
  (:func:`selfrecon.classical.calibrate`, Batson & Royer, ICML 2019), output shrunk toward the
  noisy image (their §4).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from selfrecon.classical.calibrate import calibrate
from selfrecon.errors import ConfigError, MissingDependencyError

__all__ = ["SkimageBiharmonic", "BM3D", "CalibratedDenoiser", "BASELINES"]


def _images(y: Tensor) -> np.ndarray:
    if y.dim() != 4 or y.is_complex():
        raise ConfigError(
            f"this classical baseline works on real image measurements (B, C, H, W); got shape "
            f"{tuple(y.shape)}"
        )
    return y.detach().cpu().double().numpy()


def _back(out: np.ndarray, like: Tensor) -> Tensor:
    return torch.as_tensor(out, dtype=like.dtype).to(like.device)


class SkimageBiharmonic(nn.Module):
    """scikit-image's biharmonic inpainting of the pixels the inpainting mask did not measure."""

    def forward(self, y: Tensor, physics) -> Tensor:
        from skimage.restoration import inpaint_biharmonic

        from selfrecon.physics import Inpainting

        if not isinstance(physics.operator, Inpainting):
            raise ConfigError(
                "biharmonic inpainting needs inpainting physics; got "
                f"{type(physics.operator).__name__}"
            )
        ys = _images(y)
        mask = physics.measured_mask.detach().cpu().numpy()
        mask = np.broadcast_to(mask, ys.shape)
        out = np.empty_like(ys)
        for b in range(ys.shape[0]):
            for c in range(ys.shape[1]):
                missing = mask[b, c] == 0
                out[b, c] = inpaint_biharmonic(ys[b, c], missing) if missing.any() else ys[b, c]
        return _back(out, y)

    def config(self) -> dict:
        return {}


def _true_sigma(physics) -> float:
    noise = physics.noise
    sigma = getattr(noise, "sigma", None)
    if noise is None or noise.name != "gaussian" or sigma is None or sigma.dim() != 0:
        raise ConfigError(
            "BM3D here uses the true Gaussian noise level: physics.noise must be gaussian with "
            "one sigma"
        )
    return float(sigma)


class BM3D(nn.Module):
    """BM3D with the true σ of ``physics.noise`` (denoising physics), per channel."""

    def __init__(self, sigma: float | None = None):
        super().__init__()
        self.sigma = None if sigma is None else float(sigma)

    def forward(self, y: Tensor, physics) -> Tensor:
        try:
            import bm3d
        except ImportError:
            raise MissingDependencyError(
                "the BM3D baseline needs the bm3d package: pip install bm3d "
                "(or pip install 'selfrecon[bench]')"
            ) from None
        sigma = self.sigma if self.sigma is not None else _true_sigma(physics)
        ys = _images(y)
        out = np.empty_like(ys)
        for b in range(ys.shape[0]):
            for c in range(ys.shape[1]):
                out[b, c] = bm3d.bm3d(ys[b, c], sigma_psd=sigma)
        return _back(out, y)

    def config(self) -> dict:
        return {"sigma": self.sigma}


class CalibratedDenoiser(nn.Module):
    """A classical denoiser calibrated per image by Noise2Self (J-invariant loss), then shrunk.

    Parameters
    ----------
    denoiser : str
        A name of :data:`selfrecon.classical.DENOISERS` (``"nlmeans"``, ``"tv"``, ``"wavelet"``,
        ``"median"``, ``"gaussian"``).
    grid : list of float, optional
        Parameter values tried (default: the denoiser's own grid).
    output : {"shrunk", "j-invariant", "plain"}
        Which image to return (see :class:`selfrecon.classical.Result`).
    """

    def __init__(self, denoiser: str, grid: list[float] | None = None, output: str = "shrunk"):
        super().__init__()
        if output not in ("shrunk", "j-invariant", "plain"):
            raise ConfigError(f"output must be shrunk, j-invariant or plain, got {output!r}")
        self.denoiser, self.grid, self.output = denoiser, grid, output

    def forward(self, y: Tensor, physics) -> Tensor:
        ys = _images(y)
        out = np.empty_like(ys)
        sigma = getattr(physics.noise, "sigma", None) if physics.noise is not None else None
        var = float(sigma) ** 2 if sigma is not None and sigma.dim() == 0 else None
        for b in range(ys.shape[0]):
            img = ys[b, 0] if ys.shape[1] == 1 else np.moveaxis(ys[b], 0, -1)
            res = calibrate(self.denoiser, img, self.grid, noise_var=var)
            pick = {"shrunk": res.shrunk, "j-invariant": res.denoised_j, "plain": res.denoised}
            den = pick[self.output]
            out[b] = den[None] if ys.shape[1] == 1 else np.moveaxis(den, -1, 0)
        return _back(out, y)

    def config(self) -> dict:
        return {"denoiser": self.denoiser, "grid": self.grid, "output": self.output}


class CubicUpsampling(nn.Module):
    """Cubic-spline interpolation of super-resolution measurements back to the high-resolution
    grid (``scipy.ndimage.map_coordinates``, order 3, periodic like the operator's blur) — the
    bicubic upsampling a user already has, aligned with :class:`~selfrecon.physics.Downsampling`'s
    sampling: low-resolution pixel ``(i, j)`` sits at high-resolution ``(f·i, f·j)`` (a
    centre-aligned resize such as ``skimage.transform.rescale`` is half a pixel off for ``f = 2``
    and loses about 1 dB to that shift alone)."""

    def forward(self, y: Tensor, physics) -> Tensor:
        from scipy.ndimage import map_coordinates

        from selfrecon.physics import Downsampling

        op = physics.operator
        if not isinstance(op, Downsampling):
            raise ConfigError(
                f"cubic upsampling needs downsampling physics; got {type(op).__name__}"
            )
        ys, f = _images(y), op.factor
        h, w = ys.shape[-2:]
        rows, cols = np.meshgrid(np.arange(h * f) / f, np.arange(w * f) / f, indexing="ij")
        out = np.empty((*ys.shape[:2], h * f, w * f))
        for b in range(ys.shape[0]):
            for c in range(ys.shape[1]):
                out[b, c] = map_coordinates(ys[b, c], [rows, cols], order=3, mode="grid-wrap")
        return _back(out, y)


#: names the benchmark configs use for these baselines
BASELINES: dict[str, type[nn.Module]] = {
    "bicubic": CubicUpsampling,
    "skimage_biharmonic": SkimageBiharmonic,
    "bm3d": BM3D,
    "calibrated": CalibratedDenoiser,
}

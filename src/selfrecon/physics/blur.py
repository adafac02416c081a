r"""Circular blur and blur-then-decimate (super-resolution), diagonalised by the 2-D DFT.

A kernel ``k`` of size ``(h, w)`` with centre ``(h // 2, w // 2)`` acts by circular convolution

    (k ⊛ x)[n] = Σ_j k[j] x[n - (j - centre)]   (indices mod the image size),

computed as ``irfft2(K ⊙ rfft2(x))`` with ``K`` the DFT of the kernel zero-padded to the image size
and rolled so its centre sits at pixel ``(0, 0)`` (Gonzalez & Woods, *Digital Image Processing*,
§4.6; Hansen, Nagy & O'Leary, *Deblurring Images*, SIAM 2006, §4.2 — periodic boundaries).
The adjoint is correlation, ``conj(K)``; the pseudo-inverse divides by ``K`` (see :class:`Blur`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from selfrecon.errors import ConfigError, shape_str
from selfrecon.physics.base import LinearOperator, _cache_key, as_batched_param, check_device
from selfrecon.physics.physics import register_operator

__all__ = ["Blur", "Downsampling", "gaussian_kernel", "motion_kernel"]


def gaussian_kernel(
    sigma: float | Sequence[float], size: int | Sequence[int] | None = None
) -> Tensor:
    r"""Normalised 2-D Gaussian ``k[i, j] ∝ exp(-(i - c_i)²/(2σ_y²) - (j - c_j)²/(2σ_x²))``.

    ``sigma`` is one value or ``(σ_y, σ_x)`` in pixels; ``size`` defaults to ``2·ceil(3σ) + 1`` per
    axis (odd, so the centre is a pixel). Returns ``(h, w)`` float32.
    """
    sy, sx = (float(sigma), float(sigma)) if isinstance(sigma, (int, float)) else map(float, sigma)
    if sy <= 0 or sx <= 0:
        raise ConfigError(f"gaussian_kernel needs sigma > 0, got {sigma}")
    if size is None:
        size = (2 * math.ceil(3 * sy) + 1, 2 * math.ceil(3 * sx) + 1)
    h, w = (int(size), int(size)) if isinstance(size, int) else (int(s) for s in size)
    i = torch.arange(h, dtype=torch.float64) - h // 2
    j = torch.arange(w, dtype=torch.float64) - w // 2
    k = torch.exp(-(i[:, None] ** 2) / (2 * sy**2) - (j[None, :] ** 2) / (2 * sx**2))
    return (k / k.sum()).float()


def motion_kernel(length: float, angle: float = 0.0, size: int | None = None) -> Tensor:
    r"""Linear motion blur: a line segment of ``length`` pixels at ``angle`` degrees, ``Σ k = 1``.

    The segment is centred on the kernel centre and runs at ``angle`` counter-clockwise from the
    horizontal (rows grow downwards, so the row offset is ``-sin``). It is rasterised with
    anti-aliasing: ``k[p] ∝ max(0, 1 - d(p))``, ``d(p)`` the distance from pixel centre ``p`` to
    the segment. ``size`` defaults to the smallest odd size holding the segment.
    """
    if length < 1:
        raise ConfigError(f"motion_kernel needs length ≥ 1 pixel, got {length}")
    half = (length - 1) / 2
    if size is None:
        size = 2 * math.ceil(half) + 1
    t = math.radians(angle)
    u = torch.tensor([-math.sin(t), math.cos(t)], dtype=torch.float64)  # (row, col) direction
    c = torch.arange(size, dtype=torch.float64) - size // 2
    p = torch.stack(torch.meshgrid(c, c, indexing="ij"), dim=-1)  # (size, size, 2)
    along = (p @ u).clamp(-half, half)
    d = (p - along[..., None] * u).norm(dim=-1)
    k = (1 - d).clamp_min(0)
    return (k / k.sum()).float()


def _as_kernel(kernel: Tensor, what: str) -> Tensor:
    k = torch.as_tensor(kernel)
    if k.is_complex() or not k.is_floating_point():
        k = k.float()
    if k.dim() < 2:
        raise ConfigError(
            f"{what} must be (h, w), (C, h, w) or (B, C, h, w); got shape {shape_str(k.shape)}"
        )
    return as_batched_param(k, 4, what)


def _kernel_spectrum(kernel: Tensor, H: int, W: int, dtype: torch.dtype, onesided: bool) -> Tensor:
    """DFT of the kernel zero-padded to ``(H, W)`` with its centre moved to pixel ``(0, 0)``."""
    h, w = kernel.shape[-2:]
    pad = kernel.new_zeros(*kernel.shape[:-2], H, W, dtype=dtype)
    pad[..., :h, :w] = kernel.to(dtype)
    pad = torch.roll(pad, shifts=(-(h // 2), -(w // 2)), dims=(-2, -1))
    return torch.fft.rfft2(pad) if onesided else torch.fft.fft2(pad)


def _safe_inverse(spec: Tensor, power: Tensor, threshold: Tensor) -> Tensor:
    """``spec / power`` where ``power > threshold``, else 0."""
    keep = power > threshold
    return torch.where(
        keep, spec / torch.where(keep, power, torch.ones_like(power)), torch.zeros_like(spec)
    )


@register_operator("blur")
class Blur(LinearOperator):
    r"""Circular convolution ``A x = k ⊛ x``, ``A = Fᴴ diag(K) F`` (periodic boundaries).

    * adjoint: correlation, ``Aᵀ = Fᴴ diag(conj K) F``;
    * pseudo-inverse (truncated SVD, Hansen et al. 2006, §5.1): the singular values of ``A`` are
      ``|K|``, so ``A† y = Fᴴ (Y / K)`` where ``|K| > rcond · max|K|`` and ``0`` elsewhere. This is
      the exact Moore-Penrose pseudo-inverse when no nonzero ``|K|`` falls below the threshold (e.g.
      box kernels, whose spectra have exact zeros); otherwise
      ``‖A A† A x - A x‖ ≤ rcond · ‖A‖ · ‖x‖``. The default ``rcond = 1e-3`` bounds the noise
      amplification of ``A†`` by 1000.

    Parameters
    ----------
    kernel : Tensor
        ``(h, w)`` shared by all channels, ``(C, h, w)`` per channel, or per-sample ``(B, C, h, w)``
        (``C`` may be 1); smaller than the image. See :func:`gaussian_kernel`,
        :func:`motion_kernel`.
    img_shape : tuple, optional
        ``(C, H, W)`` or ``(H, W)``; only used by :meth:`norm` and for checks.
    rcond : float
        Relative truncation threshold of the pseudo-inverse.
    """

    measurement_space = "image"

    per_sample_params = ("kernel",)

    def __init__(self, kernel: Tensor, img_shape: Sequence[int] | None = None, rcond: float = 1e-3):
        super().__init__()
        self.register_buffer("kernel", _as_kernel(kernel, "blur kernel"))
        if img_shape is not None:
            shape = tuple(int(s) for s in img_shape)
            self.in_shape = shape if len(shape) == 3 else (1, *shape)
        else:
            self.in_shape = None
        if not 0 <= rcond < 1:
            raise ConfigError(f"rcond must be in [0, 1), got {rcond}")
        self.rcond = float(rcond)
        self.rank_tol = self.rcond
        self._cache: dict = {}

    def _check(self, x: Tensor, what: str = "images") -> None:
        k = self.kernel
        if x.dim() != 4:
            raise ConfigError(f"{what} must be (B, C, H, W), got shape {shape_str(x.shape)}")
        if self.in_shape is not None and tuple(x.shape[-2:]) != tuple(self.in_shape[-2:]):
            raise ConfigError(
                f"{type(self).__name__} was built for {shape_str(self.in_shape[-2:])} images but "
                f"{what} "
                f"have shape {shape_str(x.shape)}; build it with img_shape={tuple(x.shape[1:])}"
            )
        if k.shape[-2] > x.shape[-2] or k.shape[-1] > x.shape[-1]:
            raise ConfigError(
                f"blur kernel of shape {shape_str(k.shape[-2:])} is larger than the {what} of "
                "shape "
                f"{shape_str(x.shape)}; use a smaller kernel"
            )
        if k.shape[1] not in (1, x.shape[1]) or k.shape[0] not in (1, x.shape[0]):
            raise ConfigError(
                f"blur kernel has shape {shape_str(k.shape)} (batch, channels, h, w) but {what} "
                "have shape "
                f"{shape_str(x.shape)}; pass one kernel per channel (or one for all) and per "
                "sample (or one)"
            )
        if x.is_complex() or not x.is_floating_point():
            raise ConfigError(
                f"{type(self).__name__} needs real floating-point {what}, got {x.dtype}"
            )
        check_device(x, k, type(self).__name__)

    def _spectrum(self, H: int, W: int, dtype: torch.dtype, onesided: bool = True) -> Tensor:
        k = self.kernel
        key = (H, W, dtype, onesided, *_cache_key(k))
        spec = self._cache.get(key)
        if spec is None:
            spec = _kernel_spectrum(k, H, W, dtype, onesided)
            self._cache = {key: spec}
        return spec

    def _filter(self, x: Tensor, spec: Tensor) -> Tensor:
        return torch.fft.irfft2(torch.fft.rfft2(x) * spec, s=x.shape[-2:])

    def forward(self, x: Tensor) -> Tensor:
        self._check(x)
        return self._filter(x, self._spectrum(*x.shape[-2:], x.dtype))

    def adjoint(self, y: Tensor) -> Tensor:
        self._check(y, "measurements")
        return self._filter(y, self._spectrum(*y.shape[-2:], y.dtype).conj())

    def pinv(self, y: Tensor, tol: float = 1e-6, max_iter: int = 100) -> Tensor:
        self._check(y, "measurements")
        K = self._spectrum(*y.shape[-2:], y.dtype)
        mag = K.abs()
        # max over the full spectrum = max over the one-sided half (Hermitian symmetry)
        thr = self.rcond * mag.amax(dim=(-2, -1), keepdim=True)
        inv = _safe_inverse(K.conj(), mag**2, thr**2)  # 1/K = conj(K)/|K|²
        return self._filter(y, inv)

    def _apply(self, fn, recurse=True):
        self._cache = {}
        return super()._apply(fn, recurse)

    def config(self) -> dict:
        cfg = {"kernel": self.kernel, "rcond": self.rcond}
        if self.in_shape is not None:
            cfg["img_shape"] = list(self.in_shape)
        return cfg


@register_operator("downsampling")
class Downsampling(LinearOperator):
    r"""Super-resolution ``A x = S (k ⊛ x)``: circular blur, then keep every ``factor``-th pixel.

    ``S`` keeps pixels ``(factor·i, factor·j)``. The default kernel is the ``factor × factor`` box
    ``1/factor²`` (centre ``(factor // 2, factor // 2)``), which makes ``A`` exactly average pooling
    over non-overlapping blocks (the "2× super-resolution" of the identifiability table in
    PAPERS.md); ``kernel="gaussian"`` uses :func:`gaussian_kernel` with ``σ = factor / 2``.

    * adjoint: ``Aᵀ y = kᵀ ⊛ (Sᵀ y)``, ``Sᵀ`` zero-filling upsampling;
    * pseudo-inverse in closed form: ``A† = Aᵀ (A Aᵀ)⁺``. ``A Aᵀ = S C Sᵀ`` with ``C`` the circulant
      of spectrum ``|K|²``; decimating a circulant gives a circulant on the low-resolution grid
      whose spectrum is the mean of ``|K|²`` over the ``factor²`` frequencies that alias together,
      ``Λ(k) = factor⁻² Σ_{a,b} |K(k₁ + a H/f, k₂ + b W/f)|²`` (Oppenheim & Schafer, *Discrete-Time
      Signal Processing*, §4.6, decimation in frequency). So ``A† y = Aᵀ Fᴴ (F y / Λ)``, dividing
      only where ``Λ > rcond² · max Λ`` (singular values ``√Λ`` truncated as in :class:`Blur`).

    Parameters
    ----------
    factor : int
        Decimation factor; image height and width must be multiples of it.
    kernel : Tensor or str, optional
        ``None``/``"box"`` (default), ``"gaussian"``, or a kernel as in :class:`Blur`.
    img_shape : tuple, optional
        ``(C, H, W)`` or ``(H, W)`` of the high-resolution images (for :meth:`norm` and checks).
    rcond : float
        Relative singular-value truncation of the pseudo-inverse.
    """

    measurement_space = "image"

    per_sample_params = ("kernel",)

    def __init__(
        self,
        factor: int,
        kernel: Tensor | str | None = None,
        img_shape: Sequence[int] | None = None,
        rcond: float = 1e-3,
    ):
        super().__init__()
        f = int(factor)
        if f < 1:
            raise ConfigError(f"downsampling factor must be an integer ≥ 1, got {factor}")
        self.factor = f
        if kernel is None or (isinstance(kernel, str) and kernel == "box"):
            kernel = torch.full((f, f), 1.0 / f**2)
        elif isinstance(kernel, str) and kernel == "gaussian":
            kernel = gaussian_kernel(f / 2)
        elif isinstance(kernel, str):
            raise ConfigError(f"unknown kernel {kernel!r}; pass 'box', 'gaussian' or a tensor")
        if img_shape is not None:
            shape = tuple(int(s) for s in img_shape)
            if shape[-2] % f or shape[-1] % f:
                raise ConfigError(f"image size {shape[-2:]} is not a multiple of the factor {f}")
        self.blur = Blur(kernel, img_shape=img_shape, rcond=rcond)
        self.rank_tol = self.blur.rcond
        self.in_shape = self.blur.in_shape

    @property
    def kernel(self) -> Tensor:
        return self.blur.kernel

    def _check_hr(self, x: Tensor) -> None:
        if x.dim() == 4 and (x.shape[-2] % self.factor or x.shape[-1] % self.factor):
            raise ConfigError(
                f"images of shape {shape_str(x.shape)} cannot be downsampled by {self.factor}: "
                "height and "
                f"width must be multiples of it; crop or pad the images"
            )

    def forward(self, x: Tensor) -> Tensor:
        self._check_hr(x)
        f = self.factor
        return self.blur(x)[..., ::f, ::f]

    def _upsample(self, y: Tensor) -> Tensor:
        if y.dim() != 4:
            raise ConfigError(
                f"low-resolution measurements must be (B, C, h, w), got shape {shape_str(y.shape)}"
            )
        f = self.factor
        B, C, h, w = y.shape
        if self.in_shape is not None and (h * f, w * f) != tuple(self.in_shape[-2:]):
            raise ConfigError(
                f"measurements have shape {shape_str(y.shape)} but Downsampling(factor={f}) of "
                f"{shape_str(self.in_shape[-2:])} images gives (B, C, {self.in_shape[-2] // f}, "
                f"{self.in_shape[-1] // f})"
            )
        up = y.new_zeros(B, C, h * f, w * f)
        up[..., ::f, ::f] = y
        return up

    def adjoint(self, y: Tensor) -> Tensor:
        return self.blur.adjoint(self._upsample(y))

    def pinv(self, y: Tensor, tol: float = 1e-6, max_iter: int = 100) -> Tensor:
        up = self._upsample(y)
        self.blur._check(up, "measurements")
        f = self.factor
        H, W = up.shape[-2:]
        h, w = H // f, W // f
        P = self.blur._spectrum(H, W, y.dtype, onesided=False).abs() ** 2  # |K|² on the full grid
        lam = P.reshape(*P.shape[:-2], f, h, f, w).mean(dim=(-4, -2))  # mean over aliases
        thr = (self.blur.rcond**2) * lam.amax(dim=(-2, -1), keepdim=True)
        z = torch.fft.ifft2(_safe_inverse(torch.fft.fft2(y), lam, thr)).real
        return self.adjoint(z)

    def config(self) -> dict:
        cfg = {"factor": self.factor, "kernel": self.kernel, "rcond": self.blur.rcond}
        if self.in_shape is not None:
            cfg["img_shape"] = list(self.in_shape)
        return cfg

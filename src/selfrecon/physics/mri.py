r"""Cartesian MRI: single-coil and multi-coil (SENSE) forward models, k-space masks, coil maps.

Images are complex ``(B, C, H, W)`` tensors, k-space is complex ``(B, C, H, W)`` (zeros off the
sampling mask). The Fourier transform is the orthonormal *centred* 2-D DFT

    F x = fftshift(fft2(ifftshift(x), norm="ortho")),

so the DC coefficient sits at index ``(H // 2, W // 2)`` and ``F`` is unitary (``Fᴴ = F⁻¹``).
Single coil: ``A = M F`` (Lustig, Donoho & Pauly, MRM 2007, §"Cartesian sampling");
multi-coil SENSE: ``y_c = M F (S_c x)`` (Pruessmann et al., MRM 1999, eq. 1).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from selfrecon.errors import ConfigError, shape_str
from selfrecon.physics.base import MaskedProjection, check_device
from selfrecon.physics.physics import register_operator

__all__ = ["MRI", "MultiCoilMRI", "birdcage_maps", "fft2c", "ifft2c", "mri_mask"]

_DIMS = (-2, -1)
_MASK_KINDS = ("random", "equispaced", "gaussian")


def fft2c(x: Tensor) -> Tensor:
    """Orthonormal centred 2-D DFT (last two dims): ``fftshift(fft2(ifftshift(x), "ortho"))``."""
    return torch.fft.fftshift(
        torch.fft.fft2(torch.fft.ifftshift(x, dim=_DIMS), norm="ortho"), dim=_DIMS
    )


def ifft2c(k: Tensor) -> Tensor:
    """Inverse (= adjoint) of :func:`fft2c`: ``fftshift ∘ ifft2(norm="ortho") ∘ ifftshift``."""
    return torch.fft.fftshift(
        torch.fft.ifft2(torch.fft.ifftshift(k, dim=_DIMS), norm="ortho"), dim=_DIMS
    )


def _as_mask(mask: Tensor, what: str = "MRI mask") -> Tensor:
    """``(H, W)`` → ``(1, 1, H, W)``; per-sample ``(B[, 1], H, W)`` → ``(B, 1, H, W)``."""
    mask = torch.as_tensor(mask)
    if mask.dtype == torch.bool:
        mask = mask.float()
    if mask.is_complex() or not mask.is_floating_point():
        mask = mask.float()
    if mask.dim() == 2:
        mask = mask[None, None]
    elif mask.dim() == 3:
        mask = mask[:, None]
    elif mask.dim() != 4 or mask.shape[1] != 1:
        raise ConfigError(
            f"{what} has shape {shape_str(mask.shape)}; pass (H, W), or per-sample (B, H, W) / (B, "
            "1, H, W)"
        )
    if not bool(((mask == 0) | (mask == 1)).all()):
        raise ConfigError(f"{what} must contain only 0 (not sampled) and 1 (sampled)")
    return mask


def mri_mask(
    shape: Sequence[int],
    acceleration: float,
    center_fraction: float,
    kind: str = "random",
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""A 1-D Cartesian sampling mask: whole k-space lines (columns) with a fully sampled centre.

    Every sampled column ``j`` is a full line ``mask[:, j] = 1`` (phase encoding along the width).
    Line counts (the rounding rule): ``n_lines = floor(W / acceleration + 1/2)`` lines in total, of
    which ``n_center = floor(W · center_fraction + 1/2)`` are the contiguous low frequencies around
    the DC column ``W // 2`` (the centred FFT's DC index). The remaining ``n_lines - n_center`` are
    drawn from the other columns according to ``kind``:

    * ``"random"``     — uniformly without replacement (Lustig et al., MRM 2007; fastMRI's random
      masks, Zbontar et al. 2018, but with an exact rather than expected line count);
    * ``"equispaced"`` — evenly spaced over the non-centre columns with a random offset;
    * ``"gaussian"``   — without replacement with probability ∝ ``exp(-(j - W/2)² / (2 (W/6)²))``
      (variable density, denser near the centre).

    REI's MRI 4× setting (Chen et al., CVPR 2022) is ``shape=(320, 320)``, 82 of 320 lines with a
    14-line centre, i.e. ``acceleration=320/82, center_fraction=14/320``.

    Returns an ``(H, W)`` float tensor of 0/1.
    """
    if len(shape) != 2:
        raise ConfigError(f"mri_mask needs shape=(H, W), got {tuple(shape)}")
    H, W = (int(s) for s in shape)
    n_lines, n_center = _mask_line_counts(W, acceleration, center_fraction)
    if kind not in _MASK_KINDS:
        raise ConfigError(
            f"unknown mask kind {kind!r}; choose 'random', 'equispaced' or 'gaussian'"
        )
    dev = generator.device if generator is not None else torch.device("cpu")
    lines = torch.zeros(W, device=dev)
    start = W // 2 - n_center // 2
    lines[start : start + n_center] = 1
    outer = torch.nonzero(lines == 0).flatten()  # non-centre columns, ascending
    k = n_lines - n_center
    if k > 0:
        lines[_draw_outer_lines(outer, k, kind, W, generator, dev)] = 1
    return lines.cpu().expand(H, W).clone()


def _mask_line_counts(W: int, acceleration: float, center_fraction: float) -> tuple[int, int]:
    """Validate the sampling rates and return ``(n_lines, n_center)`` for width ``W``."""
    if not acceleration >= 1:
        raise ConfigError(
            f"acceleration must be ≥ 1 (keep about W/acceleration lines), got {acceleration}"
        )
    if not 0 <= center_fraction <= 1:
        raise ConfigError(f"center_fraction must be in [0, 1], got {center_fraction}")
    n_lines = max(1, math.floor(W / acceleration + 0.5))
    n_center = math.floor(W * center_fraction + 0.5)
    if n_center > n_lines:
        raise ConfigError(
            f"the fully sampled centre ({n_center} lines) exceeds the {n_lines} lines that "
            "acceleration "
            f"{acceleration} allows on width {W}; lower center_fraction or the acceleration"
        )
    return n_lines, n_center


def _draw_outer_lines(outer: Tensor, k: int, kind: str, W: int, generator, dev) -> Tensor:
    """Draw ``k`` of the non-centre columns ``outer`` by the rule of the mask ``kind``."""
    if kind == "random":
        return outer[torch.randperm(outer.numel(), generator=generator, device=dev)[:k]]
    if kind == "equispaced":
        step = outer.numel() / k
        offset = float(torch.rand((), generator=generator, device=dev)) * step
        idx = torch.floor(offset + step * torch.arange(k, device=dev, dtype=torch.float64)).long()
        return outer[idx.clamp_max(outer.numel() - 1)]
    w = torch.exp(-((outer.double() - W / 2) ** 2) / (2 * (W / 6) ** 2))  # kind == "gaussian"
    return outer[torch.multinomial(w, k, replacement=False, generator=generator)]


def _mask_recipe(config: dict) -> dict:
    """``config`` with a :func:`mri_mask` recipe (``img_shape``, ``acceleration``,
    ``center_fraction``, ``pattern``, ``seed``) replaced by the mask it draws."""
    config = dict(config)
    if "mask" in config or "acceleration" not in config:
        return config
    recipe = {
        k: config.pop(k)
        for k in ("img_shape", "acceleration", "center_fraction", "pattern")
        if k in config
    }
    seed = config.pop("seed", 0)
    if "img_shape" not in recipe:
        raise ConfigError("an MRI mask recipe needs img_shape [H, W] next to acceleration")
    config["mask"] = mri_mask(
        tuple(recipe["img_shape"])[-2:],
        recipe["acceleration"],
        recipe.get("center_fraction", 0.08),
        recipe.get("pattern", "random"),
        generator=torch.Generator().manual_seed(int(seed)),
    )
    return config


@register_operator("mri")
class MRI(MaskedProjection):
    r"""Single-coil Cartesian MRI ``A x = M ⊙ F x``, ``F`` the orthonormal centred 2-D DFT.

    ``M`` is a 0/1 projection and ``F`` unitary, so ``Aᴴ y = Fᴴ (M ⊙ y)`` and the pseudo-inverse is
    the adjoint (zero-filled reconstruction): ``A† = (M F)† = Fᴴ M† = Fᴴ M``. Each image channel is
    transformed separately with the same mask.

    Parameters
    ----------
    mask : Tensor
        ``(H, W)`` shared, or per-sample ``(B, H, W)`` / ``(B, 1, H, W)``; 1 = sampled. See
        :func:`mri_mask`.

    A spec may give the mask as a recipe for :func:`mri_mask` instead: ``{"name": "mri",
    "img_shape": [H, W], "acceleration": 4, "center_fraction": 0.08, "pattern": "random",
    "seed": 0}``.
    """

    measurement_space = "kspace"

    complex_input = True

    def __init__(self, mask: Tensor):
        super().__init__()
        self.register_buffer("mask", _as_mask(mask))

    @classmethod
    def from_config(cls, config: dict) -> MRI:
        return cls(**_mask_recipe(config))

    @property
    def in_shape(self) -> tuple[int, int, int]:
        return (1, *self.mask.shape[-2:])

    def _check(self, t: Tensor, what: str) -> None:
        m = self.mask
        if t.dim() != 4 or t.shape[-2:] != m.shape[-2:]:
            raise ConfigError(
                f"{type(self).__name__} mask has shape {shape_str(m.shape[-2:])} but {what} have "
                "shape "
                f"{shape_str(t.shape)}; pass (B, C, {m.shape[-2]}, {m.shape[-1]}) tensors or the "
                "mask "
                "used at acquisition"
            )
        if m.shape[0] not in (1, t.shape[0]):
            raise ConfigError(
                f"{type(self).__name__} has {m.shape[0]} per-sample masks (mask shape "
                f"{shape_str(m.shape)}) "
                f"but the batch has {t.shape[0]} items (shape {shape_str(t.shape)})"
            )
        if not (t.is_complex() or t.is_floating_point()):
            raise ConfigError(
                f"{type(self).__name__} needs complex or floating-point {what}, got {t.dtype}"
            )
        check_device(t, m, type(self).__name__)

    def forward(self, x: Tensor) -> Tensor:
        self._check(x, "images")
        return fft2c(x) * self.mask

    def adjoint(self, y: Tensor) -> Tensor:
        self._check(y, "k-space measurements")
        return ifft2c(y * self.mask)


def birdcage_maps(
    n_coils: int,
    shape: Sequence[int],
    radius: float = 2.0,
    dtype: torch.dtype = torch.complex64,
) -> Tensor:
    r"""Simulated smooth complex coil sensitivities of a birdcage (circular) receive array.

    Model (the birdcage simulation of SigPy's ``sim.birdcage_maps``, after Jin, *Electromagnetic
    Analysis and Design in MRI*, 1998): coil ``c`` is a line element at
    ``q_c = radius · (cos θ_c, sin θ_c)``, ``θ_c = 2πc / n_coils``, in coordinates where the image
    spans ``[-1, 1)²``. Its field at a pixel ``p`` falls off as ``1/‖p - q_c‖`` (Biot-Savart for a
    line current) and its phase is the angle of ``p - q_c`` around the element plus ``θ_c``:

        S̃_c(p) = exp(i (∠(p - q_c) + θ_c)) / ‖p - q_c‖,   S_c = S̃_c / sqrt(Σ_c |S̃_c|²).

    The root-sum-of-squares normalisation makes ``Σ_c |S_c(p)|² = 1`` at every pixel, so with a
    fully sampled mask the SENSE operator is an isometry. ``radius > √2`` keeps the coils outside
    the field of view (no singularity); the default ``2`` gives maps whose magnitude varies about
    6-fold across the image while neighbouring pixels differ by ``O(1/N)`` (smooth). Returns
    ``(n_coils, H, W)``.
    """
    if n_coils < 1:
        raise ConfigError(f"n_coils must be ≥ 1, got {n_coils}")
    if radius <= math.sqrt(2):
        raise ConfigError(
            f"radius must be > √2 so coils sit outside the [-1, 1)² image, got {radius}"
        )
    H, W = (int(s) for s in shape)
    yy = (torch.arange(H, dtype=torch.float64) - H / 2) / (H / 2)
    xx = (torch.arange(W, dtype=torch.float64) - W / 2) / (W / 2)
    theta = 2 * math.pi * torch.arange(n_coils, dtype=torch.float64) / n_coils
    dx = xx[None, None, :] - radius * torch.cos(theta)[:, None, None]  # (Nc, 1, W)
    dy = yy[None, :, None] - radius * torch.sin(theta)[:, None, None]  # (Nc, H, 1)
    dist = torch.sqrt(dx**2 + dy**2)
    phase = torch.atan2(dy, dx) + theta[:, None, None]
    maps = torch.polar(1.0 / dist, phase)
    maps = maps / maps.abs().pow(2).sum(dim=0, keepdim=True).sqrt()
    return maps.to(dtype)


@register_operator("multicoil_mri")
class MultiCoilMRI(MRI):
    r"""Multi-coil Cartesian MRI (SENSE): ``y_c = M ⊙ F (S_c ⊙ x)`` for coils ``c = 1..N_c``.

    Pruessmann et al., "SENSE: sensitivity encoding for fast MRI", MRM 1999. Images are
    single-channel complex ``(B, 1, H, W)``; k-space is ``(B, N_c, H, W)`` (the coil axis takes
    the channel slot).
    Adjoint ``Aᴴ y = Σ_c conj(S_c) ⊙ Fᴴ (M ⊙ y_c)``. ``AᴴA`` is not diagonal for a partial mask, so
    :meth:`pinv` is conjugate gradient on the normal equations (the base-class default).

    Parameters
    ----------
    mask : Tensor
        As for :class:`MRI`, shared by all coils.
    coil_maps : Tensor
        ``(N_c, H, W)`` shared or per-sample ``(B, N_c, H, W)`` complex sensitivities, e.g.
        :func:`birdcage_maps`.
    """

    per_sample_params = ("mask", "coil_maps")

    exact_pinv = False  # AᴴA is not diagonal: A† is conjugate gradient to a tolerance

    def __init__(self, mask: Tensor, coil_maps: Tensor):
        super().__init__(mask)
        maps = torch.as_tensor(coil_maps)
        given = maps.shape
        if not maps.is_complex():
            maps = maps.to(torch.complex64)
        if maps.dim() == 3:
            maps = maps[None]
        if maps.dim() != 4 or maps.shape[-2:] != self.mask.shape[-2:]:
            raise ConfigError(
                f"coil_maps have shape {shape_str(given)} but the mask is "
                f"{shape_str(self.mask.shape[-2:])}; pass (N_coils, H, W) or (B, N_coils, H, W) "
                "maps"
            )
        self.register_buffer("coil_maps", maps)

    def _check_x(self, x: Tensor) -> None:
        self._check(x, "images")
        if x.shape[1] != 1:
            raise ConfigError(
                "MultiCoilMRI images have one complex channel, shape (B, 1, H, W); got "
                f"{shape_str(x.shape)}"
            )
        if self.coil_maps.shape[0] not in (1, x.shape[0]):
            raise ConfigError(
                f"MultiCoilMRI has {self.coil_maps.shape[0]} per-sample coil maps but the batch "
                "has "
                f"{x.shape[0]} images (shape {shape_str(x.shape)})"
            )

    def forward(self, x: Tensor) -> Tensor:
        self._check_x(x)
        return fft2c(self.coil_maps * x) * self.mask

    def adjoint(self, y: Tensor) -> Tensor:
        self._check(y, "k-space measurements")
        if y.shape[1] != self.coil_maps.shape[1]:
            raise ConfigError(
                f"k-space has shape {shape_str(y.shape)} but there are {self.coil_maps.shape[1]} "
                "coils "
                f"(coil_maps {shape_str(self.coil_maps.shape)}); pass (B, N_coils, H, W) k-space"
            )
        return (torch.conj(self.coil_maps) * ifft2c(y * self.mask)).sum(dim=1, keepdim=True)

    def pinv(self, y: Tensor, tol: float = 1e-6, max_iter: int = 100) -> Tensor:
        return self.pinv_cg(y, tol=tol, max_iter=max_iter)

    def config(self) -> dict:
        return {"mask": self.mask, "coil_maps": self.coil_maps}

    @classmethod
    def from_config(cls, config: dict) -> MultiCoilMRI:
        """As :meth:`MRI.from_config`; ``coils: N`` instead of ``coil_maps`` simulates
        :func:`birdcage_maps` for the mask's size."""
        config = _mask_recipe(config)
        if "coils" in config:
            config["coil_maps"] = birdcage_maps(int(config.pop("coils")), config["mask"].shape[-2:])
        return cls(**config)

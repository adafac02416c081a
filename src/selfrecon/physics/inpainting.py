r"""Denoising (identity) and inpainting (pixel masks)."""

from __future__ import annotations

import torch
from torch import Tensor

from selfrecon.errors import ConfigError, shape_str
from selfrecon.physics.base import LinearOperator, MaskedProjection, as_batched_param
from selfrecon.physics.physics import register_operator

__all__ = ["Denoising", "Inpainting"]


@register_operator("denoising")
class Denoising(LinearOperator):
    r"""``A = I``: the measurements are the (noisy) image itself. ``A† = Aᵀ = I``."""

    measurement_space = "image"

    exact_pinv = True

    def forward(self, x: Tensor) -> Tensor:
        return x

    def adjoint(self, y: Tensor) -> Tensor:
        return y

    def pinv(self, y: Tensor, tol: float = 1e-6, max_iter: int = 100) -> Tensor:
        return y

    def config(self) -> dict:
        return {}


@register_operator("inpainting")
class Inpainting(MaskedProjection):
    r"""Pixel masking ``A x = m ⊙ x`` with a 0/1 mask ``m``.

    ``A`` is an orthogonal projection, so ``Aᵀ = A† = A`` (Chen et al., ICCV 2021, inpainting task).

    Parameters
    ----------
    mask : Tensor, optional
        ``(H, W)``, ``(C, H, W)`` or per-sample ``(B, C, H, W)``, 1 = observed. Channel dimension 1
        broadcasts over colour channels.
    rate : float, optional
        Instead of a mask: the fraction of pixels **kept**, drawn as a seeded Bernoulli mask of
        ``img_shape`` = ``(H, W)`` or ``(C, H, W)`` (one mask shared by the channels when C is 1).
    generator : torch.Generator, optional
        Source of the random mask (seed it for reproducibility).
    """

    measurement_space = "image"

    def __init__(
        self,
        mask: Tensor | None = None,
        rate: float | None = None,
        img_shape: tuple[int, ...] | None = None,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        if (mask is None) == (rate is None):
            raise ConfigError(
                "Inpainting needs either mask= (a 0/1 tensor) or rate= with img_shape="
            )
        if mask is None:
            if not 0.0 < float(rate) <= 1.0:
                raise ConfigError(
                    f"inpainting rate is the fraction of pixels kept, in (0, 1]; got {rate}"
                )
            if img_shape is None:
                raise ConfigError("Inpainting(rate=...) also needs img_shape=(H, W) or (C, H, W)")
            shape = tuple(img_shape)
            if len(shape) == 2:
                shape = (1, *shape)
            dev = generator.device if generator is not None else "cpu"
            mask = (torch.rand(shape, generator=generator, device=dev) < float(rate)).float().cpu()
        mask = torch.as_tensor(mask)
        if mask.dtype == torch.bool:
            mask = mask.float()
        if not bool(((mask == 0) | (mask == 1)).all()):
            raise ConfigError("inpainting mask must contain only 0 (missing) and 1 (observed)")
        self.register_buffer("mask", as_batched_param(mask.float(), 4, "inpainting mask"))

    @property
    def in_shape(self) -> tuple[int, int, int]:
        return tuple(self.mask.shape[1:])

    def _check(self, x: Tensor) -> None:
        m = self.mask
        if (
            x.dim() != 4
            or x.shape[-2:] != m.shape[-2:]
            or (m.shape[1] != 1 and m.shape[1] != x.shape[1])
        ):
            raise ConfigError(
                f"inpainting mask has shape {shape_str(m.shape[-2:])} but images are "
                f"{shape_str(x.shape[-2:]) if x.dim() >= 2 else shape_str(x.shape)}; "
                "pass the mask used at acquisition or resize the images"
            )
        if m.shape[0] not in (1, x.shape[0]):
            raise ConfigError(
                f"inpainting has {m.shape[0]} per-sample masks but the batch has {x.shape[0]} "
                "images"
            )

    def forward(self, x: Tensor) -> Tensor:
        self._check(x)
        return x * self.mask

    def adjoint(self, y: Tensor) -> Tensor:
        self._check(y)
        return y * self.mask

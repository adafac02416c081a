r"""Noise2Self: self-supervised denoising with J-invariant grid masks (Batson & Royer, 2019)."""

from __future__ import annotations

from torch import Tensor

from selfrecon.errors import ConfigError
from selfrecon.losses.base import Loss
from selfrecon.losses.masking import GridMasker
from selfrecon.losses.step import Step

__all__ = ["Noise2SelfLoss"]


class Noise2SelfLoss(Loss):
    r"""Masked loss ``Σ_b Σ_{j ∈ J_b} |A f(y_b^{J_b})_j − y_{b,j}|² / (C·Σ_b |J_b|)``.

    Batson & Royer, "Noise2Self: Blind Denoising by Self-Supervision", ICML 2019, eq. (3) with the
    grid masks of their §4 (:class:`~selfrecon.losses.masking.GridMasker`): each image draws its own
    phase ``J_b`` (from ``generator``), its masked pixels are replaced (interpolated or zeroed),
    the model runs on the masked copies — ``model(y_masked, physics)`` — and the loss is read on the
    masked pixels only (all channels; for inpainting only where the pixel was measured). Because
    the masked input does not depend on the masked pixels, the loss is that of a J-invariant
    function, whose minimiser is the MMSE denoiser for noise independent across pixels.

    Measurements must be images ``(B, C, H, W)`` (denoising, inpainting). The loss runs one
    network pass on the masked copies (``step.reconstruct``) and never needs ``step.x_hat``: a
    reconstruction of the unmasked ``y`` is not computed during training (use
    :class:`~selfrecon.models.JInvariant` at inference). Term: ``"n2s"``.
    """

    def __init__(self, width: int = 4, mode: str = "interpolate", weight: float = 1.0):
        super().__init__()
        self.masker = GridMasker(width, mode)
        self.weight = float(weight)

    def forward(self, step: Step) -> dict[str, Tensor]:
        y, physics = step.y, step.physics
        if y.dim() != 4 or y.is_complex():
            raise ConfigError(
                f"Noise2SelfLoss masks pixels, so measurements must be real images (B, C, H, W); "
                f"got {'complex ' if y.is_complex() else ''}shape {tuple(y.shape)}. For other "
                "operators use SURE or REILoss"
            )
        idx = self.masker.sample_index(y.shape[0], step.generator).to(y.device)
        y_masked, mask = self.masker.apply_batch(y, idx)
        pred = physics.A(step.reconstruct([y_masked], physics)[0])
        if pred.shape != y.shape:
            raise ConfigError(
                f"A f(y) has shape {tuple(pred.shape)} but y is {tuple(y.shape)}; Noise2SelfLoss "
                "needs image-to-image physics (denoising, inpainting)"
            )
        measured = physics.measured_mask
        w = mask if measured is None else mask * measured.to(y.dtype)
        w = w.expand_as(y)
        loss = ((pred - y).pow(2) * w).sum() / w.sum().clamp_min(1)
        return {"n2s": self.weight * loss}

    def extra_repr(self) -> str:
        return f"width={self.masker.width}, mode={self.masker.mode!r}, weight={self.weight:g}"

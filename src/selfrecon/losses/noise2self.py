r"""Noise2Self: self-supervised denoising with J-invariant grid masks (Batson & Royer, 2019)."""

from __future__ import annotations

from torch import Tensor

from selfrecon.losses.base import Loss
from selfrecon.losses.masking import GridMasker

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

    Measurements must be images ``(B, C, H, W)`` (denoising, inpainting). The loss runs its own
    network pass on masked data (``computes_x_hat = True``) and returns no ``"x_hat"``: a
    reconstruction of the unmasked ``y`` is never computed during training (use
    :class:`~selfrecon.models.JInvariant` at inference). Term: ``"n2s"``.
    """

    computes_x_hat = True

    def __init__(self, width: int = 4, mode: str = "interpolate", weight: float = 1.0):
        super().__init__()
        self.masker = GridMasker(width, mode)
        self.weight = float(weight)

    def forward(self, y, x_hat, physics, model, generator=None, **kwargs) -> dict[str, Tensor]:
        if y.dim() != 4 or y.is_complex():
            raise ValueError(
                f"Noise2SelfLoss masks pixels, so measurements must be real images (B, C, H, W); "
                f"got {'complex ' if y.is_complex() else ''}shape {tuple(y.shape)}. For other "
                "operators use SURE or REILoss"
            )
        idx = self.masker.sample_index(y.shape[0], generator).to(y.device)
        y_masked, mask = self.masker.apply_batch(y, idx)
        pred = physics.A(model(y_masked, physics))
        if pred.shape != y.shape:
            raise ValueError(
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

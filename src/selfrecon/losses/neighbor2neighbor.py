r"""Neighbor2Neighbor: self-supervised denoising from sub-sampled neighbours of one noisy image.

Huang, Li, Jiang, Liu & Zhou, "Neighbor2Neighbor: Self-Supervised Denoising from Single Noisy
Images", CVPR 2021, §3.2–3.3 (eqs. 4–6). Each ``2×2`` cell of the noisy image ``y`` gives two
*different, adjacent* pixels chosen at random (a pixel, then one of its two horizontal/vertical
neighbours in the cell); collected over all cells they form two half-resolution images
``g₁(y)``, ``g₂(y)`` whose noise is independent and whose clean parts differ only by one pixel of
shift. The loss

    ‖f(g₁(y)) − g₂(y)‖² + γ ‖f(g₁(y)) − g₂(y) − (g₁(f(y)) − g₂(f(y)))‖²

trains ``f`` to predict one neighbour from the other (Noise2Noise on the sub-images, eq. 4) and
the regulariser (eq. 6) corrects for the one-pixel gap between the clean parts, with
``f(y)`` evaluated **without gradient** (the paper's stop-gradient: the regulariser only moves
``f(g₁(y))``). ``γ = 2`` is the paper's value for Gaussian noise. At test time ``f`` is applied to
the full image. Denoising only (``A = I``): the sub-images must be images of the same scene.
Cost: the sub-image pass (``B`` images of a quarter size) and the no-grad full pass.
Terms: ``"n2n"``, ``"n2n_reg"``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from selfrecon.errors import ConfigError
from selfrecon.losses.base import Loss
from selfrecon.losses.step import Step

__all__ = ["Neighbor2NeighborLoss", "neighbor_subsample"]

# the cell's pixels 0 1 / 2 3 and each one's two horizontal/vertical neighbours
_NEIGHBOURS = torch.tensor([[1, 2], [0, 3], [0, 3], [1, 2]])


def neighbor_subsample(
    y: Tensor, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """``(g₁(y), g₂(y), (first, second))``: two half-resolution images from distinct adjacent
    pixels of every ``2×2`` cell; the indices (``0..3`` within the cell, per image and cell)
    are returned for inspection. Every channel uses the same pixels, as in the paper."""
    if y.dim() != 4 or y.shape[-2] % 2 or y.shape[-1] % 2 or y.is_complex():
        raise ConfigError(
            f"Neighbor2Neighbor needs real images (B, C, H, W) with even H and W, got shape "
            f"{tuple(y.shape)}; crop or pad the images to an even size"
        )
    dev = generator.device if generator is not None else y.device
    shape = (y.shape[0], 1, (y.shape[-2] // 2) * (y.shape[-1] // 2))
    first = torch.randint(0, 4, shape, generator=generator, device=dev).to(y.device)
    pick = torch.randint(0, 2, shape, generator=generator, device=dev).to(y.device)
    second = _NEIGHBOURS.to(y.device)[first, pick]
    return _gather(y, first), _gather(y, second), (first, second)


def _gather(t: Tensor, idx: Tensor) -> Tensor:
    """The pixel ``idx`` (``0..3``, per image and cell) of every ``2×2`` cell of ``t``:
    a ``(B, C, H/2, W/2)`` image (one index for all channels)."""
    b, c, h, w = t.shape
    cells = t.reshape(b, c, h // 2, 2, w // 2, 2).permute(0, 1, 2, 4, 3, 5).reshape(b, c, -1, 4)
    return cells.gather(3, idx.expand(b, c, -1)[..., None])[..., 0].reshape(b, c, h // 2, w // 2)


class Neighbor2NeighborLoss(Loss):
    r"""``mean|f(g₁y) − g₂y|² + γ·mean|f(g₁y) − g₂y − (g₁f(y) − g₂f(y))|²`` (see module docs)."""

    def __init__(self, gamma: float = 2.0, weight: float = 1.0):
        super().__init__()
        if not float(gamma) >= 0:
            raise ConfigError(f"Neighbor2Neighbor gamma must be ≥ 0, got {gamma}")
        self.gamma, self.weight = float(gamma), float(weight)

    def forward(self, step: Step) -> dict[str, Tensor]:
        from selfrecon.physics import Denoising

        physics = step.physics
        if not isinstance(physics.operator, Denoising):
            raise ConfigError(
                "Neighbor2Neighbor sub-samples the noisy image itself, so it is for denoising "
                f"(A = I); this physics is {type(physics.operator).__name__}. Use rei or sure"
            )
        y1, y2, (first, second) = neighbor_subsample(step.y, step.generator)
        out = step.reconstruct([y1], physics)[0]
        with torch.no_grad():  # the paper's stop-gradient on f(y)
            full = step.reconstruct([step.y], physics)[0]
        diff = out - y2
        reg = (diff - (_gather(full, first) - _gather(full, second))).pow(2).mean()
        return {"n2n": self.weight * diff.pow(2).mean(), "n2n_reg": self.weight * self.gamma * reg}

    def extra_repr(self) -> str:
        return f"gamma={self.gamma:g}, weight={self.weight:g}"

"""Shared helpers of the losses: real views, masked counts, batched model passes."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


def real_view(t: Tensor) -> Tensor:
    """Real tensor of the same entries (complex → trailing dimension of 2: real, imaginary)."""
    return torch.view_as_real(t) if t.is_complex() else t


def mse(a: Tensor, b: Tensor) -> Tensor:
    """Mean squared difference over all real entries (complex entries count as two)."""
    return (real_view(a) - real_view(b)).pow(2).mean()


def is_per_sample(physics, batch: int) -> bool:
    """True when ``physics`` holds per-sample parameters for this batch (masks (B, …), σ (B,)).

    Then stacking several copies of the batch into one network pass would pair images with the
    wrong parameters, so callers evaluate copy by copy instead (a loop over ≤ 4 copies, not images).
    """
    if batch <= 1:
        return False
    for _, buf in physics.named_buffers():
        if buf.dim() >= 1 and buf.shape[0] == batch:
            return True
    mask = getattr(physics, "measured_mask", None)
    return mask is not None and mask.dim() >= 1 and mask.shape[0] == batch


def batched(fn: Callable[[Tensor], Tensor], inputs: list[Tensor], physics) -> list[Tensor]:
    """``[fn(t) for t in inputs]`` as one call on the concatenation when the physics allows it.

    The inputs may have different batch sizes (a probe on a subset of the images); the per-sample
    check uses the first input's.
    """
    if len(inputs) == 1:
        return [fn(inputs[0])]
    if is_per_sample(physics, inputs[0].shape[0]):
        return [fn(t) for t in inputs]
    return list(fn(torch.cat(inputs)).split([t.shape[0] for t in inputs]))

"""Shared helpers of the losses: real views and mean squared differences."""

from __future__ import annotations

import torch
from torch import Tensor


def real_view(t: Tensor) -> Tensor:
    """Real tensor of the same entries (complex → trailing dimension of 2: real, imaginary)."""
    return torch.view_as_real(t) if t.is_complex() else t


def mse(a: Tensor, b: Tensor) -> Tensor:
    """Mean squared difference over all real entries (complex entries count as two)."""
    return (real_view(a) - real_view(b)).pow(2).mean()

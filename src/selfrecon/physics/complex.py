"""The one place where complex images meet real networks.

Inside ``physics`` complex images and k-space are torch complex tensors. Networks, groups and losses
see real tensors: a complex image with ``C`` channels travels as ``2C`` real channels, the real
parts first, then the imaginary parts (``[Re c0, …, Re c_{C-1}, Im c0, …, Im c_{C-1}]``).
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["to_complex", "to_real", "magnitude", "complex_channels"]


def to_complex(x: Tensor) -> Tensor:
    """``(B, 2C, H, W)`` real → ``(B, C, H, W)`` complex. A complex input is returned as is."""
    if x.is_complex():
        return x
    if x.shape[1] % 2:
        raise ValueError(
            f"a complex image travels as 2 real channels (real, imaginary) but this one has "
            f"{x.shape[1]} channel(s); use selfrecon.physics.complex_channels(x) to add a zero "
            f"imaginary part to a real image"
        )
    c = x.shape[1] // 2
    return torch.complex(x[:, :c].contiguous(), x[:, c:].contiguous())


def to_real(z: Tensor) -> Tensor:
    """``(B, C, H, W)`` complex → ``(B, 2C, H, W)`` real. A real input is returned as is."""
    if not z.is_complex():
        return z
    return torch.cat([z.real, z.imag], dim=1)


def complex_channels(x: Tensor) -> Tensor:
    """A real ``(B, C, H, W)`` image as a real-packed complex one ``(B, 2C, H, W)``, imag = 0."""
    if x.is_complex():
        return to_real(x)
    return torch.cat([x, torch.zeros_like(x)], dim=1)


def magnitude(x: Tensor) -> Tensor:
    """``|x|`` of a 2C-channel real-packed complex image (or a complex tensor): ``(B, C, H, W)``."""
    return to_complex(x).abs()

r"""The residual UNet of Equivariant Imaging (Chen, Tachella & Davies, ICCV 2021, §5 and code).

Architecture (``depth`` levels, ``width`` channels at the top, doubled per level):

* encoder level ``k``: ``[conv3×3 → norm → ReLU] × 2`` with ``width·2^k`` channels, then
  2×2 max-pool;
* decoder: 2× nearest upsampling → conv3×3 → norm → ReLU ("up-conv"), concatenation with the skip,
  ``[conv3×3 → norm → ReLU] × 2``;
* a final 1×1 convolution; ``residual=True`` adds the input: ``G(x) = x + U(x)``.

``zero_init_last=True`` zero-initialises that final 1×1 convolution, so a residual UNet starts as
the identity (``G(x) = x``, i.e. ``f(y) = A† y`` inside ``ArtifactRemoval``) and training starts
from the linear reconstruction; gradients still reach every layer after the first step because the
last layer's input features are non-zero. This is a choice of ours, not the EI paper's (its code
uses PyTorch's default initialisation everywhere); the default stays ``False``.

Only the very first convolution uses circular padding (as in the EI code: the images of the shift
group are circular shifts, so the first layer sees the wrap-around consistently); all others use
zero padding. With ``depth=4, width=64`` this is the EI paper's 64→512-channel network (about 8 M
parameters); ``width=16`` gives about 0.5 M.

Images whose height/width are not multiples of ``2^(depth-1)`` are padded (replicate) before the
network and cropped after, so any size works.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from selfrecon.errors import ConfigError

__all__ = ["UNet"]


def _norm(kind: str, ch: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(ch)
    if kind == "none":
        return nn.Identity()
    raise ConfigError(f"norm must be 'batch' or 'none', got {kind!r}")


class _DoubleConv(nn.Sequential):
    def __init__(self, cin: int, cout: int, norm: str, bias: bool, first_circular: bool = False):
        pad_mode = "circular" if first_circular else "zeros"
        super().__init__(
            nn.Conv2d(cin, cout, 3, padding=1, padding_mode=pad_mode, bias=bias),
            _norm(norm, cout),
            nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=bias),
            _norm(norm, cout),
            nn.ReLU(inplace=True),
        )


class _UpConv(nn.Sequential):
    def __init__(self, cin: int, cout: int, norm: str, bias: bool):
        super().__init__(
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(cin, cout, 3, padding=1, bias=bias),
            _norm(norm, cout),
            nn.ReLU(inplace=True),
        )


class UNet(nn.Module):
    r"""Residual UNet backbone ``G``: images ``(B, C_in, H, W)`` → ``(B, C_out, H, W)``.

    Parameters
    ----------
    in_channels, out_channels : int
        Channels in and out (``out_channels`` defaults to ``in_channels``). Complex images use
        ``2C`` channels (real and imaginary parts).
    depth : int
        Number of resolution levels (4 in EI: 3 poolings).
    width : int
        Channels of the first level; level ``k`` has ``width·2^k``.
    residual : bool
        Return ``x + U(x)`` (needs ``in_channels == out_channels``).
    circular_first : bool
        Circular padding in the first convolution only (EI).
    norm : {"batch", "none"}
        Batch normalisation after each convolution, or none (then a bias-free option via ``bias``).
    bias : bool
        Biases in the convolutions.
    zero_init_last : bool
        Zero-initialise the final 1×1 convolution (with ``residual``: start as the identity).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int | None = None,
        depth: int = 4,
        width: int = 64,
        residual: bool = True,
        circular_first: bool = True,
        norm: str = "batch",
        bias: bool = True,
        zero_init_last: bool = False,
    ):
        super().__init__()
        out_channels = in_channels if out_channels is None else out_channels
        if depth < 1:
            raise ConfigError(f"UNet depth must be at least 1, got {depth}")
        if width < 1 or in_channels < 1 or out_channels < 1:
            raise ConfigError("UNet in_channels, out_channels and width must be positive")
        if residual and in_channels != out_channels:
            raise ConfigError(
                f"a residual UNet needs in_channels == out_channels (got {in_channels} and "
                f"{out_channels}); pass residual=False"
            )
        _norm(norm, 1)  # validate early
        self._config = dict(
            in_channels=in_channels,
            out_channels=out_channels,
            depth=depth,
            width=width,
            residual=residual,
            circular_first=circular_first,
            norm=norm,
            bias=bias,
            zero_init_last=zero_init_last,
        )
        self.in_channels, self.out_channels = in_channels, out_channels
        self.depth, self.residual = depth, residual
        chans = [width * 2**k for k in range(depth)]
        self.down = nn.ModuleList()
        cin = in_channels
        for k, c in enumerate(chans):
            self.down.append(
                _DoubleConv(cin, c, norm, bias, first_circular=circular_first and k == 0)
            )
            cin = c
        self.up = nn.ModuleList()
        self.up_conv = nn.ModuleList()
        for k in range(depth - 1, 0, -1):
            self.up.append(_UpConv(chans[k], chans[k - 1], norm, bias))
            self.up_conv.append(_DoubleConv(2 * chans[k - 1], chans[k - 1], norm, bias))
        self.out = nn.Conv2d(chans[0], out_channels, 1, bias=bias)
        if zero_init_last:
            nn.init.zeros_(self.out.weight)
            if self.out.bias is not None:
                nn.init.zeros_(self.out.bias)

    def config(self) -> dict:
        """Constructor arguments (see :func:`selfrecon.models.build_model`)."""
        return dict(self._config)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ConfigError(
                f"UNet expects images (B, {self.in_channels}, H, W) but got shape "
                f"{tuple(x.shape)}; "
                f"build it with in_channels={x.shape[1] if x.dim() == 4 else '?'}"
            )
        h, w = x.shape[-2:]
        m = 2 ** (self.depth - 1)
        ph, pw = (-h) % m, (-w) % m
        z = F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x
        skips = []
        for k, block in enumerate(self.down):
            if k > 0:
                z = F.max_pool2d(z, 2)
            z = block(z)
            skips.append(z)
        skips.pop()
        for up, conv in zip(self.up, self.up_conv, strict=True):
            z = conv(torch.cat([skips.pop(), up(z)], dim=1))
        z = self.out(z)
        if ph or pw:
            z = z[..., :h, :w]
        return x + z if self.residual else z

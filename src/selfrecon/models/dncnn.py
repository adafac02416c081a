r"""DnCNN (Zhang, Zuo, Chen, Meng & Zhang, IEEE TIP 2017, Fig. 1).

``depth`` 3×3 convolutions: conv+ReLU, ``depth-2`` × (conv+BN+ReLU), conv. The original predicts
the noise and subtracts it (residual learning); here ``residual=True`` returns ``x + D(x)``, which
is the same family (the last layer's sign is learnt).
"""

from __future__ import annotations

from torch import Tensor, nn

from selfrecon.errors import ConfigError

__all__ = ["DnCNN"]


class DnCNN(nn.Module):
    r"""DnCNN backbone: ``(B, C, H, W)`` → ``(B, C, H, W)``.

    Parameters
    ----------
    channels : int
        Image channels (``2C`` for complex images).
    depth : int
        Number of convolutions (17 in the paper, 8 for a light version).
    width : int
        Feature channels.
    residual : bool
        Return ``x + D(x)``.
    norm : {"batch", "none"}
        Batch normalisation in the middle layers.
    """

    def __init__(
        self,
        channels: int,
        depth: int = 17,
        width: int = 64,
        residual: bool = True,
        norm: str = "batch",
    ):
        super().__init__()
        if depth < 2:
            raise ConfigError(f"DnCNN depth must be at least 2, got {depth}")
        if norm not in ("batch", "none"):
            raise ConfigError(f"norm must be 'batch' or 'none', got {norm!r}")
        self._config = dict(
            channels=channels, depth=depth, width=width, residual=residual, norm=norm
        )
        self.channels, self.residual = channels, residual
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers += [
                nn.Conv2d(width, width, 3, padding=1, bias=norm == "none"),
                nn.BatchNorm2d(width) if norm == "batch" else nn.Identity(),
                nn.ReLU(inplace=True),
            ]
        layers.append(nn.Conv2d(width, channels, 3, padding=1))
        self.net = nn.Sequential(*layers)

    def config(self) -> dict:
        return dict(self._config)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != self.channels:
            raise ConfigError(
                f"DnCNN expects images (B, {self.channels}, H, W) but got shape {tuple(x.shape)}"
            )
        z = self.net(x)
        return x + z if self.residual else z

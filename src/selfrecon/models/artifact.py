r"""``f(y) = G(A† y)``: a backbone applied to the linear reconstruction (EI, ICCV 2021, §4).

The backbone sees the network layout of :class:`~selfrecon.physics.Physics`: complex physics return
``2C`` real channels from ``A_dagger``/``A_adjoint``, so the backbone is built with ``2C`` channels.
"""

from __future__ import annotations

from torch import Tensor, nn

__all__ = ["ArtifactRemoval"]


class ArtifactRemoval(nn.Module):
    r"""Reconstruction network ``f(y) = G(A† y)`` (``init="pinv"``) or ``G(Aᴴ y)`` (``"adjoint"``).

    The residual connection lives in the backbone (``UNet(residual=True)`` gives
    ``f(y) = A†y + U(A†y)``: the network learns the artifacts to remove).

    Parameters
    ----------
    backbone : nn.Module
        Image-to-image network (``UNet``, ``DnCNN``...).
    init : {"pinv", "adjoint"}
        The linear reconstruction fed to the backbone.
    """

    def __init__(self, backbone: nn.Module, init: str = "pinv"):
        super().__init__()
        if init not in ("pinv", "adjoint"):
            raise ValueError(f"ArtifactRemoval init must be 'pinv' or 'adjoint', got {init!r}")
        self.backbone = backbone
        self.init = init

    def linear(self, y: Tensor, physics) -> Tensor:
        """The backbone's input ``A† y`` (or ``Aᴴ y``) in network layout."""
        return physics.A_dagger(y) if self.init == "pinv" else physics.A_adjoint(y)

    def forward(self, y: Tensor, physics) -> Tensor:
        return self.backbone(self.linear(y, physics))

    def config(self) -> dict:
        from selfrecon.models.base import model_spec

        return {"backbone": model_spec(self.backbone), "init": self.init}

    @classmethod
    def from_config(cls, config: dict) -> ArtifactRemoval:
        from selfrecon.models.base import build_model

        cfg = dict(config)
        backbone = cfg.pop("backbone")
        return cls(build_model(backbone) if isinstance(backbone, dict) else backbone, **cfg)

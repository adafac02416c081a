"""Reconstruction networks and wrappers: ``f(y, physics) -> x_hat`` in network layout.

``UNet`` and ``DnCNN`` are image-to-image backbones; ``ArtifactRemoval(backbone)`` gives
``f(y) = G(A† y)``; ``MoDL(backbone, iterations)`` unrolls denoiser and data-consistency steps;
``summary(model)`` prints parameter counts.
"""

from selfrecon.losses.splitting import SplitAverage  # SSDU's test-time wrapper
from selfrecon.models.artifact import ArtifactRemoval
from selfrecon.models.base import (
    MODELS,
    build_model,
    count_parameters,
    model_spec,
    register_model,
    summary,
)
from selfrecon.models.dncnn import DnCNN
from selfrecon.models.modl import MoDL
from selfrecon.models.recorrupted import RecorruptedAverage
from selfrecon.models.unet import UNet

register_model("unet", UNet)
register_model("dncnn", DnCNN)
register_model("artifact_removal", ArtifactRemoval)
register_model("recorrupted_average", RecorruptedAverage)
register_model("modl", MoDL)
register_model("split_average", SplitAverage)

__all__ = [
    "MODELS",
    "ArtifactRemoval",
    "DnCNN",
    "MoDL",
    "RecorruptedAverage",
    "UNet",
    "build_model",
    "count_parameters",
    "model_spec",
    "register_model",
    "summary",
]

try:  # written by the losses helper (J-invariant wrapper over losses.masking.GridMasker)
    from selfrecon.models.jinvariant import JInvariant  # noqa: F401
except ImportError:  # pragma: no cover - until it lands
    pass
else:
    register_model("jinvariant", JInvariant)
    __all__.append("JInvariant")

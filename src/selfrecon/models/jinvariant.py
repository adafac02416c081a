r"""``JInvariant``: exactly J-invariant inference for a model trained with Noise2Self.

Batson & Royer, "Noise2Self", ICML 2019, §3: a function ``f`` is J-invariant when ``f(y)_J`` does
not depend on ``y_J`` for every set ``J`` of a partition; then its self-supervised loss is the
supervised loss plus the noise variance, so calibration and training need no clean data. This
wrapper makes any image-to-image model J-invariant with the grid partition of
:class:`~selfrecon.losses.masking.GridMasker`: each pixel of the output is read from the pass in
which that pixel was masked (``w²`` passes, stacked on the batch and run in chunks).

``fast=True`` instead runs the model once on the unmasked input: ``w²`` times cheaper and usually
a little better after Noise2Self training (their §4 note on re-using the trained network on the
full input), but **not** J-invariant.
"""

from __future__ import annotations

from torch import Tensor, nn

from selfrecon.errors import ConfigError
from selfrecon.losses.masking import GridMasker
from selfrecon.models.base import build_model, model_spec

__all__ = ["JInvariant"]


class JInvariant(nn.Module):
    """Wrap ``model(y, physics)`` so that ``f(y)_j`` never depends on ``y_j`` (see module docs).

    Parameters
    ----------
    model : nn.Module
        ``model(y, physics) -> x_hat`` with image measurements ``y`` (B, C, H, W) (denoising).
    width, mode
        Grid mask width (``width²`` passes) and fill mode (``"interpolate"`` or ``"zero"``); use
        the values the model was trained with in :class:`~selfrecon.losses.Noise2SelfLoss`.
    fast : bool
        One plain pass instead (not J-invariant).
    chunk : int, optional
        Masked images per network call (default: all ``width²·B`` at once). With per-sample
        physics parameters the chunk is one phase of the whole batch, so parameters line up.
    """

    def __init__(
        self,
        model: nn.Module,
        width: int = 4,
        mode: str = "interpolate",
        fast: bool = False,
        chunk: int | None = None,
    ):
        super().__init__()
        self.model = model
        self.masker = GridMasker(width, mode)
        self.fast = bool(fast)
        self.chunk = chunk

    def forward(self, y: Tensor, physics=None) -> Tensor:
        if self.fast:
            return self.model(y, physics)
        if y.dim() != 4 or y.is_complex():
            raise ConfigError(
                f"JInvariant masks pixels, so measurements must be real images (B, C, H, W); got "
                f"shape {tuple(y.shape)}. Use fast=True or a different model for this physics"
            )
        chunk = self.chunk
        if physics is not None and y.shape[0] > 1 and physics.per_sample():
            chunk = y.shape[0]
        return self.masker.j_invariant(lambda z: self.model(z, physics), y, chunk=chunk)

    def config(self) -> dict:
        return {
            "model": model_spec(self.model),
            "width": self.masker.width,
            "mode": self.masker.mode,
            "fast": self.fast,
            "chunk": self.chunk,
        }

    @classmethod
    def from_config(cls, config: dict) -> JInvariant:
        config = dict(config)
        inner = config.pop("model")
        return cls(build_model(inner) if isinstance(inner, dict) else inner, **config)

    def extra_repr(self) -> str:
        return f"width={self.masker.width}, mode={self.masker.mode!r}, fast={self.fast}"

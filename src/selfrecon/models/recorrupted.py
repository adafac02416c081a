r"""``RecorruptedAverage``: test-time inference for a network trained with R2R / GR2R.

A network trained with :class:`~selfrecon.losses.R2RLoss` (or ``rei`` with ``consistency: r2r``)
learned to reconstruct from the recorrupted input ``y₁`` of
:func:`~selfrecon.losses.r2r.recorrupt`, whose noise variance is ``1 + α²`` times that of ``y``.
At test time it must see the same distribution: Monroy, Bacca & Tachella (GR2R, CVPR 2025, §4.3)
average the outputs over several recorruptions, ``x̂ = (1/K) Σ_k f(y₁^{(k)})``, which also
averages out the added noise. The draws come from a generator seeded with ``seed`` on every call,
so a reconstruction is deterministic.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from selfrecon.errors import ConfigError
from selfrecon.models.base import build_model, model_spec

__all__ = ["RecorruptedAverage", "DEFAULT_COUNT"]

#: recorruptions averaged at test time
DEFAULT_COUNT = 8


class RecorruptedAverage(nn.Module):
    """``mean_k model(y₁⁽ᵏ⁾, physics)`` over ``count`` recorruptions of ``y`` with ``alpha``."""

    def __init__(
        self, model: nn.Module, alpha: float = 0.5, count: int = DEFAULT_COUNT, seed: int = 0
    ):
        super().__init__()
        from selfrecon.losses.r2r import check_alpha

        if int(count) != count or int(count) < 1:
            raise ConfigError(f"the number of recorruptions must be an integer ≥ 1, got {count}")
        self.model, self.alpha, self.count, self.seed = (
            model,
            check_alpha(alpha),
            int(count),
            int(seed),
        )

    def forward(self, y: Tensor, physics=None) -> Tensor:
        from selfrecon.losses.r2r import recorrupt

        if physics is None or physics.noise is None:
            raise ConfigError(
                "R2R inference recorrupts y with the noise model, so it needs a physics with noise"
            )
        gen = torch.Generator(device=y.device).manual_seed(self.seed)
        total = None
        for _ in range(self.count):  # one network call per recorruption: bounded memory
            y1, _ = recorrupt(y, physics.noise, self.alpha, gen, physics.measured_mask)
            out = self.model(y1, physics)
            total = out if total is None else total + out
        return total / self.count

    def config(self) -> dict:
        return {
            "model": model_spec(self.model),
            "alpha": self.alpha,
            "count": self.count,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config: dict) -> RecorruptedAverage:
        config = dict(config)
        inner = config.pop("model")
        return cls(build_model(inner) if isinstance(inner, dict) else inner, **config)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha:g}, count={self.count}"

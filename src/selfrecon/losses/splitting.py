r"""Measurement splitting (SSDU): reconstruct from part of the measured entries, score on the rest.

Yaman, Hosseini, Moeller, Ellermann, Uğurbil & Akçakaya, "Self-supervised learning of
physics-guided reconstruction neural networks without fully sampled reference data", MRM 2020,
§2.2: the measured entries ``Ω`` of each measurement are split at random into disjoint sets
``Θ`` (the network's input, a share ``1 − ρ``) and ``Λ`` (the loss, ``ρ``; the paper's
``ρ = 0.4``). The network reconstructs from ``y_Θ`` with the operator restricted to ``Θ``, and
is scored on the held-out entries:

    ‖M_Λ (A f(M_Θ y, A_Θ) − y)‖² / |Λ|.

Noise on different entries is independent, so the held-out entries are an unbiased target for
their clean values; what the network learns about ``Λ`` from ``Θ`` is what it must infer about
the unmeasured entries at test time. With **one fixed mask** (``A`` the same for every image) the
network never sees what lies outside ``Ω``, which SSIBench found makes splitting collapse where
EI does not. Operators whose measured entries are a 0/1 mask (:class:`~selfrecon.physics.
base.MaskedProjection`: inpainting, single- and multi-coil Cartesian MRI) are split by updating
that mask per image. A new split is drawn for every image at every step from the generator.

**Test time** (:class:`SplitAverage`): the network was trained on inputs with a share ``1 − ρ``
of the measured entries; its reconstruction is the average over ``count`` splits (default 8),
deterministic under its seed (SSDU's paper feeds all of ``Ω``; on our benchmarks the average of
splits matches the inputs the network learned from).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from selfrecon.errors import ConfigError
from selfrecon.losses.base import Loss
from selfrecon.losses.step import Step

__all__ = ["SplittingLoss", "SplitAverage", "split_masks", "check_ratio"]


def check_ratio(ratio: float) -> float:
    r = float(ratio)
    if not (math.isfinite(r) and 0 < r < 1):
        raise ConfigError(f"splitting ratio ρ (the held-out share) must lie in (0, 1), got {ratio}")
    return r


def _mask_of(physics) -> Tensor:
    """The operator's 0/1 measurement mask (a :class:`MaskedProjection`'s ``mask``)."""
    from selfrecon.physics.base import MaskedProjection

    op = physics.operator
    if not isinstance(op, MaskedProjection):
        raise ConfigError(
            "measurement splitting needs an operator whose measured entries are a mask "
            f"(inpainting, mri, multicoil_mri); {type(op).__name__} is not. Use ei or rei"
        )
    return op.mask


def split_masks(
    mask: Tensor, batch: int, ratio: float, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """``(M_Θ, M_Λ)`` of shape ``(batch, *mask.shape[1:])``: disjoint 0/1 masks whose union is
    the measured set ``mask != 0`` of each image; an entry is held out with probability
    ``ratio``."""
    ratio = check_ratio(ratio)
    m = (mask != 0).to(torch.float32)
    if m.shape[0] not in (1, batch):
        raise ConfigError(f"a per-image mask has {m.shape[0]} images but the batch has {batch}")
    m = m.expand(batch, *m.shape[1:])
    dev = generator.device if generator is not None else m.device
    u = torch.rand(m.shape, generator=generator, device=dev).to(m.device)
    held = m * (u < ratio).to(m.dtype)
    return m - held, held


class SplittingLoss(Loss):
    r"""SSDU: ``weight · ‖M_Λ(A f(M_Θ y, A_Θ) − y)‖² / |Λ|`` (module docs). Term: ``"split"``."""

    def __init__(self, ratio: float = 0.4, weight: float = 1.0):
        super().__init__()
        self.ratio = check_ratio(ratio)
        self.weight = float(weight)

    def forward(self, step: Step) -> dict[str, Tensor]:
        physics, y = step.physics, step.y
        mask = _mask_of(physics)
        if physics.noise is None and bool((mask != 0).all()):
            raise ConfigError(
                "measurement splitting learns what the held-out entries add, but every entry is "
                "measured and noiseless: there is nothing to learn; train with mc or supervised"
            )
        keep, held = split_masks(mask, y.shape[0], self.ratio, step.generator)
        dtype = y.real.dtype if y.is_complex() else y.dtype
        keep, held = keep.to(y.device, dtype), held.to(y.device, dtype)
        part = physics.update(mask=keep)
        x_hat = step.reconstruct([y * keep], part)[0]
        residual = (physics.A(x_hat) - y) * held
        r = torch.view_as_real(residual) if residual.is_complex() else residual
        count = held.sum() * (2 if y.is_complex() else 1)
        return {"split": self.weight * r.pow(2).sum() / count.clamp_min(1)}

    def extra_repr(self) -> str:
        return f"ratio={self.ratio:g}, weight={self.weight:g}"


class SplitAverage(nn.Module):
    """``mean_k model(M_Θk y, A_Θk)`` over ``count`` seeded splits (SSDU's test time)."""

    def __init__(self, model: nn.Module, ratio: float = 0.4, count: int = 8, seed: int = 0):
        super().__init__()
        if int(count) != count or int(count) < 1:
            raise ConfigError(f"the number of splits must be an integer ≥ 1, got {count}")
        self.model, self.ratio = model, check_ratio(ratio)
        self.count, self.seed = int(count), int(seed)

    def forward(self, y: Tensor, physics) -> Tensor:
        mask = _mask_of(physics)
        gen = torch.Generator(device=y.device).manual_seed(self.seed)
        dtype = y.real.dtype if y.is_complex() else y.dtype
        total = None
        for _ in range(self.count):
            keep, _ = split_masks(mask, y.shape[0], self.ratio, gen)
            keep = keep.to(y.device, dtype)
            out = self.model(y * keep, physics.update(mask=keep))
            total = out if total is None else total + out
        return total / self.count

    def config(self) -> dict:
        from selfrecon.models.base import model_spec

        return {"model": model_spec(self.model), "ratio": self.ratio, "count": self.count,
                "seed": self.seed}  # fmt: skip

    @classmethod
    def from_config(cls, config: dict) -> SplitAverage:
        from selfrecon.models.base import build_model

        config = dict(config)
        inner = config.pop("model")
        return cls(build_model(inner) if isinstance(inner, dict) else inner, **config)

r"""Measurement consistency and the supervised baseline."""

from __future__ import annotations

from torch import Tensor

from selfrecon.errors import ConfigError, shape_str
from selfrecon.losses._util import mse
from selfrecon.losses.base import Loss
from selfrecon.losses.step import Step

__all__ = ["MCLoss", "SupervisedLoss"]


class MCLoss(Loss):
    r"""Measurement consistency ``mean |A x̂ − y|²`` over all entries of ``A``'s output.

    Chen, Tachella & Davies, "Equivariant Imaging", ICCV 2021, eq. (3) (the ``L_MC`` term).
    Complex measurements count real and imaginary parts as separate entries. For a nonlinear
    physics (low-dose CT) ``A`` is ``physics.A``, whatever it computes. Term: ``"mc"``.
    """

    def __init__(self, weight: float = 1.0):
        super().__init__()
        self.weight = float(weight)

    def forward(self, step: Step) -> dict[str, Tensor]:
        y = step.y
        ax = step.physics.A(step.x_hat)
        if ax.shape != y.shape:
            raise ConfigError(
                f"A x̂ has shape {shape_str(ax.shape)} but the measurements y are "
                f"{shape_str(y.shape)}; pass the physics that produced y"
            )
        return {"mc": self.weight * mse(ax, y)}

    def extra_repr(self) -> str:
        return f"weight={self.weight:g}"


class SupervisedLoss(Loss):
    r"""``mean |x̂ − x|²`` against ground truth ``x`` (network layout) — a baseline, not
    self-supervised. Needs ``step.x`` (the batch's ``"x"``). Term: ``"sup"``.
    """

    def __init__(self, weight: float = 1.0):
        super().__init__()
        self.weight = float(weight)

    def forward(self, step: Step) -> dict[str, Tensor]:
        x = step.x
        if x is None:
            raise ConfigError(
                "SupervisedLoss needs ground-truth images: pass x= (the batch's 'x'); with "
                "measurements only, train with MCLoss + EILoss, SURE or REILoss instead"
            )
        x_hat = step.x_hat
        if x.shape != x_hat.shape:
            raise ConfigError(
                f"ground truth x has shape {shape_str(x.shape)} but the reconstruction is "
                f"{shape_str(x_hat.shape)}; bring x to network layout with physics.prepare_image(x)"
            )
        return {"sup": self.weight * mse(x_hat, x)}

    def extra_repr(self) -> str:
        return f"weight={self.weight:g}"

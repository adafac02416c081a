"""Objectives that need no ground truth: MC, SURE family, EI, REI, Noise2Self, MOI, supervised.

Every loss is called ``loss(y, x_hat, physics, model, generator=None, **kwargs)`` and returns a
dict of named scalar terms; ``x_hat=None`` lets the loss compute the reconstruction itself and
return it under ``"x_hat"`` (see :mod:`selfrecon.losses.base` for the Trainer's calling pattern).
Losses add (``MCLoss() + EILoss(Shift())``) and scale (``0.5 * loss``).
"""

from selfrecon.losses.base import XHAT, Loss, ScaledLoss, SumLoss
from selfrecon.losses.ei import EILoss, MOILoss, REILoss
from selfrecon.losses.masking import GridMasker
from selfrecon.losses.mc import MCLoss, SupervisedLoss
from selfrecon.losses.noise2self import Noise2SelfLoss
from selfrecon.losses.sure import SURE, SureGaussian, SurePoisson, SurePoissonGaussian, skewed_probe

__all__ = [
    "XHAT",
    "EILoss",
    "GridMasker",
    "Loss",
    "MCLoss",
    "MOILoss",
    "Noise2SelfLoss",
    "REILoss",
    "SURE",
    "ScaledLoss",
    "SumLoss",
    "SupervisedLoss",
    "SureGaussian",
    "SurePoisson",
    "SurePoissonGaussian",
    "skewed_probe",
]

"""Objectives that need no ground truth: MC, SURE family (UNSURE: level unknown), R2R/GR2R, EI,
REI, Noise2Self, Neighbor2Neighbor, MOI, supervised.

Every loss is called ``loss(step)`` with the batch's :class:`Step` and returns a dict of named
scalar terms (see :mod:`selfrecon.losses.step` and :mod:`selfrecon.losses.base`). Losses add
(``MCLoss() + EILoss(Shift())``) and scale (``0.5 * loss``); :func:`build_loss` builds any
training method from a spec.
"""

from selfrecon.losses.base import Loss, ScaledLoss, SumLoss
from selfrecon.losses.build import METHODS, build_loss
from selfrecon.losses.ei import EILoss, MOILoss, REILoss
from selfrecon.losses.masking import GridMasker
from selfrecon.losses.mc import MCLoss, SupervisedLoss
from selfrecon.losses.neighbor2neighbor import Neighbor2NeighborLoss
from selfrecon.losses.noise2self import Noise2SelfLoss
from selfrecon.losses.r2r import R2RLoss
from selfrecon.losses.splitting import SplitAverage, SplittingLoss
from selfrecon.losses.step import Step
from selfrecon.losses.sure import SURE, SureGaussian, SurePoisson, SurePoissonGaussian, skewed_probe
from selfrecon.losses.unsure import UNSURE

__all__ = [
    "METHODS",
    "EILoss",
    "GridMasker",
    "Loss",
    "MCLoss",
    "MOILoss",
    "Neighbor2NeighborLoss",
    "Noise2SelfLoss",
    "REILoss",
    "R2RLoss",
    "UNSURE",
    "SURE",
    "SplitAverage",
    "SplittingLoss",
    "ScaledLoss",
    "SumLoss",
    "Step",
    "SupervisedLoss",
    "SureGaussian",
    "SurePoisson",
    "SurePoissonGaussian",
    "build_loss",
    "skewed_probe",
]

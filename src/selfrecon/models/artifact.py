r"""``f(y) = DC(G(x₀(y)))``: a backbone applied to an initial reconstruction (EI, ICCV 2021, §4).

``x₀`` is the linear reconstruction ``A† y`` by default, or any classical solver of
:mod:`selfrecon.models.solvers` (biharmonic inpainting, TV, SART, least squares), so a residual
backbone starts where the classical method ends and learns only what it misses. The optional
data-consistency step ``DC`` makes the output agree with noiseless measurements exactly
(``"projection"``), or moves it a learned fraction of the way there for noisy ones
(``"proximal"``).

The backbone sees the network layout of :class:`~selfrecon.physics.Physics`: complex physics return
``2C`` real channels, so the backbone is built with ``2C`` channels.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from selfrecon.errors import ConfigError
from selfrecon.models.solvers import SOLVERS

__all__ = ["ArtifactRemoval", "build_solver", "solver_spec", "DC_MODES"]

DC_MODES = ("none", "projection", "proximal")


def build_solver(spec: str | dict | nn.Module) -> nn.Module:
    """A classical solver from ``"tv"`` or ``{"name": "tv", "lam": 0.01, ...}`` (or a module)."""
    if isinstance(spec, nn.Module):
        return spec
    spec = {"name": spec} if isinstance(spec, str) else dict(spec)
    name = spec.pop("name", None)
    if name not in SOLVERS:
        raise ConfigError(
            f"unknown initial reconstruction {name!r}; choose one of {', '.join(SOLVERS)}"
        )
    try:
        return SOLVERS[name](**spec)
    except TypeError as err:
        raise ConfigError(f"initial reconstruction {name!r}: {err}") from None


def solver_spec(solver: nn.Module) -> str | dict:
    """Inverse of :func:`build_solver`: a solver's name, or ``{"name", **parameters}``."""
    name = next(k for k, v in SOLVERS.items() if type(solver) is v)
    cfg = solver.config()
    return {"name": name, **cfg} if cfg else name


class ArtifactRemoval(nn.Module):
    r"""Reconstruction network ``f(y) = DC(G(x₀(y)))``.

    The residual connection lives in the backbone (``UNet(residual=True)`` gives
    ``G(x₀) = x₀ + U(x₀)``: the network learns the artifacts to remove); with
    ``UNet(zero_init_last=True)`` training starts exactly at ``x₀``.

    Parameters
    ----------
    backbone : nn.Module
        Image-to-image network (``UNet``, ``DnCNN``...).
    init : str, dict or nn.Module
        The initial reconstruction fed to the backbone: ``"pinv"`` (``A† y``), ``"adjoint"``
        (``Aᴴ y``), or a classical solver by name or spec (``"biharmonic"``,
        ``{"name": "tv", "lam": 0.01, "n_iter": 100}``, ``"sart"``, ``"least_squares"``...).
    dc : {"none", "projection"}
        ``"projection"`` replaces the measured part of the output by the measurement:
        ``x ↦ x + A†(y − A x)``, the projection onto ``{x : A x = y}`` when ``A A† = I`` (the
        null-space network of Schwab, Antholzer & Haltmeier, Inverse Problems 2019). Only for
        noiseless measurements (it copies noise otherwise) and operators whose pseudo-inverse is
        exact (``operator.exact_pinv``: inpainting, MRI, CS, single-pixel, denoising).
        ``"proximal"`` is the relaxed projection ``x ↦ x + w A†(y − A x)``, ``w ∈ (0, 1)`` a
        learned weight: for operators with orthonormal rows (``A Aᴴ = I``: masked orthonormal
        FFT, inpainting) it is the proximal map of ``(μ/2)‖A·−y‖²`` with ``μ = w/(1 − w)``, the
        data-consistency layer of MoDL (Aggarwal, Mani & Jacob, IEEE TMI 2019), in its closed form
        for Cartesian MRI. Noisy measurements are kept partly, as much as the loss finds
        they are worth (SURE charges the copied noise through the divergence); noiseless ones
        drive ``w → 1``.
    """

    #: the weight is ``sigmoid(DC_GAIN · θ)``: Adam moves a parameter by about ``lr`` per step
    #: whatever its gradient's scale, so a plain logit would need thousands of steps to cross
    #: ``(−5, 5)``; with the gain it takes tens, at the run's learning rate.
    DC_GAIN = 50.0

    def __init__(
        self, backbone: nn.Module, init: str | dict | nn.Module = "pinv", dc: str = "none"
    ):
        super().__init__()
        if dc not in DC_MODES:
            raise ConfigError(f"ArtifactRemoval dc must be one of {DC_MODES}, got {dc!r}")
        self.backbone = backbone
        self.initial = build_solver(init)
        self.dc = dc
        if dc == "proximal":
            #: ``w = sigmoid(DC_GAIN · dc_logit)``; starts at ``w = 1/2``
            self.dc_logit = nn.Parameter(torch.zeros(()))

    @property
    def dc_weight(self) -> Tensor | None:
        """The learned weight ``w`` of ``dc="proximal"`` (``None`` for the other modes)."""
        if self.dc != "proximal":
            return None
        return torch.sigmoid(self.DC_GAIN * self.dc_logit)

    @property
    def init(self) -> str | dict:
        """The initial reconstruction's name (``"pinv"``) or spec (solvers with parameters)."""
        return solver_spec(self.initial)

    def linear(self, y: Tensor, physics) -> Tensor:
        """The backbone's input ``x₀(y)`` in network layout."""
        return self.initial(y, physics)

    def check_physics(self, physics) -> None:
        """Raise a :class:`ConfigError` when the data-consistency step cannot work with
        ``physics`` (called before training by the CLI's ``train`` and ``check``, and at every
        :meth:`consistent`): both steps need ``A A† = I`` (``exact_pinv``), and the projection
        keeps the measured entries exactly, so it would copy the noise of noisy measurements."""
        if self.dc == "none":
            return
        op = physics.operator
        if not getattr(op, "exact_pinv", False):
            raise ConfigError(
                f"model.dc '{self.dc}' needs an operator with an exact pseudo-inverse; "
                f"{type(op).__name__}'s is not (use dc none)"
            )
        if self.dc == "projection" and physics.noise is not None:
            raise ConfigError(
                "model.dc 'projection' keeps the measured entries exactly, which copies the "
                "noise of noisy measurements; use dc proximal (a learned partial step) or none"
            )

    def consistent(self, x: Tensor, y: Tensor, physics) -> Tensor:
        """``x + A†(y − A x)`` (``dc="projection"``), ``x + w A†(y − A x)`` (``"proximal"``),
        else ``x``."""
        if self.dc == "none":
            return x
        self.check_physics(physics)
        step = physics.A.pinv(y - physics.A(x))
        w = self.dc_weight  # None for "projection": the whole step
        return x + (step if w is None else w.to(x.dtype) * step)

    def forward(self, y: Tensor, physics) -> Tensor:
        return self.consistent(self.backbone(self.linear(y, physics)), y, physics)

    def config(self) -> dict:
        from selfrecon.models.base import model_spec

        return {"backbone": model_spec(self.backbone), "init": self.init, "dc": self.dc}

    @classmethod
    def from_config(cls, config: dict) -> ArtifactRemoval:
        from selfrecon.models.base import build_model

        cfg = dict(config)
        backbone = cfg.pop("backbone")
        return cls(build_model(backbone) if isinstance(backbone, dict) else backbone, **cfg)

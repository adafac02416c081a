r"""``MoDL``: an unrolled network alternating a learned denoiser with exact data consistency.

Aggarwal, Mani & Jacob, "MoDL: Model-Based Deep Learning Architecture for Inverse Problems",
IEEE TMI 2019, eqs. (7)–(9): starting from ``x₀`` (``A†y``), each of ``K`` iterations applies the
backbone ``D`` (the *same* weights every iteration) and then solves the regularised least-squares
problem

    x_{k+1} = argmin_x ‖A x − y‖² + λ ‖x − D(x_k)‖²   ⇔   (AᴴA + λ I) x = Aᴴ y + λ D(x_k)

by conjugate gradients (``cg_iter`` steps, warm-started at ``D(x_k)``), unrolled so that gradients
reach the backbone through every iteration and reach ``λ`` (learned, ``λ = exp(θ)``, started at
``lam``). ``AᴴA`` is applied in the network's real layout (:class:`~selfrecon.physics.RealLayout`
for complex images), so the same code serves MRI, CT, CS, inpainting and blur; SSIBench runs every
self-supervised method on this network. It needs a *linear* physics: the data-consistency step
is a linear solve.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from selfrecon.errors import ConfigError
from selfrecon.models.artifact import build_solver, solver_spec
from selfrecon.physics.base import conjugate_gradient

__all__ = ["MoDL"]


class MoDL(nn.Module):
    """``K`` unrolled iterations ``x ← (AᴴA + λI)⁻¹(Aᴴy + λ D(x))`` from ``x₀`` (see module docs).

    Parameters
    ----------
    backbone : nn.Module
        The denoiser ``D`` (a residual UNet or DnCNN), shared by all iterations.
    iterations : int
        ``K ≥ 1``.
    lam : float
        Initial ``λ > 0`` (learned).
    init : str or dict
        The initial reconstruction ``x₀`` (as :class:`~selfrecon.models.ArtifactRemoval`'s).
    cg_iter, cg_tol : int, float
        Conjugate-gradient steps per data-consistency solve and their relative tolerance.
    """

    def __init__(
        self,
        backbone: nn.Module,
        iterations: int = 5,
        lam: float = 0.05,
        init: str | dict = "pinv",
        cg_iter: int = 10,
        cg_tol: float = 1e-6,
    ):
        super().__init__()
        if int(iterations) != iterations or int(iterations) < 1:
            raise ConfigError(f"MoDL iterations must be an integer ≥ 1, got {iterations}")
        if not (math.isfinite(float(lam)) and float(lam) > 0):
            raise ConfigError(f"MoDL lam (λ) must be a finite number > 0, got {lam}")
        if int(cg_iter) < 1:
            raise ConfigError(f"MoDL cg_iter must be ≥ 1, got {cg_iter}")
        self.backbone = backbone
        self.iterations, self.cg_iter, self.cg_tol = int(iterations), int(cg_iter), float(cg_tol)
        self.initial = build_solver(init)
        self.log_lam = nn.Parameter(torch.tensor(math.log(float(lam))))

    @property
    def lam(self) -> Tensor:
        return self.log_lam.exp()

    def check_physics(self, physics) -> None:
        """The data-consistency step is a linear solve: a nonlinear physics cannot use it."""
        if physics.kind != "linear":
            raise ConfigError(
                f"MoDL's data-consistency step solves (AᴴA + λI) x = Aᴴy + λz, which needs a "
                f"linear physics; {physics.kind!r} is not. Use model.unroll 0 (one network pass)"
            )

    def data_consistency(self, z: Tensor, y: Tensor, physics) -> Tensor:
        """``(AᴴA + λI)⁻¹ (Aᴴy + λ z)`` by ``cg_iter`` conjugate-gradient steps from ``z``."""
        A, lam = physics.A, self.lam.to(z.dtype)
        b = A.adjoint(y) + lam * z
        return conjugate_gradient(
            lambda v: A.adjoint(A(v)) + lam * v, b, x0=z, tol=self.cg_tol, max_iter=self.cg_iter
        )

    def forward(self, y: Tensor, physics) -> Tensor:
        self.check_physics(physics)
        x = self.initial(y, physics)
        for _ in range(self.iterations):
            x = self.data_consistency(self.backbone(x), y, physics)
        return x

    @property
    def init(self) -> str | dict:
        return solver_spec(self.initial)

    def config(self) -> dict:
        from selfrecon.models.base import model_spec

        return {
            "backbone": model_spec(self.backbone),
            "iterations": self.iterations,
            "lam": float(self.lam.detach()),
            "init": self.init,
            "cg_iter": self.cg_iter,
            "cg_tol": self.cg_tol,
        }

    @classmethod
    def from_config(cls, config: dict) -> MoDL:
        from selfrecon.models.base import build_model

        cfg = dict(config)
        backbone = cfg.pop("backbone")
        return cls(build_model(backbone) if isinstance(backbone, dict) else backbone, **cfg)

    def extra_repr(self) -> str:
        lam = float(self.lam.detach())
        return f"iterations={self.iterations}, lam={lam:.4g}, cg_iter={self.cg_iter}"

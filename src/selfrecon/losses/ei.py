r"""Equivariant imaging (EI), robust EI (REI) and multi-operator imaging (MOI) losses."""

from __future__ import annotations

import torch
from torch import Tensor

from selfrecon.errors import ConfigError
from selfrecon.groups.base import Group, build_group
from selfrecon.losses._util import mse
from selfrecon.losses.base import Loss
from selfrecon.losses.r2r import R2RLoss, recorrupt
from selfrecon.losses.step import Step
from selfrecon.losses.sure import SURE
from selfrecon.losses.unsure import UNSURE

__all__ = ["EILoss", "REILoss", "MOILoss", "CONSISTENCIES"]

#: REI's risk-estimate terms (``REILoss(consistency=...)``)
CONSISTENCIES = ("sure", "r2r", "unsure")


def _check_n_trans(n_trans: int) -> int:
    if int(n_trans) != n_trans or int(n_trans) < 1:
        raise ConfigError(
            f"n_trans (transformed copies per image) must be an integer ≥ 1, got {n_trans}"
        )
    return int(n_trans)


def _reconstruct_transformed(step: Step, x2: Tensor, noisy: bool, remeasure=None) -> Tensor:
    """``f(A x2)`` (or ``f(noisy(A x2))``, or ``f(remeasure(A x2))``) for ``n_trans`` stacked
    copies, one pass if allowed (copy by copy when the physics holds per-image parameters)."""
    physics, ys = step.physics, []
    for chunk in x2.split(step.y.shape[0]):
        y2 = physics.A(chunk)
        if remeasure is not None:
            y2 = remeasure(y2)
        elif noisy:
            y2 = physics.noisy(y2, step.generator)
        ys.append(y2)
    outs = step.reconstruct(ys)
    return outs[0] if len(outs) == 1 else torch.cat(outs)


class EILoss(Loss):
    r"""Equivariant imaging: ``weight · mean |x₃ − x₂|²`` with ``x₂ = T_g x̂``, ``x₃ = f(A x₂)``.

    Chen, Tachella & Davies, "Equivariant Imaging: Learning Beyond the Range Space", ICCV 2021,
    eq. (5). ``g`` is drawn per image from ``group`` (``n_trans`` copies stacked on the batch, as
    in the original code); nothing is detached, so gradients flow through both ``x̂`` and ``x₃``
    — unless ``stop_gradient``: then ``x₂ = T_g sg(x̂)`` is a fixed target (and input), and the
    term trains ``f`` only through ``x₃`` (Scanvic, Davies, Abry & Tachella, "Scale-equivariant
    imaging: self-supervised learning for image super-resolution and deblurring", IEEE TCI 2026,
    §III: with scales, letting the gradient reach ``x̂`` through the target lets the network
    shrink the high frequencies of both sides together).
    Use with :class:`~selfrecon.losses.MCLoss`: ``MCLoss() + EILoss(Shift())``. Cost: one more
    network pass (batch ``n_trans·B``). Term: ``"ei"``.
    """

    def __init__(
        self,
        group: Group | str,
        weight: float = 1.0,
        n_trans: int = 1,
        stop_gradient: bool = False,
    ):
        super().__init__()
        self.group = build_group(group)
        self.weight = float(weight)
        self.n_trans = _check_n_trans(n_trans)
        self.stop_gradient = bool(stop_gradient)

    def forward(self, step: Step) -> dict[str, Tensor]:
        x_hat = step.x_hat.detach() if self.stop_gradient else step.x_hat
        x2, _ = self.group.random_apply(x_hat, step.generator, self.n_trans)
        x3 = _reconstruct_transformed(step, x2, noisy=False)
        return {"ei": self.weight * mse(x3, x2)}

    def extra_repr(self) -> str:
        sg = ", stop_gradient=True" if self.stop_gradient else ""
        return f"group={self.group!r}, weight={self.weight:g}, n_trans={self.n_trans}{sg}"


class REILoss(Loss):
    r"""Robust EI: ``sure_weight · C + weight · mean |x₃ − x₂|²``, ``x₃ = f(N(A x₂))``.

    Chen, Tachella & Davies, "Robust Equivariant Imaging", CVPR 2022, eq. (10): a risk estimate
    ``C`` replaces measurement consistency, and the equivariance term re-measures ``x₂ = T_g x̂``
    **with fresh noise** from the same noise model. ``consistency`` chooses ``C``:

    * ``"sure"`` (the paper's): SURE matched to ``physics.noise`` (:class:`~selfrecon.losses.SURE`);
      ``f(y)`` and the probe(s) share one batched pass, so the step costs 2 network calls
      (3 evaluations: ``f(y)``, ``f(y + τb)``, ``f(x₃'s input)``). Terms ``"sure"``, ``"rei"``.
    * ``"r2r"``: GR2R (:class:`~selfrecon.losses.R2RLoss`, ``alpha``): ``x̂ = f(y₁)`` on the
      recorrupted input and ``|A x̂ − y₂|²``; the equivariance input is recorrupted the same way,
      ``f(y₁(N(A x₂)))``, so the network only ever sees inputs with the noise of ``y₁``. Two
      evaluations of batch ``B`` — the cost of plain EI. Test time:
      :class:`~selfrecon.models.RecorruptedAverage`. Terms ``"r2r"``, ``"rei"``.
    * ``"unsure"``: :class:`~selfrecon.losses.UNSURE` (``noise_model``, ``sigma_init``,
      ``gain_init``, ``unsure_lr``): SURE with the level learned, never read from
      ``physics.noise``; the fresh noise of the equivariance term is drawn at the learned level.
      Terms ``"unsure"``, ``"rei"``; monitor ``sigma_hat`` (and ``gain_hat``).
    """

    def __init__(
        self,
        group: Group | str,
        weight: float = 1.0,
        n_trans: int = 1,
        sure_weight: float = 1.0,
        tau: float = 1e-2,
        tau2: float | None = None,
        probe_fraction: float = 1.0,
        consistency: str = "sure",
        alpha: float = 0.5,
        noise_model: str = "gaussian",
        sigma_init: float = 0.1,
        gain_init: float = 0.1,
        unsure_lr: float = 0.02,
    ):
        super().__init__()
        if consistency not in CONSISTENCIES:
            raise ConfigError(
                f"REI consistency must be one of {list(CONSISTENCIES)}, got {consistency!r}"
            )
        self.group = build_group(group)
        self.weight = float(weight)
        self.n_trans = _check_n_trans(n_trans)
        self.consistency = consistency
        if consistency == "sure":
            self.risk = SURE(tau=tau, tau2=tau2, weight=sure_weight, probe_fraction=probe_fraction)
        elif consistency == "unsure":
            self.risk = UNSURE(
                noise_model, sigma_init, gain_init, unsure_lr, weight=sure_weight,
                probe_fraction=probe_fraction,
            )  # fmt: skip
        else:
            self.risk = R2RLoss(alpha, weight=sure_weight)

    @property
    def joins_x_hat_pass(self) -> bool:  # type: ignore[override]
        return self.consistency != "r2r"  # R2R never computes f(y) itself

    @property
    def risk_terms(self) -> tuple[str, ...]:  # type: ignore[override]
        return self.risk.risk_terms

    def forward(self, step: Step) -> dict[str, Tensor]:
        physics, gen = step.physics, step.generator
        remeasure = None
        if self.consistency == "r2r":
            inner, y2 = self.risk.split(step)  # x̂ = f(y₁)
            terms = {"r2r": self.risk.weight * mse(physics.A(inner.x_hat), y2)}
            alpha, mask = self.risk.alpha, physics.measured_mask

            def remeasure(u):  # fresh noise, then the same recorruption as the input y₁
                return recorrupt(physics.noisy(u, gen), physics.noise, alpha, gen, mask)[0]

            step = inner
        else:
            terms = self.risk(step)  # f(y) and the probe(s): one batched pass
            if self.consistency == "unsure":
                noise, mask = self.risk.noise_model().to(step.y.device), physics.measured_mask

                def remeasure(u):  # fresh noise at the learned level, on measured entries
                    v = noise.sample(u, gen)
                    return v if mask is None else v * (mask != 0).to(v.real.dtype)

        x2, _ = self.group.random_apply(step.x_hat, gen, self.n_trans)
        x3 = _reconstruct_transformed(step, x2, noisy=True, remeasure=remeasure)
        terms["rei"] = self.weight * mse(x3, x2)
        return terms

    def extra_repr(self) -> str:
        return (
            f"group={self.group!r}, weight={self.weight:g}, n_trans={self.n_trans}, "
            f"consistency={self.consistency!r}"
        )


class MOILoss(Loss):
    r"""Multi-operator imaging: ``weight · mean |f(A_g x̂, physics_g) − x̂|²``.

    Tachella, Chen & Davies, "Unsupervised Learning From Incomplete Measurements for Inverse
    Problems", NeurIPS 2022, eq. (6): when the training set was measured with several operators
    ``{A_1, …, A_G}`` (e.g. different inpainting masks), the reconstruction of one image is
    re-measured with another operator and must be reconstructed back.

    Parameters
    ----------
    physics_list : list of Physics (or LinearOperator)
        The operators ``A_g``; bare operators are wrapped as noiseless :class:`Physics`.
    weight : float
        Multiplies the term ``"moi"``.
    noisy : bool
        Re-measure with ``physics_g``'s noise model (fresh noise) instead of noiselessly.

    ``x̂ = f(y, physics)`` uses the batch's own ``physics``; each image then draws its own ``g``
    from ``generator`` and the images are grouped by ``g`` (one network pass per operator used).
    Combine with :class:`MCLoss` (``MCLoss() + MOILoss([...])``) as in the paper.
    """

    def __init__(self, physics_list, weight: float = 1.0, noisy: bool = False):
        super().__init__()
        from selfrecon.physics import LinearOperator, Physics

        items = list(physics_list)
        if len(items) < 1:
            raise ConfigError("MOILoss needs a non-empty list of physics (one per operator A_g)")
        wrapped = []
        for p in items:
            if isinstance(p, LinearOperator):
                p = Physics(p)
            if not isinstance(p, Physics):
                raise TypeError(
                    f"MOILoss takes Physics or LinearOperator items, got {type(p).__name__}"
                )
            wrapped.append(p)
        self.physics_list = torch.nn.ModuleList(wrapped)
        self.weight = float(weight)
        self.noisy = bool(noisy)

    def forward(self, step: Step) -> dict[str, Tensor]:
        x_hat, generator = step.x_hat, step.generator
        n = len(self.physics_list)
        dev = generator.device if generator is not None else "cpu"
        g = torch.randint(0, n, (x_hat.shape[0],), generator=generator, device=dev).to(x_hat.device)
        total = x_hat.new_zeros(())
        for k in range(n):  # a loop over operators, not over images
            sel = torch.nonzero(g == k).flatten()
            if sel.numel() == 0:
                continue
            pk = self.physics_list[k]
            xk = x_hat[sel]
            yk = pk.A(xk)
            if self.noisy:
                yk = pk.noisy(yk, generator)
            total = total + (step.reconstruct([yk], pk)[0] - xk).pow(2).sum()
        return {"moi": self.weight * total / x_hat.numel()}

    def extra_repr(self) -> str:
        return f"operators={len(self.physics_list)}, weight={self.weight:g}, noisy={self.noisy}"

r"""Recorrupted-to-Recorrupted (R2R) and its exponential-family generalisation (GR2R).

One noisy measurement ``y`` is split into two **independent** noisy copies of the same clean
``u = A x``: an input ``y₁`` and a target ``y₂``. Then for any network ``f``

    E ‖A f(y₁) − y₂‖² = E ‖A f(y₁) − u‖² + E ‖y₂ − u‖²,

so the R2R loss is an unbiased estimate of the clean measurement-consistency loss *at the input
``y₁``* up to a constant that does not depend on ``f`` — with **one** network pass, where SURE
needs a second one for its divergence probe. ``α > 0`` sets the split; in every family the input
carries ``1 + α²`` times the noise variance of ``y`` and the target ``1 + 1/α²`` times:

* Gaussian ``y = u + σ n`` (Pang, Zheng, Quan & Ji, "Recorrupted-to-Recorrupted", CVPR 2021,
  eq. 5): ``y₁ = y + α σ z``, ``y₂ = y − σ z / α``, ``z ~ N(0, I)``; the two are jointly Gaussian
  with ``Cov(n + α z, n − z/α) = 0``, hence independent. Constant per entry: ``σ²(1 + 1/α²)``.
* Poisson ``y = γ k``, ``k ~ Poisson(u/γ)`` (Monroy, Bacca & Tachella, "Generalized
  Recorrupted-to-Recorrupted", CVPR 2025, §4): binomial thinning ``ω ~ Bin(k, p)``,
  ``p = α²/(1 + α²)``, gives independent ``ω ~ Poisson(p u/γ)`` and ``k − ω ~ Poisson((1−p) u/γ)``;
  ``y₁ = γ(k − ω)/(1 − p)``, ``y₂ = γ ω / p``. Constant per entry: ``γ u / p``.
* Gamma ``y = u G/ℓ``, ``G ~ Gamma(ℓ, 1)`` (GR2R §4): with ``B ~ Beta(a₂, a₁)``,
  ``a₁ = ℓ/(1 + α²)``, ``a₂ = ℓ − a₁``, the parts ``(1 − B) y`` and ``B y`` are independent
  ``Gamma(a₁, u/ℓ)`` and ``Gamma(a₂, u/ℓ)``; ``y₁ = (1 − B) y ℓ/a₁``, ``y₂ = B y ℓ/a₂``. Constant
  per entry: ``u²/a₂``.
* Binomial ``y = k/N``, ``k ~ Bin(N, u)`` (GR2R §4): the successes ``ω`` among a random subset of
  ``N₂ = N − N₁`` of the ``N`` trials, ``N₁ = round(N/(1 + α²))``, are hypergeometric given ``k``,
  and ``ω ~ Bin(N₂, u)``, ``k − ω ~ Bin(N₁, u)`` independently; ``y₁ = (k − ω)/N₁``,
  ``y₂ = ω/N₂``. Constant per entry: ``u(1 − u)/N₂``.

Only measured entries are recorrupted (``physics.measured_mask``); elsewhere both copies are zero
like ``y``. The loss is the mean over all entries of ``A``'s output, as :class:`MCLoss`.

**Test time.** The network learns to reconstruct from inputs with the inflated noise of ``y₁``;
at inference :class:`~selfrecon.models.RecorruptedAverage` feeds it ``count`` recorrupted inputs
``y₁`` and averages the outputs (GR2R §4.3; default ``count = 8``).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from selfrecon.errors import ConfigError
from selfrecon.losses._util import mse
from selfrecon.losses.base import Loss
from selfrecon.losses.step import Step
from selfrecon.physics.noise import NoiseModel, _randn_like, per_sample, sample_gamma

__all__ = ["R2RLoss", "recorrupt", "r2r_constant", "R2R_NOISES", "check_alpha"]

#: the noise models R2R splits (Poisson-Gaussian mixes two families and has no exact split)
R2R_NOISES = ("gaussian", "poisson", "gamma", "binomial")


def check_alpha(alpha: float) -> float:
    a = float(alpha)
    if not (math.isfinite(a) and a > 0):
        raise ConfigError(f"R2R alpha must be a finite number > 0, got {alpha}")
    return a


def _check_noise(noise: NoiseModel | None) -> str:
    if noise is None:
        raise ConfigError(
            "R2R splits the noise of y into two copies, so it needs noisy measurements with a "
            "known noise model; set physics.noise, or train with MC + EI when there is no noise"
        )
    if noise.name not in R2R_NOISES:
        raise ConfigError(
            f"R2R supports {', '.join(R2R_NOISES)} noise, not {noise.name!r}; use SURE for it"
        )
    return noise.name


def _uniform(shape, generator, dtype, device) -> Tensor:
    dev = generator.device if generator is not None else device
    return torch.rand(shape, generator=generator, dtype=dtype, device=dev).to(device)


def _binomial_split(n_trials: int, n2: int, k: Tensor, generator) -> Tensor:
    """Successes among a uniformly random subset of ``n2`` of ``n_trials`` trials, given ``k``
    successes in all (hypergeometric), drawn by ranking ``n_trials`` uniforms per entry."""
    out = torch.empty_like(k)
    flat_k, flat_out = k.reshape(-1), out.view(-1)
    trial = torch.arange(n_trials, device=k.device)
    step = max(1, 2**22 // n_trials)  # bounded memory: 4M ranks at a time
    for s in range(0, flat_k.numel(), step):
        kk = flat_k[s : s + step]
        u = _uniform((kk.numel(), n_trials), generator, torch.float32, k.device)
        chosen = u.argsort(dim=1).argsort(dim=1) < n2  # a uniformly random n2-subset
        flat_out[s : s + step] = (chosen & (trial < kk[:, None])).sum(1).to(k.dtype)
    return out


def _binomial_sizes(n: int, a: float) -> tuple[int, int]:
    """``(N₁, N₂)``: the trials of the input and of the target copy, ``N₁ = round(N/(1 + α²))``."""
    n1 = round(n / (1 + a * a))
    n2 = n - n1
    if n1 < 1 or n2 < 1:
        raise ConfigError(
            f"binomial R2R with {n} trials and alpha={a:g} leaves an empty split "
            f"(N₁ = {n1}, N₂ = {n2}); use more trials or an alpha nearer 1"
        )
    return n1, n2


def recorrupt(
    y: Tensor,
    noise: NoiseModel,
    alpha: float,
    generator: torch.Generator | None = None,
    mask: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """``(y₁, y₂)``: the input and the target copy of ``y`` (see module docs for each family)."""
    kind, a = _check_noise(noise), check_alpha(alpha)
    w = None if mask is None else (mask != 0).to(y.real.dtype if y.is_complex() else y.dtype)
    if kind == "gaussian":
        s = per_sample(noise.sigma, y)
        z = _randn_like(y, generator)
        if w is not None:
            z = z * w
        return y + a * s * z, y - s * z / a
    if y.is_complex():
        raise ConfigError(f"{kind} R2R needs real measurements; these are complex")
    if kind == "poisson":
        g = per_sample(noise.gain, y)
        p = a * a / (1 + a * a)
        k = torch.round(y.detach().clamp_min(0) / g)
        dev = generator.device if generator is not None else y.device
        omega = torch.binomial(k.to(dev), torch.full_like(k, p).to(dev), generator=generator)
        omega = omega.to(y.device)
        # y − γω = γ(k − ω) on the data, written so that gradients reach y (REI re-measures x̂)
        return (y - g * omega) / (1 - p), g * omega / p
    if kind == "gamma":
        ell = torch.broadcast_to(per_sample(noise.looks, y), y.shape)
        a1 = ell / (1 + a * a)
        a2 = ell - a1
        a1, a2 = a1.detach(), a2.detach()
        g1, g2 = sample_gamma(a1.clone(), generator), sample_gamma(a2.clone(), generator)
        b = g2 / (g1 + g2)
        y1, y2 = (1 - b) * y * ell / a1, b * y * ell / a2
        return (y1, y2) if w is None else (y1 * w, y2 * w)
    trials = noise.trials
    if trials.dim() > 0 and trials.numel() > 1:
        raise ConfigError("binomial R2R needs one number of trials for the whole batch")
    n = int(trials.reshape(-1)[0])
    n1, n2 = _binomial_sizes(n, a)
    k = torch.round(y.detach().clamp(0, 1) * n)
    omega = _binomial_split(n, n2, k, generator)
    return (y * n - omega) / n1, omega / n2


def r2r_constant(u: Tensor, noise: NoiseModel, alpha: float, mask: Tensor | None = None) -> Tensor:
    """Per image ``(B,)``: ``E mean_j (y₂_j − u_j)²`` over all (real) entries, the constant by
    which the R2R loss exceeds the clean consistency loss ``mean |A f(y₁) − u|²``."""
    kind, a = _check_noise(noise), check_alpha(alpha)
    ur = torch.view_as_real(u) if u.is_complex() else u
    w = torch.ones_like(ur)
    if mask is not None:
        m = (mask != 0).to(ur.dtype)
        w = w * (m[..., None] if u.is_complex() else m)
    if kind == "gaussian":
        per = per_sample(noise.sigma, ur) ** 2 * (1 + 1 / a**2) * w
    elif kind == "poisson":
        per = per_sample(noise.gain, ur) * ur.clamp_min(0) * (1 + a * a) / (a * a) * w
    elif kind == "gamma":
        ell = per_sample(noise.looks, ur)
        per = ur.clamp_min(0) ** 2 / (ell - ell / (1 + a * a)) * w
    else:
        _, n2 = _binomial_sizes(int(noise.trials.reshape(-1)[0]), a)
        uc = ur.clamp(0, 1)
        per = uc * (1 - uc) / n2 * w
    return per.flatten(1).mean(1)


class R2RLoss(Loss):
    r"""GR2R consistency ``weight · mean |A f(y₁) − y₂|²`` (see module docs). Term: ``"r2r"``.

    One network pass on the recorrupted input ``y₁``; the reconstruction ``f(y₁)`` is the one
    the loss trains (and :class:`~selfrecon.models.RecorruptedAverage` reproduces at test time).
    The term is an unbiased risk estimate up to a constant, so the Trainer may rank checkpoints
    by it.
    """

    risk_terms = ("r2r",)

    def __init__(self, alpha: float = 0.5, weight: float = 1.0):
        super().__init__()
        self.alpha = check_alpha(alpha)
        self.weight = float(weight)

    def split(self, step: Step) -> tuple[Step, Tensor]:
        """``(step on y₁, y₂)``: the recorrupted step (``x_hat = f(y₁)``) and the target."""
        physics = step.physics
        y1, y2 = recorrupt(step.y, physics.noise, self.alpha, step.generator, physics.measured_mask)
        return step.with_input(y1), y2

    def forward(self, step: Step) -> dict[str, Tensor]:
        inner, y2 = self.split(step)
        return {"r2r": self.weight * mse(step.physics.A(inner.x_hat), y2)}

    def extra_repr(self) -> str:
        return f"alpha={self.alpha:g}, weight={self.weight:g}"

r"""UNSURE: SURE with the noise level learned, never given (Tachella, Davies & Jacques, "UNSURE:
self-supervised learning with Unknown Noise level and Stein's Unbiased Risk Estimate",
arXiv:2409.01985, ICLR 2025).

SURE for ``y = u + σ n`` (see :mod:`selfrecon.losses.sure`) is
``‖h(y) − y‖² − σ²|W| + 2σ² div h(y)``; without ``σ`` the divergence weight is unknown. UNSURE
replaces ``σ²`` by a Lagrange multiplier ``η`` and solves the saddle-point problem (their eq. 7)

    min_f max_η  E ‖h(y) − y‖² + 2 η E div h(y),

i.e. it minimises the residual subject to a **zero expected divergence**. Minimising pointwise
gives ``h(y) = y + η ∇ log p(y)`` — Tweedie's formula with ``η`` in place of ``σ²`` — and the
constraint fixes ``η = M / E‖∇ log p(y)‖²``, which is ``σ²`` up to the share of dimensions the
signal occupies (their Prop. 2: ``η ≥ σ²``, equal when the signal lies on a low-dimensional set).
``η`` is therefore a noise-level estimate, logged as the metric ``sigma_hat`` (``√η``).

For Poisson and Poisson-Gaussian noise the SURE weights are ``γ y_j + σ²``; UNSURE learns one
multiplier per unknown (``γ`` on ``Σ y_j ∂_j h_j``, ``σ²`` on ``Σ ∂_j h_j``, their §4.2). The
second-order term of PG-URE (coefficients ``γ²``, ``γσ²``) is left out: it is a correction of the
first-order expansion, not a constraint, and would need two more probes.

Updates (the right way round, unlike the peer library — its ``SureGaussianLoss(unsure=True)``
computes a momentum average and never uses it, and accumulates ``σ²`` as a tensor that carries
the autograd graph of every past step, so memory grows with training): the multipliers are
**buffers**, never part of the graph; after each training step's estimate, each is moved by
gradient ascent **in log space** with the momentum average ``v ← μ v + (1 − μ) g`` of its
gradient ``g``, ``log η ← log η + lr · v``. The gradient of the loss in ``η`` is
``2 div / M``, dimensionless for ``σ²``; for ``γ`` it is divided by the mean of ``|y|`` so both
steps have the same scale. Log space keeps ``η > 0`` and makes the step relative, so ``lr`` does
not depend on the units of ``y``. In evaluation mode nothing is updated. Under
``torch.distributed`` the gradients are averaged over the ranks before the step, so every rank
keeps the same level. The value returned
includes ``−η |W|`` so it is SURE's risk estimate at the learned level (the Trainer ranks
checkpoints by it); the constant has no gradient in ``f``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from selfrecon.errors import ConfigError
from selfrecon.losses.step import Step
from selfrecon.losses.sure import SURE, _gaussian, _rademacher, _sum

__all__ = ["UNSURE", "UNSURE_NOISES"]

#: the noise families whose level UNSURE learns
UNSURE_NOISES = ("gaussian", "poisson", "poisson_gaussian")
#: the default finite-difference step, as a fraction of the learned noise standard deviation
TAU_FRACTION = 0.1


def _positive(value: float, name: str) -> float:
    v = float(value)
    if not (math.isfinite(v) and v > 0):
        raise ConfigError(f"UNSURE {name} must be a finite number > 0, got {value}")
    return v


class UNSURE(SURE):
    r"""SURE with the noise level learned by gradient ascent (see module docs). Term ``"unsure"``.

    Parameters
    ----------
    model : {"gaussian", "poisson", "poisson_gaussian"}
        The noise family (its level is what is learned; ``physics.noise`` is never read).
    sigma_init, gain_init : float
        Starting values of ``σ`` and ``γ`` (in the units of ``y``).
    lr : float
        Step of the log-space ascent.
    momentum : float
        ``μ`` of the momentum average, in ``[0, 1)``.
    tau : float, optional
        Finite-difference step of the divergence probe. Default: ``TAU_FRACTION = 0.1`` times the
        learned noise standard deviation, updated every step. A fixed step large against the
        noise biases the divergence and with it the level (measured on mnist 32² denoising at
        σ = 0.02: τ = 10⁻² learns σ̂ = 0.007, τ = 10⁻³ learns 0.0225).
    weight, probe_fraction
        As :class:`~selfrecon.losses.SURE`.
    """

    risk_terms = ("unsure",)
    #: buffers that are learned state (saved in checkpoints, restored on resume)
    learned_buffers = ("log_sigma2", "log_gain", "velocity")

    def __init__(
        self,
        model: str = "gaussian",
        sigma_init: float = 0.1,
        gain_init: float = 0.1,
        lr: float = 0.02,
        momentum: float = 0.9,
        tau: float | None = None,
        weight: float = 1.0,
        probe_fraction: float = 1.0,
    ):
        super().__init__(tau=tau or 1.0, weight=weight, probe_fraction=probe_fraction)
        self.relative_tau = tau is None
        if model not in UNSURE_NOISES:
            raise ConfigError(
                f"UNSURE noise model must be one of {list(UNSURE_NOISES)}, got {model!r}"
            )
        if not 0 <= float(momentum) < 1:
            raise ConfigError(f"UNSURE momentum must lie in [0, 1), got {momentum}")
        self.model = model
        self.lr = _positive(lr, "lr")
        self.momentum = float(momentum)
        s0, g0 = _positive(sigma_init, "sigma_init"), _positive(gain_init, "gain_init")
        self.register_buffer("log_sigma2", torch.tensor(2 * math.log(s0), dtype=torch.float64))
        self.register_buffer("log_gain", torch.tensor(math.log(g0), dtype=torch.float64))
        self.register_buffer("velocity", torch.zeros(2, dtype=torch.float64))
        self._grads: tuple[Tensor, Tensor] | None = None

    # -- the learned level ----------------------------------------------------------------
    @property
    def sigma2(self) -> float:
        return 0.0 if self.model == "poisson" else float(self.log_sigma2.exp())

    @property
    def gain(self) -> float:
        return 0.0 if self.model == "gaussian" else float(self.log_gain.exp())

    def noise_model(self):
        """The noise model at the learned level (REI's fresh noise uses it)."""
        from selfrecon.physics.noise import build_noise

        spec = {"gaussian": {"sigma": math.sqrt(self.sigma2)}, "poisson": {"gain": self.gain}}
        params = spec.get(self.model, {"gain": self.gain, "sigma": math.sqrt(self.sigma2)})
        return build_noise({"name": self.model, **params})

    def monitors(self) -> dict[str, float]:
        out = {}
        if self.model != "poisson":
            out["sigma_hat"] = math.sqrt(self.sigma2)
        if self.model != "gaussian":
            out["gain_hat"] = self.gain
        return out

    # -- SURE with multipliers ------------------------------------------------------------
    def _kind(self, physics) -> str:
        return self.model

    def _draw_probes(self, kind, yrs, ws, generator):
        shape, dtype, dev = yrs.shape, yrs.dtype, yrs.device
        draw = _gaussian if kind == "gaussian" else _rademacher
        return [draw(shape, generator, dtype, dev) * ws], [self.tau]

    def _noise_terms(self, kind, noise, yr, w, probes, hs, h0s, pick) -> tuple[Tensor, Tensor]:
        diff = probes[0] * (hs[0] - h0s) / self.tau
        d0 = _sum(diff)  # Σ_j ∂_j h_j
        d1 = _sum(pick(yr) * diff)  # Σ_j y_j ∂_j h_j
        s2, g = self.sigma2, self.gain
        const = s2 * _sum(w) + g * _sum(yr * w)
        m = yr[0].numel()
        scale = float(yr.abs().mean().clamp_min(1e-12))
        self._grads = (  # ∂(loss)/∂η per multiplier, detached: never part of the graph
            (2 * d0.detach().mean() / m).double(),
            (2 * d1.detach().mean() / (m * scale)).double(),
        )
        return const, 2 * (s2 * d0 + g * d1)

    def forward(self, step: Step) -> dict[str, Tensor]:
        if self.relative_tau:  # the finite-difference step follows the learned noise scale
            mean_y = float(step.y.abs().mean()) if self.model != "gaussian" else 0.0
            self.tau = TAU_FRACTION * math.sqrt(self.sigma2 + self.gain * mean_y)
        value = self.estimate(step).mean()
        if self.training and self._grads is not None:
            self._ascend(*self._grads)
        self._grads = None
        return {"unsure": self.weight * value}

    @torch.no_grad()
    def _ascend(self, g_sigma2: Tensor, g_gain: Tensor) -> None:
        g = torch.stack([g_sigma2, g_gain]).to(self.velocity)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(g)  # every rank takes the same step: one level
            g = g / torch.distributed.get_world_size()
        self.velocity.mul_(self.momentum).add_((1 - self.momentum) * g)
        if self.model != "poisson":
            self.log_sigma2.add_(self.lr * self.velocity[0])
        if self.model != "gaussian":
            self.log_gain.add_(self.lr * self.velocity[1])

    def extra_repr(self) -> str:
        lv = ", ".join(f"{k}={v:.4g}" for k, v in self.monitors().items())
        return f"model={self.model!r}, {lv}, lr={self.lr:g}, momentum={self.momentum:g}"

r"""Stein's unbiased risk estimators (SURE) in measurement space, for three noise models.

Normalisation contract (tests and users rely on it): for ``h(y) = A f(y)`` = ``physics.A(model(y,
physics))`` each estimator's value is an **unbiased estimate of** ``mean((h(y) − A x)²)`` **over
all entries of A's output** (complex entries count as two real ones), for the noise model in
``physics.noise``. Per image, with ``M`` the number of (real) entries of ``y_b`` and ``W`` the
measured entries (``physics.measured_mask``; all entries when it is ``None``; noise and probes live
on ``W`` only, ``y`` is exactly zero elsewhere):

* Gaussian, ``y = u + σ n`` (Stein 1981; Monte-Carlo divergence: Ramani, Blu & Unser, IEEE TIP 2008;
  Chen et al., CVPR 2022, eq. 7)::

      M·SURE = ‖h(y) − y‖² − σ²|W| + (2σ²/τ) bᵀ(h(y + τb) − h(y)),      b ~ N(0, I_W)

* Poisson, ``y = γ·Poisson(u/γ)`` (PURE: Le Montagner, Angelini & Olivo-Marin, ICASSP 2014,
  after Luisier et al. 2010; Chen et al., CVPR 2022, eq. 8)::

      M·PURE = ‖h(y) − y‖² − γ·Σy + (2γ/τ) (b ⊙ y)ᵀ(h(y + τb) − h(y)),    b Rademacher on W

  It rests on ``E[u_j h_j(y)] = E[y_j h_j(y − γ e_j)]`` and the first-order expansion
  ``h_j(y) − h_j(y − γ e_j) ≈ γ ∂_j h_j(y)``.

* Poisson-Gaussian, ``y = γ·Poisson(u/γ) + σ n`` (PG-URE: Le Montagner et al., IEEE TIP 2014, eq. 13
  and Thm. 2; Chen et al., CVPR 2022, §3.3). From ``E[y_j g(y)] = u_j E[g(y + γ e_j)] +
  σ² E[∂_j g(y)]`` (Poisson identity + Stein's lemma) and ``u_j² = E[y_j² − γ y_j − σ²]``,
  expanding ``h_j(y − γ e_j)`` to second order::

      M·PG = ‖h(y) − y‖² − γΣy − σ²|W| + 2 Σ_j (γ y_j + σ²) ∂_j h_j − Σ_j (γ² y_j + 2γσ²) ∂²_jj h_j

  estimated with two probes in the same network pass::

      Σ_j w_j ∂_j h_j   ≈ (1/τ₁) (w ⊙ b)ᵀ (h(y + τ₁ b) − h(y)),              b Rademacher
      Σ_j w_j ∂²_jj h_j ≈ (1/τ₂²) (w ⊙ c)ᵀ (h(y + τ₂ c) + h(y − τ₂ c) − 2 h(y))

  The second difference is ``≈ τ₂² cᵀ ∇²h_j c`` — an *even* function of the probe. Multiplied by
  ``c_j`` its mean is ``Σ_{kl} E[c_j c_k c_l] ∂²_{kl} h_j = E[c³] ∂²_jj h_j``. With a symmetric
  probe (Gaussian or Rademacher, ``E[c³] = 0``) — what the original REI code uses — the
  second-order term therefore has expectation **zero** and silently drops out. We draw ``c`` from
  the two-point law ``c = φ`` w.p. ``1/(1 + φ²)``, ``c = −1/φ`` otherwise (``φ`` the golden ratio),
  which has ``E[c] = 0, E[c²] = 1, E[c³] = 1``, so the term estimates what it should. (Le Montagner
  et al. keep only the ``2γσ²`` part of the second-order coefficient; we keep ``γ² y_j`` as well,
  the same order in the expansion of the Poisson finite difference.)

Cost: ``f(y)`` and all probes are evaluated in **one** batched network pass (concatenated along the
batch; batch ``2B`` for Gaussian/Poisson, ``4B`` for Poisson-Gaussian) when ``step.x_hat`` is not
computed yet (``step.reconstruct``, see :mod:`selfrecon.losses.step`); the other terms share it.
Models with batch normalisation in training mode see the probes in their batch statistics; the
probes are tiny perturbations of ``y``, so this changes the statistics only to ``O(τ)``.
If the physics holds per-sample parameters (a mask per image, as its operator declares) the copies
are evaluated one after the other instead. Per-sample noise levels ``σ``/``γ`` of shape ``(B,)``
are supported.

Probing a subset (``probe_fraction = p < 1``, training mode only): the probed copies are made for
``k = ⌈pB⌉`` images drawn without replacement from the batch (seeded ``generator``), and their
divergence terms are multiplied by ``B/k``; the other images get no divergence term. For image
``i`` with selection indicator ``s_i`` (``E s_i = k/B``) the estimate is ``fit_i + (B/k) s_i d_i``
with ``d_i`` the unbiased Monte-Carlo divergence term above, so ``E[(B/k) s_i d_i] = E d_i``: every
per-image estimate stays **unbiased**, only its variance grows (a Hutchinson estimator whose probe
is zero on the unselected images). The gain is cost: the network pass for ``f(y)`` and its probes
covers ``B + k`` images instead of ``2B`` (``B + 3k`` instead of ``4B`` for Poisson-Gaussian).
In evaluation mode (``loss.eval()``, which the Trainer sets for validation) every image is probed.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from selfrecon.errors import ConfigError
from selfrecon.losses._util import real_view
from selfrecon.losses.base import Loss
from selfrecon.losses.step import Step
from selfrecon.physics.noise import per_sample

__all__ = ["SURE", "SureGaussian", "SurePoisson", "SurePoissonGaussian", "skewed_probe"]

_PHI = (1 + math.sqrt(5)) / 2
_P_HIGH = 1 / (1 + _PHI**2)  # = (5 − √5)/10 ≈ 0.276


def skewed_probe(shape, generator: torch.Generator | None = None, dtype=torch.float32, device=None):
    r"""I.i.d. ``c ∈ {φ, −1/φ}``, ``P(c = φ) = 1/(1+φ²)``: ``E c = 0, E c² = 1, E c³ = 1``."""
    dev = generator.device if generator is not None else (device or "cpu")
    u = torch.rand(shape, generator=generator, dtype=dtype, device=dev)
    c = torch.where(u < _P_HIGH, torch.full_like(u, _PHI), torch.full_like(u, -1 / _PHI))
    return c.to(device) if device is not None else c


def _rademacher(shape, generator, dtype, device):
    dev = generator.device if generator is not None else device
    r = torch.randint(0, 2, shape, generator=generator, device=dev).to(dtype)
    return (2 * r - 1).to(device)


def _gaussian(shape, generator, dtype, device):
    dev = generator.device if generator is not None else device
    return torch.randn(shape, generator=generator, dtype=dtype, device=dev).to(device)


def _skewed(shape, generator, dtype, device):
    return skewed_probe(shape, generator, dtype, device)


def _from_real(t: Tensor, like: Tensor) -> Tensor:
    return torch.view_as_complex(t.contiguous()) if like.is_complex() else t


def _sum(t: Tensor) -> Tensor:
    return t.flatten(1).sum(1)


def _measured_weights(y: Tensor, yr: Tensor, mask: Tensor | None) -> Tensor:
    """0/1 weights of the measured entries of ``yr`` (the real view of ``y``); ones if no mask."""
    w = torch.ones_like(yr)
    if mask is not None:
        m = mask.to(yr.device)
        m = real_view(m) if m.is_complex() else m
        w = w * (m[..., None] if y.is_complex() else m)
    return w


_KINDS = {"gaussian": "Gaussian", "poisson": "Poisson", "poisson_gaussian": "Poisson-Gaussian"}


class SURE(Loss):
    r"""SURE matched to ``physics.noise`` (Gaussian, Poisson or Poisson-Gaussian; see module docs).

    Parameters
    ----------
    tau : float
        Finite-difference step of the first-order (divergence) probe, in measurement units
        (REI default ``1e-2``; scale it with the range of ``y``).
    tau2 : float, optional
        Step of the second-order probe (Poisson-Gaussian only); defaults to ``tau``.
    weight : float
        Multiplies the term ``"sure"``.
    probe_fraction : float
        Fraction ``p ∈ (0, 1]`` of each training batch that gets the divergence probe (see module
        docs: unbiased for any ``p``, higher variance, network cost ``(1 + p)B`` instead of
        ``2B``). Evaluation mode always probes every image.
    """

    joins_x_hat_pass = True
    risk_terms = ("sure",)
    noise_kinds: tuple[str, ...] = ("gaussian", "poisson", "poisson_gaussian")

    def __init__(
        self,
        tau: float = 1e-2,
        tau2: float | None = None,
        weight: float = 1.0,
        probe_fraction: float = 1.0,
    ):
        super().__init__()
        for name, t in (("tau", tau), ("tau2", tau2)):
            if t is not None and not (math.isfinite(float(t)) and float(t) > 0):
                raise ConfigError(f"SURE {name} must be a positive finite step, got {t}")
        if not (0 < float(probe_fraction) <= 1):
            raise ConfigError(
                f"SURE probe_fraction must be in (0, 1] (the share of a batch that is probed), "
                f"got {probe_fraction}"
            )
        self.tau = float(tau)
        self.tau2 = float(tau2) if tau2 is not None else float(tau)
        self.weight = float(weight)
        self.probe_fraction = float(probe_fraction)

    def _probed_rows(self, batch: int, physics, generator, device) -> Tensor | None:
        """Indices of the images that get a probe (sorted), or ``None`` for all of them."""
        if not self.training or self.probe_fraction >= 1 or batch < 2:
            return None
        if physics.per_sample():  # a subset would need the physics sliced too
            return None
        k = math.ceil(self.probe_fraction * batch)
        if k >= batch:
            return None
        dev = generator.device if generator is not None else device
        rows = torch.randperm(batch, generator=generator, device=dev)[:k]
        return rows.sort().values.to(device)

    def _kind(self, physics) -> str:
        noise = getattr(physics, "noise", None)
        cls = type(self).__name__
        if noise is None:
            raise ConfigError(
                f"{cls} needs a noise model: set physics.noise (e.g. GaussianNoise(sigma=0.05)) to "
                "the noise of your measurements, or train with MCLoss + EILoss when there is none"
            )
        kind = getattr(noise, "name", "")
        if kind not in self.noise_kinds:
            raise ConfigError(
                f"{cls} is for {', '.join(_KINDS[k] for k in self.noise_kinds)} noise but "
                f"physics.noise is {type(noise).__name__}; use SURE() to match the noise model"
            )
        return kind

    def estimate(self, step: Step) -> Tensor:
        """Per-image estimates ``(B,)`` of ``mean_j (h_j(y) − (A x)_j)²``, ``h = A f``; ``x̂ = f(y)``
        is ``step.x_hat`` afterwards (computed in the probes' pass when it was not yet)."""
        y, physics, generator = step.y, step.physics, step.generator
        kind = self._kind(physics)
        if kind != "gaussian" and y.is_complex():
            raise ConfigError(
                "Poisson SURE needs real, non-negative measurements but y is complex; "
                "use GaussianNoise / SureGaussian for complex data (MRI)"
            )
        noise = physics.noise
        yr = real_view(y)
        w = _measured_weights(y, yr, physics.measured_mask)
        n_entries = yr[0].numel()
        batch = yr.shape[0]
        rows = self._probed_rows(batch, physics, generator, yr.device)

        def pick(t: Tensor) -> Tensor:  # the probed images' rows (per-sample levels included)
            return t if rows is None or t.dim() == 0 or t.shape[0] != batch else t[rows]

        ys, yrs, ws = pick(y), pick(yr), pick(w)
        probes, steps = self._draw_probes(kind, yrs, ws, generator)
        inputs = [ys + _from_real(s * p, y) for s, p in zip(steps, probes, strict=True)]
        outs = step.reconstruct(inputs)
        h0 = real_view(physics.A(step.x_hat))
        hs = [real_view(physics.A(o)) for o in outs]
        if h0.shape != yr.shape:
            raise ConfigError(
                f"A f(y) has shape {tuple(h0.shape)} but y is {tuple(yr.shape)}; "
                "pass the physics that produced y"
            )

        fit = _sum((h0 - yr) ** 2)
        const, div = self._noise_terms(kind, noise, yr, w, probes, hs, pick(h0), pick)
        if rows is not None:  # unbiased per image: E[(B/k)·s_i·d_i] = E[d_i]
            div = torch.zeros_like(fit).index_add(0, rows, div * (batch / rows.numel()))
        return (fit - const + div) / n_entries

    def _draw_probes(
        self, kind: str, yrs: Tensor, ws: Tensor, generator
    ) -> tuple[list[Tensor], list[float]]:
        """Draw the probes (restricted to the measured entries ``ws``) and their steps."""
        shape, dtype, dev = yrs.shape, yrs.dtype, yrs.device
        if kind == "gaussian":
            return [_gaussian(shape, generator, dtype, dev) * ws], [self.tau]
        if kind == "poisson":
            return [_rademacher(shape, generator, dtype, dev) * ws], [self.tau]
        b = _rademacher(shape, generator, dtype, dev) * ws
        c = _skewed(shape, generator, dtype, dev) * ws
        return [b, c, -c], [self.tau, self.tau2, self.tau2]

    def _noise_terms(self, kind, noise, yr, w, probes, hs, h0s, pick) -> tuple[Tensor, Tensor]:
        """The noise constant and the divergence term ``(const, div)`` for the noise ``kind``."""
        yrs = pick(yr)
        if kind == "gaussian":
            s2 = per_sample(noise.sigma, yr) ** 2
            const = _sum(s2 * w)
            div = 2 * _sum(pick(s2) * probes[0] * (hs[0] - h0s)) / self.tau
            return const, div
        if kind == "poisson":
            g = per_sample(noise.gain, yr)
            const = _sum(g * yr)
            div = 2 * _sum(pick(g) * yrs * probes[0] * (hs[0] - h0s)) / self.tau
            return const, div
        b, c = probes[0], probes[1]
        g = per_sample(noise.gain, yr)
        s2 = per_sample(noise.sigma, yr) ** 2
        gs, s2s = pick(g), pick(s2)
        const = _sum(g * yr) + _sum(s2 * w)
        first = _sum((gs * yrs + s2s) * b * (hs[0] - h0s)) / self.tau
        second = _sum((gs**2 * yrs + 2 * gs * s2s) * c * (hs[1] + hs[2] - 2 * h0s))
        return const, 2 * first - second / self.tau2**2

    def forward(self, step: Step) -> dict[str, Tensor]:
        return {"sure": self.weight * self.estimate(step).mean()}

    def extra_repr(self) -> str:
        p = f", probe_fraction={self.probe_fraction:g}" if self.probe_fraction < 1 else ""
        return f"tau={self.tau:g}, tau2={self.tau2:g}, weight={self.weight:g}{p}"


class SureGaussian(SURE):
    r"""Gaussian SURE (Ramani et al. 2008; Chen et al., CVPR 2022, eq. 7). See module docs.

    ``M·SURE = ‖h(y) − y‖² − σ²|W| + (2σ²/τ) bᵀ(h(y + τb) − h(y))``, ``b ~ N(0, I_W)``.
    """

    noise_kinds = ("gaussian",)

    def __init__(self, tau: float = 1e-2, weight: float = 1.0, probe_fraction: float = 1.0):
        super().__init__(tau=tau, weight=weight, probe_fraction=probe_fraction)


class SurePoisson(SURE):
    r"""PURE for ``y = γ·Poisson(u/γ)`` (Le Montagner et al., ICASSP 2014). See module docs.

    ``M·PURE = ‖h(y) − y‖² − γΣy + (2γ/τ)(b ⊙ y)ᵀ(h(y + τb) − h(y))``, ``b`` Rademacher.
    """

    noise_kinds = ("poisson",)

    def __init__(self, tau: float = 1e-2, weight: float = 1.0, probe_fraction: float = 1.0):
        super().__init__(tau=tau, weight=weight, probe_fraction=probe_fraction)


class SurePoissonGaussian(SURE):
    r"""PG-URE with the second-order term and a skewed probe (Le Montagner et al., IEEE TIP 2014;
    Chen et al., CVPR 2022). See module docs for the formula and why the probe must be skewed.
    """

    noise_kinds = ("poisson_gaussian",)

    def __init__(
        self,
        tau1: float = 1e-2,
        tau2: float | None = None,
        weight: float = 1.0,
        probe_fraction: float = 1.0,
    ):
        super().__init__(tau=tau1, tau2=tau2, weight=weight, probe_fraction=probe_fraction)

r"""Noise models: how clean measurements ``u = A x`` become the data ``y``.

``physics.noise`` is the one place the noise level lives; the SURE losses read ``sigma`` and
``gain`` from here. Parameters may be Python floats or per-sample tensors of shape ``(B,)``.

* :class:`GaussianNoise` — ``y = u + σ n``, ``n ~ N(0, I)`` (real and imaginary parts each
  ``N(0, σ²)`` for complex ``u``).
* :class:`PoissonNoise` — ``y = γ · Poisson(u / γ)`` so ``E[y] = u`` and ``Var[y] = γ u``
  (Le Montagner et al., ICASSP 2014; Chen et al., CVPR 2022, §3.2).
* :class:`PoissonGaussianNoise` — ``y = γ · Poisson(u / γ) + σ n`` (Makitalo & Foi, IEEE TIP 2013).
* :class:`GammaNoise` — multiplicative speckle ``y = u · G / ℓ``, ``G ~ Gamma(ℓ, 1)`` (``ℓ`` looks;
  SAR and ultrasound): ``E[y] = u``, ``Var[y] = u² / ℓ``.
* :class:`BinomialNoise` — ``y = Binomial(N, u) / N`` (``N`` trials, ``u ∈ [0, 1]``; photon counting
  with a fixed number of trials, quantised detectors): ``E[y] = u``, ``Var[y] = u(1 − u) / N``.

Poisson noise is only defined for ``u ≥ 0``. Training re-measures network outputs, which can be
negative early on, so a negative ``u`` is **clamped at zero** before sampling (the peer library
raises there and crashes training). Clamping is the documented behaviour, not an error.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from selfrecon.errors import ConfigError

__all__ = [
    "NoiseModel",
    "GaussianNoise",
    "PoissonNoise",
    "PoissonGaussianNoise",
    "GammaNoise",
    "BinomialNoise",
    "build_noise",
    "sample_gamma",
]


def _param(value: float | Tensor, name: str) -> Tensor:
    t = torch.as_tensor(value, dtype=torch.float32).detach().clone()
    if t.dim() > 1:
        raise ConfigError(
            f"noise {name} must be a number or a per-sample vector (B,), got shape {tuple(t.shape)}"
        )
    if bool((t < 0).any()) or not bool(torch.isfinite(t).all()):
        raise ConfigError(f"noise {name} must be finite and ≥ 0, got {t.tolist()}")
    return t


def per_sample(p: Tensor, like: Tensor) -> Tensor:
    """Broadcast a scalar or ``(B,)`` noise parameter against a batch ``like``."""
    p = p.to(device=like.device, dtype=like.real.dtype if like.is_complex() else like.dtype)
    if p.dim() == 0:
        return p
    if p.shape[0] != like.shape[0] and p.shape[0] != 1:
        raise ConfigError(
            f"a per-sample noise parameter has {p.shape[0]} values but the batch has "
            f"{like.shape[0]} items"
        )
    return p.reshape((-1,) + (1,) * (like.dim() - 1))


def _randn_like(u: Tensor, generator: torch.Generator | None) -> Tensor:
    dev = generator.device if generator is not None else u.device
    if u.is_complex():
        real_dtype = u.real.dtype
        n = torch.randn((*u.shape, 2), generator=generator, dtype=real_dtype, device=dev).to(
            u.device
        )
        return torch.view_as_complex(n)
    return torch.randn(u.shape, generator=generator, dtype=u.dtype, device=dev).to(u.device)


def _poisson(rate: Tensor, generator: torch.Generator | None) -> Tensor:
    dev = generator.device if generator is not None else rate.device
    return torch.poisson(rate.to(dev), generator=generator).to(rate.device)


def sample_gamma(shape_param: Tensor, generator: torch.Generator | None = None) -> Tensor:
    r"""``Gamma(a, 1)`` draws for a tensor of shapes ``a > 0``, every draw from ``generator``.

    Marsaglia & Tsang, "A simple method for generating gamma variables", ACM TOMS 2000: for
    ``a ≥ 1``, ``d = a − 1/3``, ``c = 1/√(9d)``, accept ``d v`` with ``v = (1 + c x)³``,
    ``x ~ N(0, 1)`` when ``log U < x²/2 + d − d v + d log v``; for ``a < 1`` the draw for ``a + 1``
    times ``U^{1/a}``. (``torch.distributions.Gamma`` takes no generator, so it cannot be seeded
    per run.)
    """
    a = shape_param.to(torch.float64)
    dev = generator.device if generator is not None else a.device
    boost = a < 1
    d = torch.where(boost, a + 1, a) - 1 / 3
    c = 1 / torch.sqrt(9 * d)
    out = torch.empty_like(a)
    todo = torch.ones_like(a, dtype=torch.bool)
    while bool(todo.any()):
        x = torch.randn(a.shape, generator=generator, dtype=a.dtype, device=dev).to(a.device)
        u = torch.rand(a.shape, generator=generator, dtype=a.dtype, device=dev).to(a.device)
        v = (1 + c * x) ** 3
        ok = (v > 0) & (torch.log(u) < 0.5 * x**2 + d - d * v + d * torch.log(v.clamp_min(1e-300)))
        take = ok & todo
        out = torch.where(take, d * v, out)
        todo = todo & ~take
    if bool(boost.any()):
        u = torch.rand(a.shape, generator=generator, dtype=a.dtype, device=dev).to(a.device)
        out = torch.where(boost, out * u ** (1 / a), out)
    return out.to(shape_param.dtype)


class NoiseModel(nn.Module):
    """``sample(u, generator)`` returns a noisy copy of ``u``; ``spec()`` describes it."""

    name: str = ""

    def sample(
        self, u: Tensor, generator: torch.Generator | None = None
    ) -> Tensor:  # pragma: no cover
        raise NotImplementedError

    def forward(self, u: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return self.sample(u, generator)

    def per_sample(self) -> bool:
        """Whether σ or γ holds one value per image (a ``(B,)`` vector with ``B > 1``)."""
        return any(
            getattr(self, k).dim() > 0 and getattr(self, k).numel() > 1
            for k in NOISE_PARAMS[self.name]
            if isinstance(getattr(self, k, None), Tensor)
        )

    def spec(self) -> dict:
        out = {"name": self.name}
        for key in NOISE_PARAMS[self.name]:
            if hasattr(self, key):
                v = getattr(self, key)
                out[key] = float(v) if v.dim() == 0 else v.tolist()
        return out

    def update(self, **params) -> NoiseModel:
        spec = self.spec()
        spec.update(params)
        return build_noise(spec)


class GaussianNoise(NoiseModel):
    r"""Additive white Gaussian noise ``y = u + σ n``, ``n ~ N(0, I)``."""

    name = "gaussian"

    def __init__(self, sigma: float | Tensor = 0.1):
        super().__init__()
        self.register_buffer("sigma", _param(sigma, "sigma"))

    def sample(self, u: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return u + per_sample(self.sigma, u) * _randn_like(u, generator)

    def extra_repr(self) -> str:
        return f"sigma={self.sigma.tolist()}"


class PoissonNoise(NoiseModel):
    r"""Scaled Poisson noise ``y = γ · Poisson(max(u, 0) / γ)``: ``E[y] = u``, ``Var[y] = γ u``.

    Le Montagner et al., "An unbiased risk estimator for image denoising in the presence of mixed
    Poisson-Gaussian noise", IEEE TIP 2014. Negative ``u`` is clamped at zero (see module docs).
    """

    name = "poisson"

    def __init__(self, gain: float | Tensor = 0.1):
        super().__init__()
        g = _param(gain, "gain")
        if bool((g <= 0).any()):
            raise ConfigError("Poisson gain must be > 0 (y = gain · Poisson(u / gain))")
        self.register_buffer("gain", g)

    def sample(self, u: Tensor, generator: torch.Generator | None = None) -> Tensor:
        if u.is_complex():
            raise ConfigError(
                "Poisson noise needs real, non-negative measurements; this operator's are complex"
            )
        g = per_sample(self.gain, u)
        return g * _poisson(u.clamp_min(0) / g, generator)

    def extra_repr(self) -> str:
        return f"gain={self.gain.tolist()}"


class PoissonGaussianNoise(NoiseModel):
    r"""Mixed noise ``y = γ · Poisson(max(u, 0) / γ) + σ n``: ``E[y] = u``, ``Var[y] = γ u + σ²``.

    Makitalo & Foi, IEEE TIP 2013; used for low-dose CT in Chen et al., CVPR 2022.
    """

    name = "poisson_gaussian"

    def __init__(self, gain: float | Tensor = 0.1, sigma: float | Tensor = 0.01):
        super().__init__()
        g = _param(gain, "gain")
        if bool((g <= 0).any()):
            raise ConfigError("Poisson gain must be > 0 (y = gain · Poisson(u / gain) + sigma · n)")
        self.register_buffer("gain", g)
        self.register_buffer("sigma", _param(sigma, "sigma"))

    def sample(self, u: Tensor, generator: torch.Generator | None = None) -> Tensor:
        if u.is_complex():
            raise ConfigError(
                "Poisson-Gaussian noise needs real measurements; this operator's are complex"
            )
        g = per_sample(self.gain, u)
        s = per_sample(self.sigma, u)
        return g * _poisson(u.clamp_min(0) / g, generator) + s * _randn_like(u, generator)

    def extra_repr(self) -> str:
        return f"gain={self.gain.tolist()}, sigma={self.sigma.tolist()}"


class GammaNoise(NoiseModel):
    r"""Multiplicative speckle ``y = u · G / ℓ``, ``G ~ Gamma(ℓ, 1)``: ``E[y] = u``,
    ``Var[y] = u²/ℓ`` (``ℓ`` the number of looks; Goodman, "Speckle phenomena in optics", 2007,
    §5). Negative ``u`` is clamped at zero, as for Poisson noise."""

    name = "gamma"

    def __init__(self, looks: float | Tensor = 10.0):
        super().__init__()
        ell = _param(looks, "looks")
        if bool((ell <= 0).any()):
            raise ConfigError("gamma noise needs looks > 0 (y = u · Gamma(looks, 1) / looks)")
        self.register_buffer("looks", ell)

    def sample(self, u: Tensor, generator: torch.Generator | None = None) -> Tensor:
        if u.is_complex():
            raise ConfigError("gamma noise needs real, non-negative measurements")
        ell = per_sample(self.looks, u)
        g = sample_gamma(torch.broadcast_to(ell, u.shape).clone(), generator)
        return u.clamp_min(0) * g / ell

    def extra_repr(self) -> str:
        return f"looks={self.looks.tolist()}"


class BinomialNoise(NoiseModel):
    r"""``y = Binomial(N, u) / N`` for ``u`` clamped to ``[0, 1]``: ``E[y] = u``,
    ``Var[y] = u(1 − u)/N`` (``N`` trials)."""

    name = "binomial"

    def __init__(self, trials: int | Tensor = 10):
        super().__init__()
        n = _param(trials, "trials")
        if bool((n < 1).any()) or bool((n != n.round()).any()):
            raise ConfigError(
                f"binomial noise needs an integer number of trials ≥ 1, got {n.tolist()}"
            )
        self.register_buffer("trials", n)

    def sample(self, u: Tensor, generator: torch.Generator | None = None) -> Tensor:
        if u.is_complex():
            raise ConfigError("binomial noise needs real measurements in [0, 1]")
        n = torch.broadcast_to(per_sample(self.trials, u), u.shape)
        dev = generator.device if generator is not None else u.device
        k = torch.binomial(n.to(dev).contiguous(), u.clamp(0, 1).to(dev), generator=generator)
        return k.to(u.device) / n

    def extra_repr(self) -> str:
        return f"trials={self.trials.tolist()}"


_NOISES = {
    cls.name: cls
    for cls in (GaussianNoise, PoissonNoise, PoissonGaussianNoise, GammaNoise, BinomialNoise)
}
#: the parameters of each noise model, in spec order
NOISE_PARAMS = {
    "gaussian": ("sigma",),
    "poisson": ("gain",),
    "poisson_gaussian": ("gain", "sigma"),
    "gamma": ("looks",),
    "binomial": ("trials",),
}


def build_noise(spec: dict | None) -> NoiseModel | None:
    """Noise model from ``{"name": "gaussian", "sigma": 0.1}``; ``None``/``"none"`` → no noise."""
    if spec is None:
        return None
    spec = dict(spec)
    name = spec.pop("name", None)
    if name in (None, "none"):
        return None
    if name not in _NOISES:
        raise ConfigError(
            f"unknown noise model {name!r}; choose one of {sorted(_NOISES)} or 'none'"
        )
    try:
        return _NOISES[name](**spec)
    except TypeError as e:
        raise ConfigError(f"bad parameters for noise {name!r}: {e}") from None

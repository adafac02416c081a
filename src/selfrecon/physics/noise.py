r"""Noise models: how clean measurements ``u = A x`` become the data ``y``.

``physics.noise`` is the one place the noise level lives; the SURE losses read ``sigma`` and
``gain`` from here. Parameters may be Python floats or per-sample tensors of shape ``(B,)``.

* :class:`GaussianNoise` — ``y = u + σ n``, ``n ~ N(0, I)`` (real and imaginary parts each
  ``N(0, σ²)`` for complex ``u``).
* :class:`PoissonNoise` — ``y = γ · Poisson(u / γ)`` so ``E[y] = u`` and ``Var[y] = γ u``
  (Le Montagner et al., ICASSP 2014; Chen et al., CVPR 2022, §3.2).
* :class:`PoissonGaussianNoise` — ``y = γ · Poisson(u / γ) + σ n`` (Makitalo & Foi, IEEE TIP 2013).

Poisson noise is only defined for ``u ≥ 0``. Training re-measures network outputs, which can be
negative early on, so a negative ``u`` is **clamped at zero** before sampling (the peer library
raises there and crashes training). Clamping is the documented behaviour, not an error.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from selfrecon.errors import ConfigError

__all__ = ["NoiseModel", "GaussianNoise", "PoissonNoise", "PoissonGaussianNoise", "build_noise"]


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
            for k in ("sigma", "gain")
            if isinstance(getattr(self, k, None), Tensor)
        )

    def spec(self) -> dict:
        out = {"name": self.name}
        for key in ("sigma", "gain"):
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


_NOISES = {cls.name: cls for cls in (GaussianNoise, PoissonNoise, PoissonGaussianNoise)}


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

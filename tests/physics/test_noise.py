"""Noise models: sample moments match the model within a few standard errors."""

from __future__ import annotations

import math

import pytest
import torch

from selfrecon.errors import ConfigError
from selfrecon.physics import GaussianNoise, PoissonGaussianNoise, PoissonNoise, build_noise

N = 40_000  # samples per moment check
Z = 5.0  # allowed deviation in standard errors (false-alarm rate < 1e-6 per check)


def _check_moments(samples: torch.Tensor, mean: float, var: float, fourth_central: float) -> None:
    """Sample mean and variance within Z standard errors of the model's.

    SE(mean) = sqrt(var / n); SE(sample variance) = sqrt((μ4 - var²) / n).
    """
    s = samples.double().flatten()
    n = s.numel()
    assert abs(s.mean().item() - mean) <= Z * math.sqrt(var / n) + 1e-12
    se_var = math.sqrt(max(fourth_central - var**2, 0.0) / n)
    assert abs(s.var().item() - var) <= Z * se_var + 1e-12


def test_gaussian_moments(rng):
    sigma, u = 0.3, 0.7
    y = GaussianNoise(sigma).sample(torch.full((N,), u), rng)
    _check_moments(y, u, sigma**2, 3 * sigma**4)


def test_gaussian_complex_has_sigma_per_real_component(rng):
    sigma = 0.2
    y = GaussianNoise(sigma).sample(torch.full((N,), 1 + 2j, dtype=torch.complex64), rng)
    _check_moments(y.real, 1.0, sigma**2, 3 * sigma**4)
    _check_moments(y.imag, 2.0, sigma**2, 3 * sigma**4)
    assert abs(torch.corrcoef(torch.stack([y.real, y.imag]))[0, 1]) < Z / math.sqrt(N)


@pytest.mark.parametrize("gain, u", [(0.1, 0.5), (1.0, 3.0), (0.01, 0.2)])
def test_poisson_moments(gain, u, rng):
    y = PoissonNoise(gain).sample(torch.full((N,), u), rng)
    lam = u / gain  # y = γ·k, k ~ Poisson(λ): var = γ² λ, μ4 = γ⁴ (λ + 3λ²)
    _check_moments(y, u, gain * u, gain**4 * (lam + 3 * lam**2))
    # values live on the lattice γ·ℕ
    k = y / gain
    assert torch.allclose(k, k.round(), atol=1e-3)


def test_poisson_gaussian_moments(rng):
    gain, sigma, u = 0.2, 0.1, 1.0
    y = PoissonGaussianNoise(gain, sigma).sample(torch.full((N,), u), rng)
    lam = u / gain
    var_p, mu4_p = gain**2 * lam, gain**4 * (lam + 3 * lam**2)
    var = var_p + sigma**2  # independent sum: μ4 = μ4_p + 6 var_p σ² + 3σ⁴
    _check_moments(y, u, var, mu4_p + 6 * var_p * sigma**2 + 3 * sigma**4)


def test_per_sample_sigma_and_gain(rng):
    sig = torch.tensor([0.05, 0.2, 1.0])
    y = GaussianNoise(sig).sample(torch.zeros(3, 1, 100, 100), rng)
    for i, s in enumerate(sig.tolist()):
        _check_moments(y[i], 0.0, s**2, 3 * s**4)
    gain = torch.tensor([0.05, 0.5])
    u = 2.0
    y = PoissonNoise(gain).sample(torch.full((2, 1, 100, 100), u), rng)
    for i, g in enumerate(gain.tolist()):
        lam = u / g
        _check_moments(y[i], u, g * u, g**4 * (lam + 3 * lam**2))
    with pytest.raises(ValueError, match="3 values but the batch has 2"):
        GaussianNoise(sig).sample(torch.zeros(2, 4), rng)


def test_poisson_clamps_negative_input_at_zero(rng):
    u = torch.tensor([-1.0, -0.5, 0.0] * 1000)
    y = PoissonNoise(0.1).sample(u, rng)
    assert torch.all(y == 0)
    y = PoissonGaussianNoise(0.1, 0.3).sample(torch.full((N,), -2.0), rng)
    _check_moments(y, 0.0, 0.09, 3 * 0.3**4)  # only the Gaussian part remains


def test_noise_is_reproducible_with_a_seeded_generator():
    u = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    for noise in (GaussianNoise(0.1), PoissonNoise(0.05), PoissonGaussianNoise(0.05, 0.01)):
        a = noise.sample(u, torch.Generator().manual_seed(7))
        b = noise.sample(u, torch.Generator().manual_seed(7))
        c = noise.sample(u, torch.Generator().manual_seed(8))
        assert torch.equal(a, b) and not torch.equal(a, c)


def test_noise_parameter_validation():
    with pytest.raises(ValueError, match="≥ 0"):
        GaussianNoise(-0.1)
    with pytest.raises(ValueError, match="> 0"):
        PoissonNoise(0.0)
    with pytest.raises(ValueError, match="per-sample vector"):
        GaussianNoise(torch.ones(2, 2))
    with pytest.raises(ValueError, match="complex"):
        PoissonNoise(0.1).sample(torch.zeros(3, dtype=torch.complex64))
    with pytest.raises(ValueError, match="unknown noise model"):
        build_noise({"name": "speckle"})
    with pytest.raises(ValueError, match="bad parameters"):
        build_noise({"name": "poisson", "sigma": 0.1})


def test_noise_spec_round_trip_and_update():
    for noise in (GaussianNoise(0.1), PoissonNoise(0.05), PoissonGaussianNoise(0.05, 0.01)):
        again = build_noise(noise.spec())
        assert type(again) is type(noise) and again.spec() == noise.spec()
    assert build_noise(None) is None and build_noise({"name": "none"}) is None
    upd = GaussianNoise(0.1).update(sigma=torch.tensor([0.1, 0.3]))
    assert torch.allclose(upd.sigma, torch.tensor([0.1, 0.3]))
    assert build_noise(upd.spec()).spec() == upd.spec()


def test_gamma_and_binomial_noise_moments_and_seeding():
    from selfrecon.physics import BinomialNoise, GammaNoise, build_noise
    from selfrecon.physics.noise import sample_gamma

    g = torch.Generator().manual_seed(0)
    for a in (0.3, 1.0, 4.5):  # both branches of Marsaglia–Tsang
        draws = sample_gamma(torch.full((100_000,), a), g)
        assert float(draws.mean()) == pytest.approx(a, rel=0.02)
        assert float(draws.var()) == pytest.approx(a, rel=0.05)
    u = torch.rand(50_000, generator=g)
    ga = GammaNoise(8.0).sample(u, torch.Generator().manual_seed(1))
    assert torch.equal(ga, GammaNoise(8.0).sample(u, torch.Generator().manual_seed(1)))
    assert float((ga - u).mean()) == pytest.approx(
        0.0, abs=4 * float((u**2 / 8).mean().sqrt()) / 50_000**0.5
    )
    assert float((ga - u).var()) == pytest.approx(float((u**2 / 8).mean()), rel=0.05)
    bi = BinomialNoise(12).sample(u, g)
    assert torch.allclose(bi * 12, (bi * 12).round())
    assert float((bi - u).var()) == pytest.approx(float((u * (1 - u) / 12).mean()), rel=0.05)
    assert build_noise({"name": "binomial", "trials": 12}).spec() == {
        "name": "binomial",
        "trials": 12.0,
    }
    with pytest.raises(ConfigError, match="looks > 0"):
        GammaNoise(0)
    with pytest.raises(ConfigError, match="integer number of trials"):
        BinomialNoise(2.5)

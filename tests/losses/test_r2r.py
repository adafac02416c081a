"""R2R / GR2R: unbiasedness up to the stated constant as z-tests over ≥ 200 draws, the split's
independence, one network pass, test-time averaging, and the errors."""

import pytest
import torch

from selfrecon.errors import ConfigError
from selfrecon.losses import R2RLoss, REILoss, Step, build_loss
from selfrecon.losses.r2r import r2r_constant, recorrupt
from selfrecon.models import RecorruptedAverage
from selfrecon.physics import (
    BinomialNoise,
    Denoising,
    GammaNoise,
    GaussianNoise,
    Inpainting,
    Physics,
    PoissonGaussianNoise,
    PoissonNoise,
)

N_DRAWS = 256


def _g(seed=0):
    return torch.Generator().manual_seed(seed)


def f(y, physics):
    """A fixed nonlinear reconstruction (soft threshold of A†y)."""
    z = physics.A.pinv(y)
    return torch.sign(z) * torch.clamp(z.abs() - 0.05, min=0)


NOISES = {
    "gaussian": lambda: GaussianNoise(0.1),
    "poisson": lambda: PoissonNoise(0.05),
    "gamma": lambda: GammaNoise(20.0),
    "binomial": lambda: BinomialNoise(40),
}


def _op(name):
    return (
        Denoising()
        if name == "denoising"
        else Inpainting(rate=0.6, img_shape=(8, 8), generator=_g(7))
    )


@pytest.mark.parametrize("noise", list(NOISES))
@pytest.mark.parametrize("op", ["denoising", "inpainting"])
@pytest.mark.parametrize("alpha", [0.5, 1.0])
def test_r2r_minus_clean_mc_is_the_stated_constant_z_test(op, noise, alpha):
    physics = Physics(_op(op), NOISES[noise]())
    x = 0.2 + 0.6 * torch.rand(1, 1, 8, 8, generator=_g(1))  # inside (0, 1): binomial-safe
    xs = x.expand(N_DRAWS, 1, 8, 8)
    g = _g(2)
    u = physics.A(xs)
    y = physics.measure(xs, g)
    y1, y2 = recorrupt(y, physics.noise, alpha, g, physics.measured_mask)
    h = physics.A(f(y1, physics))
    r2r = (h - y2).pow(2).flatten(1).mean(1)
    clean = (h - u).pow(2).flatten(1).mean(1)
    d = r2r - clean - r2r_constant(u, physics.noise, alpha, physics.measured_mask)
    z = float(d.mean() / (d.std() / N_DRAWS**0.5))
    assert abs(z) < 4, z
    # and the constant is not negligible: forgetting it would fail the test by a wide margin
    d0 = r2r - clean
    assert abs(float(d0.mean() / (d0.std() / N_DRAWS**0.5))) > 10


@pytest.mark.parametrize("noise", list(NOISES))
def test_the_two_copies_are_unbiased_independent_and_inflated(noise):
    physics = Physics(Denoising(), NOISES[noise]())
    u = torch.full((4000, 1, 2, 2), 0.5)
    y = physics.measure(u, _g(3))
    alpha = 0.5
    y1, y2 = recorrupt(y, physics.noise, alpha, _g(4))
    e1, e2, e = (y1 - u).flatten(), (y2 - u).flatten(), (y - u).flatten()
    n = e.numel()
    for err in (e1, e2):
        assert abs(float(err.mean()) / float(err.std() / n**0.5)) < 4
    corr = float(torch.corrcoef(torch.stack([e1, e2]))[0, 1])
    assert abs(corr) < 4 / n**0.5
    assert float(e1.var() / e.var()) == pytest.approx(1 + alpha**2, rel=0.08)


def test_one_network_pass_and_rei_r2r_costs_two():
    physics = Physics(Inpainting(rate=0.6, img_shape=(8, 8), generator=_g(0)), GaussianNoise(0.1))
    y = physics.measure(torch.rand(4, 1, 8, 8, generator=_g(1)), _g(2))
    calls = []

    def model(t, p):
        calls.append(t.shape[0])
        return p.A.pinv(t)

    step = Step(y, physics, model, _g(3))
    terms = R2RLoss()(step)
    assert list(terms) == ["r2r"] and step.passes == 1 and calls == [4]
    calls.clear()
    step = Step(y, physics, model, _g(3))
    terms = REILoss("shift", consistency="r2r")(step)
    assert list(terms) == ["r2r", "rei"] and step.passes == 2 and calls == [4, 4]
    sure_step = Step(y, physics, model, _g(3))
    calls.clear()
    REILoss("shift")(sure_step)
    assert calls == [8, 4]  # SURE: f(y) and f(y + τb) batched, then the EI pass


def test_recorrupted_average_is_deterministic_and_averages_count_passes():
    physics = Physics(Denoising(), GaussianNoise(0.2))
    y = physics.measure(torch.rand(2, 1, 8, 8, generator=_g(1)), _g(2))
    calls = []

    def model(t, p):
        calls.append(1)
        return t

    net = RecorruptedAverage(model, alpha=0.5, count=16)
    a, b = net(y, physics), net(y, physics)
    assert torch.equal(a, b) and len(calls) == 32
    # the identity network: the average of 16 recorruptions is y plus noise of std ασ/4
    assert float((a - y).std()) == pytest.approx(0.5 * 0.2 / 4, rel=0.15)


def test_errors():
    y = torch.rand(2, 1, 8, 8)
    with pytest.raises(ConfigError, match="known noise model"):
        R2RLoss()(Step(y, Physics(Denoising()), f, _g()))
    with pytest.raises(ConfigError, match="not 'poisson_gaussian'"):
        R2RLoss()(Step(y, Physics(Denoising(), PoissonGaussianNoise(0.1, 0.1)), f, _g()))
    with pytest.raises(ConfigError, match="alpha must be"):
        R2RLoss(alpha=-1)
    with pytest.raises(ConfigError, match="empty split"):
        recorrupt(y, BinomialNoise(2), 0.1, _g())
    with pytest.raises(ConfigError, match="consistency must be one of"):
        build_loss({"method": "rei", "consistency": "n2n"})
    with pytest.raises(ConfigError, match="noise with the noise model|needs a physics with noise"):
        RecorruptedAverage(lambda t, p: t)(y, Physics(Denoising()))

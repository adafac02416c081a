"""Step: x_hat computed once, extra passes batched with y, per-sample physics copy by copy."""

import pytest
import torch

from selfrecon.losses import Step
from selfrecon.losses.step import loss_terms
from selfrecon.physics import Denoising, GaussianNoise, Inpainting, Physics


def _counting():
    calls = []

    def model(t, p):
        calls.append(t.shape[0])
        return 2 * t

    return calls, model


def test_x_hat_is_lazy_and_computed_once(rng):
    calls, model = _counting()
    y = torch.rand(3, 1, 4, 4, generator=rng)
    step = Step(y, Physics(Denoising()), model, rng)
    assert not step.has_x_hat and calls == []
    assert torch.equal(step.x_hat, 2 * y) and step.x_hat is step.x_hat
    assert calls == [3] and step.passes == 1
    given = Step(y, Physics(Denoising()), model, x_hat=y)
    assert given.has_x_hat and given.x_hat is y and calls == [3]


def test_reconstruct_joins_the_x_hat_pass(rng):
    calls, model = _counting()
    y = torch.rand(4, 1, 4, 4, generator=rng)
    step = Step(y, Physics(Denoising(), GaussianNoise(0.1)), model, rng)
    a, b = step.reconstruct([y + 1, (y + 2)[:2]])  # a probe on a subset of the images too
    assert calls == [10] and step.passes == 1
    torch.testing.assert_close(a, 2 * (y + 1))
    torch.testing.assert_close(b, 2 * (y + 2)[:2])
    torch.testing.assert_close(step.x_hat, 2 * y)
    (c,) = step.reconstruct([y - 1])  # x_hat known: the input alone
    assert calls == [10, 4] and torch.equal(c, 2 * (y - 1))


def test_per_sample_physics_and_other_physics_run_alone(rng):
    calls, model = _counting()
    y = torch.rand(4, 1, 4, 4, generator=rng)
    masks = (torch.rand(4, 1, 4, 4, generator=rng) < 0.5).float()
    step = Step(y, Physics(Inpainting(mask=masks)), model, rng)
    step.reconstruct([y, y])
    assert calls == [4, 4, 4] and step.passes == 3  # [y, y, y] copy by copy
    calls.clear()
    other = Physics(Denoising())
    step = Step(y, Physics(Denoising()), model, rng)
    step.reconstruct([y], physics=other)  # another operator: x_hat is not computed with it
    assert calls == [4] and not step.has_x_hat


def test_loss_terms_checks_the_protocol(rng):
    step = Step(torch.rand(2, 1, 4, 4, generator=rng), Physics(Denoising()), lambda t, p: t)
    assert loss_terms(lambda s: {"a": s.x_hat.mean()}, step).keys() == {"a"}
    with pytest.raises(TypeError, match="scalar tensor"):
        loss_terms(lambda s: {"a": s.x_hat}, step)
    with pytest.raises(TypeError, match="no loss terms"):
        loss_terms(lambda s: {}, step)

"""SSDU splitting: disjoint sets covering the measured entries (per-image masks respected), one
pass on the restricted operator, a deterministic test-time average, training helps, errors."""

import pytest
import torch

from selfrecon.errors import ConfigError
from selfrecon.losses import SplitAverage, SplittingLoss, Step, build_loss
from selfrecon.losses.splitting import split_masks
from selfrecon.physics import Denoising, GaussianNoise, Physics, build_physics


def _g(seed=0):
    return torch.Generator().manual_seed(seed)


def _mri(per_image=False):
    spec = {"name": "mri", "img_shape": [16, 16], "acceleration": 2.0, "seed": 0}
    physics = build_physics({"kind": "linear", "operator": spec, "noise": None})
    if per_image:  # a different mask per image
        masks = [build_physics({"kind": "linear", "operator": {**spec, "seed": k}, "noise": None})
                 .operator.mask for k in range(3)]  # fmt: skip
        physics = physics.update(mask=torch.cat(masks))
    return physics


@pytest.mark.parametrize("per_image", [False, True])
def test_the_two_sets_are_disjoint_and_cover_the_measured_entries(per_image):
    physics = _mri(per_image)
    mask = physics.operator.mask
    keep, held = split_masks(mask, 3, 0.4, _g(1))
    measured = (mask != 0).float().expand_as(keep)
    assert torch.equal(keep * held, torch.zeros_like(keep))
    assert torch.equal(keep + held, measured)
    share = float(held.sum() / measured.sum())
    assert share == pytest.approx(0.4, abs=0.05)
    if per_image:
        assert not torch.equal(measured[0], measured[1])  # each image keeps its own mask
    k2, h2 = split_masks(mask, 3, 0.4, _g(1))
    assert torch.equal(keep, k2) and torch.equal(held, h2)


def test_the_loss_scores_only_held_out_entries_in_one_pass_on_the_restricted_operator():
    physics = _mri()
    x = physics.prepare_image(torch.rand(3, 1, 16, 16, generator=_g(2)))
    y = physics.measure(x)
    seen = []

    def model(t, p):
        seen.append((t, p.operator.mask))
        return p.A.pinv(t)

    step = Step(y, physics, model, _g(3))
    terms = SplittingLoss(0.4)(step)
    assert step.passes == 1
    ((t, m),) = seen
    assert torch.equal(t, y * m.to(t.real.dtype))  # the input holds the kept entries only
    # A† of a projection reproduces the kept entries: the held-out residual is what is scored
    assert float(terms["split"]) > 0
    oracle = lambda t, p: x  # noqa: E731 - the truth scores zero on noiseless data
    assert float(SplittingLoss()(Step(y, physics, oracle, _g(3)))["split"]) < 1e-10


def test_split_average_is_deterministic_and_averages_count_passes():
    physics = _mri()
    y = physics.measure(physics.prepare_image(torch.rand(2, 1, 16, 16, generator=_g(1))))
    calls = []

    def model(t, p):
        calls.append(1)
        return p.A.pinv(t)

    net = SplitAverage(model, 0.4, count=5)
    a, b = net(y, physics), net(y, physics)
    assert torch.equal(a, b) and len(calls) == 10
    # A A† is the projection on each split's entries: A(a) is y times the share of splits that
    # kept each entry, a multiple of 1/5 between 0 and 1, and 0.6 on average
    share = (physics.A(a).abs() / y.abs().clamp_min(1e-12))[y.abs() > 1e-6]
    torch.testing.assert_close(share * 5, (share * 5).round(), atol=1e-4, rtol=0)
    assert float(share.mean()) == pytest.approx(0.6, abs=0.05)


def test_errors():
    y = torch.rand(2, 1, 8, 8)
    with pytest.raises(ConfigError, match="measured entries are a mask"):
        SplittingLoss()(Step(y, Physics(Denoising(), GaussianNoise(0.1)), lambda t, p: t, _g()))
    full = build_physics({"kind": "linear", "noise": None,
                          "operator": {"name": "inpainting", "img_shape": [1, 8, 8], "rate": 1.0,
                                       "seed": 0}})  # fmt: skip
    with pytest.raises(ConfigError, match="nothing to learn"):
        SplittingLoss()(Step(full.measure(y), full, lambda t, p: t, _g()))
    with pytest.raises(ConfigError, match="ratio"):
        build_loss({"method": "ssdu", "split_ratio": 1.0})


def test_ssdu_training_learns_to_fill_the_unmeasured_pixels():
    torch.manual_seed(0)
    g = _g(0)
    t = torch.linspace(0, 1, 16)
    x = torch.stack([torch.sin(5 * (t[:, None] * a + t[None, :] * (1 - a))) * 0.4 + 0.5
                     for a in torch.rand(32, generator=g)])[:, None]  # fmt: skip
    physics = build_physics({"kind": "linear", "noise": None, "operator": {
        "name": "inpainting", "img_shape": [1, 16, 16], "rate": 0.7, "seed": 0}})  # fmt: skip
    y = physics.measure(x)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(16, 1, 3, padding=1)
    )
    model = lambda t, p: t + net(t)  # noqa: E731 - input: the zero-filled kept pixels
    loss = SplittingLoss(0.4)
    opt = torch.optim.Adam(net.parameters(), 3e-3)
    for _ in range(300):
        idx = torch.randint(0, 32, (8,), generator=g)
        terms = loss(Step(y[idx], physics, model, g))
        opt.zero_grad()
        terms["split"].backward()
        opt.step()
    missing = physics.operator.mask == 0
    with torch.no_grad():
        err = (SplitAverage(model, 0.4)(y, physics) - x)[missing.expand_as(x)].pow(2).mean()
    zero_filled = (y - x)[missing.expand_as(x)].pow(2).mean()
    assert float(err) < 0.2 * float(zero_filled)

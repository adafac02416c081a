"""ArtifactRemoval: initial reconstructions, the projection data-consistency step, specs."""

import pytest
import torch

from selfrecon.errors import ConfigError
from selfrecon.models import ArtifactRemoval, UNet, build_model, model_spec
from selfrecon.models.solvers import TV, Biharmonic
from selfrecon.physics import (
    MRI,
    CompressedSensing,
    GaussianNoise,
    Inpainting,
    Physics,
    Tomography,
    mri_mask,
)


def _physics(kind, rng):
    if kind == "inpainting":
        return Physics(Inpainting(rate=0.6, img_shape=(16, 16), generator=rng)), 1
    if kind == "mri":
        return Physics(MRI(mri_mask((16, 16), 4, 0.1, generator=rng))), 2
    return Physics(CompressedSensing(64, (1, 16, 16), generator=rng)), 1


def test_projection_refuses_noisy_physics_and_inexact_pseudo_inverses(rng):
    net = ArtifactRemoval(UNet(1, width=4, depth=2), dc="projection")
    noisy = Physics(Inpainting(rate=0.6, img_shape=(8, 8), generator=rng), GaussianNoise(0.1))
    with pytest.raises(ConfigError, match="copies the noise"):
        net(torch.zeros(1, 1, 8, 8), noisy)
    ct = Physics(Tomography(4, 8))
    with pytest.raises(ConfigError, match="exact pseudo-inverse"):
        net(ct.A(torch.zeros(1, 1, 8, 8)), ct)


def test_classical_initialisers_feed_the_backbone(rng):
    physics, _ = _physics("inpainting", rng)
    y = physics.A(torch.rand(2, 1, 16, 16, generator=rng))
    net = ArtifactRemoval(UNet(1, width=4, depth=2, zero_init_last=True), init="biharmonic")
    torch.testing.assert_close(net(y, physics), Biharmonic()(y, physics))


def test_init_spec_round_trips_through_build_model():
    net = ArtifactRemoval(
        UNet(1, width=4, depth=2), init={"name": "tv", "lam": 0.05, "n_iter": 7}, dc="none"
    )
    spec = model_spec(net)
    assert spec["init"] == {"name": "tv", "lam": 0.05, "n_iter": 7, "nonneg": False}
    again = build_model(spec)
    assert isinstance(again.initial, TV) and again.initial.lam == 0.05
    assert model_spec(ArtifactRemoval(UNet(1, width=4, depth=2)))["init"] == "pinv"


def test_unknown_initial_reconstruction_and_dc_are_config_errors():
    with pytest.raises(ConfigError, match="unknown initial reconstruction"):
        ArtifactRemoval(UNet(1, width=4, depth=2), init="magic")
    with pytest.raises(ConfigError, match="dc must be"):
        ArtifactRemoval(UNet(1, width=4, depth=2), dc="soft")


@pytest.mark.parametrize("dc", ["projection", "proximal"])
@pytest.mark.parametrize("kind", ["inpainting", "mri", "cs"])
def test_dc_shrinks_the_measurement_residual_by_one_minus_w(rng, kind, dc):
    # A(x + w A†(y − A x)) − y = (1 − w)(A x − y) when A A† = I; projection is w = 1 (A out = y)
    physics, c = _physics(kind, rng)
    x = physics.prepare_image(torch.rand(3, 1, 16, 16, generator=rng))
    y = physics.A(x)
    net = ArtifactRemoval(UNet(c, width=4, depth=2), dc=dc).eval()
    with torch.no_grad():
        if dc == "proximal":
            net.dc_logit.fill_(0.02)
            assert 0.6 < float(net.dc_weight) < 0.8
        w = 1.0 if dc == "projection" else net.dc_weight
        before = net.backbone(net.linear(y, physics))
        out = net(y, physics)
    torch.testing.assert_close(
        physics.A(out) - y, (1 - w) * (physics.A(before) - y), atol=1e-4, rtol=1e-4
    )


def test_proximal_dc_accepts_noise_and_learns_its_weight_in_few_steps(rng):
    # noiseless data, backbone frozen: measurement consistency pulls w to 1 within tens of Adam
    # steps at a network's learning rate (DC_GAIN; a plain logit would move 0.08 in 40 steps)
    noisy = Physics(Inpainting(rate=0.6, img_shape=(8, 8), generator=rng), GaussianNoise(0.1))
    net = ArtifactRemoval(UNet(1, width=4, depth=2), dc="proximal")
    assert net(noisy.A(torch.rand(1, 1, 8, 8, generator=rng)), noisy).shape == (1, 1, 8, 8)
    physics, _ = _physics("inpainting", rng)
    y = physics.A(torch.rand(4, 1, 16, 16, generator=rng))
    opt = torch.optim.Adam([net.dc_logit], lr=2e-3)
    assert float(net.dc_weight) == pytest.approx(0.5)
    for _ in range(40):
        opt.zero_grad()
        ((physics.A(net(y, physics)) - y) ** 2).mean().backward()
        opt.step()
    assert float(net.dc_weight) > 0.9  # a plain logit: 0.52
    assert ArtifactRemoval(UNet(1, width=4, depth=2)).dc_weight is None


def test_proximal_dc_round_trips_with_its_weight(rng):
    net = ArtifactRemoval(UNet(1, width=4, depth=2), dc="proximal")
    with torch.no_grad():
        net.dc_logit.fill_(0.03)
    again = build_model(model_spec(net))
    again.load_state_dict(net.state_dict())
    assert again.dc == "proximal" and float(again.dc_weight) == pytest.approx(float(net.dc_weight))


def test_check_physics_refuses_dc_the_physics_cannot_support_before_any_compute():
    from selfrecon.models import ArtifactRemoval, UNet
    from selfrecon.physics import GaussianNoise, Inpainting, LowDoseCT, Physics

    net = ArtifactRemoval(UNet(1, depth=1, width=4), dc="projection")
    noisy = Physics(Inpainting(rate=0.5, img_shape=(8, 8)), GaussianNoise(0.1))
    with pytest.raises(ConfigError, match="copies the noise"):
        net.check_physics(noisy)
    with pytest.raises(ConfigError, match="exact pseudo-inverse"):  # FBP is not A†
        net.check_physics(LowDoseCT(angles=4, img_size=8))
    ArtifactRemoval(UNet(1, depth=1, width=4)).check_physics(LowDoseCT(angles=4, img_size=8))

"""losses.build_loss: every method from a spec, equal to the hand-built loss, clear errors."""

import pytest
import torch

from selfrecon.errors import ConfigError
from selfrecon.groups import Rotate90, Shift
from selfrecon.losses import (
    METHODS,
    SURE,
    UNSURE,
    EILoss,
    MCLoss,
    MOILoss,
    Neighbor2NeighborLoss,
    Noise2SelfLoss,
    R2RLoss,
    REILoss,
    SplittingLoss,
    Step,
    SupervisedLoss,
    build_loss,
)
from selfrecon.physics import Denoising, GaussianNoise, Inpainting, Physics


def _g(seed=0):
    return torch.Generator().manual_seed(seed)


OPS = [Inpainting(rate=0.6, img_shape=(8, 8), generator=_g(k)) for k in range(3)]
HAND = {
    "mc": lambda: MCLoss(0.5),
    "ei": lambda: MCLoss(0.5) + EILoss(Rotate90(), 2.0, 2),
    "rei": lambda: REILoss(Rotate90(), 2.0, 2, 0.7, 0.02),
    "sure": lambda: SURE(0.02, weight=0.7),
    "n2s": lambda: Noise2SelfLoss(2, "zero", 2.0),
    "moi": lambda: MCLoss(0.5) + MOILoss(OPS, 2.0, noisy=True),
    "moei": lambda: MCLoss(0.5) + MOILoss(OPS, 3.0) + EILoss(Rotate90(), 2.0, 2),
    "morei": lambda: REILoss(Rotate90(), 2.0, 2, 0.7, 0.02) + MOILoss(OPS, 3.0, noisy=True),
    "supervised": lambda: SupervisedLoss(2.0),
    "r2r": lambda: R2RLoss(0.5, 0.7),
    "unsure": lambda: UNSURE("gaussian", weight=0.7),
    "n2n": lambda: Neighbor2NeighborLoss(2.0, 2.0),
    "ssdu": lambda: SplittingLoss(0.4, 2.0),
}
SPEC = {
    "group": "rotate90",
    "weight": 2.0,
    "mc_weight": 0.5,
    "moi_weight": 3.0,
    "n_trans": 2,
    "sure_weight": 0.7,
    "tau": 0.02,
    "width": 2,
    "mode": "zero",
    "noisy": True,
}


def test_every_method_has_a_hand_built_reference():
    assert set(HAND) == set(METHODS)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_build_loss_equals_the_hand_built_loss(method):
    op = Denoising() if method == "n2n" else OPS[0]  # Neighbor2Neighbor is for denoising
    physics = Physics(op, GaussianNoise(0.05))
    x = torch.rand(4, 1, 8, 8, generator=_g(1))
    y = physics.measure(x, _g(2))

    def model(t, p):
        return 0.9 * p.A.pinv(t)

    built = build_loss({"method": method, **SPEC}, physics_list=OPS)
    hand = HAND[method]()
    assert repr(built) == repr(hand)
    a = built(Step(y, physics, model, _g(3), x=x))
    b = hand(Step(y, physics, model, _g(3), x=x))
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k])


def test_defaults_and_errors():
    assert repr(build_loss("ei")) == repr(MCLoss() + EILoss(Shift()))
    with pytest.raises(ConfigError, match="unknown loss method 'eii'"):
        build_loss("eii")
    with pytest.raises(ConfigError, match="unknown setting"):
        build_loss({"method": "ei", "gropu": "shift"})
    with pytest.raises(ConfigError, match="physics_list"):
        build_loss("moi")

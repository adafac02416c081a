"""``evaluate``: per-image scores of the model, of ``A† y`` and of the classical init it refines."""

import pytest
import torch
from torch.utils.data import Dataset

from selfrecon.errors import DataError
from selfrecon.metrics import psnr
from selfrecon.models import ArtifactRemoval, UNet
from selfrecon.models.jinvariant import JInvariant
from selfrecon.models.solvers import Biharmonic
from selfrecon.physics import Inpainting, Physics
from selfrecon.training.evaluation import classical_init, evaluate, init_name


class _Pairs(Dataset):
    def __init__(self, physics, x, with_x=True):
        self.y, self.x, self.with_x = physics.A(x), x, with_x

    def __len__(self):
        return self.x.shape[0]

    def __getitem__(self, i):
        item = {"y": self.y[i]}
        if self.with_x:
            item["x"] = self.x[i]
        return item


@pytest.fixture
def case(rng):
    physics = Physics(Inpainting(rate=0.7, img_shape=(16, 16), generator=rng))
    ramp = torch.linspace(0, 1, 16)
    x = (ramp[:, None] * ramp[None, :]).expand(5, 1, 16, 16) * torch.rand(5, 1, 1, 1, generator=rng)
    return physics, x.contiguous()


def test_a_classical_init_is_scored_beside_the_network(case):
    physics, x = case
    net = ArtifactRemoval(UNet(1, width=4, depth=2, zero_init_last=True), init="biharmonic")
    rows = evaluate(net, physics, _Pairs(physics, x), batch_size=2)
    assert len(rows) == 5 and {"psnr_init", "ssim_init", "psnr_pinv"} <= set(rows[0])
    # the init's score is the solver's own, image by image
    own = psnr(Biharmonic()(physics.A(x), physics), x, 1.0, "none")
    torch.testing.assert_close(torch.tensor([r["psnr_init"] for r in rows]), own.float())
    # zero-initialised last layer: the network starts at its input
    assert all(abs(r["psnr"] - r["psnr_init"]) < 1e-3 for r in rows)
    # biharmonic recovers a smooth ramp far better than zero-filling
    assert min(r["psnr_init"] - r["psnr_pinv"] for r in rows) > 10


def test_linear_inputs_have_no_separate_init_row(case):
    physics, x = case
    for init in ("pinv", "adjoint"):
        net = ArtifactRemoval(UNet(1, width=4, depth=2), init=init)
        assert classical_init(net) is None
        assert "psnr_init" not in evaluate(net, physics, _Pairs(physics, x))[0]
    net = ArtifactRemoval(UNet(1, width=4, depth=2), init={"name": "tv", "lam": 0.01})
    wrapped = JInvariant(net, width=2)
    assert classical_init(wrapped) is net.initial and init_name(net.initial) == "tv"


def test_evaluation_without_ground_truth_says_how_to_fix_it(case):
    physics, x = case
    net = ArtifactRemoval(UNet(1, width=4, depth=2))
    with pytest.raises(DataError, match="no ground truth"):
        evaluate(net, physics, _Pairs(physics, x, with_x=False))

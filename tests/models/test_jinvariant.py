import pytest
import torch
from torch import nn

from selfrecon.models import JInvariant, build_model, model_spec
from selfrecon.physics import Denoising, GaussianNoise, Inpainting, Physics


class Conv(nn.Module):
    def __init__(self, c=2):
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(
            nn.Conv2d(c, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, c, 3, padding=1)
        )

    def forward(self, y, physics):
        return y + self.net(y)


@pytest.mark.parametrize("mode", ["interpolate", "zero"])
def test_perturbing_a_pixel_never_changes_its_output(rng, mode):
    physics = Physics(Denoising(), GaussianNoise(0.1))
    f = JInvariant(Conv(), width=3, mode=mode)
    y = torch.rand(2, 2, 9, 9, generator=rng)
    with torch.no_grad():
        out = f(y, physics)
        for i, j in [(0, 0), (3, 7), (8, 8), (4, 4)]:
            y2 = y.clone()
            y2[:, :, i, j] += 4.0 * torch.randn(2, 2, generator=rng)
            out2 = f(y2, physics)
            assert torch.allclose(out2[:, :, i, j], out[:, :, i, j], atol=1e-5)
            assert not torch.allclose(out2, out, atol=1e-4)  # neighbours do depend on it
            # the plain model is not J-invariant: the same check fails there
            fast = JInvariant(f.model, width=3, fast=True)
            assert not torch.allclose(fast(y2, physics)[:, :, i, j], fast(y, physics)[:, :, i, j])


def test_fast_mode_is_one_plain_pass_and_chunks_agree(rng):
    model = Conv()
    physics = Physics(Denoising())
    y = torch.rand(3, 2, 8, 8, generator=rng)
    with torch.no_grad():
        assert torch.equal(JInvariant(model, fast=True)(y, physics), model(y, physics))
        a = JInvariant(model, width=2)(y, physics)
        b = JInvariant(model, width=2, chunk=5)(y, physics)
    assert torch.allclose(a, b, atol=1e-6)


def test_per_sample_physics_is_evaluated_phase_by_phase(rng):
    masks = (torch.rand(3, 1, 8, 8, generator=rng) < 0.7).float()
    physics = Physics(Inpainting(mask=masks))
    calls = []

    def model(t, p):
        calls.append(t.shape[0])
        return p.A.pinv(t)

    out = JInvariant(model, width=2)(
        physics.measure(torch.rand(3, 1, 8, 8, generator=rng)), physics
    )
    assert calls == [3, 3, 3, 3] and out.shape == (3, 1, 8, 8)


def test_config_roundtrip_and_errors(rng):
    from selfrecon.models import DnCNN

    f = JInvariant(DnCNN(channels=1, depth=3, width=4), width=2, mode="zero")
    spec = model_spec(f)
    assert spec["name"] == "jinvariant" and spec["width"] == 2
    g = build_model(spec)
    assert isinstance(g, JInvariant) and isinstance(g.model, DnCNN) and g.masker.mode == "zero"
    with pytest.raises(ValueError, match="real images"):
        JInvariant(Conv())(torch.rand(2, 16, generator=rng), None)
    with pytest.raises(ValueError, match="width"):
        JInvariant(Conv(), width=1)

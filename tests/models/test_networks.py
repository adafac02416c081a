import pytest
import torch

from selfrecon.models import (
    ArtifactRemoval,
    DnCNN,
    UNet,
    build_model,
    count_parameters,
    model_spec,
    summary,
)
from selfrecon.physics import Inpainting, Physics


@pytest.mark.parametrize("size", [(16, 16), (21, 19), (9, 30)])
def test_unet_any_size_keeps_shape(rng, size):
    net = UNet(2, width=4, depth=3).eval()
    x = torch.randn(2, 2, *size, generator=rng)
    assert net(x).shape == x.shape


def test_unet_residual_identity_at_zero_output_layer(rng):
    net = UNet(1, width=4, depth=3)
    torch.nn.init.zeros_(net.out.weight)
    torch.nn.init.zeros_(net.out.bias)
    x = torch.randn(2, 1, 16, 16, generator=rng)
    torch.testing.assert_close(net(x), x)


def test_unet_first_conv_is_circular_and_only_it():
    net = UNet(1, width=4, depth=3)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs[0].padding_mode == "circular"
    assert all(c.padding_mode == "zeros" for c in convs[1:])
    assert UNet(1, width=4, circular_first=False).down[0][0].padding_mode == "zeros"


def test_unet_shift_equivariance_of_circular_first_layer(rng):
    # The first (circular) conv commutes with circular shifts exactly.
    conv = UNet(1, width=4).down[0][0]
    x = torch.randn(1, 1, 12, 12, generator=rng)
    shifted = torch.roll(x, (3, 5), dims=(-2, -1))
    torch.testing.assert_close(conv(shifted), torch.roll(conv(x), (3, 5), dims=(-2, -1)))


def test_unet_parameter_count_scales_with_width():
    small, big = count_parameters(UNet(1, width=8)), count_parameters(UNet(1, width=16))
    assert 3.5 < big / small < 4.1  # conv weights scale with width²
    assert 0.4e6 < count_parameters(UNet(1, width=16)) < 0.6e6  # the benchmark's ~0.5 M network


def test_unet_no_norm_no_bias_has_no_bias_or_bn():
    net = UNet(1, width=4, norm="none", bias=False)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
    assert all(m.bias is None for m in net.modules() if isinstance(m, torch.nn.Conv2d))
    # bias-free, norm-free residual network is positively homogeneous: G(a x) = a G(x), a > 0
    x = torch.randn(1, 1, 16, 16)
    torch.testing.assert_close(net(3.0 * x), 3.0 * net(x), rtol=1e-4, atol=1e-5)


def test_model_errors():
    with pytest.raises(ValueError, match="residual"):
        UNet(1, 2)
    with pytest.raises(ValueError, match="norm"):
        UNet(1, norm="group")
    with pytest.raises(ValueError, match="in_channels=3"):
        UNet(1, width=4)(torch.zeros(1, 3, 8, 8))
    with pytest.raises(ValueError, match="init"):
        ArtifactRemoval(UNet(1), init="fbp")


def test_dncnn_shapes_and_residual(rng):
    net = DnCNN(3, depth=5, width=8)
    torch.nn.init.zeros_(net.net[-1].weight)
    torch.nn.init.zeros_(net.net[-1].bias)
    x = torch.randn(2, 3, 10, 13, generator=rng)
    torch.testing.assert_close(net(x), x)
    assert sum(isinstance(m, torch.nn.Conv2d) for m in net.modules()) == 5


def test_artifact_removal_feeds_pinv(rng):
    mask = (torch.rand(1, 1, 8, 8, generator=rng) > 0.5).float()
    physics = Physics(Inpainting(mask=mask))
    seen = {}

    class Probe(torch.nn.Module):
        def forward(self, x):
            seen["x"] = x
            return 2 * x

    y = torch.randn(2, 1, 8, 8, generator=rng) * mask
    out = ArtifactRemoval(Probe())(y, physics)
    torch.testing.assert_close(seen["x"], physics.A.pinv(y))
    torch.testing.assert_close(out, 2 * physics.A.pinv(y))


def test_spec_round_trip_and_summary():
    model = ArtifactRemoval(UNet(2, width=4, depth=2, norm="none"), init="adjoint")
    spec = model_spec(model)
    rebuilt = build_model(spec)
    assert model_spec(rebuilt) == spec
    rebuilt.load_state_dict(model.state_dict())  # same architecture
    text = summary(model)
    assert "backbone" in text and f"{count_parameters(model):,d}" in text

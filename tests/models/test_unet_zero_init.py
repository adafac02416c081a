"""UNet(zero_init_last=True): a residual UNet starts as the identity and still trains."""

import torch

from selfrecon.models import UNet, build_model, model_spec


def test_zero_init_residual_unet_is_identity_and_trains(rng):
    x = torch.rand(3, 2, 16, 12, generator=rng)
    torch.manual_seed(0)
    net = UNet(2, depth=3, width=4, zero_init_last=True)
    net.eval()
    assert torch.equal(net(x), x)  # G(x) = x + 0 exactly
    net.train()
    target = torch.rand(3, 2, 16, 12, generator=rng)
    loss = ((net(x) - target) ** 2).mean()
    loss.backward()
    # the final conv sees non-zero features, so it gets a gradient; deeper layers after one step
    assert net.out.weight.grad.abs().sum() > 0
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    opt.step()
    opt.zero_grad()
    ((net(x) - target) ** 2).mean().backward()
    assert net.down[0][0].weight.grad.abs().sum() > 0
    # default init is PyTorch's: the output is not the input
    torch.manual_seed(0)
    plain = UNet(2, depth=3, width=4).eval()
    assert not torch.allclose(plain(x), x, atol=1e-3)
    # the option round-trips through the spec
    spec = model_spec(net)
    assert spec["zero_init_last"] is True
    rebuilt = build_model(spec).eval()
    assert torch.equal(rebuilt(x), x)

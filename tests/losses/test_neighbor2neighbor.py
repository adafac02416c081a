"""Neighbor2Neighbor: the sub-sampler's pixels are distinct neighbours of one cell, seeded; the loss
trains a denoiser beyond the noisy input; the stop-gradient; errors."""

import pytest
import torch

from selfrecon.errors import ConfigError
from selfrecon.losses import Neighbor2NeighborLoss, Step, build_loss
from selfrecon.losses.neighbor2neighbor import neighbor_subsample
from selfrecon.physics import Denoising, GaussianNoise, Inpainting, Physics


def _g(seed=0):
    return torch.Generator().manual_seed(seed)


def test_subsampled_pixels_are_distinct_adjacent_pixels_of_one_cell():
    y = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    a, b, (first, second) = neighbor_subsample(y, _g(1))
    assert a.shape == b.shape == (2, 3, 4, 4)
    assert bool((first != second).all()) and bool(((first + second) != 3).all())  # not diagonal
    # pixel values encode positions: each pair lies in the same 2×2 cell
    row = lambda v: (v % 64) // 8  # noqa: E731
    col = lambda v: v % 8  # noqa: E731
    assert torch.equal(row(a) // 2, row(b) // 2) and torch.equal(col(a) // 2, col(b) // 2)
    assert int(((row(a) - row(b)).abs() + (col(a) - col(b)).abs()).max()) == 1
    assert torch.equal(a[:, 0] + 64, a[:, 1])  # the same pixels in every channel
    a2, b2, _ = neighbor_subsample(y, _g(1))
    assert torch.equal(a, a2) and torch.equal(b, b2)
    counts = torch.bincount(first.flatten(), minlength=4)
    assert int(counts.min()) > 0  # every position is drawn


def test_training_denoises_beyond_the_input_and_stops_the_gradient_on_f_y():
    torch.manual_seed(0)
    g = _g(0)
    t = torch.linspace(0, 1, 16)
    x = torch.stack([torch.sin(6 * (t[:, None] * a + t[None, :] * (1 - a))) * 0.4 + 0.5
                     for a in torch.rand(32, generator=g)])[:, None]  # fmt: skip
    physics = Physics(Denoising(), GaussianNoise(0.2))
    y = physics.measure(x, g)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(16, 1, 3, padding=1)
    )
    model = lambda t, p: t + net(t)  # noqa: E731
    loss = build_loss({"method": "n2n", "gamma": 2.0})
    opt = torch.optim.Adam(net.parameters(), 3e-3)
    for _ in range(300):
        idx = torch.randint(0, 32, (8,), generator=g)
        terms = loss(Step(y[idx], physics, model, g))
        opt.zero_grad()
        sum(terms.values()).backward()
        opt.step()
    with torch.no_grad():
        mse_out = (model(y, physics) - x).pow(2).mean()
    assert float(mse_out) < 0.5 * float((y - x).pow(2).mean())
    # the full-image pass carries no graph: only f(g₁(y)) is trained
    step = Step(y[:2], physics, model, g)
    terms = Neighbor2NeighborLoss()(step)
    assert terms["n2n_reg"].requires_grad and step.passes == 2


def test_errors():
    y = torch.rand(2, 1, 8, 8)
    inpainting = Physics(Inpainting(rate=0.5, img_shape=(8, 8), generator=_g()), GaussianNoise(0.1))
    with pytest.raises(ConfigError, match="for denoising"):
        Neighbor2NeighborLoss()(Step(y, inpainting, lambda t, p: t, _g()))
    with pytest.raises(ConfigError, match="even H and W"):
        neighbor_subsample(torch.rand(1, 1, 7, 8))
    with pytest.raises(ConfigError, match="gamma"):
        Neighbor2NeighborLoss(gamma=-1)

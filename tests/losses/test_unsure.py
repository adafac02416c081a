"""UNSURE: the learned noise level converges to the true one with σ hidden from the loss; the
multipliers are leaves (no graph growth over 500 steps); momentum is used; state round-trips."""

import math

import pytest
import torch

from selfrecon.data import builtin
from selfrecon.errors import ConfigError
from selfrecon.losses import UNSURE, REILoss, Step
from selfrecon.models import ArtifactRemoval, UNet
from selfrecon.physics import Denoising, GaussianNoise, Inpainting, Physics


def _g(seed=0):
    return torch.Generator().manual_seed(seed)


def _train(op, sigma, steps=300, sigma_init=0.05):
    torch.manual_seed(0)
    ds = builtin("mnist", "train", 32, n=64, channels=1, seed=0)
    x = torch.stack([ds[i] if isinstance(ds[i], torch.Tensor) else ds[i]["x"] for i in range(64)])
    g = _g(0)
    y = Physics(op, GaussianNoise(sigma)).measure(x, g)
    hidden = Physics(op)  # the loss never sees σ: the physics it gets is noiseless
    net = ArtifactRemoval(UNet(1, 1, depth=2, width=16, zero_init_last=True), init="pinv")
    loss = UNSURE("gaussian", sigma_init=sigma_init)
    opt = torch.optim.Adam(net.parameters(), 2e-3)
    for _ in range(steps):
        idx = torch.randint(0, 64, (8,), generator=g)
        terms = loss(Step(y[idx], hidden, net, g))
        opt.zero_grad()
        terms["unsure"].backward()
        opt.step()
    return loss


@pytest.mark.parametrize("task", ["denoising", "inpainting"])
def test_learned_sigma_within_10_percent_of_the_truth(task):
    op = (
        Denoising()
        if task == "denoising"
        else Inpainting(rate=0.7, img_shape=(1, 32, 32), generator=_g(0))
    )
    loss = _train(op, 0.1)
    assert abs(loss.monitors()["sigma_hat"] / 0.1 - 1) < 0.10


def _graph_size(t: torch.Tensor) -> int:
    seen, todo = set(), [t.grad_fn]
    while todo:
        fn = todo.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        todo.extend(nxt for nxt, _ in fn.next_functions)
    return len(seen)


def test_multipliers_are_leaves_and_the_graph_does_not_grow_over_500_steps():
    physics = Physics(Denoising())
    net = torch.nn.Conv2d(1, 1, 3, padding=1)
    model = lambda t, p: net(t)  # noqa: E731
    loss = UNSURE("poisson_gaussian")
    opt = torch.optim.SGD(net.parameters(), 1e-3)
    g = _g(1)
    y = 0.5 + 0.1 * torch.randn(4, 1, 8, 8, generator=g)
    sizes = []
    for _ in range(500):
        value = loss(Step(y, physics, model, g))["unsure"]
        sizes.append(_graph_size(value))
        opt.zero_grad()
        value.backward()
        opt.step()
        for name in UNSURE.learned_buffers:
            buf = getattr(loss, name)
            assert buf.grad_fn is None and not buf.requires_grad
    assert sizes[10] == sizes[-1]
    assert sum(p.numel() for p in loss.parameters()) == 0  # nothing for an optimiser to see


def test_momentum_average_is_the_step_taken():
    physics = Physics(Denoising())
    y = torch.rand(2, 1, 8, 8, generator=_g(2))
    ident = lambda t, p: t  # noqa: E731 - divergence per entry is exactly 1
    plain = UNSURE("gaussian", sigma_init=0.1, lr=0.1, momentum=0.0)  # steps lr·(1 − 0)·g
    grads = []
    for _ in range(2):
        before = float(plain.log_sigma2)
        plain(Step(y, physics, ident, _g(3)))
        grads.append((float(plain.log_sigma2) - before) / 0.1)
    assert grads[0] == pytest.approx(2.0, rel=0.3)  # g = 2·div/M, div/M ≈ ‖b‖²/M ≈ 1
    loss = UNSURE("gaussian", sigma_init=0.1, lr=0.1, momentum=0.9)
    before = float(loss.log_sigma2)
    loss(Step(y, physics, ident, _g(3)))
    v1 = 0.1 * grads[0]  # v = μ·0 + (1 − μ)·g₁
    assert float(loss.log_sigma2) - before == pytest.approx(0.1 * v1, rel=1e-5)
    loss(Step(y, physics, ident, _g(3)))
    v2 = 0.9 * v1 + 0.1 * grads[1]
    assert float(loss.log_sigma2) - before == pytest.approx(0.1 * (v1 + v2), rel=1e-5)
    frozen = float(loss.log_sigma2)
    loss.eval()
    loss(Step(y, physics, ident, _g(3)))
    assert float(loss.log_sigma2) == frozen  # evaluation never updates


def test_learned_state_round_trips_and_rei_uses_the_learned_level():
    physics = Physics(Denoising())
    y = torch.rand(2, 1, 8, 8, generator=_g(2))
    rei = REILoss("shift", consistency="unsure", sigma_init=0.3)
    rei(Step(y, physics, lambda t, p: t, _g(3)))
    state = rei.learned_state()
    assert set(state) == {f"risk.{n}" for n in UNSURE.learned_buffers}
    fresh = REILoss("shift", consistency="unsure")
    fresh.load_learned_state(state)
    assert fresh.monitors() == rei.monitors() and rei.risk_terms == ("unsure",)
    assert float(rei.risk.noise_model().sigma) == pytest.approx(rei.monitors()["sigma_hat"])
    assert math.isclose(rei.monitors()["sigma_hat"], math.sqrt(rei.risk.sigma2))


def test_errors():
    with pytest.raises(ConfigError, match="noise model must be one of"):
        UNSURE("gamma")
    with pytest.raises(ConfigError, match="momentum"):
        UNSURE(momentum=1.0)
    with pytest.raises(ConfigError, match="sigma_init"):
        UNSURE(sigma_init=0)

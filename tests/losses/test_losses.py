import pytest
import torch
from torch import nn

from selfrecon.groups import Rotate90, Shift
from selfrecon.losses import (
    SURE,
    EILoss,
    MCLoss,
    MOILoss,
    Noise2SelfLoss,
    REILoss,
    Step,
    SupervisedLoss,
    SurePoissonGaussian,
)
from selfrecon.losses.masking import GridMasker
from selfrecon.physics import (
    Denoising,
    GaussianNoise,
    Inpainting,
    MatrixOperator,
    Physics,
    PoissonGaussianNoise,
    PoissonNoise,
)


class Tiny(nn.Module):
    """f(y) = z + CNN(z), z = A† y."""

    def __init__(self, c=1):
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(
            nn.Conv2d(c, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, c, 3, padding=1)
        )

    def forward(self, y, physics):
        z = physics.A.pinv(y)
        return z + self.net(z)


def pinv_model(y, physics):
    return physics.A.pinv(y)


def lowpass_projection(n=8, keep=2):
    """Real circulant projection onto low frequencies: commutes with shifts and 90° rotations."""
    f = torch.fft.fftfreq(n) * n
    m = ((f.abs()[:, None] <= keep) & (f.abs()[None, :] <= keep)).double()
    eye = torch.eye(n * n, dtype=torch.float64).reshape(n * n, n, n)
    cols = torch.fft.ifft2(torch.fft.fft2(eye) * m).real.reshape(n * n, n * n)
    return cols.T.float()


def test_mc_and_supervised_values(rng):
    physics = Physics(Inpainting(rate=0.5, img_shape=(8, 8), generator=rng))
    x = torch.rand(2, 1, 8, 8, generator=rng)
    y = physics.measure(x)
    xh = torch.rand(2, 1, 8, 8, generator=rng)
    out = MCLoss()(Step(y, physics, pinv_model, x_hat=xh))
    assert torch.allclose(out["mc"], ((physics.A(xh) - y) ** 2).mean())
    assert float(MCLoss()(Step(y, physics, pinv_model, x_hat=physics.A.pinv(y)))["mc"]) == 0.0
    step = Step(y, physics, pinv_model, x=x)
    out = SupervisedLoss()(step)
    assert torch.allclose(out["sup"], ((y - x) ** 2).mean()) and torch.equal(step.x_hat, y)
    with pytest.raises(ValueError, match="pass x="):
        SupervisedLoss()(Step(y, physics, pinv_model, x_hat=xh))
    with pytest.raises(ValueError, match="prepare_image"):
        SupervisedLoss()(Step(y, physics, pinv_model, x=x[:, :, :4], x_hat=xh))
    with pytest.raises(ValueError, match="physics that produced y"):
        MCLoss()(Step(y[..., :4], physics, pinv_model, x_hat=xh))


def test_sum_and_scale(rng):
    physics = Physics(Denoising(), GaussianNoise(0.1))
    y = torch.rand(2, 1, 8, 8, generator=rng)
    x = torch.rand(2, 1, 8, 8, generator=rng)
    xh = 0.5 * y
    mc, sup = MCLoss(), SupervisedLoss()
    both = 2.0 * (mc + sup) + mc * 3.0
    out = both(Step(y, physics, pinv_model, x=x, x_hat=xh))
    assert set(out) == {"mc", "sup", "mc_2"}
    assert torch.allclose(out["mc"], 2 * mc(Step(y, physics, pinv_model, x_hat=xh))["mc"])
    assert torch.allclose(out["mc_2"], 3 * mc(Step(y, physics, pinv_model, x_hat=xh))["mc"])
    assert torch.allclose(out["sup"], 2 * sup(Step(y, physics, pinv_model, x=x, x_hat=xh))["sup"])
    # no x_hat yet: the part that joins the x_hat pass runs first and all parts share its x_hat
    calls = []

    def model(t, p):
        calls.append(t.shape[0])
        return 0.5 * t

    loss = MCLoss() + SURE()
    assert loss.joins_x_hat_pass and not MCLoss().joins_x_hat_pass
    assert loss.risk_terms == ("sure",) and (2.0 * loss).risk_terms == ("sure",)
    step = Step(y, physics, model, rng)
    out = loss(step)
    assert calls == [4] and step.passes == 1 and torch.allclose(step.x_hat, xh)
    assert list(out) == ["mc", "sure"]  # reported in the order of the sum
    assert torch.allclose(out["mc"], mc(Step(y, physics, pinv_model, x_hat=xh))["mc"])


def test_ei_zero_for_equivariant_consistent_reconstruction():
    """A = P (shift- and rotation-invariant projection), f = Aᵀ = P: x3 = P T P x = T P x = x2."""
    g = torch.Generator().manual_seed(0)
    physics = Physics(MatrixOperator(lowpass_projection(), (1, 8, 8)))
    y = yp = physics.measure(torch.rand(4, 1, 8, 8, generator=g))

    def f(t, p):
        return p.A.adjoint(t)

    for group in (Shift(), Rotate90()):
        out = (MCLoss() + EILoss(group, n_trans=2))(Step(y, physics, f, g))
        assert float(out["ei"]) < 1e-10 and float(out["mc"]) < 1e-10
    # an operator that does not commute with the group: EI is positive
    inp = Physics(Inpainting(rate=0.5, img_shape=(8, 8), generator=g))
    y = inp.measure(torch.rand(4, 1, 8, 8, generator=g))
    out = (MCLoss() + EILoss(Shift()))(Step(y, inp, pinv_model, g))
    assert float(out["mc"]) == 0.0 and float(out["ei"]) > 1e-3
    # and an equivariant but scaled (inconsistent) reconstruction is penalised too
    out = EILoss(Shift())(Step(yp, physics, lambda t, p: 0.5 * p.A.adjoint(t) + 0.1, g))
    assert float(out["ei"]) > 1e-4


def test_ei_and_rei_pass_counts(rng):
    calls = []

    def model(t, p):
        calls.append(t.shape[0])
        return p.A.pinv(t)

    physics = Physics(Denoising(), GaussianNoise(0.1))
    y = torch.rand(3, 1, 8, 8, generator=rng)
    EILoss(Shift(), n_trans=2)(Step(y, physics, model, rng))
    assert calls == [3, 6]
    calls.clear()
    out = REILoss(Shift(), n_trans=2)(Step(y, physics, model, rng))
    assert calls == [6, 6] and set(out) == {"sure", "rei"}
    calls.clear()
    REILoss("rotate90")(Step(y, Physics(Denoising(), PoissonGaussianNoise(0.1, 0.1)), model, rng))
    assert calls == [12, 3]


def test_rei_uses_fresh_noise(rng):
    """Robust EI re-measures T_g x̂ with fresh noise: even a perfect identity model pays ≈ σ²."""
    physics = Physics(Denoising(), GaussianNoise(0.2))
    y = torch.rand(8, 1, 16, 16, generator=rng)
    out = REILoss(Shift())(Step(y, physics, pinv_model, rng))
    assert float(out["rei"]) == pytest.approx(0.04, rel=0.15)
    assert float(EILoss(Shift())(Step(y, physics, pinv_model, rng))["ei"]) == 0.0


def test_seeded_losses_reproduce(rng):
    physics = Physics(Denoising(), PoissonGaussianNoise(0.05, 0.05))
    y = torch.rand(2, 1, 8, 8, generator=rng)
    model = Tiny()
    for loss in (REILoss(Rotate90()), Noise2SelfLoss(), EILoss(Shift())):
        a = loss(Step(y, physics, model, torch.Generator().manual_seed(1)))
        b = loss(Step(y, physics, model, torch.Generator().manual_seed(1)))
        c = loss(Step(y, physics, model, torch.Generator().manual_seed(2)))
        key = [k for k in a if k != "x_hat"][-1]
        assert torch.equal(a[key], b[key]) and not torch.equal(a[key], c[key])


def test_moi(rng):
    ops = [Inpainting(rate=0.6, img_shape=(8, 8), generator=rng) for _ in range(3)]
    physics = Physics(ops[0])
    y = physics.measure(torch.rand(6, 1, 8, 8, generator=rng))
    out = MOILoss(ops)(Step(y, physics, pinv_model, rng))
    # f = A†: x̂ = M0 y, f(A_g x̂) = M_g M0 y, so the loss is the energy lost by the other masks
    assert float(out["moi"]) > 0
    same = MOILoss([ops[0]])(Step(y, physics, pinv_model, rng))
    assert float(same["moi"]) == 0.0
    with pytest.raises(ValueError, match="non-empty"):
        MOILoss([])
    with pytest.raises(TypeError, match="Physics or LinearOperator"):
        MOILoss(["inpainting"])


def test_noise2self_training_pass_is_j_invariant(rng):
    """The model's input in a training pass never contains the masked pixels' values."""
    seen = {}

    class Recorder(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = Tiny(3)

        def forward(self, t, p):
            seen["in"] = t
            seen["out"] = self.net(t, p)
            return seen["out"]

    model, physics = Recorder(), Physics(Denoising(), GaussianNoise(0.1))
    loss = Noise2SelfLoss(width=3)
    y = torch.rand(4, 3, 9, 9, generator=rng)
    idx = GridMasker(3).sample_index(4, torch.Generator().manual_seed(8))
    _, mask = GridMasker(3).apply_batch(y, idx)
    base = loss(Step(y, physics, model, torch.Generator().manual_seed(8)))["n2s"]
    out0 = seen["out"].detach().clone()
    y2 = y + 3.0 * mask * torch.rand(y.shape, generator=rng)  # change masked pixels only
    pert = loss(Step(y2, physics, model, torch.Generator().manual_seed(8)))["n2s"]
    assert torch.allclose(seen["out"] * mask, out0 * mask, atol=1e-6)  # masked outputs unchanged
    assert float(pert.detach()) > float(base.detach())  # the targets changed, so the loss sees it
    # the loss is read on masked pixels only: changing unmasked outputs does not matter
    model2 = lambda t, p: p.A.pinv(t) + (1 - mask) * 100.0  # noqa: E731
    a = loss(Step(y, physics, model2, torch.Generator().manual_seed(8)))["n2s"]
    b = loss(Step(y, physics, pinv_model, torch.Generator().manual_seed(8)))["n2s"]
    assert torch.allclose(a, b)
    with pytest.raises(ValueError, match="real images"):
        loss(Step(torch.rand(2, 16, generator=rng), physics, pinv_model))


def _loss_cases(g):
    den = Physics(Denoising(), GaussianNoise(0.1))
    inp = Physics(Inpainting(rate=0.6, img_shape=(8, 8), generator=g), GaussianNoise(0.05))
    return [
        ("mc", MCLoss(), inp),
        ("sup", SupervisedLoss(), den),
        ("sure_g", SURE(), den),
        ("sure_p", SURE(), Physics(Denoising(), PoissonNoise(0.05))),
        ("sure_pg", SurePoissonGaussian(), Physics(Denoising(), PoissonGaussianNoise(0.05, 0.05))),
        ("ei", MCLoss() + EILoss(Shift()), inp),
        ("rei", REILoss(Rotate90()), inp),
        ("n2s", Noise2SelfLoss(width=2), den),
        (
            "moi",
            MCLoss() + MOILoss([inp.operator, Inpainting(rate=0.6, img_shape=(8, 8), generator=g)]),
            inp,
        ),
    ]


@pytest.mark.parametrize("case", range(9))
def test_gradients_flow_and_training_reduces_loss(case):
    g = torch.Generator().manual_seed(0)
    name, loss, physics = _loss_cases(g)[case]
    x = 0.2 + 0.6 * torch.rand(4, 1, 8, 8, generator=g)
    y = physics.measure(x, g)
    model = Tiny()

    def total(seed):
        terms = loss(Step(y, physics, model, torch.Generator().manual_seed(seed), x=x))
        terms.pop("x_hat", None)
        return sum(terms.values())

    before = float(total(123).detach())
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for step in range(15):
        opt.zero_grad()
        value = total(step)
        value.backward()
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
        opt.step()
    after = float(total(123).detach())
    assert after < before, f"{name}: {before} -> {after}"


def test_bad_parameters():
    with pytest.raises(ValueError, match="n_trans"):
        EILoss(Shift(), n_trans=0)
    with pytest.raises(ValueError, match="unknown group"):
        REILoss("translate")
    with pytest.raises(ValueError, match="width"):
        Noise2SelfLoss(width=1)


def test_ei_with_stop_gradient_passes_no_gradient_through_the_target():
    from selfrecon.groups import Scale
    from selfrecon.physics import Downsampling, Physics

    physics = Physics(Downsampling(2, img_shape=(1, 8, 8)))
    theta = torch.nn.Parameter(torch.tensor(1.3))

    def model(t, p):
        return theta * p.A.pinv(t)

    y = physics.A(torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(0)))
    sg = EILoss(Scale(values=[0.5]), stop_gradient=True)
    (g_sg,) = torch.autograd.grad(
        sg(Step(y, physics, model, torch.Generator().manual_seed(1)))["ei"], theta
    )
    # the same term with the target computed beforehand as a constant
    with torch.no_grad():
        target, _ = Scale(values=[0.5]).random_apply(
            model(y, physics), torch.Generator().manual_seed(1)
        )
    (g_const,) = torch.autograd.grad(
        (model(physics.A(target), physics) - target).pow(2).mean(), theta
    )
    torch.testing.assert_close(g_sg, g_const)
    plain = EILoss(Scale(values=[0.5]))
    (g_plain,) = torch.autograd.grad(
        plain(Step(y, physics, model, torch.Generator().manual_seed(1)))["ei"], theta
    )
    assert not torch.allclose(g_plain, g_sg)  # without it the target's path contributes

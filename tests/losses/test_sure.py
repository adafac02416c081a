"""SURE unbiasedness as z-tests: ≥ 200 noise draws, vectorised on the batch dimension."""

import pytest
import torch

import selfrecon.losses.sure as sure_mod
from selfrecon.losses import (
    SURE,
    Step,
    SureGaussian,
    SurePoisson,
    SurePoissonGaussian,
    skewed_probe,
)
from selfrecon.physics import (
    Denoising,
    GaussianNoise,
    Inpainting,
    MatrixOperator,
    Physics,
    PoissonGaussianNoise,
    PoissonNoise,
)

N_DRAWS = 256


def soft_threshold(lam):
    """A fixed nonlinear reconstruction: soft-thresholding of A† y."""

    def f(y, physics):
        z = physics.A.pinv(y)
        return torch.sign(z) * torch.clamp(z.abs() - lam, min=0)

    return f


def z_stat(physics, x, f, seed, estimator, n=N_DRAWS):
    """z of the paired difference SURE − true error, over n independent noise draws."""
    g = torch.Generator().manual_seed(seed)
    xs = x.expand(n, *x.shape[1:])
    y = physics.measure(xs, g)
    step = Step(y, physics, f, g)
    est, x_hat = estimator.estimate(step), step.x_hat
    err = physics.A(x_hat) - physics.A(xs)
    err = torch.view_as_real(err) if err.is_complex() else err
    true = err.pow(2).flatten(1).mean(1)
    d = est - true
    return float(d.mean() / (d.std() / n**0.5)), est, true


def _operator(name):
    g = torch.Generator().manual_seed(7)
    if name == "denoising":
        return Denoising()
    if name == "inpainting":
        return Inpainting(rate=0.5, img_shape=(8, 8), generator=g)
    # CS with a non-negative matrix so that Poisson noise (u ≥ 0) is well defined
    return MatrixOperator((torch.rand(40, 64, generator=g) / 8).double(), (1, 8, 8))


NOISES = {
    "gaussian": (lambda: GaussianNoise(0.1), SureGaussian),
    "poisson": (lambda: PoissonNoise(0.05), SurePoisson),
    "poisson_gaussian": (lambda: PoissonGaussianNoise(0.05, 0.05), SurePoissonGaussian),
}


@pytest.fixture
def float64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


@pytest.mark.parametrize("noise", list(NOISES))
@pytest.mark.parametrize("op", ["denoising", "inpainting", "cs"])
def test_sure_is_unbiased_z_test(op, noise, float64):
    make_noise, cls = NOISES[noise]
    physics = Physics(_operator(op), make_noise())
    x = 0.2 + 0.6 * torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    z, est, true = z_stat(physics, x, soft_threshold(0.05), seed=11, estimator=cls(1e-3))
    assert abs(z) < 3, f"SURE mean {est.mean():.5f} vs true {true.mean():.5f}: z = {z:.2f}"
    # the estimator is informative: it tracks the error, not a constant
    assert float(true.mean()) > 0 and abs(float(est.mean()) / float(true.mean()) - 1) < 0.2
    # the automatic SURE picks the same estimator (same draws → same value)
    z2, _, _ = z_stat(physics, x, soft_threshold(0.05), seed=11, estimator=SURE(tau=1e-3))
    assert z2 == pytest.approx(z)


def _z(d):
    return float(d.mean() / (d.std() / d.numel() ** 0.5))


def test_sure_with_per_sample_noise_levels(float64):
    """σ and γ given per image (B,) — each image uses its own level: unbiased on the low- and
    the high-noise halves of the batch separately, unlike one scalar level for all."""
    n = 2 * N_DRAWS
    x = 0.2 + 0.6 * torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    levels = torch.linspace(0.02, 0.2, n)
    for noise in (
        GaussianNoise(levels),
        PoissonNoise(levels / 2),
        PoissonGaussianNoise(levels / 2, levels),
    ):
        physics = Physics(Denoising(), noise)
        g = torch.Generator().manual_seed(5)
        y = physics.measure(x.expand(n, -1, -1, -1), g)
        step = Step(y, physics, soft_threshold(0.05), g)
        est, xh = SURE(tau=1e-3).estimate(step), step.x_hat
        d = est - (xh - x).pow(2).flatten(1).mean(1)
        assert abs(_z(d[: n // 2])) < 3 and abs(_z(d[n // 2 :])) < 3
        # one scalar level for all images is detectably biased on the low-noise half
        scalar = Physics(Denoising(), type(noise)(**{k: 0.11 for k in noise.spec() if k != "name"}))
        est_wrong = SURE(tau=1e-3).estimate(Step(y, scalar, soft_threshold(0.05), g))
        d_wrong = est_wrong - (xh - x).pow(2).flatten(1).mean(1)
        assert abs(_z(d_wrong[: n // 2])) > 5


def test_skewed_probe_moments():
    c = skewed_probe((400_000,), torch.Generator().manual_seed(0), dtype=torch.float64)
    se = 4 / 400_000**0.5
    assert abs(float(c.mean())) < 3 * se
    assert abs(float((c**2).mean()) - 1) < 3 * se * 2
    assert abs(float((c**3).mean()) - 1) < 3 * se * 4


def test_second_order_term_needs_skewed_probe(float64, monkeypatch):
    """With a curved reconstruction the PG second-order term matters: our skewed probe is
    unbiased, the symmetric probe of the original REI code is not (its term averages to zero)."""
    physics = Physics(Denoising(), PoissonGaussianNoise(0.5, 0.3))
    x = 0.5 + 0.5 * torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(0))

    def curved(y, p):
        return y + y**2

    est = SurePoissonGaussian(tau1=1e-2, tau2=0.1)
    z, _, _ = z_stat(physics, x, curved, seed=3, estimator=est)
    assert abs(z) < 3
    monkeypatch.setattr(sure_mod, "_skewed", sure_mod._rademacher)
    z_sym, _, _ = z_stat(physics, x, curved, seed=3, estimator=est)
    assert z_sym > 6


def test_complex_gaussian_sure(float64):
    """Complex measurements: real and imaginary parts both count (view_as_real)."""
    from selfrecon.physics import LinearOperator

    class Fourier(LinearOperator):
        complex_input = True

        def forward(self, x):
            return torch.fft.fft2(x, norm="ortho")

        def adjoint(self, y):
            return torch.fft.ifft2(y, norm="ortho")

        def pinv(self, y, tol=1e-6, max_iter=100):
            return self.adjoint(y)

    physics = Physics(Fourier(), GaussianNoise(0.1))
    x = physics.prepare_image(torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(2)))
    z, _, _ = z_stat(physics, x, soft_threshold(0.05), seed=9, estimator=SURE(tau=1e-3))
    assert abs(z) < 3
    y = physics.measure(x.expand(4, -1, -1, -1), torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="complex"):
        Physics(Fourier(), PoissonNoise(0.1))  # building is fine ...
        SurePoisson()(Step(y, Physics(Fourier(), PoissonNoise(0.1)), soft_threshold(0.05)))


def _counting_model():
    """``f(y) = 0.9 A† y`` that records the batch size of every call."""
    calls = []

    def model(y, physics):
        calls.append(y.shape[0])
        return physics.A.pinv(y) * 0.9

    return calls, model


def test_one_batched_pass_computes_x_hat(rng):
    calls, model = _counting_model()
    y = torch.rand(3, 1, 8, 8, generator=rng)
    for noise, batch in (
        (GaussianNoise(0.1), 6),
        (PoissonNoise(0.1), 6),
        (PoissonGaussianNoise(0.1, 0.1), 12),
    ):
        calls.clear()
        step = Step(y, Physics(Denoising(), noise), model, rng)
        out = SURE()(step)
        assert calls == [batch] and step.passes == 1
        assert torch.allclose(step.x_hat, 0.9 * y) and out["sure"].dim() == 0
        assert calls == [batch]  # x_hat came from the probes' pass
        calls.clear()
        out = SURE()(Step(y, Physics(Denoising(), noise), model, rng, x_hat=0.9 * y))
        assert calls == [batch - 3] and list(out) == ["sure"]


def test_per_sample_masks_evaluated_copy_by_copy(rng):
    masks = (torch.rand(4, 1, 8, 8, generator=rng) < 0.5).float()
    physics = Physics(Inpainting(mask=masks), GaussianNoise(0.1))
    calls = []

    def model(y, p):
        calls.append(y.shape[0])
        return p.A.pinv(y)

    y = physics.measure(torch.rand(4, 1, 8, 8, generator=rng), rng)
    out = SURE()(Step(y, physics, model, rng))
    assert calls == [4, 4] and torch.isfinite(out["sure"])


def test_sure_errors(rng):
    y = torch.rand(2, 1, 8, 8, generator=rng)

    def f(y, p):
        return y

    with pytest.raises(ValueError, match="set physics.noise"):
        SURE()(Step(y, Physics(Denoising()), f))
    with pytest.raises(ValueError, match="use SURE"):
        SureGaussian()(Step(y, Physics(Denoising(), PoissonNoise(0.1)), f))
    with pytest.raises(ValueError, match="positive"):
        SURE(tau=0)


@pytest.mark.parametrize("noise", list(NOISES))
@pytest.mark.parametrize("op", ["denoising", "cs"])
def test_probing_a_subset_stays_unbiased(op, noise, float64):
    """probe_fraction = 1/4: a quarter of the images carry the divergence term, ×4. Each image's
    estimate is still unbiased (z-test against the true error), and evaluation mode probes all."""
    make_noise, cls = NOISES[noise]
    physics = Physics(_operator(op), make_noise())
    x = 0.2 + 0.6 * torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    f = soft_threshold(0.05)
    est_fn = cls(1e-3, probe_fraction=0.25)
    z, est, true = z_stat(physics, x, f, seed=12, estimator=est_fn, n=1024)
    assert abs(z) < 3, f"SURE mean {est.mean():.5f} vs true {true.mean():.5f}: z = {z:.2f}"
    # a quarter of the images differ from the unprobed value fit − const; the others equal it
    g = torch.Generator().manual_seed(12)
    y = physics.measure(x.expand(1024, *x.shape[1:]), g)
    full = cls(1e-3).estimate(Step(y, physics, f, torch.Generator().manual_seed(0)))
    est_fn.eval()
    all_probed = est_fn.estimate(Step(y, physics, f, torch.Generator().manual_seed(0)))
    assert torch.equal(all_probed, full)


def test_probe_fraction_shrinks_the_batched_pass(rng):
    calls, model = _counting_model()
    y = torch.rand(8, 1, 8, 8, generator=rng)
    for noise, batch in (
        (GaussianNoise(0.1), 8 + 2),
        (PoissonNoise(0.1), 8 + 2),
        (PoissonGaussianNoise(0.1, 0.1), 8 + 3 * 2),
    ):
        calls.clear()
        loss = SURE(probe_fraction=0.25)
        step = Step(y, Physics(Denoising(), noise), model, rng)
        out = loss(step)
        assert calls == [batch] and torch.isfinite(out["sure"])
        assert torch.allclose(step.x_hat, 0.9 * y)
        calls.clear()
        loss.eval()
        loss(Step(y, Physics(Denoising(), noise), model, rng))
        assert calls == [8 * (batch - 8) // 2 + 8]
    with pytest.raises(ValueError, match="probe_fraction"):
        SURE(probe_fraction=0)
    with pytest.raises(ValueError, match="probe_fraction"):
        SURE(probe_fraction=1.5)

"""Classical solvers as models: operator identities, optimality, memo, gradients, errors."""

import math

import numpy as np
import pytest
import torch

from selfrecon.errors import ConfigError
from selfrecon.metrics import psnr
from selfrecon.models.solvers import (
    SART,
    TV,
    Biharmonic,
    LeastSquares,
    Pinv,
    Wavelet,
    div2d,
    grad2d,
    haar,
    ihaar,
    operator_norm2,
)
from selfrecon.physics import (
    MRI,
    CompressedSensing,
    GaussianNoise,
    Inpainting,
    LowDoseCT,
    Physics,
    Tomography,
    mri_mask,
)
from selfrecon.physics.base import inner


def _phantom(n: int = 32) -> torch.Tensor:
    """A piecewise-constant square-and-disc image in [0, 1], (1, 1, n, n)."""
    yy, xx = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    disc = ((yy - n / 2) ** 2 + (xx - n / 2) ** 2 < (n / 3) ** 2).float()
    square = ((yy > n // 4) & (yy < n // 2) & (xx > n // 5) & (xx < n // 2)).float()
    return (0.4 * disc + 0.5 * square).clamp(0, 1)[None, None]


def test_grad_div_are_negative_adjoints(rng):
    x = torch.randn(3, 2, 9, 7, generator=rng, dtype=torch.float64)
    g = torch.randn(3, 2, 2, 9, 7, generator=rng, dtype=torch.float64)
    torch.testing.assert_close(inner(grad2d(x), g), -inner(x, div2d(g)))


def test_haar_is_orthonormal_and_inverted(rng):
    x = torch.randn(2, 1, 16, 8, generator=rng, dtype=torch.float64)
    ll, details = haar(x, 3)
    energy = ll.pow(2).sum() + sum(d.pow(2).sum() for d in details)
    torch.testing.assert_close(energy, x.pow(2).sum())
    torch.testing.assert_close(ihaar(ll, details), x)


def _tv_objective(x, y, physics, lam):
    fit = 0.5 * (physics.A(x) - y).abs().pow(2).sum()
    g = grad2d(x)
    return float(fit + lam * g.pow(2).sum(dim=(1, 2)).sqrt().sum())


def test_tv_lowers_its_objective_and_beats_fbp_on_a_phantom():
    x = _phantom(32).double()
    physics = Physics(Tomography(12, 32))
    y = physics.A(x)
    lam = 0.01
    x_tv = TV(lam, n_iter=400, nonneg=True)(y, physics)
    x_fbp = physics.A.pinv(y)
    assert _tv_objective(x_tv, y, physics, lam) < _tv_objective(x_fbp.clamp_min(0), y, physics, lam)
    assert float(psnr(x_tv.clamp(0, 1), x)) > float(psnr(x_fbp.clamp(0, 1), x)) + 5


def test_tv_works_on_complex_mri_layout(rng):
    x = _phantom(32)
    physics = Physics(MRI(mri_mask((32, 32), 4, 0.1, generator=rng)), GaussianNoise(0.02))
    xc = physics.prepare_image(x)
    y = physics.measure(xc, rng)
    out = TV(0.02, n_iter=100)(y, physics)
    assert out.shape == xc.shape
    gain = psnr(physics.display(out), x) - psnr(physics.display(physics.A.pinv(y)), x)
    assert float(gain) > 1.0


def test_wavelet_fista_decreases_its_objective(rng):
    x = _phantom(16)
    physics = Physics(CompressedSensing(96, (1, 16, 16), generator=rng))
    y = physics.A(x)
    solver = Wavelet(lam=0.01, n_iter=200, levels=2)

    def objective(z):
        ll, det = haar(z, 2)
        return float(0.5 * (physics.A(z) - y).pow(2).sum() + 0.01 * sum(d.abs().sum() for d in det))

    assert objective(solver(y, physics)) < objective(physics.A.pinv(y))


def test_least_squares_solves_the_normal_equations(rng):
    physics = Physics(CompressedSensing(40, (1, 8, 8), generator=rng))
    y = torch.randn(3, 40, generator=rng)
    lam = 0.1
    x = LeastSquares(lam, n_iter=200, tol=1e-10)(y, physics)
    M = physics.operator.matrix.double()
    want = torch.linalg.solve(M.T @ M + lam * torch.eye(64, dtype=M.dtype), M.T @ y.double().T).T
    torch.testing.assert_close(x.reshape(3, -1).double(), want, atol=1e-4, rtol=1e-4)


def test_sart_moves_toward_consistency_and_refuses_signed_operators(rng):
    x = _phantom(24)
    physics = Physics(Tomography(10, 24))
    y = physics.A(x)
    r5 = (physics.A(SART(5)(y, physics)) - y).norm()
    r50 = (physics.A(SART(50)(y, physics)) - y).norm()
    assert r50 < r5 < y.norm()
    cs = Physics(CompressedSensing(20, (1, 8, 8), generator=rng))
    with pytest.raises(ConfigError, match="non-negative"):
        SART(3)(torch.randn(1, 20, generator=rng), cs)


def test_biharmonic_keeps_observed_pixels_and_matches_skimage(rng):
    from skimage.restoration import inpaint_biharmonic

    x = torch.rand(2, 1, 24, 24, generator=rng)
    x = torch.nn.functional.avg_pool2d(x, 5, stride=1, padding=2)  # smooth images
    physics = Physics(Inpainting(rate=0.7, img_shape=(24, 24), generator=rng))
    y = physics.A(x)
    out = Biharmonic(n_iter=300, tol=1e-8)(y, physics)
    m = physics.measured_mask.expand_as(y).bool()
    torch.testing.assert_close(out[m], y[m])
    mask = physics.measured_mask[0, 0].numpy() == 0
    sk = np.stack([inpaint_biharmonic(y[b, 0].double().numpy(), mask) for b in range(2)])
    ours = out[:, 0].double().numpy()
    assert abs(float(psnr(out, x)) - float(psnr(torch.tensor(sk)[:, None].float(), x))) < 0.5
    assert np.abs(ours - sk)[:, 3:-3, 3:-3].max() < 0.05  # boundary rules differ slightly


def test_biharmonic_refuses_other_physics(rng):
    with pytest.raises(ConfigError, match="inpainting physics"):
        Biharmonic()(torch.zeros(1, 1, 8, 8), Physics(Tomography(4, 8)))


def test_memo_reuses_results_for_the_same_measurements(rng):
    physics = Physics(Tomography(6, 16))
    y = physics.A(torch.rand(3, 1, 16, 16, generator=rng))
    solver = TV(0.01, n_iter=5)
    calls = []
    solver.register_forward_pre_hook(lambda mod, args: calls.append(args[0].shape[0]))
    first = solver(y, physics)
    again = solver(y[[2, 0]], physics)  # a new batch of already-seen measurements
    assert calls == [3]
    torch.testing.assert_close(again, first[[2, 0]])
    solver(y + 1e-3, physics)
    assert calls == [3, 3]


def test_inputs_with_gradients_bypass_the_memo_and_grad_false_detaches(rng):
    physics = Physics(Tomography(6, 16))
    y = physics.A(torch.rand(2, 1, 16, 16, generator=rng)).requires_grad_()
    out = TV(0.01, n_iter=3)(y, physics)
    assert out.requires_grad
    out.sum().backward()
    assert y.grad is not None and torch.isfinite(y.grad).all()
    assert not TV(0.01, n_iter=3, grad=False)(y, physics).requires_grad


def test_lowdose_ct_solvers_use_the_linearised_problem(rng):
    x = _phantom(24)
    physics = LowDoseCT(angles=12, img_size=24, I0=1e5, sigma=5.0)
    y = physics.measure(x, rng)
    lin, data = physics.linearized(y)
    torch.testing.assert_close(lin.A(x), physics.mu * physics.operator(x))
    torch.testing.assert_close(Pinv()(y, physics), physics.A.pinv(y))
    out = TV(0.01, n_iter=100, nonneg=True)(y, physics)
    assert float(psnr(out.clamp(0, 1), x)) > float(psnr(physics.A.pinv(y).clamp(0, 1), x))


def test_operator_norm_bound(rng):
    physics = Physics(CompressedSensing(30, (1, 6, 6), generator=rng))
    est = operator_norm2(physics, torch.zeros(1, 1, 6, 6))
    true = float(torch.linalg.matrix_norm(physics.operator.matrix, ord=2)) ** 2
    assert true <= est <= 1.05 * true


@pytest.mark.parametrize(
    "make",
    [
        lambda: TV(lam=-1),
        lambda: TV(n_iter=0),
        lambda: Wavelet(levels=0),
        lambda: SART(relaxation=2.5),
        lambda: LeastSquares(lam=math.inf),
    ],
)
def test_bad_parameters_are_config_errors(make):
    with pytest.raises(ConfigError):
        make()

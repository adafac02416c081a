"""Physics (operator + noise), specs, per-batch updates, CG, norm, Inpainting/CS, errors."""

from __future__ import annotations

import pytest
import torch

from selfrecon.physics import (
    MRI,
    Blur,
    CompressedSensing,
    Denoising,
    Downsampling,
    GaussianNoise,
    Inpainting,
    MultiCoilMRI,
    Physics,
    PoissonGaussianNoise,
    PoissonNoise,
    SinglePixelCamera,
    birdcage_maps,
    build_operator,
    build_physics,
    conjugate_gradient,
    gaussian_kernel,
    inner,
    mri_mask,
)


def _g(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# (physics factory, network-layout input shape)
PHYSICS = {
    "denoising": (lambda: Physics(Denoising(), GaussianNoise(0.1)), (2, 3, 8, 8)),
    "inpainting": (
        lambda: Physics(Inpainting(rate=0.5, img_shape=(8, 8), generator=_g()), PoissonNoise(0.1)),
        (2, 3, 8, 8),
    ),
    "cs": (lambda: Physics(CompressedSensing(16, (1, 8, 8), generator=_g()), None), (2, 1, 8, 8)),
    "mri": (
        lambda: Physics(MRI(mri_mask((8, 8), 2, 0.25, generator=_g())), GaussianNoise(0.05)),
        (2, 2, 8, 8),
    ),
    "multicoil_mri": (
        lambda: Physics(
            MultiCoilMRI(mri_mask((8, 8), 2, 0.25, generator=_g()), birdcage_maps(3, (8, 8)))
        ),
        (2, 2, 8, 8),
    ),
    "spc_hadamard": (
        lambda: Physics(SinglePixelCamera(16, (8, 8)), GaussianNoise(0.1)),
        (2, 3, 8, 8),
    ),
    "spc_bernoulli": (
        lambda: Physics(SinglePixelCamera(16, (8, 8), kind="bernoulli", generator=_g())),
        (2, 1, 8, 8),
    ),
    "blur": (
        lambda: Physics(
            Blur(gaussian_kernel(1.0), img_shape=(8, 8)), PoissonGaussianNoise(0.1, 0.01)
        ),
        (2, 3, 8, 8),
    ),
    "downsampling": (
        lambda: Physics(Downsampling(2, "gaussian", img_shape=(3, 8, 8))),
        (2, 3, 8, 8),
    ),
}


@pytest.mark.parametrize("name", sorted(PHYSICS))
def test_spec_round_trip(name, rng):
    factory, shape = PHYSICS[name]
    phys = factory()
    again = build_physics(phys.spec())
    assert type(again.operator) is type(phys.operator)
    assert again.spec()["operator"]["name"] == phys.spec()["operator"]["name"]
    assert again.spec()["noise"] == phys.spec()["noise"]
    x = torch.rand(shape, generator=rng)
    assert torch.equal(again.A(x), phys.A(x))
    y = phys.A(x)
    assert torch.allclose(again.A.pinv(y), phys.A.pinv(y))
    assert phys.A.adjoint(y).shape == shape and phys.A.pinv(y).shape == shape
    assert not phys.A.adjoint(y).is_complex()


@pytest.mark.parametrize(
    "op", [Inpainting(rate=0.5, img_shape=(4, 4), generator=_g()), MRI(torch.ones(4, 4))]
)
def test_measure_zeros_unmeasured_entries(op, rng):
    phys = Physics(op, GaussianNoise(0.5))
    x = phys.prepare_image(torch.rand(3, 1, 4, 4, generator=rng))
    y = phys.measure(x, rng)
    mask = (
        phys.measured_mask.expand_as(y)
        if not isinstance(op, MRI)
        else phys.measured_mask.expand(y.shape)
    )
    off = y[mask == 0]
    assert off.numel() == 0 or torch.all(off == 0)
    on = y[mask == 1] - phys.A(x)[mask == 1]
    assert on.abs().min() > 0  # noise on every measured entry


def test_measure_zeros_off_mask_kspace(rng):
    mask = mri_mask((8, 8), 4, 0.25, generator=rng)
    phys = Physics(MRI(mask), GaussianNoise(0.1))
    y = phys.measure(phys.prepare_image(torch.rand(2, 1, 8, 8, generator=rng)), rng)
    assert y.is_complex()
    assert torch.all(y[..., mask == 0] == 0)
    assert torch.all(y[..., mask == 1].abs() > 0)


def test_complex_physics_layout(rng):
    phys = Physics(MRI(torch.ones(8, 8)))
    assert phys.is_complex
    img = torch.rand(2, 1, 8, 8, generator=rng)
    x = phys.prepare_image(img)
    assert x.shape == (2, 2, 8, 8) and torch.all(x[:, 1] == 0)
    assert torch.allclose(phys.display(phys.A.pinv(phys.A(x))), img, atol=1e-5)
    assert torch.allclose(phys.A.adjoint(phys.A(x)), x, atol=1e-5)


def test_update_gives_per_sample_masks(rng):
    masks = (torch.rand(3, 1, 8, 8, generator=rng) < 0.5).float()
    phys = Physics(Inpainting(rate=0.5, img_shape=(8, 8), generator=rng), GaussianNoise(0.1))
    new = phys.update(mask=masks)
    x = torch.rand(3, 2, 8, 8, generator=rng)
    assert torch.equal(new.A(x), x * masks)
    assert new.noise is phys.noise and phys.operator.mask.shape[0] == 1  # original untouched
    kmasks = torch.stack([mri_mask((8, 8), 2, 0.25, generator=_g(s)) for s in range(3)])
    mri = Physics(MRI(kmasks[0])).update(mask=kmasks)
    assert torch.equal(mri.measured_mask, kmasks[:, None])
    with pytest.raises(ValueError, match=r"no parameter\(s\) \['angles'\].*\['mask'\]"):
        phys.update(angles=torch.zeros(3))


def test_update_per_sample_noise_and_noiseless_error(rng):
    phys = Physics(Denoising(), GaussianNoise(0.1))
    new = phys.update(sigma=torch.tensor([0.0, 1.0]))
    y = new.measure(torch.zeros(2, 1, 50, 50), rng)
    assert torch.all(y[0] == 0) and 0.9 < y[1].std() < 1.1
    assert float(phys.noise.sigma) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="noiseless"):
        Physics(Denoising()).update(sigma=torch.tensor([0.1]))


def test_update_keeps_subclass_buffers_and_training_flag():
    class Scaled(Physics):
        def __init__(self, operator, noise=None):
            super().__init__(operator, noise)
            self.register_buffer("scale", torch.tensor(2.0))
            self.extra = torch.nn.Linear(1, 1)

        def measure(self, x, generator=None):
            return self.scale * super().measure(x, generator)

    phys = Scaled(Inpainting(rate=0.5, img_shape=(4, 4), generator=_g())).eval()
    new = phys.update(mask=torch.ones(2, 1, 4, 4))
    assert not new.training
    assert "scale" in dict(new.named_buffers()) and new.extra is phys.extra
    x = torch.rand(2, 1, 4, 4, generator=_g(1))
    assert torch.equal(new.measure(x), 2 * x)


def test_cs_norm_matches_spectral_norm():
    A = CompressedSensing(24, (1, 8, 8), generator=_g()).double()
    ref = torch.linalg.matrix_norm(A.matrix, 2).item()
    assert A.norm(n_iter=1000, tol=1e-12, generator=_g(1)) == pytest.approx(ref, rel=1e-4)
    assert Denoising().norm((1, 4, 4)) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="x_shape"):
        Denoising().norm()


@pytest.mark.parametrize("m, shape", [(20, (1, 8, 8)), (40, (1, 4, 4))])
def test_cg_pinv_matches_svd_pinv_on_cs(m, shape, rng):
    """Under-determined: min-norm solution; over-determined: least squares (y off the range)."""
    A = CompressedSensing(m, shape, generator=rng).double()
    y = torch.randn(3, m, dtype=torch.float64, generator=rng)
    ref = A.pinv(y)
    cg = A.pinv_cg(y, tol=1e-12, max_iter=500)
    assert torch.allclose(cg, ref, atol=1e-8 * ref.abs().max())
    # a loose tolerance stops early and is visibly less accurate
    rough = A.pinv_cg(y, tol=1e-1, max_iter=500)
    assert (rough - ref).norm() > (cg - ref).norm()


def test_conjugate_gradient_is_batched_per_sample(rng):
    """Samples with different conditioning converge independently (each its own step sizes)."""
    d = torch.tensor([[1.0, 1.0, 1.0], [1.0, 10.0, 100.0]], dtype=torch.float64)
    b = torch.randn(2, 3, dtype=torch.float64, generator=rng)
    x = conjugate_gradient(lambda v: d * v, b, tol=1e-12, max_iter=10)
    assert torch.allclose(x, b / d, atol=1e-10)
    # an all-zero right-hand side stays zero
    assert torch.equal(conjugate_gradient(lambda v: d * v, torch.zeros(2, 3)), torch.zeros(2, 3))


def test_inner_is_per_sample_real_inner_product(rng):
    a = torch.randn(3, 4, dtype=torch.complex128, generator=rng)
    b = torch.randn(3, 4, dtype=torch.complex128, generator=rng)
    assert torch.allclose(inner(a, b), (a.conj() * b).sum(1).real)


def test_inpainting_rate_and_mask_validation(rng):
    op = Inpainting(rate=0.3, img_shape=(3, 64, 64), generator=rng)
    assert op.mask.shape == (1, 3, 64, 64)
    frac = op.mask.mean().item()
    assert abs(frac - 0.3) < 5 * (0.3 * 0.7 / op.mask.numel()) ** 0.5
    with pytest.raises(ValueError, match="only 0"):
        Inpainting(mask=torch.full((4, 4), 0.5))
    with pytest.raises(ValueError, match="either mask"):
        Inpainting()
    with pytest.raises(ValueError, match=r"in \(0, 1\]"):
        Inpainting(rate=1.5, img_shape=(4, 4))


def test_shape_errors_name_both_shapes():
    with pytest.raises(ValueError, match=r"mask has shape \(8, 8\) but images are \(8, 6\)"):
        Inpainting(mask=torch.ones(8, 8))(torch.zeros(2, 1, 8, 6))
    with pytest.raises(ValueError, match=r"3 per-sample masks but the batch has 2"):
        Inpainting(mask=torch.ones(3, 1, 8, 8))(torch.zeros(2, 1, 8, 8))
    cs = CompressedSensing(10, (1, 8, 8), generator=_g())
    with pytest.raises(ValueError, match=r"\(2, 1, 8, 6\).*\(1, 8, 8\)"):
        cs(torch.zeros(2, 1, 8, 6))
    with pytest.raises(ValueError, match=r"\(2, 9\).*\(B, 10\)"):
        cs.adjoint(torch.zeros(2, 9))
    with pytest.raises(ValueError, match=r"complex.*real images"):
        cs(torch.zeros(2, 1, 8, 8, dtype=torch.complex64))
    with pytest.raises(ValueError, match="meta"):
        cs(torch.zeros(2, 1, 8, 8, device="meta"))
    with pytest.raises(ValueError, match="unknown operator"):
        build_operator({"name": "radar"})
    with pytest.raises(TypeError, match="LinearOperator"):
        Physics(torch.nn.Identity())


def test_matrix_pinv_cache_follows_loaded_state():
    A = CompressedSensing(8, (1, 4, 4), generator=_g(0))
    B = CompressedSensing(8, (1, 4, 4), generator=_g(1))
    y = torch.randn(2, 8, generator=_g(2))
    before = A.pinv(y)
    A.load_state_dict(B.state_dict())
    assert torch.allclose(A.pinv(y), B.pinv(y))
    assert not torch.allclose(A.pinv(y), before)


def test_scaled_and_summed_operators(rng):
    from selfrecon.physics.base import inner

    a = CompressedSensing(12, (1, 4, 4), generator=rng)
    b = CompressedSensing(12, (1, 4, 4), generator=rng)
    x = torch.randn(3, 1, 4, 4, generator=rng)
    y = torch.randn(3, 12, generator=rng)
    for op, ref in ((2.5 * a, 2.5 * a(x)), (a * -0.5, -0.5 * a(x)), (a + b, a(x) + b(x))):
        torch.testing.assert_close(op(x), ref)
        torch.testing.assert_close(inner(op(x), y), inner(x, op.adjoint(y)), rtol=1e-5, atol=1e-5)
    scaled = 4.0 * a
    torch.testing.assert_close(scaled.pinv(y), a.pinv(y) / 4.0)
    assert scaled.exact_pinv and (2.0 * scaled).scale == 8.0
    with pytest.raises(ValueError, match="non-zero"):
        0.0 * a

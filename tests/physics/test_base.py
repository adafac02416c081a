"""Operator vocabulary: physics.A as an operator, composite specs, declared per-sample params."""

from __future__ import annotations

import pytest
import torch

from selfrecon.errors import ConfigError
from selfrecon.losses import SURE, Step
from selfrecon.physics import (
    MRI,
    CompressedSensing,
    Denoising,
    GaussianNoise,
    Inpainting,
    LinearOperator,
    Physics,
    Tomography,
    build_operator,
    build_physics,
    inner,
    mri_mask,
)
from selfrecon.physics.complex import RealLayout, to_complex, to_real


def _g(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_physics_A_is_an_operator_with_H_pinv_and_norm(rng):
    mri = Physics(MRI(mri_mask((8, 8), 2, 0.25, generator=_g())), GaussianNoise(0.05))
    A = mri.A
    assert isinstance(A, RealLayout) and A is mri.A  # one cached view, in network layout
    x = torch.randn(3, 2, 8, 8, generator=rng)  # 2 real channels = 1 complex channel
    y = A(x)
    torch.testing.assert_close(y, mri.operator(to_complex(x)))
    torch.testing.assert_close(A.H(y), to_real(mri.operator.adjoint(y)))
    torch.testing.assert_close(A.pinv(y), to_real(mri.operator.pinv(y)))
    # adjoint for the real inner product of the network layout
    v = torch.randn_like(y.real) + 1j * torch.randn_like(y.real)
    torch.testing.assert_close(inner(A(x), v), inner(x, A.H(v)), rtol=1e-4, atol=1e-4)
    assert A.norm(generator=_g(1)) == pytest.approx(1.0, abs=1e-4)  # a masked unitary map
    normal = A.H @ A  # composition of the view with its adjoint
    torch.testing.assert_close(normal(x), A.H(A(x)))
    cs = Physics(CompressedSensing(16, (1, 8, 8), generator=_g()))
    assert cs.A is cs.operator  # real operators are their own view


def test_physics_A_follows_a_per_batch_update(rng):
    masks = (torch.rand(2, 1, 8, 8, generator=rng) < 0.5).float()
    mri = Physics(MRI(mri_mask((8, 8), 2, 0.25, generator=_g())))
    new = mri.update(mask=masks)
    x = torch.randn(2, 2, 8, 8, generator=rng)
    torch.testing.assert_close(new.A(x), new.operator(to_complex(x)))
    assert not torch.equal(new.A(x), mri.A(x))


def _composites(rng):
    inp = Inpainting(rate=0.5, img_shape=(8, 8), generator=_g())
    cs = CompressedSensing(20, (1, 8, 8), generator=_g(1))
    return {
        "composition": cs @ inp,
        "scaled": 2.5 * cs,
        "sum": cs + 0.5 * cs,
        "adjoint": cs.H,
        "nested": (2.0 * cs) @ (inp + Denoising()),
    }


@pytest.mark.parametrize("name", ["composition", "scaled", "sum", "adjoint", "nested"])
def test_composite_specs_round_trip_through_build_physics(name, rng):
    op = _composites(rng)[name]
    spec = op.spec()
    rebuilt = build_physics(Physics(op, GaussianNoise(0.1)).spec()).operator
    assert type(rebuilt) is type(op) and rebuilt.spec().keys() == spec.keys()
    x = torch.randn(3, *((20,) if name == "adjoint" else (1, 8, 8)), generator=rng)
    torch.testing.assert_close(rebuilt(x), op(x))
    torch.testing.assert_close(build_operator(spec)(x), op(x))


def test_composition_routes_an_update_to_the_factor_that_owns_it(rng):
    inp = Inpainting(rate=0.5, img_shape=(8, 8), generator=_g())
    op = 2.0 * (CompressedSensing(20, (1, 8, 8), generator=_g(1)) @ inp)
    masks = (torch.rand(3, 1, 8, 8, generator=rng) < 0.5).float()
    new = op.update(mask=masks)
    x = torch.randn(3, 1, 8, 8, generator=rng)
    torch.testing.assert_close(new(x), 2.0 * op.op.outer(masks * x))
    assert torch.equal(op.op.inner_op.mask, inp.mask)  # the original is untouched
    assert new.per_sample() and not op.per_sample()
    with pytest.raises(ConfigError, match="no factor with parameter"):
        op.update(angles=torch.zeros(3))


def test_an_operator_without_config_is_described_not_fatal(rng):
    class Doubling(LinearOperator):
        def forward(self, x):
            return 2 * x

        def adjoint(self, y):
            return 2 * y

    spec = (Doubling() @ Denoising()).spec()
    assert spec["outer"] == {"name": "Doubling", "registered": False}
    with pytest.raises(ConfigError, match="register_operator"):
        build_operator(spec)


@pytest.mark.parametrize(
    "physics",
    [
        # m = 8 rows at batch 8, and 16 angles at batch 16: shapes that matched the batch used to
        # be taken for per-sample parameters and turned the batched SURE pass off
        Physics(CompressedSensing(8, (1, 8, 8), generator=_g()), GaussianNoise(0.1)),
        Physics(Tomography(16, 8), GaussianNoise(0.1)),
    ],
    ids=["cs_m8_batch8", "ct_16_angles_batch16"],
)
def test_declared_per_sample_parameters_keep_one_batched_pass(physics, rng):
    batch = 8 if isinstance(physics.operator, CompressedSensing) else 16
    assert not physics.per_sample()
    calls = []

    def model(y, p):
        calls.append(y.shape[0])
        return p.A.pinv(y)

    y = physics.measure(torch.rand(batch, 1, 8, 8, generator=rng), rng)
    SURE()(Step(y, physics, model, rng))
    assert calls == [2 * batch]  # f(y) and the probe in one pass
    calls.clear()
    SURE(probe_fraction=0.25)(Step(y, physics, model, rng))
    assert calls == [batch + batch // 4]  # and a quarter of the images probed, still one pass


def test_per_sample_masks_and_noise_are_declared(rng):
    masks = (torch.rand(4, 1, 8, 8, generator=rng) < 0.5).float()
    assert Physics(Inpainting(mask=masks)).per_sample()
    assert not Physics(Inpainting(mask=masks[:1])).per_sample()
    assert Physics(Denoising(), GaussianNoise(torch.tensor([0.1, 0.2]))).per_sample()
    assert not Physics(Denoising(), GaussianNoise(0.1)).per_sample()


def test_seed_recipe_rebuilds_the_same_random_operator():
    from selfrecon.physics import Inpainting, build_operator

    spec = {"name": "inpainting", "rate": 0.5, "img_shape": [1, 8, 8], "seed": 11}
    want = Inpainting(rate=0.5, img_shape=(1, 8, 8), generator=torch.Generator().manual_seed(11))
    assert torch.equal(build_operator(spec).mask, want.mask)
    assert not torch.equal(build_operator({**spec, "seed": 12}).mask, want.mask)

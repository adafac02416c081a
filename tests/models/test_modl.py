"""MoDL: the data-consistency step solves (AᴴA + λI) x = Aᴴy + λz on every operator (against a
dense solve), gradients reach the shared backbone and λ through the unrolled iterations, errors."""

import pytest
import torch

from selfrecon.errors import ConfigError
from selfrecon.models import MoDL, UNet, build_model, model_spec
from selfrecon.physics import build_physics


def _g(seed=0):
    return torch.Generator().manual_seed(seed)


SPECS = {
    "denoising": {"name": "denoising"},
    "inpainting": {"name": "inpainting", "img_shape": [1, 8, 8], "rate": 0.6, "seed": 0},
    "cs": {"name": "cs", "img_shape": [1, 8, 8], "m": 24, "seed": 0},
    "mri": {"name": "mri", "img_shape": [8, 8], "acceleration": 2.0, "seed": 0},
    "tomography": {"name": "tomography", "angles": 6, "img_size": 8},
    "spc": {"name": "spc", "img_shape": [1, 8, 8], "m": 20, "seed": 0},
    "downsampling": {"name": "downsampling", "img_shape": [1, 8, 8], "factor": 2},
}


def _dense(A, shape):
    """The matrix of the real-layout operator ``A`` on images of ``shape`` (real, column-major)."""
    n = int(torch.tensor(shape).prod())
    basis = torch.eye(n, dtype=torch.float64).reshape(n, *shape)
    cols = A(basis)
    cols = torch.view_as_real(cols) if cols.is_complex() else cols
    return cols.reshape(n, -1).T


@pytest.mark.parametrize("name", sorted(SPECS))
def test_data_consistency_solves_the_regularised_normal_equations(name):
    torch.set_default_dtype(torch.float64)
    try:
        physics = build_physics({"kind": "linear", "operator": SPECS[name], "noise": None})
        shape = (2, 8, 8) if physics.is_complex else (1, 8, 8)
        x = torch.rand(2, *shape, generator=_g(1))
        y = physics.A(x)
        z = torch.rand(2, *shape, generator=_g(2))
        net = MoDL(torch.nn.Identity(), lam=0.3, cg_iter=200, cg_tol=1e-12)
        got = net.data_consistency(z, y, physics)
        M = _dense(physics.A, shape)
        yr = torch.view_as_real(y) if y.is_complex() else y
        b = M.T @ yr.reshape(2, -1).T + 0.3 * z.reshape(2, -1).T
        want = torch.linalg.solve(M.T @ M + 0.3 * torch.eye(M.shape[1]), b).T.reshape(got.shape)
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-8)
    finally:
        torch.set_default_dtype(torch.float32)


def test_gradients_reach_the_shared_backbone_and_lambda_through_every_iteration():
    physics = build_physics(
        {
            "kind": "linear",
            "operator": SPECS["inpainting"],
            "noise": {"name": "gaussian", "sigma": 0.1},
        }
    )
    calls = []
    backbone = UNet(1, width=4, depth=2)
    backbone.register_forward_hook(lambda m, i, o: calls.append(1))
    net = MoDL(backbone, iterations=3, lam=0.05)
    y = physics.measure(torch.rand(2, 1, 8, 8, generator=_g(1)), _g(2))
    net(y, physics).pow(2).mean().backward()
    assert len(calls) == 3  # one backbone, three iterations
    assert net.log_lam.grad is not None and float(net.log_lam.grad.abs()) > 0
    assert all(p.grad is not None for p in backbone.parameters() if p.requires_grad)
    rebuilt = build_model(model_spec(net))
    assert isinstance(rebuilt, MoDL) and rebuilt.iterations == 3


def test_errors():
    from selfrecon.physics.tomography import LowDoseCT

    with pytest.raises(ConfigError, match="iterations"):
        MoDL(torch.nn.Identity(), iterations=0)
    with pytest.raises(ConfigError, match="lam"):
        MoDL(torch.nn.Identity(), lam=0)
    ct = LowDoseCT(angles=6, img_size=8)
    with pytest.raises(ConfigError, match="needs a\\s+linear physics"):
        MoDL(torch.nn.Identity()).check_physics(ct)

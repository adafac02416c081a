"""Demo configs: they fit their datasets, n2s is not residual, zero-init starts at A†y."""

from __future__ import annotations

import pytest
import torch

from selfrecon.cli.commands import DEMO
from selfrecon.cli.config import apply_sets, validate_config
from selfrecon.cli.templates import task_config


def _cfg(task: str, over: dict):
    raw = task_config(task)
    apply_sets(raw, [f"{k}={v}" for k, v in over.items()])
    return validate_config(raw, f"demo {task}")


@pytest.mark.parametrize("task", sorted(DEMO))
def test_demo_sizes_fit_the_builtin_splits(task):
    from selfrecon.data import builtin

    for over in DEMO[task]:
        d = _cfg(task, over).data
        # raises if the split is smaller than asked (brain-mri has 75 training slices)
        assert len(builtin(d.name, "train", 16, n=d.train + d.val, seed=d.seed)) == d.train + d.val
        assert len(builtin(d.name, "test", 16, n=d.test, seed=d.seed)) == d.test


def test_n2s_defaults_to_a_non_residual_network():
    base = {
        "data": {"name": "mnist"},
        "physics": {"operator": {"name": "denoising"}, "noise": {"name": "gaussian", "sigma": 0.1}},
    }
    assert validate_config({**base, "loss": {"method": "n2s"}}, "t").model.residual is False
    explicit = {**base, "loss": {"method": "n2s"}, "model": {"residual": True}}
    assert validate_config(explicit, "t").model.residual is True
    assert validate_config({**base, "loss": {"method": "mc"}}, "t").model.residual is True
    assert _cfg("denoise", {}).model.residual is False


def test_zero_init_last_starts_the_model_at_the_linear_reconstruction(rng):
    from selfrecon.cli.build import model_of, physics_of

    cfg = _cfg("ct", {"data.size": 16})
    assert cfg.model.zero_init_last
    physics = physics_of(cfg, (1, 16, 16))
    model = model_of(cfg, 1).eval()
    y = physics.A(torch.rand(2, 1, 16, 16, generator=rng))
    torch.testing.assert_close(model(y, physics), physics.A.pinv(y))
    off = _cfg("ct", {"data.size": 16, "model.zero_init_last": False})
    model = model_of(off, 1).eval()
    assert not torch.allclose(model(y, physics), physics.A.pinv(y), atol=1e-3)

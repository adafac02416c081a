"""The config schema translates itself into library specs (cli/config.py)."""

import pytest
import torch

from selfrecon import physics as P
from selfrecon.cli.build import _files_spec, physics_of
from selfrecon.cli.config import OPERATOR_NAMES, validate_config
from selfrecon.errors import ConfigError


def _cfg(operator: dict, noise=None, data=None):
    return validate_config(
        {
            "data": data or {"source": "builtin", "name": "shepp-logan", "size": 16},
            "physics": {"operator": operator, "noise": noise},
        }
    )


def _seeded(seed):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("name", OPERATOR_NAMES)
def test_every_operator_section_builds_through_the_library_builder(name):
    ph = physics_of(_cfg({"name": name}), (1, 16, 16))
    # the built physics round-trips through its own spec: nothing CLI-only was needed
    again = P.build_physics(ph.spec())
    x = torch.rand(2, 2 if ph.operator.complex_input else 1, 16, 16)  # complex: 2 real channels
    assert torch.allclose(ph.A(x), again.A(x))


def test_random_operators_are_the_seeded_library_operators():
    cfg = _cfg({"name": "inpainting", "rate": 0.4, "seed": 3})
    for variant in (0, 2):
        want = P.Inpainting(rate=0.4, img_shape=(1, 16, 16), generator=_seeded(3 + 7919 * variant))
        got = physics_of(cfg, (3, 16, 16), variant).operator
        assert torch.equal(got.mask, want.mask)  # one mask shared by colour channels
    cfg = _cfg({"name": "mri", "acceleration": 4, "pattern": "equispaced", "seed": 1})
    want = P.mri_mask((16, 16), 4, 0.08, "equispaced", generator=_seeded(1 + 7919))
    assert torch.equal(physics_of(cfg, (1, 16, 16), 1).operator.mask.reshape(16, 16), want)
    cfg = _cfg({"name": "cs", "m": 20, "seed": 2})
    want = P.CompressedSensing(20, (1, 16, 16), generator=_seeded(2))
    assert torch.equal(physics_of(cfg, (1, 16, 16)).operator.matrix, want.matrix)
    cfg = _cfg({"name": "multicoil_mri", "coils": 3})
    op = physics_of(cfg, (1, 16, 16)).operator
    assert torch.equal(op.coil_maps[0], P.birdcage_maps(3, (16, 16)))


def test_noise_section_is_the_noise_spec():
    ph = physics_of(_cfg({"name": "denoising"}, {"name": "gaussian", "sigma": 0.1}), (1, 8, 8))
    assert isinstance(ph.noise, P.GaussianNoise) and ph.noise.sigma == pytest.approx(0.1)
    assert physics_of(_cfg({"name": "denoising"}), (1, 8, 8)).noise is None


def test_ct_needs_square_images():
    with pytest.raises(ConfigError, match="square"):
        physics_of(_cfg({"name": "ct", "views": 8}), (1, 16, 12))


def test_files_mode_names_what_each_operator_needs():
    files = {"source": "files", "files": "y/"}
    with pytest.raises(ConfigError, match="mask_file"):
        _files_spec(_cfg({"name": "mri"}, data=files))
    with pytest.raises(ConfigError, match="data.size"):
        _files_spec(_cfg({"name": "ct"}, data=files))
    with pytest.raises(ConfigError, match="does not support operator 'cs'"):
        _files_spec(_cfg({"name": "cs"}, data=files))
    spec = _files_spec(_cfg({"name": "lowdose_ct", "views": 8}, data={**files, "size": 16}))
    assert spec["kind"] == "lowdose_ct" and spec["operator"]["img_size"] == 16
    assert _files_spec(_cfg({"name": "inpainting"}, data={**files, "mask_file": "m.npy"})) == {
        "kind": "linear",
        "operator": {"name": "inpainting"},
        "noise": None,
    }


@pytest.mark.parametrize("name", ["unet", "dncnn"])
def test_model_section_is_the_library_model_spec(name):
    from selfrecon.cli.build import model_of
    from selfrecon.models import ArtifactRemoval, model_spec

    cfg = validate_config(
        {
            "data": {"source": "builtin", "name": "shepp-logan", "size": 16},
            "physics": {"operator": {"name": "denoising"}},
            "model": {"name": name, "depth": 1, "width": 4, "dc": "projection"},
        }
    )
    model = model_of(cfg, 3)
    assert isinstance(model, ArtifactRemoval) and model.dc == "projection"
    spec = model_spec(model)["backbone"]
    assert spec["name"] == name and spec["width"] == 4
    assert spec["depth"] == (1 if name == "unet" else 2)  # DnCNN needs a first and a last layer
    assert spec.get("in_channels", spec.get("channels")) == 3

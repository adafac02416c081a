"""Physics specs with tensors survive JSON + npz bit-exactly; what cannot be saved is named."""

import json

import numpy as np
import pytest
import torch

from selfrecon.data.spec_io import physics_spec_of, spec_from_json, spec_to_json
from selfrecon.errors import ConfigError
from selfrecon.physics import MRI, Inpainting, Physics, mri_mask


def test_nested_composite_spec_round_trips_bit_exactly():
    g = torch.Generator().manual_seed(0)
    op = 2.0 * (
        MRI(mri_mask((8, 8), 4, 0.1, generator=g))
        @ Inpainting(rate=0.5, img_shape=(8, 8), generator=g)
    )
    spec = Physics(op).spec()
    arrays: dict = {}
    text = json.dumps(spec_to_json(spec, arrays, ""))  # plain JSON
    back = spec_from_json(json.loads(text), {k: np.array(v) for k, v in arrays.items()})
    assert back["operator"]["name"] == "scaled"
    inner = back["operator"]["op"]
    assert torch.equal(inner["outer"]["mask"], spec["operator"]["op"]["outer"]["mask"])
    assert torch.equal(inner["inner"]["mask"], spec["operator"]["op"]["inner"]["mask"])


def test_unsaveable_entries_are_named():
    with pytest.raises(ConfigError, match="'operator.fn'.*function"):
        spec_to_json({"operator": {"fn": lambda x: x}}, {}, "")


def test_bare_operator_spec_is_noiseless_linear_physics():
    assert physics_spec_of({"name": "denoising"}) == {
        "kind": "linear",
        "operator": {"name": "denoising"},
        "noise": None,
    }
    with pytest.raises(ConfigError, match="Physics or a spec dict"):
        physics_spec_of(3)

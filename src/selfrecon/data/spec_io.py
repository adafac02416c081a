r"""Physics specs with tensors ↔ JSON plus one ``.npz`` of arrays (the measurement-set format).

A spec (:meth:`selfrecon.physics.Physics.spec`) may hold tensors (masks, angles, coil maps); on disk
each becomes a reference ``{"$tensor": "<key>"}`` in ``manifest.json`` and an array ``<key>`` in
``params.npz``, restored bit-exactly.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from selfrecon.errors import ConfigError

__all__ = ["TENSOR_REF", "spec_to_json", "spec_from_json", "physics_spec_of", "build_physics_spec"]

TENSOR_REF = "$tensor"


def spec_to_json(obj, arrays: dict[str, np.ndarray], key: str):
    """Replace tensors in a spec by references ``{"$tensor": key}``; collect them in ``arrays``."""
    if isinstance(obj, Tensor | np.ndarray):
        a = obj.detach().cpu().numpy() if isinstance(obj, Tensor) else np.asarray(obj)
        arrays[key] = np.ascontiguousarray(a)
        return {TENSOR_REF: key}
    if isinstance(obj, dict):
        return {
            str(k): spec_to_json(v, arrays, f"{key}.{k}" if key else str(k)) for k, v in obj.items()
        }
    if isinstance(obj, list | tuple):
        return [spec_to_json(v, arrays, f"{key}.{i}") for i, v in enumerate(obj)]
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    raise ConfigError(f"physics spec entry {key!r} of type {type(obj).__name__} cannot be saved")


def spec_from_json(obj, arrays: dict[str, np.ndarray]):
    """Inverse of :func:`spec_to_json`: references replaced by tensors from ``arrays``."""
    if isinstance(obj, dict):
        if set(obj) == {TENSOR_REF}:
            return torch.from_numpy(np.array(arrays[obj[TENSOR_REF]]))
        return {k: spec_from_json(v, arrays) for k, v in obj.items()}
    if isinstance(obj, list):
        return [spec_from_json(v, arrays) for v in obj]
    return obj


def physics_spec_of(physics) -> dict:
    """The spec of a :class:`~selfrecon.physics.Physics`, of a spec dict, or of a bare operator
    spec (wrapped as noiseless linear physics)."""
    if isinstance(physics, dict):
        spec = dict(physics)
        if "operator" not in spec and "name" in spec:  # a bare operator spec
            spec = {"kind": "linear", "operator": spec, "noise": None}
        return spec
    if hasattr(physics, "spec"):
        return physics.spec()
    raise ConfigError(
        f"physics must be a selfrecon Physics or a spec dict, got {type(physics).__name__}"
    )


def build_physics_spec(spec: dict):
    """:func:`selfrecon.physics.build_physics` (imported late: physics is heavier than data I/O)."""
    from selfrecon.physics import build_physics

    return build_physics(spec)


def dtype_name(a: np.ndarray) -> str:
    return np.dtype(a.dtype).name

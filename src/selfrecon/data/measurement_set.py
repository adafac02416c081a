r"""A measurement set: items ``{"y", optional "x", optional "params"}`` and the physics of them.

Two stores hold the items: :class:`DiskStore` reads a set folder (:mod:`selfrecon.data.set_writer`
has the layout) lazily — shards are plain ``.npy`` files opened with ``mmap_mode="r"``, so reading
item ``i`` touches only its bytes and sets larger than memory work — and :class:`MemoryStore`
holds arrays (:meth:`MeasurementSet.from_arrays`, :func:`selfrecon.data.assemble`).
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from selfrecon.data.set_writer import FORMAT_NAME, FORMAT_VERSION, dtype_name, write_set
from selfrecon.data.spec_io import build_physics_spec, physics_spec_of, spec_from_json
from selfrecon.errors import DataError, SelfreconError, shape_str

__all__ = ["MeasurementSet", "DiskStore", "MemoryStore", "check_finite", "check_fits"]


# -- the two stores ---------------------------------------------------------------------------
class DiskStore:
    """Items of a set folder: memory-mapped shards, at most ``max_open`` open at once."""

    def __init__(self, path: Path, max_open: int = 8):
        self.path = path
        mpath = path / "manifest.json"
        if not mpath.is_file():
            raise DataError(
                f"{path} is not a measurement set (no manifest.json); create one with "
                "selfrecon.data.simulate or assemble"
            )
        try:
            m = json.loads(mpath.read_text())
        except (OSError, ValueError) as err:
            raise DataError(f"cannot read {mpath}: {err}") from err
        if m.get("format") != FORMAT_NAME or int(m.get("format_version", -1)) > FORMAT_VERSION:
            raise DataError(
                f"{mpath}: format {m.get('format')!r} version {m.get('format_version')} is not one "
                f"this selfrecon reads (version ≤ {FORMAT_VERSION}); upgrade selfrecon"
            )
        self.manifest = m
        with np.load(path / "params.npz", allow_pickle=False) as z:
            self.spec = spec_from_json(m["physics"], {k: z[k] for k in z.files})
        self.physics = None  # built on first use
        self._open: OrderedDict[int, dict[str, np.ndarray]] = OrderedDict()
        self._max_open = int(max_open)
        self._starts = np.array([s["start"] for s in m["shards"]], dtype=np.int64)

    def _keys(self) -> list[str]:
        return list(self.manifest["arrays"]) + [
            f"params.{k}" for k in self.manifest.get("params", {})
        ]

    def _shard_of(self, i: int) -> int:
        return int(np.searchsorted(self._starts, i, side="right") - 1)

    def _shard(self, s: int) -> dict[str, np.ndarray]:
        if s in self._open:
            self._open.move_to_end(s)
            return self._open[s]
        d = self.path / self.manifest["shards"][s]["dir"]
        arrays = {}
        for k in self._keys():
            f = d / f"{k}.npy"
            try:
                arrays[k] = np.load(f, mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError) as err:
                raise DataError(f"cannot read {f}: {err}") from err
        self._open[s] = arrays
        while len(self._open) > self._max_open:
            self._open.popitem(last=False)
        return arrays

    def item(self, i: int) -> dict[str, np.ndarray]:
        s = self._shard_of(i)
        j = i - int(self._starts[s])
        return {k: np.array(a[j]) for k, a in self._shard(s).items()}

    def where(self, i: int) -> str:
        return str(self.path / self.manifest["shards"][self._shard_of(i)]["dir"] / "y.npy")


class MemoryStore:
    """Items held as arrays with a leading item axis (``y``, ``x``, ``params.<name>``)."""

    path = None

    def __init__(self, arrays: dict[str, np.ndarray], spec: dict, physics, names=None):
        self.arrays, self.spec, self.physics = arrays, spec, physics
        self.manifest = _memory_manifest(arrays, names)

    def item(self, i: int) -> dict[str, np.ndarray]:
        return {k: a[i] for k, a in self.arrays.items()}

    def where(self, i: int) -> str:
        return "measurements"


def _numpy(v, dtype=None) -> np.ndarray:
    """A tensor or array-like as a NumPy array (tensors detached and moved to the CPU)."""
    return np.asarray(v.detach().cpu().numpy() if isinstance(v, Tensor) else v, dtype=dtype)


def _input_arrays(y, x, params: dict | None) -> dict[str, np.ndarray]:
    """``y``, optional ``x`` (float32) and ``params.<name>`` arrays, checked to agree on N."""
    yt = _numpy(y)
    if yt.ndim < 2:
        raise DataError(
            f"measurements y must have a leading item axis (N, ...); got {shape_str(yt.shape)}"
        )
    arrays = {"y": yt}
    if x is not None:
        arrays["x"] = _numpy(x, dtype=np.float32)
    for k, v in (params or {}).items():
        arrays[f"params.{k}"] = _numpy(v)
    for k, a in arrays.items():
        if a.shape[0] != yt.shape[0]:
            raise DataError(f"{k} has {a.shape[0]} items but y has {yt.shape[0]}")
    return arrays


def _memory_manifest(arrays: dict[str, np.ndarray], names: Sequence[str] | None) -> dict:
    """The manifest of an in-memory set holding ``arrays`` (leading axis = items)."""
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "n": int(arrays["y"].shape[0]),
        "arrays": {
            k: {"shape": list(a.shape[1:]), "dtype": dtype_name(a)}
            for k, a in arrays.items()
            if not k.startswith("params.")
        },
        "params": {
            k[7:]: {"shape": list(a.shape[1:]), "dtype": dtype_name(a)}
            for k, a in arrays.items()
            if k.startswith("params.")
        },
        "names": list(names) if names is not None else None,
        "source": "arrays",
    }


# -- the set -----------------------------------------------------------------------------------
class MeasurementSet(Dataset):
    r"""A measurement set: items ``{"y", optional "x", optional "params"}`` and its ``.physics``.

    ``MeasurementSet(folder)`` opens a set written by :func:`~selfrecon.data.simulate` /
    :func:`~selfrecon.data.assemble` lazily (memory-mapped shards, at most ``max_open_shards``
    open at once). ``.physics`` is rebuilt from the manifest's spec with
    :func:`selfrecon.physics.build_physics`, tensors restored bit-exactly from ``params.npz``.
    :meth:`from_arrays` builds an in-memory set from arrays.
    """

    def __init__(self, path: str | Path | DiskStore | MemoryStore, max_open_shards: int = 8):
        store = path if isinstance(path, DiskStore | MemoryStore) else None
        self._store = store if store is not None else DiskStore(Path(path), max_open_shards)
        self.path = self._store.path
        self.manifest = self._store.manifest
        self.spec = self._store.spec
        self.names = self.manifest.get("names")

    @classmethod
    def from_arrays(
        cls,
        y,
        physics,
        x=None,
        params: dict | None = None,
        names: Sequence[str] | None = None,
        where: Sequence[str] | str | None = None,
    ) -> MeasurementSet:
        r"""An in-memory set from measurements ``y`` ``(N, ...)`` (complex allowed) and a physics.

        ``physics`` is a :class:`~selfrecon.physics.Physics` or its spec. ``x`` ``(N, C, H, W)``
        is optional ground truth; ``params`` maps names to per-item parameters ``(N, ...)``.
        ``where`` names the source file(s) in error messages. Checks NaN/inf and that ``y`` fits
        the operator (e.g. mask shape). Save it with :meth:`save`.
        """
        spec = physics_spec_of(physics)
        arrays = _input_arrays(y, x, params)
        check_finite(arrays["y"], where)
        phys = build_physics_spec(spec)
        check_fits(phys, arrays["y"], where)
        return cls(MemoryStore(arrays, spec, phys, names))

    def save(self, out_dir: str | Path, shard_size: int = 256, overwrite: bool = False) -> Path:
        """Write this set to ``out_dir`` in the on-disk format (e.g. after :meth:`from_arrays`)."""

        def items():
            for i in range(len(self)):
                yield {k: np.asarray(v) for k, v in self._store.item(i).items()}

        extra = {k: self.manifest.get(k) for k in ("seed", "names", "files") if k in self.manifest}
        extra["source"] = self.manifest.get("source", "arrays")
        return write_set(out_dir, items(), self.spec, extra, shard_size, overwrite)

    # -- Dataset --------------------------------------------------------------------------
    @property
    def physics(self):
        """The :class:`~selfrecon.physics.Physics` the measurements were made with (built once)."""
        if self._store.physics is None:
            self._store.physics = build_physics_spec(self.spec)
        return self._store.physics

    @property
    def has_x(self) -> bool:
        return "x" in self.manifest["arrays"]

    def __len__(self) -> int:
        return int(self.manifest["n"])

    def __getitem__(self, index: int) -> dict:
        i = int(index)
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(
                f"measurement set has {len(self)} items; index {index} is out of range"
            )
        a = self._store.item(i)
        if not np.isfinite(a["y"]).all():
            where = self._store.where(i)
            raise DataError(f"{where}: measurement {i} has NaN/inf values; fix or remove it")
        out = {"y": torch.from_numpy(np.ascontiguousarray(a["y"]))}
        if "x" in a:
            out["x"] = torch.from_numpy(np.ascontiguousarray(a["x"]))
        params = {
            k[7:]: torch.from_numpy(np.ascontiguousarray(v))
            for k, v in a.items()
            if k.startswith("params.")
        }
        if params:
            out["params"] = params
        return out

    def validate(self) -> None:
        """Read every item once (NaN/inf check) — for sets from outside sources."""
        for i in range(len(self)):
            self[i]

    def __repr__(self) -> str:
        src = self.path if self.path is not None else "memory"
        shape = self.manifest["arrays"]["y"]["shape"]
        op = self.spec.get("operator", {}).get("name")
        return f"MeasurementSet({len(self)} × y{tuple(shape)} from {src}, operator={op!r})"


def check_finite(y: np.ndarray, where) -> None:
    """Raise a :class:`DataError` naming the first measurement with NaN/inf values."""
    bad = ~np.isfinite(y.reshape(y.shape[0], -1)).all(axis=1)
    if bad.any():
        i = int(np.argmax(bad))
        src = where[i] if isinstance(where, list | tuple) else (where or "measurements")
        raise DataError(f"{src}: measurement {i} has NaN/inf values; fix or remove it")


def check_fits(physics, y: np.ndarray, where) -> None:
    """Raise a :class:`DataError` when the measurements ``y`` ``(N, ...)`` do not fit the
    physics (mask size, the operator's own shape checks on its adjoint)."""
    src = where[0] if isinstance(where, list | tuple) else (where or "y")
    mask = physics.measured_mask
    item = y.shape[1:]
    if (
        mask is not None
        and mask.dim() >= 2
        and len(item) >= 2
        and tuple(mask.shape[-2:]) != tuple(item[-2:])
    ):
        raise DataError(
            f"mask has shape {shape_str(mask.shape[-2:])} but measurements in {src} are "
            f"{shape_str(item[-2:])} per item; pass the mask used at acquisition"
        )
    try:
        physics.A.adjoint(torch.from_numpy(np.ascontiguousarray(y[:1])))
    except SelfreconError as err:  # the operator's own shape message, with the file named
        msg = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DataError(
            f"measurements in {src} have shape {shape_str(item)} per item, which this physics "
            f"cannot use: {msg}"
        ) from err

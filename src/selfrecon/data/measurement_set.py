r"""Measurement sets on disk: ``simulate`` writes one, ``MeasurementSet`` reads it back lazily.

Layout of a measurement set folder (format version 1)::

    manifest.json          n, per-item shapes/dtypes, physics spec, seed, version, time
    params.npz             the operator's tensors (mask, angles, coil maps, matrix...), referenced
                           from the manifest's physics spec as {"$tensor": "<key>"}
    shards/000000/y.npy    measurements of items 0..shard_size-1 (complex k-space stays complex)
    shards/000000/x.npy    ground truth in network layout (simulations only; evaluation only)
    shards/000000/params.mask.npy   per-item operator parameters, when measurements differ
    shards/000001/...

Shards are plain ``.npy`` files opened with ``mmap_mode="r"``: reading item ``i`` touches only its
bytes, so sets larger than memory work. A set is written to a temporary folder and renamed into
place, so an error never leaves a half-written set behind.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from selfrecon.data._util import atomic_folder
from selfrecon.data.folder import find_files
from selfrecon.data.measured import as_image, measure_item
from selfrecon.data.readers import read_fastmri_kspace, read_image, suffix_of
from selfrecon.errors import ConfigError, DataError, shape_str

__all__ = ["MeasurementSet", "simulate", "assemble", "FORMAT_VERSION"]

FORMAT_VERSION = 1
FORMAT_NAME = "selfrecon-measurement-set"
_TENSOR_REF = "$tensor"


# -- physics specs with tensors <-> JSON + params.npz -----------------------------------------
def _spec_to_json(obj, arrays: dict[str, np.ndarray], key: str):
    """Replace tensors in a spec by references ``{"$tensor": key}``; collect them in ``arrays``."""
    if isinstance(obj, Tensor | np.ndarray):
        a = obj.detach().cpu().numpy() if isinstance(obj, Tensor) else np.asarray(obj)
        arrays[key] = np.ascontiguousarray(a)
        return {_TENSOR_REF: key}
    if isinstance(obj, dict):
        return {
            str(k): _spec_to_json(v, arrays, f"{key}.{k}" if key else str(k))
            for k, v in obj.items()
        }
    if isinstance(obj, list | tuple):
        return [_spec_to_json(v, arrays, f"{key}.{i}") for i, v in enumerate(obj)]
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    raise ConfigError(f"physics spec entry {key!r} of type {type(obj).__name__} cannot be saved")


def _spec_from_json(obj, arrays):
    if isinstance(obj, dict):
        if set(obj) == {_TENSOR_REF}:
            return torch.from_numpy(np.array(arrays[obj[_TENSOR_REF]]))
        return {k: _spec_from_json(v, arrays) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_spec_from_json(v, arrays) for v in obj]
    return obj


def _physics_spec(physics) -> dict:
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


def _build(spec: dict):
    from selfrecon.physics import build_physics

    return build_physics(spec)


def _dtype_name(a: np.ndarray) -> str:
    return np.dtype(a.dtype).name


# -- writing ----------------------------------------------------------------------------------
def _prepare_out(out_dir: str | Path, overwrite: bool) -> Path:
    out = Path(out_dir)
    if out.exists():
        if not out.is_dir():
            raise DataError(f"{out} exists and is not a folder; choose another output folder")
        contents = list(out.iterdir())
        if contents:
            if not overwrite:
                raise DataError(f"{out} is not empty; choose a new folder or pass overwrite=True")
            if not (out / "manifest.json").exists():
                raise DataError(
                    f"{out} is not empty and is not a measurement set; refusing to replace it"
                )
    out.parent.mkdir(parents=True, exist_ok=True)
    return out


class _ShardWriter:
    """Collect items and flush every ``shard_size`` of them as one ``.npy`` per array."""

    def __init__(self, root: Path, shard_size: int):
        if int(shard_size) < 1:
            raise ConfigError(f"shard_size must be ≥ 1, got {shard_size}")
        self.root, self.shard_size = root, int(shard_size)
        self.buf: dict[str, list[np.ndarray]] = {}
        self.shards: list[dict] = []
        self.n = 0
        self.meta: dict[str, dict] = {}

    def add(self, arrays: dict[str, np.ndarray]) -> None:
        for k, a in arrays.items():
            info = {"shape": list(a.shape), "dtype": _dtype_name(a)}
            if k not in self.meta:
                self.meta[k] = info
            elif self.meta[k] != info:
                raise DataError(
                    f"item {self.n} has {k} of shape {shape_str(a.shape)} {info['dtype']} but "
                    "earlier "
                    f"items are {shape_str(self.meta[k]['shape'])} {self.meta[k]['dtype']}"
                )
            self.buf.setdefault(k, []).append(a)
        if set(arrays) != set(self.buf):
            raise DataError(
                f"item {self.n} has arrays {sorted(arrays)} but earlier items {sorted(self.buf)}"
            )
        self.n += 1
        if len(next(iter(self.buf.values()))) >= self.shard_size:
            self.flush()

    def flush(self) -> None:
        if not self.buf or not next(iter(self.buf.values())):
            return
        idx = len(self.shards)
        rel = f"shards/{idx:06d}"
        d = self.root / rel
        d.mkdir(parents=True)
        count = len(next(iter(self.buf.values())))
        for k, items in self.buf.items():
            np.save(d / f"{k}.npy", np.stack(items))
        self.shards.append({"dir": rel, "start": self.n - count, "n": count})
        self.buf = {k: [] for k in self.buf}


def _write_set(
    out_dir: str | Path,
    items,
    spec: dict,
    manifest_extra: dict,
    shard_size: int,
    overwrite: bool,
) -> Path:
    out = _prepare_out(out_dir, overwrite)
    with atomic_folder(out) as tmp:
        writer = _ShardWriter(tmp, shard_size)
        for arrays in items:
            writer.add(arrays)
        writer.flush()
        if writer.n == 0:
            raise DataError("no items to write (the image dataset is empty)")
        tensors: dict[str, np.ndarray] = {}
        spec_json = _spec_to_json(spec, tensors, "")
        np.savez(tmp / "params.npz", **tensors)
        import selfrecon

        arrays_meta = {k: v for k, v in writer.meta.items() if not k.startswith("params.")}
        params_meta = {
            k[len("params.") :]: v for k, v in writer.meta.items() if k.startswith("params.")
        }
        noise = spec.get("noise") if isinstance(spec, dict) else None
        manifest = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "n": writer.n,
            "shard_size": writer.shard_size,
            "shards": writer.shards,
            "arrays": arrays_meta,
            "params": params_meta,
            "physics": spec_json,
            "noise": _spec_to_json(noise, {}, "noise") if noise is not None else None,
            "selfrecon_version": getattr(selfrecon, "__version__", "unknown"),
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            **manifest_extra,
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return out


def simulate(
    images: Dataset | Tensor,
    physics,
    out_dir: str | Path,
    seed: int = 0,
    shard_size: int = 256,
    save_x: bool = True,
    overwrite: bool = False,
    params_fn: Callable[[int, torch.Generator], dict[str, Tensor]] | None = None,
) -> Path:
    r"""Simulate ``y_i = N(A x_i)`` for every image and write a measurement set to ``out_dir``.

    The measurements are exactly those of :class:`~selfrecon.data.MeasuredDataset` with the same
    ``seed`` (noise from a generator seeded by ``(seed, i)``). ``x`` (network layout) is stored when
    ``save_x`` — for evaluation only. ``params_fn(i, generator)`` may return per-item operator
    parameters (leading axis 1), stored per item and returned under ``item["params"]``.
    Refuses a non-empty ``out_dir`` unless ``overwrite=True``. Returns the folder.
    """
    from selfrecon.data._util import item_generator

    if isinstance(images, Tensor):
        images = list(images)
    names = getattr(images, "names", None)

    def items():
        for i in range(len(images)):
            params = (
                params_fn(i, item_generator(seed, 2_000_003, i)) if params_fn is not None else None
            )
            y, x = measure_item(physics, as_image(images[i]), seed, i, params)
            arrays = {"y": y.detach().cpu().numpy()}
            if save_x:
                arrays["x"] = x.detach().cpu().numpy()
            for k, v in (params or {}).items():
                arrays[f"params.{k}"] = torch.as_tensor(v)[0].detach().cpu().numpy()
            yield arrays

    extra = {"seed": int(seed), "source": "simulate", "names": list(names) if names else None}
    return _write_set(out_dir, items(), physics.spec(), extra, shard_size, overwrite)


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
            k: {"shape": list(a.shape[1:]), "dtype": _dtype_name(a)}
            for k, a in arrays.items()
            if not k.startswith("params.")
        },
        "params": {
            k[7:]: {"shape": list(a.shape[1:]), "dtype": _dtype_name(a)}
            for k, a in arrays.items()
            if k.startswith("params.")
        },
        "names": list(names) if names is not None else None,
        "source": "arrays",
    }


# -- reading ----------------------------------------------------------------------------------
class MeasurementSet(Dataset):
    r"""A measurement set: items ``{"y", optional "x", optional "params"}`` and its ``.physics``.

    ``MeasurementSet(folder)`` opens a set written by :func:`simulate`/:func:`assemble` lazily
    (memory-mapped shards, at most ``max_open_shards`` open at once). ``.physics`` is rebuilt from
    the manifest's spec with :func:`selfrecon.physics.build_physics`, tensors restored bit-exactly
    from ``params.npz``. :meth:`from_arrays` builds an in-memory set from arrays.
    """

    def __init__(self, path: str | Path, max_open_shards: int = 8):
        self.path = Path(path)
        mpath = self.path / "manifest.json"
        if not mpath.is_file():
            raise DataError(
                f"{self.path} is not a measurement set (no manifest.json); create one with "
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
        with np.load(self.path / "params.npz", allow_pickle=False) as z:
            self._tensors = {k: z[k] for k in z.files}
        self.spec = _spec_from_json(m["physics"], self._tensors)
        self._physics = None
        self._arrays: dict[str, np.ndarray] | None = None
        self._open: OrderedDict[int, dict[str, np.ndarray]] = OrderedDict()
        self._max_open = int(max_open_shards)
        self._starts = np.array([s["start"] for s in m["shards"]], dtype=np.int64)
        self.names = m.get("names")

    # -- construction from arrays ---------------------------------------------------------
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
        spec = _physics_spec(physics)
        arrays = _input_arrays(y, x, params)
        yt = arrays["y"]
        _check_finite(yt, where)
        phys = _build(spec)
        _check_fits(phys, yt, where)
        obj = cls.__new__(cls)
        obj.path = None
        obj.manifest = _memory_manifest(arrays, names)
        obj.spec = spec
        obj._physics = phys
        obj._arrays = arrays
        obj._tensors = {}
        obj._open = OrderedDict()
        obj._max_open = 0
        obj._starts = np.zeros(1, dtype=np.int64)
        obj.names = obj.manifest["names"]
        return obj

    def save(self, out_dir: str | Path, shard_size: int = 256, overwrite: bool = False) -> Path:
        """Write this set to ``out_dir`` in the on-disk format (e.g. after :meth:`from_arrays`)."""

        def items():
            for i in range(len(self)):
                yield {k: np.asarray(self._item_arrays(i)[k]) for k in self._keys()}

        extra = {k: self.manifest.get(k) for k in ("seed", "names", "files") if k in self.manifest}
        extra["source"] = self.manifest.get("source", "arrays")
        return _write_set(out_dir, items(), self.spec, extra, shard_size, overwrite)

    # -- Dataset --------------------------------------------------------------------------
    @property
    def physics(self):
        """The :class:`~selfrecon.physics.Physics` the measurements were made with (built once)."""
        if self._physics is None:
            self._physics = _build(self.spec)
        return self._physics

    @property
    def has_x(self) -> bool:
        return "x" in self.manifest["arrays"]

    def __len__(self) -> int:
        return int(self.manifest["n"])

    def _keys(self) -> list[str]:
        return list(self.manifest["arrays"]) + [
            f"params.{k}" for k in self.manifest.get("params", {})
        ]

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

    def _item_arrays(self, i: int) -> dict[str, np.ndarray]:
        if self._arrays is not None:
            return {k: a[i] for k, a in self._arrays.items()}
        s = int(np.searchsorted(self._starts, i, side="right") - 1)
        arrays = self._shard(s)
        j = i - int(self._starts[s])
        return {k: np.array(a[j]) for k, a in arrays.items()}

    def __getitem__(self, index: int) -> dict:
        i = int(index)
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(
                f"measurement set has {len(self)} items; index {index} is out of range"
            )
        a = self._item_arrays(i)
        if not np.isfinite(a["y"]).all():
            where = self._where(i)
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

    def _where(self, i: int) -> str:
        if self._arrays is not None or self.path is None:
            return "measurements"
        s = int(np.searchsorted(self._starts, i, side="right") - 1)
        return str(self.path / self.manifest["shards"][s]["dir"] / "y.npy")

    def validate(self) -> None:
        """Read every item once (NaN/inf check) — for sets from outside sources."""
        for i in range(len(self)):
            self[i]

    def __repr__(self) -> str:
        src = self.path if self.path is not None else "memory"
        shape = self.manifest["arrays"]["y"]["shape"]
        op = self.spec.get("operator", {}).get("name")
        return f"MeasurementSet({len(self)} × y{tuple(shape)} from {src}, operator={op!r})"


def _check_finite(y: np.ndarray, where) -> None:
    bad = ~np.isfinite(y.reshape(y.shape[0], -1)).all(axis=1)
    if bad.any():
        i = int(np.argmax(bad))
        src = where[i] if isinstance(where, list | tuple) else (where or "measurements")
        raise DataError(f"{src}: measurement {i} has NaN/inf values; fix or remove it")


def _check_fits(physics, y: np.ndarray, where) -> None:
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
    except Exception as err:  # noqa: BLE001 - the operator's own shape message, made one line
        msg = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DataError(
            f"measurements in {src} have shape {shape_str(item)} per item, which this physics "
            f"cannot use: {msg}"
        ) from err


# -- assembling from the user's files ----------------------------------------------------------
def _load_measurement(f: Path, key: str) -> np.ndarray:
    suf = suffix_of(f)
    try:
        if suf == ".npy":
            return np.load(f, allow_pickle=False)
        if suf == ".npz":
            with np.load(f, allow_pickle=False) as z:
                k = key if key in z.files else (z.files[0] if len(z.files) == 1 else None)
                if k is None:
                    raise DataError(f"{f}: has arrays {z.files}; name the one to use with key=")
                return z[k]
        if suf in (".h5", ".hdf5"):
            return read_fastmri_kspace(f, key=key).numpy()
    except DataError:
        raise
    except (OSError, ValueError) as err:
        raise DataError(f"cannot read {f}: {type(err).__name__}: {err}") from err
    raise DataError(
        f"{f}: unsupported measurement file type {suf!r}; use .npy, .npz or fastMRI .h5"
    )


def _load_param_file(f: str | Path, what: str) -> Tensor:
    f = Path(f)
    if not f.is_file():
        raise DataError(f"{what} file {f} does not exist")
    if suffix_of(f) in (".npy", ".npz"):
        a = _load_measurement(f, what)
    elif suffix_of(f) in (".txt", ".csv"):
        a = np.loadtxt(f, delimiter="," if suffix_of(f) == ".csv" else None, ndmin=1)
    else:
        a = read_image(f)
        a = a[0] if a.shape[0] == 1 else a
    a = np.asarray(a)
    if not np.isfinite(a).all():
        raise DataError(f"{what} file {f} has NaN/inf values")
    return torch.from_numpy(np.ascontiguousarray(a.astype(np.float32)))


def _gather_measurements(
    files: list[Path], key: str, stacked: bool
) -> tuple[list[np.ndarray], list[str], list[str]]:
    """Items, source file per item and item names from ``files`` (HDF5 files always stacked)."""
    ys, where, names = [], [], []
    for f in files:
        a = _load_measurement(f, key)
        h5 = suffix_of(f) in (".h5", ".hdf5")
        stem = f.name[: -len(suffix_of(f))]
        if not np.isfinite(a).all():
            raise DataError(f"{f}: measurement has NaN/inf values; fix or remove the file")
        if stacked or h5:
            ys.extend(list(a))
            where.extend([str(f)] * a.shape[0])
            names.extend(f"{stem}_{i:03d}" for i in range(a.shape[0]))
        else:
            ys.append(a)
            where.append(str(f))
            names.append(stem)
    return ys, where, names


def _check_same_shapes(ys: list[np.ndarray], where: list[str]) -> None:
    """Raise a :class:`DataError` naming the first measurement whose shape differs."""
    shapes = {tuple(a.shape) for a in ys}
    if len(shapes) > 1:
        first = ys[0].shape
        j = next(i for i, a in enumerate(ys) if a.shape != first)
        raise DataError(
            f"measurements have mixed shapes: {where[0]} is {shape_str(first)} but {where[j]} is "
            f"{shape_str(ys[j].shape)}"
        )


def _load_mask(mask_file: str | Path, y: np.ndarray, where: list[str]) -> Tensor:
    """The mask in ``mask_file``, checked to match the measurements' last two axes."""
    mask = _load_param_file(mask_file, "mask")
    item = y.shape[1:]
    if mask.dim() < 2 or len(item) < 2 or tuple(mask.shape[-2:]) != tuple(item[-2:]):
        raise DataError(
            f"mask in {mask_file} has shape {shape_str(mask.shape)} but measurements in "
            f"{where[0]} "
            f"are {shape_str(item)}; pass the mask used at acquisition"
        )
    return mask


def _load_angles(angles_file: str | Path, y: np.ndarray, where: list[str]) -> Tensor:
    """The angles in ``angles_file`` (flattened), checked against the sinograms' view count."""
    angles = _load_param_file(angles_file, "angles").reshape(-1)
    if y.ndim >= 3 and y.shape[-2] != angles.numel():
        raise DataError(
            f"angles in {angles_file} list {angles.numel()} views but sinograms in "
            f"{where[0]} have "
            f"{y.shape[-2]} (shape {shape_str(y.shape[1:])}, views on the second-to-last axis)"
        )
    return angles


def _with_channel_axis(y: np.ndarray, spec: dict, where: list[str]) -> np.ndarray:
    """``y`` with a channel axis added when its (H, W) items only fit the physics as (1, H, W)."""
    if y.ndim == 3:
        try:
            _check_fits(_build(spec), y, where)
        except DataError:
            y = y[:, None]
    return y


def assemble(
    measurements: str | Path | Sequence[str | Path],
    physics_spec,
    out_dir: str | Path | None = None,
    mask_file: str | Path | None = None,
    angles_file: str | Path | None = None,
    key: str = "kspace",
    stacked: bool | None = None,
    overwrite: bool = False,
    shard_size: int = 256,
) -> MeasurementSet:
    r"""Build a measurement set from the user's real measurements.

    Parameters
    ----------
    measurements : folder, glob, file or list of ``.npy``/``.npz`` files (k-space, sinograms,
        vectors; complex kept) or fastMRI ``.h5`` files (``kspace`` → one item per slice).
    physics_spec : Physics or spec dict (``{"kind", "operator", "noise"}`` or a bare operator spec).
    mask_file, angles_file : optional files (``.npy``, ``.npz``, image; ``.txt``/``.csv``)
        inserted as the operator's ``mask`` / ``angles``.
    stacked : whether each file holds several items along its first axis. Default: a file named
        directly is stacked; files found in a folder/glob/list hold one measurement each; HDF5 files
        are always stacked (one item per slice).
    out_dir : where to write the set; ``None`` keeps it in memory.

    Errors name the file and the problem: NaN in a measurement, mask shape not matching ``y``,
    number of angles not matching the sinograms' views.
    """
    suffixes = (".npy", ".npz", ".h5", ".hdf5")
    files = find_files(measurements, suffixes=suffixes)
    if stacked is None:  # one file named directly: its first axis lists the items
        stacked = isinstance(measurements, str | Path) and Path(measurements).is_file()
    spec = _physics_spec(physics_spec)
    spec = {**spec, "operator": dict(spec["operator"])}
    ys, where, names = _gather_measurements(files, key, stacked)
    _check_same_shapes(ys, where)
    y = np.stack(ys)
    if mask_file is not None:
        spec["operator"]["mask"] = _load_mask(mask_file, y, where)
    if angles_file is not None:
        spec["operator"]["angles"] = _load_angles(angles_file, y, where)
    y = _with_channel_axis(y, spec, where)
    ms = MeasurementSet.from_arrays(y, spec, names=names, where=where)
    ms.manifest["source"] = "assemble"
    ms.manifest["files"] = [str(f) for f in files]
    if out_dir is not None:
        out = ms.save(out_dir, shard_size=shard_size, overwrite=overwrite)
        return MeasurementSet(out)
    return ms

r"""Writing measurement sets: shards of ``.npy`` files, a manifest, the operator's arrays.

Layout of a measurement set folder (format version 1)::

    manifest.json          n, per-item shapes/dtypes, physics spec, seed, version, time
    params.npz             the operator's tensors (mask, angles, coil maps, matrix...), referenced
                           from the manifest's physics spec as {"$tensor": "<key>"}
    shards/000000/y.npy    measurements of items 0..shard_size-1 (complex k-space stays complex)
    shards/000000/x.npy    ground truth in network layout (simulations only; evaluation only)
    shards/000000/params.mask.npy   per-item operator parameters, when measurements differ
    shards/000001/...

A set is written to a temporary folder and renamed into place, so an error never leaves a
half-written set behind. :func:`simulate` writes one from images and a physics.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from selfrecon.data._util import atomic_folder
from selfrecon.data.measured import as_image, measure_item
from selfrecon.data.spec_io import spec_to_json
from selfrecon.errors import ConfigError, DataError, shape_str

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "simulate", "write_set", "dtype_name"]

FORMAT_VERSION = 1
FORMAT_NAME = "selfrecon-measurement-set"


def dtype_name(a: np.ndarray) -> str:
    return np.dtype(a.dtype).name


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
            info = {"shape": list(a.shape), "dtype": dtype_name(a)}
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


def write_set(
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
        spec_json = spec_to_json(spec, tensors, "")
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
            "noise": spec_to_json(noise, {}, "noise") if noise is not None else None,
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
    return write_set(out_dir, items(), physics.spec(), extra, shard_size, overwrite)

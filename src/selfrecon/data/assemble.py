r"""``assemble``: a measurement set from the user's own files (k-space, sinograms, noisy images).

Measurements come from ``.npy``/``.npz`` files or fastMRI ``.h5`` files; the operator's parameters
(mask, angles) from their own files; every problem is an error naming the file.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from selfrecon.data.folder import find_files
from selfrecon.data.measurement_set import MeasurementSet
from selfrecon.data.readers import read_fastmri_kspace, read_image, suffix_of
from selfrecon.data.spec_io import build_physics_spec, physics_spec_of
from selfrecon.errors import DataError, shape_str

__all__ = ["assemble"]


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


def _with_channel_axis(y: np.ndarray, spec: dict) -> np.ndarray:
    """``y`` ``(N, H, W)`` with the channel axis its operator's measurements have (declared by
    ``measurement_ndim``: images, k-space and sinograms are ``(C, H, W)`` per item)."""
    if y.ndim == 3 and build_physics_spec(spec).operator.measurement_ndim == 3:
        return y[:, None]
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
    spec = physics_spec_of(physics_spec)
    spec = {**spec, "operator": dict(spec["operator"])}
    ys, where, names = _gather_measurements(files, key, stacked)
    _check_same_shapes(ys, where)
    y = np.stack(ys)
    if mask_file is not None:
        spec["operator"]["mask"] = _load_mask(mask_file, y, where)
    if angles_file is not None:
        spec["operator"]["angles"] = _load_angles(angles_file, y, where)
    y = _with_channel_axis(y, spec)
    ms = MeasurementSet.from_arrays(y, spec, names=names, where=where)
    ms.manifest["source"] = "assemble"
    ms.manifest["files"] = [str(f) for f in files]
    if out_dir is not None:
        out = ms.save(out_dir, shard_size=shard_size, overwrite=overwrite)
        return MeasurementSet(out)
    return ms

r"""Read and write the user's image files: PNG/JPEG, TIFF, NPY/NPZ, DICOM, NIfTI, HDF5 (fastMRI).

All readers return float32 NumPy arrays laid out ``(C, H, W)`` and never modify the file.

* Integer PNG/JPEG/TIFF/NPY pixels are divided by their type's maximum (``uint8`` → ``/255``), so a
  photograph lands in [0, 1]; float files are returned as stored.
* DICOM pixels are converted to physical units with ``RescaleSlope``/``RescaleIntercept``
  (Hounsfield units for CT) — choose a normalisation (``minmax``/``percentile``) in
  :class:`ImageFolder`.
* Volumes (NIfTI, 3-D NPY/TIFF stacks, fastMRI HDF5) hold several images; :func:`read_slices`
  yields them one by one, :func:`read_image` insists on exactly one.

Every failure is a one-line :class:`~selfrecon.errors.DataError` naming the file.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from selfrecon.data._util import require
from selfrecon.errors import DataError, shape_str

__all__ = [
    "IMAGE_SUFFIXES",
    "suffix_of",
    "read_image",
    "read_slices",
    "write_image",
    "read_fastmri_kspace",
    "read_fastmri_images",
]

IMAGE_SUFFIXES = (
    ".png",
    ".jpg",
    ".jpeg",
    ".bmp",
    ".tif",
    ".tiff",
    ".npy",
    ".npz",
    ".dcm",
    ".nii",
    ".nii.gz",
    ".h5",
    ".hdf5",
)


def suffix_of(path: str | Path) -> str:
    """Lower-case suffix, with ``.nii.gz`` kept whole."""
    name = Path(path).name.lower()
    if name.endswith(".nii.gz"):
        return ".nii.gz"
    return Path(name).suffix


def _scale_int(a: np.ndarray) -> np.ndarray:
    if a.dtype == np.bool_:
        return a.astype(np.float32)
    if a.dtype.kind in "ui":
        return a.astype(np.float32) / float(np.iinfo(a.dtype).max)
    if a.dtype.kind == "c":
        raise DataError("complex data is not an image; read k-space with read_fastmri_kspace")
    return a.astype(np.float32)


def _chw(a: np.ndarray) -> np.ndarray:
    """2-D → (1, H, W); (H, W, 3|4) → (3|4, H, W); (1|3|4, H, W) kept."""
    if a.ndim == 2:
        return a[None]
    if a.ndim == 3:
        if a.shape[-1] in (3, 4) and a.shape[0] not in (1, 3, 4):
            return np.moveaxis(a, -1, 0)
        return a
    raise DataError(
        f"array of shape {shape_str(a.shape)} is not an image (need (H, W) or (C, H, W))"
    )


def _stack(a: np.ndarray, axis: int) -> Iterator[tuple[str, np.ndarray]]:
    """Split an array into images: 2-D → one; colour 3-D → one; other 3-D → slices along ``axis``;
    4-D ``(N, C, H, W)`` → N images."""
    if a.ndim == 2 or (a.ndim == 3 and (a.shape[-1] in (3, 4) or a.shape[0] in (1, 3, 4))):
        yield "", _chw(a)
    elif a.ndim == 3:
        moved = np.moveaxis(a, axis, 0)
        width = max(3, len(str(moved.shape[0] - 1)))
        for i in range(moved.shape[0]):
            yield f"_{i:0{width}d}", moved[i][None]
    elif a.ndim == 4:
        width = max(3, len(str(a.shape[0] - 1)))
        for i in range(a.shape[0]):
            yield f"_{i:0{width}d}", _chw(a[i])
    else:
        raise DataError(f"array of shape {shape_str(a.shape)} is not an image or a stack of images")


def _read_pillow(path: Path, axis: int, key: str | None) -> Iterator[tuple[str, np.ndarray]]:
    """Images from a PNG/JPEG/BMP file (decoded by Pillow through imageio)."""
    import imageio.v3 as iio  # installed with scikit-image

    a = np.asarray(iio.imread(str(path), plugin="pillow"))
    yield from _stack(_scale_int(a), axis)


def _read_tiff(path: Path, axis: int, key: str | None) -> Iterator[tuple[str, np.ndarray]]:
    """Images from a TIFF file or stack."""
    import tifffile

    yield from _stack(_scale_int(np.asarray(tifffile.imread(str(path)))), axis)


def _read_npy(path: Path, axis: int, key: str | None) -> Iterator[tuple[str, np.ndarray]]:
    """Images from an ``.npy`` array."""
    yield from _stack(_scale_int(np.load(str(path), allow_pickle=False)), axis)


def _read_npz(path: Path, axis: int, key: str | None) -> Iterator[tuple[str, np.ndarray]]:
    """Images from the arrays of an ``.npz`` file (only ``key`` when given)."""
    with np.load(str(path), allow_pickle=False) as z:
        keys = [key] if key is not None else list(z.files)
        for k in keys:
            if k not in z.files:
                raise DataError(f"has no array {k!r} (it has {z.files})")
            for suffix, img in _stack(_scale_int(z[k]), axis):
                yield (f"_{k}{suffix}" if len(keys) > 1 else suffix), img


def _read_dicom(path: Path, axis: int, key: str | None) -> Iterator[tuple[str, np.ndarray]]:
    """Images from a DICOM file, in physical units (multi-frame files give one per frame)."""
    pydicom = require("pydicom", f"reading DICOM file {path.name}")
    ds = pydicom.dcmread(str(path))
    a = ds.pixel_array.astype(np.float32)
    a = a * float(getattr(ds, "RescaleSlope", 1.0) or 1.0) + float(
        getattr(ds, "RescaleIntercept", 0.0) or 0.0
    )
    if a.ndim == 3 and getattr(ds, "SamplesPerPixel", 1) == 1:  # multi-frame
        yield from _stack(a, 0)
    else:
        yield from _stack(a, axis)


def _read_nifti(path: Path, axis: int, key: str | None) -> Iterator[tuple[str, np.ndarray]]:
    """Slices along ``axis`` of a 2-D or 3-D NIfTI volume."""
    nib = require("nibabel", f"reading NIfTI file {path.name}")
    img = nib.load(str(path))
    a = np.asarray(img.dataobj, dtype=np.float32)
    if a.ndim == 4 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim == 2:
        yield "", a[None]
    elif a.ndim == 3:
        moved = np.moveaxis(a, axis, 0)
        width = max(3, len(str(moved.shape[0] - 1)))
        for i in range(moved.shape[0]):
            yield f"_{i:0{width}d}", np.ascontiguousarray(moved[i])[None]
    else:
        raise DataError(f"NIfTI volume of shape {shape_str(a.shape)} is not 2-D or 3-D")


def _read_hdf5(path: Path, axis: int, key: str | None) -> Iterator[tuple[str, np.ndarray]]:
    """Slices of a fastMRI HDF5 file's reference images (``key``, default reconstruction_esc)."""
    imgs = read_fastmri_images(path, key=key or "reconstruction_esc")
    width = max(3, len(str(imgs.shape[0] - 1)))
    for i in range(imgs.shape[0]):
        yield f"_{i:0{width}d}", imgs[i][None]


_READERS = {
    ".png": _read_pillow,
    ".jpg": _read_pillow,
    ".jpeg": _read_pillow,
    ".bmp": _read_pillow,
    ".tif": _read_tiff,
    ".tiff": _read_tiff,
    ".npy": _read_npy,
    ".npz": _read_npz,
    ".dcm": _read_dicom,
    ".nii": _read_nifti,
    ".nii.gz": _read_nifti,
    ".h5": _read_hdf5,
    ".hdf5": _read_hdf5,
}


def _read_raw(path: Path, axis: int, key: str | None) -> Iterator[tuple[str, np.ndarray]]:
    """Yield ``(name suffix, image)`` pairs from ``path`` with the reader for its suffix."""
    suf = suffix_of(path)
    reader = _READERS.get(suf)
    if reader is None:
        raise DataError(f"unsupported file type {suf!r}; use one of {', '.join(IMAGE_SUFFIXES)}")
    yield from reader(path, axis, key)


def read_slices(
    path: str | Path, axis: int = -1, key: str | None = None
) -> list[tuple[str, np.ndarray]]:
    """All images in a file as ``[(name, (C, H, W) float32)]``.

    ``name`` is the file name without suffix, plus ``_012`` for slice 12 of a volume/stack (slices
    are taken along ``axis`` for NIfTI and 3-D arrays) and ``_key`` for NPZ files with several
    arrays.
    ``key`` selects one NPZ array or the HDF5 dataset (default ``reconstruction_esc``).
    NaN/inf values raise a :class:`DataError`.
    """
    path = Path(path)
    stem = path.name[: -len(suffix_of(path))] if suffix_of(path) else path.name
    if suffix_of(path) not in IMAGE_SUFFIXES:
        raise DataError(
            f"{path}: unsupported file type {suffix_of(path) or '(none)'!r}; "
            f"use one of {', '.join(IMAGE_SUFFIXES)}"
        )
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        items = [
            (stem + s, np.ascontiguousarray(a, dtype=np.float32))
            for s, a in _read_raw(path, axis, key)
        ]
    except DataError as err:
        msg = str(err)
        raise DataError(msg if msg.startswith(str(path)) else f"{path}: {msg}") from err
    except ImportError:
        raise
    except Exception as err:  # noqa: BLE001 - any decoder failure means "cannot read this file"
        detail = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise DataError(f"cannot read {path}: {type(err).__name__}: {detail}".rstrip(": ")) from err
    if not items:
        raise DataError(f"{path}: contains no image")
    for name, a in items:
        if not np.isfinite(a).all():
            bad = int((~np.isfinite(a)).sum())
            raise DataError(
                f"{path}: image {name} has {bad} NaN/inf value(s); fix or remove the file"
            )
    return items


def read_image(path: str | Path, key: str | None = None) -> np.ndarray:
    """One image ``(C, H, W)`` float32 (scaling: module docs); a volume is a DataError."""
    items = read_slices(path, key=key)
    if len(items) != 1:
        raise DataError(
            f"{path}: holds {len(items)} images, not one; use ImageFolder (slices along axis=) "
            "or read_slices"
        )
    return items[0][1]


def write_image(path: str | Path, array, overwrite: bool = False) -> Path:
    """Write one image ``(C, H, W)`` or ``(H, W)`` (tensor or array) by suffix.

    ``.png``: values clipped to [0, 1] and stored as 8-bit (grey, RGB); ``.tif``/``.tiff``: float32
    as is; ``.npy``: float32 as is. An existing file is never replaced unless ``overwrite=True``.
    """
    path = Path(path)
    suf = suffix_of(path)
    if suf not in (".png", ".tif", ".tiff", ".npy"):
        raise DataError(
            f"{path}: cannot write {suf or '(no suffix)'!r}; use .png, .tif/.tiff or .npy"
        )
    if path.exists() and not overwrite:
        raise DataError(
            f"{path} already exists; choose another output folder or pass overwrite=True"
        )
    a = array.detach().cpu().numpy() if isinstance(array, torch.Tensor) else np.asarray(array)
    a = np.asarray(a, dtype=np.float32)
    if a.ndim == 3 and a.shape[0] == 1:
        a = a[0]
    elif a.ndim == 3 and a.shape[0] in (3, 4):
        a = np.moveaxis(a, 0, -1)
    elif a.ndim != 2:
        raise DataError(f"{path}: cannot write an array of shape {shape_str(a.shape)} as an image")
    path.parent.mkdir(parents=True, exist_ok=True)
    if suf == ".png":
        import imageio.v3 as iio

        u8 = np.round(np.clip(np.nan_to_num(a), 0.0, 1.0) * 255.0).astype(np.uint8)
        iio.imwrite(str(path), u8, extension=".png")
    elif suf in (".tif", ".tiff"):
        import tifffile

        tifffile.imwrite(str(path), a)
    else:
        np.save(str(path), a)
    return path


def read_fastmri_kspace(path: str | Path, key: str = "kspace") -> torch.Tensor:
    """fastMRI single-coil k-space ``(slices, H, W)`` complex → ``(slices, 1, H, W)`` complex64.

    The fastMRI layout (Zbontar et al., arXiv:1811.08839, §4): dataset ``kspace`` of shape
    ``(slices, H, W)`` (single coil) or ``(slices, coils, H, W)`` (multi-coil), complex.
    """
    h5py = require("h5py", f"reading HDF5 file {Path(path).name}")
    try:
        with h5py.File(str(path), "r") as f:
            if key not in f:
                raise DataError(f"{path}: has no dataset {key!r} (it has {sorted(f.keys())})")
            k = np.asarray(f[key])
    except DataError:
        raise
    except Exception as err:  # noqa: BLE001
        raise DataError(f"cannot read {path}: {type(err).__name__}: {err}") from err
    if not np.iscomplexobj(k):
        raise DataError(f"{path}: dataset {key!r} is real ({k.dtype}); fastMRI k-space is complex")
    if k.ndim == 3:
        k = k[:, None]
    if k.ndim != 4:
        raise DataError(
            f"{path}: k-space has shape {shape_str(k.shape)}; expected (slices, [coils,] H, W)"
        )
    if not np.isfinite(k).all():
        raise DataError(f"{path}: k-space has NaN/inf values")
    return torch.from_numpy(np.ascontiguousarray(k.astype(np.complex64)))


def read_fastmri_images(path: str | Path, key: str = "reconstruction_esc") -> np.ndarray:
    """fastMRI reference images ``(slices, H, W)`` float32 from ``reconstruction_esc`` (single-coil)
    or ``reconstruction_rss`` (multi-coil), as stored (not normalised)."""
    h5py = require("h5py", f"reading HDF5 file {Path(path).name}")
    with h5py.File(str(path), "r") as f:
        if key not in f:
            raise DataError(f"has no dataset {key!r} (it has {sorted(f.keys())})")
        a = np.asarray(f[key])
    if np.iscomplexobj(a):
        a = np.abs(a)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3:
        raise DataError(f"dataset {key!r} has shape {shape_str(a.shape)}; expected (slices, H, W)")
    return a.astype(np.float32)

"""File-level calibration: read a noisy image, calibrate, write the denoised image and the curve.

This is what ``selfrecon calibrate noisy.png --denoiser median --grid 1:6 [--truth clean.png]
-o out/`` calls; the CLI only parses arguments.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from selfrecon.classical.calibrate import Result, calibrate, parse_grid
from selfrecon.errors import DataError, shape_str

__all__ = ["calibrate_files", "read_image", "write_image", "OUTPUT_NAMES"]

OUTPUT_NAMES = ("denoised.png", "denoised.npy", "calibration.csv", "calibration.png")
_TIFF = (".tif", ".tiff")
_SUPPORTED = (".png", ".jpg", ".jpeg", ".bmp", ".npy", *_TIFF)


def read_image(path: str | Path, what: str = "image") -> tuple[np.ndarray, float]:
    """Read PNG/JPEG/BMP (scikit-image), TIFF (tifffile) or NPY into a float64 ``(H, W)`` /
    ``(H, W, C)`` array. Integer images are scaled to [0, 1] (``img_as_float``); float data keep
    their values. Returns ``(image, data_range)`` with data_range 1 for integer files and
    ``max(1, max − min)`` for float data. Channel-first NPY/TIFF ``(C, H, W)`` with C ≤ 4 are
    transposed; an alpha channel is dropped."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{what} not found: {path}; check the path")
    ext = path.suffix.lower()
    if ext not in _SUPPORTED:
        raise DataError(
            f"cannot read {what} {path}: unsupported extension {ext!r}; use PNG, TIFF or NPY"
        )
    try:
        if ext == ".npy":
            a = np.load(path, allow_pickle=False)
        elif ext in _TIFF:
            import tifffile

            a = tifffile.imread(path)
        else:
            from skimage import io

            a = io.imread(path)
    except Exception as err:  # unreadable / corrupt file: say which and why, in one line
        raise DataError(f"cannot read {what} {path}: {err}") from err
    a = np.asarray(a)
    a = np.squeeze(a)
    if a.ndim == 3 and a.shape[0] <= 4 < min(a.shape[1:]):
        a = np.moveaxis(a, 0, -1)  # (C, H, W) → (H, W, C)
    if a.ndim == 3 and a.shape[-1] in (2, 4):
        a = a[..., :-1]  # drop alpha (grey+alpha or RGBA)
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] > 4):
        raise DataError(
            f"{what} {path} has shape {shape_str(a.shape)}; expected one image (H, W) or (H, W, C)"
        )
    if np.issubdtype(a.dtype, np.integer) or a.dtype == bool:
        from skimage.util import img_as_float

        return img_as_float(a).astype(np.float64), 1.0
    if not np.issubdtype(a.dtype, np.floating):
        raise DataError(f"{what} {path} has data type {a.dtype}; expected numbers")
    a = a.astype(np.float64)
    if not np.isfinite(a).all():
        raise DataError(f"{what} {path} contains NaN or infinite values")
    return a, max(1.0, float(a.max() - a.min()))


def write_image(path: str | Path, image: np.ndarray) -> Path:
    """Write ``image`` as 8-bit PNG (values clipped to [0, 1]; data outside [0, 1] are min–max
    scaled first), as float32 NPY, or as float32 TIFF, chosen by the extension."""
    path = Path(path)
    ext = path.suffix.lower()
    if ext == ".npy":
        np.save(path, np.asarray(image, np.float32))
    elif ext in _TIFF:
        import tifffile

        tifffile.imwrite(path, np.asarray(image, np.float32))
    else:
        from skimage import io

        a = np.asarray(image, np.float64)
        lo, hi = float(a.min()), float(a.max())
        if lo < -0.05 or hi > 1.05:  # not a [0, 1] image: scale for display
            a = (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
        io.imsave(path, np.round(np.clip(a, 0, 1) * 255).astype(np.uint8), check_contrast=False)
    return path


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def calibrate_files(
    noisy_path: str | Path,
    denoiser: str,
    grid: str | Sequence[float] | None,
    out_dir: str | Path,
    truth_path: str | Path | None = None,
    overwrite: bool = False,
    width: int = 4,
    mode: str = "interpolate",
    noise_var: float | None = None,
) -> Result:
    """Calibrate ``denoiser`` on the image at ``noisy_path`` and write into ``out_dir``:

    * ``denoised.png`` (8-bit, for viewing) and ``denoised.npy`` (float32; also ``denoised.tif``
      when the input is a TIFF) — the plain denoiser at the chosen parameter;
    * ``calibration.csv`` — the curve (and ground-truth MSE/PSNR with ``truth_path``);
    * ``calibration.png`` — the plot.

    Existing outputs are refused unless ``overwrite``; an output that is one of the inputs is
    refused always.
    """
    noisy_path = Path(noisy_path)
    params = parse_grid(grid) if grid is not None else None  # fail on a bad grid before any work
    y, data_range = read_image(noisy_path, "noisy image")
    x = None
    if truth_path is not None:
        x, _ = read_image(truth_path, "ground truth")
        if x.shape != y.shape:
            raise DataError(
                f"ground truth {truth_path} has shape {shape_str(x.shape)} but the noisy image is "
                f"{shape_str(y.shape)}; pass the clean version of the same image"
            )
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise DataError(f"output folder {out_dir} is a file; pass a folder with -o")
    names = list(OUTPUT_NAMES)
    if noisy_path.suffix.lower() in _TIFF:
        names.append("denoised.tif")
    outputs = [out_dir / n for n in names]
    inputs = [noisy_path] + ([Path(truth_path)] if truth_path is not None else [])
    for o in outputs:
        for i in inputs:
            if _same_file(o, i) or o.resolve() == i.resolve():
                raise DataError(
                    f"output {o} would overwrite the input {i}; choose another output folder"
                )
    existing = [str(o) for o in outputs if o.exists()]
    if existing and not overwrite:
        raise DataError(
            f"{existing[0]} already exists; pass overwrite=True (--overwrite) or another folder"
        )
    result = calibrate(
        denoiser,
        y,
        params,
        ground_truth=x,
        width=width,
        mode=mode,
        noise_var=noise_var,
        data_range=data_range,
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    for o in outputs:
        if o.suffix == ".csv":
            result.to_csv(o)
        elif o.name == "calibration.png":
            result.plot(o)
        else:
            write_image(o, result.denoised)
    return result

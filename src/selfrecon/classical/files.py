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
from selfrecon.data.readers import read_image, write_image
from selfrecon.errors import ConfigError, DataError, shape_str

__all__ = ["calibrate_files", "OUTPUT_NAMES"]

OUTPUT_NAMES = ("denoised.png", "denoised.npy", "calibration.csv", "calibration.png")
_TIFF = (".tif", ".tiff")
_OUTPUTS = ("plain", "j-invariant", "shrunk")


def _read(path: str | Path, what: str) -> tuple[np.ndarray, float]:
    """Read one image with :func:`selfrecon.data.readers.read_image` (integer files scaled to
    [0, 1], float files as stored) and lay it out ``(H, W)`` / ``(H, W, C)`` float64, alpha dropped.
    Returns ``(image, data_range)``: 1 for data within [-0.5, 1.5], else ``max − min``."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{what} not found: {path}; check the path")
    a = np.asarray(read_image(path), np.float64)  # (C, H, W)
    if a.shape[0] in (2, 4):
        a = a[:-1]  # grey+alpha / RGBA: drop alpha
    a = a[0] if a.shape[0] == 1 else np.moveaxis(a, 0, -1)
    if not np.isfinite(a).all():
        raise DataError(f"{what} {path} contains NaN or infinite values")
    lo, hi = float(a.min()), float(a.max())
    return a, 1.0 if (lo >= -0.5 and hi <= 1.5) else max(hi - lo, 1e-12)


def _write(path: Path, image: np.ndarray, overwrite: bool) -> None:
    chw = image[None] if image.ndim == 2 else np.moveaxis(image, -1, 0)
    write_image(path, chw.astype(np.float32), overwrite=overwrite)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _read_inputs(
    noisy_path: Path, truth_path: str | Path | None
) -> tuple[np.ndarray, float, np.ndarray | None]:
    """Read the noisy image and the optional ground truth; return ``(y, data_range, x)``."""
    y, data_range = _read(noisy_path, "noisy image")
    x = None
    if truth_path is not None:
        x, _ = _read(truth_path, "ground truth")
        if x.shape != y.shape:
            raise DataError(
                f"ground truth {truth_path} has shape {shape_str(x.shape)} but the noisy image is "
                f"{shape_str(y.shape)}; pass the clean version of the same image"
            )
    return y, data_range, x


def _check_not_inputs(outputs: list[Path], inputs: list[Path]) -> None:
    """Refuse any output path that is one of the input files."""
    for o in outputs:
        for i in inputs:
            if _same_file(o, i) or o.resolve() == i.resolve():
                raise DataError(
                    f"output {o} would overwrite the input {i}; choose another output folder"
                )


def _output_paths(
    out_dir: Path, noisy_path: Path, truth_path: str | Path | None, overwrite: bool
) -> list[Path]:
    """List the output files, refusing a file as folder, inputs, and (unless overwrite) existing."""
    if out_dir.exists() and not out_dir.is_dir():
        raise DataError(f"output folder {out_dir} is a file; pass a folder with -o")
    names = list(OUTPUT_NAMES)
    if noisy_path.suffix.lower() in _TIFF:
        names.append("denoised.tif")
    outputs = [out_dir / n for n in names]
    inputs = [noisy_path] + ([Path(truth_path)] if truth_path is not None else [])
    _check_not_inputs(outputs, inputs)
    existing = [str(o) for o in outputs if o.exists()]
    if existing and not overwrite:
        raise DataError(
            f"{existing[0]} already exists; pass overwrite=True (--overwrite) or another folder"
        )
    return outputs


def _write_outputs(
    result: Result, output: str, out_dir: Path, outputs: list[Path], overwrite: bool
) -> None:
    """Write the chosen denoised image, the curve CSV and the plot into ``out_dir``."""
    image = {
        "plain": lambda: result.denoised,
        "j-invariant": lambda: result.denoised_j,
        "shrunk": lambda: result.shrunk,
    }[output]()
    out_dir.mkdir(parents=True, exist_ok=True)
    for o in outputs:
        if o.suffix == ".csv":
            result.to_csv(o)
        elif o.name == "calibration.png":
            result.plot(o)
        else:
            _write(o, image, overwrite)


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
    output: str = "plain",
) -> Result:
    """Calibrate ``denoiser`` on the image at ``noisy_path`` and write into ``out_dir``:

    * ``denoised.png`` (8-bit, clipped to [0, 1], for viewing) and ``denoised.npy`` (float32; also
      ``denoised.tif`` when the input is a TIFF) — the plain denoiser at the chosen parameter;
      ``output="j-invariant"`` writes :attr:`Result.denoised_j` instead, ``output="shrunk"`` the
      shrunk J-invariant output :attr:`Result.shrunk` (σ² = ``noise_var`` or estimated). The
      loss measures ``f_J``, so the J-invariant and shrunk outputs are the ones whose quality it
      vouches for; see benchmarks/calibration.py for how far the plain filter can fall behind;
    * ``calibration.csv`` — the curve (and ground-truth MSE/PSNR with ``truth_path``);
    * ``calibration.png`` — the plot.

    Files are read and written by :mod:`selfrecon.data.readers` (PNG/JPEG, TIFF, NPY, …).
    Existing outputs are refused unless ``overwrite`` (checked before any work); an output that is
    one of the inputs is refused always.
    """
    noisy_path = Path(noisy_path)
    if output not in _OUTPUTS:
        raise ConfigError(f"output must be one of {', '.join(_OUTPUTS)}, got {output!r}")
    params = parse_grid(grid) if grid is not None else None  # fail on a bad grid before any work
    y, data_range, x = _read_inputs(noisy_path, truth_path)
    out_dir = Path(out_dir)
    outputs = _output_paths(out_dir, noisy_path, truth_path, overwrite)
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
    _write_outputs(result, output, out_dir, outputs, overwrite)
    return result

r"""``ImageFolder``: the user's own images (a folder, a glob, or a list of files) as a Dataset."""

from __future__ import annotations

import glob as globlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from selfrecon.data._util import resize, to_grey
from selfrecon.data.readers import IMAGE_SUFFIXES, read_slices, suffix_of
from selfrecon.errors import ConfigError, DataError, shape_str

__all__ = ["ImageFolder", "find_files"]


def find_files(
    paths: str | Path | Sequence[str | Path],
    suffixes: Sequence[str] = IMAGE_SUFFIXES,
    recursive: bool = False,
) -> list[Path]:
    """Expand a folder, a glob pattern, a file, or a list of them into a sorted list of files.

    Folders contribute their files whose suffix is in ``suffixes`` (hidden files skipped); an
    explicit file with another suffix is an error. Raises :class:`DataError` when nothing is found.
    """
    items = [paths] if isinstance(paths, str | Path) else list(paths)
    if not items:
        raise DataError("no input files given (empty list)")
    out: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            it = p.rglob("*") if recursive else p.iterdir()
            found = sorted(
                f
                for f in it
                if f.is_file() and not f.name.startswith(".") and suffix_of(f) in suffixes
            )
            if not found:
                raise DataError(
                    f"no image files in folder {p} (looked for {', '.join(suffixes)}"
                    f"{'' if recursive else '; pass recursive=True to search subfolders'})"
                )
            out.extend(found)
        elif p.is_file():
            if suffix_of(p) not in suffixes:
                raise DataError(
                    f"{p}: unsupported file type {suffix_of(p) or '(none)'!r}; "
                    f"use one of {', '.join(suffixes)}"
                )
            out.append(p)
        elif any(ch in str(item) for ch in "*?["):
            found = sorted(
                Path(f)
                for f in globlib.glob(str(item), recursive=recursive)
                if Path(f).is_file() and suffix_of(f) in suffixes
            )
            if not found:
                raise DataError(f"pattern {item} matches no image files")
            out.extend(found)
        else:
            raise DataError(f"{p}: no such file or folder")
    return out


def _normalise(a: np.ndarray, mode: str, percentiles: tuple[float, float]) -> np.ndarray:
    if mode == "none":
        return a
    if mode == "minmax":
        lo, hi = float(a.min()), float(a.max())
    else:
        lo, hi = (float(v) for v in np.percentile(a, percentiles))
    if hi <= lo:
        return np.zeros_like(a)
    return np.clip((a - lo) / (hi - lo), 0.0, 1.0)


def _check_options(
    channels: str, normalize: str, percentiles: tuple[float, float]
) -> tuple[float, float]:
    """Check ImageFolder's ``channels``/``normalize``/``percentiles``; return the percentiles."""
    if channels not in ("grey", "gray", "rgb", "keep"):
        raise ConfigError(f"channels must be 'grey', 'rgb' or 'keep', got {channels!r}")
    if normalize not in ("none", "minmax", "percentile"):
        raise ConfigError(f"normalize must be 'none', 'minmax' or 'percentile', got {normalize!r}")
    lo, hi = (float(p) for p in percentiles)
    if not 0.0 <= lo < hi <= 100.0:
        raise ConfigError(f"percentiles must satisfy 0 ≤ low < high ≤ 100, got {percentiles}")
    return lo, hi


def _to_item(
    a: np.ndarray,
    channels: str,
    normalize: str,
    percentiles: tuple[float, float],
    size: tuple[int, int] | None,
) -> Tensor:
    """One read image as an item: channels converted, normalised, resized to ``size`` if given."""
    if channels in ("grey", "gray"):
        a = to_grey(a)
    elif channels == "rgb":
        a = np.repeat(a[:1], 3, axis=0) if a.shape[0] < 3 else a[:3]
    a = _normalise(a, normalize, percentiles)
    t = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))
    if size is not None and tuple(t.shape[-2:]) != size:
        t = resize_image(t, size)
    return t


def _check_same_shape(images: list[Tensor], origin: list[Path], names: list[str]) -> None:
    """Raise a :class:`DataError` naming the first item whose shape differs from the first's."""
    first = images[0].shape
    for t, f, name in zip(images, origin, names, strict=True):
        if t.shape != first:
            what = "sizes" if t.shape[1:] != first[1:] else "channel counts"
            raise DataError(
                f"images have mixed {what}: {origin[0]} ({names[0]}) is {shape_str(first)} but "
                f"{f} ({name}) is {shape_str(t.shape)}; pass resize=(H, W)"
                + (" or channels='grey'/'rgb'" if what == "channel counts" else "")
            )


class ImageFolder(Dataset):
    r"""Images from the user's files, each item a ``(C, H, W)`` float32 tensor.

    Files are read once at construction (and checked: unreadable files, NaN, mixed sizes) and kept
    in memory; nothing is ever written to the input folder. ``names[i]`` is item ``i``'s name — the
    file name without suffix, plus ``_012`` for slice 12 of a volume — so outputs can mirror inputs.

    Parameters
    ----------
    paths : folder, glob pattern, file, or list of these
    channels : {"grey", "rgb", "keep"}
        ``grey``: colour converted by BT.709 luma (alpha dropped); ``rgb``: grey replicated to 3
        channels; ``keep``: as stored (all items must then agree).
    normalize : {"none", "minmax", "percentile"}
        Per item: ``minmax`` maps [min, max] to [0, 1]; ``percentile`` maps the ``percentiles``
        (default 1st, 99th) to [0, 1] and clips. ``none`` keeps values (integer files are already
        divided by their type's maximum; see :mod:`selfrecon.data.readers`).
    resize : (H, W), optional
        Resize every item (antialiased). Without it, all items must have the same size.
    axis : int
        Slicing axis for volumes (NIfTI, 3-D arrays); ``-1`` = last (axial for RAS NIfTI).
    key : str, optional
        NPZ array or HDF5 dataset to read (HDF5 default ``reconstruction_esc``, fastMRI layout).
    recursive : bool
        Search sub-folders.
    """

    def __init__(
        self,
        paths: str | Path | Sequence[str | Path],
        channels: str = "grey",
        normalize: str = "none",
        percentiles: tuple[float, float] = (1.0, 99.0),
        resize: tuple[int, int] | None = None,
        axis: int = -1,
        key: str | None = None,
        recursive: bool = False,
    ):
        lo, hi = _check_options(channels, normalize, percentiles)
        if resize is not None:
            resize = (int(resize[0]), int(resize[1]))
        self.channels, self.normalize, self.percentiles = channels, normalize, (lo, hi)
        self.resize_to = resize
        self.files = find_files(paths, recursive=recursive)
        names: list[str] = []
        images: list[Tensor] = []
        origin: list[Path] = []
        for f in self.files:
            for name, a in read_slices(f, axis=axis, key=key):
                names.append(name)
                images.append(_to_item(a, channels, normalize, self.percentiles, resize))
                origin.append(f)
        _check_same_shape(images, origin, names)
        first = images[0].shape
        self.names = _unique(names)
        self.sources = origin
        self._images = images
        self.shape = tuple(first)

    def __len__(self) -> int:
        return len(self._images)

    def __getitem__(self, index: int) -> Tensor:
        return self._images[index].clone()

    def __repr__(self) -> str:
        return (
            f"ImageFolder({len(self)} images of shape {self.shape} from {len(self.files)} file(s))"
        )


def resize_image(t: Tensor, size: tuple[int, int]) -> Tensor:
    return resize(t, size)


def _unique(names: list[str]) -> list[str]:
    """Make names unique (``a.png`` and ``a.tif`` both give ``a``) by appending ``-2``, ``-3``…"""
    seen: dict[str, int] = {}
    out = []
    for n in names:
        if n in seen:
            seen[n] += 1
            out.append(f"{n}-{seen[n]}")
        else:
            seen[n] = 1
            out.append(n)
    return out

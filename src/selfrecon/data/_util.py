"""Small helpers shared by the data modules: optional imports, per-item seeds, resizing."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from selfrecon.errors import MissingDependencyError

__all__ = [
    "require",
    "package_dir",
    "item_seed",
    "item_generator",
    "resize",
    "to_grey",
    "atomic_folder",
]


@contextlib.contextmanager
def atomic_folder(out: Path) -> Iterator[Path]:
    """Yield a temporary folder beside ``out``; on success it replaces ``out``, on error it goes.

    A reader never sees a half-written folder and an error leaves nothing behind. The caller
    decides beforehand whether an existing ``out`` may be replaced.
    """
    out = Path(out)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=str(out.parent)))
    try:
        yield tmp
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


#: optional package → the extra that installs it
EXTRAS = {
    "mlxtend": "data",
    "nilearn": "data",
    "pydicom": "medical",
    "nibabel": "medical",
    "h5py": "medical",
}


def _missing(package: str, what: str) -> MissingDependencyError:
    extra = EXTRAS.get(package.split(".")[0], "data")
    return MissingDependencyError(
        f"{what} needs the optional package {package!r}; install it with "
        f"`pip install selfrecon[{extra}]`"
    )


def require(package: str, what: str):
    """Import an optional package or raise a one-line :class:`MissingDependencyError`."""
    try:
        return importlib.import_module(package)
    except ImportError as err:
        raise _missing(package, what) from err


def package_dir(package: str, what: str) -> Path:
    """The install folder of ``package`` found without importing it."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise _missing(package, what)
    return Path(list(spec.submodule_search_locations)[0])


def item_seed(*keys: int) -> int:
    """A 63-bit seed derived from integer keys (e.g. ``(seed, split, index)``).

    Uses NumPy's ``SeedSequence`` hashing, so neighbouring keys give unrelated streams and an item's
    randomness does not depend on which other items were drawn before it.
    """
    state = np.random.SeedSequence([int(k) & 0xFFFFFFFF for k in keys]).generate_state(2)
    return int((int(state[0]) << 31) ^ int(state[1])) & ((1 << 63) - 1)


def item_generator(*keys: int) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded by :func:`item_seed`."""
    return torch.Generator().manual_seed(item_seed(*keys))


def resize(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Resize ``(C, H, W)`` (or ``(B, C, H, W)``) to ``size = (H', W')``.

    Area averaging when shrinking by an integer factor; otherwise bilinear with antialiasing
    (torch's ``antialias=True`` follows PIL's separable triangle filter).
    """
    size = (int(size[0]), int(size[1]))
    squeeze = x.dim() == 3
    xb = x[None] if squeeze else x
    h, w = xb.shape[-2:]
    if (h, w) == size:
        out = xb
    elif h % size[0] == 0 and w % size[1] == 0:
        out = F.interpolate(xb, size=size, mode="area")
    else:
        out = F.interpolate(xb, size=size, mode="bilinear", antialias=True, align_corners=False)
    out = out.contiguous()
    return out[0] if squeeze else out


#: ITU-R BT.709 luma weights, as in ``skimage.color.rgb2gray``
LUMA = (0.2125, 0.7154, 0.0721)


def to_grey(x: np.ndarray) -> np.ndarray:
    """``(3 or 4, H, W)`` → ``(1, H, W)`` by BT.709 luma (alpha dropped); grey passes through."""
    if x.shape[0] == 1:
        return x
    if x.shape[0] == 2:  # grey + alpha
        return x[:1]
    w = np.asarray(LUMA, dtype=np.float32).reshape(3, 1, 1)
    return (x[:3] * w).sum(axis=0, keepdims=True, dtype=np.float32)

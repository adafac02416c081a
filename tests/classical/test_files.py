import numpy as np
import pytest
import torch
from skimage import io

from selfrecon.classical import calibrate_files
from selfrecon.errors import ConfigError, DataError


@pytest.fixture
def files(tmp_path, rng):
    x = np.clip(np.linspace(0, 1, 40)[None, :] * np.ones((36, 1)), 0, 1)
    x[10:20, 10:25] = 0.9
    y = x + 0.08 * torch.randn(x.shape, generator=rng, dtype=torch.float64).numpy()
    io.imsave(tmp_path / "clean.png", np.round(x * 255).astype(np.uint8), check_contrast=False)
    np.save(tmp_path / "noisy.npy", y.astype(np.float32))
    return tmp_path, x, y


def test_calibrate_files_writes_outputs(files):
    d, x, y = files
    out = d / "out"
    r = calibrate_files(d / "noisy.npy", "median", "1:3", out, truth_path=d / "clean.png")
    for name in ("denoised.png", "denoised.npy", "calibration.csv", "calibration.png"):
        assert (out / name).is_file()
    den = np.load(out / "denoised.npy")
    assert den.shape == y.shape and den.dtype == np.float32
    assert np.allclose(den, r.denoised, atol=1e-6)
    assert r.psnr is not None and r.best in (1, 2, 3)
    png = io.imread(out / "denoised.png")
    assert png.dtype == np.uint8 and png.shape == y.shape
    assert len((out / "calibration.csv").read_text().splitlines()) == 4


def test_refuses_to_overwrite_and_to_write_into_inputs(files):
    d, _, _ = files
    out = d / "out"
    calibrate_files(d / "noisy.npy", "median", "1,2", out)
    before = (out / "calibration.csv").read_text()
    with pytest.raises(DataError, match="already exists"):
        calibrate_files(d / "noisy.npy", "median", "1,2,3", out)
    assert (out / "calibration.csv").read_text() == before  # nothing touched
    r = calibrate_files(d / "noisy.npy", "median", "1,2,3", out, overwrite=True)
    assert len((out / "calibration.csv").read_text().splitlines()) == 4 and r.params == [1, 2, 3]
    # an input named like an output in the output folder is never overwritten
    io.imsave(d / "denoised.png", (np.ones((20, 20)) * 128).astype(np.uint8), check_contrast=False)
    with pytest.raises(DataError, match="overwrite the input"):
        calibrate_files(d / "denoised.png", "median", "1", d, overwrite=True)
    assert io.imread(d / "denoised.png").mean() == 128


def test_file_errors(files):
    d, _, _ = files
    with pytest.raises(DataError, match="not found"):
        calibrate_files(d / "missing.png", "median", "1:3", d / "o")
    with pytest.raises(DataError, match="not found"):
        calibrate_files(d / "noisy.npy", "median", "1:3", d / "o", truth_path=d / "nope.png")
    with pytest.raises(ConfigError, match="as a number"):
        calibrate_files(d / "noisy.npy", "median", "1:x", d / "o")
    io.imsave(d / "small.png", np.zeros((30, 30), np.uint8), check_contrast=False)
    with pytest.raises(DataError, match="shape"):
        calibrate_files(d / "noisy.npy", "median", "1", d / "o", truth_path=d / "small.png")
    assert not (d / "o").exists()  # failed runs leave no output folder behind


def test_output_choice(files):
    d, _, _ = files
    r = calibrate_files(d / "noisy.npy", "gaussian", "1,2", d / "j", output="j-invariant")
    assert np.allclose(np.load(d / "j" / "denoised.npy"), r.denoised_j, atol=1e-6)
    r = calibrate_files(
        d / "noisy.npy", "gaussian", "1,2", d / "s", output="shrunk", noise_var=0.0064
    )
    assert np.allclose(np.load(d / "s" / "denoised.npy"), r.shrink(0.0064), atol=1e-6)
    with pytest.raises(ConfigError, match="output must be"):
        calibrate_files(d / "noisy.npy", "gaussian", "1,2", d / "t", output="best")

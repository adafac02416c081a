import numpy as np
import pytest
import torch
from skimage import data, img_as_float

from selfrecon.classical import calibrate, parse_grid, shrink
from selfrecon.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def camera_noisy():
    """camera() (512², full size) + N(0, 0.01) noise, seeded, clipped to [0, 1] as
    skimage.util.random_noise does by default (the setting of the Noise2Self notebook)."""
    x = img_as_float(data.camera())
    g = torch.Generator().manual_seed(0)
    n = 0.1 * torch.randn(x.shape, generator=g, dtype=torch.float64).numpy()
    return x, np.clip(x + n, 0.0, 1.0)


@pytest.fixture
def small(rng):
    """A 48×48 crop of camera() with known Gaussian noise (σ = 0.1, not clipped)."""
    x = img_as_float(data.camera())[200:248, 240:288]
    n = 0.1 * torch.randn(x.shape, generator=rng, dtype=torch.float64).numpy()
    return x, x + n, n


def test_donut_median_picks_radius_3_like_the_ground_truth(camera_noisy):
    x, y = camera_noisy
    r = calibrate("median", y, "1:6", ground_truth=x)
    assert not r.masked  # J-invariant by construction: no masking needed
    assert r.best == 3
    assert r.best_true == 3
    # the self-supervised loss is the true MSE plus ~σ² (clipping shrinks the noise a little)
    offset = r.self_supervised_loss - r.true_mse
    assert np.all(np.abs(offset - offset.mean()) < 2e-4)
    assert 0.008 < offset.mean() < 0.0105


def test_ordinary_median_loss_is_monotone_the_trap(camera_noisy):
    x, y = camera_noisy
    r = calibrate("median-full", y, "1:6", ground_truth=x, masking=False)
    assert np.all(np.diff(r.self_supervised_loss) > 0)  # keeps falling toward radius 0 (= y)
    assert r.best == 1
    assert r.best_true != r.best  # and so it picks the wrong radius


def test_self_supervised_loss_is_true_mse_plus_noise_only_when_j_invariant(small):
    x, y, n = small

    def box(img, k):  # a custom callable: k×k box filter including the centre
        from scipy.ndimage import uniform_filter

        return uniform_filter(img, size=int(k), mode="reflect")

    r = calibrate(box, y, [3, 5], ground_truth=x)
    assert r.masked and r.param_name == "param" and r.denoiser == "box"
    # Prop. 1: L = MSE(f_J) + mean(n²) up to the cross term, which vanishes for J-invariant f_J
    gap = r.self_supervised_loss - r.true_mse - np.mean(n**2)
    assert np.all(np.abs(gap) < 6e-4)
    # without masking the cross term −2<n, f(y) − x> is large (the centre weight 1/9 or 1/25)
    raw = calibrate(box, y, [3, 5], ground_truth=x, masking=False)
    raw_gap = raw.self_supervised_loss - raw.true_mse - np.mean(n**2)
    assert raw_gap[0] < -1.5e-3
    # denoised is the plain filter at the chosen value; denoised_j the J-invariant one
    assert np.allclose(r.denoised, box(y, r.best))
    assert not np.allclose(r.denoised_j, r.denoised)


def test_callable_with_declared_j_invariance_is_not_masked(small):
    _, y, _ = small
    calls = []

    def f(img, p):
        calls.append(p)
        return img * 0 + p

    f.is_j_invariant = True
    r = calibrate(f, y, "0.2:0.6:0.2")
    assert calls == [0.2, 0.4, 0.6]  # one unmasked pass per value, the chosen output is reused
    # a constant prediction p has loss mean((p − y)²): the grid value nearest the mean wins
    assert r.best == min([0.2, 0.4, 0.6], key=lambda p: abs(p - y.mean()))
    assert np.array_equal(r.denoised, r.denoised_j)


def test_shrinkage_improves_j_invariant_output_with_the_optimal_weight(small):
    x, y, _ = small
    r = calibrate("gaussian", y, [0.5, 1.0, 1.5, 2.0], ground_truth=x, noise_var=0.01)
    s = r.shrunk
    mse_j = np.mean((r.denoised_j - x) ** 2)
    mse_s = np.mean((s - x) ** 2)
    assert mse_s <= mse_j
    # the weight σ²/L is (close to) the best weight in hindsight
    lams = np.linspace(0, 1, 201)
    errs = [np.mean((y + lam * (r.denoised_j - y) - x) ** 2) for lam in lams]
    lam_star = 0.01 / r.best_loss
    assert abs(lams[int(np.argmin(errs))] - lam_star) < 0.05
    assert mse_s <= min(errs) * 1.02
    # limits: no noise → keep y; σ² ≥ L → the J-invariant output itself
    assert np.allclose(shrink(r.denoised_j, y, r.best_loss, 0.0), y)
    assert np.allclose(shrink(r.denoised_j, y, r.best_loss, 10.0), r.denoised_j)
    # with σ² estimated from the image (Donoho–Johnstone MAD) it still helps
    r.noise_var = None
    assert abs(r.estimated_noise_var - 0.01) < 0.003
    assert np.mean((r.shrunk - x) ** 2) <= mse_j


def test_multichannel_and_tensor_inputs_agree(rng):
    x = img_as_float(data.astronaut())[100:132, 200:232]
    y = x + 0.1 * torch.randn(x.shape, generator=rng, dtype=torch.float64).numpy()
    r = calibrate("tv", y, [0.05, 0.1], width=3)
    assert r.denoised.shape == y.shape == r.denoised_j.shape
    t = torch.from_numpy(y.transpose(2, 0, 1).copy())[None].float()
    rt = calibrate("tv", t, [0.05, 0.1], width=3)
    assert rt.best == r.best
    assert np.allclose(rt.self_supervised_loss, r.self_supervised_loss, rtol=1e-4)


def test_csv_and_plot_are_written(small, tmp_path):
    x, y, _ = small
    r = calibrate("median", y, [1, 2, 3], ground_truth=x)
    csv = r.to_csv(tmp_path / "c.csv").read_text().splitlines()
    assert csv[0].split(",") == [
        "radius",
        "self_supervised_loss",
        "true_mse_j",
        "psnr_j",
        "true_mse",
        "psnr",
        "chosen",
    ]
    assert len(csv) == 4
    rows = [line.split(",") for line in csv[1:]]
    assert [int(row[0]) for row in rows] == [1, 2, 3]
    assert [int(row[-1]) for row in rows] == [int(p == r.best) for p in (1, 2, 3)]
    assert np.allclose([float(row[1]) for row in rows], r.self_supervised_loss, rtol=1e-6)
    png = r.plot(tmp_path / "c.png")
    from skimage import io

    img = io.imread(png)
    assert img.ndim == 3 and img.shape[0] > 100 and img.std() > 0
    # without ground truth: two columns + chosen
    r2 = calibrate("median", y, [1, 2])
    assert r2.to_csv(tmp_path / "d.csv").read_text().splitlines()[0] == (
        "radius,self_supervised_loss,chosen"
    )
    assert r2.psnr is None and r2.best_true is None
    r2.plot(tmp_path / "d.png")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1:6", [1, 2, 3, 4, 5, 6]),
        ("0.5:2:0.5", [0.5, 1, 1.5, 2]),
        ("0.1:0.3:0.1", [0.1, 0.2, 0.3]),
        ("1,2,4", [1, 2, 4]),
        (" 3 ", [3]),
        ("1e-2,2e-2", [0.01, 0.02]),
    ],
)
def test_parse_grid(text, expected):
    assert parse_grid(text) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "empty"),
        ("a:b", "as a number"),
        ("3:1", "ends before"),
        ("1:5:0", "positive step"),
        ("1,,2", "as a number"),
        ("1:2:3:4", "start:stop"),
        ("1,1", "repeats"),
        ("0:1e9", "coarser"),
    ],
)
def test_bad_grids_give_one_line_errors(text, match):
    with pytest.raises(ConfigError, match=match) as err:
        parse_grid(text)
    assert "\n" not in str(err.value)


def test_bad_inputs(small):
    x, y, _ = small
    with pytest.raises(ConfigError, match="unknown denoiser"):
        calibrate("bm3d", y, [1])
    with pytest.raises(ConfigError, match="whole number"):
        calibrate("median", y, [2.5])
    with pytest.raises(ConfigError, match="positive"):
        calibrate("gaussian", y, [0, 1])
    with pytest.raises(ConfigError, match="grid"):
        calibrate(lambda im, p: im, y)
    with pytest.raises(DataError, match="ground truth"):
        calibrate("median", y, [1], ground_truth=x[:10])
    with pytest.raises(DataError, match="NaN"):
        calibrate("median", np.full((8, 8), np.nan), [1])
    with pytest.raises(DataError, match="batch"):
        calibrate("median", torch.zeros(2, 1, 8, 8), [1])

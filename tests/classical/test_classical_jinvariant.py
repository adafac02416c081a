import numpy as np
import pytest
import torch

from selfrecon.classical import DENOISERS, j_invariant


def _perturbed(image: np.ndarray, ij: tuple[int, int], delta: float = 5.0) -> np.ndarray:
    out = image.copy()
    out[ij] += delta
    return out


@pytest.mark.parametrize(("name", "channels"), [("median-full", None), ("tv", 3), ("gaussian", 2)])
def test_j_invariant_output_ignores_its_own_pixel(rng, name, channels):
    shape = (16, 18) if channels is None else (16, 18, channels)
    y = torch.rand(shape, generator=rng, dtype=torch.float64).numpy()
    f = DENOISERS[name].fn
    param = DENOISERS[name].default_grid[2]
    fj = j_invariant(lambda im: f(im, param), width=4)
    base = fj(y)
    assert base.shape == y.shape
    for ij in [(0, 0), (7, 9), (15, 17)]:
        moved = fj(_perturbed(y, ij))
        assert np.allclose(moved[ij], base[ij], atol=1e-12)  # own pixel: no dependence
        # ... while the plain denoiser does depend on it, and f_J does elsewhere
        plain = [f(_perturbed(y, ij, d), param)[ij] for d in (5.0, -5.0)]
        assert not all(np.allclose(p, f(y, param)[ij]) for p in plain)
        assert not np.allclose(moved, base)


def test_donut_median_is_j_invariant_everywhere_including_borders(rng):
    y = torch.rand(12, 13, generator=rng, dtype=torch.float64).numpy()
    f = DENOISERS["median"].fn
    base = f(y, 2)
    for ij in [(0, 0), (0, 6), (11, 12), (6, 6), (1, 12)]:
        assert f(_perturbed(y, ij, 10.0), 2)[ij] == base[ij]
    # the ordinary median reads the centre pixel
    g = DENOISERS["median-full"].fn
    hits = [g(_perturbed(y, ij, 10.0), 1)[ij] != g(y, 1)[ij] for ij in [(0, 0), (6, 6), (3, 4)]]
    assert any(hits)


def test_j_invariant_torch_batch_matches_numpy_loop(rng):
    conv = torch.nn.Conv2d(2, 2, 3, padding=1, padding_mode="reflect", dtype=torch.float64)
    x = torch.rand(3, 2, 12, 12, generator=rng, dtype=torch.float64)
    with torch.no_grad():
        out_t = j_invariant(conv, width=3)(x)
        for b in range(3):
            img = x[b].numpy().transpose(1, 2, 0)

            def f(im):
                t = torch.from_numpy(np.ascontiguousarray(im.transpose(2, 0, 1)))[None]
                return conv(t)[0].numpy().transpose(1, 2, 0)

            out_np = j_invariant(f, width=3)(img)
            assert np.allclose(out_np, out_t[b].numpy().transpose(1, 2, 0), atol=1e-10)
        # J-invariance of the batched path: perturb one pixel of image 1
        x2 = x.clone()
        x2[1, :, 4, 7] += 3.0
        out2 = j_invariant(conv, width=3)(x2)
    assert torch.allclose(out2[1, :, 4, 7], out_t[1, :, 4, 7])
    assert not torch.allclose(out2[1], out_t[1])
    assert torch.equal(out2[0], out_t[0])


def test_j_invariant_zero_mode_and_errors(rng):
    y = torch.rand(8, 8, generator=rng, dtype=torch.float64).numpy()
    assert np.allclose(j_invariant(lambda im: im, mode="zero")(y), 0.0)
    with pytest.raises(ValueError, match="width"):
        j_invariant(lambda im: im, width=1)
    with pytest.raises(ValueError, match="shape"):
        j_invariant(lambda im: im[:4])(y)

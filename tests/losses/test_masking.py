import pytest
import torch
import torch.nn.functional as F

from selfrecon.losses.masking import GridMasker


@pytest.mark.parametrize("width", [2, 3, 4])
def test_masks_partition_pixels(width):
    m = GridMasker(width)
    masks = torch.cat([m.mask((11, 13), i) for i in range(m.n_masks)])
    assert masks.shape == (width**2, 1, 11, 13)
    assert torch.equal(masks.sum(0), torch.ones(1, 11, 13))


def test_mask_phase_convention():
    m = GridMasker(4)
    mk = m.mask((8, 8), 6)[0, 0]  # phase (6 mod 4, 6 div 4) = (row 2, col 1)
    rows, cols = torch.nonzero(mk, as_tuple=True)
    assert set((rows % 4).tolist()) == {2} and set((cols % 4).tolist()) == {1}
    assert int(mk.sum()) == 4


def test_interpolate_is_weighted_neighbour_mean(rng):
    x = torch.rand(2, 3, 7, 9, generator=rng)
    out = GridMasker(3).interpolate(x)
    i, j = 3, 4
    nb = x[..., i - 1 : i + 2, j - 1 : j + 2]
    w = torch.tensor([[0.5, 1, 0.5], [1, 0, 1], [0.5, 1, 0.5]])
    assert torch.allclose(out[..., i, j], (nb * w).sum((-1, -2)) / w.sum(), atol=1e-6)
    # border uses reflect padding: row -1 is row 1
    xp = F.pad(x, (1, 1, 1, 1), mode="reflect")
    nb0 = xp[..., 0:3, 0:3]
    assert torch.allclose(out[..., 0, 0], (nb0 * w).sum((-1, -2)) / w.sum(), atol=1e-6)


@pytest.mark.parametrize("mode", ["interpolate", "zero"])
def test_masked_copy_ignores_masked_values(rng, mode):
    m = GridMasker(4, mode)
    x = torch.rand(2, 3, 12, 12, generator=rng)
    for i in (0, 5, 15):
        xm, mk = m.apply(x, i)
        x2 = x + 10.0 * mk * torch.randn(x.shape, generator=rng)
        xm2, _ = m.apply(x2, i)
        assert torch.allclose(xm, xm2, atol=1e-6)
        assert torch.equal(xm * (1 - mk), x * (1 - mk))
    if mode == "zero":
        assert float((xm * mk).abs().sum()) == 0.0


def test_apply_batch_matches_per_image_apply(rng):
    m = GridMasker(3)
    x = torch.rand(5, 2, 9, 10, generator=rng)
    idx = m.sample_index(5, rng)
    xm, mk = m.apply_batch(x, idx)
    assert mk.shape == (5, 1, 9, 10)
    for b in range(5):
        xb, mb = m.apply(x[b : b + 1], int(idx[b]))
        assert torch.allclose(xm[b : b + 1], xb) and torch.equal(mk[b : b + 1], mb)


def test_sample_index_seeded_and_varied():
    m = GridMasker(4)
    a = m.sample_index(64, torch.Generator().manual_seed(0))
    b = m.sample_index(64, torch.Generator().manual_seed(0))
    assert torch.equal(a, b)
    assert len(set(a.tolist())) > 8 and int(a.min()) >= 0 and int(a.max()) < 16


def test_j_invariant_identity_gives_interpolation(rng):
    m = GridMasker(4)
    x = torch.rand(2, 3, 12, 12, generator=rng)
    out = m.j_invariant(lambda z: z, x)
    assert torch.allclose(out, m.interpolate(x), atol=1e-6)
    assert torch.allclose(GridMasker(4, "zero").j_invariant(lambda z: z, x), torch.zeros_like(x))


def test_j_invariant_is_j_invariant_and_chunks_agree(rng):
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(2, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 2, 3, padding=1)
    )
    m = GridMasker(3)
    x = torch.rand(2, 2, 9, 9, generator=rng)
    with torch.no_grad():
        out = m.j_invariant(net, x)
        assert torch.allclose(out, m.j_invariant(net, x, chunk=4), atol=1e-6)
        for i, j in [(0, 0), (4, 5), (8, 8)]:
            x2 = x.clone()
            x2[:, :, i, j] += 5.0
            out2 = m.j_invariant(net, x2)
            assert torch.allclose(out2[:, :, i, j], out[:, :, i, j], atol=1e-5)
            assert not torch.allclose(out2, out, atol=1e-3)  # other pixels do see it


def test_bad_inputs():
    with pytest.raises(ValueError, match="width"):
        GridMasker(1)
    with pytest.raises(ValueError, match="mode"):
        GridMasker(4, "median")
    m = GridMasker(4)
    with pytest.raises(ValueError, match="B, C, H, W"):
        m.apply(torch.zeros(8, 8), 0)
    with pytest.raises(ValueError, match="one mask index per image"):
        m.apply_batch(torch.zeros(3, 1, 8, 8), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="index"):
        m.apply(torch.zeros(1, 1, 8, 8), 16)

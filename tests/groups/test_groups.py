import pytest
import torch

from selfrecon.groups import (
    Flip,
    ProductGroup,
    Rotate,
    Rotate90,
    Scale,
    Shift,
    build_group,
)
from selfrecon.groups.base import batch_size, take

EXACT_FINITE = [
    lambda: Shift(img_shape=(5, 5)),
    lambda: Rotate90(),
    lambda: Flip("h"),
    lambda: Flip("both"),
    lambda: Rotate90() * Flip(),
    lambda: Shift(img_shape=(5, 5)) * Flip("v"),
    lambda: Shift(img_shape=(5, 5)) * Rotate90(),
]


def _rep(g, n):
    if isinstance(g, tuple):
        return tuple(_rep(gi, n) for gi in g)
    return g.repeat_interleave(n, 0)


def _tile(g, n):
    if isinstance(g, tuple):
        return tuple(_tile(gi, n) for gi in g)
    return g.repeat(n, *([1] * (g.dim() - 1)))


@pytest.mark.parametrize("make", EXACT_FINITE)
def test_group_axioms_on_elements(make, rng):
    G = make()
    E = G.elements((5, 5))
    n = batch_size(E)
    assert n == G.order
    x = torch.rand(1, 2, 5, 5, generator=rng)
    orbit = G.apply(x.expand(n, -1, -1, -1), E)
    # identity acts trivially and is an element
    assert torch.equal(G.apply(x, G.identity(1)), x)
    assert any(torch.equal(o, x[0]) for o in orbit)
    # each element is a pixel permutation (exact): values are preserved
    assert torch.allclose(orbit.flatten(1).sort(-1).values, x.flatten(1).sort(-1).values)
    # inverse undoes the action
    inv = G.inverse(E) if not isinstance(G, ProductGroup) else G.inverse(E, hw=(5, 5))
    assert torch.equal(G.apply(orbit, inv), x.expand(n, -1, -1, -1))
    # closure + composition law: T_{g∘h} = T_g T_h for all pairs, and g∘h lands in the orbit
    a, b = _rep(E, n), _tile(E, n)
    xs = x.expand(n * n, -1, -1, -1)
    gh = G.compose(a, b) if not isinstance(G, ProductGroup) else G.compose(a, b, hw=(5, 5))
    lhs = G.apply(xs, gh)
    assert torch.equal(lhs, G.apply(G.apply(xs, b), a))
    flat_orbit = orbit.flatten(1)
    assert bool((lhs.flatten(1)[:, None] == flat_orbit[None]).all(-1).any(-1).all())


def test_dihedral_has_eight_distinct_transformations(rng):
    G = Rotate90() * Flip()
    x = torch.rand(1, 1, 6, 6, generator=rng)
    orbit = G.apply(x.expand(8, -1, -1, -1), G.elements())
    assert torch.unique(orbit.flatten(1), dim=0).shape[0] == 8
    # Rotate90 and Flip do not commute, yet the pixel-map inverse is right
    g = G.sample(torch.zeros(16, 1, 6, 6), rng)
    assert torch.equal(
        G.apply(G.apply(x.expand(16, -1, -1, -1), g), G.inverse(g)), x.expand(16, -1, -1, -1)
    )


def test_conventions_match_torch(rng):
    x = torch.rand(3, 2, 6, 6, generator=rng)
    k = torch.tensor([0, 1, 3])
    out = Rotate90().apply(x, k)
    for b in range(3):
        assert torch.equal(out[b], torch.rot90(x[b], int(k[b]), dims=(-2, -1)))
    s = torch.tensor([[1, -2], [0, 0], [7, 3]])
    out = Shift().apply(x, s)
    for b in range(3):
        assert torch.equal(out[b], torch.roll(x[b], tuple(s[b].tolist()), dims=(-2, -1)))
    f = torch.tensor([[0, 1], [1, 0], [1, 1]])
    out = Flip("both").apply(x, f)
    assert torch.equal(out[0], x[0].flip(-1)) and torch.equal(out[1], x[1].flip(-2))
    assert torch.equal(out[2], x[2].flip(-1, -2))


@pytest.mark.parametrize(
    "G",
    [Shift(), Shift(max_shift=2), Rotate90(), Flip("both"), Rotate(), Scale(), Rotate90() * Flip()],
)
def test_per_image_draws_differ_and_seed_reproduces(G):
    a = G.sample(torch.zeros(32, 1, 8, 8), torch.Generator().manual_seed(3))
    b = G.sample(torch.zeros(32, 1, 8, 8), torch.Generator().manual_seed(3))
    c = G.sample(torch.zeros(32, 1, 8, 8), torch.Generator().manual_seed(4))

    def flat(g):
        return torch.cat(
            [t.reshape(32, -1).float() for t in (g if isinstance(g, tuple) else (g,))], 1
        )

    assert torch.equal(flat(a), flat(b))
    assert not torch.equal(flat(a), flat(c))
    assert torch.unique(flat(a), dim=0).shape[0] > 1  # one element per image, not per batch


def test_uniform_sampling_of_shifts():
    g = Shift().sample(torch.zeros(20000, 1, 3, 4), torch.Generator().manual_seed(0))
    counts = torch.bincount(g[:, 0] * 4 + g[:, 1], minlength=12).float()
    expected = 20000 / 12
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 31.3  # 99.9 % quantile of chi2 with 11 dof
    m = Shift(max_shift=1).sample(torch.zeros(1000, 1, 4, 4), torch.Generator().manual_seed(0))
    assert set(m.unique().tolist()) == {-1, 0, 1}


def test_rotate_interpolates_and_matches_rotate90(rng):
    x = torch.rand(2, 1, 8, 8, generator=rng)
    R = Rotate()
    assert R.exact is False and R.order is None
    out = R.apply(x, torch.tensor([90.0, 180.0]))
    assert torch.allclose(out, Rotate90().apply(x, torch.tensor([1, 2])), atol=1e-5)
    y = R.apply(x, torch.tensor([30.0, -45.0]))
    assert not torch.allclose(y, x)
    # approximately invertible away from the corners
    back = R.apply(y, R.inverse(torch.tensor([30.0, -45.0])))
    c = slice(3, 5)
    assert (back - x)[..., c, c].abs().max() < 0.5
    disc = Rotate(angles=[0, 90]).sample(torch.zeros(50, 1, 4, 4), rng)
    assert set(disc.tolist()) == {0.0, 90.0}


def test_scale_zoom_and_identity(rng):
    x = torch.rand(2, 3, 8, 10, generator=rng)
    S = Scale()
    assert torch.allclose(S.apply(x, S.identity(2)), x, atol=1e-6)
    z = S.apply(x, torch.tensor([2.0, 0.5]))
    assert z.shape == x.shape and not torch.allclose(z, x)
    g = S.sample(torch.zeros(100, 1, 4, 4), rng)
    assert float(g.min()) >= 0.75 and float(g.max()) <= 1.25
    assert torch.allclose(S.compose(g, S.inverse(g)), torch.ones(100))


def test_random_apply_stacks_copies(rng):
    x = torch.rand(2, 1, 6, 6, generator=rng)
    xs, g = Shift().random_apply(x, rng, n_trans=3)
    assert xs.shape == (6, 1, 6, 6) and g.shape == (6, 2)
    assert torch.equal(xs, Shift().apply(x.repeat(3, 1, 1, 1), g))


def test_build_group_from_specs():
    assert isinstance(build_group("shift"), Shift)
    G = build_group("rotate90*flip")
    assert isinstance(G, ProductGroup) and G.order == 8
    assert build_group("dihedral").order == 8
    assert build_group({"name": "flip", "axes": "both"}).order == 4
    H = build_group(G.spec())
    assert H.order == 8 and repr(H) == repr(G)
    assert isinstance(build_group(["rotate", "scale"]), ProductGroup)
    assert build_group(Rotate(degrees=10).spec()).degrees == 10
    assert build_group({"name": "shift", "max_shift": 2}).max_shift == 2


def test_products_of_interpolating_groups(rng):
    G = Rotate() * Scale()
    assert G.exact is False and G.order is None
    g = G.sample(torch.zeros(4, 1, 8, 8), rng)
    x = torch.rand(4, 1, 8, 8, generator=rng)
    assert G.apply(x, g).shape == x.shape
    gi = G.compose(g, G.inverse(g))
    assert torch.allclose(gi[0], torch.zeros(4), atol=1e-6) and torch.allclose(gi[1], torch.ones(4))
    with pytest.raises(NotImplementedError, match="commute"):
        (Shift() * Rotate()).inverse((Shift() * Rotate()).sample(torch.zeros(2, 1, 4, 4), rng))
    with pytest.raises(ValueError, match="infinite"):
        G.elements()


def test_errors_are_helpful(rng):
    with pytest.raises(ValueError, match="square"):
        Rotate90().apply(torch.zeros(2, 1, 6, 8), torch.tensor([1, 1]))
    with pytest.raises(ValueError, match="crop or pad"):
        Rotate().apply(torch.zeros(1, 1, 6, 8), torch.tensor([10.0]))
    with pytest.raises(ValueError, match="hw="):
        Shift().elements()
    with pytest.raises(ValueError, match="one per"):
        Shift().apply(torch.zeros(3, 1, 4, 4), torch.zeros(2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="unknown group"):
        build_group("translation")
    with pytest.raises(ValueError, match="bad parameters"):
        build_group({"name": "flip", "angle": 3})
    with pytest.raises(ValueError, match="axes"):
        Flip("x")
    with pytest.raises(ValueError, match="scale factors"):
        Scale(factors=(0, 1))
    with pytest.raises(ValueError, match="hw="):
        (Shift() * Flip()).inverse(
            (torch.zeros(1, 2, dtype=torch.long), torch.zeros(1, 2, dtype=torch.long))
        )


def test_gradients_flow_through_actions(rng):
    x = torch.rand(2, 1, 6, 6, generator=rng, requires_grad=True)
    for G in (Shift(), Rotate90() * Flip(), Rotate(), Scale()):
        g = G.sample(x, rng)
        G.apply(x, g).pow(2).sum().backward()
        assert x.grad is not None and float(x.grad.abs().sum()) > 0
        x.grad = None
    assert take(torch.arange(4), torch.tensor([2])).item() == 2


def test_sample_reads_size_and_device_from_the_batch(rng):
    """``sample(x, generator)``: one element per image of ``x``; Shift needs no size of its own."""
    x = torch.rand(6, 1, 3, 7, generator=rng)
    g = Shift().sample(x, torch.Generator().manual_seed(1))
    assert g.shape == (6, 2) and g.device == x.device
    assert bool((g[:, 0] < 3).all() and (g[:, 1] < 7).all())
    assert torch.equal(Shift().apply(x, g), torch.stack([
        torch.roll(x[b], (int(g[b, 0]), int(g[b, 1])), (-2, -1)) for b in range(6)
    ]))  # fmt: skip
    gp = (Shift() * Flip()).sample(x, rng)
    assert isinstance(gp, tuple) and all(gi.shape[0] == 6 for gi in gp)
    with pytest.raises(ValueError, match="images"):
        Shift().sample(torch.zeros(6, 3), rng)


def test_discretize_gives_the_grid_the_theory_judges_on():
    from selfrecon.groups import Flip, Rotate, Rotate90, Scale

    angles, notes = Rotate(degrees=30).discretize()
    assert sorted(angles.tolist()) == [0, 10, 20, 30, 330, 340, 350] and "every 10°" in notes[0]
    assert Rotate().discretize(n=8)[0].tolist() == [45.0 * i for i in range(8)]
    assert Rotate(angles=[5, 7]).discretize(n=100)[0].tolist() == [5, 7]  # configured list wins
    assert Scale(factors=(0.5, 2.0)).discretize(n=4)[0].tolist() == [0.5, 1.0, 1.5, 2.0]
    vals, _ = Scale(factors=(0.5, 2.0)).discretize(n=3)
    assert vals.tolist() == [1.0, 0.5, 1.25, 2.0]  # the identity is always in
    rot90 = Rotate90()
    assert torch.equal(rot90.discretize((8, 8))[0], rot90.elements((8, 8)))
    prod, notes = (Rotate(degrees=30) * Flip()).discretize((8, 8))
    assert prod[0].shape[0] == 7 * Flip().order and len(notes) == 1


def test_scale_inverse_is_exact_up_to_interpolation_on_smooth_images():
    t = torch.linspace(-1, 1, 32)
    x = (torch.cos(2 * t)[:, None] * torch.sin(1.5 * t)[None, :])[None, None].repeat(3, 1, 1, 1)
    S = Scale(padding="reflection")
    g = torch.tensor([0.8, 0.9, 1.0])
    back = S.apply(S.apply(x, g), S.inverse(g))  # zoom out, then in: the centre is all there
    err = (back - x)[..., 8:24, 8:24].abs().max()
    assert float(err) < 0.01
    rough = torch.rand(3, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    err_rough = S.apply(S.apply(rough, g[:2].repeat(2)[:3]), S.inverse(g[:2].repeat(2)[:3])) - rough
    assert float(err_rough[..., 8:24, 8:24].abs().max()) > 0.05  # interpolation loses detail

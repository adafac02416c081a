r"""The group interface, products of groups, and building groups from config specs.

A group ``G`` acts on images by transformations ``T_g``. Equivariant imaging needs only three
operations (Chen, Tachella & Davies, ICCV 2021, §3): draw ``g``, apply ``T_g``, and (for theory and
tests) invert and compose. Conventions shared by every group:

* an **element batch** ``g`` is a tensor whose first dimension is the batch (one element *per
  image*; the peer library draws one per batch). Products use a tuple of the factors' batches;
* ``sample(x, generator)`` draws one i.i.d. uniform element per image of the batch ``x`` (its
  size and device decide the rest; ``Shift`` reads the image size from it) through the caller's
  generator;
* ``apply(x, g)`` is vectorised over the batch (no Python loop over images);
* ``compose(g1, g2)`` is the element acting as ``T_{g1} ∘ T_{g2}`` (``g2`` applied first);
* ``exact`` is True when ``T_g`` permutes pixels (shifts, 90° rotations, flips); interpolating
  groups (``Rotate``, ``Scale``) are only approximately groups on a pixel grid and say so;
* ``order`` is the number of elements for finite groups, ``None`` otherwise, and finite groups
  list them on an ``(H, W)`` grid with ``elements(hw)`` (so ``apply(x.expand(order, ...),
  elements(hw))`` is the orbit).

Exact groups implement ``source_index(g, hw)``: the flat pixel each output pixel is read from, so
``T_g x`` is a single ``gather``; a product of exact groups composes these indices.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from selfrecon._registry import registrar
from selfrecon.errors import ConfigError

__all__ = ["Group", "ProductGroup", "build_group", "GROUPS", "register_group"]

GROUPS: dict[str, type[Group]] = {}

Element = Tensor | tuple  # a tuple (of element batches) for products


#: ``@register_group("name")``: a group buildable from ``"name"`` or ``{"name": name, ...}``.
register_group = registrar(GROUPS)


def _device(generator: torch.Generator | None) -> torch.device | str:
    return generator.device if generator is not None else "cpu"


def _to(g: Element, device) -> Element:
    return tuple(_to(gi, device) for gi in g) if isinstance(g, tuple) else g.to(device)


def take(g: Element, index: Tensor) -> Element:
    """Select elements ``g[index]`` (works for products' tuples)."""
    if isinstance(g, tuple):
        return tuple(take(gi, index) for gi in g)
    return g[index.to(g.device)]


def batch_size(g: Element) -> int:
    return batch_size(g[0]) if isinstance(g, tuple) else int(g.shape[0])


def gather_pixels(x: Tensor, src: Tensor) -> Tensor:
    """``out[b, c, p] = x[b, c, src[b, p]]`` over flattened pixels; ``src`` is (B or 1, H·W)."""
    b, c, h, w = x.shape
    idx = src.to(x.device)[:, None, :].expand(b, c, h * w)
    return x.reshape(b, c, h * w).gather(-1, idx).reshape(b, c, h, w)


def check_batch(x: Tensor, g: Element, group: Group) -> None:
    if x.dim() != 4:
        raise ConfigError(f"{group!r} acts on images (B, C, H, W), got shape {tuple(x.shape)}")
    if batch_size(g) != x.shape[0]:
        raise ConfigError(
            f"{group!r}: {batch_size(g)} group elements for {x.shape[0]} images; draw one per "
            "image with group.sample(x, generator)"
        )


def check_square(hw: tuple[int, int], group: Group) -> None:
    if int(hw[0]) != int(hw[1]):
        raise ConfigError(
            f"{group!r} rotates images, which needs square images but these are "
            f"{int(hw[0])}×{int(hw[1])}; crop or pad them to square first (or use Shift/Flip)"
        )


class Group:
    """Base class of the symmetry groups (see the module docstring for the conventions)."""

    name: str = ""
    exact: bool = False
    order: int | None = None
    #: its elements act differently on different image sizes (circular shifts): products compose
    #: them on a known grid (``hw=`` or the group's own ``img_shape``)
    size_dependent: bool = False

    # -- to implement ---------------------------------------------------------------------
    def _sample(self, batch: int, hw: tuple[int, int], generator) -> Element:
        """``batch`` i.i.d. elements for images of size ``hw``, on the generator's device."""
        raise NotImplementedError

    def sample(self, x: Tensor, generator: torch.Generator | None = None) -> Element:
        """One i.i.d. element per image of the batch ``x`` ``(B, C, H, W)``, on ``x``'s device."""
        if x.dim() != 4:
            raise ConfigError(
                f"{self!r} draws elements for images (B, C, H, W), got {tuple(x.shape)}"
            )
        g = self._sample(int(x.shape[0]), (int(x.shape[-2]), int(x.shape[-1])), generator)
        return _to(g, x.device)

    def apply(self, x: Tensor, g: Element) -> Tensor:
        """``T_{g_b} x_b`` for every image ``b``."""
        raise NotImplementedError

    def inverse(self, g: Element) -> Element:
        raise NotImplementedError

    def compose(self, g1: Element, g2: Element) -> Element:
        """The elements acting as ``T_{g1} ∘ T_{g2}``."""
        raise NotImplementedError

    def identity(self, batch: int = 1) -> Element:
        raise NotImplementedError

    def elements(self, hw: tuple[int, int] | None = None) -> Element:
        """Every element (finite groups), for images of size ``hw`` where the size matters."""
        raise ConfigError(f"{self!r} is infinite: it has no list of elements (order is None)")

    def discretize(
        self, hw: tuple[int, int] | None = None, n: int | None = None
    ) -> tuple[Element, list[str]]:
        """A finite batch of elements to judge the group on (:mod:`selfrecon.theory`), and notes
        saying how it was made finite. A finite group gives all its elements (``n`` unused);
        interpolating groups (rotations by any angle, scalings) give ``n`` of them on a grid, or
        their configured list."""
        return self.elements(hw), []

    def config(self) -> dict:
        return {}

    # -- shared ---------------------------------------------------------------------------
    def source_index(self, g: Element, hw: tuple[int, int]) -> Tensor:  # exact groups only
        raise ConfigError(f"{self!r} is not an exact (pixel-permuting) group")

    def random_apply(
        self, x: Tensor, generator: torch.Generator | None = None, n_trans: int = 1
    ) -> tuple[Tensor, Element]:
        """``n_trans`` transformed copies of ``x`` stacked on the batch (copy-major): ``(x', g)``.

        Copy ``k`` of image ``b`` is row ``k·B + b``; every row gets its own random element.
        """
        if int(n_trans) < 1:
            raise ConfigError(f"n_trans must be ≥ 1, got {n_trans}")
        xs = x.repeat(int(n_trans), 1, 1, 1) if n_trans > 1 else x
        g = self.sample(xs, generator)
        return self.apply(xs, g), g

    def spec(self) -> dict:
        """``{"name": ..., **constructor arguments}``; :func:`build_group` inverts it."""
        return {"name": self.name, **self.config()}

    def __mul__(self, other: Group) -> ProductGroup:
        if not isinstance(other, Group):
            return NotImplemented
        return ProductGroup(self, other)

    def __call__(self, x: Tensor, g: Element) -> Tensor:
        return self.apply(x, g)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"


# -- permutation helpers for finite exact groups --------------------------------------------
def _probe_shape(group: Group, hw) -> tuple[int, int]:
    """Image size on which pixel maps are compared (the size matters for shifts)."""
    if hw is not None:
        return (int(hw[-2]), int(hw[-1]))
    for f in getattr(group, "factors", (group,)):
        if f.size_dependent:
            if f.img_shape is None:
                raise ConfigError(
                    f"{group!r}: composing shifts with other maps depends on the image size; "
                    "pass hw=(H, W)"
                )
            return tuple(f.img_shape)
    return (5, 5)


def lookup(group: Group, src: Tensor, hw: tuple[int, int]) -> Element:
    """The elements of a finite exact ``group`` whose pixel maps equal the rows of ``src``."""
    elems = group.elements(hw)
    table = group.source_index(elems, hw)  # (n, HW)
    match = (src[:, None, :] == table[None, :, :]).all(-1)  # (B, n)
    if not bool(match.any(-1).all()):
        raise ConfigError(f"{group!r}: a composed map is not an element (the group is not closed)")
    return take(elems, match.float().argmax(-1))


class ProductGroup(Group):
    r"""All transformations ``T_{g_1} ∘ T_{g_2} ∘ … ∘ T_{g_n}`` with ``g_i ∈ G_i`` (``G_n`` first).

    Elements are tuples of the factors' element batches; sampling draws each factor uniformly and
    independently, so the product of uniform draws is uniform on the set of transformations whenever
    each transformation has the same number of representations (true for all products here).
    ``Rotate90() * Flip()`` is the dihedral group of order 8. ``order`` is the product of the
    factors' orders (an upper bound on distinct transformations: ``Rotate90() * Flip("both")``
    lists each of its 8 transformations twice).

    ``compose``/``inverse``: for exact finite factors they are computed from the pixel maps (the
    factors need not commute: rotations and flips do not); for ``Rotate * Scale`` (commuting, both
    about the image centre) factor-wise; other infinite products raise ``NotImplementedError``.
    """

    name = "product"

    def __init__(self, *factors: Group):
        flat: list[Group] = []
        for f in factors:
            if not isinstance(f, Group):
                raise TypeError(f"group factors must be Group instances, got {type(f).__name__}")
            flat.extend(f.factors if isinstance(f, ProductGroup) else [f])
        if len(flat) < 2:
            raise ConfigError("a product group needs at least two factors")
        self.factors = tuple(flat)
        self.exact = all(f.exact for f in flat)

    @property
    def order(self) -> int | None:
        orders = [f.order for f in self.factors]
        return math.prod(orders) if all(o is not None for o in orders) else None

    def _sample(self, batch, hw, generator):
        return tuple(f._sample(batch, hw, generator) for f in self.factors)

    def _check(self, g) -> None:
        if not isinstance(g, tuple) or len(g) != len(self.factors):
            raise ConfigError(
                f"{self!r} elements are tuples of {len(self.factors)} element batches "
                "(one per factor); draw them with .sample()"
            )

    def source_index(self, g, hw):
        self._check(g)
        src = None
        for f, gi in zip(self.factors, g, strict=True):  # T_1 ∘ T_2 ∘ … : src = src_n[… src_1]
            s = f.source_index(gi, hw)
            if src is None:
                src = s
            else:
                n = max(s.shape[0], src.shape[0])
                src = s.expand(n, -1).gather(-1, src.expand(n, -1))
        return src

    def apply(self, x, g):
        self._check(g)
        check_batch(x, g, self)
        if self.exact:
            return gather_pixels(x, self.source_index(g, x.shape[-2:]))
        for f, gi in reversed(list(zip(self.factors, g, strict=True))):
            x = f.apply(x, gi)
        return x

    def identity(self, batch=1):
        return tuple(f.identity(batch) for f in self.factors)

    def elements(self, hw=None):
        if not all(f.exact for f in self.factors):
            return super().elements()
        per = [f.elements(hw) for f in self.factors]
        sizes = [batch_size(e) for e in per]
        grids = torch.meshgrid(*[torch.arange(n) for n in sizes], indexing="ij")
        return tuple(take(e, gr.reshape(-1)) for e, gr in zip(per, grids, strict=True))

    def discretize(self, hw=None, n=None):
        """Every combination of the factors' discretisations (the product's finite grid)."""
        per, notes = [], []
        for f in self.factors:
            e, nf = f.discretize(hw, n)
            per.append(e)
            notes.extend(nf)
        sizes = [batch_size(e) for e in per]
        grids = torch.meshgrid(*[torch.arange(k) for k in sizes], indexing="ij")
        return tuple(take(e, gr.reshape(-1)) for e, gr in zip(per, grids, strict=True)), notes

    def _commuting(self) -> bool:
        from selfrecon.groups.geometric import Rotate, Scale

        return all(isinstance(f, (Rotate, Scale)) for f in self.factors)

    def _via_pixels(self, src: Tensor, hw) -> Element:
        return lookup(self, src, hw)

    def inverse(self, g, hw=None):
        self._check(g)
        if self.exact:
            hw = _probe_shape(self, hw)
            src = self.source_index(g, hw)
            inv = torch.empty_like(src).scatter_(
                -1, src, torch.arange(src.shape[-1]).expand_as(src).contiguous()
            )
            return self._via_pixels(inv, hw)
        if self._commuting():
            return tuple(f.inverse(gi) for f, gi in zip(self.factors, g, strict=True))
        raise NotImplementedError(
            f"inverse of {self!r}: the factors do not commute and the product is infinite"
        )

    def compose(self, g1, g2, hw=None):
        self._check(g1)
        self._check(g2)
        if self.exact:
            hw = _probe_shape(self, hw)
            s1, s2 = self.source_index(g1, hw), self.source_index(g2, hw)
            s1 = s1.expand(max(s1.shape[0], s2.shape[0]), -1)
            return self._via_pixels(s2.expand_as(s1).gather(-1, s1), hw)
        if self._commuting():
            return tuple(f.compose(a, b) for f, a, b in zip(self.factors, g1, g2, strict=True))
        raise NotImplementedError(
            f"composition in {self!r}: the factors do not commute and the product is infinite"
        )

    def spec(self) -> dict:
        return {"name": "product", "factors": [f.spec() for f in self.factors]}

    def __repr__(self) -> str:
        return " * ".join(repr(f) for f in self.factors)


_ALIASES = {"dihedral": "rotate90*flip", "d4": "rotate90*flip"}


def build_group(spec: str | dict | list | Group) -> Group:
    """Build a group from a config spec.

    Accepts a name (``"shift"``, ``"rotate90"``, ``"flip"``, ``"rotate"``, ``"scale"``), a
    product written with ``*`` (``"rotate90*flip"``; alias ``"dihedral"``), a dict
    ``{"name": ..., **kwargs}`` (``{"name": "product", "factors": [...]}`` for products), or a list
    of specs (their product).
    """
    if isinstance(spec, Group):
        return spec
    if isinstance(spec, (list, tuple)):
        return (
            ProductGroup(*[build_group(s) for s in spec]) if len(spec) > 1 else build_group(spec[0])
        )
    if isinstance(spec, str):
        s = _ALIASES.get(spec.strip().lower(), spec.strip().lower())
        parts = [p.strip() for p in s.split("*")]
        if len(parts) > 1:
            return ProductGroup(*[build_group(p) for p in parts])
        spec = {"name": parts[0]}
    if not isinstance(spec, dict):
        raise ConfigError(f"a group spec is a name, a dict or a list; got {type(spec).__name__}")
    spec = dict(spec)
    name = spec.pop("name", None)
    if name == "product":
        return ProductGroup(*[build_group(f) for f in spec.get("factors", [])])
    if name not in GROUPS:
        raise ConfigError(
            f"unknown group {name!r}; choose one of {sorted(GROUPS)} "
            "or a product like 'rotate90*flip'"
        )
    try:
        return GROUPS[name](**spec)
    except TypeError as e:
        raise ConfigError(f"bad parameters for group {name!r}: {e}") from None

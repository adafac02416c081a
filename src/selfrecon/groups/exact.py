r"""Exact groups: transformations that permute pixels, so ``T_g`` is an isometry on the grid.

* :class:`Shift` — integer circular shifts ``(T_g x)[i, j] = x[(i - dy) mod H, (j - dx) mod W]``
  (the group ``Z_H × Z_W``; EI inpainting/CS, Chen et al., ICCV 2021, §4);
* :class:`Rotate90` — rotations by ``k · 90°`` (``torch.rot90`` convention; square images only);
* :class:`Flip` — horizontal and/or vertical mirror images.

Each defines ``source_index(g, (H, W))``: for every output pixel, the flat input pixel it copies,
so applying any batch of elements is one ``gather`` (no loop over images or group elements).
"""

from __future__ import annotations

import torch
from torch import Tensor

from selfrecon.errors import ConfigError
from selfrecon.groups.base import (
    Group,
    _device,
    check_batch,
    check_square,
    gather_pixels,
    register_group,
)

__all__ = ["Shift", "Rotate90", "Flip"]


def _as_long(g: Tensor, shape: tuple, group: Group) -> Tensor:
    g = torch.as_tensor(g)
    if g.dim() != len(shape) + 1 or tuple(g.shape[1:]) != shape:
        raise ConfigError(
            f"{group!r} elements have shape (B, {', '.join(map(str, shape))})".replace(", )", ")")
            + f", got {tuple(g.shape)}; draw them with .sample()"
        )
    return g.long()


class _PixelGroup(Group):
    exact = True
    _elem_shape: tuple = ()

    def apply(self, x: Tensor, g: Tensor) -> Tensor:
        g = _as_long(g, self._elem_shape, self)
        check_batch(x, g, self)
        return gather_pixels(x, self.source_index(g.to(x.device), x.shape[-2:]))


def _grid(hw: tuple[int, int], device) -> tuple[Tensor, Tensor]:
    h, w = int(hw[0]), int(hw[1])
    i = torch.arange(h, device=device)[:, None].expand(h, w).reshape(-1)
    j = torch.arange(w, device=device)[None, :].expand(h, w).reshape(-1)
    return i, j


@register_group("shift")
class Shift(_PixelGroup):
    r"""Integer circular shifts ``Z_H × Z_W``: element ``(dy, dx)``, ``T_g x = roll(x, (dy, dx))``.

    Parameters
    ----------
    max_shift : int, optional
        Draw ``dy, dx`` uniformly from ``[-max_shift, max_shift]`` (a symmetric generating set)
        instead of uniformly from the whole group (the default, as in the EI code).
    img_shape : (H, W), optional
        Image size; gives ``order = H·W`` and lets ``elements()`` run without ``hw``. Sampling
        reads the size from the batch it is drawn for (``sample(x, generator)``).
    """

    _elem_shape = (2,)
    size_dependent = True

    def __init__(self, max_shift: int | None = None, img_shape: tuple[int, int] | None = None):
        if max_shift is not None and (int(max_shift) != max_shift or max_shift < 0):
            raise ConfigError(f"max_shift must be a non-negative integer, got {max_shift}")
        self.max_shift = None if max_shift is None else int(max_shift)
        self.img_shape = None if img_shape is None else (int(img_shape[-2]), int(img_shape[-1]))

    @property
    def order(self) -> int | None:
        return None if self.img_shape is None else self.img_shape[0] * self.img_shape[1]

    def _shape(self, hw) -> tuple[int, int]:
        shape = hw if hw is not None else self.img_shape
        if shape is None:
            raise ConfigError(
                "Shift() lists its elements for one image size: pass hw=(H, W) (or build it with "
                "Shift(img_shape=(H, W)))"
            )
        return (int(shape[-2]), int(shape[-1]))

    def _sample(self, batch, hw, generator):
        dev = _device(generator)
        if self.max_shift is not None:
            m = self.max_shift
            return torch.randint(-m, m + 1, (int(batch), 2), generator=generator, device=dev)
        h, w = self._shape(hw)
        u = torch.randint(0, h * w, (int(batch),), generator=generator, device=dev)
        return torch.stack([u // w, u % w], dim=1)

    def source_index(self, g, hw):
        g = _as_long(g, (2,), self)
        h, w = int(hw[0]), int(hw[1])
        i, j = _grid(hw, g.device)
        r = (i[None] - g[:, :1]) % h
        c = (j[None] - g[:, 1:]) % w
        return r * w + c

    def inverse(self, g):
        return -_as_long(g, (2,), self)

    def compose(self, g1, g2):
        return _as_long(g1, (2,), self) + _as_long(g2, (2,), self)

    def identity(self, batch=1):
        return torch.zeros(int(batch), 2, dtype=torch.long)

    def elements(self, hw=None):
        h, w = self._shape(hw)
        u = torch.arange(h * w)
        return torch.stack([u // w, u % w], dim=1)

    def config(self) -> dict:
        out = {}
        if self.max_shift is not None:
            out["max_shift"] = self.max_shift
        if self.img_shape is not None:
            out["img_shape"] = list(self.img_shape)
        return out


@register_group("rotate90")
class Rotate90(_PixelGroup):
    r"""Rotations by ``k · 90°``, ``k ∈ {0, 1, 2, 3}``: ``T_k x = torch.rot90(x, k, (-2, -1))``.

    The cyclic group of order 4 (EI/REI use rotations for CT and MRI, Chen et al. 2021/2022).
    Square images only: a quarter turn maps an H×W grid onto a W×H grid.
    """

    order = 4
    _elem_shape = ()

    def _sample(self, batch, hw, generator):
        return torch.randint(0, 4, (int(batch),), generator=generator, device=_device(generator))

    def source_index(self, g, hw):
        g = _as_long(g, (), self)
        check_square(hw, self)
        n = int(hw[0])
        i, j = _grid(hw, g.device)
        rows = torch.stack([i, j, n - 1 - i, n - 1 - j])  # (k, N²): out[i, j] = x[rows, cols]
        cols = torch.stack([j, n - 1 - i, n - 1 - j, i])
        table = rows * n + cols
        return table[g % 4]

    def inverse(self, g):
        return (-_as_long(g, (), self)) % 4

    def compose(self, g1, g2):
        return (_as_long(g1, (), self) + _as_long(g2, (), self)) % 4

    def identity(self, batch=1):
        return torch.zeros(int(batch), dtype=torch.long)

    def elements(self, hw=None):
        return torch.arange(4)


@register_group("flip")
class Flip(_PixelGroup):
    r"""Mirror images. Element ``(fv, fh) ∈ {0, 1}²``: ``fv`` flips rows (upside down), ``fh``
    flips columns (left-right).

    Parameters
    ----------
    axes : {"h", "v", "both"}
        Which flips the group holds: ``"h"`` (default, order 2 — ``Rotate90() * Flip()`` is then
        the dihedral group of order 8), ``"v"`` (order 2) or ``"both"`` (the Klein group, order 4).
    """

    _elem_shape = (2,)

    def __init__(self, axes: str = "h"):
        if axes not in ("h", "v", "both"):
            raise ConfigError(f"Flip axes must be 'h', 'v' or 'both', got {axes!r}")
        self.axes = axes
        self._elements = {
            "h": torch.tensor([[0, 0], [0, 1]]),
            "v": torch.tensor([[0, 0], [1, 0]]),
            "both": torch.tensor([[0, 0], [0, 1], [1, 0], [1, 1]]),
        }[axes]
        self.order = int(self._elements.shape[0])

    def _sample(self, batch, hw, generator):
        dev = _device(generator)
        k = torch.randint(0, self.order, (int(batch),), generator=generator, device=dev)
        return self._elements.to(dev)[k]

    def source_index(self, g, hw):
        g = _as_long(g, (2,), self)
        h, w = int(hw[0]), int(hw[1])
        i, j = _grid(hw, g.device)
        r = torch.where(g[:, :1] == 1, h - 1 - i[None], i[None])
        c = torch.where(g[:, 1:] == 1, w - 1 - j[None], j[None])
        return r * w + c

    def inverse(self, g):
        return _as_long(g, (2,), self).clone()

    def compose(self, g1, g2):
        return _as_long(g1, (2,), self) ^ _as_long(g2, (2,), self)

    def identity(self, batch=1):
        return torch.zeros(int(batch), 2, dtype=torch.long)

    def elements(self, hw=None):
        return self._elements.clone()

    def config(self) -> dict:
        return {"axes": self.axes}

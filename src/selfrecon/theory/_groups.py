r"""Group actions as the theory needs them: a finite list of transformations and their transposes.

For the stacked operator ``[A T_1; …; A T_|G|]`` we need every ``T_g`` and ``T_gᵀ``:

* **exact groups** (shifts, 90° rotations, flips and their products) permute pixels: each element
  is a pixel map ``src_g`` (``(T_g x)[p] = x[src_g[p]]``, the groups' ``source_index``), ``T_gᵀ =
  T_g⁻¹`` is the inverse permutation, and duplicate maps (``Flip("both") * Rotate90()`` lists each
  transformation twice) are removed, so ``order`` counts distinct transformations;
* **interpolating groups** (``Rotate``, ``Scale``) are infinite: we use the finite set of elements
  their :meth:`~selfrecon.groups.Group.discretize` gives — their own ``angles``/``values`` when
  configured, otherwise 36 angles every 10° or 9 scales over the range (and 1) — said so in the
  report's notes; ``T_gᵀ`` is obtained exactly by automatic
  differentiation (``T_g`` is linear, so its vector-Jacobian product is its transpose); the
  resampling is not orthogonal, so ``T_g⁻¹ ≠ T_gᵀ`` there.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from selfrecon.groups import Group, Shift
from selfrecon.groups.base import batch_size, take

__all__ = ["GroupAction", "group_label"]


def group_label(group: Group | None) -> str:
    """A short readable name (``"Rotate90 * Flip(axes='h')"``; ``"none"`` for no group)."""
    if group is None:
        return "none"
    return repr(group)


class GroupAction:
    r"""The transformations ``T_g`` of a group on images of shape ``(C, H, W)``, batched.

    Attributes
    ----------
    order : int
        Number of distinct transformations used (for infinite groups, the finite set's size).
    exact : bool
        Pixel permutations (``T_gᵀ = T_g⁻¹``).
    full_shift : bool
        The whole cyclic shift group ``Z_H × Z_W`` (the FFT path applies).
    src : Tensor or None
        ``(order, H·W)`` pixel maps of an exact group (``None`` for the full shift group on large
        grids, where it is never needed).
    """

    def __init__(self, group: Group | None, sig_shape: tuple[int, int, int]):
        self.group = group
        self.sig_shape = tuple(sig_shape)
        c, h, w = self.sig_shape
        self.hw = (h, w)
        self.notes: list[str] = []
        self.label = group_label(group)
        self.src: Tensor | None = None
        self.elements = None
        if group is None:  # the trivial group {identity}
            self.exact, self.full_shift, self.order = True, False, 1
            self.src = torch.arange(h * w)[None]
            return
        if not isinstance(group, Group):
            raise TypeError(
                f"group must be a selfrecon.groups.Group or None, got {type(group).__name__}"
            )
        self.exact = bool(group.exact)
        self.full_shift = isinstance(group, Shift)
        if self.full_shift:
            self.order = h * w
            if h * w <= 4096:
                self.src = group.source_index(group.elements(self.hw), self.hw)
            else:
                self.elements = group.elements(self.hw)
            return
        if self.exact:
            src = group.source_index(group.elements(self.hw), self.hw)
            uniq = torch.unique(src, dim=0)
            ident = torch.arange(h * w)
            # identity first (the character code and readers expect it there)
            is_id = (uniq == ident).all(-1)
            self.src = torch.cat([uniq[is_id], uniq[~is_id]], dim=0)
            if not bool(is_id.any()):
                self.src = torch.cat([ident[None], self.src], dim=0)
            self.order = int(self.src.shape[0])
            if self.order < batch_size(group.elements(self.hw)):
                self.notes.append(
                    f"{self.label} lists {batch_size(group.elements(self.hw))} elements "
                    f"but only {self.order} distinct transformations; |G| = {self.order}"
                )
        else:
            self.elements, notes = group.discretize(self.hw)
            self.notes.extend(notes)
            self.order = batch_size(self.elements)

    # -- exact groups ---------------------------------------------------------------------
    @property
    def inverse_src(self) -> Tensor:
        src = self.src
        inv = torch.empty_like(src)
        inv.scatter_(-1, src, torch.arange(src.shape[-1]).expand_as(src).contiguous())
        return inv

    def fixed_points(self) -> Tensor:
        """Number of fixed coordinates of each ``T_g`` (``tr T_g``, all channels): ``(order,)``."""
        if self.src is None:  # full shift group: only the identity fixes pixels
            out = torch.zeros(self.order, dtype=torch.long)
            out[0] = math.prod(self.sig_shape)
            return out
        ident = torch.arange(self.src.shape[-1])
        return (self.src == ident).sum(-1) * self.sig_shape[0]

    # -- all transformations of a batch ---------------------------------------------------
    def forward_all(self, x: Tensor) -> Tensor:
        """``(b, C, H, W)`` → ``(order, b, C, H, W)`` with ``T_g x`` in slot ``g``."""
        b = x.shape[0]
        if self.src is not None:
            flat = x.reshape(b, x.shape[1], -1)
            out = flat[:, :, self.src]  # (b, C, order, HW)
            return out.permute(2, 0, 1, 3).reshape(self.order, *x.shape)
        g = take(self.elements, torch.arange(self.order).repeat_interleave(b))
        xs = x.repeat(self.order, 1, 1, 1)
        return self.group.apply(xs, g).reshape(self.order, *x.shape)

    def transpose_all(self, z: Tensor) -> Tensor:
        """``(order, b, C, H, W)`` → ``Σ_g T_gᵀ z_g``: ``(b, C, H, W)``."""
        order, b = z.shape[:2]
        shape = z.shape[2:]
        if self.src is not None:
            inv = self.inverse_src  # (order, HW)
            flat = z.reshape(order, b, shape[0], -1)
            idx = inv[:, None, None, :].expand_as(flat)
            return flat.gather(-1, idx).sum(0).reshape(b, *shape)
        g = take(self.elements, torch.arange(self.order).repeat_interleave(b))
        with torch.enable_grad():
            probe = torch.zeros((order * b, *shape), dtype=z.dtype, requires_grad=True)
            out = self.group.apply(probe, g)
            (grad,) = torch.autograd.grad(out, probe, grad_outputs=z.reshape(order * b, *shape))
        return grad.reshape(order, b, *shape).sum(0)

    def matrices(self) -> Tensor:
        """Dense ``(order, n, n)`` matrices ``T_g`` (small interpolating problems only)."""
        c, h, w = self.sig_shape
        n = c * h * w
        eye = torch.eye(n, dtype=torch.float64).reshape(n, c, h, w)
        cols = self.forward_all(eye)  # (order, n, C, H, W): column j of T_g
        return cols.reshape(self.order, n, n).transpose(1, 2).contiguous()

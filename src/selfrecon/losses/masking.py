r"""Grid masking for J-invariance (Batson & Royer, "Noise2Self", ICML 2019, §3 and App. C).

This is the **one** masking implementation in selfrecon: :class:`~selfrecon.losses.Noise2SelfLoss`,
:class:`~selfrecon.models.JInvariant` and the classical J-invariant calibration all use it.

A grid of width ``w`` splits the pixels into ``J = w²`` disjoint sets. Set ``i`` ("phase ``i``")
holds the pixels whose row is ``≡ i mod w`` and whose column is ``≡ i div w`` (mod ``w``). A masked
copy of an image replaces the pixels of one set by

* ``mode="interpolate"``: the weighted mean of the 8 neighbours (weights ½ on the diagonals, 1 on
  the edges, centre excluded, normalised to sum 1; reflect padding at the borders), or
* ``mode="zero"``: zero.

Because the masked pixels of one phase are ``w ≥ 2`` apart, their neighbours are never masked in the
same copy, so the masked copy does not depend on the masked pixels' values at all. A function
applied to the masked copy and read **on the masked pixels only** is therefore J-invariant
(Batson & Royer, Definition 1). Colour images are handled per channel (the original masker only
took single-channel images).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor

from selfrecon.errors import ConfigError

__all__ = ["GridMasker"]

_KERNEL = torch.tensor([[0.5, 1.0, 0.5], [1.0, 0.0, 1.0], [0.5, 1.0, 0.5]]) / 6.0


class GridMasker:
    r"""Grid masks of width ``w`` (``w²`` phases) and the J-invariant evaluation built on them.

    Parameters
    ----------
    width : int
        Grid spacing ``w ≥ 2`` (Noise2Self uses 4: 16 masks, 1/16 of the pixels masked per copy).
    mode : {"interpolate", "zero"}
        What a masked pixel is replaced by (see the module docstring).
    """

    def __init__(self, width: int = 4, mode: str = "interpolate"):
        if int(width) != width or int(width) < 2:
            raise ConfigError(
                "grid mask width must be an integer ≥ 2 (masked pixels need unmasked "
                f"neighbours); got {width}"
            )
        if mode not in ("interpolate", "zero"):
            raise ConfigError(f"masking mode must be 'interpolate' or 'zero', got {mode!r}")
        self.width = int(width)
        self.mode = mode

    @property
    def n_masks(self) -> int:
        """Number of phases ``w²``; every pixel is masked in exactly one of them."""
        return self.width**2

    def __repr__(self) -> str:
        return f"GridMasker(width={self.width}, mode={self.mode!r})"

    # -- masks ----------------------------------------------------------------------------
    def _check_index(self, index: Tensor) -> None:
        if bool(((index < 0) | (index >= self.n_masks)).any()):
            raise ConfigError(f"mask index must be in [0, {self.n_masks}) for width {self.width}")

    def _grid(self, hw: tuple[int, int], index: Tensor, device, dtype) -> Tensor:
        """``(N, 1, H, W)`` masks for a vector of phases ``index`` (N,)."""
        h, w = int(hw[0]), int(hw[1])
        index = index.to(device=device, dtype=torch.long)
        self._check_index(index)
        rows = torch.arange(h, device=device) % self.width
        cols = torch.arange(w, device=device) % self.width
        rsel = rows[None, :, None] == (index % self.width)[:, None, None]
        csel = cols[None, None, :] == (index // self.width)[:, None, None]
        return (rsel & csel).to(dtype)[:, None]

    def mask(
        self,
        shape_hw: tuple[int, int],
        index: int,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> Tensor:
        """The ``(1, 1, H, W)`` 0/1 mask of phase ``index`` (1 = masked pixel).

        Masked pixels: rows ``≡ index mod w``, columns ``≡ index div w`` (mod ``w``).
        """
        return self._grid(tuple(shape_hw), torch.tensor([int(index)]), device or "cpu", dtype)

    def sample_index(self, batch: int, generator: torch.Generator | None = None) -> Tensor:
        """``(B,)`` random phases, one per image, drawn from ``generator``."""
        dev = generator.device if generator is not None else "cpu"
        return torch.randint(0, self.n_masks, (int(batch),), generator=generator, device=dev)

    # -- masked copies --------------------------------------------------------------------
    def interpolate(self, x: Tensor) -> Tensor:
        """Per-channel weighted mean of the 8 neighbours (½ diagonals, 1 edges; reflect padding)."""
        _check_images(x)
        c = x.shape[1]
        k = _KERNEL.to(device=x.device, dtype=x.dtype).expand(c, 1, 3, 3)
        return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), k, groups=c)

    def _fill(self, x: Tensor, mask: Tensor) -> Tensor:
        if self.mode == "zero":
            return x * (1 - mask)
        return x * (1 - mask) + self.interpolate(x) * mask

    def apply(self, x: Tensor, index: int) -> tuple[Tensor, Tensor]:
        """Mask phase ``index`` in every image: returns ``(x_masked, mask (1, 1, H, W))``."""
        _check_images(x)
        m = self.mask(x.shape[-2:], index, x.device, x.dtype)
        return self._fill(x, m), m

    def apply_batch(self, x: Tensor, index: Tensor) -> tuple[Tensor, Tensor]:
        """Mask phase ``index[b]`` in image ``b``: returns ``(x_masked, mask (B, 1, H, W))``."""
        _check_images(x)
        if index.shape != (x.shape[0],):
            raise ConfigError(
                "apply_batch needs one mask index per image: got "
                f"{tuple(index.shape)} for {x.shape[0]} images"
            )
        m = self._grid(x.shape[-2:], index, x.device, x.dtype)
        return self._fill(x, m), m

    # -- J-invariant evaluation -----------------------------------------------------------
    def j_invariant(
        self, f: Callable[[Tensor], Tensor], x: Tensor, chunk: int | None = None
    ) -> Tensor:
        r"""``f_J(x)``: each pixel read from the pass in which it was masked.

        ``f_J(x)_j = f(x_masked^{(i(j))})_j`` where ``i(j)`` is the phase masking pixel ``j``. All
        ``w²`` masked copies are stacked on the batch dimension (phase-major) and evaluated in
        chunks of ``chunk`` images per call to ``f`` (default: all at once). ``f`` maps
        ``(N, C, H, W)`` to ``(N, C', H, W)``; output channels may differ from input channels.
        Cost: ``w²`` network evaluations per image.
        """
        _check_images(x)
        b = x.shape[0]
        j = self.n_masks
        idx = torch.arange(j, device=x.device).repeat_interleave(b)  # phase-major order
        xs, ms = self.apply_batch(x.repeat(j, 1, 1, 1), idx)
        if chunk is None or chunk >= xs.shape[0]:
            out = f(xs)
        else:
            if int(chunk) < 1:
                raise ConfigError(f"chunk must be a positive number of images, got {chunk}")
            out = torch.cat([f(xs[s : s + chunk]) for s in range(0, xs.shape[0], int(chunk))])
        if out.shape[0] != xs.shape[0] or out.shape[-2:] != x.shape[-2:]:
            raise ConfigError(
                "j_invariant needs f to map (N, C, H, W) images to (N, C', H, W) images of the "
                f"same size; got {tuple(out.shape)} for input {tuple(xs.shape)}"
            )
        return (out * ms).reshape(j, b, *out.shape[1:]).sum(0)


def _check_images(x: Tensor) -> None:
    if x.dim() != 4:
        raise ConfigError(f"grid masking expects images (B, C, H, W), got shape {tuple(x.shape)}")
    if x.shape[-1] < 2 or x.shape[-2] < 2:
        raise ConfigError(
            f"grid masking needs images of at least 2×2 pixels, got {tuple(x.shape[-2:])}"
        )

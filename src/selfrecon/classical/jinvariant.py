r"""J-invariant versions of arbitrary image → image functions by grid masking.

A function ``f`` is J-invariant when ``f(y)_J`` does not depend on ``y_J`` for every set ``J`` of a
partition of the pixels (Batson & Royer, "Noise2Self", ICML 2019, Definition 1). Any ``f`` becomes
one by that paper's grid-masking construction:

    f_J(y)_j = f(y^{(i(j))})_j,

where ``y^{(i)}`` is ``y`` with the pixels of grid phase ``i`` replaced by the mean of their
neighbours and ``i(j)`` is the phase containing pixel ``j``. The masking itself is
:class:`selfrecon.losses.masking.GridMasker` (the project's single implementation); this module only
adapts it to NumPy images and to SciPy / scikit-image denoisers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import numpy as np
import torch

from selfrecon.errors import ConfigError
from selfrecon.losses.masking import GridMasker

__all__ = ["j_invariant", "to_chw_tensor", "from_chw_tensor"]

ImageT = TypeVar("ImageT", np.ndarray, torch.Tensor)


def to_chw_tensor(image: np.ndarray) -> torch.Tensor:
    """NumPy ``(H, W)`` / ``(H, W, C)`` → float64 tensor ``(1, C, H, W)`` (no copy of semantics)."""
    a = np.asarray(image, dtype=np.float64)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3:
        raise ConfigError(
            f"expected an image of shape (H, W) or (H, W, C), got shape {np.shape(image)}"
        )
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))[None]


def from_chw_tensor(t: torch.Tensor, like_ndim: int) -> np.ndarray:
    """Inverse of :func:`to_chw_tensor`: ``(1, C, H, W)`` → ``(H, W)`` or ``(H, W, C)``."""
    a = t[0].detach().cpu().numpy().transpose(1, 2, 0)
    return a[:, :, 0] if like_ndim == 2 else a


def j_invariant(
    denoiser: Callable[[ImageT], ImageT],
    width: int = 4,
    mode: str = "interpolate",
    chunk: int | None = None,
) -> Callable[[ImageT], ImageT]:
    r"""Wrap ``denoiser`` into its J-invariant version ``f_J`` by grid masking.

    ``f_J(y)_j = f(y^{(i(j))})_j``: every pixel is read from the pass in which it was replaced by
    the weighted mean of its 8 neighbours (``mode="interpolate"``) or by zero (``mode="zero"``)
    (Batson & Royer, ICML 2019). The result does not depend on ``y_j`` at pixel ``j``.

    * **NumPy** input ``(H, W)`` or ``(H, W, C)``: ``denoiser`` takes and returns a NumPy image of
      the same shape; it is called once per phase (``width²`` calls). A loop over phases is
      unavoidable for SciPy / scikit-image routines, which take one image at a time; the pixel
      work stays inside them.
    * **torch** input ``(B, C, H, W)``: ``denoiser`` maps a batch to a batch; all ``width²`` masked
      copies are stacked on the batch dimension and evaluated in chunks of ``chunk`` images
      (default: all at once) by :meth:`GridMasker.j_invariant`.

    Cost: ``width²`` evaluations of ``denoiser``.
    """
    masker = GridMasker(width, mode)

    def f_j(image: ImageT) -> ImageT:
        if isinstance(image, torch.Tensor):
            return masker.j_invariant(denoiser, image, chunk=chunk)
        image = np.asarray(image)
        x = to_chw_tensor(image)
        out: torch.Tensor | None = None
        for i in range(masker.n_masks):
            xm, m = masker.apply(x, i)
            y = np.asarray(denoiser(from_chw_tensor(xm, image.ndim)))
            if y.shape != image.shape:
                raise ConfigError(
                    f"j_invariant needs a denoiser that returns an image of the input's shape "
                    f"{image.shape}; it returned {y.shape}"
                )
            term = to_chw_tensor(y) * m
            out = term if out is None else out + term
        assert out is not None
        return from_chw_tensor(out, image.ndim).astype(np.result_type(image.dtype, np.float32))

    f_j.width = masker.width  # type: ignore[attr-defined]
    f_j.is_j_invariant = True  # type: ignore[attr-defined]
    f_j.__doc__ = f"J-invariant (grid width {masker.width}, {mode}) version of {denoiser!r}"
    return f_j

r"""Compressed sensing with a dense random Gaussian matrix."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from selfrecon.errors import ConfigError
from selfrecon.physics.base import LinearOperator, _cache_key, check_device, check_image
from selfrecon.physics.physics import register_operator

__all__ = ["CompressedSensing", "MatrixOperator"]


class MatrixOperator(LinearOperator):
    r"""``A x = M vec(x)``: a dense ``(m, n)`` matrix ``M`` on flattened ``(C, H, W)`` images.

    Measurements are ``(B, m)``. ``A† = M⁺`` (Moore-Penrose pseudo-inverse, computed once by SVD and
    cached) — closed form; :meth:`pinv_cg` gives the conjugate-gradient answer for comparison.
    """

    measurement_ndim = 1  # y is (B, m)

    exact_pinv = True  # A A⁺ = I for a full-row-rank matrix (Gaussian and Bernoulli ones are)

    def __init__(self, matrix: Tensor, img_shape: tuple[int, ...]):
        super().__init__()
        shape = tuple(int(s) for s in img_shape)
        if len(shape) == 2:
            shape = (1, *shape)
        if matrix.dim() != 2 or matrix.shape[1] != math.prod(shape):
            raise ConfigError(
                f"matrix has shape {tuple(matrix.shape)} but images {shape} have "
                f"{math.prod(shape)} pixels"
            )
        self.in_shape = shape
        self.register_buffer("matrix", matrix)
        self._pinv_cache: Tensor | None = None
        self._pinv_key: tuple | None = None

    def forward(self, x: Tensor) -> Tensor:
        check_image(x, self.in_shape, op=type(self).__name__)
        if x.is_complex() and not self.matrix.is_complex():
            # .to(real dtype) would silently drop the imaginary part
            raise ConfigError(
                f"{type(self).__name__} has a real matrix but the images of shape "
                f"{tuple(x.shape)} are complex ({x.dtype}); pass real images"
            )
        check_device(x, self.matrix, type(self).__name__)
        return x.reshape(x.shape[0], -1).to(self.matrix.dtype) @ self.matrix.T

    def adjoint(self, y: Tensor) -> Tensor:
        if y.dim() != 2 or y.shape[1] != self.matrix.shape[0]:
            raise ConfigError(
                f"measurements have shape {tuple(y.shape)} but {type(self).__name__} expects (B, "
                f"{self.matrix.shape[0]})"
            )
        return (y.to(self.matrix.dtype) @ self.matrix).reshape(y.shape[0], *self.in_shape)

    def _pinv_matrix(self) -> Tensor:
        M = self.matrix
        # Keyed on the storage and its version counter too: load_state_dict() copies a new matrix
        # into the same buffer in place, which must not leave a stale pseudo-inverse behind.
        key = _cache_key(M)
        if self._pinv_cache is None or self._pinv_key != key:
            self._pinv_cache = torch.linalg.pinv(M.double()).to(M.dtype)
            self._pinv_key = key
        return self._pinv_cache

    def pinv(self, y: Tensor, tol: float = 1e-6, max_iter: int = 100) -> Tensor:
        if y.dim() != 2 or y.shape[1] != self.matrix.shape[0]:
            raise ConfigError(
                f"measurements have shape {tuple(y.shape)} but {type(self).__name__} expects (B, "
                f"{self.matrix.shape[0]})"
            )
        return (y.to(self.matrix.dtype) @ self._pinv_matrix().T).reshape(y.shape[0], *self.in_shape)

    def _apply(self, fn, recurse=True):  # keep the cached pseudo-inverse on the right device
        self._pinv_cache = None
        return super()._apply(fn, recurse)


@register_operator("cs")
class CompressedSensing(MatrixOperator):
    r"""``A x = G vec(x)``, ``G ∈ R^{m×n}`` with i.i.d. entries ``N(0, 1/m)``.

    The EI paper's CS toy (Chen et al., ICCV 2021, §5): USPS 16×16, ``m = 64`` (4× compression),
    ``A† = G⁺``. The scaling ``1/m`` makes ``E[GᵀG] = I``.

    Parameters
    ----------
    m : int
        Number of measurements.
    img_shape : tuple
        ``(H, W)`` or ``(C, H, W)``.
    generator : torch.Generator, optional
        Seeded source of ``G``.
    matrix : Tensor, optional
        A given matrix (used when rebuilding from a saved spec).
    """

    def __init__(
        self,
        m: int,
        img_shape: tuple[int, ...],
        generator: torch.Generator | None = None,
        matrix: Tensor | None = None,
    ):
        shape = tuple(int(s) for s in img_shape)
        n = math.prod(shape)
        if not 0 < int(m):
            raise ConfigError(f"CompressedSensing needs m ≥ 1 measurements, got {m}")
        if matrix is None:
            dev = generator.device if generator is not None else "cpu"
            matrix = torch.randn((int(m), n), generator=generator, device=dev).cpu() / math.sqrt(
                int(m)
            )
        if matrix.shape[0] != int(m):
            raise ConfigError(f"matrix has {matrix.shape[0]} rows but m={m}")
        super().__init__(matrix, shape)
        self.m = int(m)

    def config(self) -> dict:
        return {"m": self.m, "img_shape": list(self.in_shape), "matrix": self.matrix}

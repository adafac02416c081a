r"""Single-pixel camera: an image measured by ``m`` binary illumination patterns, one number each.

Two pattern families, each channel measured separately with the same patterns; measurements are
``(B, C, m)``:

* ``"hadamard"`` — ``m`` rows of the orthonormal Walsh-Hadamard matrix ``W_n / √n`` (``n = H·W``),
  lowest 2-D sequency first, applied with a fast Walsh-Hadamard transform in ``O(n log n)``
  (Duarte et al., "Single-pixel imaging via compressive sampling", IEEE SPM 2008; Edgar, Gibson &
  Padgett, Nat. Photonics 2019, §"Hadamard patterns"). The rows are orthonormal, so ``A Aᵀ = I``
  and ``A† = Aᵀ``.
* ``"bernoulli"`` — i.i.d. Rademacher patterns with entries ``±1/√m`` (so ``E[AᵀA] = I``), as a
  dense :class:`~selfrecon.physics.compressed_sensing.MatrixOperator` (``A†`` by cached SVD).

A ±1 pattern is realised on hardware (a DMD shows 0/1 only) as a pair of complementary 0/1 patterns
``P`` and ``1 - P`` whose detector readings are subtracted: ``⟨2P - 1, x⟩ = ⟨P, x⟩ - ⟨1 - P, x⟩``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from selfrecon.errors import ConfigError, shape_str
from selfrecon.physics.base import LinearOperator, check_device, check_image
from selfrecon.physics.compressed_sensing import MatrixOperator
from selfrecon.physics.physics import register_operator

__all__ = ["SinglePixelCamera", "fwht", "sequency_order"]


def fwht(x: Tensor) -> Tensor:
    r"""Orthonormal fast Walsh-Hadamard transform over the last dim (natural / Sylvester order).

    ``fwht(x) = H_n x / √n`` with ``H_{2n} = [[H_n, H_n], [H_n, -H_n]]``; ``n`` a power of 2.
    Computed with ``log2(n)`` butterfly stages, each one reshape and one add/subtract
    (Fino & Algazi, IEEE Trans. Comput. 1976). The transform is symmetric and its own inverse.
    """
    n = x.shape[-1]
    if n < 1 or n & (n - 1):
        raise ConfigError(f"the Walsh-Hadamard transform needs a power-of-2 length, got {n}")
    lead = x.shape[:-1]
    h = 1
    while h < n:
        v = x.reshape(*lead, n // (2 * h), 2, h)
        a, b = v[..., 0, :], v[..., 1, :]
        x = torch.stack((a + b, a - b), dim=-2).reshape(*lead, n)
        h *= 2
    return x / math.sqrt(n)


def _natural_index(s: Tensor, bits: int) -> Tensor:
    """Sylvester (natural) row index of the Walsh function of sequency ``s``: bitrev(gray(s))."""
    g = s ^ (s >> 1)
    out = torch.zeros_like(g)
    for b in range(bits):
        out |= ((g >> b) & 1) << (bits - 1 - b)
    return out


def sequency_order(H: int, W: int) -> Tensor:
    r"""Flattened natural indices of the 2-D Walsh functions of ``H×W`` images, low sequency first.

    Row ``r·W + c`` of ``H_{HW} = H_H ⊗ H_W`` is the product of the row-``r`` and column-``c``
    Walsh functions, of sequencies ``(s_r, s_c)``. They are ordered by
    ``max(s_r/H, s_c/W)`` (nested squares), then ``s_r + s_c``, then ``s_r``. With this order the
    first ``(H/2^k)(W/2^k)`` patterns span exactly the images that are constant on ``2^k × 2^k``
    blocks, since a Walsh function of sequency ``s < N/2`` is constant on pixel pairs.
    """
    bh, bw = int(math.log2(H)), int(math.log2(W))
    sr = torch.arange(H).repeat_interleave(W)
    sc = torch.arange(W).repeat(H)
    key = (torch.maximum(sr * W, sc * H) * (H + W) + sr + sc) * H + sr
    order = torch.argsort(key)
    sr, sc = sr[order], sc[order]
    return _natural_index(sr, bh) * W + _natural_index(sc, bw)


@register_operator("spc")
class SinglePixelCamera(LinearOperator):
    r"""Single-pixel camera ``y[b, c] = P vec(x[b, c])``, ``m`` binary patterns ``P ∈ R^{m×HW}``.

    Parameters
    ----------
    m : int
        Number of patterns (measurements per channel), ``1 ≤ m ≤ H·W``.
    img_shape : tuple
        ``(H, W)`` or ``(C, H, W)``; any channel count is accepted, each channel measured alike.
    kind : str
        ``"hadamard"`` (``H·W`` a power of 2; ``A† = Aᵀ``) or ``"bernoulli"`` (random ±1/√m).
    generator : torch.Generator, optional
        Seeded source of the Bernoulli patterns (unused for Hadamard).
    matrix : Tensor, optional
        Given Bernoulli patterns ``(m, H·W)`` (used when rebuilding from a saved spec).

    Measurements are ``(B, C, m)``.
    """

    exact_pinv = True
    measurement_ndim = 2  # y is (B, C, m)

    def __init__(
        self,
        m: int,
        img_shape: Sequence[int],
        kind: str = "hadamard",
        generator: torch.Generator | None = None,
        matrix: Tensor | None = None,
    ):
        super().__init__()
        shape = tuple(int(s) for s in img_shape)
        if len(shape) == 2:
            shape = (1, *shape)
        if len(shape) != 3:
            raise ConfigError(f"img_shape must be (H, W) or (C, H, W), got {tuple(img_shape)}")
        self.in_shape = shape
        H, W = shape[1:]
        n = H * W
        m = int(m)
        if not 1 <= m <= n:
            raise ConfigError(f"SinglePixelCamera needs 1 ≤ m ≤ H·W = {n} patterns, got m={m}")
        self.m, self.kind = m, kind
        self.patterns: MatrixOperator | None = None
        if kind == "hadamard":
            if n & (n - 1):
                raise ConfigError(
                    f"Hadamard patterns need H·W a power of 2, but img_shape {shape[1:]} has {n} "
                    "pixels; "
                    "resize the images (e.g. 64×64) or use kind='bernoulli'"
                )
            self.register_buffer("indices", sequency_order(H, W)[:m].clone())
        elif kind == "bernoulli":
            if matrix is None:
                dev = generator.device if generator is not None else "cpu"
                bits = torch.randint(0, 2, (m, n), generator=generator, device=dev).cpu()
                matrix = (2.0 * bits - 1.0) / math.sqrt(m)
            if tuple(matrix.shape) != (m, n):
                raise ConfigError(
                    f"matrix has shape {tuple(matrix.shape)} but m={m} patterns of {n} pixels need "
                    f"({m}, {n})"
                )
            self.patterns = MatrixOperator(matrix, (1, H, W))
        else:
            raise ConfigError(
                f"unknown single-pixel pattern kind {kind!r}; choose 'hadamard' or 'bernoulli'"
            )

    def _ref(self) -> Tensor:
        return self.indices if self.patterns is None else self.patterns.matrix

    def _check_y(self, y: Tensor) -> None:
        if y.dim() != 3 or y.shape[-1] != self.m:
            raise ConfigError(
                f"measurements have shape {shape_str(y.shape)} but SinglePixelCamera expects (B, "
                f"C, {self.m})"
            )
        check_device(y, self._ref(), "SinglePixelCamera")

    def forward(self, x: Tensor) -> Tensor:
        check_image(x, (None, *self.in_shape[1:]), op="SinglePixelCamera")
        check_device(x, self._ref(), "SinglePixelCamera")
        B, C, H, W = x.shape
        if self.patterns is not None:
            return self.patterns(x.reshape(B * C, 1, H, W)).reshape(B, C, self.m)
        return fwht(x.reshape(B, C, H * W))[..., self.indices]

    def adjoint(self, y: Tensor) -> Tensor:
        self._check_y(y)
        B, C, _ = y.shape
        H, W = self.in_shape[1:]
        if self.patterns is not None:
            return self.patterns.adjoint(y.reshape(B * C, self.m)).reshape(B, C, H, W)
        z = y.new_zeros(B, C, H * W)
        z[..., self.indices] = y
        return fwht(z).reshape(B, C, H, W)

    def pinv(self, y: Tensor, tol: float = 1e-6, max_iter: int = 100) -> Tensor:
        if self.patterns is None:  # orthonormal rows: A Aᵀ = I, so A† = Aᵀ
            return self.adjoint(y)
        self._check_y(y)
        B, C, _ = y.shape
        H, W = self.in_shape[1:]
        return self.patterns.pinv(y.reshape(B * C, self.m)).reshape(B, C, H, W)

    def config(self) -> dict:
        cfg = {"m": self.m, "img_shape": list(self.in_shape), "kind": self.kind}
        if self.patterns is not None:
            cfg["matrix"] = self.patterns.matrix
        return cfg

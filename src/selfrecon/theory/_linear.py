r"""A measurement process seen as a real linear map ``R^n → R^m`` in float64.

The sensing theorems (Tachella, Chen & Davies, JMLR 2023) are statements about real matrices: the
signal ``x ∈ R^n`` and the measurements ``y ∈ R^m``. :class:`RealMap` brings any selfrecon operator
to
that form once, so every identifiability path works with plain ``(B, n) → (B, m)`` float64 maps:

* **signal** — the image in the network's layout (``(C, H, W)`` real, or ``2C`` real channels for a
  complex operator such as MRI); ``real_images=True`` instead restricts a complex operator to real
  images (zero imaginary part), the setting of magnitude-image experiments;
* **measurements** — only the *measured* entries (``measured_mask``); a complex entry counts as two
  real measurements (real and imaginary parts), so ``m`` is the real dimension of the data;
* **precision** — the operator is copied to float64/complex128, so ranks are not blurred by float32
  rounding (an operator that insists on float32 is detected and the tolerances widened).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import torch
from torch import Tensor

from selfrecon.errors import ConfigError
from selfrecon.physics.base import LinearOperator
from selfrecon.physics.complex import to_complex, to_real
from selfrecon.physics.physics import Physics

__all__ = ["RealMap"]


def _to_double(t: Tensor) -> Tensor:
    if t.is_complex():
        return t.to(torch.complex128)
    if t.is_floating_point():
        return t.to(torch.float64)
    return t


def _operator_of(physics: Physics | LinearOperator) -> LinearOperator:
    if isinstance(physics, LinearOperator):
        return physics
    op = getattr(physics, "operator", None)
    if isinstance(op, LinearOperator):
        return op
    raise TypeError(
        f"identifiability needs a selfrecon Physics or LinearOperator, got {type(physics).__name__}"
    )


class RealMap:
    r"""``x ↦ A x`` as a real matrix-free map on flattened float64 vectors.

    Parameters
    ----------
    physics : Physics or LinearOperator
        The measurement process; a nonlinear physics (low-dose CT) contributes its linear operator.
    img_shape : tuple, optional
        One image ``(C, H, W)`` or ``(H, W)`` as the *operator* sees it (complex channels for MRI).
        Needed when the operator does not know its input size (e.g. Tomography's channel count
        defaults to 1).
    real_images : bool, optional
        Complex operators only: ``True`` restricts the signal to real images (``n = C·H·W``);
        default ``False``, the network layout with ``2C`` real channels (``n = 2·C·H·W``).
    """

    def __init__(
        self,
        physics: Physics | LinearOperator,
        img_shape: Sequence[int] | None = None,
        real_images: bool | None = None,
    ):
        op = _operator_of(physics)
        self.rank_tol = float(op.rank_tol)  # what the operator's own A† treats as zero
        self.name = getattr(op, "name", "") or type(op).__name__
        self.is_complex = bool(op.complex_input)
        self.real_images = bool(real_images) if self.is_complex else True
        shape = self._resolve_shape(op, img_shape)
        self.op_shape = shape  # what the operator sees (complex channels for MRI)
        c, h, w = shape
        self.sig_shape = (2 * c, h, w) if self.is_complex and not self.real_images else (c, h, w)
        self.n = math.prod(self.sig_shape)
        op64 = copy.deepcopy(op)
        op64._apply(_to_double)
        self.op = op64
        self._dense: Tensor | None = None
        mask = op64.measured_mask
        if mask is not None and mask.dim() >= 1 and mask.dim() == 4 and mask.shape[0] > 1:
            raise ConfigError(
                f"the operator holds {mask.shape[0]} per-sample masks; identifiability is about "
                "one "
                "operator: pass physics.update(mask=mask[i:i + 1]) for the acquisition to check"
            )
        with torch.no_grad():
            probe = self._apply_op(torch.zeros((1, *self.sig_shape), dtype=torch.float64))
        self.y_shape = tuple(probe.shape[1:])
        self.y_complex = probe.is_complex()
        self.dtype_out = probe.real.dtype if probe.is_complex() else probe.dtype
        flat_shape = self.y_shape + ((2,) if self.y_complex else ())
        if mask is None:
            keep = torch.ones(flat_shape, dtype=torch.bool)
        else:
            mk = mask.detach().to(torch.float64)
            if mk.is_complex():
                mk = mk.abs()
            try:
                mk = torch.broadcast_to(mk, (1, *self.y_shape))[0]
            except RuntimeError as err:
                raise ConfigError(
                    f"measured_mask of shape {tuple(mask.shape)} does not broadcast to the "
                    f"measurements {tuple(self.y_shape)}; the operator's mask does not fit its "
                    "output"
                ) from err
            keep = mk != 0
            if self.y_complex:
                keep = keep[..., None].expand(flat_shape)
        self.index = torch.nonzero(keep.reshape(-1)).flatten()
        self.m = int(self.index.numel())
        self._flat_len = int(keep.numel())

    # -- shapes -------------------------------------------------------------------------
    def _resolve_shape(
        self, op: LinearOperator, img_shape: Sequence[int] | None
    ) -> tuple[int, int, int]:
        if img_shape is not None:
            shape = tuple(int(s) for s in img_shape)
            if len(shape) == 2:
                shape = (1, *shape)
            if len(shape) != 3 or min(shape) < 1:
                raise ConfigError(
                    f"img_shape must be (C, H, W) or (H, W) with positive sizes, got {img_shape}"
                )
            return shape
        known = getattr(op, "in_shape", None)
        if known is None or len(known) < 2 or any(s is None for s in tuple(known)[-2:]):
            raise ConfigError(
                f"{type(op).__name__} does not know its image size; pass img_shape=(C, H, W)"
            )
        known = tuple(known)
        if len(known) == 2:
            known = (1, *known)
        return tuple(1 if s is None else int(s) for s in known)

    # -- maps -----------------------------------------------------------------------------
    def _apply_op(self, x: Tensor) -> Tensor:
        if not self.is_complex:
            return self.op(x)
        z = x.to(torch.complex128) if self.real_images else to_complex(x)
        return self.op(z)

    def images(self, v: Tensor) -> Tensor:
        """``(B, n)`` → ``(B, *sig_shape)``."""
        return v.reshape(v.shape[0], *self.sig_shape)

    def forward(self, v: Tensor) -> Tensor:
        """``(B, n)`` float64 → ``(B, m)`` float64 (measured entries, complex as two reals)."""
        y = self._apply_op(self.images(v.to(torch.float64)))
        if y.is_complex():
            y = torch.view_as_real(y.to(torch.complex128))
        return y.reshape(v.shape[0], -1).to(torch.float64)[:, self.index]

    def adjoint(self, u: Tensor) -> Tensor:
        """``(B, m)`` → ``(B, n)``: the transpose of :meth:`forward` for the real inner products."""
        b = u.shape[0]
        full = torch.zeros((b, self._flat_len), dtype=torch.float64)
        full[:, self.index] = u.to(torch.float64)
        if self.y_complex:
            y = torch.view_as_complex(full.reshape(b, *self.y_shape, 2))
        else:
            y = full.reshape(b, *self.y_shape).to(self.dtype_out)
        x = self.op.adjoint(y)
        if self.is_complex:
            x = x.real if self.real_images else to_real(x)
        return x.reshape(b, -1).to(torch.float64)

    def normal_images(self, x: Tensor) -> Tensor:
        """``AᵀA`` on images ``(B, *sig_shape)`` (real)."""
        b = x.shape[0]
        return self.images(self.adjoint(self.forward(x.reshape(b, -1))))

    def dense(self, chunk: int | None = None) -> Tensor:
        """The dense ``(m, n)`` matrix: the identity basis through the map in batches (cached)."""
        if self._dense is not None:
            return self._dense
        chunk = chunk or max(1, min(self.n, 2**23 // max(1, self.m + self.n)))
        cols = []
        for start in range(0, self.n, chunk):
            stop = min(self.n, start + chunk)
            eye = torch.zeros((stop - start, self.n), dtype=torch.float64)
            eye[torch.arange(stop - start), torch.arange(start, stop)] = 1.0
            cols.append(self.forward(eye))
        self._dense = torch.cat(cols, dim=0).T.contiguous()
        return self._dense

    @property
    def eps(self) -> float:
        """Rounding unit of the operator's arithmetic (float32 operators widen tolerances)."""
        return float(torch.finfo(self.dtype_out).eps)

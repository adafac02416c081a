"""The one place where complex images meet real networks.

Inside ``physics`` complex images and k-space are torch complex tensors. Networks, groups and losses
see real tensors: a complex image with ``C`` channels travels as ``2C`` real channels, the real
parts first, then the imaginary parts (``[Re c0, …, Re c_{C-1}, Im c0, …, Im c_{C-1}]``).
"""

from __future__ import annotations

import torch
from torch import Tensor

from selfrecon.errors import ConfigError
from selfrecon.physics.base import LinearOperator, _Composite, build_operator, register_operator

__all__ = ["to_complex", "to_real", "magnitude", "complex_channels", "RealLayout"]


def to_complex(x: Tensor) -> Tensor:
    """``(B, 2C, H, W)`` real → ``(B, C, H, W)`` complex. A complex input is returned as is."""
    if x.is_complex():
        return x
    if x.shape[1] % 2:
        raise ConfigError(
            f"a complex image travels as 2 real channels (real, imaginary) but this one has "
            f"{x.shape[1]} channel(s); use selfrecon.physics.complex_channels(x) to add a zero "
            f"imaginary part to a real image"
        )
    c = x.shape[1] // 2
    return torch.complex(x[:, :c].contiguous(), x[:, c:].contiguous())


def to_real(z: Tensor) -> Tensor:
    """``(B, C, H, W)`` complex → ``(B, 2C, H, W)`` real. A real input is returned as is."""
    if not z.is_complex():
        return z
    return torch.cat([z.real, z.imag], dim=1)


def complex_channels(x: Tensor) -> Tensor:
    """A real ``(B, C, H, W)`` image as a real-packed complex one ``(B, 2C, H, W)``, imag = 0."""
    if x.is_complex():
        return to_real(x)
    return torch.cat([x, torch.zeros_like(x)], dim=1)


def magnitude(x: Tensor) -> Tensor:
    """``|x|`` of a 2C-channel real-packed complex image (or a complex tensor): ``(B, C, H, W)``."""
    return to_complex(x).abs()


@register_operator("real_layout")
class RealLayout(_Composite):
    r"""A complex operator ``A`` seen from the networks' real layout: ``x ↦ A(to_complex(x))``,
    adjoint ``y ↦ to_real(Aᴴ y)``, pseudo-inverse ``y ↦ to_real(A† y)``.

    ``to_real`` is an isometry from ``ℂ^C`` onto ``ℝ^{2C}`` (``⟨to_real(u), to_real(v)⟩ =
    Re⟨u, v⟩``), so this is the same linear map over the reals, with the same adjoint (for the real
    inner product) and pseudo-inverse. It is what ``physics.A`` is for complex operators.
    Spec: ``{"name": "real_layout", "op": spec of A}``.
    """

    def __init__(self, op: LinearOperator):
        super().__init__()
        self.op = op
        self.measurement_ndim = op.measurement_ndim
        self.measurement_space = op.measurement_space
        self.exact_pinv = op.exact_pinv
        shape = getattr(op, "in_shape", None)
        self.in_shape = (2 * shape[0], *shape[1:]) if shape is not None else None

    def config(self) -> dict:
        return {"op": self.op.spec()}

    @classmethod
    def from_config(cls, config: dict) -> RealLayout:
        return cls(build_operator(config["op"]))

    def forward(self, x: Tensor) -> Tensor:
        return self.op(to_complex(x))

    def adjoint(self, y: Tensor) -> Tensor:
        return to_real(self.op.adjoint(y))

    def pinv(self, y: Tensor, tol: float = 1e-6, max_iter: int = 100) -> Tensor:
        return to_real(self.op.pinv(y, tol=tol, max_iter=max_iter))

    @property
    def measured_mask(self) -> Tensor | None:
        return self.op.measured_mask

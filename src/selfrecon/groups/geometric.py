r"""Interpolating groups: rotations by any angle and scalings (``exact = False``).

On a pixel grid these are only approximately group actions: ``T_g`` resamples the image with
``torch.nn.functional.grid_sample`` (bilinear by default), pixels that come from outside the image
are filled with zeros (``padding="zeros"``) or by mirroring (``padding="reflection"``), and
``T_{g⁻¹} T_g x ≠ x`` near the borders and at high frequencies. EI with rotations by arbitrary
angles is what the original CT experiment used (Chen et al., ICCV 2021, §4: random integer degrees).

Both transform about the image centre in normalised coordinates (``align_corners=False``), so
``Rotate`` at 90° agrees with :class:`~selfrecon.groups.Rotate90` up to float rounding.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor

from selfrecon.errors import ConfigError
from selfrecon.groups.base import Group, _device, check_batch, check_square, register_group

__all__ = ["Rotate", "Scale"]

_INTERP = ("bilinear", "nearest", "bicubic")
_PAD = ("zeros", "reflection", "border")


def _warp(x: Tensor, theta: Tensor, interpolation: str, padding: str) -> Tensor:
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode=interpolation, padding_mode=padding, align_corners=False)


def _as_vector(g: Tensor, group: Group) -> Tensor:
    g = torch.as_tensor(g, dtype=torch.float32)
    if g.dim() != 1:
        raise ConfigError(f"{group!r} elements have shape (B,), got {tuple(g.shape)}")
    return g


class _Interpolating(Group):
    exact = False
    order = None

    def __init__(self, interpolation: str, padding: str):
        if interpolation not in _INTERP:
            raise ConfigError(f"interpolation must be one of {_INTERP}, got {interpolation!r}")
        if padding not in _PAD:
            raise ConfigError(f"padding must be one of {_PAD}, got {padding!r}")
        self.interpolation = interpolation
        self.padding = padding

    def _draw(self, batch, generator, lo, hi, values):
        dev = _device(generator)
        if values is not None:
            k = torch.randint(0, len(values), (int(batch),), generator=generator, device=dev)
            return torch.tensor(values, dtype=torch.float32, device=dev)[k]
        u = torch.rand(int(batch), generator=generator, device=dev)
        return lo + (hi - lo) * u


@register_group("rotate")
class Rotate(_Interpolating):
    r"""Rotation by an angle ``g`` in degrees (counter-clockwise on screen, as ``torch.rot90``).

    ``(T_g x)(p) = x(R_{g} p)`` with ``R = [[cos, -sin], [sin, cos]]`` in normalised coordinates
    about the image centre; square images only.

    Parameters
    ----------
    degrees : float
        Angles are drawn uniformly from ``[-degrees, degrees]`` (default 180: the whole circle).
    angles : sequence of float, optional
        Draw uniformly from this finite list instead (e.g. ``range(360)`` for integer degrees).
    interpolation, padding
        ``grid_sample`` mode (``"bilinear"``, ``"nearest"``, ``"bicubic"``) and fill for the
        corners (``"zeros"``, ``"reflection"``, ``"border"``).
    """

    def __init__(
        self,
        degrees: float = 180.0,
        angles: Sequence[float] | None = None,
        interpolation: str = "bilinear",
        padding: str = "zeros",
    ):
        super().__init__(interpolation, padding)
        if not math.isfinite(float(degrees)) or float(degrees) < 0:
            raise ConfigError(f"degrees must be a finite number ≥ 0, got {degrees}")
        self.degrees = float(degrees)
        self.angles = None if angles is None else [float(a) for a in angles]
        if self.angles is not None and not self.angles:
            raise ConfigError("angles must list at least one angle (degrees)")

    def _sample(self, batch, hw, generator):
        return self._draw(batch, generator, -self.degrees, self.degrees, self.angles)

    def discretize(self, hw=None, n=None):
        """The configured angles, else ``n`` (default 36) angles evenly round the circle — every
        10° — within ``±degrees``."""
        if self.angles is not None:
            note = f"Rotate: its {len(self.angles)} configured angles"
            return torch.tensor(self.angles, dtype=torch.float32), [note]
        n = 36 if n is None else int(n)
        step = 360.0 / n
        grid = [float(i * step) for i in range(n)]
        angles = [a for a in grid if a <= self.degrees or 360 - a <= self.degrees]
        note = f"Rotate: {len(angles)} angles every {step:g}° (an interpolating group is infinite)"
        return torch.tensor(angles, dtype=torch.float32), [note]

    def apply(self, x, g):
        g = _as_vector(g, self).to(x.device)
        check_batch(x, g, self)
        check_square(x.shape[-2:], self)
        a = torch.deg2rad(g.double())
        c, s = torch.cos(a), torch.sin(a)
        z = torch.zeros_like(a)
        theta = torch.stack([torch.stack([c, -s, z], -1), torch.stack([s, c, z], -1)], 1)
        return _warp(x, theta, self.interpolation, self.padding)

    def inverse(self, g):
        return -_as_vector(g, self)

    def compose(self, g1, g2):
        return _as_vector(g1, self) + _as_vector(g2, self)

    def identity(self, batch=1):
        return torch.zeros(int(batch))

    def config(self) -> dict:
        out = {
            "degrees": self.degrees,
            "interpolation": self.interpolation,
            "padding": self.padding,
        }
        if self.angles is not None:
            out["angles"] = list(self.angles)
        return out


@register_group("scale")
class Scale(_Interpolating):
    r"""Zoom about the image centre by a factor ``g > 0``: ``(T_g x)(p) = x(p / g)``.

    ``g > 1`` zooms in (crops), ``g < 1`` zooms out (the border is filled per ``padding``).

    Parameters
    ----------
    factors : (lo, hi)
        Factors are drawn uniformly from ``[lo, hi]`` (default ``(0.75, 1.25)``), ``0 < lo ≤ hi``.
    values : sequence of float, optional
        Draw uniformly from this finite list instead.
    """

    def __init__(
        self,
        factors: Sequence[float] = (0.75, 1.25),
        values: Sequence[float] | None = None,
        interpolation: str = "bilinear",
        padding: str = "reflection",
    ):
        super().__init__(interpolation, padding)
        lo, hi = (float(f) for f in factors)
        if not (0 < lo <= hi and math.isfinite(hi)):
            raise ConfigError(
                f"scale factors must be a range (lo, hi) with 0 < lo ≤ hi, got {factors}"
            )
        self.factors = (lo, hi)
        self.values = None if values is None else [float(v) for v in values]
        if self.values is not None and (not self.values or min(self.values) <= 0):
            raise ConfigError(f"scale values must be positive numbers, got {values}")

    def _sample(self, batch, hw, generator):
        return self._draw(batch, generator, self.factors[0], self.factors[1], self.values)

    def discretize(self, hw=None, n=None):
        """The configured values, else ``n`` (default 9) factors evenly over the range, and 1."""
        if self.values is not None:
            note = f"Scale: its {len(self.values)} configured factors"
            return torch.tensor(self.values, dtype=torch.float32), [note]
        lo, hi = self.factors
        vals = torch.linspace(lo, hi, 9 if n is None else int(n)).tolist()
        if 1.0 not in vals:
            vals = [1.0, *vals]
        note = f"Scale: {len(vals)} factors evenly over [{lo}, {hi}] (and 1)"
        return torch.tensor(vals, dtype=torch.float32), [note]

    def apply(self, x, g):
        g = _as_vector(g, self).to(x.device)
        check_batch(x, g, self)
        if bool((g <= 0).any()):
            raise ConfigError("scale factors must be > 0")
        inv = 1.0 / g.double()
        z = torch.zeros_like(inv)
        theta = torch.stack([torch.stack([inv, z, z], -1), torch.stack([z, inv, z], -1)], 1)
        return _warp(x, theta, self.interpolation, self.padding)

    def inverse(self, g):
        return 1.0 / _as_vector(g, self)

    def compose(self, g1, g2):
        return _as_vector(g1, self) * _as_vector(g2, self)

    def identity(self, batch=1):
        return torch.ones(int(batch))

    def config(self) -> dict:
        out = {"factors": list(self.factors), "interpolation": self.interpolation}
        out["padding"] = self.padding
        if self.values is not None:
            out["values"] = list(self.values)
        return out

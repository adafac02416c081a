r"""``Physics`` = a forward operator + a noise model: the full measurement process.

Everything downstream (losses, models, the Trainer) talks to a :class:`Physics`, never to a bare
operator, because this is where two conventions are enforced once:

* **real images at the boundary** — networks produce real tensors; for complex operators (MRI) the
  image travels as ``2C`` real channels (see :mod:`selfrecon.physics.complex`) and is
  converted here;
* **measured entries** — operators with structural zeros in their output (inpainting masks, k-space
  masks) expose ``measured_mask``; noise is added only there and ``y`` is exactly zero elsewhere.

Nonlinear measurement models (low-dose CT) subclass :class:`Physics` and add ``linearize(y)``.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from selfrecon._registry import registrar
from selfrecon.errors import ConfigError
from selfrecon.physics.base import OPERATORS, LinearOperator, build_operator, register_operator
from selfrecon.physics.complex import RealLayout, complex_channels, magnitude
from selfrecon.physics.noise import NoiseModel, build_noise

__all__ = ["Physics", "register_operator", "build_operator", "build_physics", "OPERATORS"]

PHYSICS: dict[str, type[Physics]] = {}

#: ``@register_physics("kind")``: a nonlinear :class:`Physics` subclass buildable from a spec.
register_physics = registrar(PHYSICS, attr="kind")


class Physics(nn.Module):
    r"""The measurement process ``y = N(A x)``.

    Parameters
    ----------
    operator : LinearOperator
        ``A``.
    noise : NoiseModel or None
        ``N``; ``None`` means noiseless measurements (SURE losses then refuse to run).
    """

    kind = "linear"

    def __init__(self, operator: LinearOperator, noise: NoiseModel | None = None):
        super().__init__()
        if not isinstance(operator, LinearOperator):
            raise TypeError(
                f"operator must be a selfrecon LinearOperator, got {type(operator).__name__}"
            )
        self.operator = operator
        self.noise = noise

    # -- image-domain conventions ---------------------------------------------------------
    @property
    def is_complex(self) -> bool:
        """True when images are complex (carried as 2 real channels outside physics)."""
        return bool(self.operator.complex_input)

    def prepare_image(self, x: Tensor) -> Tensor:
        """A real ground-truth image in network layout (adds a zero imaginary part for MRI)."""
        return complex_channels(x) if self.is_complex else x

    def display(self, x: Tensor) -> Tensor:
        """The image people look at and metrics compare: magnitude for complex, as is otherwise."""
        return magnitude(x) if self.is_complex else x

    # -- the maps, at the real-image boundary ---------------------------------------------
    @property
    def A(self) -> LinearOperator:  # noqa: N802 - the math name
        """The operator in the networks' layout: ``physics.A(x)``, ``physics.A.H(y)`` (or
        ``.adjoint(y)``), ``physics.A.pinv(y)`` (the linear reconstruction every model starts
        from), ``physics.A.norm()``, ``@``... For a complex operator it is its
        :class:`~selfrecon.physics.complex.RealLayout` (2 real channels per complex one);
        otherwise the operator itself."""
        op = self.operator
        if not op.complex_input:
            return op
        view = self.__dict__.get("_real_layout")
        if view is None or view.op is not op:
            view = RealLayout(op)  # cached outside the module registry: a view, not a child
            self.__dict__["_real_layout"] = view
        return view

    def linearized(self, y: Tensor) -> tuple[Physics, Tensor]:
        """``(linear physics, data)`` for classical solvers; a linear physics is its own."""
        return self, y

    @property
    def measured_mask(self) -> Tensor | None:
        return self.operator.measured_mask

    def per_sample(self) -> bool:
        """Whether this physics holds per-image parameters (a batch of masks, σ per image), as
        its operator and noise model declare. Then copies of a batch cannot be stacked into one
        network pass with it (they would meet the wrong images' parameters)."""
        return self.operator.per_sample() or (self.noise is not None and self.noise.per_sample())

    def noisy(self, u: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Apply the noise model to clean measurements ``u``, on measured entries only."""
        y = self.noise.sample(u, generator) if self.noise is not None else u.clone()
        mask = self.measured_mask
        if mask is not None:
            y = y * mask.to(y.dtype if not y.is_complex() else y.real.dtype)
        return y

    def measure(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Simulate ``y = N(A x)`` for a network-layout image ``x`` (see :meth:`prepare_image`)."""
        return self.noisy(self.A(x), generator)

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return self.measure(x, generator)

    # -- description and per-batch parameters ---------------------------------------------
    def spec(self) -> dict:
        """``{"kind", "operator": operator spec, "noise": noise spec | None}``, tensors allowed."""
        return {
            "kind": self.kind,
            "operator": self.operator.spec(),
            "noise": self.noise.spec() if self.noise is not None else None,
        }

    def update(self, **params: Tensor) -> Physics:
        """A shallow copy whose operator has some parameters replaced (e.g. this batch's masks).

        Noise parameters ``sigma``/``gain`` given here (per-sample tensors) replace the
        noise model's.
        """
        noise_params = {
            k: params.pop(k) for k in ("sigma", "gain", "looks", "trials") if k in params
        }
        if noise_params and self.noise is None:
            raise ConfigError(
                f"update() got noise parameter(s) {sorted(noise_params)} but this physics is "
                "noiseless; build it with a noise model to give per-sample noise levels"
            )
        new = copy.copy(self)
        nn.Module.__init__(new)  # fresh module registries, so the copy never mutates the original
        # Module.__init__ resets the training flag and empties the registries: carry them over
        # (subclasses such as nonlinear physics may hold their own buffers and submodules).
        new.training = self.training
        for name, buf in self._buffers.items():
            new.register_buffer(name, buf, persistent=name not in self._non_persistent_buffers_set)
        for name, mod in self._modules.items():
            new._modules[name] = mod
        new.operator = self.operator.update(**params) if params else self.operator
        new.noise = self.noise.update(**noise_params) if noise_params else self.noise
        for k, v in self.__dict__.items():
            if k not in new.__dict__ and not k.startswith("_"):
                new.__dict__[k] = v
        return new

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}"


def build_physics(spec: dict) -> Physics:
    """Inverse of :meth:`Physics.spec`: ``{"kind", "operator", "noise"}`` → a :class:`Physics`."""
    spec = dict(spec)
    kind = spec.pop("kind", "linear")
    noise = build_noise(spec.get("noise"))
    if kind == "linear":
        return Physics(build_operator(spec["operator"]), noise)
    if kind not in PHYSICS:
        raise ConfigError(
            f"unknown physics kind {kind!r}; choose 'linear' or one of {sorted(PHYSICS)}"
        )
    return PHYSICS[kind].from_spec(spec)

r"""Linear operators: the forward models ``y = A x`` that every other module builds on.

A :class:`LinearOperator` is an ``nn.Module`` whose parameters (masks, matrices, angles, coil maps)
are buffers, so ``.to(device)`` and ``state_dict()`` carry them. It offers

* ``forward(x)``  — ``A x``
* ``adjoint(y)``  — ``Aᴴ y`` (the transpose for real operators)
* ``pinv(y)``     — ``A† y``: a closed form where one exists, otherwise conjugate gradient on the
  normal equations ``AᴴA x = Aᴴ y`` started at zero, which converges to the minimum-norm
  least-squares solution (Hestenes & Stiefel 1952; Golub & Van Loan, *Matrix Computations*, §11.3)
* ``.H``          — the adjoint as an operator, ``A @ B`` — composition, ``norm()`` — ``‖A‖₂`` by
  power iteration on ``AᴴA``.

Operators are batched over ``(B, C, H, W)`` and never loop over pixels or batch items.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from selfrecon._registry import registrar
from selfrecon.errors import ConfigError, DataError, shape_str

__all__ = [
    "OPERATORS",
    "register_operator",
    "build_operator",
    "LinearOperator",
    "MaskedProjection",
    "Composition",
    "Adjoint",
    "Scaled",
    "Sum",
    "conjugate_gradient",
    "inner",
    "check_image",
    "check_device",
    "as_batched_param",
]


OPERATORS: dict[str, type[LinearOperator]] = {}

#: ``@register_operator("name")``: an operator buildable from a spec ``{"name": name, ...}``.
register_operator = registrar(OPERATORS)


def build_operator(spec: dict) -> LinearOperator:
    """Build an operator from ``{"name": ..., **constructor arguments}`` (tensors allowed).

    Compositions, sums, scalings and adjoints have nested specs (``{"name": "composition",
    "outer": {...}, "inner": {...}}``) and are rebuilt factor by factor."""
    spec = dict(spec)
    name = spec.pop("name", None)
    if name not in OPERATORS:
        hint = (
            f"{name!r} is a Python class without a registry entry; decorate it with "
            "@register_operator(name) and give it config()"
            if spec.get("registered") is False
            else f"choose one of {sorted(OPERATORS)}"
        )
        raise ConfigError(f"unknown operator {name!r}; {hint}")
    return OPERATORS[name].from_config(spec)


def _seeded(config: dict) -> dict:
    """``config`` with an integer ``seed`` replaced by a CPU ``generator`` seeded with it."""
    config = dict(config)
    if "seed" in config:
        config["generator"] = torch.Generator().manual_seed(int(config.pop("seed")))
    return config


def inner(a: Tensor, b: Tensor) -> Tensor:
    r"""Per-sample real inner product ``Re⟨a, b⟩ = Re Σ conj(a) b`` over all but the batch dim."""
    prod = torch.conj(a) * b if a.is_complex() or b.is_complex() else a * b
    return prod.reshape(prod.shape[0], -1).sum(dim=1).real


def _bview(v: Tensor, like: Tensor) -> Tensor:
    """View a per-sample vector ``(B,)`` so it broadcasts against ``like``."""
    return v.reshape((-1,) + (1,) * (like.dim() - 1))


def conjugate_gradient(
    apply: callable,
    b: Tensor,
    x0: Tensor | None = None,
    tol: float = 1e-6,
    max_iter: int = 100,
) -> Tensor:
    r"""Solve ``M x = b`` for a Hermitian positive semi-definite ``M`` by conjugate gradients.

    Batched: each sample has its own step sizes; a sample stops moving once its relative residual
    ``‖r‖/‖b‖`` is below ``tol``. Started at zero on the normal equations ``AᴴA x = Aᴴ y``, the
    iterates stay in the range of ``Aᴴ`` and converge to the minimum-norm least-squares solution
    ``A† y`` (Hestenes & Stiefel, J. Res. NBS 1952; Golub & Van Loan, 4th ed., Alg. 11.3.2).
    """
    x = torch.zeros_like(b) if x0 is None else x0.clone()
    r = b - apply(x) if x0 is not None else b.clone()
    p = r.clone()
    rs = inner(r, r)
    b_norm2 = inner(b, b).clamp_min(torch.finfo(rs.dtype).tiny)
    for _ in range(max_iter):
        active = rs > (tol**2) * b_norm2
        if not bool(active.any()):
            break
        Mp = apply(p)
        denom = inner(p, Mp)
        alpha = torch.where(
            active & (denom > 0), rs / denom.clamp_min(torch.finfo(rs.dtype).tiny), 0.0
        )
        x = x + _bview(alpha, x).to(x.dtype) * p
        r = r - _bview(alpha, r).to(r.dtype) * Mp
        rs_new = inner(r, r)
        beta = torch.where(active, rs_new / rs.clamp_min(torch.finfo(rs.dtype).tiny), 0.0)
        p = r + _bview(beta, p).to(p.dtype) * p
        rs = rs_new
    return x


def check_image(
    x: Tensor, expected: Sequence[int | None], what: str = "images", op: str = ""
) -> None:
    """Raise a ``ValueError`` naming both shapes when ``x.shape[1:]`` does not match ``expected``.

    ``expected`` lists ``(C, H, W)`` (or any trailing dims); ``None`` entries match anything.
    """
    got = tuple(x.shape[1:])
    exp = tuple(expected)
    if len(got) != len(exp) or any(
        e is not None and g != e for g, e in zip(got, exp, strict=False)
    ):
        pretty = "(" + ", ".join("*" if e is None else str(e) for e in exp) + ")"
        name = f"{op} expects" if op else "expected"
        raise DataError(
            f"{what} have shape {shape_str(x.shape)} (per item {shape_str(got)}) but {name} "
            "per-item "
            f"shape {pretty}; resize the data or build the operator for this size"
        )


def check_device(x: Tensor, ref: Tensor, op: str = "operator") -> None:
    """Raise a ``ValueError`` when ``x`` is not on the device of the operator parameter ``ref``."""
    if x.device != ref.device:
        raise DataError(
            f"{op} parameters are on {ref.device} but the input of shape {shape_str(x.shape)} is "
            "on "
            f"{x.device}; move one of them with .to(device)"
        )


def _cache_key(t: Tensor) -> tuple:
    """Identify a parameter's current contents (device, dtype, storage, in-place version)."""
    try:
        version = t._version
    except RuntimeError:  # inference-mode tensors have no version counter and cannot be mutated
        version = -1
    return (t.device, t.dtype, t.data_ptr(), version)


def as_batched_param(p: Tensor, ndim: int = 4, name: str = "parameter") -> Tensor:
    """Bring a per-image parameter (e.g. a mask ``(H, W)``) to ``ndim`` dims with a batch axis.

    ``(H, W)`` → ``(1, 1, H, W)``; ``(C, H, W)`` → ``(1, C, H, W)``; ``(B, C, H, W)`` stays. A
    leading size-1 batch broadcasts over any batch; a leading size-B batch carries per-sample
    parameters.
    """
    if p.dim() > ndim:
        raise ConfigError(
            f"{name} has shape {shape_str(p.shape)}: at most {ndim} dimensions allowed"
        )
    while p.dim() < ndim:
        p = p.unsqueeze(0)
    return p


class LinearOperator(nn.Module):
    r"""A linear map ``A``; subclasses implement :meth:`forward` and :meth:`adjoint`.

    Attributes subclasses may set:

    * ``complex_input`` — the operator acts on complex images (MRI);
      :class:`~selfrecon.physics.Physics`
      converts the network's 2-channel real images at the boundary.
    * ``name`` — the registry name used in specs (``"inpainting"``, ``"mri"``...).
    * ``measurement_ndim`` — axes of one measurement, without the batch axis: 3 for
      ``(C, H, W)``-like measurements (images, k-space with coils, sinograms ``(C, views,
      detectors)``), 1 for vectors (compressed sensing), 2 for per-channel vectors (single-pixel).
      A user's file of ``(H, W)`` items is given its channel axis from this, not by trial.
    * ``measurement_space`` — what the entries of ``y`` are, for
      :func:`~selfrecon.physics.estimate_noise`: ``"image"`` (samples on a pixel grid whose clean
      part is locally smooth: denoising, inpainting, blur, sinograms), ``"kspace"`` (centred
      Fourier coefficients: the periphery is almost pure noise) or ``"coefficients"`` (no spatial
      order — compressed sensing, single-pixel: the noise is estimated through ``A†y``).
    """

    complex_input: bool = False
    name: str = ""
    measurement_ndim: int = 3
    measurement_space: str = "coefficients"
    #: relative singular value below which the operator's own pseudo-inverse treats a direction
    #: as unmeasured (``Blur``/``Downsampling``: their ``rcond``); the identifiability check never
    #: counts smaller singular values towards the rank
    rank_tol: float = 0.0
    #: ``A A† = I`` holds exactly (closed-form pseudo-inverse of a full-row-rank or projection
    #: operator): then ``x + A†(y − A x)`` is the projection onto ``{x : A x = y}``.
    exact_pinv: bool = False

    # -- the three maps -------------------------------------------------------------------
    def forward(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def adjoint(self, y: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def pinv(self, y: Tensor, tol: float = 1e-6, max_iter: int = 100) -> Tensor:
        r"""``A† y``; the default runs :func:`conjugate_gradient` on ``AᴴA x = Aᴴ y``."""
        return self.pinv_cg(y, tol=tol, max_iter=max_iter)

    def pinv_cg(self, y: Tensor, tol: float = 1e-6, max_iter: int = 100) -> Tensor:
        r"""``A† y`` by conjugate gradient on the normal equations (min-norm least squares)."""
        b = self.adjoint(y)
        return conjugate_gradient(
            lambda v: self.adjoint(self.forward(v)), b, tol=tol, max_iter=max_iter
        )

    # -- algebra --------------------------------------------------------------------------
    @property
    def H(self) -> LinearOperator:  # noqa: N802 - the math name
        """The adjoint ``Aᴴ`` as an operator."""
        return Adjoint(self)

    def __matmul__(self, other: LinearOperator) -> LinearOperator:
        if not isinstance(other, LinearOperator):
            return NotImplemented
        return Composition(self, other)

    def __mul__(self, scale: float) -> LinearOperator:
        if isinstance(scale, bool) or not isinstance(scale, (int, float)):
            return NotImplemented
        return Scaled(self, float(scale))

    __rmul__ = __mul__

    def __add__(self, other: LinearOperator) -> LinearOperator:
        if not isinstance(other, LinearOperator):
            return NotImplemented
        return Sum(self, other)

    def normal(self, x: Tensor) -> Tensor:
        """``AᴴA x``."""
        return self.adjoint(self.forward(x))

    @torch.no_grad()
    def norm(
        self,
        x_shape: Sequence[int] | None = None,
        n_iter: int = 50,
        tol: float = 1e-6,
        generator: torch.Generator | None = None,
        dtype: torch.dtype | None = None,
    ) -> float:
        r"""Spectral norm ``‖A‖₂ = sqrt(λ_max(AᴴA))`` by power iteration (von Mises 1929).

        ``x_shape`` is one image's shape ``(C, H, W)``; operators that know their input shape
        (``self.in_shape``) need none.
        """
        shape = tuple(x_shape) if x_shape is not None else getattr(self, "in_shape", None)
        if shape is None:
            raise ConfigError(f"{type(self).__name__}.norm() needs x_shape=(C, H, W)")
        buf = next(iter(self.buffers()), None)
        device = buf.device if buf is not None else torch.device("cpu")
        dtype = dtype or torch.float64
        if self.complex_input:
            dtype = torch.complex128 if dtype == torch.float64 else torch.complex64
        gen_device = generator.device if generator is not None else device
        x = torch.randn((1, *shape), generator=generator, dtype=dtype, device=gen_device).to(device)
        x = x / x.abs().pow(2).sum().sqrt()
        lam = 0.0
        for _ in range(n_iter):
            z = self.normal(x)
            lam_new = float(inner(x, z)[0])
            nz = float(z.abs().pow(2).sum().sqrt())
            if nz == 0.0:
                return 0.0
            x = z / nz
            if abs(lam_new - lam) <= tol * max(abs(lam_new), 1e-30):
                lam = lam_new
                break
            lam = lam_new
        return math.sqrt(max(lam, 0.0))

    # -- measured entries, specs, per-batch parameters ------------------------------------
    @property
    def measured_mask(self) -> Tensor | None:
        """0/1 tensor broadcastable to ``A x`` marking measured entries, or ``None`` (all measured).

        Operators whose output carries structural zeros (inpainting, Cartesian MRI) return their
        mask: noise is added to measured entries only, and SURE counts only those.
        """
        return None

    def config(self) -> dict:
        """Constructor arguments (tensors allowed); :meth:`from_config` rebuilds the operator."""
        raise NotImplementedError(f"{type(self).__name__} does not describe itself yet")

    @classmethod
    def from_config(cls, config: dict) -> LinearOperator:
        """Rebuild from :meth:`config`, or from a *recipe* for a random operator: an integer
        ``seed`` entry becomes ``generator=torch.Generator().manual_seed(seed)`` (a spec file
        can then say ``{"name": "inpainting", "rate": 0.5, "img_shape": [32, 32], "seed": 0}``
        and rebuild the same mask on every machine)."""
        return cls(**_seeded(config))

    @property
    def describable(self) -> bool:
        """Whether :meth:`config` describes this operator (registered operators and their
        compositions); a user's ad-hoc subclass without ``config`` is not."""
        return type(self).config is not LinearOperator.config

    def spec(self) -> dict:
        """``{"name": registry name, **config()}``; see :func:`build_operator`. An operator that
        does not describe itself is named by its class with ``"registered": False``."""
        if not self.describable:
            return {"name": type(self).__name__, "registered": False}
        return {"name": self.name, **self.config()}

    #: names of :meth:`config` entries that may carry one value per image of a batch
    #: (``(B, ...)`` with a leading batch axis); declared by each operator, read by
    #: :meth:`per_sample` (a batch holding different masks cannot be stacked with another).
    per_sample_params: tuple[str, ...] = ()

    def per_sample(self) -> bool:
        """Whether this operator currently holds per-image parameters (a batch axis > 1)."""
        return any(
            getattr(self, k).dim() > 0 and getattr(self, k).shape[0] > 1
            for k in self.per_sample_params
        )

    def update(self, **params: Tensor) -> LinearOperator:
        """A new operator of the same kind with some parameters replaced (e.g. a batch's masks)."""
        cfg = self.config()
        unknown = set(params) - set(cfg)
        if unknown:
            raise ConfigError(
                f"{type(self).__name__} has no parameter(s) {sorted(unknown)}; it has {sorted(cfg)}"
            )
        cfg.update(params)
        ref = next(iter(self.buffers()), None)
        op = type(self).from_config(cfg)
        return op.to(ref.device) if ref is not None else op


class _Composite(LinearOperator):
    """An operator made of others (``factors``): its spec nests theirs, it is per-sample when
    one of them is, and :meth:`update` hands each parameter to the factor that owns it."""

    def factors(self) -> tuple[LinearOperator, ...]:
        """The operators it is made of (its child modules, outermost first)."""
        return tuple(self._modules.values())

    @property
    def describable(self) -> bool:  # its spec nests its factors', whatever they are
        return True

    def per_sample(self) -> bool:
        return any(f.per_sample() for f in self.factors())

    def update(self, **params: Tensor) -> LinearOperator:
        """The same composite with each parameter replaced in the factor whose ``config`` has it
        (the first one, outermost first, when several do)."""
        new = copy.copy(self)
        new._modules = dict(self._modules)
        left = dict(params)
        for name, factor in self._modules.items():
            own = {k: left.pop(k) for k in list(left) if k in _param_names(factor)}
            if own:
                new._modules[name] = factor.update(**own)
        if left:
            raise ConfigError(
                f"{type(self).__name__} has no factor with parameter(s) {sorted(left)}; its "
                f"factors have {sorted(set().union(*(_param_names(f) for f in self.factors())))}"
            )
        return new


def _param_names(op: LinearOperator) -> set[str]:
    if isinstance(op, _Composite):
        return set().union(*(_param_names(f) for f in op.factors()))
    return set(op.config()) if op.describable else set()


class Composition(_Composite):
    """``(A @ B) x = A(B x)``; adjoint ``Bᴴ Aᴴ``; pinv by conjugate gradient.

    Spec: ``{"name": "composition", "outer": spec of A, "inner": spec of B}``."""

    def __init__(self, outer: LinearOperator, inner_op: LinearOperator):
        super().__init__()
        self.outer = outer
        self.measurement_ndim = outer.measurement_ndim
        self.measurement_space = outer.measurement_space
        self.inner_op = inner_op
        # complex if either factor is: Aᴴ of a complex outer map returns complex images even when
        # the inner map is real (e.g. MRI @ Inpainting), so the image domain must be complex
        self.complex_input = inner_op.complex_input or outer.complex_input
        self.in_shape = getattr(inner_op, "in_shape", None)

    def config(self) -> dict:
        return {"outer": self.outer.spec(), "inner": self.inner_op.spec()}

    @classmethod
    def from_config(cls, config: dict) -> Composition:
        return cls(build_operator(config["outer"]), build_operator(config["inner"]))

    def forward(self, x: Tensor) -> Tensor:
        return self.outer(self.inner_op(x))

    def adjoint(self, y: Tensor) -> Tensor:
        return self.inner_op.adjoint(self.outer.adjoint(y))

    @property
    def measured_mask(self) -> Tensor | None:
        return self.outer.measured_mask


class Scaled(_Composite):
    """``(a A) x = a (A x)`` for a real scalar ``a``; adjoint ``a Aᴴ``, ``(aA)† = A†/a``.

    Spec: ``{"name": "scaled", "op": spec of A, "scale": a}``."""

    def __init__(self, op: LinearOperator, scale: float):
        super().__init__()
        if isinstance(op, Scaled):
            op, scale = op.op, scale * op.scale
        if not math.isfinite(scale) or scale == 0:
            raise ConfigError(f"an operator can be scaled by a finite non-zero number, got {scale}")
        self.op, self.scale = op, float(scale)
        self.measurement_ndim = op.measurement_ndim
        self.measurement_space = op.measurement_space
        self.complex_input = op.complex_input
        self.exact_pinv = op.exact_pinv
        self.in_shape = getattr(op, "in_shape", None)

    def config(self) -> dict:
        return {"op": self.op.spec(), "scale": self.scale}

    @classmethod
    def from_config(cls, config: dict) -> Scaled:
        return cls(build_operator(config["op"]), float(config["scale"]))

    def forward(self, x: Tensor) -> Tensor:
        return self.scale * self.op(x)

    def adjoint(self, y: Tensor) -> Tensor:
        return self.scale * self.op.adjoint(y)

    def pinv(self, y: Tensor, tol: float = 1e-6, max_iter: int = 100) -> Tensor:
        return self.op.pinv(y, tol=tol, max_iter=max_iter) / self.scale

    @property
    def measured_mask(self) -> Tensor | None:
        return self.op.measured_mask


class Sum(_Composite):
    """``(A + B) x = A x + B x`` (same input and output shapes); adjoint ``Aᴴ + Bᴴ``.

    Spec: ``{"name": "sum", "a": spec of A, "b": spec of B}``."""

    def __init__(self, a: LinearOperator, b: LinearOperator):
        super().__init__()
        self.a, self.b = a, b
        self.measurement_ndim = a.measurement_ndim
        self.measurement_space = a.measurement_space
        self.complex_input = a.complex_input or b.complex_input
        self.in_shape = getattr(a, "in_shape", None) or getattr(b, "in_shape", None)

    def config(self) -> dict:
        return {"a": self.a.spec(), "b": self.b.spec()}

    @classmethod
    def from_config(cls, config: dict) -> Sum:
        return cls(build_operator(config["a"]), build_operator(config["b"]))

    def forward(self, x: Tensor) -> Tensor:
        return self.a(x) + self.b(x)

    def adjoint(self, y: Tensor) -> Tensor:
        return self.a.adjoint(y) + self.b.adjoint(y)


class Adjoint(_Composite):
    """``Aᴴ`` as an operator: forward and adjoint swapped.

    Spec: ``{"name": "adjoint", "op": spec of A}``."""

    def __init__(self, op: LinearOperator):
        super().__init__()
        self.op = op

    def config(self) -> dict:
        return {"op": self.op.spec()}

    @classmethod
    def from_config(cls, config: dict) -> Adjoint:
        return cls(build_operator(config["op"]))

    def forward(self, y: Tensor) -> Tensor:
        return self.op.adjoint(y)

    def adjoint(self, x: Tensor) -> Tensor:
        return self.op.forward(x)

    @property
    def H(self) -> LinearOperator:  # noqa: N802
        return self.op


class MaskedProjection(LinearOperator):
    r"""Base of operators ``A = M ⊙ U`` with ``M`` a 0/1 buffer ``self.mask`` and ``U`` unitary
    (inpainting: ``U = I``; single-coil Cartesian MRI: ``U = F``).

    Then ``A Aᴴ = M`` is a projection, so ``A† = Aᴴ`` (``(M U)† = Uᴴ M† = Uᴴ M``), the measured
    entries are the mask, and the mask describes the operator. Subclasses register ``mask`` and
    implement ``forward``/``adjoint``; one whose ``U`` is not unitary overrides :meth:`pinv`.
    """

    mask: Tensor
    exact_pinv = True
    per_sample_params = ("mask",)

    def pinv(self, y: Tensor, tol: float = 1e-6, max_iter: int = 100) -> Tensor:
        return self.adjoint(y)

    @property
    def measured_mask(self) -> Tensor:
        return self.mask

    def config(self) -> dict:
        return {"mask": self.mask}


for _name, _cls in (
    ("composition", Composition),
    ("scaled", Scaled),
    ("sum", Sum),
    ("adjoint", Adjoint),
):
    register_operator(_name)(_cls)

r"""Classical reconstructions as models without weights: ``f(y, physics) -> x̂`` in network layout.

These are the one-second methods a user compares a trained network with, and they double as the
**initialiser** of a network (``ArtifactRemoval(backbone, init=TV(...))``: the backbone then starts
where the classical method ends and learns only the residual). All are batched torch code that
works for any :class:`~selfrecon.physics.Physics` (complex operators in their 2-channel layout,
low-dose CT through :meth:`~selfrecon.physics.Physics.linearized`), differentiable in ``y``, and
deterministic.

* :class:`Pinv` / :class:`AdjointInit` — ``A† y`` / ``Aᴴ y``.
* :class:`LeastSquares` — Tikhonov ``(AᴴA + λI)⁻¹ Aᴴ y`` by conjugate gradients (Hestenes &
  Stiefel 1952); ``λ → 0`` is the minimum-norm least-squares solution.
* :class:`TV` — ``argmin_x ½‖Ax − y‖² + λ TV(x)`` (isotropic, vectorial over channels; Rudin,
  Osher & Fatemi 1992) by the primal-dual hybrid gradient method of Chambolle & Pock (J. Math.
  Imaging Vis. 2011, Alg. 1) with ``K = [A; ∇]``.
* :class:`Wavelet` — ``argmin_x ½‖Ax − y‖² + λ‖W x‖₁`` with ``W`` the orthonormal multi-level Haar
  transform (detail coefficients only), by FISTA (Beck & Teboulle, SIAM J. Imaging Sci. 2009).
* :class:`SART` — simultaneous algebraic reconstruction (Andersen & Kak, Ultrasonic Imaging 1984)
  for operators with non-negative entries (CT).
* :class:`Biharmonic` — inpainting by ``argmin ‖Δu‖²`` over the missing pixels with the observed
  ones fixed, i.e. ``Δ²u = 0`` there (the problem scikit-image's ``inpaint_biharmonic`` solves;
  Damelin & Hoang, Int. J. Math. Math. Sci. 2018), by conjugate gradients.
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict

import torch
from torch import Tensor, nn

from selfrecon.errors import ConfigError
from selfrecon.physics.base import conjugate_gradient, inner

__all__ = [
    "Pinv",
    "AdjointInit",
    "LeastSquares",
    "TV",
    "Wavelet",
    "SART",
    "Biharmonic",
    "grad2d",
    "div2d",
    "haar",
    "ihaar",
    "operator_norm2",
    "SOLVERS",
]


# -- finite differences (forward differences, Neumann boundary; div = −gradᵀ) -------------------
def grad2d(x: Tensor) -> Tensor:
    """``(B, C, H, W)`` → ``(B, C, 2, H, W)``: forward differences down and right, 0 at the end."""
    dy = torch.zeros_like(x)
    dx = torch.zeros_like(x)
    dy[..., :-1, :] = x[..., 1:, :] - x[..., :-1, :]
    dx[..., :, :-1] = x[..., :, 1:] - x[..., :, :-1]
    return torch.stack([dy, dx], dim=2)


def div2d(g: Tensor) -> Tensor:
    """The negative adjoint of :func:`grad2d`: ``⟨grad x, g⟩ = −⟨x, div g⟩``."""
    gy, gx = g[:, :, 0], g[:, :, 1]
    out = torch.zeros_like(gy)
    out[..., :-1, :] += gy[..., :-1, :]
    out[..., 1:, :] -= gy[..., :-1, :]
    out[..., :, :-1] += gx[..., :, :-1]
    out[..., :, 1:] -= gx[..., :, :-1]
    return out


# -- the orthonormal Haar transform -------------------------------------------------------------
def _haar_step(x: Tensor) -> tuple[Tensor, Tensor]:
    a, b = x[..., 0::2, 0::2], x[..., 0::2, 1::2]
    c, d = x[..., 1::2, 0::2], x[..., 1::2, 1::2]
    ll = (a + b + c + d) / 2
    details = torch.stack([(a - b + c - d) / 2, (a + b - c - d) / 2, (a - b - c + d) / 2], 2)
    return ll, details


def _ihaar_step(ll: Tensor, details: Tensor) -> Tensor:
    lh, hl, hh = details.unbind(2)
    out = ll.new_empty(*ll.shape[:-2], 2 * ll.shape[-2], 2 * ll.shape[-1])
    out[..., 0::2, 0::2] = (ll + lh + hl + hh) / 2
    out[..., 0::2, 1::2] = (ll - lh + hl - hh) / 2
    out[..., 1::2, 0::2] = (ll + lh - hl - hh) / 2
    out[..., 1::2, 1::2] = (ll - lh - hl + hh) / 2
    return out


def haar(x: Tensor, levels: int) -> tuple[Tensor, list[Tensor]]:
    """Orthonormal 2-D Haar transform: ``(approximation, [details level 1 … levels])``.

    ``H`` and ``W`` must be divisible by ``2**levels`` (:class:`Wavelet` pads to make them so).
    """
    details = []
    for _ in range(levels):
        x, d = _haar_step(x)
        details.append(d)
    return x, details


def ihaar(ll: Tensor, details: list[Tensor]) -> Tensor:
    """Inverse (= adjoint) of :func:`haar`."""
    for d in reversed(details):
        ll = _ihaar_step(ll, d)
    return ll


# -- shared helpers -----------------------------------------------------------------------------
def _bview(v: Tensor, like: Tensor) -> Tensor:
    return v.reshape((-1,) + (1,) * (like.dim() - 1))


@torch.no_grad()
def operator_norm2(physics, x_like: Tensor, n_iter: int = 30) -> float:
    r"""``max_b ‖A_b‖²`` over the batch by power iteration on ``AᴴA`` (von Mises 1929), in the
    network layout, with a 2 % safety margin (step sizes need an upper bound)."""
    g = torch.Generator(device="cpu").manual_seed(0)
    v = torch.randn(x_like.shape, generator=g, dtype=x_like.dtype).to(x_like.device)
    lam = torch.zeros(x_like.shape[0], dtype=x_like.dtype, device=x_like.device)
    for _ in range(n_iter):
        v = v / inner(v, v).sqrt().clamp_min(1e-30).reshape(-1, 1, 1, 1)
        w = physics.A.adjoint(physics.A(v))
        lam = inner(v, w)
        v = w
    return float(lam.max().clamp_min(1e-12)) * 1.02


def _linear(y: Tensor, physics) -> tuple[object, Tensor]:
    """The linear physics and data a classical solver works on (low-dose CT: line integrals)."""
    return physics.linearized(y)


def _fingerprint(physics) -> bytes:
    """Bytes identifying a physics' operator parameters (masks, angles, matrices) and its class."""
    h = hashlib.blake2b(type(physics.operator).__name__.encode(), digest_size=16)
    for t in physics.buffers():
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.digest()


class _Solver(nn.Module):
    r"""A classical reconstruction: no weights, ``forward(y, physics)``, a config for specs.

    Iterative solvers remember their last :attr:`MEMO` results per measurement (keyed by the
    bytes of ``y_b`` and of the operator's parameters): as a network's initialiser they see the
    same training measurements every epoch, which then cost one look-up. Inputs that carry
    gradients, and physics with per-sample parameters, are always recomputed.
    """

    #: results remembered (0: none); iterative solvers set it
    MEMO = 0

    def __init__(self):
        super().__init__()
        self._memo: OrderedDict[bytes, Tensor] = OrderedDict()

    def __call__(self, y: Tensor, physics) -> Tensor:
        if not self.MEMO or y.requires_grad or physics.per_sample():
            return super().__call__(y, physics)
        fp = _fingerprint(physics)
        ys = y.detach().cpu().contiguous()
        keys = [
            fp + hashlib.blake2b(ys[b].numpy().tobytes(), digest_size=16).digest()
            for b in range(y.shape[0])
        ]
        missing = [b for b, k in enumerate(keys) if k not in self._memo]
        if missing:
            out = super().__call__(y[missing], physics).detach()
            for b, row in zip(missing, out, strict=True):
                self._memo[keys[b]] = row
        result = torch.stack([self._memo[k] for k in keys])
        for k in keys:
            self._memo.move_to_end(k)
        while len(self._memo) > self.MEMO:
            self._memo.popitem(last=False)
        return result

    def config(self) -> dict:  # pragma: no cover - each subclass lists its parameters
        raise NotImplementedError

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.config().items())


class _Iterative(_Solver):
    """An iterative solver: remembered results, and ``grad=False`` to run it without autograd
    (as an initialiser, gradients then reach the network but not through the solver)."""

    MEMO = 4096

    def __init__(self, grad: bool = True):
        super().__init__()
        self.grad = bool(grad)

    def __call__(self, y: Tensor, physics) -> Tensor:
        if self.grad:
            return super().__call__(y, physics)
        with torch.no_grad():
            return super().__call__(y.detach(), physics)

    def config(self) -> dict:
        return {} if self.grad else {"grad": False}


class Pinv(_Solver):
    """``A† y`` (the operator's closed-form pseudo-inverse, FBP for CT)."""

    def forward(self, y: Tensor, physics) -> Tensor:
        return physics.A.pinv(y)

    def config(self) -> dict:
        return {}


class AdjointInit(_Solver):
    """``Aᴴ y`` (back-projection / zero-filling without normalisation)."""

    def forward(self, y: Tensor, physics) -> Tensor:
        return physics.A.adjoint(y)

    def config(self) -> dict:
        return {}


def _check_pos(name: str, v: float, zero_ok: bool = False) -> float:
    v = float(v)
    if not math.isfinite(v) or v < 0 or (v == 0 and not zero_ok):
        bound = "≥ 0" if zero_ok else "> 0"
        raise ConfigError(f"{name} must be a finite number {bound}, got {v}")
    return v


def _check_iters(n: int) -> int:
    if int(n) != n or int(n) < 1:
        raise ConfigError(f"n_iter must be an integer ≥ 1, got {n}")
    return int(n)


class LeastSquares(_Iterative):
    r"""Tikhonov-regularised least squares ``(AᴴA + λI)⁻¹ Aᴴ y`` by conjugate gradients.

    ``lam = 0`` gives the minimum-norm least-squares solution (CG started at zero on the normal
    equations; Golub & Van Loan, 4th ed., §11.3). Cost: ``n_iter`` products with ``A`` and ``Aᴴ``.
    """

    def __init__(self, lam: float = 0.0, n_iter: int = 30, tol: float = 1e-6, grad: bool = True):
        super().__init__(grad)
        self.lam = _check_pos("LeastSquares lam", lam, zero_ok=True)
        self.n_iter = _check_iters(n_iter)
        self.tol = float(tol)

    def forward(self, y: Tensor, physics) -> Tensor:
        lp, data = _linear(y, physics)
        b = lp.A.adjoint(data)
        lam = self.lam
        return conjugate_gradient(
            lambda v: lp.A.adjoint(lp.A(v)) + lam * v, b, tol=self.tol, max_iter=self.n_iter
        )

    def config(self) -> dict:
        return {"lam": self.lam, "n_iter": self.n_iter, "tol": self.tol, **super().config()}


class TV(_Iterative):
    r"""Total-variation reconstruction ``argmin_x ½‖Ax − y‖² + λ Σ_p ‖(∇x)_p‖₂``.

    Chambolle & Pock (2011), Algorithm 1, with ``K x = (A x, ∇x)``, dual variables ``p`` (data)
    and ``q`` (gradients), step sizes ``σ = τ = 0.99/‖K‖`` with ``‖K‖² ≤ ‖A‖² + 8``
    (``‖∇‖² ≤ 8`` for forward differences) and over-relaxation ``θ = 1``:

        p ← (p + σ(A x̄ − y)) / (1 + σ)                (prox of the conjugate of ½‖· − y‖²)
        q ← Π_{‖·‖₂ ≤ λ}(q + σ ∇x̄)                    (per pixel, over directions and channels)
        x⁺ ← x − τ(Aᴴ p − div q),   x̄ ← 2x⁺ − x

    The norm of each pixel's gradient couples its channels (vectorial TV; for complex images the
    real and imaginary parts). ``nonneg=True`` projects ``x`` on ``x ≥ 0`` (images, CT densities).
    Started at ``A† y``.
    """

    def __init__(
        self, lam: float = 0.01, n_iter: int = 200, nonneg: bool = False, grad: bool = True
    ):
        super().__init__(grad)
        self.lam = _check_pos("TV lam", lam, zero_ok=True)
        self.n_iter = _check_iters(n_iter)
        self.nonneg = bool(nonneg)

    def forward(self, y: Tensor, physics) -> Tensor:
        lp, data = _linear(y, physics)
        x = lp.A.pinv(data)
        step = 0.99 / math.sqrt(operator_norm2(lp, x) + 8.0)
        p = torch.zeros_like(lp.A(x))
        q = torch.zeros_like(grad2d(x))
        xbar = x
        for _ in range(self.n_iter):
            p = (p + step * (lp.A(xbar) - data)) / (1 + step)
            q = q + step * grad2d(xbar)
            # the tiny offset keeps the square root differentiable where q = 0 (autograd)
            mag = (q.pow(2).sum(dim=(1, 2), keepdim=True) + 1e-20).sqrt()
            q = q / torch.clamp(mag / max(self.lam, 1e-30), min=1.0)
            x_new = x - step * (lp.A.adjoint(p) - div2d(q))
            if self.nonneg:
                x_new = x_new.clamp_min(0)
            xbar = 2 * x_new - x
            x = x_new
        return x

    def config(self) -> dict:
        return {"lam": self.lam, "n_iter": self.n_iter, "nonneg": self.nonneg, **super().config()}


class Wavelet(_Iterative):
    r"""Wavelet-sparse reconstruction ``argmin_x ½‖Ax − y‖² + λ‖D(W x)‖₁`` by FISTA.

    ``W`` is the orthonormal ``levels``-level Haar transform and ``D`` keeps its detail
    coefficients (the approximation is not penalised). Beck & Teboulle (2009), FISTA with constant
    step ``1/L``, ``L ≥ ‖A‖²``: ``x_k = prox_{λ/L}(z_k − Aᴴ(A z_k − y)/L)``, ``prox`` = soft
    thresholding of the details in ``W``'s domain (exact because ``W`` is orthonormal),
    ``t_{k+1} = (1 + √(1 + 4t_k²))/2``, ``z_{k+1} = x_k + ((t_k − 1)/t_{k+1})(x_k − x_{k−1})``.
    Images whose sides are not multiples of ``2**levels`` are handled by reflecting them up to the
    next multiple inside the transform. Started at ``A† y``.
    """

    def __init__(self, lam: float = 0.01, n_iter: int = 200, levels: int = 3, grad: bool = True):
        super().__init__(grad)
        self.lam = _check_pos("Wavelet lam", lam, zero_ok=True)
        self.n_iter = _check_iters(n_iter)
        if int(levels) != levels or int(levels) < 1:
            raise ConfigError(f"Wavelet levels must be an integer ≥ 1, got {levels}")
        self.levels = int(levels)

    def _prox(self, x: Tensor, thr: float) -> Tensor:
        h, w = x.shape[-2:]
        m = 2**self.levels
        ph, pw = (-h) % m, (-w) % m
        z = torch.nn.functional.pad(x, (0, pw, 0, ph), mode="reflect") if ph or pw else x
        ll, details = haar(z, self.levels)
        details = [d.sign() * (d.abs() - thr).clamp_min(0) for d in details]
        return ihaar(ll, details)[..., :h, :w]

    def forward(self, y: Tensor, physics) -> Tensor:
        lp, data = _linear(y, physics)
        x = lp.A.pinv(data)
        L = operator_norm2(lp, x)
        z, t = x, 1.0
        for _ in range(self.n_iter):
            x_new = self._prox(z - lp.A.adjoint(lp.A(z) - data) / L, self.lam / L)
            t_new = (1 + math.sqrt(1 + 4 * t * t)) / 2
            z = x_new + ((t - 1) / t_new) * (x_new - x)
            x, t = x_new, t_new
        return x

    def config(self) -> dict:
        return {"lam": self.lam, "n_iter": self.n_iter, "levels": self.levels, **super().config()}


class SART(_Iterative):
    r"""Simultaneous algebraic reconstruction (Andersen & Kak 1984) for ``A`` with entries ``≥ 0``.

    ``x ← x + ω · Aᵀ((y − A x) / R) / C`` with row sums ``R = A 1`` and column sums ``C = Aᵀ 1``
    (rays and pixels with zero sums are left out), ``nonneg`` projects on ``x ≥ 0`` after each
    sweep. Started at zero. This is scikit-image's ``iradon_sart`` update applied to all views at
    once.
    """

    def __init__(
        self, n_iter: int = 20, relaxation: float = 1.0, nonneg: bool = True, grad: bool = True
    ):
        super().__init__(grad)
        self.n_iter = _check_iters(n_iter)
        self.relaxation = _check_pos("SART relaxation", relaxation)
        if self.relaxation >= 2:
            raise ConfigError(f"SART relaxation must be in (0, 2), got {relaxation}")
        self.nonneg = bool(nonneg)

    def forward(self, y: Tensor, physics) -> Tensor:
        lp, data = _linear(y, physics)
        x = torch.zeros_like(lp.A.adjoint(data))
        ones_x = torch.ones_like(x[:1])
        rows = lp.A(ones_x)
        cols = lp.A.adjoint(torch.ones_like(rows))
        if bool((rows < 0).any()) or bool((cols < 0).any()):
            raise ConfigError(
                "SART needs an operator with non-negative entries (CT); use TV or LeastSquares"
            )
        r_inv = torch.where(rows > 0, 1 / rows.clamp_min(1e-30), torch.zeros_like(rows))
        c_inv = torch.where(cols > 0, 1 / cols.clamp_min(1e-30), torch.zeros_like(cols))
        for _ in range(self.n_iter):
            x = x + self.relaxation * c_inv * lp.A.adjoint(r_inv * (data - lp.A(x)))
            if self.nonneg:
                x = x.clamp_min(0)
        return x

    def config(self) -> dict:
        cfg = {"n_iter": self.n_iter, "relaxation": self.relaxation, "nonneg": self.nonneg}
        return {**cfg, **super().config()}


class Biharmonic(_Iterative):
    r"""Biharmonic inpainting: ``u = argmin ‖Δu‖²`` subject to ``u = y`` on the observed pixels.

    With ``Δ = div ∘ ∇`` (symmetric, Neumann boundary) the minimiser over the missing pixels ``Ū``
    solves ``P_Ū Δ² P_Ū z = −P_Ū Δ² (M y)`` (``Δ²u = 0`` on the missing pixels: the problem of
    scikit-image's ``inpaint_biharmonic``, Damelin & Hoang 2018), solved by batched conjugate
    gradients; each image may have its own mask. Only for inpainting physics, whose measured mask
    lives in the image domain. Observed pixels are returned as measured.
    """

    def __init__(self, n_iter: int = 200, tol: float = 1e-5, grad: bool = True):
        super().__init__(grad)
        self.n_iter = _check_iters(n_iter)
        self.tol = float(tol)

    def forward(self, y: Tensor, physics) -> Tensor:
        from selfrecon.physics.inpainting import Inpainting

        if not isinstance(physics.operator, Inpainting):
            raise ConfigError(
                f"Biharmonic inpaints missing pixels, so it needs inpainting physics; got "
                f"{type(physics.operator).__name__} (use TV or Wavelet)"
            )
        m = physics.measured_mask.to(y.dtype).expand_as(y)
        u = 1 - m

        def lap2(v: Tensor) -> Tensor:
            return div2d(grad2d(div2d(grad2d(v))))

        known = m * y
        rhs = -u * lap2(known)
        z = conjugate_gradient(lambda v: u * lap2(u * v), rhs, tol=self.tol, max_iter=self.n_iter)
        return known + u * z

    def config(self) -> dict:
        return {"n_iter": self.n_iter, "tol": self.tol, **super().config()}


#: registry names of the solvers (for :func:`selfrecon.models.build_model` specs and configs)
SOLVERS: dict[str, type[_Solver]] = {
    "pinv": Pinv,
    "adjoint": AdjointInit,
    "least_squares": LeastSquares,
    "tv": TV,
    "wavelet": Wavelet,
    "sart": SART,
    "biharmonic": Biharmonic,
}

r"""Parallel-beam computed tomography: the Radon transform, filtered back-projection, low-dose CT.

Geometry (pixel units)
----------------------
An ``N × N`` image has unit pixels; pixel ``(row r, column c)`` sits at ``x = c − (N−1)/2``,
``y = (N−1)/2 − r`` (y points up). A view at angle ``θ`` (degrees in the API) integrates along the
lines ``x cos θ + y sin θ = t``; detector bin ``j`` (``0 ≤ j < n_det``, unit spacing) sits at
``t = j − (n_det−1)/2``. So ``θ = 0`` sums the columns and the sinogram's bin order follows the
columns. This is scikit-image's :func:`skimage.transform.radon` convention (Kak & Slaney,
*Principles of Computerized Tomographic Imaging*, 1988, §3.1) except for the rotation centre:
scikit-image rotates about pixel ``N // 2``, we about the true centre ``(N−1)/2``. For odd ``N``
(and odd ``n_det``) the two coincide and the sinograms agree to the projector's interpolation error
(see the tests); for even ``N`` ours is shifted by half a pixel. We keep the symmetric centre
because with it 90° rotations and flips of the image map the sinogram onto itself exactly (views
shift, bins reverse), which the exact groups of equivariant imaging rely on.

Detector size: ``circle=False`` (default) uses ``n_det = ceil(√2·N)`` so every pixel — corners
included — is seen at every angle (scikit-image's ``circle=False`` uses the same count);
``circle=True`` uses ``n_det = N``, which covers the inscribed disc only (images should vanish
outside it, as in scikit-image's ``circle=True``).

Projector
---------
Joseph's method (P. M. Joseph, "An improved algorithm for reprojecting rays through pixel images",
IEEE TMI 1982): each ray is stepped one pixel at a time along the axis it runs closest to, and at
every step the image is linearly interpolated between the two nearest pixels of the other axis;
the sample is weighted by the path length per step, ``1 / max(|cos θ|, |sin θ|)``. We chose it over
pixel-driven projection (whose forward projections carry strong high-frequency artefacts, De Man &
Basu, Phys. Med. Biol. 2004) and over distance-driven projection (similar accuracy, more complex
and with a wider footprint, hence a denser matrix and slower products) because it is exact for
θ = 0° and 90°, reproduces scikit-image's bilinear ray sums closely, and has about two non-zeros
per ray and pixel row, which keeps the sparse matrix small.

The projector is stored once per geometry as a sparse CSR matrix ``A`` (``n_views·n_det × N²``)
together with its transpose in CSR form, so ``forward`` and the exact adjoint ``Aᵀ`` are both
row-parallel sparse-dense products over the whole batch (no loops over images). Matrices live in a
module-level cache keyed by the geometry, dtype and device.

Filtered back-projection
------------------------
``pinv`` is FBP (Kak & Slaney 1988, §3.3, eq. 61 for the discrete ramp filter
``h(0) = 1/4``, ``h(n odd) = −1/(π n)²``, ``h(n even) = 0``, which avoids the DC bias of sampling
``|ω|`` directly), applied by FFT with zero padding to at least twice the detector length,
optionally apodised by a window (``"hann"``, ``"hamming"``, ``"cosine"``, ``"shepp-logan"``),
followed by the exact back-projection ``Aᵀ`` and the angular quadrature weight ``Δθ`` of each view
(half the gap to its neighbours on the half circle, ``π / n_views`` for uniform views). With this
scaling FBP of a phantom returns the phantom at its own intensity. scikit-image's ``iradon`` uses a
filter twice as large and divides by ``2 n_views``, which is the same thing.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import torch
from torch import Tensor

from selfrecon.errors import ConfigError, shape_str
from selfrecon.physics.base import LinearOperator
from selfrecon.physics.noise import PoissonGaussianNoise, build_noise
from selfrecon.physics.physics import Physics, build_operator, register_operator, register_physics

__all__ = ["Tomography", "LowDoseCT", "radon_matrix", "ramp_filter"]

_WINDOWS = ("ramp", "hann", "hamming", "cosine", "shepp-logan")
_MODELS = ("joseph",)

# (angles bytes, img_size, n_det, model, dtype, device) -> (A as CSR, Aᵀ as CSR); the oldest
# entries are dropped beyond _CACHE_SIZE so per-batch geometries cannot grow it without bound.
_MATRIX_CACHE: dict[tuple, tuple[Tensor, Tensor]] = {}
_CACHE_SIZE = 16


def _as_angles(angles: int | float | Sequence[float] | Tensor) -> Tensor:
    """Degrees as a float64 vector; an int ``n`` means ``n`` views uniformly over ``[0°, 180°)``."""
    if isinstance(angles, bool):
        raise ConfigError("angles must be a number of views or a list/tensor of angles in degrees")
    if isinstance(angles, int) or (
        isinstance(angles, Tensor) and angles.dim() == 0 and not angles.is_floating_point()
    ):
        n = int(angles)
        if n < 1:
            raise ConfigError(f"the number of views must be ≥ 1, got {n}")
        return torch.arange(n, dtype=torch.float64) * (180.0 / n)
    t = torch.as_tensor(angles, dtype=torch.float64).detach().cpu().reshape(-1)
    if t.numel() == 0:
        raise ConfigError(
            "angles is empty; pass at least one angle in degrees or a number of views"
        )
    if not bool(torch.isfinite(t).all()):
        raise ConfigError("angles must be finite numbers of degrees")
    return t


def radon_matrix(
    angles_deg: Tensor, img_size: int, n_det: int, model: str = "joseph"
) -> tuple[Tensor, Tensor, Tensor]:
    r"""COO triplets ``(rows, cols, values)`` (float64) of the Joseph projector; see module docs.

    Row ``v·n_det + j`` is view ``v``, bin ``j``; column ``r·N + c`` is pixel ``(r, c)``.
    """
    if model not in _MODELS:
        raise ConfigError(f"unknown projector model {model!r}; choose one of {list(_MODELS)}")
    n = int(img_size)
    theta = angles_deg.to(torch.float64) * (math.pi / 180.0)
    cos, sin = torch.cos(theta), torch.sin(theta)
    cos = torch.where(cos.abs() < 1e-12, torch.zeros_like(cos), cos)
    sin = torch.where(sin.abs() < 1e-12, torch.zeros_like(sin), sin)
    centre = (n - 1) / 2.0
    t = torch.arange(n_det, dtype=torch.float64) - (n_det - 1) / 2.0  # (D,)
    k = torch.arange(n, dtype=torch.float64)  # step index along the dominant axis
    steep = cos.abs() >= sin.abs()  # ray direction (−sin, cos) closer to the y axis: step over rows

    # Rows as the dominant axis: at row r (y = centre − r) the ray is at x = (t − y sin) / cos.
    # Columns as the dominant axis: at column c (x = c − centre) it is at y = (t − x cos) / sin.
    cs = torch.where(steep, cos, sin)[:, None, None]  # (V,1,1) the dominant direction cosine
    other = torch.where(steep, sin, cos)[:, None, None]
    step_coord = torch.where(steep[:, None], centre - k[None, :], k[None, :] - centre)[:, None, :]
    pos = (t[None, :, None] - step_coord * other) / cs  # (V, D, N) coordinate on the other axis
    # Convert that coordinate to a fractional pixel index on the other axis.
    idx = torch.where(steep[:, None, None], pos + centre, centre - pos)
    i0 = torch.floor(idx)
    frac = idx - i0
    weight = 1.0 / cs.abs()
    rows_out, cols_out, vals_out = [], [], []
    for off, w in ((0, 1.0 - frac), (1, frac)):
        other_i = i0 + off
        ok = (other_i >= 0) & (other_i < n) & (w > 1e-12)
        flat = ok.reshape(-1).nonzero().squeeze(1)  # entries of the (V, D, N) grid that are kept
        ray, stp = flat // n, flat % n  # ray = v·n_det + j
        oi = other_i.reshape(-1)[flat].long()
        pix = torch.where(steep[ray // n_det], stp * n + oi, oi * n + stp)
        rows_out.append(ray)
        cols_out.append(pix)
        vals_out.append((w * weight).reshape(-1)[flat])
    return torch.cat(rows_out), torch.cat(cols_out), torch.cat(vals_out)


def _system_matrices(
    angles_deg: Tensor,
    img_size: int,
    n_det: int,
    model: str,
    dtype: torch.dtype,
    device: torch.device,
) -> tuple[Tensor, Tensor]:
    """``(A, Aᵀ)`` as CSR tensors, built once per geometry/dtype/device (module-level cache)."""
    key = (angles_deg.numpy().tobytes(), int(img_size), int(n_det), model, dtype, str(device))
    hit = _MATRIX_CACHE.get(key)
    if hit is not None:
        return hit
    base_key = (key[0], key[1], key[2], model, torch.float64, "cpu")
    base = _MATRIX_CACHE.get(base_key)
    if base is None:
        rows, cols, vals = radon_matrix(angles_deg, img_size, n_det, model)
        m, n2 = angles_deg.numel() * n_det, img_size * img_size
        base = (_csr(rows, cols, vals, (m, n2)), _csr(cols, rows, vals, (n2, m)))
        _MATRIX_CACHE[base_key] = base
    out = base if base_key == key else tuple(mat.to(device=device, dtype=dtype) for mat in base)
    _MATRIX_CACHE[key] = out
    while len(_MATRIX_CACHE) > _CACHE_SIZE:
        _MATRIX_CACHE.pop(next(iter(_MATRIX_CACHE)))
    return out


def _csr(rows: Tensor, cols: Tensor, vals: Tensor, shape: tuple[int, int]) -> Tensor:
    """CSR matrix from COO triplets; each (ray, pixel) pair occurs once (one step per pixel line).

    32-bit indices halve the index traffic of the products (matrices stay far below 2³¹ entries).
    """
    order = torch.argsort(rows * shape[1] + cols)
    counts = torch.bincount(rows, minlength=shape[0])
    crow = torch.cat([torch.zeros(1, dtype=torch.int64), torch.cumsum(counts, 0)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
        return torch.sparse_csr_tensor(
            crow.to(torch.int32), cols[order].to(torch.int32), vals[order], shape
        )


class _SparseProduct(torch.autograd.Function):
    """``M @ X`` for a CSR ``M`` whose transpose ``Mt`` is stored: the backward pass is ``Mt @ G``.

    Autograd through a plain sparse product would transpose ``M`` at every step; reusing the cached
    transpose keeps a training step's ``A``, ``Aᵀ`` and their gradients all row-parallel CSR
    products.
    The backward calls this function again, so higher-order gradients work too.
    """

    @staticmethod
    def forward(ctx, x: Tensor, m: Tensor, mt: Tensor) -> Tensor:  # noqa: D102
        ctx.mats = (m, mt)
        return m @ x

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None, None]:  # noqa: D102
        m, mt = ctx.mats
        return _SparseProduct.apply(grad.contiguous(), mt, m), None, None


def _apply(m: Tensor, mt: Tensor, x: Tensor) -> Tensor:
    """``m @ x`` (x dense, columns = batch items), differentiable in ``x``."""
    if torch.is_grad_enabled() and x.requires_grad:
        return _SparseProduct.apply(x, m, mt)
    return m @ x


def ramp_filter(n_det: int, window: str = "ramp", dtype: torch.dtype = torch.float64) -> Tensor:
    r"""Frequency response (length ``P``, the padded FFT size) of the windowed discrete ramp filter.

    Kak & Slaney (1988), §3.3, eq. 61: spatial kernel ``h(0)=1/4``, ``h(±n)=−1/(πn)²`` for odd
    ``n``, 0 for even ``n`` (unit detector spacing); ``P`` = next power of two ≥ ``2·n_det``
    (zero padding avoids the circular wrap-around of the convolution). Windows multiply the
    response: Hann ``(1+cos πf/f_N)/2``, Hamming ``0.54+0.46 cos(πf/f_N)``, cosine ``cos(πf/2f_N)``,
    Shepp–Logan ``sinc(f/2f_N)`` (``f_N`` the Nyquist frequency).
    """
    if window not in _WINDOWS:
        raise ConfigError(f"unknown FBP filter {window!r}; choose one of {list(_WINDOWS)}")
    p = max(64, 1 << int(math.ceil(math.log2(2 * n_det))))
    n = torch.cat([torch.arange(0, p // 2 + 1), torch.arange(-(p // 2) + 1, 0)]).to(torch.float64)
    h = torch.zeros(p, dtype=torch.float64)
    h[0] = 0.25
    odd = n.remainder(2) != 0
    h[odd] = -1.0 / (math.pi * n[odd]) ** 2
    resp = torch.fft.fft(h).real
    f = torch.fft.fftfreq(p, dtype=torch.float64).abs() * 2.0  # f / f_Nyquist in [0, 1]
    if window == "hann":
        resp = resp * (1 + torch.cos(math.pi * f)) / 2
    elif window == "hamming":
        resp = resp * (0.54 + 0.46 * torch.cos(math.pi * f))
    elif window == "cosine":
        resp = resp * torch.cos(math.pi * f / 2)
    elif window == "shepp-logan":
        resp = resp * torch.sinc(f / 2)
    return resp.to(dtype)


def _view_weights(angles_deg: Tensor) -> Tensor:
    """Angular quadrature ``Δθ`` per view (radians): half the gaps to its neighbours on [0, π)."""
    th = torch.remainder(angles_deg.to(torch.float64) * (math.pi / 180.0), math.pi)
    v = th.numel()
    if v == 1:
        return torch.full((1,), math.pi, dtype=torch.float64)
    order = torch.argsort(th)
    s = th[order]
    gaps = torch.diff(torch.cat([s, s[:1] + math.pi]))  # gap after each sorted view, wrapping
    w_sorted = 0.5 * (gaps + torch.roll(gaps, 1))
    w = torch.empty_like(w_sorted)
    w[order] = w_sorted
    return w


@register_operator("tomography")
class Tomography(LinearOperator):
    r"""Parallel-beam Radon transform ``(A x)(θ, t) = ∫ x(t cosθ − s sinθ, t sinθ + s cosθ) ds``.

    Input ``(B, C, N, N)`` real, output sinogram ``(B, C, n_views, n_det)``. Geometry, projector and
    FBP are described in the module docstring (Joseph 1982; Kak & Slaney 1988).

    Parameters
    ----------
    angles : int, sequence of float or Tensor
        View angles in degrees, or an int ``n`` for ``n`` views uniformly over ``[0°, 180°)``.
    img_size : int
        ``N`` (square images).
    n_det : int, optional
        Detector bins (unit spacing); default ``ceil(√2·N)``, or ``N`` when ``circle=True``.
    circle : bool
        Default detector covers only the inscribed disc (``n_det = N``).
    filter : str
        FBP window: ``"ramp"`` (none), ``"hann"``, ``"hamming"``, ``"cosine"``, ``"shepp-logan"``.
    model : str
        Projector; ``"joseph"`` (the only one, see module docs).
    """

    measurement_space = "image"

    def __init__(
        self,
        angles: int | Sequence[float] | Tensor = 180,
        img_size: int = 128,
        n_det: int | None = None,
        circle: bool = False,
        filter: str = "ramp",  # noqa: A002 - the FBP term of art
        model: str = "joseph",
    ):
        super().__init__()
        img_size = int(img_size)
        if img_size < 2:
            raise ConfigError(f"img_size must be ≥ 2 pixels, got {img_size}")
        if model not in _MODELS:
            raise ConfigError(f"unknown projector model {model!r}; choose one of {list(_MODELS)}")
        if filter not in _WINDOWS:
            raise ConfigError(f"unknown FBP filter {filter!r}; choose one of {list(_WINDOWS)}")
        if n_det is None:
            n_det = img_size if circle else int(math.ceil(math.sqrt(2) * img_size))
        if int(n_det) < 1:
            raise ConfigError(f"n_det must be ≥ 1, got {n_det}")
        self.img_size = img_size
        self.n_det = int(n_det)
        self.circle = bool(circle)
        self.filter = filter
        self.model = model
        # Degrees in float64: the one source of the geometry (matrix cache key, FBP view weights),
        # so a loaded state_dict or a per-batch update() is always honoured.
        self.register_buffer("angles", _as_angles(angles))
        self.register_buffer(
            "_filter", ramp_filter(self.n_det, filter, torch.float32), persistent=False
        )

    # -- shapes ---------------------------------------------------------------------------
    @property
    def n_views(self) -> int:
        return int(self.angles.numel())

    @property
    def in_shape(self) -> tuple[int, int, int]:
        """One image's shape ``(1, N, N)`` (any channel count works; channels are independent)."""
        return (1, self.img_size, self.img_size)

    @property
    def out_shape(self) -> tuple[None, int, int]:
        return (None, self.n_views, self.n_det)

    def _check(self, t: Tensor, expected: tuple[int, int], what: str) -> None:
        if t.dim() != 4 or tuple(t.shape[-2:]) != expected or t.is_complex():
            kind = "complex " if t.is_complex() else ""
            raise ConfigError(
                f"{kind}{what} have shape {shape_str(t.shape)} but this Tomography expects real "
                f"(B, C, {expected[0]}, {expected[1]}); "
                + (
                    "resize the images or build Tomography(img_size=...) for them"
                    if what == "images"
                    else "pass sinograms made with the same angles and n_det"
                )
            )

    def _angles_cpu(self) -> Tensor:
        return self.angles.detach().to("cpu", torch.float64)

    def _mats(self, like: Tensor) -> tuple[Tensor, Tensor]:
        dtype = torch.float64 if like.dtype == torch.float64 else torch.float32
        return _system_matrices(
            self._angles_cpu(), self.img_size, self.n_det, self.model, dtype, like.device
        )

    # -- the maps -------------------------------------------------------------------------
    def forward(self, x: Tensor) -> Tensor:
        """Sinogram ``A x``: ``(B, C, N, N)`` → ``(B, C, n_views, n_det)``."""
        self._check(x, (self.img_size, self.img_size), "images")
        a, at = self._mats(x)
        b, c = x.shape[:2]
        cols = x.to(a.dtype).reshape(b * c, -1).t().contiguous()  # (N², BC)
        y = _apply(a, at, cols).t()  # (BC, V·D)
        return y.reshape(b, c, self.n_views, self.n_det).to(x.dtype)

    def adjoint(self, y: Tensor) -> Tensor:
        """Exact back-projection ``Aᵀ y`` (the transpose of the stored matrix)."""
        self._check(y, (self.n_views, self.n_det), "sinograms")
        a, at = self._mats(y)
        b, c = y.shape[:2]
        cols = y.to(at.dtype).reshape(b * c, -1).t().contiguous()  # (V·D, BC)
        x = _apply(at, a, cols).t()
        return x.reshape(b, c, self.img_size, self.img_size).to(y.dtype)

    def filter_sinogram(self, y: Tensor) -> Tensor:
        """Ramp-filter each view along the detector (zero-padded FFT) and apply the view weights."""
        self._check(y, (self.n_views, self.n_det), "sinograms")
        dtype = torch.float64 if y.dtype == torch.float64 else torch.float32
        resp = self._filter.to(dtype) if dtype == torch.float64 else self._filter
        p = resp.numel()
        spec = torch.fft.rfft(y.to(dtype), n=p, dim=-1) * resp[: p // 2 + 1]
        filt = torch.fft.irfft(spec, n=p, dim=-1)[..., : self.n_det]
        w = _view_weights(self._angles_cpu()).to(device=filt.device, dtype=dtype)
        return filt * w[:, None]

    def fbp(self, y: Tensor) -> Tensor:
        r"""Filtered back-projection ``Aᵀ (Δθ · h ∗ y)`` (Kak & Slaney 1988, eq. 3.45, discrete)."""
        return self.adjoint(self.filter_sinogram(y)).to(y.dtype)

    def pinv(self, y: Tensor, tol: float = 1e-6, max_iter: int = 100) -> Tensor:
        """``A† y`` ≈ FBP (fast, the usual CT convention); ``pinv_cg`` gives least squares."""
        return self.fbp(y)

    # -- description ----------------------------------------------------------------------
    def config(self) -> dict:
        return {
            "angles": self._angles_cpu().clone(),
            "img_size": self.img_size,
            "n_det": self.n_det,
            "circle": self.circle,
            "filter": self.filter,
            "model": self.model,
        }

    def extra_repr(self) -> str:
        return (
            f"n_views={self.n_views}, img_size={self.img_size}, n_det={self.n_det}, "
            f"filter={self.filter!r}, model={self.model!r}"
        )


class BeerLambert:
    r"""``physics.A`` of :class:`LowDoseCT`: the nonlinear map ``x ↦ I0·exp(−μ A x)`` with the
    vocabulary of a linear one, on the linearised data ``ℓ = linearize(y) ≈ μ A x``:

    * ``A(x)`` expected counts ``I0·exp(−μ A x)`` (what the losses compare in measurement space);
    * ``A.H(y)`` / ``A.adjoint(y)`` = ``μ Aᵀ ℓ``, the adjoint of the linearised operator ``μ A``
      applied to the linearised data;
    * ``A.pinv(y)`` = ``FBP(ℓ) / μ``, the reconstruction every model starts from.
    """

    complex_input = False
    exact_pinv = False
    measured_mask = None

    def __init__(self, physics: LowDoseCT):
        self.physics = physics

    def __call__(self, x: Tensor) -> Tensor:
        p = self.physics
        return p.I0 * torch.exp(-p.mu * p.operator(x))

    forward = __call__

    def adjoint(self, y: Tensor) -> Tensor:
        p = self.physics
        return p.mu * p.operator.adjoint(p.linearize(y))

    @property
    def H(self):  # noqa: N802 - the math name
        """``y ↦ μ Aᵀ linearize(y)``."""
        return self.adjoint

    def pinv(self, y: Tensor, tol: float = 1e-6, max_iter: int = 100) -> Tensor:
        p = self.physics
        return p.operator.pinv(p.linearize(y)) / p.mu

    def per_sample(self) -> bool:
        return self.physics.operator.per_sample()


@register_physics("lowdose_ct")
class LowDoseCT(Physics):
    r"""Low-dose CT: ``y = γ·Poisson(u/γ) + σ n`` with ``u = I0·exp(−μ A x)``.

    Chen et al., "Robust Equivariant Imaging", CVPR 2022, §5 (I0 = 1e5, σ = 30, γ = 1); Beer–Lambert
    law with Poisson photon counts plus Gaussian read-out noise. ``A`` is :class:`Tomography`
    (the ``operator`` attribute), ``x`` is in image units ([0, 1] nominally).

    * ``A(x)`` is the nonlinear forward ``I0·exp(−μ A x)`` — losses compare in measurement space.
    * ``linearize(y) = −log(max(y, min_count) / I0)`` is the data the linear operator sees,
      ``≈ μ A x``. Counts at or below zero (possible with read-out noise) are clamped to
      ``min_count`` (one photon by default), so the result is finite and at most
      ``log(I0/min_count)``.
    * ``A.pinv(y) = FBP(linearize(y)) / μ`` reconstructs ``x``;
      ``A.H(y) = μ Aᵀ linearize(y)`` is the adjoint of the linearised operator ``μ A``
      applied to the linearised data (see :class:`BeerLambert`).

    Parameters
    ----------
    angles, img_size, n_det, circle, filter :
        Passed to :class:`Tomography`.
    I0 : float
        Incident photon count per detector bin.
    gain, sigma : float or Tensor
        Poisson gain ``γ`` and read-out noise ``σ`` (counts) of :class:`PoissonGaussianNoise`.
    mu : float, optional
        Attenuation per pixel width of intensity 1. Default ``4 / img_size``: a unit disc filling
        the image gives line integrals up to about 3.6 (transmission ≈ 3 %), the Shepp–Logan phantom
        (mostly 0.2–0.3 inside a unit skull) about 1 — the range where low-dose Poisson noise
        matters but counts stay far above zero at I0 = 1e5. (REI's code feeds images pre-scaled to
        at most 0.0064 per pixel at 256², i.e. ``mu ≈ 1.6 / img_size``; pass that to match it.)
    min_count : float
        Floor applied to counts in :meth:`linearize`.
    """

    def __init__(
        self,
        angles: int | Sequence[float] | Tensor = 50,
        img_size: int = 128,
        I0: float = 1e5,  # noqa: N803 - the physics name
        gain: float | Tensor = 1.0,
        sigma: float | Tensor = 30.0,
        mu: float | None = None,
        min_count: float = 1.0,
        n_det: int | None = None,
        circle: bool = False,
        filter: str = "ramp",  # noqa: A002
        operator: Tomography | None = None,
    ):
        op = (
            operator
            if operator is not None
            else Tomography(angles, img_size, n_det=n_det, circle=circle, filter=filter)
        )
        if not isinstance(op, Tomography):
            raise TypeError(f"LowDoseCT needs a Tomography operator, got {type(op).__name__}")
        super().__init__(op, PoissonGaussianNoise(gain=gain, sigma=sigma))
        if not (float(I0) > 0 and math.isfinite(float(I0))):
            raise ConfigError(f"I0 (incident photons per bin) must be a positive number, got {I0}")
        if float(min_count) <= 0:
            raise ConfigError(
                f"min_count must be > 0 (a floor on the counts before log), got {min_count}"
            )
        self.I0 = float(I0)
        self.mu = float(mu) if mu is not None else 4.0 / op.img_size
        if not self.mu > 0:
            raise ConfigError(f"mu (attenuation per pixel of intensity 1) must be > 0, got {mu}")
        self.min_count = float(min_count)

    @property
    def A(self) -> BeerLambert:  # noqa: N802
        """The measurement map: ``A(x)`` expected counts, ``A.H(y)``, ``A.pinv(y)`` (see
        :class:`BeerLambert`)."""
        return BeerLambert(self)

    def linearize(self, y: Tensor) -> Tensor:
        """Line integrals ``−log(max(y, min_count)/I0)`` (≈ μ A x); finite for any real ``y``."""
        return -torch.log(y.clamp_min(self.min_count) / self.I0)

    def linearized(self, y: Tensor) -> tuple[Physics, Tensor]:
        """``(Physics(μ·Tomography), linearize(y))``: the line-integral problem ``μ A x ≈ ℓ``."""
        return Physics(self.mu * self.operator), self.linearize(y)

    def spec(self) -> dict:
        return {
            "kind": self.kind,
            "operator": self.operator.spec(),
            "noise": self.noise.spec() if self.noise is not None else None,
            "I0": self.I0,
            "mu": self.mu,
            "min_count": self.min_count,
        }

    @classmethod
    def from_spec(cls, spec: dict) -> LowDoseCT:
        spec = dict(spec)
        spec.pop("kind", None)
        op = build_operator(spec.pop("operator"))
        noise = build_noise(spec.pop("noise", None))
        if noise is not None and not isinstance(noise, PoissonGaussianNoise):
            raise ConfigError(
                f"low-dose CT uses Poisson-Gaussian noise, got {type(noise).__name__}"
            )
        kw = {"gain": noise.gain, "sigma": noise.sigma} if noise is not None else {}
        unknown = set(spec) - {"I0", "mu", "min_count"}
        if unknown:
            raise ConfigError(
                f"unknown low-dose CT parameter(s) {sorted(unknown)}; allowed: I0, mu, min_count"
            )
        return cls(operator=op, **kw, **spec)

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, I0={self.I0:g}, mu={self.mu:g}"

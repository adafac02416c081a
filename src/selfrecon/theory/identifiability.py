r"""Can this operator and this group be learned from measurements alone? The sensing theorems.

Tachella, Chen & Davies, "Sensing Theorems for Unsupervised Learning in Linear Inverse Problems",
JMLR 24 (2023) — with an invariant signal set, the measurements ``y = A x`` of many signals identify
the signal model only if

1. the stacked operator ``[A T_1; …; A T_|G|]`` has rank ``n`` (Thm. 1/Prop. 3): equivalently
   ``S = Σ_g T_gᵀ AᵀA T_g`` is positive definite. If ``A`` is equivariant (``AᵀA T_g = T_g AᵀA``)
   then ``S = |G| AᵀA`` and the group adds nothing;
2. ``m ≥ max_j c_j / s_j`` (Thm. 3), ``c_j``/``s_j`` the multiplicity/dimension of the ``j``-th
   irreducible representation of the action (:mod:`selfrecon.theory.characters`); typically
   ``n/|G|``.

:func:`identifiability` checks both. ``rank S`` comes from one of four numerical paths, each a
module that returns one :class:`~selfrecon.theory.spectrum.Spectrum` record:

* ``"dense"`` (:mod:`~selfrecon.theory._dense`) — ``S`` as a matrix, every eigenvalue; ``n ≤
  DENSE_MAX_N``;
* ``"fft"`` (:mod:`~selfrecon.theory._fourier`) — the full cyclic shift group: ``S`` is diagonal in
  the 2-D DFT, its eigenvalues are ``|G|·‖A e_ω‖²``;
* ``"gram"`` (:mod:`~selfrecon.theory._gram`) — moderate ``n`` (``≤ GRAM_MAX_N``, e.g. 64×64):
  ``S`` assembled exactly from ``K = AᵀA`` and sparse local ``T_g``, split into isotypic blocks of a
  pixel symmetry it commutes with;
* ``"matrix_free"`` (:mod:`~selfrecon.theory._lobpcg`) — the smallest eigenvalues by LOBPCG, ``S``
  applied with ``A``, ``Aᵀ`` and the group actions only; the nullspace count is a lower bound unless
  the residuals certify it.

Ranks count singular values ``σ_i = √λ_i(S)`` of the stacked operator above ``tol · σ_max``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, fields

import torch

from selfrecon.errors import ConfigError
from selfrecon.groups import Flip, Group, ProductGroup, Rotate, Rotate90, Scale, Shift
from selfrecon.physics.base import LinearOperator
from selfrecon.physics.physics import Physics
from selfrecon.theory._dense import DENSE_MAX_N, dense_spectrum
from selfrecon.theory._fourier import fft_spectrum
from selfrecon.theory._gram import GRAM_MAX_N, gram_spectrum
from selfrecon.theory._groups import GroupAction, group_label
from selfrecon.theory._linear import RealMap
from selfrecon.theory._lobpcg import MATRIX_FREE_TOL, matrix_free_spectrum
from selfrecon.theory.characters import Multiplicities, multiplicities
from selfrecon.theory.spectrum import Spectrum

__all__ = ["Report", "identifiability", "quick_check", "candidate_groups", "VERDICTS"]

VERDICTS = ("identifiable", "not identifiable", "undetermined")
_METHODS = ("auto", "dense", "gram", "fft", "matrix_free")
__all__ += ["DENSE_MAX_N", "GRAM_MAX_N", "MATRIX_FREE_TOL"]


@dataclass
class Report:
    r"""The answer of :func:`identifiability`; ``str(report)`` is the readable summary.

    ``rank`` is the rank of the stacked operator ``[A T_g]_g`` (equivalently of ``S``), where known;
    ``rank_operator`` that of ``A`` alone. ``min_eigenvalue``/``max_eigenvalue`` are those of ``S``.
    ``bound`` is ``max_j c_j/s_j`` (``bound_method`` says how it was obtained) and
    ``bound_satisfied``
    is ``m ≥ bound``. ``verdict`` is one of :data:`VERDICTS`.
    """

    operator: str
    group: str
    n: int
    m: int
    group_order: int
    method: str
    rank: int | None = None
    rank_operator: int | None = None
    min_eigenvalue: float | None = None
    max_eigenvalue: float | None = None
    nullspace_dim: int | None = None
    nullspace_dim_is_lower_bound: bool = False
    multiplicities: list[tuple[int, int]] | None = None
    bound: float = 0.0
    bound_method: str = ""
    bound_satisfied: bool = True
    equivariant: bool | None = None
    verdict: str = "undetermined"
    reason: str = ""
    recommendation: list[str] = field(default_factory=list)
    recommendation_notes: list[str] = field(default_factory=list)
    tol: float = 0.0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    #: why the computation could not decide (empty when it did)
    undetermined_why: str = ""

    @property
    def identifiable(self) -> bool:
        return self.verdict == "identifiable"

    def __str__(self) -> str:
        lines = [
            f"identifiability of {self.operator} with group {self.group}: {self.verdict.upper()}",
            f"  signal dimension n = {self.n}, real measurements m = {self.m}, "
            f"|G| = {self.group_order}",
        ]
        if self.rank is not None:
            extra = f" (A alone: {self.rank_operator})" if self.rank_operator is not None else ""
            lines.append(f"  rank of stacked [A T_g] = {self.rank} of {self.n}{extra}")
        if self.nullspace_dim is not None:
            ge = "≥ " if self.nullspace_dim_is_lower_bound else ""
            lines.append(f"  nullspace of S = Σ T_gᵀAᵀA T_g: dimension {ge}{self.nullspace_dim}")
        if self.min_eigenvalue is not None and self.max_eigenvalue:
            lines.append(
                f"  eigenvalues of S: min {self.min_eigenvalue:.3g}, max {self.max_eigenvalue:.3g} "
                f"(ratio {self.min_eigenvalue / self.max_eigenvalue:.2g})"
            )
        ok = "holds" if self.bound_satisfied else "FAILS"
        lines.append(f"  bound m ≥ max_j c_j/s_j = {self.bound:.4g} ({self.bound_method}): {ok}")
        if self.multiplicities:
            pairs = ", ".join(f"{c}×dim{s}" for c, s in self.multiplicities)
            lines.append(f"  irreducible representations (multiplicity×dimension): {pairs}")
        if self.equivariant is not None:
            lines.append(f"  A equivariant to the group: {'yes' if self.equivariant else 'no'}")
        lines.append(f"  reason: {self.reason}")
        if self.recommendation:
            lines.append(f"  groups that make it identifiable: {', '.join(self.recommendation)}")
        for note in self.recommendation_notes:
            lines.append(f"  note: {note}")
        for note in self.notes:
            lines.append(f"  note: {note}")
        lines.append(f"  method: {self.method}, tol {self.tol:.1e}, {self.seconds:.2f} s")
        return "\n".join(lines)


# ------------------------------------------------------------------------------------------
# public API
# ------------------------------------------------------------------------------------------
def candidate_groups(img_shape: Sequence[int]) -> list[Group]:
    """The library's groups tried by the recommendation (rotations and scales only for square
    images; scales are what super-resolution and deblurring need, which commute with shifts)."""
    h, w = int(img_shape[-2]), int(img_shape[-1])
    groups: list[Group] = [Shift(), Flip()]
    if h == w:
        groups += [Rotate90(), Rotate90() * Flip(), Rotate(), Scale()]
    return groups


def identifiability(
    physics: Physics | LinearOperator,
    group: Group | None,
    img_shape: Sequence[int] | None = None,
    method: str = "auto",
    tol: float = 1e-6,
    k: int | None = None,
    real_images: bool | None = None,
    recommend: bool = True,
    time_budget: float | None = None,
    generator: torch.Generator | None = None,
) -> Report:
    r"""Check the necessary conditions of the sensing theorems for ``physics`` and ``group``.

    Tachella, Chen & Davies, JMLR 2023: rank ``[A T_g]_g = n`` (Thm. 1) and ``m ≥ max_j c_j/s_j``
    (Thm. 3). See the module docstring for the three computation paths.

    Parameters
    ----------
    physics : Physics or LinearOperator
        The measurement process (a nonlinear physics contributes its linear operator).
    group : Group or None
        The invariance assumed by EI/REI; ``None`` checks ``A`` alone (no invariance). Interpolating
        groups are made finite (their configured ``angles``/``values``, else 36 angles every 10° /
        9 scales; see :mod:`selfrecon.theory._groups`).
    img_shape : tuple, optional
        One image ``(C, H, W)`` as the operator sees it, when the operator does not know it.
    method : {"auto", "dense", "gram", "fft", "matrix_free"}
        ``"auto"``: FFT for the full shift group, dense for ``n ≤ 2304``, the Gram path for
        ``n ≤ 8192`` (``GRAM_MAX_N``), else matrix-free. ``"gram"`` falls back to matrix-free (and
        says so in the notes) when a ``T_g`` is not a local resampling.
    tol : float
        Relative singular-value threshold: ``σ_i(stacked) > tol·σ_max`` counts towards the rank
        (``λ_i(S) > tol²·λ_max``). Widened to ``10·√eps`` for float32 operators, to the
        operator's ``rank_tol`` (blur, downsampling: the ``rcond`` of their A†), and to ``1e-3`` on
        the matrix-free path, whose Ritz values are accurate to about ``1e-7·λ_max``.
    k : int, optional
        Block size of the matrix-free path (number of smallest eigenvalues computed; default 32).
    real_images : bool, optional
        Complex operators (MRI): restrict to real images (``n = C·H·W``) instead of the network's
        2-channel complex layout (``n = 2·C·H·W``, the default).
    recommend : bool
        Also try the library's groups (:func:`candidate_groups`) and list those that work.
    time_budget : float, optional
        Seconds allowed (generic FFT path and the recommendations stop when it runs out and say so).
    generator : torch.Generator, optional
        Seeds the random probes (structure tests, LOBPCG start). Default: seeded with 0.
    """
    _check_args(method, tol)
    t0 = time.perf_counter()
    deadline = t0 + (time_budget if time_budget is not None else float("inf"))
    if generator is None:
        generator = torch.Generator().manual_seed(0)
    rm = RealMap(physics, img_shape=img_shape, real_images=real_images)
    report = _check(rm, group, method, tol, k, generator, deadline)
    if recommend:
        _recommend(rm, report, group, tol, generator, deadline)
    report.seconds = time.perf_counter() - t0
    return report


def _check_args(method: str, tol: float) -> None:
    """Reject an unknown ``method`` or a ``tol`` outside ``(0, 1)``."""
    if method not in _METHODS:
        raise ConfigError(f"unknown method {method!r}; choose one of {list(_METHODS)}")
    if not 0 < tol < 1:
        raise ConfigError(f"tol is a relative singular-value threshold in (0, 1), got {tol}")


def _check(rm: RealMap, group, method, tol, k, generator, deadline) -> Report:
    """Check ``rm`` with ``group`` by one computation path and give the report its verdict."""
    ga = GroupAction(group, rm.sig_shape)
    method = _resolve_method(method, ga, rm.n)
    tol_eff = max(tol, 10 * math.sqrt(rm.eps), rm.rank_tol)
    rep = _new_report(rm, ga, method, tol_eff)
    _fill(rep, _spectrum(rm, ga, method, tol_eff, k, generator, deadline))
    _verdict(rep, rm, ga)
    return rep


def _spectrum(rm: RealMap, ga: GroupAction, method: str, tol, k, generator, deadline) -> Spectrum:
    """The one numerical path ``method`` names (the Gram path falls back to matrix-free when a
    ``T_g`` is not a local resampling, and says so)."""
    if method == "dense":
        return dense_spectrum(rm, ga, tol, generator)
    if method == "fft":
        return fft_spectrum(rm, ga, tol, generator, deadline)
    if method == "gram":
        spec = gram_spectrum(rm, ga, tol, generator)
        if spec is not None:
            return spec
        spec = matrix_free_spectrum(rm, ga, tol, k, generator, deadline)
        spec.notes.insert(0, "Gram path unavailable (T_g is not local); matrix-free instead")
        return spec
    return matrix_free_spectrum(rm, ga, tol, k, generator, deadline)


def _fill(rep: Report, spec: Spectrum) -> None:
    """Copy what the path established into the report (every fact of :class:`Spectrum`; its
    notes are appended to the report's)."""
    for f in fields(Spectrum):
        if f.name not in ("notes", "undetermined"):
            setattr(rep, f.name, getattr(spec, f.name))
    rep.notes.extend(spec.notes)
    rep.undetermined_why = spec.undetermined


def _resolve_method(method: str, ga: GroupAction, n: int) -> str:
    """The computation path ``"auto"`` stands for; ``"fft"`` only for the full shift group."""
    if method == "auto":
        if ga.full_shift:
            method = "fft"
        elif n <= DENSE_MAX_N:
            method = "dense"
        elif n <= GRAM_MAX_N:
            method = "gram"
        else:
            method = "matrix_free"
    if method == "fft" and not ga.full_shift:
        raise ConfigError(
            f"method='fft' needs the full cyclic shift group (Shift()); {ga.label} is not; "
            "use method='dense' or 'matrix_free'"
        )
    return method


def _new_report(rm: RealMap, ga: GroupAction, method: str, tol_eff: float) -> Report:
    """A report with the sizes, the multiplicity bound and the notes, before any rank is known."""
    n, m = rm.n, rm.m
    mult: Multiplicities = multiplicities(ga, n)
    rep = Report(
        operator=rm.name,
        group=ga.label,
        n=n,
        m=m,
        group_order=ga.order,
        method=method,
        bound=float(mult.bound),
        bound_method=mult.method,
        bound_satisfied=m >= mult.bound - 1e-9,
        multiplicities=mult.pairs() or None,
        tol=tol_eff,
        notes=list(ga.notes),
    )
    if rm.real_images and rm.is_complex:
        rep.notes.append("real images only (imaginary part zero): n = C·H·W")
    return rep


def _verdict(rep: Report, rm: RealMap, ga: GroupAction) -> None:
    """The verdict and its reason from the established facts (sensing theorems, Thm. 1 and 3)."""
    n, m = rep.n, rep.m
    name = rep.operator
    grp = "no group" if ga.group is None else f"the group {rep.group}"
    if rep.undetermined_why:
        rep.verdict, rep.reason = "undetermined", rep.undetermined_why
        return
    if not rep.bound_satisfied:
        rep.verdict = "not identifiable"
        rep.reason = (
            f"m = {m} < max_j c_j/s_j = {rep.bound:.4g}: too few measurements for any operator "
            "with "
            f"{grp}; use a larger group or more measurements"
        )
        return
    null = rep.nullspace_dim or 0
    if rep.rank == n or (rep.rank is None and null == 0 and not rep.nullspace_dim_is_lower_bound):
        rep.verdict = "identifiable"
        rep.reason = (
            f"the stacked operator [A T_g] has full rank {n} and m = {m} ≥ {rep.bound:.4g}: the "
            f"necessary conditions hold (sufficient for a.e. A when m > 2k + max c_j + 1)"
        )
        return
    if null > 0:
        rep.verdict = "not identifiable"
        ge = "≥ " if rep.nullspace_dim_is_lower_bound else ""
        if ga.group is None:
            rep.reason = (
                f"A has a nullspace of dimension {ge}{null} and no invariance is assumed; choose a "
                "group the signals are invariant to"
            )
        elif rep.equivariant or (rep.rank_operator is not None and rep.rank == rep.rank_operator):
            rep.reason = (
                f"{name} is equivariant to {rep.group}: this group adds no information "
                f"(rank {rep.rank if rep.rank is not None else '< n'} of {n}, as for A alone)"
            )
        elif rep.rank is not None and rep.rank_operator is not None:
            rep.reason = (
                f"{rep.group} adds information (rank {rep.rank_operator} → {rep.rank}) but a "
                f"nullspace of dimension {null} remains (needs rank {n})"
            )
        else:
            rep.reason = f"S = Σ T_gᵀAᵀA T_g has a nullspace of dimension {ge}{null}"
        if ga.order * m < n:
            rep.reason += (
                f"; |G|·m = {ga.order * m} < n = {n}, so no operator of this size can work"
            )
        return
    rep.verdict, rep.reason = "undetermined", "the rank could not be established"


def _short(group: Group) -> str:
    """Names users type: ``Shift``, ``Rotate90*Flip``, ``Rotate (36 angles)``."""
    # by type: Scale also has an attribute named ``factors`` (its range), which once made the
    # label "float*float"
    factors = group.factors if isinstance(group, ProductGroup) else (group,)
    names = [type(f).__name__ for f in factors]
    label = "*".join(names)
    if any(isinstance(f, Rotate) and f.angles is None for f in factors):
        label += " (36 angles)"
    if any(isinstance(f, Scale) and f.values is None for f in factors):
        label += " (9 scales)"
    return label


def _recommend(rm: RealMap, rep: Report, group, tol, generator, deadline) -> None:
    works, notes = [], []
    c, h, w = rm.sig_shape
    for cand in candidate_groups((h, w)):
        label = _short(cand)
        if time.perf_counter() > deadline:
            notes.append(f"{label}: not checked (time budget)")
            continue
        try:
            ga = GroupAction(cand, rm.sig_shape)
            if ga.order * rm.m < rm.n:
                continue  # rank ≤ |G|·m < n
            r = _check(rm, cand, "auto", tol, None, generator, deadline)
        except (ValueError, ArithmeticError) as err:  # pragma: no cover - reported, not raised
            notes.append(f"{label}: not checked ({err})")
            continue
        if r.verdict == "identifiable":
            works.append(label)
    rep.recommendation = works
    rep.recommendation_notes = notes
    if rep.verdict == "not identifiable":
        if works:
            rep.reason += f"; use {' or '.join(works)}"
        else:
            rep.reason += (
                "; none of the library's groups makes it identifiable at this size "
                "(consider measurements from several operators, MOI, or more measurements)"
            )


def quick_check(
    physics: Physics | LinearOperator,
    group: Group | None,
    img_shape: Sequence[int] | None = None,
    time_budget: float = 10.0,
    real_images: bool | None = None,
) -> Report:
    """:func:`identifiability` within a time budget, for the Trainer's start and the CLI's
    ``check``.

    Never raises on a computation it cannot finish: the verdict is then ``"undetermined"``.
    """
    try:
        return identifiability(
            physics,
            group,
            img_shape=img_shape,
            real_images=real_images,
            time_budget=time_budget,
        )
    except (ValueError, TypeError, NotImplementedError) as err:
        op = getattr(getattr(physics, "operator", physics), "name", type(physics).__name__)
        return Report(
            operator=str(op),
            group=group_label(group),
            n=0,
            m=0,
            group_order=0,
            method="none",
            verdict="undetermined",
            reason=f"could not check: {err}",
        )

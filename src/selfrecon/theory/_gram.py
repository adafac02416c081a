r"""The "Gram" path: ``S = Σ_g T_gᵀ AᵀA T_g`` assembled exactly, then block-diagonalised.

For moderate ``n`` (a 64×64 image: ``n = 4096``) the whole ``n × n`` matrix ``S`` fits in memory and
its spectrum is exact, unlike LOBPCG whose convergence on clustered small eigenvalues is slow:

1. ``K = AᵀA`` — the identity basis through :meth:`RealMap.normal_images` in batches (uses the
   operator's own fast forward/adjoint: FFTs for MRI, the sparse projector for CT);
2. every ``T_g`` as a **local sparse map** — output pixel ``p`` reads at most ``P`` input pixels
   ``idx[p, j]`` with weights ``w[p, j]``: a permutation (``P = 1``) for exact groups; for
   interpolating groups it is *measured from the group's own* ``apply`` (bilinear resampling reads
   a 2×2 neighbourhood, so probing with the four phase combs ``i ≡ a, j ≡ b (mod 2)`` finds each
   source once: its weight from a comb of ones, its index from a comb of ``index + 1`` — the ratio)
   and then verified against ``apply`` on random images; ``T_gᵀ K T_g`` is two weighted column
   gathers (``O(P·n²)``, no dense ``T_g``);
3. **symmetry** — if right-multiplying the set ``{T_g}`` by a pixel permutation ``Π`` (a quarter
   turn, a flip) maps the set onto itself (true for exact groups containing ``Π``, and for rotation
   angle sets closed under +90°), then ``ΠᵀSΠ = S``. Then only one ``T_g`` per coset
   ``{T_g Π^j}`` is needed, and ``S`` is block diagonal in the Fourier basis of the cyclic group
   ``⟨Π⟩`` of order ``N`` (the isotypic decomposition, e.g. Serre, *Linear Representations of
   Finite Groups*, §2.6). With the orbits ``O_a = {Π^t p_a}`` of size ``d_a``, the block of
   character ``k`` is

   ``B_k[a, b] = √(d_a d_b)/N · Σ_{t<N} e^{-2πi tk/N} S[p_a, Π^t p_b]``  for orbits with
   ``N | d·k``,

   (``v_{a,k} = d_a^{-1/2} Σ_{t<d_a} e^{-2πi tk/N} e_{Π^t p_a}`` and ``S Π = Π S``), so ``N``
   Hermitian eigenproblems of size ``≈ n/N`` replace one of size ``n`` (``N²`` times fewer
   flops); blocks ``k`` and ``N − k`` are complex conjugate and share their eigenvalues.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch
from torch import Tensor

from selfrecon.groups import Flip, Rotate90
from selfrecon.groups.base import take
from selfrecon.theory._groups import GroupAction
from selfrecon.theory._linear import RealMap
from selfrecon.theory._structure import equivariant_exact, fft_structure
from selfrecon.theory.spectrum import Spectrum, from_eigenvalues, gap_note

__all__ = [
    "LocalMaps",
    "full_S",
    "gram_K",
    "gram_eigenvalues",
    "gram_matrix",
    "gram_spectrum",
    "local_maps",
    "symmetric_S",
]

#: Largest ``n`` the automatic choice sends to the Gram path (``S`` and a few ``n × n`` float64
#: work arrays: about ``5·n²·8`` bytes, 2.7 GB at ``n = 8192``).
GRAM_MAX_N = 8192


class LocalMaps:
    """``T_g`` for every element as ``(order, HW, P)`` source indices and weights (per channel)."""

    def __init__(self, idx: Tensor, w: Tensor | None):
        self.idx = idx  # long (order, HW, P)
        self.w = w  # float64 (order, HW, P) or None (permutations)

    @property
    def order(self) -> int:
        return int(self.idx.shape[0])

    def apply(self, x: Tensor) -> Tensor:
        """``(order, b, HW)`` → ``T_g x_g`` for each ``g``."""
        out = torch.zeros_like(x)
        for j in range(self.idx.shape[-1]):
            vals = torch.gather(x, -1, self.idx[:, None, :, j].expand_as(x))
            out += vals if self.w is None else vals * self.w[:, None, :, j]
        return out


def _coord_index(idx: Tensor, c: int) -> Tensor:
    """Pixel indices ``(..., HW)`` → coordinate indices ``(..., C·HW)`` (channel-major)."""
    hw = idx.shape[-1]
    off = (torch.arange(c) * hw).reshape(c, *([1] * idx.dim()))
    return (idx[None] + off).movedim(0, -2).reshape(*idx.shape[:-1], c * hw)


def local_maps(ga: GroupAction, spacing: int = 2) -> LocalMaps | None:
    """Every ``T_g`` as a local sparse map (pixel level), or ``None`` when probing fails.

    Exact groups: the pixel maps themselves. Interpolating groups: probed through ``apply`` with
    ``spacing²`` comb images (see the module docstring) and checked on random images to
    ``1e-9`` relative error; a non-local resampling (bicubic needs ``spacing = 4``) fails the check
    and the next spacing is tried.
    """
    h, w = ga.hw
    hw = h * w
    if ga.src is not None:
        return LocalMaps(ga.src[..., None].contiguous(), None)
    order = ga.order
    gen = torch.Generator().manual_seed(12345)
    check = torch.randn((order, 1, h, w), generator=gen, dtype=torch.float64)
    with torch.no_grad():
        ref = ga.group.apply(check, ga.elements).reshape(order, hw)
    for s in (spacing, 4):
        ii, jj = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        phase = (ii % s) * s + (jj % s)  # (H, W)
        combs = (phase[None] == torch.arange(s * s)[:, None, None]).double()  # (P, H, W)
        ramp = (torch.arange(hw, dtype=torch.float64) + 1).reshape(h, w)
        probes = torch.cat([combs, combs * ramp], 0)[:, None]  # (2P, 1, H, W)
        npr = probes.shape[0]
        g = take(ga.elements, torch.arange(order).repeat_interleave(npr))
        with torch.no_grad():
            out = ga.group.apply(probes.repeat(order, 1, 1, 1), g)
        out = out.reshape(order, 2, s * s, hw).double()
        weight, tagged = out[:, 0], out[:, 1]  # (order, P, HW)
        nz = weight != 0
        src = torch.where(nz, torch.round(tagged / torch.where(nz, weight, 1.0)) - 1, 0.0)
        if bool(((src < 0) | (src >= hw)).any()):
            continue
        idx = src.long().transpose(1, 2).contiguous()  # (order, HW, P)
        wts = weight.transpose(1, 2).contiguous()
        maps = LocalMaps(idx, wts)
        got = maps.apply(check.reshape(order, 1, hw))[:, 0]
        err = float((got - ref).norm()) / max(float(ref.norm()), 1e-300)
        if err <= 1e-9:
            return maps
    return None


def gram_matrix(rm: RealMap, batch: int = 512) -> Tensor:
    """``K = AᵀA`` (``n × n``, float64, symmetrised): the identity basis through ``AᵀA``."""
    n = rm.n
    K = torch.empty((n, n), dtype=torch.float64)
    for start in range(0, n, batch):
        stop = min(n, start + batch)
        eye = torch.zeros((stop - start, n), dtype=torch.float64)
        eye[torch.arange(stop - start), torch.arange(start, stop)] = 1.0
        K[start:stop] = rm.normal_images(rm.images(eye)).reshape(stop - start, n)
    K += K.T.clone()
    K *= 0.5
    return K


def _transpose_csr(idx: Tensor, w: Tensor) -> Tensor:
    """``T_gᵀ`` as a sparse CSR matrix from the local map ``T[q, idx[q, j]] = w[q, j]``."""
    n = idx.shape[0]
    keep = w != 0
    rows = torch.arange(n)[:, None].expand_as(idx)[keep]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
        t = torch.sparse_coo_tensor(
            torch.stack([idx[keep], rows]), w[keep], (n, n), check_invariants=True
        ).coalesce()
        return t.to_sparse_csr()


def _congruence(K: Tensor, idx: Tensor, w: Tensor | None) -> Tensor:
    """``T_gᵀ K T_g`` for symmetric ``K`` (``(T_g x)[q] = Σ_j w[q, j] x[idx[q, j]]``).

    A permutation ``(T x)[q] = x[src[q]]`` gives ``(TᵀKT)[src[p], src[q]] = K[p, q]``: a gather
    with the inverse permutation. Otherwise two sparse-dense products ``Tᵀ (Tᵀ K)ᵀ``
    (``O(P·n²)``).
    """
    if w is None:
        src = idx[:, 0]
        inv = torch.empty_like(src)
        inv[src] = torch.arange(src.numel())
        return K[inv][:, inv]
    tt = _transpose_csr(idx, w)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        y = (tt @ K).T.contiguous()  # K T
        return tt @ y


def _candidate_symmetries(hw: tuple[int, int]) -> list[tuple[str, Tensor, int]]:
    """Pixel permutations ``Π`` tried as symmetries of ``S``: a quarter turn, then the flips."""
    out = []
    if hw[0] == hw[1]:
        out.append(("quarter turn", Rotate90().source_index(torch.tensor([1]), hw)[0], 4))
    flips = Flip("both").source_index(torch.tensor([[0, 1], [1, 0], [1, 1]]), hw)
    for name, src in zip(("left-right flip", "up-down flip", "half turn"), flips, strict=True):
        out.append((name, src, 2))
    return out


def _closure(maps: LocalMaps, pi: Tensor, hw: int) -> Tensor | None:
    """``σ`` with ``T_g Π = T_{σ(g)}`` for all ``g`` (checked on random probes), or ``None``."""
    order = maps.order
    gen = torch.Generator().manual_seed(777)
    z = torch.randn((2, hw), generator=gen, dtype=torch.float64)
    zz = z[None].expand(order, 2, hw)
    base = maps.apply(zz.contiguous()).reshape(order, -1)  # T_g z
    # T_g Π z: (Π z)[p] = z[π(p)]
    moved = maps.apply(z[:, pi][None].expand(order, 2, hw).contiguous()).reshape(order, -1)
    dist = torch.cdist(moved, base, compute_mode="donot_use_mm_for_euclid_dist")
    sigma = dist.argmin(1)
    scale = base.norm(dim=1).max().clamp_min(1e-300)
    if float(dist[torch.arange(order), sigma].max()) > 1e-9 * float(scale):
        return None
    if torch.unique(sigma).numel() != order:
        return None
    return sigma


def symmetric_S(
    K: Tensor, maps: LocalMaps, c: int, hw: tuple[int, int]
) -> tuple[Tensor, tuple[str, Tensor, int] | None]:
    """``S' `` and the symmetry ``(name, π, N)``: ``S[x, y] = Σ_{j<N} S'[π^j x, π^j y]``.

    Without a symmetry ``S' = S`` (all elements summed) and the second value is ``None``.
    """
    npx = hw[0] * hw[1]
    sym, sigma = None, None
    for cand in _candidate_symmetries(hw):
        sigma = _closure(maps, cand[1], npx)
        if sigma is not None:
            sym = cand
            break
    if sym is None:
        reps = [(g, 1.0) for g in range(maps.order)]
    else:
        n_ord = sym[2]
        seen = torch.zeros(maps.order, dtype=torch.bool)
        reps = []
        for g in range(maps.order):
            if seen[g]:
                continue
            cyc, cur = [], g
            while not seen[cur]:
                seen[cur] = True
                cyc.append(cur)
                cur = int(sigma[cur])
            reps.append((g, len(cyc) / n_ord))
    S = torch.zeros_like(K)
    for g, weight in reps:
        idx = _coord_index(maps.idx[g].T, c).T.contiguous()  # (C·HW, P)
        wg = None if maps.w is None else maps.w[g].repeat(c, 1)
        S.add_(_congruence(K, idx, wg), alpha=weight)
    if sym is not None:
        pi = _coord_index(sym[1], c)
        sym = (sym[0], pi, sym[2])
    return S, sym


def full_S(K: Tensor, maps: LocalMaps, c: int, hw: tuple[int, int]) -> Tensor:
    """The whole ``S = Σ_g T_gᵀ K T_g`` (dense path on small problems)."""
    S1, sym = symmetric_S(K, maps, c, hw)
    if sym is None:
        return S1
    _, pi, n_ord = sym
    acc, S = torch.arange(K.shape[0]), torch.zeros_like(K)
    for _ in range(n_ord):  # S[x, y] = Σ_j S'[π^j x, π^j y]
        S += S1[acc][:, acc]
        acc = pi[acc]
    return S


def _orbits(pi: Tensor, n_ord: int) -> tuple[Tensor, Tensor]:
    """Orbit table ``Q[a, t] = π^t(p_a)`` ``(r, N)`` and orbit sizes ``d_a``."""
    n = pi.numel()
    powers = [torch.arange(n)]
    for _ in range(1, n_ord):
        powers.append(pi[powers[-1]])
    P = torch.stack(powers)  # (N, n): π^t(x)
    rep = P.min(0).values
    reps = torch.unique(rep)
    Q = P[:, reps].T.contiguous()  # (r, N)
    d = torch.full((reps.numel(),), n_ord, dtype=torch.long)
    for t in range(n_ord - 1, 0, -1):  # smallest period t with π^t(p) = p
        d = torch.where(Q[:, t] == Q[:, 0], torch.full_like(d, t), d)
    return Q, d


def _eigvalsh(B: Tensor) -> np.ndarray:
    """``eigvalsh`` on one thread for blocks up to 2048: LAPACK's multithreaded tridiagonal
    reduction gains little at these sizes and, on a loaded machine, its spinning threads were
    measured 5–50× slower (1024², 2 cores, load 5: 0.3 s on one thread, 2–25 s on two)."""
    threads = torch.get_num_threads()
    if B.shape[-1] <= 2048:
        torch.set_num_threads(1)
    try:
        return torch.linalg.eigvalsh(B).numpy()
    finally:
        torch.set_num_threads(threads)


def gram_eigenvalues(
    rm: RealMap, ga: GroupAction, K: Tensor | None = None
) -> tuple[np.ndarray, list[str]] | None:
    """All ``n`` eigenvalues of ``S`` (ascending, float64) and notes; ``None`` if ``T_g`` cannot
    be made local (the caller falls back to the matrix-free path)."""
    maps = local_maps(ga)
    if maps is None:
        return None
    c = rm.sig_shape[0]
    if K is None:
        K = gram_matrix(rm)
    S1, sym = symmetric_S(K, maps, c, ga.hw)
    del K
    notes = []
    if maps.w is not None:
        notes.append(f"T_g measured from the group's apply: ≤ {maps.idx.shape[-1]} sources/pixel")
    if sym is None:
        S1 = 0.5 * (S1 + S1.T)
        return _eigvalsh(S1), notes
    name, pi, n_ord = sym
    Q, d = _orbits(pi, n_ord)
    # R[a, b, t] = S[p_a, π^t p_b] = Σ_j S'[π^j p_a, π^{j+t} p_b]
    r = Q.shape[0]
    R = torch.zeros((r, r, n_ord), dtype=torch.float64)
    shift = (torch.arange(n_ord)[None, :] + torch.arange(n_ord)[:, None]) % n_ord  # (j, t)
    for j in range(n_ord):
        rows = S1[Q[:, j]]  # (r, n)
        R += rows[:, Q[:, shift[j]]]  # (r, r, N)
    del S1
    F = torch.fft.fft(R, dim=-1)  # Σ_t e^{-2πi tk/N} R[..., t]
    del R
    eigs = []
    for k in range(n_ord // 2 + 1):
        sel = torch.nonzero((d * k) % n_ord == 0).flatten()
        if sel.numel() == 0:
            continue
        scale = torch.sqrt(d[sel].double())
        B = F[sel][:, sel, k] * (scale[:, None] * scale[None, :] / n_ord)
        B = 0.5 * (B + B.mH)
        real = k == 0 or 2 * k == n_ord
        ev = _eigvalsh(B.real.contiguous() if real else B)
        eigs.append(ev)
        if not real:  # the conjugate block N − k
            eigs.append(ev)
    notes.append(
        f"Gram path: S commutes with the {name}; {n_ord} isotypic blocks of size "
        f"≤ {int(max(len(e) for e in eigs))} instead of one of size {rm.n}"
    )
    out = np.sort(np.concatenate(eigs))
    assert out.size == rm.n, (out.size, rm.n)
    return out, notes


def gram_K(rm: RealMap, generator: torch.Generator) -> Tensor:
    """``K = AᵀA`` densely; from one impulse response per channel when ``AᵀA`` is pixel-diagonal
    or commutes with all shifts (:func:`fft_structure`: MRI, blur, inpainting), else through
    the identity basis (:func:`selfrecon.theory._gram.gram_matrix`)."""
    c, h, w = rm.sig_shape
    kind, info = fft_structure(rm, generator)
    if kind == "diagonal":
        return torch.diag(info.reshape(-1))
    if kind != "periodic" or tuple(info) != (1, 1):
        return gram_matrix(rm)
    probes = torch.zeros((c, c, h, w), dtype=torch.float64)
    probes[torch.arange(c), torch.arange(c), 0, 0] = 1.0
    resp = rm.normal_images(probes)  # (c_in, c_out, H, W): AᵀA e_{c_in, (0, 0)}
    # K[(c_out, p), (c_in, q)] = resp[c_in, c_out, p − q] (AᵀA commutes with shifts)
    ii, jj = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    ii, jj = ii.reshape(-1), jj.reshape(-1)
    di = (ii[:, None] - ii[None, :]) % h
    dj = (jj[:, None] - jj[None, :]) % w
    K = resp.permute(1, 0, 2, 3)[:, :, di, dj]  # (c_out, c_in, HW, HW)
    K = K.permute(0, 2, 1, 3).reshape(rm.n, rm.n).contiguous()
    return 0.5 * (K + K.T)


def gram_spectrum(rm: RealMap, ga: GroupAction, tol: float, generator) -> Spectrum | None:
    """All eigenvalues of the exactly assembled ``S``; ``None`` when a ``T_g`` is not a local
    resampling (then the caller goes matrix-free)."""
    res = gram_eigenvalues(rm, ga, gram_K(rm, generator))
    if res is None:
        return None
    eigs, notes = res
    spec = from_eigenvalues("gram", eigs, rm.n, tol, notes=[*notes, gap_note(eigs, tol)])
    spec.equivariant = equivariant_exact(rm, ga, generator)
    return spec


def gram_bytes(n: int) -> int:
    """Memory estimate of the Gram path (``K``, ``S'`` and gather temporaries)."""
    return 5 * n * n * 8


def fits(n: int) -> bool:
    """Is the Gram path affordable for ``n`` (``n ≤ GRAM_MAX_N``)?"""
    return n <= GRAM_MAX_N and math.isfinite(gram_bytes(n))

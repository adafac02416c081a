r"""Self-supervised calibration of a classical denoiser's parameter (Noise2Self without a network).

For a J-invariant ``f`` and noise that is zero-mean and independent across pixels given the clean
image ``x`` (Batson & Royer, "Noise2Self", ICML 2019, Prop. 1; the paper writes ``x`` for the
noisy and ``y`` for the clean image, the reverse of ours):

    E‖f(y) − y‖² = E‖f(y) − x‖² + E‖x − y‖²,

so the **self-supervised loss** ``L(θ) = mean((f_J(y; θ) − y)²)`` equals the ground-truth MSE of
``f_J`` plus the noise variance σ², a constant: its minimiser over ``θ`` is the best parameter,
found without a clean image. A non-J-invariant ``f`` (e.g. the ordinary median) has no such
property: ``‖f(y) − y‖²`` rewards copying the noise and is minimised by the weakest filter (the
"trap").

The denoiser is calibrated through its J-invariant version ``f_J`` (grid masking, see
:func:`selfrecon.classical.j_invariant`), or as is when it is J-invariant by construction (the donut
median).

Which image to return is a choice. :attr:`Result.denoised` is the **plain** denoiser
``f(y; θ*)`` at the chosen parameter (masking is only needed to *measure* the loss). But the loss
vouches for ``f_J``, not ``f``, and the two can prefer different parameters: ``f_J`` of a weak
filter tends to the neighbour interpolation while ``f`` tends to the noisy image, so for
BayesShrink wavelets the loss picks the weakest threshold, which is poor for the plain filter
(benchmarks/calibration.py: 5 dB regret on camera()); for NL-means the J-invariant optimum h is
smaller than the plain one. :attr:`Result.denoised_j` (``f_J`` at θ*) and :attr:`Result.shrunk`
(``f_J`` shrunk toward ``y``, expected error ``σ²e/(σ² + e)``, estimable from the data) are the
outputs whose quality the loss guarantees.
"""

from __future__ import annotations

import csv
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from selfrecon.classical.denoisers import get_denoiser
from selfrecon.classical.jinvariant import j_invariant
from selfrecon.errors import ConfigError, DataError, shape_str

__all__ = ["Result", "calibrate", "parse_grid", "shrink", "estimate_noise_var", "psnr"]

_MAX_GRID = 10_000


# --------------------------------------------------------------------------------------------------
# grids
# --------------------------------------------------------------------------------------------------
def parse_grid(text: str | Sequence[float]) -> list[float]:
    """Parse a parameter grid: ``"1:6"`` → 1..6, ``"0.5:3:0.5"`` → 0.5, 1.0, …, 3.0 (both ends
    included), ``"1,2,4"`` → [1, 2, 4]. Integral values come back as ``int``. A sequence of
    numbers is validated and returned as a list."""
    if not isinstance(text, str):
        values = [float(v) for v in text]
        return _finish_grid(values, repr(list(text)))
    s = text.strip()
    if not s:
        raise ConfigError("empty parameter grid; write e.g. 1:6, 0.5:3:0.5 or 1,2,4")
    if ":" in s:
        parts = s.split(":")
        if len(parts) not in (2, 3) or "," in s:
            raise ConfigError(
                f"cannot read grid {text!r}; write start:stop or start:stop:step, e.g. 0.5:3:0.5"
            )
        start, stop = _number(parts[0], text), _number(parts[1], text)
        step = _number(parts[2], text) if len(parts) == 3 else 1.0
        if step <= 0:
            raise ConfigError(f"grid {text!r} needs a positive step, got {parts[2]!r}")
        if stop < start:
            raise ConfigError(
                f"grid {text!r} ends before it starts; write start:stop with start ≤ stop"
            )
        n = int(math.floor((stop - start) / step + 1e-9)) + 1
        if n > _MAX_GRID:
            raise ConfigError(f"grid {text!r} has {n} values; use a coarser step (≤ {_MAX_GRID})")
        values = [start + k * step for k in range(n)]
        values = [round(v, 12) for v in values]
    else:
        values = [_number(p, text) for p in s.split(",")]
    return _finish_grid(values, repr(text))


def _number(part: str, text: str) -> float:
    p = part.strip()
    if not re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?", p):
        raise ConfigError(
            f"cannot read {p!r} in grid {text!r} as a number; write e.g. 1:6, 0.5:3:0.5 or 1,2,4"
        )
    return float(p)


def _finish_grid(values: list[float], shown: str) -> list[float]:
    if not values:
        raise ConfigError(f"grid {shown} is empty; give at least one parameter value")
    if not all(math.isfinite(v) for v in values):
        raise ConfigError(f"grid {shown} contains a non-finite value")
    if len(set(values)) != len(values):
        raise ConfigError(f"grid {shown} repeats a value; list each parameter once")
    return [int(v) if float(v).is_integer() else float(v) for v in values]


# --------------------------------------------------------------------------------------------------
# metrics, noise level, shrinkage
# --------------------------------------------------------------------------------------------------
def psnr(estimate: np.ndarray, truth: np.ndarray, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio 10·log10(range² / MSE) of one image (dB)."""
    mse = float(np.mean((np.asarray(estimate, np.float64) - np.asarray(truth, np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * math.log10(data_range**2 / mse)


def estimate_noise_var(noisy: np.ndarray) -> float:
    """Noise variance σ² from a single image, by the wavelet median-absolute-deviation estimator
    σ = median(|HH₁|)/0.6745 of Donoho & Johnstone (Biometrika 1994), via
    ``skimage.restoration.estimate_sigma`` (averaged over channels)."""
    from skimage.restoration import estimate_sigma

    noisy = np.asarray(noisy, np.float64)
    sigma = estimate_sigma(noisy, channel_axis=-1 if noisy.ndim == 3 else None, average_sigmas=True)
    return float(sigma) ** 2


def shrink(j_output: np.ndarray, noisy: np.ndarray, loss: float, noise_var: float) -> np.ndarray:
    r"""Optimal linear combination of a J-invariant output ``f_J(y)`` with the noisy image ``y``.

    Derived here from Prop. 1 of Batson & Royer (ICML 2019), who use this shrinkage in their
    calibration experiment (NL-means on camera(): 30.4 → 30.8 dB). With ``e = E‖f_J(y) − x‖²/n``,
    ``y = x + ε``, ``Var ε = σ²``, and J-invariance making ``ε_j`` independent of
    ``f_J(y)_j − x_j``:

        E‖(1 − λ) y + λ f_J(y) − x‖²/n = (1 − λ)² σ² + λ² e,

    minimised by ``λ* = σ² / (σ² + e) = σ² / L``, since the self-supervised loss is
    ``L = e + σ²`` (Prop. 1). So the output is ``y + (σ²/L)·(f_J(y) − y)``: the J-invariant
    prediction moved back toward the noisy image by ``1 − σ²/L``, with expected error
    ``σ²·e/(σ² + e) ≤ min(e, σ²)``. (Check: ``e`` at 30.43 dB and ``σ² = 0.01`` give 30.78 dB.)
    ``λ`` is clipped to ``[0, 1]`` (an overestimated σ² > L would otherwise extrapolate).
    """
    if loss <= 0 or not math.isfinite(loss):
        raise ConfigError(f"shrinkage needs a positive self-supervised loss, got {loss}")
    if noise_var < 0 or not math.isfinite(noise_var):
        raise ConfigError(f"shrinkage needs a noise variance ≥ 0, got {noise_var}")
    lam = min(1.0, max(0.0, noise_var / loss))
    noisy = np.asarray(noisy, np.float64)
    return noisy + lam * (np.asarray(j_output, np.float64) - noisy)


# --------------------------------------------------------------------------------------------------
# result
# --------------------------------------------------------------------------------------------------
@dataclass
class Result:
    """Outcome of :func:`calibrate`.

    Attributes
    ----------
    params : list of the parameter values tried (grid order).
    self_supervised_loss : mean((f_J(y; θ) − y)²) for each value.
    best : the value minimising the self-supervised loss.
    denoised : the plain denoiser ``f(y; best)`` (not J-invariant; what Noise2Self returns).
    denoised_j : the J-invariant output ``f_J(y; best)`` whose error the loss measures.
    true_mse, psnr : ground-truth MSE / PSNR of ``f_J(y; θ)`` (None without ground truth).
    true_mse_plain, psnr_plain : the same for the plain denoiser ``f(y; θ)``.
    best_true, best_true_plain : the grid values with the lowest ground-truth MSE.
    """

    denoiser: str
    param_name: str
    params: list[float]
    self_supervised_loss: np.ndarray
    best: float
    denoised: np.ndarray
    denoised_j: np.ndarray
    noisy: np.ndarray = field(repr=False)
    masked: bool = True
    width: int = 4
    mode: str = "interpolate"
    noise_var: float | None = None
    data_range: float = 1.0
    seconds: float = 0.0
    true_mse: np.ndarray | None = None
    true_mse_plain: np.ndarray | None = None
    ground_truth: np.ndarray | None = field(default=None, repr=False)

    # -- derived ---------------------------------------------------------------------------
    @property
    def best_index(self) -> int:
        return int(np.argmin(self.self_supervised_loss))

    @property
    def best_loss(self) -> float:
        return float(self.self_supervised_loss[self.best_index])

    @property
    def psnr(self) -> np.ndarray | None:
        return None if self.true_mse is None else _psnr_of_mse(self.true_mse, self.data_range)

    @property
    def psnr_plain(self) -> np.ndarray | None:
        if self.true_mse_plain is None:
            return None
        return _psnr_of_mse(self.true_mse_plain, self.data_range)

    @property
    def best_true(self) -> float | None:
        return None if self.true_mse is None else self.params[int(np.argmin(self.true_mse))]

    @property
    def best_true_plain(self) -> float | None:
        if self.true_mse_plain is None:
            return None
        return self.params[int(np.argmin(self.true_mse_plain))]

    @property
    def estimated_noise_var(self) -> float:
        """σ² as given to :func:`calibrate`, else estimated from the noisy image."""
        if self.noise_var is None:
            self.noise_var = estimate_noise_var(self.noisy)
        return float(self.noise_var)

    def shrink(self, noise_var: float | None = None) -> np.ndarray:
        """Optimal shrinkage of :attr:`denoised_j` toward the noisy image (see :func:`shrink`);
        σ² is ``noise_var`` if given, else :attr:`estimated_noise_var`."""
        var = self.estimated_noise_var if noise_var is None else float(noise_var)
        return shrink(self.denoised_j, self.noisy, self.best_loss, var).astype(
            self.denoised_j.dtype
        )

    @property
    def shrunk(self) -> np.ndarray:
        return self.shrink()

    def summary(self) -> str:
        s = (
            f"{self.denoiser}: {self.param_name} = {self.best} "
            f"(self-supervised loss {self.best_loss:.6g})"
        )
        if self.true_mse is not None:
            i = self.params.index(self.best)
            s += (
                f"; PSNR plain {self.psnr_plain[i]:.2f} dB, J-invariant {self.psnr[i]:.2f} dB; "
                f"ground-truth best {self.param_name} = {self.best_true_plain} (plain), "
                f"{self.best_true} (J-invariant)"
            )
        return s

    # -- outputs ---------------------------------------------------------------------------
    def to_csv(self, path: str | Path) -> Path:
        """Write the calibration curve: one row per parameter value."""
        path = Path(path)
        header = [self.param_name, "self_supervised_loss"]
        cols: list[Sequence[float]] = [self.params, self.self_supervised_loss]
        if self.true_mse is not None:
            header += ["true_mse_j", "psnr_j", "true_mse", "psnr"]
            cols += [self.true_mse, self.psnr, self.true_mse_plain, self.psnr_plain]
        header.append("chosen")
        cols.append([int(p == self.best) for p in self.params])
        with path.open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(header)
            for row in zip(*cols, strict=True):
                w.writerow([_fmt(v) for v in row])
        return path

    def plot(self, path: str | Path) -> Path:
        """Draw the calibration curve (self-supervised loss and, when known, the ground-truth MSE
        of the J-invariant and plain outputs) against the parameter; PNG via the Agg canvas."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        path = Path(path)
        fig = Figure(figsize=(5.5, 4))
        FigureCanvasAgg(fig)
        ax = fig.add_subplot(1, 1, 1)
        x = np.asarray(self.params, float)
        ax.plot(x, self.self_supervised_loss, "o-", color="C0", label="self-supervised loss")
        ax.axvline(self.best, color="C0", ls=":", lw=1)
        if self.true_mse is not None:
            ax.plot(x, self.true_mse, "s--", color="C1", label="true MSE (J-invariant)")
            if self.masked:
                ax.plot(x, self.true_mse_plain, "^--", color="C2", label="true MSE (plain)")
        ax.set_xlabel(f"{self.param_name} ({self.denoiser})")
        ax.set_ylabel("mean squared error")
        ax.set_title(f"calibration: chosen {self.param_name} = {self.best}")
        ax.legend(frameon=False)
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        return path


def _psnr_of_mse(mse: np.ndarray, data_range: float) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(data_range**2 / np.asarray(mse, np.float64))


def _fmt(v: float) -> str:
    return str(v) if isinstance(v, int) else f"{float(v):.8g}"


# --------------------------------------------------------------------------------------------------
# calibrate
# --------------------------------------------------------------------------------------------------
def _as_image(a: np.ndarray | torch.Tensor, what: str) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        t = a.detach().cpu()
        if t.dim() == 4:
            if t.shape[0] != 1:
                raise DataError(
                    f"{what} is a batch of {t.shape[0]} images; calibrate one image at a time"
                )
            t = t[0]
        if t.dim() != 3:
            raise DataError(
                f"{what} tensor must be (C, H, W) or (1, C, H, W), got {shape_str(t.shape)}"
            )
        a = t.numpy().transpose(1, 2, 0)
        if a.shape[-1] == 1:
            a = a[:, :, 0]
    a = np.asarray(a)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[:, :, 0]
    if a.ndim not in (2, 3):
        raise DataError(
            f"{what} must be an image (H, W) or (H, W, C), got shape {shape_str(a.shape)}"
        )
    if min(a.shape[:2]) < 4:
        raise DataError(f"{what} is {shape_str(a.shape[:2])} pixels; need at least 4×4")
    a = a.astype(np.float64)
    if not np.isfinite(a).all():
        raise DataError(f"{what} contains NaN or infinite values; clean or mask them first")
    return a


class _Denoiser(NamedTuple):
    """A resolved denoiser: function, display name, parameter name, J-invariance, default grid."""

    fn: Callable[[np.ndarray, float], np.ndarray]
    name: str
    pname: str
    native: bool
    default_grid: list[float]


class _Sweep(NamedTuple):
    """What a grid sweep found: losses, chosen value, outputs there, ground-truth MSEs."""

    losses: np.ndarray
    best: float
    denoised: np.ndarray
    denoised_j: np.ndarray
    mse_j: list[float]
    mse_plain: list[float]


def _resolve_denoiser(denoiser: str | Callable[[np.ndarray, float], np.ndarray]) -> _Denoiser:
    """Turn a denoiser name or callable into its function, names, J-invariance and default grid."""
    if isinstance(denoiser, str):
        spec = get_denoiser(denoiser)
        return _Denoiser(
            spec.fn, spec.name, spec.param_name, spec.j_invariant, list(spec.default_grid)
        )
    if callable(denoiser):
        name = getattr(denoiser, "__name__", type(denoiser).__name__)
        native = bool(getattr(denoiser, "is_j_invariant", False))
        return _Denoiser(denoiser, name, "param", native, [])
    raise ConfigError(
        f"denoiser must be a name or a callable f(image, param), got {type(denoiser).__name__}"
    )


def _resolve_grid(grid: str | Sequence[float] | None, default_grid: list[float]) -> list[float]:
    """Parse ``grid``, falling back to the denoiser's default grid when it is None."""
    if grid is None:
        if not default_grid:
            raise ConfigError(
                "pass a grid of parameter values for a custom denoiser, e.g. [1, 2, 3]"
            )
        grid = default_grid
    return parse_grid(grid)


def _prepare_inputs(
    noisy: np.ndarray | torch.Tensor,
    ground_truth: np.ndarray | torch.Tensor | None,
    native: bool,
    masking: bool | None,
    data_range: float,
) -> tuple[np.ndarray, np.ndarray | None, bool]:
    """Validate the images and ``data_range``; return the images and whether to grid-mask."""
    y = _as_image(noisy, "noisy image")
    x = None
    if ground_truth is not None:
        x = _as_image(ground_truth, "ground truth")
        if x.shape != y.shape:
            raise DataError(
                f"ground truth has shape {shape_str(x.shape)} but the noisy image is "
                f"{shape_str(y.shape)}; pass the clean version of the same image"
            )
    use_mask = (not native) if masking is None else bool(masking)
    if data_range <= 0:
        raise ConfigError(f"data_range must be positive, got {data_range}")
    return y, x, use_mask


def _evaluate(
    f: Callable[[np.ndarray], np.ndarray],
    y: np.ndarray,
    use_mask: bool,
    width: int,
    mode: str,
    d: _Denoiser,
    p: float,
) -> tuple[np.ndarray, float]:
    """Apply ``f`` (grid-masked if ``use_mask``) to ``y``; return the output and its loss."""
    out_j = np.asarray(j_invariant(f, width, mode)(y) if use_mask else f(y), np.float64)
    if out_j.shape != y.shape:
        raise DataError(
            f"denoiser returned shape {shape_str(out_j.shape)} for an image of "
            f"{shape_str(y.shape)}; it must preserve the image shape"
        )
    loss = float(np.mean((out_j - y) ** 2))
    if not math.isfinite(loss):
        raise DataError(f"{d.name} gave non-finite output at {d.pname} = {p}; check the grid")
    return out_j, loss


def _sweep(
    d: _Denoiser,
    params: list[float],
    y: np.ndarray,
    x: np.ndarray | None,
    use_mask: bool,
    width: int,
    mode: str,
) -> _Sweep:
    """Evaluate every grid value, pick the loss minimiser and denoise with it."""
    fn = d.fn
    losses, mse_j, mse_plain = [], [], []
    best_j, best_loss = None, math.inf
    for p in params:

        def f(img: np.ndarray, p: float = p) -> np.ndarray:
            return fn(img, p)

        out_j, loss = _evaluate(f, y, use_mask, width, mode, d, p)
        losses.append(loss)
        if loss < best_loss:
            best_j, best_loss = out_j, loss
        if x is not None:
            mse_j.append(float(np.mean((out_j - x) ** 2)))
            plain = np.asarray(f(y), np.float64) if use_mask else out_j
            mse_plain.append(float(np.mean((plain - x) ** 2)))
    losses_a = np.asarray(losses)
    best = params[int(np.argmin(losses_a))]
    denoised = np.asarray(fn(y, best), np.float64) if use_mask else best_j
    assert best_j is not None
    return _Sweep(losses_a, best, denoised, best_j, mse_j, mse_plain)


def calibrate(
    denoiser: str | Callable[[np.ndarray, float], np.ndarray],
    noisy: np.ndarray | torch.Tensor,
    grid: str | Sequence[float] | None = None,
    ground_truth: np.ndarray | torch.Tensor | None = None,
    width: int = 4,
    mode: str = "interpolate",
    masking: bool | None = None,
    noise_var: float | None = None,
    data_range: float = 1.0,
) -> Result:
    r"""Choose a denoiser's parameter from the noisy image alone (Batson & Royer, ICML 2019).

    For each ``θ`` in ``grid`` computes ``L(θ) = mean((f_J(y; θ) − y)²)`` and returns the minimiser
    as :attr:`Result.best`; ``E L(θ) = MSE(f_J(·; θ), x) + σ²`` (Prop. 1), so no clean image is
    needed.

    Parameters
    ----------
    denoiser : a name — ``"median"`` (donut median, J-invariant itself), ``"median-full"`` (ordinary
        median), ``"gaussian"``, ``"wavelet"``, ``"tv"``, ``"nlmeans"`` — or any callable
        ``f(image, param) -> image`` on ``(H, W)`` / ``(H, W, C)`` float arrays.
    noisy : the noisy image ``(H, W)`` / ``(H, W, C)`` (NumPy) or ``(C, H, W)`` / ``(1, C, H, W)``.
    grid : parameter values (list, or a string for :func:`parse_grid`); default: the named
        denoiser's default grid.
    ground_truth : optional clean image, only to report the true MSE / PSNR beside each value.
    width, mode : grid masking (``width²`` passes per value; see :class:`GridMasker`).
    masking : wrap ``f`` with grid masking. ``None`` (default): yes, unless ``f`` is J-invariant by
        construction (the donut median, or a callable with ``is_j_invariant = True``). ``False``
        uses ``‖f(y) − y‖²`` as is — only meaningful for J-invariant ``f`` (shows the trap).
    noise_var : σ², used only by :meth:`Result.shrink` (estimated from ``noisy`` when omitted).
    data_range : peak value for PSNR (1 for images in [0, 1]).
    """
    d = _resolve_denoiser(denoiser)
    params = _resolve_grid(grid, d.default_grid)
    y, x, use_mask = _prepare_inputs(noisy, ground_truth, d.native, masking, data_range)

    t0 = time.perf_counter()
    s = _sweep(d, params, y, x, use_mask, width, mode)
    return Result(
        denoiser=d.name,
        param_name=d.pname,
        params=params,
        self_supervised_loss=s.losses,
        best=s.best,
        denoised=s.denoised,
        denoised_j=s.denoised_j,
        noisy=y,
        masked=use_mask,
        width=width,
        mode=mode,
        noise_var=noise_var,
        data_range=float(data_range),
        seconds=time.perf_counter() - t0,
        true_mse=None if x is None else np.asarray(s.mse_j),
        true_mse_plain=None if x is None else np.asarray(s.mse_plain),
        ground_truth=x,
    )

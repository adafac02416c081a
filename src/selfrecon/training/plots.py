"""Training plots (matplotlib, Agg backend: files only, never a window).

* :func:`plot_loss` — every loss term, validation terms and PSNR against the epoch, from
  ``metrics.csv``;
* :func:`plot_samples` — one row per sample: the measurements ``y`` shown as suits the operator
  (image-shaped ``y`` as an image, complex k-space as log-magnitude, sinograms as an image with
  free aspect, vectors as a 1-D plot), ``A† y``, ``f(y)`` and the ground truth when known;
* :func:`plot_run` — redraw both from a run folder (``metrics.csv`` + the samples stored in
  ``checkpoints/last.pt``); used by ``selfrecon plot``.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

import torch
from torch import Tensor

__all__ = ["plot_loss", "plot_samples", "plot_run", "read_metrics"]


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def read_metrics(path: str | os.PathLike) -> list[dict]:
    """Rows of ``metrics.csv`` with numeric values as floats (empty cells become ``None``)."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    out = []
    for row in rows:
        conv = {}
        for k, v in row.items():
            if v in ("", None):
                conv[k] = None
            else:
                try:
                    conv[k] = float(v)
                except ValueError:
                    conv[k] = v
        out.append(conv)
    return out


def plot_loss(metrics_csv: str | os.PathLike, out_png: str | os.PathLike) -> Path:
    """Loss terms (train and validation) and, when present, PSNR against the epoch."""
    rows = read_metrics(metrics_csv)
    plt = _plt()
    keys = list(rows[0].keys()) if rows else []
    loss_keys = [
        k for k in keys if k.startswith(("train_", "val_")) and "psnr" not in k and "ssim" not in k
    ]
    psnr_keys = [k for k in keys if "psnr" in k]
    ncols = 2 if psnr_keys else 1
    fig, axes = plt.subplots(1, ncols, figsize=(5.5 * ncols, 3.8), squeeze=False)
    ax = axes[0, 0]
    for k in loss_keys:
        pts = [(r["epoch"], r[k]) for r in rows if isinstance(r.get(k), float)]
        if pts:
            ax.plot(*zip(*pts, strict=True), label=k, ls="-" if k.startswith("train_") else "--")
    vals = [r[k] for r in rows for k in loss_keys if isinstance(r.get(k), float)]
    if vals and min(vals) > 0:
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title("loss terms")
    if loss_keys:
        ax.legend(fontsize=7)
    if psnr_keys:
        ax = axes[0, 1]
        for k in psnr_keys:
            pts = [
                (r["epoch"], r[k])
                for r in rows
                if isinstance(r.get(k), float) and math.isfinite(r[k])
            ]
            if pts:
                ax.plot(*zip(*pts, strict=True), label=k)
        ax.set_xlabel("epoch")
        ax.set_ylabel("PSNR (dB)")
        ax.set_title("validation PSNR")
        ax.legend(fontsize=7)
    return _save(fig, out_png)


def _save(fig, out_png: str | os.PathLike) -> Path:
    """Lay out, write ``out_png`` (creating its folder) and free the figure."""
    plt = _plt()
    fig.tight_layout()
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
    return out_png


def _image(t: Tensor):
    """``(C, H, W)`` → array for imshow: RGB when C == 3, else the first channel."""
    t = t.detach().float().cpu()
    if t.dim() == 3 and t.shape[0] == 3:
        return t.permute(1, 2, 0).clamp(0, 1).numpy(), None
    return (t[0] if t.dim() == 3 else t).numpy(), "gray"


def _show_y(ax, y: Tensor, image_hw: tuple[int, int] | None) -> None:
    y = y.detach().cpu()
    if y.is_complex():
        mag = torch.log1p(y.abs())
        ax.imshow((mag[0] if mag.dim() == 3 else mag).numpy(), cmap="gray")
        ax.set_title("log(1+|y|)", fontsize=8)
    elif y.dim() == 3:
        arr, cmap = _image(y)
        same = image_hw is not None and tuple(y.shape[-2:]) == tuple(image_hw)
        ax.imshow(arr, cmap=cmap, aspect="equal" if same else "auto")
        ax.set_title("y" if same else f"y {y.shape[-2]}×{y.shape[-1]}", fontsize=8)
    else:
        ax.plot(y.reshape(-1).float().numpy(), lw=0.6)
        ax.set_title(f"y ({y.numel()} values)", fontsize=8)
        return
    ax.set_xticks([])
    ax.set_yticks([])


def plot_samples(samples: dict, out_png: str | os.PathLike, title: str = "") -> Path:
    """Panels per sample: ``y``, ``A† y``, ``f(y)`` and ``x`` (if in ``samples``).

    ``samples`` holds batched tensors: ``"y"`` (raw measurements), ``"pinv"``, ``"x_hat"`` and
    optionally ``"x"`` (display images, e.g. magnitudes for complex data), ``"psnr_pinv"``,
    ``"psnr_x_hat"`` (per sample, optional).
    """
    plt = _plt()
    cols = [("pinv", "A†y"), ("x_hat", "f(y)"), ("x", "x (ground truth)")]
    cols = [c for c in cols if samples.get(c[0]) is not None]
    n = samples["y"].shape[0]
    ncols = 1 + len(cols)
    fig, axes = plt.subplots(n, ncols, figsize=(2.3 * ncols, 2.3 * n), squeeze=False)
    hw = tuple(samples["x_hat"].shape[-2:]) if samples.get("x_hat") is not None else None
    for i in range(n):
        _show_y(axes[i, 0], samples["y"][i], hw)
        for j, (key, label) in enumerate(cols, start=1):
            ax = axes[i, j]
            arr, cmap = _image(samples[key][i])
            ax.imshow(arr, cmap=cmap, vmin=0 if cmap else None, vmax=1 if cmap else None)
            p = samples.get(f"psnr_{key}")
            ax.set_title(label + (f" {float(p[i]):.2f} dB" if p is not None else ""), fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=9)
    return _save(fig, out_png)


def plot_run(run_dir: str | os.PathLike) -> list[Path]:
    """Redraw ``plots/loss.png`` and the latest sample panel of a run folder; returns the files."""
    from selfrecon.training.checkpoint import load_checkpoint

    run_dir = Path(run_dir)
    out = []
    csv_path = run_dir / "metrics.csv"
    if not csv_path.is_file():
        raise FileNotFoundError(f"{csv_path} not found; is {run_dir} a selfrecon run folder?")
    out.append(plot_loss(csv_path, run_dir / "plots" / "loss.png"))
    ckpt = run_dir / "checkpoints" / "last.pt"
    if ckpt.is_file():
        state = load_checkpoint(ckpt)
        if state.get("samples"):
            epoch = int(state.get("epoch", 0))
            out.append(
                plot_samples(
                    state["samples"],
                    run_dir / "plots" / f"samples_epoch_{epoch:04d}.png",
                    title=f"epoch {epoch}",
                )
            )
    return out


def plot_epoch(run_dir, samples: dict, epoch: int) -> None:
    """The plots a run refreshes at an epoch: ``plots/samples_epoch_NNNN.png`` and ``loss.png``."""
    plots = Path(run_dir) / "plots"
    plot_samples(samples, plots / f"samples_epoch_{epoch:04d}.png", title=f"epoch {epoch}")
    plot_loss(Path(run_dir) / "metrics.csv", plots / "loss.png")

r"""``evaluate``, ``predict``, ``dry_run``: what the CLI (``selfrecon eval``, ``predict``, ``demo``,
``bench``, ``train``) and Python users call on a model, and the loaders the Trainer uses.

Scores compare ``physics.display`` images (magnitudes for complex data) with the metrics of
:mod:`selfrecon.metrics` (per image, scikit-image definitions).
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset, default_collate

from selfrecon.errors import DataError
from selfrecon.losses.step import Step, loss_terms
from selfrecon.metrics import psnr, ssim

__all__ = [
    "evaluate",
    "predict",
    "dry_run",
    "validate",
    "quality",
    "samples",
    "loader",
    "epoch_loader",
    "batch_physics",
    "classical_init",
    "init_name",
]


def classical_init(model: nn.Module) -> nn.Module | None:
    """The classical reconstruction a model refines (its ``ArtifactRemoval`` init), or ``None``
    when its input is the linear ``A† y`` / ``Aᴴ y`` (or it has no such stage)."""
    from selfrecon.models.artifact import ArtifactRemoval
    from selfrecon.models.jinvariant import JInvariant
    from selfrecon.models.recorrupted import RecorruptedAverage
    from selfrecon.models.solvers import AdjointInit, Pinv

    while isinstance(model, (JInvariant, RecorruptedAverage)):
        model = model.model
    if isinstance(model, ArtifactRemoval) and not isinstance(model.initial, (Pinv, AdjointInit)):
        return model.initial
    return None


def init_name(solver: nn.Module) -> str:
    """A solver's registry name (``"biharmonic"``, ``"tv"``...)."""
    from selfrecon.models.solvers import SOLVERS

    return next(k for k, v in SOLVERS.items() if type(solver) is v)


def batch_physics(batch: dict, physics, device: torch.device | str | None = None):
    """``(y, x or None, physics)`` of a collated batch; per-item ``params`` update the physics."""
    if not isinstance(batch, dict) or "y" not in batch:
        raise DataError(
            "training items must be dicts with a 'y' entry (and optional 'x', 'params'); wrap "
            "images with selfrecon.data.MeasuredDataset(images, physics, seed) or load "
            "measurements with selfrecon.data.MeasurementSet(folder)"
        )
    y = batch["y"] if device is None else batch["y"].to(device)
    x = batch.get("x")
    if x is not None and device is not None:
        x = x.to(device)
    params = batch.get("params") or {}
    if params:
        physics = physics.update(
            **{k: (v if device is None else v.to(device)) for k, v in params.items()}
        )
    return y, x, physics


@torch.no_grad()
def evaluate(
    model: nn.Module,
    physics,
    data: Dataset,
    batch_size: int = 16,
    data_range: float = 1.0,
    device: torch.device | str | None = None,
) -> list[dict]:
    """One dict per item: ``item`` (its name), ``psnr``, ``psnr_pinv`` and, for images of at least
    11×11 pixels, ``ssim`` and ``ssim_pinv``. Items need ground truth ``x``.

    When the model refines a classical reconstruction (:class:`~selfrecon.models.ArtifactRemoval`
    with ``init`` biharmonic, TV, ...), that reconstruction is scored too (``psnr_init``,
    ``ssim_init``; :func:`init_name` names it): the comparison a user makes before trusting the
    network."""
    model.eval()
    init = classical_init(model)
    rows = []
    names = getattr(data, "names", None)
    i = 0
    for batch in DataLoader(data, batch_size=batch_size, shuffle=False):
        y, x, p = batch_physics(batch, physics, device)
        if x is None:
            raise DataError(
                "the evaluation data has no ground truth x; pass a measurement set made by "
                "`selfrecon simulate` (or with x) via --data"
            )
        q = quality(model(y, p), p.A.pinv(y), x, p, data_range)
        q = {k: q[k] for k in ("psnr_pinv", "psnr", "ssim_pinv", "ssim") if k in q}  # CSV order
        if init is not None:
            q.update(quality(init(y, p), None, x, p, data_range, prefix="init"))
        for b in range(y.shape[0]):
            rows.append({"item": _item_name(names, i), **{k: float(v[b]) for k, v in q.items()}})
            i += 1
    return rows


@contextmanager
def evaluating(*modules: nn.Module):
    """Run the block with ``modules`` in eval mode, then give each its own mode back."""
    modes = [m.training for m in modules]
    for m in modules:
        m.eval()
    try:
        yield
    finally:
        for m, mode in zip(modules, modes, strict=True):
            m.train(mode)


def _item_name(names, i: int) -> str:
    """The ``i``-th item's name (``item_0003`` when the dataset has none)."""
    return names[i] if names and i < len(names) else f"item_{i:04d}"


def quality(
    x_hat: Tensor,
    pinv: Tensor | None,
    x: Tensor,
    physics,
    data_range: float = 1.0,
    prefix: str = "",
) -> dict[str, Tensor]:
    """Per-image ``psnr`` (and ``ssim`` for images of at least 11×11) of ``x_hat``, and of
    ``pinv`` (``psnr_pinv``...) when given; with ``prefix`` the keys are ``psnr_<prefix>``..."""
    xd = physics.display(x)
    big = min(xd.shape[-2:]) >= 11 and xd.dim() == 4
    images = {prefix or "": physics.display(x_hat)}
    if pinv is not None:
        images["pinv"] = physics.display(pinv)
    out = {}
    for metric in ("psnr", "ssim") if big else ("psnr",):
        fn = psnr if metric == "psnr" else ssim
        for tag, img in images.items():
            out[f"{metric}_{tag}" if tag else metric] = fn(img, xd, data_range, "none")
    return out


def loader(data: Dataset, batch_size: int, cfg, device: torch.device, sampler=None, seed: int = 0):
    """A ``DataLoader`` in order (or over ``sampler``) with a private seeded generator: creating
    its iterator never consumes the global torch RNG (exact resume)."""
    gen = torch.Generator().manual_seed(cfg.seed * 7919 + seed)
    return DataLoader(
        data,
        batch_size=batch_size,
        sampler=sampler,
        shuffle=False,
        generator=gen,
        num_workers=cfg.num_workers,
        pin_memory=torch.device(device).type == "cuda",
    )


def epoch_loader(data: Dataset, cfg, dist, epoch: int, skip: int, device: torch.device):
    """This rank's batches of ``epoch``: a seeded permutation (``DistributedSampler`` with
    ``set_epoch``), the first ``skip`` batches left out (a resumed, interrupted epoch)."""
    per_rank = cfg.batch_size // dist.world_size
    sampler = DistributedSampler(
        data,
        num_replicas=dist.world_size,
        rank=dist.rank,
        shuffle=True,
        seed=cfg.seed,
        drop_last=False,
    )
    sampler.set_epoch(epoch)
    indices = list(sampler)[skip * per_rank :]
    return loader(data, per_rank, cfg, device, sampler=indices, seed=epoch)


@torch.no_grad()
def samples(model: nn.Module, physics, data: Dataset, cfg, device: torch.device) -> dict:
    """The first ``cfg.n_samples`` items reconstructed: ``y``, ``pinv``, ``x_hat``, ``x`` (or
    ``None``) and per-item ``psnr_x_hat``/``psnr_pinv`` when ``x`` is known (for the plots)."""
    k = min(cfg.n_samples, len(data))
    batch = next(iter(loader(Subset(data, range(k)), k, cfg, device)))
    y, x, p = batch_physics(batch, physics, device)
    with evaluating(model):
        x_hat = model(y, p)
    pinv = p.A.pinv(y)
    out = {"y": y.cpu(), "pinv": p.display(pinv).cpu(), "x_hat": p.display(x_hat).cpu(), "x": None}
    if x is not None:
        out["x"] = p.display(x).cpu()
        q = quality(x_hat, pinv, x, p, float(cfg.data_range))
        out["psnr_x_hat"], out["psnr_pinv"] = q["psnr"].cpu(), q["psnr_pinv"].cpu()
    return out


@torch.no_grad()
def dry_run(
    model: nn.Module, loss: nn.Module, physics, data: Dataset, n: int = 2
) -> dict[str, float]:
    """One loss evaluation on the first ``n`` items (model in eval mode): shape and configuration
    problems surface in a second, before a run starts. Returns the terms as numbers."""
    batch = default_collate([data[i] for i in range(min(n, len(data)))])
    y, x, p = batch_physics(batch, physics)
    with evaluating(model):
        terms = loss_terms(loss, Step(y, p, model, torch.Generator().manual_seed(0), x=x))
    return {k: float(v) for k, v in terms.items()}


@torch.no_grad()
def predict(model: nn.Module, physics, data: Dataset, batch_size: int = 16, device=None):
    """``(name, x_hat)`` for every item of ``data`` in order (``x_hat`` in display layout: the
    magnitude for complex images), the model in eval mode."""
    model.eval()
    names = getattr(data, "names", None)
    i = 0
    for batch in DataLoader(data, batch_size=batch_size, shuffle=False):
        y, _, p = batch_physics(batch, physics, device)
        x_hat = p.display(model(y, p)).cpu()
        for b in range(x_hat.shape[0]):
            yield _item_name(names, i), x_hat[b]
            i += 1


@torch.no_grad()
def validate(model: nn.Module, loss: nn.Module, physics, data: Dataset, cfg, device) -> dict:
    """Mean of each loss term (and ``total``) over ``data``, plus PSNR/SSIM of ``x̂`` and ``A†y``
    when the items have ground truth ``x``: the Trainer's validation.

    A fresh generator seeded with ``cfg.val_seed`` makes the value deterministic across epochs;
    model and loss run in eval mode (full-batch SURE probes, see SURE's ``probe_fraction``).
    """
    gen = torch.Generator(device=device).manual_seed(cfg.val_seed)
    sums: dict[str, float] = {}
    n = 0
    with evaluating(model, loss):
        for batch in loader(data, cfg.val_batch_size or cfg.batch_size, cfg, device):
            y, x, p = batch_physics(batch, physics, device)
            step = Step(y, p, model, gen, x=x)
            terms = loss_terms(loss, step)
            terms["total"] = sum(terms.values())
            if x is not None:
                q = quality(step.x_hat, p.A.pinv(y), x, p, cfg.data_range)
                terms.update({k: v.mean() for k, v in q.items()})
            n += y.shape[0]
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + float(v) * y.shape[0]
    return {k: v / max(n, 1) for k, v in sums.items()}

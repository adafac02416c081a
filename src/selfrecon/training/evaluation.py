r"""``evaluate``: per-image PSNR/SSIM of a reconstruction model and of ``A† y`` on held-out data.

The one evaluation the CLI (``selfrecon eval``, ``demo``, ``bench``) and Python users call. Scores
compare ``physics.display`` images (magnitudes for complex data) with the metrics of
:mod:`selfrecon.metrics` (per image, scikit-image definitions).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from selfrecon.errors import DataError
from selfrecon.metrics import psnr, ssim

__all__ = ["evaluate", "batch_physics", "classical_init", "init_name"]


def classical_init(model: nn.Module) -> nn.Module | None:
    """The classical reconstruction a model refines (its ``ArtifactRemoval`` init), or ``None``
    when its input is the linear ``A† y`` / ``Aᴴ y`` (or it has no such stage)."""
    from selfrecon.models.artifact import ArtifactRemoval
    from selfrecon.models.jinvariant import JInvariant
    from selfrecon.models.solvers import AdjointInit, Pinv

    while isinstance(model, JInvariant):
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
        xd, rd, pd = p.display(x), p.display(model(y, p)), p.display(p.A_dagger(y))
        q = {
            "psnr_pinv": psnr(pd, xd, data_range, "none"),
            "psnr": psnr(rd, xd, data_range, "none"),
        }
        if min(xd.shape[-2:]) >= 11:
            q["ssim_pinv"] = ssim(pd, xd, data_range, "none")
            q["ssim"] = ssim(rd, xd, data_range, "none")
        if init is not None:
            idd = p.display(init(y, p))
            q["psnr_init"] = psnr(idd, xd, data_range, "none")
            if "ssim" in q:
                q["ssim_init"] = ssim(idd, xd, data_range, "none")
        for b in range(y.shape[0]):
            name = names[i] if names and i < len(names) else f"item_{i:04d}"
            rows.append({"item": name, **{k: float(v[b]) for k, v in q.items()}})
            i += 1
    return rows

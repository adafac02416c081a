r"""Which epoch's model is ``best.pt``: chosen without ground truth unless told otherwise.

By default (``best_by="auto"``) the column is, in order: the validation SURE term when the loss
has one (SURE is an unbiased estimate of the measurement-domain MSE, so it ranks models like the
true error without ground truth; Stein 1981, Chen et al. CVPR 2022), otherwise the validation total
loss (the training objective itself); without a validation set, the epoch's mean training loss.
``best_by="psnr"``/``"ssim"`` (needs ground truth in the validation set) or a term name overrides
this.
"""

from __future__ import annotations

import math

from selfrecon.errors import ConfigError

__all__ = ["BestTracker"]


class BestTracker:
    """Remembers the best value of the chosen column; :meth:`update` says whether a row beats it.

    Parameters
    ----------
    best_by : str
        ``"auto"``, ``"psnr"``, ``"ssim"`` or a validation term name.
    sure_terms : sequence of str
        Names of the loss's SURE terms (declared by the loss, see ``Loss.sure_terms``); the first
        one is the automatic choice when validation ran.
    """

    def __init__(self, best_by: str = "auto", sure_terms: tuple[str, ...] = ()):
        self.best_by = best_by
        self.sure_terms = tuple(sure_terms)
        self.key: str | None = None
        self.value: float | None = None
        self.epoch: int | None = None

    def column(self, row: dict) -> tuple[str, bool]:
        """``(column, higher_is_better)`` for this epoch's row."""
        by = self.best_by
        validated = any(k.startswith("val_") for k in row)
        if by == "auto":
            if not validated:
                return "train_total", False
            sure = [f"val_{k}" for k in self.sure_terms if f"val_{k}" in row]
            return (sure[0] if sure else "val_total"), False
        if by in ("psnr", "ssim"):
            return f"val_{by}", True
        return f"val_{by}", False

    def update(self, row: dict, epoch: int) -> bool:
        """Record ``row`` if it is the best so far (a finite value); return whether it was."""
        key, higher = self.column(row)
        if key not in row:
            if self.best_by != "auto" and any(k.startswith("val_") for k in row):
                raise ConfigError(
                    f"best_by={self.best_by!r} but validation produced only "
                    f"{sorted(k[4:] for k in row if k.startswith('val_'))}"
                )
            return False
        value = float(row[key])
        better = (
            self.value is None
            or self.key != key
            or (value > self.value if higher else value < self.value)
        )
        if better and math.isfinite(value):
            self.key, self.value, self.epoch = key, value, epoch
            return True
        return False

    def state_dict(self) -> dict:
        return {"key": self.key, "value": self.value, "epoch": self.epoch}

    def load_state_dict(self, state: dict) -> None:
        self.key, self.value, self.epoch = state.get("key"), state.get("value"), state.get("epoch")

"""What a run shows while it trains: a progress bar, one line per epoch, or nothing; and the running
means of the loss terms over an epoch (reduced over DDP ranks at its end)."""

from __future__ import annotations

import sys

import torch

from selfrecon.training.distributed import DistInfo, all_sum

__all__ = ["Progress", "Meter", "progress_mode", "epoch_line"]


def progress_mode(mode: str) -> str:
    """``"auto"``: a bar on a terminal, else lines; ``"bar"``, ``"lines"``, ``"none"`` as is."""
    if mode == "auto":
        return "bar" if sys.stdout.isatty() else "lines"
    return mode


class Progress:
    """The terminal side of a run (rank 0 only): ``start``/``update``/``close`` an epoch's bar and
    ``echo`` lines without breaking it."""

    def __init__(self, mode: str, total_epochs: int, batches_per_epoch: int, is_main: bool):
        self.mode = progress_mode(mode) if is_main else "none"
        self.total_epochs, self.batches_per_epoch = total_epochs, batches_per_epoch
        self._bar = None

    def start(self, epoch: int, done: int) -> None:
        """Open the bar of epoch ``epoch`` (0-based) with ``done`` batches already done."""
        if self.mode != "bar":
            return
        from tqdm.auto import tqdm

        self._bar = tqdm(
            total=self.batches_per_epoch,
            initial=done,
            desc=f"epoch {epoch + 1}/{self.total_epochs}",
            leave=False,
        )

    def update(self, values: dict[str, float]) -> None:
        if self._bar is not None:
            self._bar.update(1)
            self._bar.set_postfix({k: f"{v:.4g}" for k, v in values.items()})

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def echo(self, msg: str) -> None:
        """Print ``msg`` (above the bar when one is open) unless the run is quiet."""
        if self.mode == "none":
            return
        if self._bar is not None:
            self._bar.write(msg)
        else:
            print(msg, flush=True)


class Meter:
    """Sums of the loss terms over an epoch's steps; :meth:`means` averages them over all ranks.

    Its state (``sums``, ``n``) is checkpointed, so an epoch interrupted by Ctrl-C resumes with
    the same running means."""

    def __init__(self):
        self.sums: dict[str, float] = {}
        self.n = 0

    def add(self, values: dict[str, float]) -> None:
        for k, v in values.items():
            self.sums[k] = self.sums.get(k, 0.0) + v
        self.n += 1

    def means(self, dist: DistInfo, device: torch.device) -> dict[str, float]:
        """Mean of every term over the epoch's steps of every rank, ``"total"`` last."""
        names = sorted(self.sums)
        sums = torch.tensor([self.sums[k] for k in names] + [float(self.n)], dtype=torch.float64)
        sums = all_sum(sums, dist, device)
        n = max(float(sums[-1]), 1.0)
        means = {k: float(s) / n for k, s in zip(names, sums[:-1].tolist(), strict=True)}
        order = [k for k in self.sums if k != "total"] + ["total"]
        return {k: means[k] for k in order if k in means}

    def reset(self) -> None:
        self.sums, self.n = {}, 0

    def state_dict(self) -> dict:
        return {"acc": dict(self.sums), "acc_n": self.n}

    def load_state_dict(self, state: dict) -> None:
        self.sums, self.n = dict(state.get("acc", {})), int(state.get("acc_n", 0))


def epoch_line(row: dict, total_epochs: int) -> str:
    """``epoch 3/10 | step 30 | train_mc 0.0123 | val_psnr 27.512 | lr 0.001``."""
    parts = [f"epoch {row['epoch']}/{total_epochs}", f"step {row['step']}"]
    for k, v in row.items():
        if k.startswith(("train_", "val_")):
            parts.append(f"{k} {v:.3f}" if "psnr" in k else f"{k} {v:.4g}")
    parts.append(f"lr {row['lr']:.3g}")
    return " | ".join(parts)

r"""The Trainer: learn ``f(y, physics)`` from measurements; log, checkpoint, plot, resume, scale.

:meth:`Trainer.fit` is the loop: for each epoch, for each batch, one :class:`~selfrecon.losses.Step`
through the loss, a backward pass and an optimizer step, the terms into the meter; at the end of
the epoch validation, the metrics row, checkpoints and plots at their intervals. Each concern is a
small helper with its own rank-0 decision: :class:`~selfrecon.training.run_folder.RunFolder`
(files and the overwrite policy), :class:`~selfrecon.training.best.BestTracker` (which epoch is
``best.pt``), :class:`~selfrecon.training.progress.Progress` and ``Meter``,
:class:`~selfrecon.training.checkpoint.Snapshot` (a clean Ctrl-C), and
:mod:`~selfrecon.training.distributed` for every collective.

**Exact resume.** Shuffling uses a per-epoch seeded permutation (``DistributedSampler`` with
``seed`` and ``set_epoch``), the losses draw from one seeded ``torch.Generator`` whose state is
checkpointed together with the torch/numpy/python RNG states, the optimizer and the scheduler; a
resumed run (also after Ctrl-C mid-epoch) therefore repeats the uninterrupted trajectory exactly
on CPU.

**DDP.** Under ``torchrun`` the batch size is the *global* batch, split evenly across ranks; DDP
averages gradients, so with a loss that is a mean over the batch the step equals the single-process
step on the same global batch. Batch-norm statistics are per-rank unless ``sync_bn=True``.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Dataset

import selfrecon
from selfrecon.errors import DataError, SelfreconError
from selfrecon.losses.base import Loss
from selfrecon.losses.step import Step, loss_terms
from selfrecon.training import distributed as D
from selfrecon.training.best import BestTracker
from selfrecon.training.checkpoint import Checkpointer, Snapshot, TrainState, export_safetensors
from selfrecon.training.checks import identifiability_lines
from selfrecon.training.config import TrainConfig
from selfrecon.training.evaluation import batch_physics, epoch_loader, samples, validate
from selfrecon.training.optim import build_optimizer, build_scheduler
from selfrecon.training.progress import Meter, Progress, epoch_line
from selfrecon.training.run_folder import RunFolder, environment, run_spec

__all__ = ["Trainer", "FitSummary", "NonFiniteLossError"]


class _LearnedState:
    """The loss's learned buffers (UNSURE's noise level) as a checkpoint part."""

    def __init__(self, loss):
        self.loss = loss

    def state_dict(self) -> dict:
        return self.loss.learned_state() if isinstance(self.loss, Loss) else {}

    def load_state_dict(self, state: dict) -> None:
        if state and isinstance(self.loss, Loss):
            self.loss.load_learned_state(state)


class NonFiniteLossError(SelfreconError, FloatingPointError):
    """A loss term became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class FitSummary:
    run_dir: str
    epochs: int
    steps: int
    best_metric: str | None
    best_value: float | None
    best_epoch: int | None
    last: dict

    def as_dict(self) -> dict:
        return asdict(self)


class Trainer:
    r"""Train ``model`` with ``loss`` on measurements from ``physics``.

    Parameters
    ----------
    model : nn.Module
        ``f(y, physics) -> x_hat`` (e.g. ``ArtifactRemoval(UNet(...))``).
    loss : nn.Module
        A selfrecon loss (``MCLoss() + EILoss(Shift())``...): ``loss(step)`` → named scalar terms.
    physics : Physics
        The measurement process (per-batch parameters from ``batch["params"]`` are applied with
        ``physics.update``).
    train, val : Dataset
        Items are dicts ``{"y": Tensor, "x": Tensor (optional), "params": {...} (optional)}``.
    config : TrainConfig or dict
        See :class:`TrainConfig`.
    run_dir : path
        The run folder (see :mod:`selfrecon.training.run_folder`).
    device : str or torch.device, optional
        Overrides ``config.device``.
    resolved_config : dict, optional
        The caller's own resolved configuration (e.g. the CLI's YAML config), written to
        ``config.yaml``; the Trainer's description of its objects then goes to ``spec.yaml``.
    extra_files : dict, optional
        ``{name: write(path)}``: files the run folder also holds (the CLI's ``run.pt``).
    """

    def __init__(
        self,
        model: nn.Module,
        loss: nn.Module,
        physics: nn.Module,
        train: Dataset,
        val: Dataset | None = None,
        config: TrainConfig | dict | None = None,
        run_dir: str | os.PathLike = "runs/run",
        device: str | torch.device | None = None,
        resolved_config: dict | None = None,
        extra_files: dict[str, Callable[[Path], None]] | None = None,
    ):
        self.config = cfg = TrainConfig.from_dict(config)
        self.resolved_config = resolved_config
        device = D.resolve_device(device if device is not None else cfg.device)
        self.dist = D.setup_distributed(device)
        self.device = D.local_device(device, self.dist)
        if len(train) == 0:
            raise DataError("the training set is empty")
        self.train_set, self.val_set = train, val
        self.per_rank_batch, self.batches_per_epoch = D.shard(len(train), cfg.batch_size, self.dist)
        # the model on its device (channels-last, synced batch norm if asked); net: its DDP wrap
        self.model, self.net = D.place_model(model, self.device, self.dist, cfg)
        self.loss, self.physics = loss.to(self.device), physics.to(self.device)
        steps = cfg.steps
        self.total_epochs = math.ceil(steps / self.batches_per_epoch) if steps else cfg.epochs
        self.optimizer = build_optimizer(self.model, cfg)
        self.scheduler = build_scheduler(self.optimizer, cfg, self.total_epochs)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(cfg.seed * 1000 + self.dist.rank)
        self.run = RunFolder(run_dir, self.dist.is_main)
        for name, write in (extra_files or {}).items():
            self.run.register(name, write)
        self.progress = Progress(
            cfg.progress, self.total_epochs, self.batches_per_epoch, self.dist.is_main
        )
        self.state = TrainState()  # epoch, step, batch_in_epoch (checkpointed)
        self.meter = Meter()
        self.best = BestTracker(cfg.best_by, getattr(loss, "risk_terms", ()))
        self.snapshot = Snapshot(self.model, self.generator)
        self.checkpoint = Checkpointer(
            self.model, self.optimizer, self.scheduler, self.generator, self.dist,
            flat=(self.state, self.meter), nested={"best": self.best, "loss": _LearnedState(loss)},
        )  # fmt: skip
        self._samples: dict | None = None
        self._last_row: dict = {}
        self._ckpt_epoch = 0

    # -- the loop ---------------------------------------------------------------------------
    def fit(self) -> FitSummary:
        """Train for ``config.epochs`` (or ``config.steps``); returns a :class:`FitSummary`."""
        self._start()
        try:
            while not self._finished():
                self.model.train()
                lr, t0 = self.optimizer.param_groups[0]["lr"], time.perf_counter()
                self.progress.start(self.state.epoch, self.state.batch_in_epoch)
                for batch in self._epoch_batches():
                    with self.snapshot:  # a Ctrl-C inside the step rolls back to before it
                        values = self._train_step(batch)
                        self.state.advance()
                    self.meter.add(values)
                    self.progress.update(values)
                    if self._steps_done():
                        break
                self.progress.close()
                self._end_epoch(lr, time.perf_counter() - t0)
        except NonFiniteLossError as err:
            self.progress.close()
            self.log(str(err))
            raise
        except KeyboardInterrupt:
            self._interrupted()
            raise
        return self._finish()

    def _train_step(self, batch) -> dict[str, float]:
        y, x, physics = batch_physics(batch, self.physics, self.device)
        self.optimizer.zero_grad(set_to_none=True)
        terms = loss_terms(self.loss, Step(y, physics, self.net, self.generator, x=x))
        total = sum(terms.values())
        # one host transfer per step for all terms and the total (not one per term)
        vals = torch.stack([v.detach().double() for v in (*terms.values(), total)])
        finite = D.all_finite(vals, self.dist)  # every rank must stop together
        host = vals.tolist()
        if not finite:
            self._non_finite(list(terms), host)
        total.backward()
        if self.config.grad_clip is not None:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.optimizer.step()
        values = dict(zip(terms, host[:-1], strict=True))
        values["total"] = sum(values.values())
        if isinstance(self.loss, Loss):  # learned levels (UNSURE's sigma_hat): logged, not summed
            values.update(self.loss.monitors())
        return values

    def _non_finite(self, names: list[str], host: list[float]) -> None:
        bad = [k for k, v in zip(names, host, strict=False) if not math.isfinite(v)]
        raise NonFiniteLossError(
            f"loss term(s) {bad or ['total']} became {host[-1]} at epoch {self.state.epoch + 1}, "
            f"step {self.state.step + 1}; training stopped. The last good checkpoint is "
            f"{self.run.last} (epoch {self._ckpt_epoch}). Lower the learning rate "
            f"(lr={self.config.lr}), set grad_clip, or check the data for NaN/Inf"
        )

    def _end_epoch(self, lr: float, seconds: float) -> None:
        cfg, epoch = self.config, self.state.epoch + 1
        train = self.meter.means(self.dist, self.device)
        if self.scheduler is not None:
            self.scheduler.step()
        self.state.end_epoch()
        self.meter.reset()
        row = {"epoch": epoch, "step": self.state.step, "lr": lr, "time_s": round(seconds, 3)}
        row.update({f"train_{k}": v for k, v in train.items()})
        last = self._finished()
        main = self.dist.is_main
        if main and self.val_set is not None and (epoch % cfg.val_every == 0 or last):
            row.update({f"val_{k}": v for k, v in self.validate().items()})
        plot_now = main and cfg.plot_every > 0 and (epoch % cfg.plot_every == 0 or last)
        if plot_now:
            self._samples = self.samples()
        improved = D.broadcast_flag(main and self.best.update(row, epoch), self.dist, self.device)
        self.run.write_row(row)
        self._last_row = row
        self.log(epoch_line(row, self.total_epochs))
        if epoch % cfg.ckpt_every == 0 or last:
            self.save()
        if improved:
            self.save(self.run.best)
        if plot_now:
            self._plot(epoch)

    # -- start, end, interruption -------------------------------------------------------------
    def _start(self) -> None:
        cfg = self.config
        resuming = cfg.resume and self.run.last.is_file()
        if self.state.step == 0 and not resuming:  # a fresh run claims its folder
            self.run.claim(resume=cfg.resume, overwrite=cfg.overwrite)
        if resuming:
            self.load(self.run.last)
            self.run.truncate(self.state.epoch)
        self.run.prepare(self._spec(), self.resolved_config, self._env())
        if resuming:
            self.log(
                f"resumed from {self.run.last} at epoch {self.state.epoch}, step {self.state.step}"
            )
        elif cfg.resume:
            self.log(f"resume=True but {self.run.last} does not exist; starting a new run")
        if not resuming and cfg.check_identifiability and self.dist.is_main:
            for line, echo in identifiability_lines(self.physics, self.loss):
                self.log(line, echo=echo)
        if self.dist.is_main:
            from selfrecon.models import summary

            self.run.log(summary(self.model))

    def _finish(self) -> FitSummary:
        if self.dist.is_main:
            from selfrecon.training.plots import plot_loss

            plot_loss(self.run.metrics, self.run.path / "plots" / "loss.png")
        b = self.best
        self.log(
            f"done: {self.state.epoch} epochs, {self.state.step} steps; best {b.key} = {b.value} "
            f"at epoch {b.epoch}"
        )
        s = self.state
        return FitSummary(
            str(self.run.path), s.epoch, s.step, b.key, b.value, b.epoch, dict(self._last_row)
        )

    def _interrupted(self) -> None:
        self.progress.close()
        self.snapshot.restore()
        self.save()
        self.log(
            f"interrupted at epoch {self.state.epoch + 1}, step {self.state.step}; saved "
            f"{self.run.last}. Resume with resume=True (CLI: --resume) in the same run folder"
        )

    def _finished(self) -> bool:
        return self.state.epoch >= self.total_epochs or self._steps_done()

    def _steps_done(self) -> bool:
        return self.config.steps is not None and self.state.step >= self.config.steps

    # -- data ---------------------------------------------------------------------------------
    def _epoch_batches(self):
        s = self.state
        return epoch_loader(
            self.train_set, self.config, self.dist, s.epoch, s.batch_in_epoch, self.device
        )

    # -- validation and samples ---------------------------------------------------------------
    def validate(self) -> dict[str, float]:
        """Mean of each loss term on the validation set, plus PSNR/SSIM when ``x`` is known."""
        if self.val_set is None:
            return {}
        return validate(self.model, self.loss, self.physics, self.val_set, self.config, self.device)

    def samples(self) -> dict:
        """The first ``n_samples`` items of the validation (else training) set, reconstructed."""
        data = self.val_set if self.val_set is not None else self.train_set
        return samples(self.model, self.physics, data, self.config, self.device)

    def _plot(self, epoch: int) -> None:
        from selfrecon.training.plots import plot_epoch

        plot_epoch(self.run.path, self._samples, epoch)

    # -- checkpoints --------------------------------------------------------------------------
    def save(self, path: Path | None = None) -> Path | None:
        """Write a checkpoint (rank 0 writes; all ranks take part in gathering RNG states)."""
        extra = {"config": json.dumps(self.config.to_dict()), "samples": self._samples}
        path = self.checkpoint.save(path or self.run.last, extra)
        if path == self.run.last:
            self._ckpt_epoch = self.state.epoch
        return path

    def load(self, path: str | os.PathLike) -> None:
        """Restore model, optimizer, scheduler, loop counters and RNG states from a checkpoint."""
        state = self.checkpoint.load(path, self.log)
        self._samples = state.get("samples")
        self._ckpt_epoch = self.state.epoch

    def export(self, path: str | os.PathLike) -> Path:
        """Write ``model.safetensors`` (weights only) with the run's config in its metadata."""
        spec = self._spec()
        meta = {"config": spec["train"], **{k: spec[k] for k in ("model", "physics", "loss")}}
        meta.update(selfrecon_version=selfrecon.__version__, epoch=self.state.epoch)
        return export_safetensors(self.model, path, meta)

    # -- descriptions -------------------------------------------------------------------------
    def _spec(self) -> dict:
        return run_spec(
            self.config, self.model, self.loss, self.physics, self.train_set, self.val_set,
            self.dist.world_size, self.per_rank_batch,
        )  # fmt: skip

    def _env(self) -> dict:
        return environment(self.config.seed, self.device, self.dist.world_size)

    def log(self, msg: str, echo: bool = True) -> None:
        """Append to ``train.log`` (rank 0) and print unless a progress bar owns the terminal."""
        if self.dist.is_main:
            self.run.log(msg)
            if echo:
                self.progress.echo(msg)

"""``TrainConfig``: every knob of a training run, validated, with plain-value defaults."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from selfrecon.errors import ConfigError

__all__ = ["TrainConfig"]

_CHOICES = {
    "optimizer": ("adam", "adamw"),
    "schedule": ("none", "cosine", "step"),
    "progress": ("auto", "bar", "lines", "none"),
}


@dataclass
class TrainConfig:
    """Training options (all plain values, so the resolved config is written to ``config.yaml``).

    Attributes
    ----------
    epochs : int
        Passes over the training set. ``steps`` (if set) caps the number of optimizer steps instead.
    steps : int or None
        Total optimizer steps; the run stops after this many (epochs = ceil(steps / batches)).
    batch_size : int
        The **global** batch: under DDP with N processes each rank takes ``batch_size / N``
        items per step, so a run's optimisation does not depend on the number of processes.
    lr, weight_decay, optimizer : float, float, {"adam", "adamw"}
    schedule : {"none", "cosine", "step"}
        Learning-rate schedule, stepped once per epoch: cosine annealing to 0 over ``epochs``, or
        multiply by ``gamma`` every ``step_size`` epochs.
    grad_clip : float or None
        Clip the global gradient norm to this value.
    seed : int
        Seeds the shuffling, the losses' random draws (group elements, probes, fresh noise) and
        weight initialisation done after the Trainer is built.
    val_every, ckpt_every, plot_every : int
        Epoch intervals for validation, ``last.pt`` and sample plots (0 = never plot samples).
    val_batch_size : int or None
        Validation batch (defaults to ``batch_size``).
    val_seed : int
        Validation uses a fresh generator with this seed each time, so validation is deterministic.
    best_by : str
        ``"auto"`` (validation SURE term if the loss has one — an unbiased estimate of the MSE —
        else the validation total loss), ``"psnr"`` (needs ground truth), or a loss term name.
    n_samples : int
        Images shown in ``plots/samples_epoch_NNNN.png``.
    num_workers : int
        DataLoader workers.
    resume : bool
        Continue from ``run_dir/checkpoints/last.pt`` if it exists.
    device : str
        ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
    sync_bn : bool
        Under DDP, convert batch-norm layers to ``SyncBatchNorm`` (otherwise statistics are
        per-rank).
    check_identifiability : bool
        Ask :mod:`selfrecon.theory` whether the operator + group can be learnt and warn if not.
    progress : {"auto", "bar", "lines", "none"}
        tqdm bar on a terminal, one line per epoch otherwise (``auto``).
    channels_last : bool
        Use the channels-last memory format for the model's 4-D weights (and hence its
        convolution activations). On by default: about 1.2–1.4× faster UNet training steps on a
        2-core CPU (``benchmarks/train_speed.py --variants``); it changes no result beyond float
        rounding. Models without 4-D weights are unaffected.
    data_range : float
        Intensity range for PSNR/SSIM (1.0 for images in [0, 1]).
    overwrite : bool
        Start afresh in a run folder that already holds a run (otherwise that is an error).
    """

    epochs: int = 10
    steps: int | None = None
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 0.0
    optimizer: str = "adam"
    schedule: str = "none"
    step_size: int = 10
    gamma: float = 0.1
    grad_clip: float | None = None
    seed: int = 0
    val_every: int = 1
    ckpt_every: int = 1
    plot_every: int = 10
    val_batch_size: int | None = None
    val_seed: int = 0
    best_by: str = "auto"
    n_samples: int = 4
    num_workers: int = 0
    resume: bool = False
    device: str = "auto"
    sync_bn: bool = False
    check_identifiability: bool = True
    progress: str = "auto"
    channels_last: bool = True
    data_range: float = 1.0
    overwrite: bool = False

    def __post_init__(self) -> None:
        for name, choices in _CHOICES.items():
            if getattr(self, name) not in choices:
                raise ConfigError(
                    f"train.{name} = {getattr(self, name)!r} is not allowed; choose one of "
                    f"{', '.join(choices)}"
                )
        for name in ("epochs", "batch_size", "val_every", "ckpt_every"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"train.{name} must be at least 1, got {getattr(self, name)}")
        if self.steps is not None and int(self.steps) < 1:
            raise ConfigError(f"train.steps must be at least 1 (or null), got {self.steps}")
        if self.lr <= 0:
            raise ConfigError(f"train.lr must be positive, got {self.lr}")
        if self.grad_clip is not None and self.grad_clip <= 0:
            raise ConfigError(f"train.grad_clip must be positive or null, got {self.grad_clip}")

    @classmethod
    def from_dict(cls, d: dict | TrainConfig | None) -> TrainConfig:
        """Build from a mapping; unknown keys are an error naming the allowed ones."""
        if d is None:
            return cls()
        if isinstance(d, cls):
            return d
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ConfigError(
                f"unknown training option(s) {unknown}; allowed: {', '.join(sorted(names))}"
            )
        return cls(**d)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

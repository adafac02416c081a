"""``TrainConfig``: every knob of a training run, validated, with plain-value defaults."""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Annotated, Literal

from annotated_types import Ge, Gt

from selfrecon.errors import ConfigError

__all__ = ["TrainConfig", "CLI_SET"]

#: options the command line sets from elsewhere (``--resume``, ``output.overwrite``), so the
#: config file's ``train`` section (generated from this class) does not offer them
CLI_SET = ("resume", "overwrite")

Count = Annotated[int, Ge(1)]


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

    epochs: Count = 10
    steps: Count | None = None
    batch_size: Count = 8
    lr: Annotated[float, Gt(0)] = 1e-3
    weight_decay: Annotated[float, Ge(0)] = 0.0
    optimizer: Literal["adam", "adamw"] = "adam"
    schedule: Literal["none", "cosine", "step"] = "none"
    step_size: Count = 10
    gamma: Annotated[float, Gt(0)] = 0.1
    grad_clip: Annotated[float, Gt(0)] | None = None
    seed: int = 0
    val_every: Count = 1
    ckpt_every: Count = 1
    plot_every: Annotated[int, Ge(0)] = 10
    val_batch_size: Count | None = None
    val_seed: int = 0
    best_by: str = "auto"
    n_samples: Count = 4
    num_workers: Annotated[int, Ge(0)] = 0
    resume: bool = False
    device: str = "auto"
    sync_bn: bool = False
    check_identifiability: bool = True
    progress: Literal["auto", "bar", "lines", "none"] = "auto"
    channels_last: bool = True
    data_range: Annotated[float, Gt(0)] = 1.0
    overwrite: bool = False

    def __post_init__(self) -> None:
        # one declaration, two readers: these annotations are checked here for library users,
        # and pydantic reads the same ones for the config file's train section (cli/config.py)
        for name, hint in typing.get_type_hints(type(self), include_extras=True).items():
            problem = _violation(getattr(self, name), hint)
            if problem:
                raise ConfigError(f"train.{name} = {getattr(self, name)!r}: {problem}")

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


def _violation(value: object, hint: object) -> str | None:
    """Why ``value`` breaks the ``Literal`` choices or ``Ge``/``Gt`` bounds of ``hint``
    (``None`` if it does not); ``X | None`` admits ``None``."""
    args = typing.get_args(hint)
    if type(None) in args:  # Optional
        if value is None:
            return None
        hint = next(a for a in args if a is not type(None))
        args = typing.get_args(hint)
    if typing.get_origin(hint) is Literal:
        return None if value in args else f"choose one of {', '.join(map(str, args))}"
    if typing.get_origin(hint) is Annotated:
        for bound in args[1:]:
            if isinstance(bound, Ge) and not value >= bound.ge:
                return f"must be at least {bound.ge}"
            if isinstance(bound, Gt) and not value > bound.gt:
                return f"must be greater than {bound.gt}"
    return None

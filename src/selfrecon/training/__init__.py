"""Training: the :class:`Trainer` loop, its config, checkpoints, plots and DDP helpers."""

from selfrecon.training.checkpoint import (
    CheckpointError,
    export_safetensors,
    load_checkpoint,
    load_safetensors,
    save_checkpoint,
)
from selfrecon.training.config import TrainConfig
from selfrecon.training.evaluation import evaluate
from selfrecon.training.plots import plot_loss, plot_run, plot_samples
from selfrecon.training.trainer import FitSummary, NonFiniteLossError, Trainer

__all__ = [
    "CheckpointError",
    "FitSummary",
    "NonFiniteLossError",
    "TrainConfig",
    "Trainer",
    "evaluate",
    "export_safetensors",
    "load_checkpoint",
    "load_safetensors",
    "plot_loss",
    "plot_run",
    "plot_samples",
    "save_checkpoint",
]

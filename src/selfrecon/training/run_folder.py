r"""The run folder a :class:`~selfrecon.training.Trainer` writes, and its one overwrite policy.

::

    run/
      config.yaml        the resolved configuration (the caller's, else the Trainer's description)
      spec.yaml          the Trainer's description of model, loss, physics (when config.yaml is the
                         caller's)
      env.json           versions, machine, command line, seed
      metrics.csv        one row per epoch (train_*, val_* terms, lr, time)
      train.log          every line the run printed, time-stamped
      checkpoints/       last.pt, best.pt
      plots/             loss.png, samples_epoch_*.png
      ...                files the caller registers (the CLI's run.pt)

Only rank 0 writes; every method is a no-op on the other ranks, so callers need no rank checks.
"""

from __future__ import annotations

import csv
import json
import platform
import shutil
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor, nn

import selfrecon
from selfrecon.errors import ConfigError

__all__ = ["RunFolder", "describe", "spec_of", "is_run_folder", "run_spec", "environment"]


def describe(obj) -> object:
    """A plain-value description (YAML-safe) of a spec: small tensors as lists, others by shape."""
    if isinstance(obj, Tensor):
        if obj.numel() <= 8:
            return obj.detach().cpu().tolist()
        return f"tensor{tuple(obj.shape)} {str(obj.dtype).replace('torch.', '')}"
    if isinstance(obj, dict):
        return {str(k): describe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [describe(v) for v in obj]
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    return repr(obj)


def spec_of(obj) -> object:
    """``describe(obj.spec())`` for objects with a spec (operators, losses), the model spec of a
    registered model, else ``repr(obj)``. Objects without a spec are described, never fatal."""
    from selfrecon.models import model_spec

    if isinstance(obj, nn.Module) and callable(getattr(obj, "spec", None)):
        return describe(obj.spec())
    if isinstance(obj, nn.Module) and callable(getattr(obj, "config", None)):
        return describe(model_spec(obj))
    return repr(obj)


def is_run_folder(path: Path) -> bool:
    """A folder a Trainer wrote into (``env.json`` is its first file), hence replaceable."""
    return (path / "env.json").is_file() or (path / "metrics.csv").is_file()


def _fmt(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return repr(v)
    return str(v)


class RunFolder:
    """The files of one run. ``claim`` applies the overwrite policy; ``prepare`` writes the
    description files; ``log``, ``write_row`` append; ``register`` adds a caller's file.

    Parameters
    ----------
    path : path
        The run folder.
    is_main : bool
        Whether this process writes (rank 0).
    """

    def __init__(self, path, is_main: bool = True):
        self.path = Path(path)
        self.is_main = is_main
        self.created = False
        self._fields: list[str] = []
        self._extra: dict[str, Callable[[Path], None]] = {}

    @property
    def last(self) -> Path:
        return self.path / "checkpoints" / "last.pt"

    @property
    def best(self) -> Path:
        return self.path / "checkpoints" / "best.pt"

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.csv"

    def register(self, name: str, write: Callable[[Path], None]) -> None:
        """Have ``write(path / name)`` called whenever the folder is prepared (e.g. ``run.pt``)."""
        self._extra[name] = write

    def claim(self, resume: bool, overwrite: bool) -> None:
        """Make the folder this run's. A new run may not land on a file, on a non-empty folder
        that is not a run, or on an earlier run unless ``overwrite`` (which then replaces it);
        ``resume`` continues what is there. Nothing that is not a run is ever deleted."""
        p = self.path
        if not self.is_main or resume:
            return
        if p.exists() and not p.is_dir():
            raise ConfigError(f"run folder {p} is a file; choose a folder for the run")
        if p.is_dir() and any(p.iterdir()):
            if not is_run_folder(p):
                raise ConfigError(
                    f"run folder {p} is a non-empty folder that is not a selfrecon run; choose "
                    "another run folder"
                )
            if not overwrite:
                raise ConfigError(
                    f"run folder {p} already holds a run; continue it with `selfrecon train "
                    f"--resume {p}` (Python: resume=True), replace it with --set "
                    "output.overwrite=true (overwrite=True), or choose another run folder"
                )
            shutil.rmtree(p)
        self.created = not p.exists() or not any(p.iterdir())

    def discard_if_empty_run(self) -> None:
        """After a failed start: remove a folder this run created and never checkpointed."""
        if self.is_main and self.created and not self.last.is_file():
            shutil.rmtree(self.path, ignore_errors=True)

    def prepare(self, spec: dict, resolved_config: dict | None, env: dict) -> None:
        """Write ``config.yaml`` / ``spec.yaml``, ``env.json`` and the registered files."""
        if not self.is_main:
            return
        import yaml

        (self.path / "checkpoints").mkdir(parents=True, exist_ok=True)
        (self.path / "plots").mkdir(exist_ok=True)
        with open(
            self.path / ("spec.yaml" if resolved_config is not None else "config.yaml"), "w"
        ) as f:
            yaml.safe_dump(describe(spec), f, sort_keys=False)
        if resolved_config is not None:
            with open(self.path / "config.yaml", "w") as f:
                f.write("# resolved config of this run (rerun: selfrecon train config.yaml)\n")
                yaml.safe_dump(resolved_config, f, sort_keys=False)
        with open(self.path / "env.json", "w") as f:
            json.dump(env, f, indent=2)
        for name, write in self._extra.items():
            write(self.path / name)

    def log(self, msg: str) -> None:
        """Append a time-stamped line to ``train.log``."""
        if self.is_main:
            with open(self.path / "train.log", "a") as f:
                f.write(time.strftime("%Y-%m-%d %H:%M:%S ") + msg + "\n")

    def write_row(self, row: dict) -> None:
        """Append one row to ``metrics.csv`` (rewriting it when the row brings new columns)."""
        if not self.is_main:
            return
        new = [k for k in row if k not in self._fields]
        if not new and self.metrics.exists():
            with open(self.metrics, "a", newline="") as f:
                csv.DictWriter(f, fieldnames=self._fields).writerow(
                    {k: _fmt(row.get(k)) for k in self._fields}
                )
            return
        rows = self._read_rows()
        self._fields = self._fields + new
        self._write_rows([*rows, row])

    def truncate(self, epoch: int) -> None:
        """After a resume, drop rows written after the checkpoint's ``epoch``."""
        if not self.is_main or not self.metrics.exists():
            return
        with open(self.metrics, newline="") as f:
            self._fields = list(csv.DictReader(f).fieldnames or [])
        self._write_rows([r for r in self._read_rows() if int(float(r["epoch"])) <= epoch])

    def _read_rows(self) -> list[dict]:
        if not self.metrics.exists():
            return []
        with open(self.metrics, newline="") as f:
            return list(csv.DictReader(f))

    def _write_rows(self, rows: list[dict]) -> None:
        with open(self.metrics, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=self._fields)
            w.writeheader()
            w.writerows({k: _fmt(r.get(k)) for k in self._fields} for r in rows)


def environment(seed: int, device: torch.device, world_size: int) -> dict:
    """``env.json``: versions, machine, command line, seed, device and threads of this run."""
    import numpy

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "selfrecon": selfrecon.__version__,
        "command": sys.argv,
        "seed": seed,
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "device": str(device),
        "cuda": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "world_size": world_size,
        "threads": torch.get_num_threads(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


def run_spec(
    config, model, loss, physics, train, val, world_size: int, per_rank_batch: int
) -> dict:
    """The Trainer's description of a run (``spec.yaml``): its training settings, the specs of
    model, loss and physics, the data sizes and the process layout."""
    return {
        "train": config.to_dict(),
        "model": spec_of(model),
        "loss": spec_of(loss),
        "physics": spec_of(physics),
        "data": {"train_items": len(train), "val_items": len(val) if val is not None else 0},
        "distributed": {"world_size": world_size, "per_rank_batch": per_rank_batch},
    }

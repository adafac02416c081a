"""Checkpoints that hold tensors and plain values only, written atomically, loaded safely.

A checkpoint is a dict of tensors, numbers, strings, lists and dicts, so it loads with
``torch.load(path, weights_only=True)`` (no pickled code runs). It is written to a temporary file
in the same folder and moved into place with ``os.replace`` (atomic on POSIX and Windows), so a
crash while saving never leaves a half-written ``last.pt``.
"""

from __future__ import annotations

import json
import os
import random
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from selfrecon.errors import SelfreconError

__all__ = [
    "CheckpointError",
    "save_checkpoint",
    "load_checkpoint",
    "rng_state",
    "set_rng_state",
    "export_safetensors",
    "load_safetensors",
    "TrainState",
    "Snapshot",
    "Checkpointer",
]

CHECKPOINT_FORMAT = 1


class CheckpointError(SelfreconError):
    """A checkpoint file cannot be read or does not belong to this run."""


def save_checkpoint(state: dict, path: str | os.PathLike) -> Path:
    """``torch.save`` to a temporary file next to ``path``, then ``os.replace`` it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Load with ``weights_only=True``; a missing/corrupt file raises :class:`CheckpointError`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; train first or fix the path")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # truncated zip, random bytes, pickled code...
        raise CheckpointError(
            f"checkpoint {path} cannot be read ({type(err).__name__}: {str(err).splitlines()[0]}); "
            "it is corrupt or not a selfrecon checkpoint — delete it (or restore a copy) and "
            "resume from another checkpoint or start with resume=False"
        ) from None
    if not isinstance(state, dict) or "model" not in state:
        raise CheckpointError(
            f"checkpoint {path} is not a selfrecon training checkpoint (no 'model' entry)"
        )
    return state


def rng_state(generator: torch.Generator | None = None) -> dict:
    """Every random state a training step can touch, as tensors and plain values."""
    py = random.getstate()
    np_state = np.random.get_state()  # noqa: NPY002 - the legacy global state users may touch
    state = {
        "python": [py[0], list(py[1]), py[2]],
        "numpy": [
            np_state[0],
            torch.from_numpy(np_state[1].astype(np.int64)),
            int(np_state[2]),
            int(np_state[3]),
            float(np_state[4]),
        ],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    if generator is not None:
        state["generator"] = generator.get_state()
    return state


def set_rng_state(state: dict, generator: torch.Generator | None = None) -> None:
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    nps = state["numpy"]
    np_state = (nps[0], nps[1].numpy().astype(np.uint32), nps[2], nps[3], nps[4])
    np.random.set_state(np_state)  # noqa: NPY002
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if generator is not None and "generator" in state:
        generator.set_state(state["generator"])


def export_safetensors(
    model: torch.nn.Module, path: str | os.PathLike, metadata: dict | None = None
) -> Path:
    """Write the model's ``state_dict`` as safetensors with ``metadata`` stored as JSON strings.

    ``path`` is a file (``*.safetensors``) or a folder (then ``folder/model.safetensors``).
    """
    from safetensors.torch import save_file

    path = Path(path)
    if path.suffix != ".safetensors":
        path = path / "model.safetensors"
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    meta = {k: v if isinstance(v, str) else json.dumps(v) for k, v in (metadata or {}).items()}
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    os.replace(tmp, path)
    return path


def load_safetensors(path: str | os.PathLike) -> tuple[dict, dict]:
    """``(state_dict, metadata)`` from :func:`export_safetensors` (JSON values decoded)."""
    from safetensors import safe_open

    path = Path(path)
    if path.is_dir():
        path = path / "model.safetensors"
    try:
        with safe_open(str(path), framework="pt") as f:
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - not a dict
            raw = f.metadata() or {}
    except Exception as err:
        raise CheckpointError(f"exported model {path} cannot be read: {err}") from None
    meta = {}
    for k, v in raw.items():
        try:
            meta[k] = json.loads(v)
        except ValueError:
            meta[k] = v
    return tensors, meta


@dataclass
class TrainState:
    """Where the loop is: epochs completed, optimizer steps done, batches done in this epoch
    (non-zero only after a Ctrl-C mid-epoch)."""

    epoch: int = 0
    step: int = 0
    batch_in_epoch: int = 0

    def advance(self) -> None:
        self.step += 1
        self.batch_in_epoch += 1

    def end_epoch(self) -> None:
        self.epoch += 1
        self.batch_in_epoch = 0

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "step": self.step, "batch_in_epoch": self.batch_in_epoch}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.step = int(state["epoch"]), int(state["step"])
        self.batch_in_epoch = int(state.get("batch_in_epoch", 0))


class Snapshot:
    """``with snapshot:`` around a training step: a Ctrl-C inside it can be rolled back.

    A forward pass updates batch-norm running statistics and draws random numbers before the step
    completes; :meth:`restore` (called after a ``KeyboardInterrupt`` inside the block) puts back
    the RNG states and buffers taken on entry, so ``last.pt`` holds the state after the last
    completed step and a resumed run repeats the step exactly. (Ctrl-C inside
    ``optimizer.step()`` itself — microseconds — is not undone.)
    """

    def __init__(self, model: torch.nn.Module, generator: torch.Generator):
        self.model, self.generator = model, generator
        self._taken: tuple | None = None

    def __enter__(self) -> Snapshot:
        bufs = [b.detach().clone() for b in self.model.buffers()]
        self._taken = (self.generator.get_state(), torch.get_rng_state(), bufs)
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            self._taken = None
        return False  # a snapshot taken when the step failed stays for restore()

    def restore(self) -> None:
        if self._taken is None:
            return
        gen, cpu, bufs = self._taken
        self.generator.set_state(gen)
        torch.set_rng_state(cpu)
        with torch.no_grad():
            for b, saved in zip(self.model.buffers(), bufs, strict=True):
                b.copy_(saved)
        self._taken = None


class Checkpointer:
    """Writes and restores everything a resumed run needs: model, optimizer, scheduler, every
    rank's RNG states and the loop's own parts (objects with ``state_dict``/``load_state_dict``).
    Checkpoint format 1 stores the ``flat`` parts' entries at the top level (loop counters
    ``epoch``, ``step``...; running means ``acc``, ``acc_n``) and each ``nested`` part under its
    name (``best``)."""

    def __init__(self, model, optimizer, scheduler, generator, dist, flat=(), nested=None):
        self.model, self.optimizer, self.scheduler = model, optimizer, scheduler
        self.generator, self.dist = generator, dist
        self.flat, self.nested = tuple(flat), dict(nested or {})

    def save(self, path: Path, extra: dict) -> Path | None:
        """Gather (all ranks), then write on rank 0; returns the path there, ``None`` elsewhere."""
        import selfrecon
        from selfrecon.training.distributed import gather_objects

        rng = gather_objects(rng_state(self.generator), self.dist)  # every rank's, for DDP
        state = {
            "format": CHECKPOINT_FORMAT,
            "selfrecon_version": selfrecon.__version__,
            "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "rng": {"ranks": rng} if self.dist.enabled else rng[0],
            "world_size": self.dist.world_size,
            **extra,
        }
        for part in self.flat:
            state.update(part.state_dict())
        state.update({name: part.state_dict() for name, part in self.nested.items()})
        return save_checkpoint(state, path) if self.dist.is_main else None

    def load(self, path, log) -> dict:
        """Restore everything from ``path``; returns the checkpoint dict (for extra entries)."""
        from selfrecon.errors import ConfigError

        state = load_checkpoint(path, map_location="cpu")
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            if self.scheduler is not None and state.get("scheduler") is not None:
                self.scheduler.load_state_dict(state["scheduler"])
        except (RuntimeError, ValueError, KeyError) as err:
            raise ConfigError(
                f"checkpoint {path} does not fit this model/optimizer "
                f"({str(err).splitlines()[0]}); resume with the same model and config, "
                "or start a new run_dir"
            ) from None
        for part in self.flat:
            part.load_state_dict(state)
        for name, part in self.nested.items():
            part.load_state_dict(state.get(name, {}))
        set_rng_state(self._rank_rng(state["rng"], log), self.generator)
        return state

    def _rank_rng(self, rng: dict, log) -> dict:
        if "ranks" not in rng:
            return rng
        ranks, world = rng["ranks"], self.dist.world_size
        if len(ranks) != world:
            log(
                f"warning: checkpoint written by {len(ranks)} processes, resuming with {world}; "
                "random draws will differ"
            )
        return ranks[min(self.dist.rank, len(ranks) - 1)]

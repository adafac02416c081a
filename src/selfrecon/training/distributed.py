"""Distributed data parallel (DDP) helpers for runs launched with ``torchrun --nproc_per_node=N``.

``torchrun`` sets ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``; the
Trainer reads them, initialises the process group (``gloo`` on CPU, ``nccl`` on CUDA), shards the
data with a seeded ``DistributedSampler`` and averages gradients with DDP. Logging, checkpoints and
plots happen on rank 0 only.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor, nn

__all__ = [
    "DistInfo",
    "setup_distributed",
    "is_main",
    "barrier",
    "resolve_device",
    "local_device",
    "wrap_ddp",
    "place_model",
    "shard",
    "all_finite",
    "all_sum",
    "broadcast_flag",
    "gather_objects",
]


def resolve_device(device) -> torch.device:
    """``"auto"``/``None`` → CUDA when available, else CPU; other names as ``torch.device``."""
    from selfrecon.errors import ConfigError

    if isinstance(device, torch.device):
        return device
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except RuntimeError as err:
        raise ConfigError(f"device {device!r} is not understood ({err})") from None


@dataclass
class DistInfo:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    initialized_here: bool = False

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup_distributed(device: torch.device) -> DistInfo:
    """Join the process group described by torchrun's environment variables (no-op if absent)."""
    if dist.is_available() and dist.is_initialized():
        return DistInfo(
            dist.get_rank(), int(os.environ.get("LOCAL_RANK", 0)), dist.get_world_size()
        )
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    if not dist.is_available():  # pragma: no cover - torch builds without distributed
        raise RuntimeError("WORLD_SIZE > 1 but this PyTorch build has no torch.distributed")
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend=backend)
    return DistInfo(dist.get_rank(), int(os.environ.get("LOCAL_RANK", 0)), world, True)


def local_device(device: torch.device, info: DistInfo) -> torch.device:
    """Under DDP on CUDA each process owns the GPU of its local rank (and makes it current)."""
    if info.enabled and device.type == "cuda":
        device = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(device)
    return device


def wrap_ddp(model: nn.Module, info: DistInfo, device: torch.device) -> nn.Module:
    """``DistributedDataParallel(model)`` under DDP (gradients averaged over ranks), else
    ``model`` itself."""
    if not info.enabled:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def all_finite(values: Tensor, info: DistInfo) -> bool:
    """Whether every entry of ``values`` is finite on **every** rank (all ranks stop together)."""
    finite = torch.isfinite(values).all().float()
    if info.enabled:
        dist.all_reduce(finite, op=dist.ReduceOp.MIN)
    return bool(finite)


def all_sum(values: Tensor, info: DistInfo, device: torch.device) -> Tensor:
    """The sum of ``values`` over ranks (``values`` itself in a single process), on the CPU."""
    if not info.enabled:
        return values
    values = values.to(device)
    dist.all_reduce(values)
    return values.cpu()


def broadcast_flag(flag: bool, info: DistInfo, device: torch.device) -> bool:
    """Rank 0's ``flag`` on every rank."""
    if not info.enabled:
        return flag
    t = torch.tensor([float(flag)], device=device)
    dist.broadcast(t, 0)
    return bool(t.item())


def gather_objects(obj: object, info: DistInfo) -> list:
    """``[obj of rank 0, obj of rank 1, ...]`` on every rank (``[obj]`` in a single process)."""
    if not info.enabled:
        return [obj]
    out = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def is_main() -> bool:
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def shard(n_items: int, batch_size: int, info: DistInfo) -> tuple[int, int]:
    """``(per-rank batch, batches per epoch)`` when ``batch_size`` is the global batch."""
    from selfrecon.errors import ConfigError

    if batch_size % info.world_size:
        raise ConfigError(
            f"batch_size {batch_size} is the global batch and must be divisible by the number of "
            f"processes ({info.world_size})"
        )
    per_rank = batch_size // info.world_size
    return per_rank, math.ceil(math.ceil(n_items / info.world_size) / per_rank)


def place_model(model: nn.Module, device: torch.device, info: DistInfo, cfg) -> tuple:
    """``(model, net)``: the model on ``device`` (channels-last memory and synchronised batch norm
    when ``cfg`` asks), and what the training step calls — its DDP wrap under DDP, else itself."""
    model = model.to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if cfg.sync_bn and info.enabled:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return model, wrap_ddp(model, info, device)

"""Model registry, specs (``{"name": ..., **config}``) and :func:`summary`."""

from __future__ import annotations

from torch import nn

from selfrecon.errors import ConfigError

__all__ = ["MODELS", "register_model", "build_model", "model_spec", "summary", "count_parameters"]

MODELS: dict[str, type[nn.Module]] = {}


def register_model(name: str, cls: type[nn.Module]) -> None:
    """Make ``cls`` buildable from ``{"name": name, **constructor arguments}``."""
    MODELS[name] = cls


def model_spec(model: nn.Module) -> dict:
    """``{"name": registry name, **config()}`` (registered models) or ``{"name": class name}``."""
    for name, cls in MODELS.items():
        if type(model) is cls and hasattr(model, "config"):
            return {"name": name, **model.config()}
    return {"name": type(model).__name__, "registered": False}


def build_model(spec: dict) -> nn.Module:
    """Inverse of :func:`model_spec`, e.g. ``{"name": "unet", "in_channels": 1, "width": 16}``."""
    spec = dict(spec)
    name = spec.pop("name", None)
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    cls = MODELS[name]
    try:
        if hasattr(cls, "from_config"):
            return cls.from_config(spec)
        return cls(**spec)
    except TypeError as err:
        raise ConfigError(f"model {name!r}: {err}") from None


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def summary(model: nn.Module) -> str:
    """Parameter counts per top-level child module and in total, one line each."""
    rows = [
        (name, type(child).__name__, count_parameters(child))
        for name, child in model.named_children()
    ]
    own = count_parameters(model) - sum(r[2] for r in rows)
    if own:
        rows.append(("(own)", "", own))
    total = count_parameters(model)
    trainable = count_parameters(model, trainable_only=True)
    w = max([len(r[0]) for r in rows] + [5])
    t = max([len(r[1]) for r in rows] + [4])
    lines = [f"{type(model).__name__}"]
    lines += [f"  {n:<{w}}  {c:<{t}}  {p:>12,d}" for n, c, p in rows]
    lines.append(f"  {'total':<{w}}  {'':<{t}}  {total:>12,d}")
    if trainable != total:
        lines.append(f"  {'trainable':<{w}}  {'':<{t}}  {trainable:>12,d}")
    return "\n".join(lines)

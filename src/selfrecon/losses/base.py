r"""The loss interface: named scalar terms that add with ``+`` and scale with ``*``.

Calling convention (the Trainer relies on it)
---------------------------------------------
``loss(y, x_hat, physics, model, generator=None, **kwargs) -> dict[str, Tensor]``

* ``y``: a batch of measurements; ``physics``: the :class:`~selfrecon.physics.Physics` that made
  them (noise parameters are read from ``physics.noise``, never passed separately);
  ``model(y, physics) -> x_hat``; ``generator``: the source of every random draw (group elements,
  probes, fresh noise, masks); extra inputs as keywords (``x=`` for :class:`SupervisedLoss`).
* The result maps term names (``"mc"``, ``"ei"``, ``"sure"``, …) to **scalar** tensors, each a
  mean over the batch; the Trainer sums the scalar terms and logs each one.
* ``x_hat`` may be ``None``. A loss given ``x_hat=None`` runs the model itself and returns the
  reconstruction ``model(y, physics)`` under the key ``"x_hat"`` (the one non-scalar entry: the
  Trainer pops it before summing). Losses whose class attribute ``computes_x_hat`` is True
  (:class:`SURE` family, :class:`REILoss`, :class:`Noise2SelfLoss`) are cheaper that way: SURE
  evaluates ``f(y)`` and ``f(y + τ b)`` in one batched pass. So the Trainer does::

      if loss.computes_x_hat:
          terms = loss(y, None, physics, model, generator, **extras)
          x_hat = terms.pop("x_hat", None)   # None for Noise2Self (it never runs f on plain y)
      else:
          x_hat = model(y, physics)
          terms = loss(y, x_hat, physics, model, generator, **extras)
      total = sum(terms.values())

  Passing a computed ``x_hat`` to any loss is always correct too.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["Loss", "SumLoss", "ScaledLoss", "XHAT"]

XHAT = "x_hat"


class Loss(nn.Module):
    """Base class. Subclasses implement ``forward`` and set ``computes_x_hat`` if it pays off."""

    computes_x_hat: bool = False

    def forward(
        self,
        y: Tensor,
        x_hat: Tensor | None,
        physics,
        model: nn.Module,
        generator: torch.Generator | None = None,
        **kwargs,
    ) -> dict[str, Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError

    def __add__(self, other: Loss) -> SumLoss:
        if not isinstance(other, Loss):
            return NotImplemented
        return SumLoss(self, other)

    def __mul__(self, scale: float) -> ScaledLoss:
        if isinstance(scale, Loss) or not isinstance(scale, (int, float, Tensor)):
            return NotImplemented
        return ScaledLoss(self, scale)

    __rmul__ = __mul__


def _x_hat(y: Tensor, x_hat: Tensor | None, physics, model) -> tuple[Tensor, dict]:
    """``x_hat`` if given, else ``model(y, physics)`` and the ``{"x_hat": ...}`` entry to return."""
    if x_hat is not None:
        return x_hat, {}
    x_hat = model(y, physics)
    return x_hat, {XHAT: x_hat}


class SumLoss(Loss):
    """``L1 + L2 + …``: all terms of all parts (a repeated name gets a suffix ``_2``, ``_3``, …).

    With ``x_hat=None`` the first part that computes ``x_hat`` (or, if none does, one plain model
    pass) provides it, and it is shared by every other part; it is returned under ``"x_hat"``.
    """

    def __init__(self, *losses: Loss):
        super().__init__()
        flat: list[Loss] = []
        for loss in losses:
            flat.extend(loss.parts if isinstance(loss, SumLoss) else [loss])
        self.parts = nn.ModuleList(flat)

    @property
    def computes_x_hat(self) -> bool:  # type: ignore[override]
        return any(p.computes_x_hat for p in self.parts)

    def forward(self, y, x_hat, physics, model, generator=None, **kwargs):
        order = list(self.parts)
        if x_hat is None:
            first = [p for p in order if p.computes_x_hat]
            order = first[:1] + [p for p in order if p is not (first[0] if first else None)]
        out: dict[str, Tensor] = {}
        computed = None
        for part in order:
            if x_hat is None and not part.computes_x_hat:
                x_hat = computed = model(y, physics)
            terms = dict(part(y, x_hat, physics, model, generator, **kwargs))
            got = terms.pop(XHAT, None)
            if x_hat is None and got is not None:
                x_hat = computed = got
            for name, value in terms.items():
                key, k = name, 2
                while key in out:
                    key, k = f"{name}_{k}", k + 1
                out[key] = value
        if computed is not None:
            out[XHAT] = computed
        return out

    def __repr__(self) -> str:
        return " + ".join(repr(p) for p in self.parts)


class ScaledLoss(Loss):
    """``s · L``: every term of ``L`` multiplied by ``s`` (``x_hat`` passes through unscaled)."""

    def __init__(self, loss: Loss, scale: float | Tensor):
        super().__init__()
        if isinstance(loss, ScaledLoss):
            scale, loss = scale * loss.scale, loss.loss
        self.loss = loss
        self.scale = scale

    @property
    def computes_x_hat(self) -> bool:  # type: ignore[override]
        return self.loss.computes_x_hat

    def forward(self, y, x_hat, physics, model, generator=None, **kwargs):
        terms = self.loss(y, x_hat, physics, model, generator, **kwargs)
        return {k: (v if k == XHAT else self.scale * v) for k, v in terms.items()}

    def __repr__(self) -> str:
        return f"{float(self.scale):g} * {self.loss!r}"

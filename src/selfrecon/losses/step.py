r"""``Step``: what a loss sees of one batch, and the one place network passes are scheduled.

A loss is ``forward(step) -> dict[str, Tensor]`` of named scalar terms. It reads

* ``step.y``, ``step.physics``, ``step.generator`` (the source of every random draw), ``step.x``
  (ground truth, ``None`` unless the batch has it: :class:`~selfrecon.losses.SupervisedLoss`);
* ``step.x_hat`` — ``model(y, physics)``, computed on first use and then shared by every term;
* ``step.reconstruct(inputs)`` — the model on extra inputs (SURE probes, ``A T_g x̂``, masked
  copies). When ``x_hat`` has not been computed yet it runs on ``[y, *inputs]`` in **one batched
  pass** and keeps the first block as ``x_hat``, so SURE costs one pass of ``2B`` instead of two
  of ``B`` (Chen et al., CVPR 2022, compute ``f(y)`` and ``f(y + τb)`` together). A physics with
  per-image parameters (``physics.per_sample()``) cannot be stacked with copies of the batch; its
  inputs are then run one by one.

The Trainer, :func:`~selfrecon.training.evaluate` and the CLI's dry run build a ``Step`` per batch;
a Python user calls a loss the same way: ``loss(Step(y, physics, model, generator))``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

__all__ = ["Step", "loss_terms"]


class Step:
    """One batch: ``y``, ``physics``, ``model``, ``generator``, optional ``x`` and ``x_hat``.

    ``x_hat`` may be given (a reconstruction already computed); otherwise it is computed lazily.
    ``passes`` counts the network calls this step made (for tests and profiling).
    """

    def __init__(
        self,
        y: Tensor,
        physics,
        model: Callable,
        generator: torch.Generator | None = None,
        x: Tensor | None = None,
        x_hat: Tensor | None = None,
    ):
        self.y, self.physics, self.model = y, physics, model
        self.generator, self.x = generator, x
        self._x_hat = x_hat
        self._passes = [0]  # shared with the steps made by with_input()

    @property
    def passes(self) -> int:
        """Network calls made by this step and the steps derived from it."""
        return self._passes[0]

    def with_input(self, y: Tensor) -> Step:
        """The same batch (physics, model, generator, ``x``) with network input ``y`` — e.g. a
        recorrupted copy (R2R): its ``x_hat`` is ``model(y, physics)``; passes are counted here."""
        new = Step(y, self.physics, self.model, self.generator, x=self.x)
        new._passes = self._passes
        return new

    @property
    def has_x_hat(self) -> bool:
        """Whether ``x_hat`` has been computed (or given)."""
        return self._x_hat is not None

    @property
    def x_hat(self) -> Tensor:
        """``model(y, physics)``, computed once."""
        if self._x_hat is None:
            self._x_hat = self._run([self.y], self.physics)[0]
        return self._x_hat

    def reconstruct(self, inputs: Sequence[Tensor], physics=None) -> list[Tensor]:
        """``[model(t, physics) for t in inputs]`` (``physics`` defaults to the batch's), batched.

        With the batch's physics and no ``x_hat`` yet, ``y`` joins the pass and ``x_hat`` is kept.
        Inputs may have different batch sizes (a probe on a subset of the images).
        """
        inputs = list(inputs)
        if physics is None and self._x_hat is None:
            outs = self._run([self.y, *inputs], self.physics)
            self._x_hat = outs[0]
            return outs[1:]
        return self._run(inputs, self.physics if physics is None else physics)

    def _run(self, inputs: list[Tensor], physics) -> list[Tensor]:
        if len(inputs) == 1 or physics.per_sample():
            self._passes[0] += len(inputs)
            return [self.model(t, physics) for t in inputs]
        self._passes[0] += 1
        out = self.model(torch.cat(inputs), physics)
        return list(out.split([t.shape[0] for t in inputs]))


def loss_terms(loss: Callable, step: Step) -> dict[str, Tensor]:
    """``loss(step)``, checked: a non-empty dict of scalar tensors."""
    terms = dict(loss(step))
    for k, v in terms.items():
        if not isinstance(v, Tensor) or v.dim() != 0:
            shape = tuple(v.shape) if isinstance(v, Tensor) else ""
            raise TypeError(
                f"loss term {k!r} must be a scalar tensor, got {type(v).__name__}{shape}"
            )
    if not terms:
        raise TypeError(f"{type(loss).__name__} returned no loss terms")
    return terms

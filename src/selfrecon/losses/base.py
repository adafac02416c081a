r"""The loss interface: ``forward(step)`` returns named scalar terms; losses add and scale.

A loss is an ``nn.Module`` whose ``forward(step)`` takes the batch's
:class:`~selfrecon.losses.step.Step` (``y``, ``physics``, ``model``, ``generator``, optional ``x``;
``step.x_hat`` computed once, ``step.reconstruct(inputs)`` for extra network passes) and returns a
dict of **scalar** tensors, each a mean over the batch (``"mc"``, ``"ei"``, ``"sure"``, …). The
Trainer sums them for the backward pass and logs each one. Losses combine with ``+`` (all terms of
all parts, sharing one ``x_hat``) and scale with ``*``; ``losses.build_loss(spec)`` builds any of
them from a spec.

A loss whose extra inputs can share the pass that computes ``x_hat`` (SURE's probes
``y + τb``) declares ``joins_x_hat_pass = True``; a :class:`SumLoss` runs such a part first, so
``MCLoss() + SURE()`` costs one batched pass, not two. A loss that returns an unbiased risk
estimate names those terms in ``risk_terms`` (``("sure",)``): the Trainer ranks checkpoints by
them without ground truth.
"""

from __future__ import annotations

from torch import Tensor, nn

from selfrecon.losses.step import Step

__all__ = ["Loss", "SumLoss", "ScaledLoss"]


class Loss(nn.Module):
    """Base class: subclasses implement ``forward(step) -> dict[str, Tensor]`` (scalar terms)."""

    #: its extra inputs can join the pass that computes ``x_hat`` (a SumLoss runs it first)
    joins_x_hat_pass: bool = False
    #: names of terms that are unbiased estimates of the measurement-domain risk (SURE)
    risk_terms: tuple[str, ...] = ()
    #: names of this module's buffers that training learns (UNSURE's noise level): saved in
    #: checkpoints, restored on resume (:meth:`learned_state`)
    learned_buffers: tuple[str, ...] = ()

    def monitors(self) -> dict[str, float]:
        """Quantities the loss learns that are not terms of the objective (UNSURE's
        ``sigma_hat``); the Trainer logs them beside the terms. Parts' monitors are merged."""
        out: dict[str, float] = {}
        for child in self.children():
            if isinstance(child, Loss):
                out.update(child.monitors())
        return out

    def learned_state(self) -> dict[str, Tensor]:
        """``{qualified name: tensor}`` of every declared learned buffer of this loss and parts."""
        out = {}
        for prefix, mod in self.named_modules():
            for name in getattr(mod, "learned_buffers", ()):
                out[f"{prefix}.{name}" if prefix else name] = getattr(mod, name).detach().clone()
        return out

    def load_learned_state(self, state: dict[str, Tensor]) -> None:
        """Restore :meth:`learned_state` (an older checkpoint without it leaves them as is)."""
        for key, value in state.items():
            prefix, _, name = key.rpartition(".")
            getattr(self.get_submodule(prefix) if prefix else self, name).copy_(value)

    def forward(self, step: Step) -> dict[str, Tensor]:  # pragma: no cover - abstract
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


class SumLoss(Loss):
    """``L1 + L2 + …``: all terms of all parts (a repeated name gets a suffix ``_2``, ``_3``, …),
    one shared ``step.x_hat``; parts that join the ``x_hat`` pass run first."""

    def __init__(self, *losses: Loss):
        super().__init__()
        flat: list[Loss] = []
        for loss in losses:
            flat.extend(loss.parts if isinstance(loss, SumLoss) else [loss])
        self.parts = nn.ModuleList(flat)

    @property
    def joins_x_hat_pass(self) -> bool:  # type: ignore[override]
        return any(p.joins_x_hat_pass for p in self.parts)

    @property
    def risk_terms(self) -> tuple[str, ...]:  # type: ignore[override]
        return tuple(t for p in self.parts for t in p.risk_terms)

    def monitors(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for part in self.parts:
            out.update(part.monitors())
        return out

    def forward(self, step: Step) -> dict[str, Tensor]:
        first = next((p for p in self.parts if p.joins_x_hat_pass), None)
        order = ([first] if first is not None else []) + [p for p in self.parts if p is not first]
        terms = {id(p): p(step) for p in order}  # evaluated in pass order, reported in sum order
        out: dict[str, Tensor] = {}
        for part in self.parts:
            for name, value in terms[id(part)].items():
                key, k = name, 2
                while key in out:
                    key, k = f"{name}_{k}", k + 1
                out[key] = value
        return out

    def __repr__(self) -> str:
        return " + ".join(repr(p) for p in self.parts)


class ScaledLoss(Loss):
    """``s · L``: every term of ``L`` multiplied by ``s``."""

    def __init__(self, loss: Loss, scale: float | Tensor):
        super().__init__()
        if isinstance(loss, ScaledLoss):
            scale, loss = scale * loss.scale, loss.loss
        self.loss = loss
        self.scale = scale

    @property
    def joins_x_hat_pass(self) -> bool:  # type: ignore[override]
        return self.loss.joins_x_hat_pass

    @property
    def risk_terms(self) -> tuple[str, ...]:  # type: ignore[override]
        return self.loss.risk_terms

    def forward(self, step: Step) -> dict[str, Tensor]:
        return {k: self.scale * v for k, v in self.loss(step).items()}

    def monitors(self) -> dict[str, float]:
        return self.loss.monitors()

    def __repr__(self) -> str:
        return f"{float(self.scale):g} * {self.loss!r}"

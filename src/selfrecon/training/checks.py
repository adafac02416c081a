"""Checks a run makes at start-up, before its first step."""

from __future__ import annotations

from torch import nn

__all__ = ["identifiability_lines"]


def identifiability_lines(physics, loss: nn.Module) -> list[tuple[str, bool]]:
    """``(line, echo)`` pairs for the run's log: the theory's verdict on the physics with the
    loss's group (Tachella et al., JMLR 2023; :func:`selfrecon.theory.identifiability`), and a
    printed warning when it is not identifiable. Empty when the loss uses no group."""
    group = next((m.group for m in loss.modules() if getattr(m, "group", None) is not None), None)
    if group is None:
        return []
    from selfrecon.theory import identifiability

    report = identifiability(physics, group, recommend=False, time_budget=5.0)
    lines = [(f"identifiability: {report.verdict} ({report.reason})", False)]
    if report.verdict == "not identifiable":
        lines.append(
            (
                f"warning: theory says this operator with group {group!r} is not identifiable from "
                "measurements alone — the equivariance loss cannot recover the missing part; use "
                "another group or more operators",
                True,
            )
        )
    return lines

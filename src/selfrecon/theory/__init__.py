"""Identifiability: can this operator and group be learned from measurements alone?

The sensing theorems of Tachella, Chen & Davies (JMLR 2023) made computable:
:func:`identifiability` returns a :class:`Report` (rank of the stacked operator, the bound
``m ≥ max_j c_j/s_j``, a verdict, the reason and the groups that would work); :func:`quick_check` is
the time-boxed version used by the Trainer and the CLI.
"""

from selfrecon.theory.characters import character_table, multiplicities
from selfrecon.theory.identifiability import (
    VERDICTS,
    Report,
    candidate_groups,
    identifiability,
    quick_check,
)
from selfrecon.theory.sensing import (
    MOIReport,
    SufficientCondition,
    estimate_box_dimension,
    moi_identifiability,
    sufficient_measurements,
)

__all__ = [
    "MOIReport",
    "Report",
    "SufficientCondition",
    "estimate_box_dimension",
    "moi_identifiability",
    "sufficient_measurements",
    "VERDICTS",
    "candidate_groups",
    "character_table",
    "identifiability",
    "multiplicities",
    "quick_check",
]

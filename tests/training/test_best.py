"""BestTracker: ranks by declared risk terms without ground truth, else val/train totals."""

import pytest

from selfrecon.errors import ConfigError
from selfrecon.training.best import BestTracker


def test_auto_prefers_the_declared_risk_term():
    best = BestTracker("auto", sure_terms=("sure",))
    assert best.column({"train_total": 1.0}) == ("train_total", False)
    row = {"train_total": 1.0, "val_sure": 0.2, "val_total": 0.5, "val_sure_like": 0.0}
    assert best.column(row) == ("val_sure", False)
    assert BestTracker("auto").column(row) == ("val_total", False)  # no declared risk term


def test_update_keeps_the_lowest_finite_value_and_round_trips():
    best = BestTracker("auto", ("sure",))
    assert best.update({"val_sure": 0.3}, 1)
    assert not best.update({"val_sure": 0.4}, 2)
    assert not best.update({"val_sure": float("nan")}, 3)
    assert best.update({"val_sure": 0.1}, 4) and best.epoch == 4
    other = BestTracker()
    other.load_state_dict(best.state_dict())
    assert (other.key, other.value, other.epoch) == ("val_sure", 0.1, 4)


def test_psnr_is_higher_better_and_unknown_terms_are_errors():
    best = BestTracker("psnr")
    assert best.update({"val_psnr": 20.0}, 1) and best.update({"val_psnr": 21.0}, 2)
    assert not best.update({"val_psnr": 19.0}, 3)
    with pytest.raises(ConfigError, match="best_by='sup'"):
        BestTracker("sup").update({"val_mc": 1.0}, 1)

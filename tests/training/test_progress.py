"""Meter (running means, checkpointed) and the one-line epoch summary."""

import torch

from selfrecon.training.distributed import DistInfo
from selfrecon.training.progress import Meter, Progress, epoch_line


def test_meter_means_and_state_round_trip():
    m = Meter()
    m.add({"mc": 1.0, "total": 3.0})
    m.add({"mc": 2.0, "total": 5.0})
    assert m.means(DistInfo(), torch.device("cpu")) == {"mc": 1.5, "total": 4.0}
    resumed = Meter()
    resumed.load_state_dict(m.state_dict())
    resumed.add({"mc": 3.0, "total": 7.0})
    assert resumed.means(DistInfo(), torch.device("cpu")) == {"mc": 2.0, "total": 5.0}
    m.reset()
    assert m.n == 0 and m.means(DistInfo(), torch.device("cpu")) == {}


def test_epoch_line_and_quiet_progress(capsys):
    row = {"epoch": 2, "step": 20, "lr": 1e-3, "train_mc": 0.012345, "val_psnr": 27.51234}
    assert epoch_line(row, 10) == (
        "epoch 2/10 | step 20 | train_mc 0.01235 | val_psnr 27.512 | lr 0.001"
    )
    Progress("none", 10, 5, True).echo("hidden")
    Progress("lines", 10, 5, False).echo("other rank")
    Progress("lines", 10, 5, True).echo("shown")
    assert capsys.readouterr().out == "shown\n"

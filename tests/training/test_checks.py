"""The start-up identifiability lines: verdict logged, a printed warning only when not learnable."""

import torch

from selfrecon.groups import Shift
from selfrecon.losses import EILoss, MCLoss
from selfrecon.physics import Inpainting, MatrixOperator, Physics
from selfrecon.training.checks import identifiability_lines


def _lowpass(n=8, keep=2):
    """A circulant low-pass projection: it commutes with shifts, so Shift cannot help it."""
    f = torch.fft.fftfreq(n) * n
    m = ((f.abs()[:, None] <= keep) & (f.abs()[None, :] <= keep)).double()
    eye = torch.eye(n * n, dtype=torch.float64).reshape(n * n, n, n)
    return torch.fft.ifft2(torch.fft.fft2(eye) * m).real.reshape(n * n, n * n).T.float()


def test_no_group_no_lines_and_identifiable_no_warning(rng):
    inp = Physics(Inpainting(rate=0.5, img_shape=(8, 8), generator=rng))
    assert identifiability_lines(inp, MCLoss()) == []
    lines = identifiability_lines(inp, MCLoss() + EILoss(Shift()))
    assert len(lines) == 1 and lines[0][0].startswith("identifiability: identifiable")
    assert lines[0][1] is False  # logged, not printed


def test_an_equivariant_operator_gets_a_printed_warning():
    physics = Physics(MatrixOperator(_lowpass(), (1, 8, 8)))
    lines = identifiability_lines(physics, MCLoss() + EILoss(Shift()))
    assert lines[0][0].startswith("identifiability: not identifiable")
    assert lines[1][1] is True and "use another group or more operators" in lines[1][0]

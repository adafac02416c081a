"""Single-pixel camera: fast Walsh-Hadamard transform, sequency order, Bernoulli patterns."""

from __future__ import annotations

import math

import pytest
import torch
from scipy.linalg import hadamard

from selfrecon.physics import SinglePixelCamera, fwht
from selfrecon.physics.spc import sequency_order


@pytest.mark.parametrize("n", [1, 2, 8, 64])
def test_fwht_equals_dense_hadamard(n, rng):
    Hd = torch.tensor(hadamard(n), dtype=torch.float64) / math.sqrt(n)
    x = torch.randn(3, 2, n, dtype=torch.float64, generator=rng)
    assert torch.allclose(fwht(x), x @ Hd.T, atol=1e-12)
    assert torch.allclose(fwht(fwht(x)), x, atol=1e-12)  # orthonormal and symmetric: an involution


def test_fwht_rejects_non_power_of_two():
    with pytest.raises(ValueError, match="power-of-2 length, got 12"):
        fwht(torch.zeros(1, 12))


def _sign_changes(v: torch.Tensor) -> torch.Tensor:
    return (v[..., 1:] != v[..., :-1]).sum(-1)


def test_sequency_order_is_a_low_first_permutation():
    H, W = 8, 16
    order = sequency_order(H, W)
    assert torch.equal(order.sort().values, torch.arange(H * W))
    rows = torch.tensor(hadamard(H * W))[order].reshape(-1, H, W)
    # each Sylvester row of H_{HW} is an outer product of a column and a row Walsh function
    s_r = _sign_changes(rows[:, :, 0])
    s_c = _sign_changes(rows[:, 0, :])
    assert torch.all(rows == rows[:, :, :1] * rows[:, :1, :])
    key = torch.maximum(s_r * W, s_c * H)
    assert torch.all(key[1:] >= key[:-1])  # nested squares, low sequency first
    assert s_r[0] == 0 and s_c[0] == 0  # the constant pattern comes first


def test_hadamard_measurements_equal_dense_rows(rng):
    A = SinglePixelCamera(24, (8, 8), kind="hadamard").double()
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64, generator=rng)
    P = torch.tensor(hadamard(64), dtype=torch.float64)[sequency_order(8, 8)[:24]] / 8
    y = A(x)
    assert y.shape == (2, 3, 24)
    assert torch.allclose(y, x.reshape(2, 3, 64) @ P.T, atol=1e-12)
    assert torch.allclose(A.pinv(y), A.adjoint(y))
    assert torch.allclose(A(A.adjoint(y)), y, atol=1e-12)  # orthonormal rows: A Aᵀ = I


@pytest.mark.parametrize("k", [1, 2])
def test_hadamard_low_sequency_patterns_give_block_averages(k, rng):
    """The first (H/2^k)(W/2^k) patterns span the images constant on 2^k × 2^k blocks."""
    f = 2**k
    A = SinglePixelCamera(64 // f**2, (8, 8), kind="hadamard").double()
    x = torch.randn(2, 1, 8, 8, dtype=torch.float64, generator=rng)
    blocks = torch.nn.functional.avg_pool2d(x, f).repeat_interleave(f, -1).repeat_interleave(f, -2)
    assert torch.allclose(A.pinv(A(x)), blocks, atol=1e-12)


def test_hadamard_needs_power_of_two_pixels():
    with pytest.raises(ValueError, match=r"power of 2.*\(6, 8\)"):
        SinglePixelCamera(10, (6, 8), kind="hadamard")
    with pytest.raises(ValueError, match="1 ≤ m ≤"):
        SinglePixelCamera(65, (8, 8))
    with pytest.raises(ValueError, match="unknown single-pixel"):
        SinglePixelCamera(4, (8, 8), kind="fourier")


def test_bernoulli_patterns_are_seeded_binary_and_channel_separate(rng):
    def make(seed):
        return SinglePixelCamera(
            16, (4, 8), kind="bernoulli", generator=torch.Generator().manual_seed(seed)
        )

    A = make(0)
    M = A.patterns.matrix
    assert M.shape == (16, 32)
    assert torch.all((M == 1 / 4) | (M == -1 / 4))  # ±1/√m
    assert 0.3 < (M > 0).float().mean() < 0.7
    assert torch.equal(make(0).patterns.matrix, M) and not torch.equal(make(1).patterns.matrix, M)
    x = torch.randn(2, 3, 4, 8, generator=rng)
    y = A(x)
    assert y.shape == (2, 3, 16)
    for c in range(3):  # each channel is measured with the same patterns
        assert torch.allclose(y[:, c], x[:, c].reshape(2, 32) @ M.T, atol=1e-6)
    # A† is the Moore-Penrose pseudo-inverse of the patterns, applied per channel
    B = SinglePixelCamera(12, (4, 4), kind="bernoulli", generator=rng).double()
    y = torch.randn(2, 3, 12, dtype=torch.float64, generator=rng)
    ref = y @ torch.linalg.pinv(B.patterns.matrix).T
    assert torch.allclose(B.pinv(y), ref.reshape(2, 3, 4, 4), atol=1e-9)


def test_spc_shape_errors():
    A = SinglePixelCamera(8, (8, 8))
    with pytest.raises(ValueError, match=r"\(2, 1, 8, 4\).*\(\*, 8, 8\)"):
        A(torch.zeros(2, 1, 8, 4))
    with pytest.raises(ValueError, match=r"\(2, 1, 9\).*\(B, C, 8\)"):
        A.adjoint(torch.zeros(2, 1, 9))
    with pytest.raises(ValueError, match="meta"):
        A(torch.zeros(2, 1, 8, 8, device="meta"))

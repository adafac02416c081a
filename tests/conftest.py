import os

import pytest
import torch

# One thread per test process: CI runs two xdist workers on 2 cores, and oversubscribed
# FFT threads were ~100x slower on a busy machine.
torch.set_num_threads(int(os.environ.get("SELFRECON_TEST_THREADS", "1")))


@pytest.fixture
def rng() -> torch.Generator:
    """A seeded generator: every random draw in a test goes through it."""
    return torch.Generator().manual_seed(1234)

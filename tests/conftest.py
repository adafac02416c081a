import os

import pytest
import torch

# Keep the suite fast and deterministic on 2-core CI machines.
torch.set_num_threads(int(os.environ.get("SELFRECON_TEST_THREADS", "2")))


@pytest.fixture
def rng() -> torch.Generator:
    """A seeded generator: every random draw in a test goes through it."""
    return torch.Generator().manual_seed(1234)

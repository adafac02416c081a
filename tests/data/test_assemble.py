"""assemble: the layout of a user's files is decided by the operator's declared measurement axes."""

import numpy as np
import pytest
import torch

from selfrecon.data import assemble
from selfrecon.errors import DataError


def test_plain_hw_noisy_images_get_their_channel_axis(tmp_path):
    d = tmp_path / "noisy"
    d.mkdir()
    for i in range(2):
        np.save(d / f"im{i}.npy", np.random.default_rng(i).random((6, 5)).astype(np.float32))
    ms = assemble(d, {"name": "denoising"})  # Denoising accepts any shape: no trial could tell
    assert ms[0]["y"].shape == (1, 6, 5)
    assert ms.physics.A.pinv(ms[0]["y"][None]).shape == (1, 1, 6, 5)


def test_vector_measurements_keep_their_layout(tmp_path):
    matrix = torch.randn(5, 16, generator=torch.Generator().manual_seed(0))
    y = np.random.default_rng(0).random((3, 5)).astype(np.float32)
    np.save(tmp_path / "y.npy", y)
    spec = {"name": "cs", "m": 5, "matrix": matrix, "img_shape": [1, 4, 4]}
    ms = assemble(tmp_path / "y.npy", spec)
    assert len(ms) == 3 and ms[1]["y"].shape == (5,)


def test_measurements_the_operator_rejects_name_the_file(tmp_path):
    np.save(tmp_path / "k.npy", np.zeros((2, 3, 8, 8), np.complex64))  # 3 axes per item...
    np.save(tmp_path / "mask.npy", np.ones((8, 8), np.float32))
    spec = {"name": "multicoil_mri", "coil_maps": torch.ones(2, 8, 8, dtype=torch.complex64)}
    with pytest.raises(DataError, match="k.npy.*cannot use"):  # ...but 3 coils, not 2
        assemble(tmp_path / "k.npy", spec, mask_file=tmp_path / "mask.npy")

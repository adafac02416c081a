"""MeasuredDataset, simulate → MeasurementSet round trips, assemble from the user's files."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from selfrecon.data import MeasuredDataset, MeasurementSet, assemble, builtin, simulate
from selfrecon.data.set_writer import FORMAT_VERSION
from selfrecon.errors import DataError
from selfrecon.physics import (
    CompressedSensing,
    Denoising,
    GaussianNoise,
    Inpainting,
    Physics,
    PoissonNoise,
)

physics_mod = pytest.importorskip("selfrecon.physics")


def _images(n=7, size=8, seed=0):
    return builtin("ellipses", "train", size=size, n=n, seed=seed)


def _make_physics(kind: str, size: int = 8) -> Physics:
    g = torch.Generator().manual_seed(11)
    if kind == "inpainting":
        return Physics(
            Inpainting(rate=0.6, img_shape=(size, size), generator=g), GaussianNoise(0.1)
        )
    if kind == "cs":
        return Physics(CompressedSensing(20, (1, size, size), generator=g), PoissonNoise(0.05))
    if kind == "denoising":
        return Physics(Denoising(), GaussianNoise(0.2))
    if kind == "mri":
        if not hasattr(physics_mod, "MRI"):
            pytest.skip("selfrecon.physics.MRI not available yet")
        mask = physics_mod.mri_mask((size, size), 2.0, 0.25, generator=g)
        return Physics(physics_mod.MRI(mask), GaussianNoise(0.05))
    if kind == "multicoil":
        if not hasattr(physics_mod, "MultiCoilMRI"):
            pytest.skip("selfrecon.physics.MultiCoilMRI not available yet")
        mask = physics_mod.mri_mask((size, size), 2.0, 0.25, generator=g)
        maps = physics_mod.birdcage_maps(3, (size, size))
        return Physics(physics_mod.MultiCoilMRI(mask, maps), GaussianNoise(0.05))
    if kind == "tomography":
        if not hasattr(physics_mod, "Tomography"):
            pytest.skip("selfrecon.physics.Tomography not available yet")
        return Physics(
            physics_mod.Tomography(angles=torch.rand(6, generator=g) * 180, img_size=size)
        )
    if kind == "lowdose_ct":
        if not hasattr(physics_mod, "LowDoseCT"):
            pytest.skip("selfrecon.physics.LowDoseCT not available yet")
        return physics_mod.LowDoseCT(angles=5, img_size=size, I0=1e4, sigma=3.0)
    raise AssertionError(kind)


def _same_physics(p, q, size=8):
    """Operator outputs equal on a random image and random measurements."""
    assert type(p) is type(q) and type(p.operator) is type(q.operator)
    g = torch.Generator().manual_seed(3)
    x = p.prepare_image(torch.rand((2, 1, size, size), generator=g))
    y = p.A(x)
    assert torch.equal(y, q.A(x))
    assert torch.equal(p.A.adjoint(y), q.A.adjoint(y))
    assert (p.noise is None) == (q.noise is None)
    if p.noise is not None:
        assert p.noise.spec() == q.noise.spec()
    for k, v in p.operator.config().items():
        w = q.operator.config()[k]
        if isinstance(v, torch.Tensor):
            assert v.dtype == w.dtype and torch.equal(v, w), k
        else:
            assert v == w, k


ALL = ["denoising", "inpainting", "cs", "mri", "multicoil", "tomography", "lowdose_ct"]


# -- MeasuredDataset --------------------------------------------------------------------------
def test_measured_dataset_is_fixed_and_order_independent():
    phys = _make_physics("inpainting")
    imgs = _images()
    a = MeasuredDataset(imgs, phys, seed=4)
    b = MeasuredDataset(imgs, phys, seed=4)
    forward = [a[i]["y"] for i in range(len(a))]
    backward = [b[i]["y"] for i in reversed(range(len(b)))][::-1]
    for u, v in zip(forward, backward, strict=True):
        assert torch.equal(u, v)
    assert torch.equal(a[2]["y"], a[2]["y"])  # fixed across epochs
    assert not torch.equal(MeasuredDataset(imgs, phys, seed=5)[2]["y"], a[2]["y"])
    item = a[0]
    assert torch.equal(item["x"], imgs[0])
    clean = phys.A(item["x"][None])[0]
    resid = (item["y"] - clean)[phys.measured_mask[0].expand_as(clean) > 0]
    assert 0.05 < float(resid.std()) < 0.2  # σ = 0.1 noise, only on measured pixels
    assert float((item["y"] * (1 - phys.measured_mask[0])).abs().max()) == 0.0


def test_measured_dataset_complex_layout():
    phys = _make_physics("mri")
    item = MeasuredDataset(_images(2), phys)[1]
    assert item["x"].shape == (2, 8, 8) and float(item["x"][1].abs().max()) == 0.0
    assert item["y"].is_complex() and item["y"].shape == (1, 8, 8)


# -- simulate → MeasurementSet ----------------------------------------------------------------
@pytest.mark.parametrize("kind", ALL)
def test_simulate_roundtrip(tmp_path, kind):
    phys = _make_physics(kind)
    imgs = _images(7)
    out = simulate(imgs, phys, tmp_path / "set", seed=9, shard_size=3)
    ms = MeasurementSet(out)
    ref = MeasuredDataset(imgs, phys, seed=9)
    assert len(ms) == 7 and len(ms.manifest["shards"]) == 3
    for i in range(7):
        got, want = ms[i], ref[i]
        assert got["y"].dtype == want["y"].dtype
        assert torch.equal(got["y"], want["y"]) and torch.equal(got["x"], want["x"])
    _same_physics(phys, ms.physics)
    # the rebuilt physics re-simulates identically
    again = MeasuredDataset(imgs, ms.physics, seed=9)
    assert torch.equal(again[5]["y"], ms[5]["y"])


def test_manifest_contents(tmp_path):
    phys = _make_physics("cs")
    out = simulate(_images(3), phys, tmp_path / "s", seed=2, save_x=False)
    m = json.loads((out / "manifest.json").read_text())
    assert m["format_version"] == FORMAT_VERSION and m["n"] == 3 and m["seed"] == 2
    assert m["arrays"] == {"y": {"shape": [20], "dtype": "float32"}}
    assert m["noise"] == {"name": "poisson", "gain": pytest.approx(0.05)}
    assert m["physics"]["operator"]["matrix"] == {"$tensor": "operator.matrix"}
    assert m["selfrecon_version"] and m["created"]
    ms = MeasurementSet(out)
    assert not ms.has_x and set(ms[0]) == {"y"}
    assert isinstance(ms._store._shard(0)["y"], np.memmap)  # lazily memory-mapped


def test_per_sample_params_roundtrip(tmp_path):
    phys = _make_physics("inpainting")

    def fresh_mask(i, g):
        return {"mask": (torch.rand((1, 1, 8, 8), generator=g) < 0.5).float()}

    out = simulate(_images(5), phys, tmp_path / "p", seed=1, shard_size=2, params_fn=fresh_mask)
    ms = MeasurementSet(out)
    ref = MeasuredDataset(_images(5), phys, seed=1, params_fn=fresh_mask)
    masks = [ms[i]["params"]["mask"] for i in range(5)]
    assert not torch.equal(masks[0], masks[1])
    for i in range(5):
        assert torch.equal(ms[i]["params"]["mask"], ref[i]["params"]["mask"])
        assert torch.equal(ms[i]["y"], ref[i]["y"])
        # measured entries follow the item's own mask
        assert float((ms[i]["y"] * (1 - masks[i])).abs().max()) == 0.0
    batch = next(iter(DataLoader(ms, batch_size=4)))
    assert batch["params"]["mask"].shape == (4, 1, 8, 8)
    per_batch = ms.physics.update(**batch["params"])
    assert torch.equal(per_batch.A(batch["x"]), batch["x"] * batch["params"]["mask"])


def test_out_dir_rules(tmp_path):
    phys = _make_physics("denoising")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "mine.txt").write_text("keep me")
    with pytest.raises(DataError, match="not empty") as e:
        simulate(_images(2), phys, busy)
    assert "\n" not in str(e.value)
    with pytest.raises(DataError, match="not a measurement set"):
        simulate(_images(2), phys, busy, overwrite=True)
    assert (busy / "mine.txt").read_text() == "keep me"
    out = simulate(_images(2), phys, tmp_path / "s")
    y0 = MeasurementSet(out)[0]["y"]
    simulate(_images(2), phys, out, seed=5, overwrite=True)
    assert not torch.equal(MeasurementSet(out)[0]["y"], y0)


def test_no_partial_set_on_error(tmp_path):
    phys = _make_physics("denoising")

    class Bad(torch.utils.data.Dataset):
        def __len__(self):
            return 6

        def __getitem__(self, i):
            if i == 4:
                raise RuntimeError("disk on fire")
            return torch.zeros(1, 8, 8)

    with pytest.raises(RuntimeError, match="disk on fire"):
        simulate(Bad(), phys, tmp_path / "s", shard_size=2)
    assert list(tmp_path.iterdir()) == []


def test_nan_in_stored_measurement_is_named(tmp_path):
    out = simulate(_images(3), _make_physics("denoising"), tmp_path / "s", shard_size=2)
    f = out / "shards" / "000001" / "y.npy"
    a = np.load(f)
    a[0, 0, 0, 0] = np.nan
    np.save(f, a)
    ms = MeasurementSet(out)
    ms[1]
    with pytest.raises(DataError, match=r"000001.y\.npy.*NaN") as e:
        ms[2]
    assert "\n" not in str(e.value)
    with pytest.raises(DataError, match="not a measurement set"):
        MeasurementSet(tmp_path)


# -- the user's own measurements --------------------------------------------------------------
def test_from_arrays_save_and_reopen(tmp_path):
    phys = _make_physics("mri")
    ref = MeasuredDataset(_images(4), phys, seed=0)
    y = torch.stack([ref[i]["y"] for i in range(4)])
    ms = MeasurementSet.from_arrays(y, phys.spec())
    assert torch.equal(ms[3]["y"], y[3]) and "x" not in ms[3]
    _same_physics(phys, ms.physics)
    back = MeasurementSet(ms.save(tmp_path / "m"))
    assert torch.equal(back[3]["y"], y[3]) and back[3]["y"].dtype == torch.complex64
    _same_physics(phys, back.physics)


def test_assemble_from_folder_with_mask_file(tmp_path):
    phys = _make_physics("inpainting")
    ref = MeasuredDataset(_images(3), phys, seed=0)
    d = tmp_path / "meas"
    d.mkdir()
    for i in range(3):
        np.save(d / f"scan{i}.npy", ref[i]["y"][0].numpy())  # (H, W) files
    mask = phys.operator.mask[0, 0].numpy()
    np.save(tmp_path / "mask.npy", mask)
    spec = {
        "kind": "linear",
        "operator": {"name": "inpainting"},
        "noise": {"name": "gaussian", "sigma": 0.1},
    }
    ms = assemble(d, spec, tmp_path / "out", mask_file=tmp_path / "mask.npy")
    assert ms.names == ["scan0", "scan1", "scan2"]
    for i in range(3):
        assert torch.equal(ms[i]["y"], ref[i]["y"])
    _same_physics(phys, ms.physics)
    assert sorted(p.name for p in d.iterdir()) == ["scan0.npy", "scan1.npy", "scan2.npy"]


def test_assemble_errors_name_file_and_shapes(tmp_path):
    d = tmp_path / "meas"
    d.mkdir()
    np.save(d / "a.npy", np.zeros((8, 8), np.float32))
    np.save(tmp_path / "mask.npy", np.ones((8, 6), np.float32))
    spec = {"name": "inpainting"}
    with pytest.raises(DataError, match="mask") as e:
        assemble(d, spec, mask_file=tmp_path / "mask.npy")
    msg = str(e.value)
    assert "(8, 6)" in msg and "(8, 8)" in msg and "a.npy" in msg and "\n" not in msg
    bad = np.zeros((8, 8), np.float32)
    bad[2, 3] = np.nan
    np.save(d / "b.npy", bad)
    np.save(tmp_path / "mask.npy", np.ones((8, 8), np.float32))
    with pytest.raises(DataError, match=r"b\.npy.*NaN"):
        assemble(d, spec, mask_file=tmp_path / "mask.npy")
    with pytest.raises(DataError, match="mask has shape"):
        MeasurementSet.from_arrays(
            torch.zeros(2, 1, 8, 6), Physics(Inpainting(mask=torch.ones(8, 8))), where="y.npy"
        )


def test_assemble_sinograms_with_angles(tmp_path):
    phys = _make_physics("tomography")
    ref = MeasuredDataset(_images(2), phys)
    sino = torch.stack([ref[i]["y"] for i in range(2)]).numpy()  # (2, 1, views, det)
    np.save(tmp_path / "sino.npy", sino)
    angles = phys.operator.angles.numpy()
    np.savetxt(tmp_path / "angles.txt", angles)
    spec = {"name": "tomography", "img_size": 8}
    ms = assemble(tmp_path / "sino.npy", spec, angles_file=tmp_path / "angles.txt")
    assert len(ms) == 2 and torch.equal(ms[1]["y"], ref[1]["y"])
    x = torch.rand(1, 1, 8, 8)
    torch.testing.assert_close(ms.physics.A(x), phys.A(x), rtol=1e-5, atol=1e-5)
    np.savetxt(tmp_path / "angles.txt", angles[:-1])
    with pytest.raises(DataError, match="5 views but sinograms") as e:
        assemble(tmp_path / "sino.npy", spec, angles_file=tmp_path / "angles.txt")
    assert "sino.npy" in str(e.value)


def test_assemble_fastmri_kspace(tmp_path):
    h5py = pytest.importorskip("h5py")
    phys = _make_physics("mri")
    ref = MeasuredDataset(_images(3), phys)
    k = torch.stack([ref[i]["y"][0] for i in range(3)]).numpy()  # (slices, H, W) complex
    with h5py.File(tmp_path / "file1.h5", "w") as f:
        f["kspace"] = k
    np.save(tmp_path / "mask.npy", phys.operator.mask.reshape(-1, 8, 8)[0].numpy())
    spec = {"operator": {"name": "mri"}, "noise": {"name": "gaussian", "sigma": 0.05}}
    ms = assemble(tmp_path / "file1.h5", spec, mask_file=tmp_path / "mask.npy")
    assert ms.names == ["file1_000", "file1_001", "file1_002"]
    assert torch.equal(ms[2]["y"], ref[2]["y"])
    _same_physics(phys, ms.physics)

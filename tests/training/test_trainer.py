import csv
import json
import math

import pytest
import torch
import yaml
from _training_toys import (
    DictSet,
    InterruptAfter,
    NaNAfter,
    ei_loss,
    inpainting,
    mc_loss,
    small_model,
    smooth_images,
)

from selfrecon.errors import SelfreconError
from selfrecon.metrics import psnr
from selfrecon.training import (
    CheckpointError,
    NonFiniteLossError,
    TrainConfig,
    Trainer,
    load_checkpoint,
    load_safetensors,
    plot_run,
)

FAST = dict(batch_size=4, lr=2e-3, plot_every=0, progress="none", check_identifiability=False)


def _rows(run_dir):
    with open(run_dir / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def _data(n=16, size=16, seed=0, with_x=True, sigma=None):
    physics = inpainting(size, sigma=sigma)
    return physics, DictSet(smooth_images(n, size, seed), physics, seed=seed, with_x=with_x)


def test_ei_training_beats_linear_reconstruction(tmp_path):
    physics, train = _data(32, seed=0)
    _, test = _data(8, seed=1)
    model = small_model(norm="none", width=16, depth=2)
    cfg = dict(FAST, epochs=15, batch_size=8, lr=5e-3, plot_every=15)
    summary = Trainer(
        model, ei_loss(), physics, train, val=test, config=cfg, run_dir=tmp_path
    ).fit()
    rows = _rows(tmp_path)
    x, y = test.x, test.y
    with torch.no_grad():
        model.eval()
        ours = float(psnr(model(y, physics), x))
    pinv = float(psnr(physics.A.pinv(y), x))
    assert ours > pinv + 8.0, (ours, pinv)
    assert float(rows[-1]["val_psnr"]) == pytest.approx(ours, abs=1e-3)
    assert float(rows[-1]["val_psnr_pinv"]) == pytest.approx(pinv, abs=1e-3)
    assert summary.epochs == 15 and summary.best_metric == "val_total"
    for name in (
        "config.yaml",
        "env.json",
        "train.log",
        "plots/loss.png",
        "plots/samples_epoch_0015.png",
        "checkpoints/last.pt",
        "checkpoints/best.pt",
    ):
        assert (tmp_path / name).is_file(), name
    cfg_yaml = yaml.safe_load((tmp_path / "config.yaml").read_text())
    assert cfg_yaml["train"]["epochs"] == 15 and cfg_yaml["physics"]["kind"] == "linear"
    env = json.loads((tmp_path / "env.json").read_text())
    assert env["torch"] == torch.__version__ and env["seed"] == 0


def _run(tmp, loss, epochs, resume=False, **kw):
    physics, train = _data(12)
    _, val = _data(4, seed=5)
    cfg = dict(FAST, epochs=epochs, resume=resume, schedule="step", step_size=1, gamma=0.7, **kw)
    return Trainer(small_model(), loss, physics, train, val=val, config=cfg, run_dir=tmp)


LOSS_COLS = ("train_mc", "train_ei", "train_total", "val_mc", "val_ei", "val_total", "lr")


def test_resume_equals_uninterrupted(tmp_path):
    _run(tmp_path / "full", ei_loss(), 4).fit()
    _run(tmp_path / "split", ei_loss(), 2).fit()
    _run(tmp_path / "split", ei_loss(), 4, resume=True).fit()
    full, split = _rows(tmp_path / "full"), _rows(tmp_path / "split")
    assert len(full) == len(split) == 4
    for a, b in zip(full, split, strict=True):
        for k in LOSS_COLS:
            assert float(a[k]) == pytest.approx(float(b[k]), rel=1e-7, abs=1e-9), k
    wa = load_checkpoint(tmp_path / "full/checkpoints/last.pt")["model"]
    wb = load_checkpoint(tmp_path / "split/checkpoints/last.pt")["model"]
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=1e-6, atol=1e-7)


def test_ctrl_c_mid_epoch_saves_and_resumes_exactly(tmp_path):
    _run(tmp_path / "full", ei_loss(), 3).fit()
    with pytest.raises(KeyboardInterrupt):  # 3 batches/epoch + 1 val batch: call 6 is epoch 2
        _run(tmp_path / "cut", InterruptAfter(6), 3).fit()
    state = torch.load(tmp_path / "cut/checkpoints/last.pt", weights_only=True)
    assert state["epoch"] == 1 and state["batch_in_epoch"] == 1
    assert "resume=True" in (tmp_path / "cut/train.log").read_text()
    _run(tmp_path / "cut", ei_loss(), 3, resume=True).fit()
    full, cut = _rows(tmp_path / "full"), _rows(tmp_path / "cut")
    assert len(cut) == 3
    for a, b in zip(full, cut, strict=True):
        for k in LOSS_COLS:
            assert float(a[k]) == pytest.approx(float(b[k]), rel=1e-7, abs=1e-9), k


def test_checkpoint_is_weights_only_and_complete(tmp_path):
    _run(tmp_path, mc_loss(), 1).fit()
    state = torch.load(tmp_path / "checkpoints/last.pt", weights_only=True)
    for key in ("model", "optimizer", "scheduler", "epoch", "step", "rng", "config"):
        assert key in state
    assert {"python", "numpy", "torch", "generator"} <= set(state["rng"])
    assert json.loads(state["config"])["epochs"] == 1
    assert not list((tmp_path / "checkpoints").glob("*.tmp"))


def test_measurement_only_data_trains(tmp_path):
    physics, train = _data(8, with_x=False, sigma=0.05)
    _, val = _data(4, seed=2, with_x=False, sigma=0.05)
    cfg = dict(FAST, epochs=2, plot_every=1)
    summary = Trainer(
        small_model(), ei_loss(), physics, train, val=val, config=cfg, run_dir=tmp_path
    ).fit()
    rows = _rows(tmp_path)
    assert "val_psnr" not in rows[0] and math.isfinite(float(rows[-1]["val_total"]))
    assert summary.best_metric == "val_total"
    assert (tmp_path / "plots/samples_epoch_0002.png").is_file()


def test_best_by_sure_term_when_present(tmp_path):
    from selfrecon.groups import Shift
    from selfrecon.losses import REILoss

    physics, train = _data(8, sigma=0.1)
    _, val = _data(4, seed=2, sigma=0.1)
    cfg = dict(FAST, epochs=2)
    summary = Trainer(
        small_model(), REILoss(Shift()), physics, train, val=val, config=cfg, run_dir=tmp_path
    ).fit()  # REI computes x_hat in its SURE pass
    assert summary.best_metric == "val_sure"
    rows = _rows(tmp_path)
    assert {"train_sure", "train_rei", "val_sure", "val_psnr"} <= set(rows[0])
    assert "x_hat" not in "".join(rows[0])


def test_validation_probes_every_image(tmp_path):
    """SURE's probe_fraction thins the probes in training steps only: validation (loss.eval())
    gives the same value as the fully probed loss, and the loss is back in training mode after."""
    from selfrecon.groups import Shift
    from selfrecon.losses import REILoss

    physics, train = _data(8, sigma=0.1)
    _, val = _data(4, seed=2, sigma=0.1)
    vals = []
    for p in (1.0, 0.25):
        torch.manual_seed(0)
        loss = REILoss(Shift(), probe_fraction=p)
        cfg = dict(FAST, epochs=1, val_batch_size=4)
        trainer = Trainer(
            small_model(), loss, physics, train, val=val, config=cfg, run_dir=tmp_path / str(p)
        )
        vals.append(trainer.validate()["sure"])
        assert loss.training and loss.risk.training
    assert vals[0] == pytest.approx(vals[1], rel=1e-6)


def test_corrupt_checkpoint_gives_clear_error(tmp_path):
    _run(tmp_path, mc_loss(), 1).fit()
    last = tmp_path / "checkpoints/last.pt"
    last.write_bytes(last.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="last.pt") as info:
        _run(tmp_path, mc_loss(), 2, resume=True).fit()
    assert isinstance(info.value, SelfreconError)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    physics, train = _data(8)
    trainer = Trainer(
        small_model(), NaNAfter(5), physics, train, config=dict(FAST, epochs=5), run_dir=tmp_path
    )
    with pytest.raises(NonFiniteLossError, match="epoch 3.*last.pt"):
        trainer.fit()  # 2 batches per epoch: call 6 is the 2nd batch of epoch 3
    state = load_checkpoint(tmp_path / "checkpoints/last.pt")
    assert state["epoch"] == 2
    assert all(
        bool(torch.isfinite(v).all()) for v in state["model"].values() if v.is_floating_point()
    )
    assert "became nan" in (tmp_path / "train.log").read_text()


def test_export_safetensors_round_trip(tmp_path):
    trainer = _run(tmp_path / "run", mc_loss(), 1)
    trainer.fit()
    path = trainer.export(tmp_path / "out")
    assert path.name == "model.safetensors"
    tensors, meta = load_safetensors(path)
    assert meta["config"]["epochs"] == 1 and meta["model"]["name"] == "artifact_removal"
    model = small_model(seed=123)
    model.load_state_dict(tensors)
    for k, v in trainer.model.state_dict().items():
        torch.testing.assert_close(model.state_dict()[k], v)


def test_plot_run_redraws(tmp_path):
    _run(tmp_path, mc_loss(), 2, plot_every=2).fit()
    (tmp_path / "plots/loss.png").unlink()
    files = plot_run(tmp_path)
    assert (tmp_path / "plots/loss.png").is_file() and len(files) == 2


def test_config_errors(tmp_path):
    with pytest.raises(SelfreconError, match="optimizer"):
        TrainConfig(optimizer="sgd")
    with pytest.raises(SelfreconError, match="unknown training option"):
        TrainConfig.from_dict({"epoch": 3})
    physics, train = _data(4)
    _run(tmp_path, mc_loss(), 1).fit()
    with pytest.raises(SelfreconError, match="already holds a run"):
        _run(tmp_path, mc_loss(), 1).fit()
    bad = torch.utils.data.TensorDataset(torch.zeros(4, 1, 16, 16))
    with pytest.raises(SelfreconError, match="'y'"):
        Trainer(small_model(), mc_loss(), physics, bad, config=FAST, run_dir=tmp_path / "b").fit()


def test_steps_cap_and_cosine(tmp_path):
    physics, train = _data(8)
    cfg = dict(FAST, steps=3, schedule="cosine", lr=1e-3)
    s = Trainer(small_model(), mc_loss(), physics, train, config=cfg, run_dir=tmp_path).fit()
    assert s.steps == 3 and s.epochs == 2
    rows = _rows(tmp_path)
    assert float(rows[0]["lr"]) == pytest.approx(1e-3) and float(rows[1]["lr"]) < 1e-3


def test_identifiability_verdict_is_logged(tmp_path):
    physics, train = _data(4)
    cfg = dict(FAST, epochs=1, check_identifiability=True)
    Trainer(small_model(), ei_loss(), physics, train, config=cfg, run_dir=tmp_path).fit()
    assert "identifiability: identifiable" in (tmp_path / "train.log").read_text()


def test_resolved_config_goes_to_config_yaml_and_description_to_spec_yaml(tmp_path):
    import yaml

    physics = inpainting()
    trainer = Trainer(
        small_model(),
        mc_loss(),
        physics,
        train=DictSet(smooth_images(4), physics),
        config={"epochs": 1, "batch_size": 2, "progress": "none", "check_identifiability": False},
        run_dir=tmp_path / "run",
        resolved_config={"data": {"name": "mine"}, "train": {"epochs": 1}},
    )
    trainer.fit()
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text()) == {
        "data": {"name": "mine"},
        "train": {"epochs": 1},
    }
    assert "model" in yaml.safe_load((tmp_path / "run" / "spec.yaml").read_text())


def test_unsure_level_is_logged_and_resumes_exactly(tmp_path):
    from selfrecon.losses import REILoss

    def run(tmp, epochs, resume=False):
        physics, train = _data(12, sigma=0.1)
        cfg = dict(FAST, epochs=epochs, resume=resume)
        loss = REILoss("shift", consistency="unsure", sigma_init=0.3)
        return Trainer(small_model(), loss, physics, train, config=cfg, run_dir=tmp)

    run(tmp_path / "full", 4).fit()
    run(tmp_path / "split", 2).fit()
    run(tmp_path / "split", 4, resume=True).fit()
    full, split = _rows(tmp_path / "full"), _rows(tmp_path / "split")
    assert "train_sigma_hat" in full[0] and float(full[0]["train_sigma_hat"]) != 0.3
    for a, b in zip(full, split, strict=True):
        for k in ("train_sigma_hat", "train_unsure", "train_rei"):
            assert float(a[k]) == pytest.approx(float(b[k]), rel=1e-7, abs=1e-9), k
    state = load_checkpoint(tmp_path / "full/checkpoints/last.pt")["loss"]
    assert set(state) == {"risk.log_sigma2", "risk.log_gain", "risk.velocity"}

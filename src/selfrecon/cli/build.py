"""Config → objects: physics, datasets, model, loss, Trainer (glue only; no science here).

Every object is made by the same library calls a Python user makes (``selfrecon.physics``,
``selfrecon.data``, ``selfrecon.models``, ``selfrecon.losses``, ``selfrecon.training``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Dataset, Subset

from selfrecon.cli.config import MULTI_OPERATOR_METHODS, Config
from selfrecon.errors import ConfigError, DataError

__all__ = [
    "Experiment",
    "build_experiment",
    "physics_of",
    "model_of",
    "loss_of",
    "group_of",
    "RUN_META",
]

RUN_META = "run.pt"  # physics spec + model spec of a run, so eval/predict never need the data


@dataclass
class Experiment:
    """Everything a command needs: the physics, the datasets, the network's channel count."""

    cfg: Config
    physics: nn.Module
    train: Dataset
    val: Dataset | None
    test: Dataset | None
    channels: int
    physics_list: list | None = None  # MOI: the operators A_g
    noise_estimate: object | None = None  # NoiseEstimate when physics.noise has an auto level


# -- physics ------------------------------------------------------------------------------------
def physics_of(
    cfg: Config, img_shape: tuple[int, int, int], variant: int = 0, simulate: bool = False
):
    """The physics of ``cfg.physics`` for images ``(C, H, W)``; ``variant`` re-seeds random
    operators (MOI draws its operators ``A_g`` as variants 0..G-1). The config section writes the
    library spec; :func:`selfrecon.physics.build_physics` builds it. ``simulate``: with the noise
    the built-in data are simulated with (``data.noise``, default ``physics.noise``)."""
    from selfrecon.physics import build_physics

    p = cfg.physics
    noise = cfg.data.noise if simulate and cfg.data.noise is not None else p.noise
    spec = noise.spec() if not noise.auto else None  # an auto level is set after estimation
    return build_physics(p.operator.physics_spec(spec, tuple(img_shape), variant))


def with_noise(physics, noise):
    """``physics`` with its noise model replaced (a linear physics; low-dose CT has its own)."""
    from selfrecon.physics import Physics

    if type(physics) is not Physics:
        raise ConfigError(
            f"physics kind {physics.kind!r} carries its own noise model; give its levels as "
            "numbers in physics.operator"
        )
    return Physics(physics.operator, noise)


def estimate_level(
    cfg: Config, physics, dataset: Dataset, model: str, method: str = "auto", items: int = 64
):
    """The noise model ``model`` estimated from up to ``items`` training measurements
    (:func:`selfrecon.physics.estimate_noise` with ``method``)."""
    from selfrecon.physics import estimate_noise

    batch = [dataset[i] for i in range(min(items, len(dataset)))]
    y = torch.stack([b["y"] for b in batch])
    p = physics
    if "params" in batch[0]:  # per-item masks: the physics of the stacked batch
        p = physics.update(
            **{k: torch.stack([b["params"][k] for b in batch]) for k in batch[0]["params"]}
        )
    gen = torch.Generator().manual_seed(cfg.data.seed)
    return estimate_noise(y, p, model=model, method=method, generator=gen)


def estimable(physics) -> str | None:
    """The noise family :func:`estimate_level` can estimate for ``physics``, or ``None``
    (the library's rule, :func:`selfrecon.physics.noise_estimation.refusal`)."""
    from selfrecon.physics import Physics
    from selfrecon.physics.noise_estimation import ESTIMATORS, refusal

    if type(physics) is not Physics:
        return None  # nonlinear physics: the noise acts before the nonlinearity (CT counts)
    name = physics.noise.name if physics.noise is not None else "gaussian"
    if name not in ESTIMATORS or refusal(name, physics.operator.measurement_space) is not None:
        return None
    return name


def _estimated_physics(cfg: Config, physics, train: Dataset):
    """``(training physics, estimate or None)``: the configured noise with ``auto`` levels
    estimated from the training measurements."""
    from selfrecon.physics import build_noise

    noise_cfg = cfg.physics.noise
    if not noise_cfg.auto:
        if cfg.data.source == "builtin" and cfg.data.noise is not None:  # simulated ≠ assumed
            return with_noise(physics, build_noise(noise_cfg.spec())), None
        return physics, None
    from selfrecon.physics.noise_estimation import ESTIMATORS

    if noise_cfg.name not in ESTIMATORS:
        raise ConfigError(
            f"physics.noise {noise_cfg.name!r} levels cannot be estimated; give them as numbers"
        )
    noise = estimate_level(cfg, physics, train, noise_cfg.name, noise_cfg.estimator)
    estimate = noise.estimate
    return with_noise(physics, build_noise(noise_cfg.spec(estimate.values))), estimate


def _files_spec(cfg: Config) -> dict:
    """A physics spec for the user's own measurement files (parameters come from files)."""
    op, d = cfg.physics.operator, cfg.data
    if op.files_need is None:
        raise ConfigError(
            f"data.source 'files' does not support operator {op.name!r} (its parameters cannot be "
            "read from a file); simulate with data.source 'builtin' or use a measurement set"
        )
    if "mask_file" in op.files_need and d.mask_file is None:
        raise ConfigError(
            f"data.source 'files' with operator {op.name!r} needs data.mask_file; pass the "
            "mask used at acquisition (.npy, .png, .txt)"
        )
    if "size" in op.files_need and d.size is None:
        raise ConfigError(
            "data.source 'files' with CT needs data.size (the image side N in pixels)"
        )
    shape = (1, d.size, d.size) if "size" in op.files_need else None
    noise = cfg.physics.noise
    return op.physics_spec(noise.spec() if not noise.auto else None, shape)


# -- data ---------------------------------------------------------------------------------------
def _measurement_set(path: str | Path, what: str):
    from selfrecon.data import MeasurementSet

    p = Path(path)
    if not p.exists():
        raise DataError(
            f"{what} {p} does not exist; create it with `selfrecon simulate` or fix the path"
        )
    return MeasurementSet(p)


def _network_channels(physics, dataset: Dataset) -> int:
    item = dataset[0]
    if "x" in item:
        return int(item["x"].shape[0])
    y = item["y"][None]
    p = (
        physics.update(**{k: v[None] for k, v in item["params"].items()})
        if "params" in item
        else physics
    )
    return int(p.A.pinv(y).shape[1])


def build_experiment(cfg: Config) -> Experiment:
    """Physics and train/val/test datasets as the config describes them."""
    if cfg.data.source == "builtin":
        physics, train, val, test, physics_list = _builtin_experiment(cfg)
    else:
        if cfg.loss.method in MULTI_OPERATOR_METHODS:
            raise ConfigError(
                f"loss.method {cfg.loss.method!r} is supported with data.source 'builtin' (it "
                "draws the operators); use mc/ei/rei for measurement sets"
            )
        train, val_p, test_p = _user_data(cfg)
        physics, physics_list = train.physics, None
        val = _measurement_set(val_p, "data.val_path") if val_p else None
        test = _measurement_set(test_p, "data.test_path") if test_p else None
    if cfg.loss.method == "supervised" and "x" not in train[0]:
        raise ConfigError(
            "loss.method 'supervised' needs ground truth x in the training data; use a "
            "self-supervised method (ei, rei, n2s...)"
        )
    estimate = None
    if cfg.physics is not None:
        assumed, estimate = _estimated_physics(cfg, physics, train)
        if assumed is not physics and physics_list is not None:
            physics_list = [with_noise(p, assumed.noise) for p in physics_list]
        physics = assumed
    channels = _network_channels(physics, train)
    return Experiment(cfg, physics, train, val, test, channels, physics_list, estimate)


def _builtin_experiment(cfg: Config) -> tuple:
    """``(physics, train, val, test, physics_list)`` simulated from a built-in dataset."""
    from selfrecon.data import MeasuredDataset, builtin

    d = cfg.data
    images = builtin(d.name, "train", d.size, n=d.train + d.val, channels=d.channels, seed=d.seed)
    if len(images) < d.train + d.val:
        raise ConfigError(
            f"data.name {d.name!r} has {len(images)} training images but data.train + data.val "
            f"= {d.train + d.val}; lower them"
        )
    shape = tuple(images[0].shape)
    physics, params_fn, physics_list = _builtin_physics(cfg, shape)
    full = MeasuredDataset(images, physics, seed=d.seed, params_fn=params_fn)
    train = Subset(full, range(d.train))
    val = Subset(full, range(d.train, d.train + d.val)) if d.val else None
    test = None
    if d.test:
        test_images = builtin(d.name, "test", d.size, n=d.test, channels=d.channels, seed=d.seed)
        test = MeasuredDataset(test_images, physics, seed=d.seed + 1, params_fn=params_fn)
    return physics, train, val, test, physics_list


def _builtin_physics(cfg: Config, shape: tuple) -> tuple:
    """``(physics, params_fn, physics_list)``: the operator, the per-item mask cycle when
    ``physics.operator.masks > 1``, and MOI's operators ``A_g``."""
    physics = physics_of(cfg, shape, simulate=True)
    params_fn, physics_list = None, None
    n_masks = getattr(cfg.physics.operator, "masks", 1)
    if n_masks > 1:  # the measurements cycle through n_masks seeded masks
        variants = [physics_of(cfg, shape, k, simulate=True) for k in range(n_masks)]
        params_fn = _cycling_params(variants)
        physics = variants[0]
    if cfg.loss.method in MULTI_OPERATOR_METHODS:
        count = n_masks if n_masks > 1 else cfg.loss.operators
        physics_list = (
            variants
            if n_masks > 1
            else [physics_of(cfg, shape, k, simulate=True) for k in range(count)]
        )
        _moi_param(physics_list[0])
    return physics, params_fn, physics_list


def _user_data(cfg: Config) -> tuple:
    """``(train set, val path, test path)`` of a measurement set or of the user's files."""
    d = cfg.data
    if d.source == "files":
        from selfrecon.data import assemble

        train = assemble(
            d.files, _files_spec(cfg), mask_file=d.mask_file, angles_file=d.angles_file, key=d.key
        )
        return train, d.val_path, d.test_path
    root = Path(d.path)
    if (root / "train" / "manifest.json").is_file() and not (root / "manifest.json").is_file():
        val_p = d.val_path or (root / "val" if (root / "val").is_dir() else None)
        test_p = d.test_path or (root / "test" if (root / "test").is_dir() else None)
        return _measurement_set(root / "train", "data.path"), val_p, test_p
    return _measurement_set(root, "data.path"), d.val_path, d.test_path


def _cycling_params(variants: list):
    """``params_fn`` of :class:`MeasuredDataset`: item ``i`` is measured with mask ``i mod M``."""
    key = _moi_param(variants[0])
    params = [getattr(p.operator, key) for p in variants]

    def params_fn(i, generator):
        return {key: params[i % len(params)].clone()}

    return params_fn


def _moi_param(physics) -> str:
    cfg = physics.operator.config()
    if "mask" in cfg:
        return "mask"
    raise ConfigError(
        "multi-operator methods (moi, moei, morei) and physics.operator.masks > 1 need an operator "
        "with a random mask (inpainting, mri); "
        f"got {physics.operator.name!r}"
    )


# -- model and loss -----------------------------------------------------------------------------
def model_of(cfg: Config, channels: int) -> nn.Module:
    """The untrained network of ``cfg.model`` (:func:`selfrecon.models.build_model`)."""
    from selfrecon.models import build_model

    return build_model(cfg.model.spec(channels))


def _risk_estimate(cfg: Config) -> str | None:
    """The risk estimate the loss uses (``sure``, ``r2r``, ``unsure``), or ``None``."""
    method = cfg.loss.method
    if method in ("rei", "morei"):
        return cfg.loss.consistency
    return method if method in ("sure", "r2r", "unsure") else None


def inference_model(cfg: Config, model: nn.Module) -> nn.Module:
    """The model used for evaluation/prediction: J-invariant wrapper if ``model.jinvariant``;
    the average over ``loss.recorruptions`` recorrupted inputs after R2R training, over
    ``loss.splits`` measurement splits after SSDU."""
    if cfg.loss.method == "ssdu":
        from selfrecon.losses import SplitAverage

        return SplitAverage(model, cfg.loss.split_ratio, cfg.loss.splits, seed=cfg.train.seed)
    if _risk_estimate(cfg) == "r2r":
        from selfrecon.models import RecorruptedAverage

        return RecorruptedAverage(
            model, cfg.loss.alpha, cfg.loss.recorruptions, seed=cfg.train.seed
        )
    if cfg.model.jinvariant:
        from selfrecon.models.jinvariant import JInvariant

        return JInvariant(model, width=cfg.loss.width, mode=cfg.loss.mode)
    return model


def group_of(cfg: Config):
    """The group of ``cfg.loss.group`` (:func:`selfrecon.groups.build_group`), or ``None``."""
    from selfrecon.groups import build_group

    return build_group(cfg.loss.group) if cfg.loss.group is not None else None


def loss_of(cfg: Config, exp: Experiment) -> nn.Module:
    """The training loss of ``cfg.loss`` (:func:`selfrecon.losses.build_loss`), after checking
    that the method suits the experiment's measurements."""
    from selfrecon import losses as L
    from selfrecon.losses.r2r import R2R_NOISES
    from selfrecon.losses.unsure import UNSURE_NOISES
    from selfrecon.physics import Denoising

    lc = cfg.loss
    method = lc.method
    noise = exp.physics.noise
    noisy = noise is not None
    uses = _risk_estimate(cfg)
    if uses is not None and not noisy:
        raise ConfigError(
            f"loss.method {method!r} uses {uses.upper()}, which needs noisy measurements with a "
            "known noise model; set physics.noise (gaussian sigma, poisson gain...) or use "
            "method ei"
        )
    if uses == "r2r" and noise.name not in R2R_NOISES:
        raise ConfigError(
            f"R2R splits {', '.join(R2R_NOISES)} noise, not {noise.name!r}; use "
            "loss.consistency sure"
        )
    if uses == "unsure" and noise.name not in UNSURE_NOISES:
        raise ConfigError(f"UNSURE learns gaussian/poisson levels, not {noise.name!r} noise")
    y = exp.train[0]["y"]
    if method == "n2n" and not isinstance(exp.physics.operator, Denoising):
        raise ConfigError(
            "loss.method 'n2n' (Neighbor2Neighbor) sub-samples the noisy image, so it needs "
            f"physics.operator denoising, not {exp.physics.operator.name!r}; use rei or sure"
        )
    if method == "n2s" and (y.dim() != 3 or y.is_complex()):
        raise ConfigError(
            "loss.method 'n2s' masks pixels, so measurements must be images (denoising, "
            f"inpainting); these have shape {tuple(y.shape)}. Use rei or sure"
        )

    spec = lc.model_dump(exclude={"operators", "recorruptions", "splits"})
    spec["noisy"] = noisy
    spec["noise_model"] = noise.name if noisy else "gaussian"
    return L.build_loss(spec, physics_list=exp.physics_list)


def run_meta(exp: Experiment, model: nn.Module) -> dict:
    from selfrecon.models import model_spec

    return {"physics": exp.physics.spec(), "model": model_spec(model), "channels": exp.channels}


def load_run(run_dir: str | Path) -> tuple[Config, dict, nn.Module, nn.Module]:
    """``(config, resolved dict, physics, untrained model)`` of a run folder."""
    from selfrecon.cli.config import load_config
    from selfrecon.models import build_model
    from selfrecon.physics import build_physics

    run = Path(run_dir)
    if not run.is_dir():
        raise DataError(f"run folder {run} does not exist; pass the folder `selfrecon train` wrote")
    if not (run / "config.yaml").is_file() or not (run / RUN_META).is_file():
        raise DataError(
            f"{run} is not a selfrecon run folder (no config.yaml/{RUN_META}); pass the folder "
            "`selfrecon train` wrote"
        )
    cfg, resolved = load_config(run / "config.yaml")
    meta = torch.load(run / RUN_META, map_location="cpu", weights_only=True)
    return cfg, resolved, build_physics(meta["physics"]), build_model(meta["model"])

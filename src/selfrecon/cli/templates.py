"""Starter configs: ``selfrecon init TASK`` and the files in ``examples/`` (the same text).

Each task keeps the method, group, weights (α) and τ of the paper it comes from (see
``/work/shared/PAPERS.md``: EI ICCV 2021, REI CVPR 2022, Noise2Self ICML 2019) with image sizes,
dataset sizes and epochs scaled down to run on a laptop CPU; raise them for paper-scale runs.
"""

from __future__ import annotations

__all__ = ["TASKS", "EXAMPLE_FILES", "task_config", "render"]

_COMMON_TRAIN = {
    "batch_size": 8,
    "lr": 1e-3,
    "weight_decay": 1e-8,
    "schedule": "cosine",
    "seed": 0,
    "device": "auto",
    "plot_every": 5,
    "progress": "auto",
}


def _builtin(
    name: str, *, size: int, train: int, val: int, test: int, channels: int | None = None
) -> dict:
    """A ``data`` section on a built-in dataset (keys in the order the templates print them)."""
    head = {"source": "builtin", "name": name, "size": size}
    if channels is not None:
        head["channels"] = channels
    return {**head, "train": train, "val": val, "test": test, "seed": 0}


TASKS: dict[str, dict] = {
    "cs": {
        "title": "EI, compressed sensing 4x on USPS-like 16x16 digits (Chen et al., ICCV 2021)",
        "data": _builtin("usps-like", size=16, train=512, val=32, test=64),
        "physics": {"operator": {"name": "cs", "m": 64, "seed": 0}, "noise": {"name": "none"}},
        # dc projection: the measured component A†y is kept exactly (benchmarks/configs/cs.yaml)
        "model": {
            "name": "unet",
            "width": 16,
            "depth": 3,
            "init": "pinv",
            "dc": "projection",
            "zero_init_last": True,
        },
        "loss": {"method": "ei", "group": "shift", "weight": 10.0, "n_trans": 2},
        "train": {"epochs": 30, "lr": 2e-3, "batch_size": 4},
    },
    "inpainting": {
        "title": "EI, inpainting with 30% of pixels missing (Chen et al., ICCV 2021)",
        "data": _builtin("natural", size=32, train=256, val=16, test=32, channels=1),
        "physics": {
            "operator": {"name": "inpainting", "rate": 0.7, "seed": 0},
            "noise": {"name": "none"},
        },
        # the network refines biharmonic inpainting and keeps the observed pixels exactly: at
        # equal steps it is at the classical method instead of 7 dB under it with A†y as input
        # (benchmarks/RESULTS.md, inpainting)
        "model": {
            "name": "unet",
            "width": 16,
            "depth": 3,
            "init": "biharmonic",
            "dc": "projection",
            "zero_init_last": True,
        },
        "loss": {"method": "ei", "group": "shift", "weight": 1.0, "n_trans": 1},
        "train": {"epochs": 20, "lr": 1e-3},
    },
    "ct": {
        "title": "EI, sparse-view CT with rotations (Chen et al., ICCV 2021)",
        "data": _builtin("ellipses", size=32, train=256, val=16, test=32),
        "physics": {
            "operator": {"name": "tomography", "views": 12, "filter": "ramp"},
            "noise": {"name": "none"},
        },
        "model": {"name": "unet", "width": 16, "depth": 3, "init": "pinv", "zero_init_last": True},
        "loss": {"method": "ei", "group": "rotate", "weight": 100.0, "n_trans": 2},
        "train": {"epochs": 20, "lr": 1e-3, "batch_size": 4},
    },
    "mri": {
        "title": "REI, MRI 4x Cartesian with Gaussian noise (Chen et al., CVPR 2022)",
        "data": _builtin("brain-mri", size=64, train=64, val=8, test=16),
        "physics": {
            "operator": {
                "name": "mri",
                "acceleration": 4.0,
                "center_fraction": 0.08,
                "pattern": "random",
                "seed": 0,
            },
            "noise": {"name": "gaussian", "sigma": 0.05},
        },
        # a learned data-consistency step: +0.5 dB at σ = 0.01, learns w ≈ 0 at σ = 0.1
        # (benchmarks/RESULTS.md, mri)
        "model": {
            "name": "unet",
            "width": 16,
            "depth": 3,
            "init": "pinv",
            "dc": "proximal",
            "zero_init_last": True,
        },
        "loss": {
            "method": "rei",
            "group": "rotate",
            "weight": 1.0,
            "sure_weight": 1.0,
            "consistency": "sure",
            "tau": 0.01,
            "probe_fraction": 1.0,
            "n_trans": 2,
        },
        "train": {"epochs": 20, "lr": 1e-3, "batch_size": 4},
    },
    "inpainting-poisson": {
        "title": "REI, inpainting 30% missing with Poisson noise (Chen et al., CVPR 2022)",
        "data": _builtin("natural", size=32, train=256, val=16, test=32, channels=1),
        "physics": {
            "operator": {"name": "inpainting", "rate": 0.7, "seed": 0},
            "noise": {"name": "poisson", "gain": 0.05},
        },
        "model": {"name": "unet", "width": 16, "depth": 3, "init": "pinv"},
        "loss": {
            "method": "rei",
            "group": "shift",
            "weight": 1.0,
            "sure_weight": 1.0,
            "consistency": "sure",
            "tau": 0.01,
            "probe_fraction": 1.0,
            "n_trans": 3,
        },
        "train": {"epochs": 20, "lr": 5e-4},
    },
    "lowdose-ct": {
        "title": "REI, low-dose CT with Poisson-Gaussian noise (Chen et al., CVPR 2022)",
        "data": _builtin("ellipses", size=32, train=256, val=16, test=32),
        "physics": {
            "operator": {"name": "lowdose_ct", "views": 12, "I0": 1e5, "gain": 1.0, "sigma": 30.0},
            "noise": {"name": "none"},
        },
        "model": {"name": "unet", "width": 16, "depth": 3, "init": "pinv"},
        "loss": {
            "method": "rei",
            "group": "rotate",
            "weight": 1000.0,
            "sure_weight": 1e-5,
            "tau": 10.0,
            "probe_fraction": 1.0,
            "n_trans": 2,
        },
        "train": {"epochs": 20, "lr": 5e-4, "batch_size": 4},
    },
    "denoise": {
        "title": "Noise2Self, denoising digits with Gaussian noise sigma 0.4 (Batson & Royer 2019)",
        "data": _builtin("mnist", size=28, train=512, val=32, test=64),
        "physics": {"operator": {"name": "denoising"}, "noise": {"name": "gaussian", "sigma": 0.4}},
        # not residual: with f(y) = y + G(y) the noisy pixel passes straight through at inference
        # (Noise2Self trains G only on masked inputs, so the skip is never corrected)
        "model": {
            "name": "unet",
            "width": 16,
            "depth": 3,
            "init": "pinv",
            "residual": False,
            "jinvariant": False,
        },
        "loss": {"method": "n2s", "width": 4, "mode": "interpolate"},
        "train": {"epochs": 10, "lr": 1e-3},
    },
    "mri-multi": {
        "title": "MO-EI, MRI 6x Cartesian with a different mask per scan (SSIBench scenario 1)",
        "data": _builtin("brain-mri", size=64, train=64, val=8, test=16),
        "physics": {
            "operator": {
                "name": "mri",
                "acceleration": 6.0,
                "center_fraction": 0.08,
                "pattern": "random",
                "seed": 0,
                "masks": 72,
            },
            "noise": {"name": "none"},
        },
        # benchmarks/RESULTS.md, mri_study and mri_splitting: MO-EI ≥ EI by 0.3 dB here
        "model": {
            "name": "unet",
            "width": 16,
            "depth": 3,
            "init": "pinv",
            "dc": "projection",
            "zero_init_last": True,
        },  # fmt: skip
        "loss": {
            "method": "moei",
            "group": "rotate",
            "weight": 1.0,
            "moi_weight": 1.0,
            "n_trans": 1,
        },  # fmt: skip
        "train": {"epochs": 10, "lr": 2e-3, "batch_size": 4},
    },
    "sr": {
        "title": "Scale-EI, 2x super-resolution of natural images (Scanvic et al., IEEE TCI 2026)",
        "data": _builtin("natural", size=64, train=128, val=8, test=24, channels=1),
        "physics": {
            "operator": {"name": "downsampling", "factor": 2, "kernel": "gaussian"},
            "noise": {"name": "none"},
        },
        # benchmarks/RESULTS.md, sr: +0.35 dB over supervised training at 300 steps, +1.5 over TV
        "model": {"name": "unet", "width": 16, "depth": 3, "init": "pinv", "zero_init_last": True},
        "loss": {
            "method": "ei",
            "group": "scale",
            "weight": 1.0,
            "n_trans": 1,
            "stop_gradient": True,
        },  # fmt: skip
        "train": {"epochs": 10, "lr": 1e-3, "batch_size": 4},
    },
}

EXAMPLE_FILES = {
    "cs": "ei_cs_usps.yaml",
    "inpainting": "ei_inpainting.yaml",
    "ct": "ei_ct.yaml",
    "mri": "rei_mri_4x.yaml",
    "inpainting-poisson": "rei_inpainting_poisson.yaml",
    "lowdose-ct": "rei_lowdose_ct.yaml",
    "denoise": "n2s_denoising.yaml",
    "mri-multi": "moei_mri_per_image_masks.yaml",
    "sr": "ei_super_resolution.yaml",
}

_SECTION_DOC = {
    "data": "where the measurements come from",
    "physics": "how measurements are made: the operator A and the noise model",
    "model": "the reconstruction network f(y) = G(A† y)",
    "loss": "the self-supervised objective (no ground truth needed)",
    "train": "optimisation (see selfrecon.training.TrainConfig)",
    "output": "where the run folder goes",
}

_DOC = {
    ("data", "source"): "builtin (simulated from a built-in dataset) | measurements (a folder from "
    "`selfrecon simulate`: set path) | files (your .npy files: set files, mask_file/angles_file)",
    ("data", "name"): "natural | mnist | usps-like | brain-mri | ellipses | shepp-logan | ct-real",
    ("data", "size"): "image side in pixels",
    ("data", "channels"): "1 grey, 3 RGB (natural only)",
    ("data", "train"): "training images (measurements only are used to train)",
    ("data", "val"): "validation images (picks best.pt; PSNR logged when x is known)",
    ("data", "test"): "held-out test images for `selfrecon eval`",
    ("data", "seed"): "seeds the image draws and the simulated noise",
    ("physics", "operator"): "A",
    ("operator", "name"): "inpainting | cs | mri | multicoil_mri | tomography | lowdose_ct | "
    "denoising | blur | downsampling",
    ("operator", "rate"): "fraction of pixels KEPT (0.7 = 30% missing)",
    ("operator", "m"): "number of measurements (n/m = compression)",
    ("operator", "seed"): "seeds the random mask/matrix (the same seed gives the same A)",
    ("operator", "acceleration"): "keep about W/acceleration k-space lines",
    ("operator", "center_fraction"): "fully sampled low-frequency lines (fraction of W)",
    ("operator", "pattern"): "random | equispaced | gaussian line selection",
    ("operator", "views"): "projection angles, uniform over [0°, 180°)",
    ("operator", "filter"): "FBP filter used as A†: ramp | hann | hamming | cosine | shepp-logan",
    ("operator", "I0"): "incident photons per detector bin",
    ("operator", "gain"): "Poisson gain γ",
    ("operator", "sigma"): "Gaussian read-out noise (counts)",
    ("physics", "noise"): "N",
    ("noise", "name"): "none | gaussian (sigma) | poisson (gain) | poisson_gaussian (gain, sigma) "
    "| gamma (looks) | binomial (trials)",
    ("noise", "sigma"): "standard deviation of the Gaussian noise; auto: estimated from the "
    "measurements (built-in data: simulate with data.noise)",
    ("noise", "gain"): "Poisson gain γ: y = γ·Poisson(Ax/γ); auto: estimated",
    ("model", "name"): "unet | dncnn (backbone G)",
    ("model", "width"): "channels of the first level",
    ("model", "depth"): "resolution levels (UNet) / layers (DnCNN)",
    ("model", "init"): "what G sees: pinv (A†y) | adjoint (Aᵀy) | a classical reconstruction: "
    "biharmonic | tv | wavelet | sart | least_squares (name or {name, parameters})",
    ("model", "dc"): "none | projection: keep noiseless measurements exactly (x + A†(y − Ax)) | "
    "proximal: a learned step w ∈ (0, 1) towards them, for noisy ones",
    ("operator", "masks"): "distinct seeded masks the measurements cycle through (1 = one fixed "
    "mask; MOI/MO-EI use them as their operators)",
    ("operator", "coils"): "receive coils (birdcage sensitivities)",
    ("model", "residual"): "G(x) = x + U(x); false for Noise2Self (else the noisy pixel passes "
    "through)",
    ("model", "zero_init_last"): "zero the last 1×1 conv so training starts at "
    "the input (A†y or the init; not in the EI paper)",
    ("model", "unroll"): "MoDL: unrolled iterations of G and a conjugate-gradient data-consistency "
    "solve (0 = one pass of G)",
    ("model", "lam"): "MoDL's initial λ in (AᴴA + λI) x = Aᴴy + λ G(x) (learned)",
    ("model", "jinvariant"): "J-invariant inference after Noise2Self (w² passes); false = 1 pass",
    (
        "loss",
        "method",
    ): "mc | ei | rei | sure | r2r | unsure | n2s | n2n | ssdu | moi | moei | morei | supervised",
    ("operator", "factor"): "decimation factor (super-resolution ×factor)",
    ("operator", "kernel"): "anti-aliasing kernel: box | gaussian",
    ("loss", "stop_gradient"): "fixed target T_g sg(x̂) in the EI term (scale-EI for SR/deblur)",
    ("loss", "consistency"): "REI's risk estimate: sure | r2r (one pass, the cost of EI) | "
    "unsure (the noise level learned, not given)",
    ("loss", "group"): "shift | rotate90 | flip | rotate | scale | products like rotate90*flip; "
    "`selfrecon identify` says whether it can work",
    ("loss", "weight"): "α, weight of the EI/REI/MOI term",
    ("loss", "n_trans"): "transformed copies per image",
    ("loss", "sure_weight"): "weight of the SURE term (REI)",
    ("loss", "tau"): "SURE finite-difference step τ (measurement units)",
    ("loss", "probe_fraction"): "share of a batch given SURE's probe (unbiased; < 1: cheaper, "
    "noisier)",
    ("loss", "width"): "Noise2Self grid mask width (width² masks)",
    ("loss", "mode"): "interpolate | zero: how masked pixels are filled",
    ("train", "epochs"): "passes over the training set (or set steps: total optimizer steps)",
    ("train", "batch_size"): "global batch (split across processes under torchrun)",
    ("train", "lr"): "Adam learning rate",
    ("train", "weight_decay"): "Adam weight decay",
    ("train", "schedule"): "none | cosine | step",
    ("train", "seed"): "seeds shuffling, groups, probes and weights",
    ("train", "device"): "auto | cpu | cuda | cuda:1",
    ("train", "plot_every"): "epochs between sample panels in plots/ (0 = never)",
    ("train", "progress"): "auto | bar | lines | none",
    ("output", "dir"): "run folder (relative to the current folder); --set output.dir=... ",
    ("output", "overwrite"): "replace an existing run in output.dir",
}


def task_config(task: str) -> dict:
    """The config dict of a task (sections data, physics, model, loss, train, output)."""
    if task not in TASKS:
        from selfrecon.errors import ConfigError

        raise ConfigError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    t = TASKS[task]
    train = {**_COMMON_TRAIN, **t["train"]}
    order = [
        "epochs",
        "batch_size",
        "lr",
        "weight_decay",
        "schedule",
        "seed",
        "device",
        "plot_every",
        "progress",
    ]
    return {
        "data": dict(t["data"]),
        "physics": {
            "operator": dict(t["physics"]["operator"]),
            "noise": dict(t["physics"]["noise"]),
        },
        "model": dict(t["model"]),
        "loss": dict(t["loss"]),
        "train": {k: train[k] for k in order},
        "output": {"dir": f"runs/{task}", "overwrite": False},
    }


def _scalar(v) -> str:
    import yaml

    return yaml.safe_dump(v, default_flow_style=True).strip().removesuffix("...").strip()


def _lines(d: dict, section: str, indent: int) -> list[str]:
    out = []
    pad = "  " * indent
    for k, v in d.items():
        doc = _DOC.get((section, k), "")
        if isinstance(v, dict):
            out.append(f"{pad}{k}:" + (f"  # {doc}" if doc else ""))
            out.extend(_lines(v, k, indent + 1))
        else:
            text = f"{pad}{k}: {_scalar(v)}"
            out.append(text + (f"  # {doc}" if doc else ""))
    return out


def render(task: str) -> str:
    """The commented YAML text of a task's starter config."""
    cfg = task_config(task)
    lines = [
        f"# selfrecon config: {TASKS[task]['title']}",
        "# Sizes are scaled down to run on a CPU; method, group, weights and tau follow the paper.",
        "# Validate:  selfrecon check THIS.yaml     Train:  selfrecon train THIS.yaml",
        "# Override any key:  --set train.epochs=50 --set data.size=64",
        "# Relative data paths are relative to this file's folder.",
        "",
    ]
    for section, body in cfg.items():
        lines.append(f"{section}:  # {_SECTION_DOC[section]}")
        lines.extend(_lines(body, section, 1))
        lines.append("")
    return "\n".join(lines)

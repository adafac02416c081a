"""The YAML experiment config of the ``selfrecon`` command: schema, loading, ``--set`` overrides.

One file per experiment with sections ``data``, ``physics`` (operator + noise), ``model``, ``loss``,
``train`` and ``output``. Every section is a pydantic model with ``extra="forbid"``: an unknown key
or a value of the wrong type is an error that names the key path and the allowed values
(:func:`format_validation_error`). The ``train`` section is generated from
:class:`selfrecon.training.TrainConfig` and the loss methods come from
:data:`selfrecon.losses.build.METHODS`, so the schema never repeats the library; the config
sections translate themselves into the library's spec dicts (``operator_spec``, ``spec``), and
:mod:`selfrecon.cli.build` hands those to the library's builders.

Relative data paths (``data.path``, ``data.files``, ``data.mask_file``...) are relative to the
config file's folder; ``output.dir`` is relative to the current folder.
"""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from selfrecon.errors import ConfigError
from selfrecon.losses.build import METHODS as LOSS_METHODS
from selfrecon.training.config import CLI_SET, TrainConfig

__all__ = [
    "Config",
    "load_config",
    "apply_sets",
    "set_key",
    "parse_set",
    "validate_config",
    "format_validation_error",
    "BUILTIN_NAMES",
    "GROUP_NAMES",
    "METHODS",
]

# kept in sync with selfrecon.data.BUILTIN_NAMES / selfrecon.groups.GROUPS (tested), duplicated so
# that validating a config does not import torch
BUILTIN_NAMES = ("natural", "mnist", "usps-like", "brain-mri", "ellipses", "shepp-logan", "ct-real")
GROUP_NAMES = ("shift", "rotate90", "flip", "rotate", "scale", "dihedral", "d4")
METHODS = tuple(LOSS_METHODS)  # the library's recipes (selfrecon.losses.build_loss)
#: methods whose loss uses loss.group (equivariance terms)
GROUP_METHODS = ("ei", "rei", "moei", "morei")
#: methods that re-measure with several operators (MOI terms)
MULTI_OPERATOR_METHODS = ("moi", "moei", "morei")
# kept in sync with selfrecon.models.solvers.SOLVERS (tested)
SOLVER_NAMES = ("pinv", "adjoint", "least_squares", "tv", "wavelet", "sart", "biharmonic")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- noise --------------------------------------------------------------------------------------
_NOISE_NEEDS = {
    "gaussian": ("sigma",),
    "poisson": ("gain",),
    "poisson_gaussian": ("gain", "sigma"),
    "gamma": ("looks",),
    "binomial": ("trials",),
}
# kept in sync with selfrecon.physics.noise_estimation.ESTIMATORS (tested)
NOISE_ESTIMATORS = ("auto", "blocks", "wavelet", "patch_pca", "pinv", "nlf")


def _level(v, name: str):
    """A noise level: a number ≥ 0 or ``auto`` (one clear message instead of a union's two)."""
    if v is None or v == "auto":
        return v
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0 or v == float("inf"):
        raise ValueError(
            f"noise {name} must be a number ≥ 0 or auto (estimated from the data), got {v!r}; "
            f"fix physics.noise.{name}"
        )
    return float(v)


class NoiseConfig(_Section):
    """The noise model; ``sigma``/``gain`` may be ``auto``: estimated from the training
    measurements (:func:`selfrecon.physics.estimate_noise` with ``estimator``)."""

    name: Literal["none", "gaussian", "poisson", "poisson_gaussian", "gamma", "binomial"] = "none"
    sigma: float | str | None = None
    gain: float | str | None = None
    looks: Annotated[float, Field(gt=0)] | None = None
    trials: Annotated[int, Field(ge=1)] | None = None
    estimator: Literal[NOISE_ESTIMATORS] = "auto"  # type: ignore[valid-type]

    @field_validator("sigma", "gain", mode="before")
    @classmethod
    def _levels(cls, v, info):
        return _level(v, info.field_name)

    @model_validator(mode="after")
    def _params(self):
        needs = _NOISE_NEEDS.get(self.name, ())
        for k in needs:
            if getattr(self, k) is None:
                raise ValueError(f"noise {self.name!r} needs physics.noise.{k}")
        extra = [k for k in ("sigma", "gain", "looks", "trials") if getattr(self, k) is not None]
        extra = [k for k in extra if k not in needs]
        if extra:
            raise ValueError(
                f"noise {self.name!r} takes no {extra[0]}; remove physics.noise.{extra[0]}"
            )
        if self.gain == 0:
            raise ValueError("noise gain must be > 0 (y = gain · Poisson(u / gain)) or auto")
        return self

    @property
    def auto(self) -> tuple[str, ...]:
        """The parameters to estimate from the measurements (``auto``)."""
        return tuple(k for k in ("gain", "sigma") if getattr(self, k) == "auto")

    def spec(self, estimated: dict | None = None) -> dict | None:
        """The library's noise spec (:func:`selfrecon.physics.build_noise`); ``None``: noiseless.
        ``auto`` parameters take their values from ``estimated``."""
        if self.name == "none":
            return None
        params = {}
        for k in _NOISE_NEEDS[self.name]:
            v = getattr(self, k)
            if v == "auto":
                if estimated is None or k not in estimated:
                    raise ConfigError(f"physics.noise.{k} is auto but was not estimated")
                v = estimated[k]
            params[k] = v
        return {"name": self.name, **params}


# -- data ---------------------------------------------------------------------------------------
class DataConfig(_Section):
    source: Literal["builtin", "measurements", "files"] = "builtin"
    # builtin
    name: Literal[BUILTIN_NAMES] | None = None  # type: ignore[valid-type]
    size: Annotated[int, Field(ge=8)] | None = None
    channels: Literal[1, 3] = 1
    train: Annotated[int, Field(ge=1)] = 64
    val: Annotated[int, Field(ge=0)] = 8
    test: Annotated[int, Field(ge=0)] = 16
    seed: int = 0
    # measurements (a measurement set folder from `selfrecon simulate` or assemble)
    path: str | None = None
    val_path: str | None = None
    test_path: str | None = None
    # files (the user's own measurement files + the operator's parameters)
    files: str | None = None
    mask_file: str | None = None
    angles_file: str | None = None
    key: str = "kspace"
    # the noise the built-in data are simulated with (default: physics.noise)
    noise: NoiseConfig | None = None

    @model_validator(mode="after")
    def _needs(self):
        need = {"builtin": "name", "measurements": "path", "files": "files"}[self.source]
        if getattr(self, need) is None:
            extra = f"; choose one of {', '.join(BUILTIN_NAMES)}" if need == "name" else ""
            raise ValueError(f"data.source is {self.source!r} so data.{need} is required{extra}")
        if self.noise is not None and self.source != "builtin":
            raise ValueError(
                "data.noise is the noise built-in data are simulated with; measured data have "
                "their own: remove data.noise and describe it in physics.noise"
            )
        if self.noise is not None and self.noise.auto:
            raise ValueError(
                "data.noise simulates the data, so its levels must be numbers, not auto"
            )
        return self


# -- physics ------------------------------------------------------------------------------------
def _variant_seed(seed: int, variant: int) -> int:
    """Seed of the ``variant``-th random operator (MOI's ``A_g``, the cycled masks)."""
    return int(seed) + 7919 * int(variant)


class _OperatorSection(_Section):
    """An operator section translates itself into the library's spec dicts
    (:func:`selfrecon.physics.build_physics`): the CLI holds no per-operator code."""

    #: what ``data.source: files`` needs for this operator's parameters (``data.*`` entries);
    #: ``None``: its parameters cannot be read from files
    files_need: ClassVar[tuple[str, ...] | None] = ()

    def operator_spec(self, shape: tuple[int, int, int] | None, variant: int = 0) -> dict:
        """The operator spec for images ``(C, H, W)``; ``shape=None`` for files mode, where the
        parameters come from the user's files (:func:`selfrecon.data.assemble`)."""
        raise NotImplementedError

    def physics_spec(
        self, noise: dict | None, shape: tuple[int, int, int] | None, variant: int = 0
    ) -> dict:
        return {"kind": "linear", "operator": self.operator_spec(shape, variant), "noise": noise}


class InpaintingOp(_OperatorSection):
    name: Literal["inpainting"]
    rate: Annotated[float, Field(gt=0, le=1)] = 0.7
    seed: int = 0
    masks: Annotated[int, Field(ge=1)] = 1
    files_need: ClassVar[tuple[str, ...] | None] = ("mask_file",)

    def operator_spec(self, shape, variant=0):
        if shape is None:
            return {"name": "inpainting"}
        return {
            "name": "inpainting",
            "rate": self.rate,
            "img_shape": [1, *shape[1:]],  # one mask shared by the colour channels
            "seed": _variant_seed(self.seed, variant),
        }


class CSOp(_OperatorSection):
    name: Literal["cs"]
    m: Annotated[int, Field(ge=1)] = 64
    seed: int = 0
    files_need: ClassVar[tuple[str, ...] | None] = None

    def operator_spec(self, shape, variant=0):
        return {
            "name": "cs",
            "m": self.m,
            "img_shape": list(shape),
            "seed": _variant_seed(self.seed, variant),
        }


class MRIOp(_OperatorSection):
    name: Literal["mri"]
    acceleration: Annotated[float, Field(ge=1)] = 4.0
    center_fraction: Annotated[float, Field(ge=0, le=1)] = 0.08
    pattern: Literal["random", "equispaced", "gaussian"] = "random"
    seed: int = 0
    masks: Annotated[int, Field(ge=1)] = 1
    files_need: ClassVar[tuple[str, ...] | None] = ("mask_file",)

    def operator_spec(self, shape, variant=0):
        if shape is None:
            return {"name": self.name}
        return {
            "name": self.name,
            "img_shape": list(shape[1:]),
            "acceleration": self.acceleration,
            "center_fraction": self.center_fraction,
            "pattern": self.pattern,
            "seed": _variant_seed(self.seed, variant),
        }


class MultiCoilMRIOp(MRIOp):
    name: Literal["multicoil_mri"]
    coils: Annotated[int, Field(ge=1)] = 4
    files_need: ClassVar[tuple[str, ...] | None] = None

    def operator_spec(self, shape, variant=0):
        return {**super().operator_spec(shape, variant), "coils": self.coils}


def _square(shape: tuple[int, int, int]) -> int:
    if shape[1] != shape[2]:
        raise ConfigError(
            f"CT needs square images; data.size gives {shape[1]}×{shape[2]}; set data.size=N"
        )
    return int(shape[1])


class _TomographySection(_OperatorSection):
    """Parallel-beam CT sections: ``views`` angles over 180°, FBP ``filter``; square images."""

    name: str  # narrowed by each section (declared here so it stays the first key)
    views: Annotated[int, Field(ge=1)] = 50
    filter: Literal["ramp", "hann", "hamming", "cosine", "shepp-logan"] = "ramp"
    files_need: ClassVar[tuple[str, ...] | None] = ("size",)

    def operator_spec(self, shape, variant=0):
        return {
            "name": "tomography",
            "angles": self.views,
            "img_size": _square(shape),
            "filter": self.filter,
        }


class CTOp(_TomographySection):
    name: Literal["tomography", "ct"]
    circle: bool = False

    def operator_spec(self, shape, variant=0):
        return {**super().operator_spec(shape, variant), "circle": self.circle}


class LowDoseCTOp(_TomographySection):
    name: Literal["lowdose_ct"]
    I0: Annotated[float, Field(gt=0)] = 1e5  # noqa: N815 - the physics name
    gain: Annotated[float, Field(gt=0)] = 1.0
    sigma: Annotated[float, Field(ge=0)] = 30.0
    mu: Annotated[float, Field(gt=0)] | None = None

    def physics_spec(self, noise, shape, variant=0):
        return {
            "kind": "lowdose_ct",
            "operator": self.operator_spec(shape, variant),
            "noise": {"name": "poisson_gaussian", "gain": self.gain, "sigma": self.sigma},
            "I0": self.I0,
            "mu": self.mu,
        }


class DenoisingOp(_OperatorSection):
    name: Literal["denoising"]

    def operator_spec(self, shape, variant=0):
        return {"name": "denoising"}


class BlurOp(_OperatorSection):
    """Deblurring: a Gaussian kernel (``sigma`` px) or a motion one (``length``, ``angle``)."""

    name: Literal["blur"]
    kernel: Literal["gaussian", "motion"] = "gaussian"
    sigma: Annotated[float, Field(gt=0)] = 1.0
    length: Annotated[float, Field(gt=0)] = 5.0
    angle: float = 0.0
    files_need: ClassVar[tuple[str, ...] | None] = None

    def operator_spec(self, shape, variant=0):
        from selfrecon.physics.blur import gaussian_kernel, motion_kernel

        k = (
            gaussian_kernel(self.sigma)
            if self.kernel == "gaussian"
            else motion_kernel(self.length, self.angle)
        )
        return {"name": "blur", "kernel": k, "img_shape": list(shape)}


class DownsamplingOp(_OperatorSection):
    """Super-resolution: anti-aliased decimation by ``factor`` (box or Gaussian kernel)."""

    name: Literal["downsampling"]
    factor: Annotated[int, Field(ge=2)] = 2
    kernel: Literal["box", "gaussian"] = "gaussian"
    files_need: ClassVar[tuple[str, ...] | None] = None

    def operator_spec(self, shape, variant=0):
        return {
            "name": "downsampling",
            "factor": self.factor,
            "kernel": self.kernel,
            "img_shape": list(shape),
        }


Operator = Annotated[
    Union[  # noqa: UP007
        InpaintingOp,
        CSOp,
        MRIOp,
        MultiCoilMRIOp,
        CTOp,
        LowDoseCTOp,
        DenoisingOp,
        BlurOp,
        DownsamplingOp,
    ],
    Field(discriminator="name"),
]
OPERATOR_NAMES = (
    "inpainting",
    "cs",
    "mri",
    "multicoil_mri",
    "tomography",
    "ct",
    "lowdose_ct",
    "denoising",
    "blur",
    "downsampling",
)


class PhysicsConfig(_Section):
    operator: Operator
    noise: NoiseConfig = NoiseConfig()

    @field_validator("noise", mode="before")
    @classmethod
    def _none(cls, v):
        return {"name": "none"} if v in (None, "none") else v

    @model_validator(mode="after")
    def _lowdose(self):
        if self.operator.name == "lowdose_ct" and self.noise.name != "none":
            raise ValueError(
                "lowdose_ct has its own Poisson-Gaussian noise (gain, sigma in "
                "physics.operator); set physics.noise to none"
            )
        return self


# -- model, loss, train, output -----------------------------------------------------------------
class ModelConfig(_Section):
    name: Literal["unet", "dncnn"] = "unet"
    width: Annotated[int, Field(ge=1)] = 32
    depth: Annotated[int, Field(ge=1)] = 3
    residual: bool = True
    norm: Literal["batch", "none"] = "batch"
    init: str | dict = "pinv"
    dc: Literal["none", "projection", "proximal"] = "none"
    jinvariant: bool = False
    zero_init_last: bool = False
    # MoDL: unrolled iterations of backbone + conjugate-gradient data consistency (0: one pass)
    unroll: Annotated[int, Field(ge=0)] = 0
    lam: Annotated[float, Field(gt=0)] = 0.05

    @model_validator(mode="after")
    def _unrolled(self):
        if self.unroll and self.dc != "none":
            raise ValueError(
                "model.unroll (MoDL) has its own data-consistency step, a conjugate-gradient "
                "solve; set model.dc to none"
            )
        if self.unroll and self.jinvariant:
            raise ValueError("model.unroll (MoDL) is not J-invariant; set model.jinvariant false")
        return self

    @field_validator("init")
    @classmethod
    def _init(cls, v):
        name = v if isinstance(v, str) else v.get("name")
        if name not in SOLVER_NAMES:
            raise ValueError(
                f"model.init: unknown initial reconstruction {name!r}; choose one of "
                f"{', '.join(SOLVER_NAMES)} (a name, or a dict with name and parameters)"
            )
        return v

    def spec(self, channels: int) -> dict:
        """The library's model spec (:func:`selfrecon.models.build_model`):
        ``ArtifactRemoval(backbone)``, ``f(y) = G(x₀(y))``, for networks of ``channels``."""
        if self.name == "unet":
            backbone = {
                "name": "unet",
                "in_channels": channels,
                "depth": self.depth,
                "width": self.width,
                "residual": self.residual,
                "norm": self.norm,
                "zero_init_last": self.zero_init_last,
            }
        else:  # DnCNN needs a first and a last layer
            backbone = {
                "name": "dncnn",
                "channels": channels,
                "depth": max(self.depth, 2),
                "width": self.width,
                "residual": self.residual,
                "norm": self.norm,
            }
        if self.unroll:
            return {
                "name": "modl",
                "backbone": backbone,
                "iterations": self.unroll,
                "lam": self.lam,
                "init": self.init,
            }
        return {"name": "artifact_removal", "backbone": backbone, "init": self.init, "dc": self.dc}


def _check_group(spec: Any, where: str = "loss.group") -> None:
    """Raise a one-line ``ValueError`` for a group spec naming no library group."""
    if spec is None:
        return
    if isinstance(spec, str):
        for part in spec.split("*"):
            _check_group_name(part.strip().lower(), part.strip(), where, product_hint=True)
    elif isinstance(spec, dict):
        if spec.get("name") == "product":
            for f in spec.get("factors", []):
                _check_group(f, where)
        else:
            _check_group_name(spec.get("name"), spec.get("name"), where, product_hint=False)
    elif isinstance(spec, list):
        for s in spec:
            _check_group(s, where)
    else:
        raise ValueError(f"{where} must be a group name, a dict or a list; got {spec!r}")


def _check_group_name(name, shown, where: str, product_hint: bool) -> None:
    """Raise when ``name`` is not a registered group (the message shows ``shown``)."""
    if name not in GROUP_NAMES:
        hint = " or a product like 'rotate90*flip'" if product_hint else ""
        raise ValueError(
            f"{where}: unknown group {shown!r}; choose one of {', '.join(GROUP_NAMES)}{hint}"
        )


class LossConfig(_Section):
    method: Literal[METHODS] = "ei"  # type: ignore[valid-type]
    group: str | dict | list | None = "shift"
    weight: Annotated[float, Field(ge=0)] = 1.0
    n_trans: Annotated[int, Field(ge=1)] = 1
    mc_weight: Annotated[float, Field(ge=0)] = 1.0
    sure_weight: Annotated[float, Field(ge=0)] = 1.0
    tau: Annotated[float, Field(gt=0)] = 1e-2
    probe_fraction: Annotated[float, Field(gt=0, le=1)] = 1.0
    width: Annotated[int, Field(ge=2)] = 4
    mode: Literal["interpolate", "zero"] = "interpolate"
    operators: Annotated[int, Field(ge=2)] = 4
    moi_weight: Annotated[float, Field(ge=0)] = 1.0
    # rei: the risk estimate (sure; r2r: GR2R, one pass; unsure: the level learned)
    consistency: Literal["sure", "r2r", "unsure"] = "sure"
    alpha: Annotated[float, Field(gt=0)] = 0.5
    recorruptions: Annotated[int, Field(ge=1)] = 8  # R2R test-time average
    sigma_init: Annotated[float, Field(gt=0)] = 0.1
    gain_init: Annotated[float, Field(gt=0)] = 0.1
    unsure_lr: Annotated[float, Field(gt=0)] = 0.02
    gamma: Annotated[float, Field(ge=0)] = 2.0  # Neighbor2Neighbor's regulariser weight
    split_ratio: Annotated[float, Field(gt=0, lt=1)] = 0.4  # SSDU: held-out share ρ
    stop_gradient: bool = False  # EI: a fixed target T_g sg(x̂) (scale-EI, Scanvic et al.)
    splits: Annotated[int, Field(ge=1)] = 8  # SSDU test-time average

    @field_validator("group")
    @classmethod
    def _group(cls, v):
        _check_group(v)
        return v

    @model_validator(mode="after")
    def _needs_group(self):
        if self.method in GROUP_METHODS and self.group is None:
            raise ValueError(
                f"loss.method {self.method!r} needs loss.group; e.g. shift, rotate, rotate90*flip"
            )
        return self


def _train_section() -> type[BaseModel]:
    """The ``train`` section, generated from :class:`selfrecon.training.TrainConfig` (its
    annotations carry the choices and bounds, its defaults are the defaults): one schema, so the
    config file and the library can never disagree."""
    hints = typing.get_type_hints(TrainConfig, include_extras=True)
    fields = {
        f.name: (hints[f.name], f.default)
        for f in dataclasses.fields(TrainConfig)
        if f.name not in CLI_SET
    }
    return create_model("TrainSection", __base__=_Section, **fields)


TrainSection = _train_section()


class OutputConfig(_Section):
    dir: str = "runs/run"
    overwrite: bool = False


# -- benchmark section (selfrecon bench; ignored by the other commands) --------------------------
class BenchSetting(_Section):
    name: str
    set: dict[str, Any] = {}
    recommended: str | None = None  # the recommended row here (default: bench.recommended)
    main: list[str] | None = None  # rows trained with every seed here (default: bench.main)


class BenchRow(_Section):
    """A learned row (``set``: overrides of the experiment's config, e.g. ``loss.method: mc``) or a
    classical one (``classical``: a solver or baseline name/spec), optionally with a ``grid`` of
    values tried on the validation split (dotted config keys for learned rows, the solver's
    parameters for classical ones)."""

    name: str
    set: dict[str, Any] = {}
    classical: str | dict | None = None
    grid: dict[str, list[Any]] = {}
    settings: list[str] | None = None  # run only in these settings (default: all)


class BenchTarget(_Section):
    """``row − ref`` (mean PSNR gap, dB) must be ≥ ``min_gap`` and, if given, ≤ ``max_gap``.
    ``ref: best_classical`` is the best classical row of the setting."""

    row: str
    ref: str
    min_gap: float | None = None
    max_gap: float | None = None
    settings: list[str] | None = None
    claim: str = ""


class BenchExtraTest(_Section):
    name: str
    n: Annotated[int, Field(ge=1)] = 1


class BenchSection(_Section):
    title: str
    claim: str = ""
    seeds: list[int] = [0, 1, 2]
    main: list[str] = []
    recommended: str | None = None
    settings: list[BenchSetting] = [BenchSetting(name="")]
    rows: list[BenchRow]
    targets: list[BenchTarget] = []
    extra_test: list[BenchExtraTest] = []
    quick: dict[str, Any] = {}
    gpu: dict[str, Any] = {}
    notes: str = ""

    @model_validator(mode="after")
    def _names(self):
        names = [r.name for r in self.rows]
        if len(set(names)) != len(names):
            raise ValueError(f"bench.rows: row names must be unique, got {names}")
        self._check_refs(names)
        settings = [s.name for s in self.settings]
        for item in [*self.rows, *self.targets]:
            for st in item.settings or []:
                if st not in settings:
                    raise ValueError(f"bench: unknown setting {st!r}; settings are {settings}")
        for r in self.rows:
            if r.classical is not None and r.set:
                raise ValueError(f"bench row {r.name!r}: a classical row takes no 'set'")
        return self

    def _check_refs(self, names: list[str]) -> None:
        """Every main/recommended row and every target's rows name a row of the table."""
        recs = [r for r in [self.recommended, *(s.recommended for s in self.settings)] if r]
        mains = [m for s in self.settings for m in (s.main or [])]
        for ref in [*self.main, *mains, *recs]:
            if ref not in names:
                raise ValueError(f"bench: {ref!r} is not a row name; rows are {names}")
        for t in self.targets:
            for ref in (t.row, t.ref):
                if ref not in names and ref != "best_classical":
                    raise ValueError(f"bench.targets: {ref!r} is not a row name; rows: {names}")


class Config(_Section):
    data: DataConfig
    physics: PhysicsConfig | None = None
    model: ModelConfig = ModelConfig()
    loss: LossConfig = LossConfig()
    train: TrainSection = TrainSection()
    output: OutputConfig = OutputConfig()
    bench: BenchSection | None = None  # read by `selfrecon bench` only

    @model_validator(mode="after")
    def _consistent(self):
        if self.loss.method == "n2s" and "residual" not in self.model.model_fields_set:
            # Noise2Self trains on masked inputs only; a skip connection y + G(y) would pass the
            # noisy pixel straight through at inference, so n2s defaults to a non-residual net
            self.model.residual = False
        if self.data.source == "measurements" and self.physics is not None:
            raise ValueError(
                "data.source is 'measurements': the physics comes from the measurement set's "
                "manifest; remove the physics section"
            )
        if self.data.source != "measurements" and self.physics is None:
            raise ValueError(
                f"data.source is {self.data.source!r} so a physics section is required "
                "(physics.operator.name: one of " + ", ".join(OPERATOR_NAMES) + ")"
            )
        auto = self.physics.noise.auto if self.physics is not None else ()
        if auto and self.data.source == "builtin" and self.data.noise is None:
            raise ValueError(
                f"physics.noise.{auto[0]} is auto, but built-in data are simulated: give the "
                "noise they are simulated with as data.noise (e.g. {name: gaussian, sigma: 0.1})"
            )
        return self


# -- loading ------------------------------------------------------------------------------------
def parse_set(item: str) -> tuple[list[str], Any]:
    """``"a.b=value"`` → (["a", "b"], YAML-parsed value)."""
    import yaml

    key, sep, raw = item.partition("=")
    keys = key.strip().split(".")
    if not sep or not key.strip() or any(not k.strip() for k in keys):
        raise ConfigError(f"bad --set {item!r}; write --set section.key=value, e.g. train.lr=1e-4")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return [k.strip() for k in keys], value


def set_key(raw: dict, keys: list[str], value: Any, item: str | None = None) -> dict:
    """Set ``raw[k0][k1]…[kn] = value``, creating missing sections (in place; returns ``raw``)."""
    node = raw
    for i, k in enumerate(keys[:-1]):
        nxt = node.get(k)
        if nxt is None:
            nxt = node[k] = {}
        if not isinstance(nxt, dict):
            where = ".".join(keys[: i + 1])
            shown = item if item is not None else ".".join(keys)
            raise ConfigError(
                f"bad --set {shown!r}: {where} is a value, not a section; set {where}=... directly"
            )
        node = nxt
    node[keys[-1]] = value
    return raw


def apply_sets(raw: dict, sets: list[str] | None) -> dict:
    """Apply ``--set`` overrides to a raw config dict (in place; returns it)."""
    for item in sets or []:
        keys, value = parse_set(item)
        set_key(raw, keys, value, item)
    return raw


def _section_type(annotation, loc, part):
    """The BaseModel class behind an annotation (Optional / discriminated unions resolved)."""
    import typing

    args = typing.get_args(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) is Annotated:
        return _section_type(args[0], loc, part)
    models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
    if len(models) == 1:
        return models[0]
    if models:  # operator union: pick by the next loc item (the tag) later
        return _TagUnion(models)
    return None


class _TagUnion:
    def __init__(self, models):
        self.models = models


def _allowed(loc: tuple) -> list[str] | None:
    model: Any = Config
    parts = list(loc)
    while parts:
        part = str(parts.pop(0))
        if isinstance(model, _TagUnion):
            match = [
                m
                for m in model.models
                if part in _literal_values(m.model_fields["name"].annotation)
            ]
            if not match:
                return None
            model = match[0]
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None
        field = model.model_fields.get(part)
        if field is None:
            return None
        model = _section_type(field.annotation, loc, part)
    if isinstance(model, _TagUnion):
        return None
    if isinstance(model, type) and issubclass(model, BaseModel):
        return list(model.model_fields)
    return None


def _literal_values(annotation) -> tuple:
    import typing

    return typing.get_args(annotation)


def format_validation_error(err: ValidationError) -> str:
    """The first error as one line: the key path, what is wrong, the allowed values."""
    e = err.errors()[0]
    loc = tuple(e.get("loc", ()))
    op_tags = set(OPERATOR_NAMES)
    # drop discriminator tags from the printed path (physics.operator.mri.m → physics.operator.m)
    shown = [
        str(p)
        for i, p in enumerate(loc)
        if not (i > 0 and loc[i - 1] == "operator" and p in op_tags)
    ]
    path = ".".join(shown)
    kind = e.get("type", "")
    msg = str(e.get("msg", "invalid value"))
    if msg.startswith("Value error, "):
        return msg[len("Value error, ") :]
    if kind == "extra_forbidden":
        allowed = _allowed(loc[:-1])
        hint = f"allowed keys: {', '.join(allowed)}" if allowed else "remove it"
        return f"unknown key {path}; {hint}"
    if kind == "missing":
        return f"missing key {path}; add it to the config"
    if kind == "union_tag_invalid":
        tag = (e.get("ctx") or {}).get("tag")
        return f"{path}.name: unknown operator {tag!r}; choose one of {', '.join(OPERATOR_NAMES)}"
    if kind == "union_tag_not_found":
        return f"{path} needs a name; choose one of {', '.join(OPERATOR_NAMES)}"
    value = e.get("input")
    got = f" (got {value!r})" if not isinstance(value, dict | list) else ""
    return f"{path}: {msg}{got}; fix {path} in the config (or --set {path}=...)"


def validate_config(raw: Any, source: str = "config") -> Config:
    """Validate a raw dict into a :class:`Config`; errors become one-line :class:`ConfigError`."""
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{source} must be a YAML mapping with sections data, physics, model, loss, train, "
            "output; start from `selfrecon init TASK`"
        )
    try:
        return Config.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(f"{source}: {format_validation_error(err)}") from None


def read_yaml(path: str | Path) -> dict:
    import yaml

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {p} does not exist; create one with `selfrecon init TASK`")
    try:
        raw = yaml.safe_load(p.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"{p}:{where}: invalid YAML ({problem}); fix the syntax") from None
    return raw if raw is not None else {}


def resolve_paths(cfg: Config, base: Path) -> Config:
    """Make data paths absolute, relative to the config file's folder ``base``."""
    d = cfg.data
    for k in ("path", "val_path", "test_path", "files", "mask_file", "angles_file"):
        v = getattr(d, k)
        if v is not None and not Path(v).expanduser().is_absolute():
            setattr(d, k, str((base / v).resolve()))
        elif v is not None:
            setattr(d, k, str(Path(v).expanduser()))
    return cfg


def load_config(path: str | Path, sets: list[str] | None = None) -> tuple[Config, dict]:
    """Read, override, validate and resolve a config file. Returns ``(config, resolved dict)``."""
    raw = read_yaml(path)
    if isinstance(raw, dict):
        apply_sets(raw, sets)
    cfg = validate_config(raw, str(path))
    resolve_paths(cfg, Path(path).resolve().parent)
    return cfg, cfg.model_dump(mode="json")

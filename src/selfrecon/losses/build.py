r"""``build_loss(spec)``: every training method of the library from one plain dict.

``spec["method"]`` names the recipe; the other keys are its settings (all optional)::

    mc          MCLoss(mc_weight)
    ei          MCLoss(mc_weight) + EILoss(group, weight, n_trans, stop_gradient)  (Chen 2021)
    rei         REILoss(group, weight, n_trans, sure_weight, tau, tau2, probe_fraction,
                consistency, alpha, noise_model, sigma_init, gain_init, unsure_lr)  (2022)
    sure        SURE(tau, tau2, sure_weight, probe_fraction)
    r2r         R2RLoss(alpha, sure_weight)                    (Pang 2021; Monroy et al. 2025)
    unsure      UNSURE(noise_model, sigma_init, gain_init, unsure_lr, sure_weight, probe_fraction)
                                                               (Tachella et al. 2025)
    n2s         Noise2SelfLoss(width, mode, weight)                           (Batson & Royer 2019)
    n2n         Neighbor2NeighborLoss(gamma, weight)                          (Huang et al. 2021)
    ssdu        SplittingLoss(split_ratio, weight)                            (Yaman et al. 2020)
    moi         MCLoss(mc_weight) + MOILoss(physics_list, weight, noisy)      (Tachella et al. 2022)
    moei        MCLoss(mc_weight) + MOILoss(physics_list, moi_weight) + EILoss(group, weight,
                n_trans)                                                      (SSIBench's MO-EI)
    morei       REILoss(...) + MOILoss(physics_list, moi_weight, noisy=True)   (robust MO-EI)
    supervised  SupervisedLoss(weight)

The multi-operator recipes take the operators as ``physics_list=`` (objects, not spec values).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from selfrecon.errors import ConfigError
from selfrecon.losses.base import Loss
from selfrecon.losses.ei import EILoss, MOILoss, REILoss
from selfrecon.losses.mc import MCLoss, SupervisedLoss
from selfrecon.losses.neighbor2neighbor import Neighbor2NeighborLoss
from selfrecon.losses.noise2self import Noise2SelfLoss
from selfrecon.losses.r2r import R2RLoss
from selfrecon.losses.splitting import SplittingLoss
from selfrecon.losses.sure import SURE
from selfrecon.losses.unsure import UNSURE

__all__ = ["build_loss", "METHODS", "DEFAULTS"]

#: settings a recipe reads when the spec does not give them
DEFAULTS: dict[str, object] = {
    "group": "shift",
    "weight": 1.0,
    "mc_weight": 1.0,
    "moi_weight": 1.0,
    "n_trans": 1,
    "sure_weight": 1.0,
    "tau": 1e-2,
    "tau2": None,
    "probe_fraction": 1.0,
    "width": 4,
    "mode": "interpolate",
    "noisy": False,
    "consistency": "sure",
    "alpha": 0.5,
    "noise_model": "gaussian",
    "sigma_init": 0.1,
    "gain_init": 0.1,
    "unsure_lr": 0.02,
    "gamma": 2.0,
    "split_ratio": 0.4,
    "stop_gradient": False,
}


def _rei(s: dict, ops) -> Loss:
    return REILoss(
        s["group"],
        s["weight"],
        s["n_trans"],
        s["sure_weight"],
        s["tau"],
        s["tau2"],
        probe_fraction=s["probe_fraction"],
        consistency=s["consistency"],
        alpha=s["alpha"],
        noise_model=s["noise_model"],
        sigma_init=s["sigma_init"],
        gain_init=s["gain_init"],
        unsure_lr=s["unsure_lr"],
    )


def _unsure(s: dict, ops) -> Loss:
    return UNSURE(
        s["noise_model"],
        s["sigma_init"],
        s["gain_init"],
        s["unsure_lr"],
        weight=s["sure_weight"],
        probe_fraction=s["probe_fraction"],
    )


def _operators(ops, method: str):
    if not ops:
        raise ConfigError(
            f"loss method {method!r} needs the measurement operators (physics_list=[...]; "
            "CLI: physics.masks > 1 or a measurement set with per-image masks)"
        )
    return ops


METHODS: dict[str, Callable[[dict, Sequence | None], Loss]] = {
    "mc": lambda s, ops: MCLoss(s["mc_weight"]),
    "ei": lambda s, ops: (
        MCLoss(s["mc_weight"])
        + EILoss(s["group"], s["weight"], s["n_trans"], stop_gradient=s["stop_gradient"])
    ),
    "rei": _rei,
    "sure": lambda s, ops: SURE(s["tau"], s["tau2"], s["sure_weight"], s["probe_fraction"]),
    "r2r": lambda s, ops: R2RLoss(s["alpha"], s["sure_weight"]),
    "unsure": _unsure,
    "ssdu": lambda s, ops: SplittingLoss(s["split_ratio"], s["weight"]),
    "n2n": lambda s, ops: Neighbor2NeighborLoss(s["gamma"], s["weight"]),
    "n2s": lambda s, ops: Noise2SelfLoss(s["width"], s["mode"], s["weight"]),
    "moi": lambda s, ops: (
        MCLoss(s["mc_weight"]) + MOILoss(_operators(ops, "moi"), s["weight"], noisy=s["noisy"])
    ),
    "moei": lambda s, ops: (
        MCLoss(s["mc_weight"])
        + MOILoss(_operators(ops, "moei"), s["moi_weight"])
        + EILoss(s["group"], s["weight"], s["n_trans"])
    ),
    "morei": lambda s, ops: (
        _rei(s, ops) + MOILoss(_operators(ops, "morei"), s["moi_weight"], noisy=True)
    ),
    "supervised": lambda s, ops: SupervisedLoss(s["weight"]),
}


def build_loss(spec: dict | str, physics_list: Sequence | None = None) -> Loss:
    """The loss of ``spec`` (``{"method": "ei", "group": "rotate", ...}`` or just ``"ei"``)."""
    spec = {"method": spec} if isinstance(spec, str) else dict(spec)
    method = spec.pop("method", None)
    if method not in METHODS:
        raise ConfigError(f"unknown loss method {method!r}; choose one of {sorted(METHODS)}")
    unknown = set(spec) - set(DEFAULTS)
    if unknown:
        raise ConfigError(
            f"loss method {method!r} got unknown setting(s) {sorted(unknown)}; allowed: "
            f"{sorted(DEFAULTS)}"
        )
    settings = {**DEFAULTS, **{k: v for k, v in spec.items() if v is not None}}
    return METHODS[method](settings, physics_list)

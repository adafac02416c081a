r"""``MeasuredDataset``: images turned into fixed simulated measurements ``{"y", "x"}``."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from torch.utils.data import Dataset

from selfrecon.data._util import item_generator
from selfrecon.errors import DataError

__all__ = ["MeasuredDataset", "as_image", "measure_item"]


def as_image(item) -> Tensor:
    """The image in a dataset item: a tensor, ``item["x"]``/``item["image"]``, or ``item[0]``."""
    if isinstance(item, dict):
        for k in ("x", "image"):
            if k in item:
                item = item[k]
                break
        else:
            raise DataError(
                f"dataset items are dicts without an 'x' or 'image' key (keys: {sorted(item)})"
            )
    elif isinstance(item, tuple | list):
        item = item[0]
    t = torch.as_tensor(item)
    if t.dim() == 2:
        t = t[None]
    if t.dim() != 3:
        raise DataError(f"dataset items must be images (C, H, W); got shape {tuple(t.shape)}")
    return t.float()


@torch.no_grad()
def measure_item(
    physics,
    image: Tensor,
    seed: int,
    index: int,
    params: dict[str, Tensor] | None = None,
) -> tuple[Tensor, Tensor]:
    """One measurement: ``x = physics.prepare_image(image)``, ``y = physics.measure(x, g)``.

    ``g`` is a generator seeded by ``(seed, index)`` only, so the result does not depend on which
    other items were simulated before (order-independent, identical in :func:`simulate` and
    :class:`MeasuredDataset`). ``params`` (per-item operator parameters, each with a leading batch
    axis of 1) are applied with ``physics.update`` first. Returns ``(y, x)`` without batch axis.
    """
    x = physics.prepare_image(image[None])
    p = physics.update(**params) if params else physics
    y = p.measure(x, item_generator(seed, 1_000_003, index))
    return y[0], x[0]


class MeasuredDataset(Dataset):
    r"""Wrap an image dataset: item ``i`` = ``{"y": N(A x_i), "x": x_i}`` in network layout.

    The measurement is simulated **once** per item (then cached in memory), with noise drawn from a
    generator seeded by ``(seed, i)``: ``y`` is fixed across epochs, as in the EI/REI papers, where
    the noisy measurements are the data set. The same ``seed`` gives the same ``y`` whatever the
    access order.

    Parameters
    ----------
    images : Dataset
        Items are ``(C, H, W)`` images (or dicts with ``"x"``, or tuples whose first entry is one).
    physics : Physics
    seed : int
    params_fn : callable, optional
        ``params_fn(i, generator) -> {name: tensor with leading axis 1}``: per-item operator
        parameters (e.g. a fresh mask per measurement); returned under ``item["params"]`` without
        the batch axis, so the default collate stacks them into per-sample ``(B, ...)`` parameters.
    """

    def __init__(
        self,
        images: Dataset,
        physics,
        seed: int = 0,
        params_fn: Callable[[int, torch.Generator], dict[str, Tensor]] | None = None,
    ):
        self.images, self.physics, self.seed = images, physics, int(seed)
        self.params_fn = params_fn
        self._cache: dict[int, dict] = {}
        self.names = getattr(images, "names", None)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict:
        i = int(index)
        if i < 0:
            i += len(self)
        if i not in self._cache:
            params = None
            if self.params_fn is not None:
                params = self.params_fn(i, item_generator(self.seed, 2_000_003, i))
            y, x = measure_item(self.physics, as_image(self.images[i]), self.seed, i, params)
            item = {"y": y, "x": x}
            if params:
                item["params"] = {k: v[0] for k, v in params.items()}
            self._cache[i] = item
        item = self._cache[i]
        out = {"y": item["y"], "x": item["x"]}
        if "params" in item:
            out["params"] = dict(item["params"])
        return out

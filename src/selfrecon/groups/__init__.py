"""Symmetries of the image set: transformations ``T_g``, their sampling, inverses and products.

``Shift``, ``Rotate90`` and ``Flip`` permute pixels (``exact = True``); ``Rotate`` and ``Scale``
interpolate. ``G1 * G2`` is a product group (``Rotate90() * Flip()`` is the dihedral group);
``build_group("rotate90*flip")`` builds one from a config string or dict.
"""

from selfrecon.groups.base import GROUPS, Group, ProductGroup, build_group, register_group
from selfrecon.groups.exact import Flip, Rotate90, Shift
from selfrecon.groups.geometric import Rotate, Scale

__all__ = [
    "GROUPS",
    "Flip",
    "Group",
    "ProductGroup",
    "Rotate",
    "Rotate90",
    "Scale",
    "Shift",
    "build_group",
    "register_group",
]

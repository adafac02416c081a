"""The one class-decorator registry used by operators, physics and groups."""

from __future__ import annotations

from collections.abc import Callable


def registrar(table: dict, attr: str = "name") -> Callable[[str], Callable[[type], type]]:
    """``register = registrar(TABLE)``; then ``@register("x")`` stores the class as ``TABLE["x"]``
    and sets its ``attr`` to ``"x"``, so it can be built from a spec ``{"name": "x", ...}``."""

    def register(name: str) -> Callable[[type], type]:
        def deco(cls: type) -> type:
            setattr(cls, attr, name)
            table[name] = cls
            return cls

        return deco

    return register

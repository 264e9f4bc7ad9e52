"""The registry of criteria: every module of this package registers one criterion by name.

Adding a criterion means adding a module here that decorates its :class:`Criterion` subclass with
:func:`register`; the modules are discovered on import, so neither the compiler nor the engine
changes (Pomerium's one-file-per-criterion layout).
"""

from __future__ import annotations

import importlib
import pkgutil

from gateway.policy.criteria.base import Criterion

REGISTRY: dict[str, type[Criterion]] = {}

# Keys of a condition block that are logic, not criteria.
RESERVED = frozenset({"and", "or", "not"})


def register(cls: type[Criterion]) -> type[Criterion]:
    name = cls.name
    if name in RESERVED or name in REGISTRY:
        raise RuntimeError(f"criterion name {name!r} is reserved or already registered")
    REGISTRY[name] = cls
    return cls


def _discover() -> None:
    for module in pkgutil.iter_modules(__path__):
        if module.name != "base" and not module.name.startswith("_"):
            importlib.import_module(f"{__name__}.{module.name}")


_discover()

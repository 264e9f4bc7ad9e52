"""Field paths parsed once per process, not once per record (the response filter is on the hot path).

Catalogue and rule paths are a small closed set, so an LRU cache keyed by the path text is enough;
``Endpoint``/``Resource`` hold dicts and are not hashable, so the text is the key.
"""

from __future__ import annotations

import functools

from gateway import fieldpath
from gateway.errors import ObligationUnenforceable


@functools.lru_cache(maxsize=1024)
def compiled(text: str) -> fieldpath.Path:
    """``fieldpath.parse`` cached; a bad path makes the obligation unenforceable (fail closed)."""
    try:
        return fieldpath.parse(text)
    except fieldpath.FieldPathError as exc:
        raise ObligationUnenforceable(detail=str(exc)) from None


def has_list_step(path: fieldpath.Path) -> bool:
    return any(walk for _, walk in path)

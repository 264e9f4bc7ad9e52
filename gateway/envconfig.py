"""Environment overrides for gateway.yaml: the same file everywhere, the differences in the environment.

A container image ships one gateway.yaml; each deployment changes only what differs (the CRM's URL,
the Redis URL, the port) through variables, twelve-factor style:

    CRMGW_UPSTREAM__URL=http://crm:8081        -> upstream.url
    CRMGW_LISTEN__PORT=8080                    -> listen.port        (JSON value: the int 8080)
    CRMGW_REDIS_URL=redis://redis:6379/0       -> redis_url          (single "_" stays in the key)
    CRMGW_TRUSTED_PROXIES='["10.0.0.5/32"]'    -> trusted_proxies    (JSON list)
    CRMGW_LIMITS__MAX_CONNECTIONS=2000         -> limits.max_connections

``__`` separates nesting levels; key names are lower-cased. A value is parsed as JSON when it is valid
JSON (numbers, booleans, lists, objects, quoted strings) and used as a plain string otherwise, so
``CRMGW_UPSTREAM__URL=http://crm`` needs no quoting. The overrides are applied to the parsed file
*before* validation, so a bad value is reported by the same strict validation as the file itself
(unknown keys included: ``CRMGW_UPSTRAEM__URL`` is an error, not silently ignored).

Fail closed on ambiguity: a variable that would descend into a non-mapping value (``CRMGW_LISTEN__PORT__X``
when ``listen.port`` is a number) raises ``EnvOverrideError`` rather than guessing.
"""

from __future__ import annotations

import copy
import json
from typing import Any, Mapping

PREFIX = "CRMGW_"
# Variables under the prefix that configure something else than gateway.yaml (never applied).
RESERVED = frozenset({"CRMGW_TEST_REDIS_URL", "CRMGW_TEST_REDIS_PORT", "CRMGW_CONFIG"})


class EnvOverrideError(ValueError):
    """An override that cannot be applied; ``str()`` names the variable."""


def parse_value(raw: str) -> Any:
    """JSON when it parses as JSON, else the string itself."""
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def env_overrides(environ: Mapping[str, str]) -> list[tuple[str, tuple[str, ...], Any]]:
    """The overrides found in ``environ``: (variable, key path, value), in a stable order."""
    found = []
    for name in sorted(environ):
        if not name.startswith(PREFIX) or name in RESERVED:
            continue
        rest = name[len(PREFIX):]
        parts = tuple(p.lower() for p in rest.split("__"))
        if not rest or any(not p for p in parts):
            raise EnvOverrideError(f"{name}: empty key segment (use '__' between nested keys)")
        found.append((name, parts, parse_value(environ[name])))
    return found


def apply_env(data: dict, environ: Mapping[str, str]) -> dict:
    """A copy of the settings mapping ``data`` with every ``CRMGW_*`` override applied.

    Shorter paths are applied first, so ``CRMGW_LISTEN='{"port": 1}'`` plus ``CRMGW_LISTEN__HOST=x``
    gives ``{"port": 1, "host": "x"}`` whatever the variables' order.
    """
    out = copy.deepcopy(data)
    for name, path, value in sorted(env_overrides(environ), key=lambda o: (len(o[1]), o[1])):
        node = out
        for depth, key in enumerate(path[:-1]):
            child = node.get(key)
            if child is None:
                child = node[key] = {}
            elif not isinstance(child, dict):
                where = ".".join(path[: depth + 1])
                raise EnvOverrideError(f"{name}: {where} is not a mapping, cannot set {'.'.join(path)}")
            node = child
        node[path[-1]] = value
    return out

"""The environment's part of the settings: overrides of declared keys, and secrets by declared name.

A container image ships one gateway.yaml; each deployment changes only what differs (the CRM's URL,
the Redis URL, the port) through variables, twelve-factor style. Two kinds of variable, never mixed:

**Overrides** name a key the settings model declares, ``CRMGW_`` + the key path in capitals with
``__`` between nesting levels (the model decides, so a ``_`` inside a key is never a guess):

    CRMGW_UPSTREAM__URL=http://crm:8081        -> upstream.url
    CRMGW_LISTEN__PORT=8080                    -> listen.port        (JSON value: the int 8080)
    CRMGW_REDIS_URL=redis://redis:6379/0       -> redis_url
    CRMGW_TRUSTED_PROXIES='["10.0.0.5/32"]'    -> trusted_proxies    (JSON list)
    CRMGW_LIMITS__MAX_CONNECTIONS=2000         -> limits.max_connections

A value is parsed as JSON when it is valid JSON (numbers, booleans, lists, objects, quoted strings)
and used as a plain string otherwise, so ``CRMGW_UPSTREAM__URL=http://crm`` needs no quoting. The
overrides are applied to the parsed file before validation; a value the validation refuses is
reported under the variable's name, not a line of the file (``gateway.settings.load_settings``).

**Secrets** are read only from the variables the settings name in their ``*_env`` keys
(``identity.jwt.secret_env``, ``console.session_secret_env``, ``mask_key_env``,
``alerts.webhook.headers_env``, ``upstream.credential.value_env``, ...). They are never overrides, so
``CRMGW_CONSOLE_SECRET`` or ``CRMGW_JWT_SECRET`` is just a value waiting to be read.

Any other ``CRMGW_*`` variable (a misspelt override, a secret no setting names) is reported as a
warning naming it and otherwise ignored: the gateway starts, and the operator sees what was not used.

Why not pydantic-settings: its ``BaseSettings`` reads the environment wherever a ``Settings`` is
built (the demo, the tests, ``crmgw init``), ignores unknown prefixed variables silently and reports
a bad value under the field's name. Here the same pydantic model supplies the declared keys (the one
thing pydantic-settings would add), and the three behaviours above stay explicit.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel

PREFIX = "CRMGW_"
# Variables under the prefix that configure something else than gateway.yaml's keys.
RESERVED = frozenset({"CRMGW_CONFIG"})
RESERVED_PREFIXES = ("CRMGW_TEST_",)  # the test harness's (./run test)

# One override: (variable, the key path it sets, its parsed value).
Override = tuple[str, tuple[str, ...], Any]


class EnvOverrideError(ValueError):
    """An override that cannot be applied; ``str()`` names the variable."""


@dataclasses.dataclass(frozen=True)
class EnvError:
    """A settings problem caused by an environment variable: printed as ``VARIABLE: message``."""

    variable: str
    message: str

    def __str__(self) -> str:
        return f"{self.variable}: {self.message}"


def parse_value(raw: str) -> Any:
    """JSON when it parses as JSON, else the string itself."""
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def variable(path: tuple[str, ...]) -> str:
    """The variable that overrides a key path: ('listen', 'port') -> CRMGW_LISTEN__PORT."""
    return PREFIX + "__".join(p.upper() for p in path)


def _models(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models inside a field's annotation (``X``, ``X | None``); not inside lists/dicts."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [m for arg in typing.get_args(annotation) for m in _models(arg)]
    return []


def declared_keys(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> dict[str, tuple[str, ...]]:
    """Every override variable the model declares -> its key path (sections and their keys)."""
    out: dict[str, tuple[str, ...]] = {}
    for name, field in model.model_fields.items():
        if field.exclude:  # computed, not read from the file (base_dir)
            continue
        path = prefix + (name,)
        out[variable(path)] = path
        for sub in _models(field.annotation):
            out.update(declared_keys(sub, path))
    return out


def split_environ(environ: Mapping[str, str], model: type[BaseModel]) -> tuple[list[Override], list[str]]:
    """(overrides [(variable, key path, value)], other CRMGW_* variable names), in a stable order."""
    declared = declared_keys(model)
    overrides: list[Override] = []
    others: list[str] = []
    for name in sorted(environ):
        if not name.startswith(PREFIX) or name in RESERVED or name.startswith(RESERVED_PREFIXES):
            continue
        if name in declared:
            overrides.append((name, declared[name], parse_value(environ[name])))
        else:
            others.append(name)
    return overrides, others


def apply_overrides(
    data: dict[str, Any], overrides: Iterable[Override]
) -> tuple[dict[str, Any], dict[tuple[str, ...], str]]:
    """A copy of ``data`` with the overrides applied, and which variable set which key path.

    Shorter paths are applied first, so ``CRMGW_LISTEN='{"port": 1}'`` plus ``CRMGW_LISTEN__HOST=x``
    gives ``{"port": 1, "host": "x"}`` whatever the variables' order.
    """
    out = copy.deepcopy(data)
    origins: dict[tuple[str, ...], str] = {}
    for name, path, value in sorted(overrides, key=lambda o: (len(o[1]), o[1])):
        node = out
        for depth, key in enumerate(path[:-1]):
            child = node.get(key)
            if child is None:
                child = node[key] = {}
            elif not isinstance(child, dict):
                where = ".".join(path[: depth + 1])
                setter = origins.get(path[: depth + 1])
                by = f" (set by {setter})" if setter else ""
                raise EnvOverrideError(f"{name}: {where} is not a mapping{by}, cannot set {'.'.join(path)}")
            node = child
        node[path[-1]] = value
        origins[path] = name
    return out, origins


def apply_env(data: dict[str, Any], environ: Mapping[str, str], model: type[BaseModel]) -> dict[str, Any]:
    """``data`` with the environment's overrides of ``model``'s declared keys applied."""
    return apply_overrides(data, split_environ(environ, model)[0])[0]


def origin_of(loc: tuple[str | int, ...], origins: Mapping[tuple[str, ...], str]) -> str | None:
    """The variable that set the value at a validation error's location (or one of its parents)."""
    parts = tuple(str(p) for p in loc)
    for n in range(len(parts), 0, -1):
        if parts[:n] in origins:
            return origins[parts[:n]]
    return None


def secret_names(settings: BaseModel) -> dict[str, str]:
    """Every environment variable the validated settings name in a ``*_env`` key -> that key's path.

    Templates (``user_credentials.from_env: CRM_TOKEN_{USER}``) name a family, not one variable,
    and are left out.
    """
    out: dict[str, str] = {}

    def walk(node: Any, path: str) -> None:
        if isinstance(node, BaseModel):
            for name in type(node).model_fields:
                value = getattr(node, name)
                where = f"{path}.{name}" if path else name
                if name.endswith("_env"):
                    names = value.items() if isinstance(value, dict) else [(None, value)]
                    for key, var in names:
                        if isinstance(var, str) and var and "{" not in var:
                            out.setdefault(var, where + (f".{key}" if key else ""))
                else:
                    walk(value, where)
        elif isinstance(node, (list, tuple)):
            for i, item in enumerate(node):
                walk(item, f"{path}[{i}]")

    walk(settings, "")
    return out

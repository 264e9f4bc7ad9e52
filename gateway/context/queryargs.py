"""Query parameters a restricted caller may send: only those the endpoint declares, within bounds.

``?include=users``, ``?expand=owner``, ``?fields=*`` or an undocumented ``?owner=anyone`` can make
a CRM answer with more than the catalogue describes, or filter on the CRM's side in ways the rules
never saw. For a caller whose scope is not ``all`` (or who has masks) every parameter must be
declared in the endpoint's ``query`` with a type and bounds; anything else is 400
``query-parameter-undeclared`` / ``query-parameter-invalid`` before the CRM is asked.
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway.declared import QueryParam
from gateway.errors import BadRequest

_BOOLS = ("true", "false", "1", "0")


def check_query(declared: Mapping[str, QueryParam] | None, query: Mapping[str, str]) -> None:
    for name, value in query.items():
        param = (declared or {}).get(name)
        if param is None:
            raise BadRequest("query-parameter-undeclared", detail=f"{name[:60]!r}")
        problem = _problem(param, value)
        if problem:
            raise BadRequest("query-parameter-invalid", detail=f"{name}: {problem}")


def _problem(param: QueryParam, value: str) -> str | None:
    if len(value) > param.max_length:
        return f"longer than {param.max_length} characters"
    if param.type == "int":
        digits = value[1:] if value.startswith("-") else value
        if not (digits.isascii() and digits.isdigit()) or len(digits) > 18:
            return "not an integer"
        number = int(value)
        if param.min is not None and number < param.min:
            return f"{number} < {param.min}"
        if param.max is not None and number > param.max:
            return f"{number} > {param.max}"
    elif param.type == "bool" and value.lower() not in _BOOLS:
        return "not true/false"
    elif param.type == "enum" and value not in param.values:
        return "not one of the declared values"
    return None

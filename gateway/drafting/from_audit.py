"""What the catalogue misses, from the audit log: ``operation-unknown`` requests grouped as templates.

Every request a running gateway refused because no catalogue entry matched it has an audit line
(gateway/audit/events.py) with its ``method``, normalised ``path`` and ``reason:
operation-unknown``. Grouped by template, they show an admin what clients actually call::

    GET /api/v2/leads/5f0c...e1/notes/  x 41   ->  GET /api/v2/leads/{lead_id:uuid}/notes/   41
    GET /api/v2/leads/7b21...9a/notes/  x 3

A segment that looks like an id becomes a parameter: a UUID ``{x:uuid}``, digits ``{x:int}``, a
hex or ULID id (or anything that cannot be a literal) ``{x}``. Every entry's operation is a TODO
carrying the count and a guess from the path: the log says a request was made, not what it does
or whether it should be allowed at all (a scanner's ``/wp-login.php`` shows up here too).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from gateway.context.todos import todo
from gateway.drafting import naming
from gateway.drafting.render import catalogue_text

_LITERAL = re.compile(r"^[A-Za-z0-9\-._~!$&'()*+,=:@]+$")  # what a template literal may be
_CATALOGUE_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
_EXAMPLES = 3


@dataclasses.dataclass
class Group:
    method: str
    template: str
    count: int = 0
    users: set[str] = dataclasses.field(default_factory=set)
    first: str = ""
    last: str = ""
    examples: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Tally:
    lines: int = 0
    unreadable: int = 0  # not a JSON object
    unknown: int = 0  # operation-unknown requests
    skipped: int = 0  # operation-unknown, but no catalogue method or no usable path


def template_of(path: str) -> str | None:
    """The catalogue template a normalised path falls under; None if it cannot be one."""
    path = path.split("?", 1)[0]
    if not path.startswith("/"):
        return None
    if path == "/":
        return path
    segments = path[1:].split("/")
    trailing = len(segments) > 1 and segments[-1] == ""
    if trailing:
        segments = segments[:-1]
    if any(s == "" for s in segments) and segments != [""]:
        return None  # '//' never reaches here normalised; refuse to guess
    kinds = [naming.segment_kind(s) if _LITERAL.match(s) and s not in (".", "..") else "any" for s in segments]
    out, used = [], set()
    for i, (segment, kind) in enumerate(zip(segments, kinds)):
        if kind is None:
            out.append(segment)
            continue
        # The item a path ends on is {id}; one further up names its collection: {lead_id}.
        name = "id" if i == len(segments) - 1 else _param_name(segments, kinds, i)
        while name in used:
            name += "_"
        used.add(name)
        out.append("{" + name + {"uuid": ":uuid", "int": ":int"}.get(kind, "") + "}")
    return "/" + "/".join(out) + ("/" if trailing else "")


def _param_name(segments: list[str], kinds: list[str | None], i: int) -> str:
    before = segments[i - 1] if i > 0 and kinds[i - 1] is None else None
    return f"{naming.singular(naming.resource_name(before))}_id" if before else f"p{i}"


def group_unknown(lines: Iterable[str]) -> tuple[list[Group], Tally]:
    groups: dict[tuple[str, str], Group] = {}
    tally = Tally()
    for line in lines:
        if not line.strip():
            continue
        tally.lines += 1
        try:
            record = json.loads(line)
        except ValueError:
            tally.unreadable += 1
            continue
        if not isinstance(record, dict):
            tally.unreadable += 1
            continue
        if record.get("reason") != "operation-unknown":
            continue
        tally.unknown += 1
        method = str(record.get("method") or "").upper()
        method = "GET" if method == "HEAD" else method  # HEAD is decided as GET
        template = template_of(str(record.get("path") or ""))
        if method not in _CATALOGUE_METHODS or template is None:
            tally.skipped += 1
            continue
        group = groups.setdefault((method, template), Group(method, template))
        group.count += 1
        if record.get("user"):
            group.users.add(str(record["user"]))
        when = str(record.get("time") or "")
        group.first = min(group.first, when) if group.first else when
        group.last = max(group.last, when)
        path = str(record.get("path"))
        if len(group.examples) < _EXAMPLES and path not in group.examples:
            group.examples.append(path)
    return sorted(groups.values(), key=lambda g: (-g.count, g.template, g.method)), tally


def _guess(method: str, template: str) -> str | None:
    shape = naming.shape(re.sub(r"\{(\w+):\w+\}", r"{\1}", template))
    if not shape.collection:
        return None
    action = "admin" if shape.admin else naming.word_action(shape) or naming.method_action(method, shape)
    return f"{'admin' if shape.admin else shape.collection}.{action}" if action else None


def entry(group: Group) -> tuple[list[str], dict[str, Any]]:
    guess = _guess(group.method, group.template)
    users = sorted(group.users)
    who = f"{len(users)} user(s): {', '.join(users[:5])}{', ...' if len(users) > 5 else ''}" if users else "no user"
    comments = [
        f"{group.count} request(s), {who}; {group.first} .. {group.last}",
        *(f"  e.g. {group.method} {example}" for example in group.examples),
    ]
    data: dict[str, Any] = {
        "method": group.method,
        "path": group.template,
        "operation": todo(
            f"seen {group.count} time(s) as operation-unknown; "
            + (f"from the path: {guess}?" if guess else "no guess from the path")
        ),
        "records": todo(
            "no schema in an audit log: where are the records in the answer (records: [] when it holds none)?"
        ),
    }
    if guess and guess.rsplit(".", 1)[1] in ("update", "delete"):
        data["lookup"] = todo("the GET template of the catalogue that reads the record before it changes")
    return comments, data


def draft_from_audit(path: Path, min_count: int = 1) -> str:
    with Path(path).open(encoding="utf-8", errors="replace") as f:
        groups, tally = group_unknown(f)
    shown = [g for g in groups if g.count >= min_count]
    header = [
        f"Requests refused as operation-unknown in {path}, by `crmgw catalogue draft --audit-log`.",
        f"{tally.lines} audit line(s), {tally.unknown} operation-unknown, {len(groups)} template(s)"
        + (
            f", {len(groups) - len(shown)} seen fewer than {min_count} time(s) left out"
            if len(shown) < len(groups)
            else ""
        )
        + (f"; {tally.unreadable} line(s) not JSON" if tally.unreadable else "")
        + (f"; {tally.skipped} request(s) with no catalogue method or usable path" if tally.skipped else "")
        + ".",
        'Copy the entries the CRM really serves into operations.yaml, decide each "TODO: <reason>" value',
        "(`crmgw rules check` refuses the catalogue while one is left) and leave out what no client should call.",
    ]
    return catalogue_text(header, {}, [entry(g) for g in shown])

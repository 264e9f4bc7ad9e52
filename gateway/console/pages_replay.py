"""The rules page's draft replay: the gateway's own audit log re-decided with a draft rules folder.

The same diff as ``crmgw rules replay`` (gateway.replay: current rules vs draft, both re-decided;
the recorded decision is only flagged), for a folder on the gateway's server named in the form's
``draft`` field. Only console users (the configured analyst/admin roles) reach it, like every page.

Bounded like every audit page: the records of the last ``history_days``, newest first, at most
``audit_scan_bytes`` read and at most :data:`MAX_REPLAYED` requests re-decided (each is decided
twice); the page says when a bound stopped it. The work runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiohttp import web

from gateway.answers import error_response, request_id_of
from gateway.audit.search import AuditQuery, search
from gateway.console.routes import Console
from gateway.console.session import Viewer
from gateway.errors import BadRequest
from gateway.replay import Replayer
from gateway.ruleset import load_ruleset

MAX_REPLAYED = 20_000
MAX_PATH = 1024
MAX_ERRORS = 20


@dataclasses.dataclass
class DraftDiff:
    draft: str = ""
    report: dict[str, Any] | None = None
    error: str = ""
    errors: list[str] = dataclasses.field(default_factory=list)  # the draft's problems, file:line:col


def _run(console: Console, root: Path) -> DraftDiff:
    diff = DraftDiff(draft=str(root))
    draft, errors = load_ruleset(root)
    if draft is None:
        diff.error = f"the draft rules in {root} do not load ({len(errors)} problem(s))"
        diff.errors = [str(e) for e in errors[:MAX_ERRORS]]
        return diff
    current = console.services.store.current
    replayer = Replayer(current, draft, current_dir="rules in force", draft_dir=str(root))

    def keep(record: dict[str, Any]) -> bool:
        replayer.feed(record)
        return replayer.lines >= MAX_REPLAYED  # True ends the search (limit=1)

    since = console.services.clock() - timedelta(days=console.config.history_days)
    found = search(
        console.audit_path, AuditQuery(since=since), limit=1, max_bytes=console.config.audit_scan_bytes, keep=keep
    )
    replayer.truncated = found.truncated or replayer.lines >= MAX_REPLAYED
    report = replayer.report()
    report["bad_lines"] = found.bad_lines
    report["scanned_bytes"] = found.scanned_bytes
    report["since"] = since.isoformat()
    diff.report = report
    return diff


async def draft_diff(console: Console, request: web.Request) -> DraftDiff | None:
    """The diff for the ``draft`` query parameter; None when the form was not used."""
    value = (request.query.get("draft") or "").strip()
    if not value:
        return None
    if len(value) > MAX_PATH or "\0" in value or not value.startswith("/"):
        return DraftDiff(
            draft=value[:MAX_PATH], error="name the draft rules folder by its absolute path on the gateway's server"
        )
    root = Path(value)
    if not root.is_dir():  # noqa: ASYNC240 (one stat of an admin-typed path)
        return DraftDiff(draft=value, error=f"no folder {value} on the gateway's server")
    return await asyncio.to_thread(_run, console, root)


async def replay_api(console: Console, request: web.Request, viewer: Viewer) -> web.Response:
    """``GET {console}/api/rules/replay?draft=/path``: the report as JSON (400 when it cannot run)."""
    diff = await draft_diff(console, request)
    if diff is None:
        raise ValueError("give draft=/absolute/path/of/a/rules/folder")
    if diff.error:  # the gateway's one error body, plus the draft's problems for its author
        return error_response(request_id_of(request), BadRequest(diff.error, payload={"problems": diff.errors}))
    return console.json(diff.report)


def register(console: Console, router: web.UrlDispatcher) -> None:
    router.add_get(console.base + "/api/rules/replay", console.api(replay_api))

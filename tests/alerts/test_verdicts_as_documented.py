"""Verdicts beyond the console, run exactly as the README shows them: the ``crmgw alerts`` lines
with ``--verdict`` (through crmgw's own parser) and the ``curl`` calls of the alerts API (their
headers, bodies, paths and the answer the comment promises), on a real store, Redis and gateway
authentication. IDs in the README are replaced by real alert ids, nothing else.
"""

from __future__ import annotations

import asyncio
import json
import re
import shlex

import pytest

from gateway.alerts.model import VERDICT_STATUS
from gateway.cli import build_parser
from tests.alerts.conftest import raise_kwargs
from tests.conftest import REPO
from tests.integration.conftest import auth

README = (REPO / "README.md").read_text()
PLACEHOLDER = re.compile(r"\bID\d?\b")


def documented_cli() -> list[str]:
    lines = []
    for block in re.findall(r"```sh\n(.*?)```", README, re.S):
        for line in block.splitlines():
            if line.startswith("crmgw alerts") and "--verdict" in line:
                lines.append(line.split("   #", 1)[0].strip())
    return lines


def documented_curl() -> list[tuple[dict[str, str], dict, str, str]]:
    """(headers, JSON body, path, the comment after it) of each curl call on the alerts API."""
    calls = []
    for block in re.findall(r"```sh\n(.*?)```", README, re.S):
        for call in re.findall(r"curl -X POST (.*?)\n(?=curl|\Z)", block + "\n", re.S):
            if "/_gw/api/alerts" not in call:
                continue
            headers = dict(h.split(": ", 1) for h in re.findall(r"-H [\"']([^\"']+)[\"']", call))
            body = json.loads(re.search(r"-d '(\{.*?\})'", call).group(1))
            url, _, comment = call.split("http://", 1)[1].partition("#")
            calls.append((headers, body, "/" + url.split("/", 1)[1].strip(), comment.strip()))
    return calls


def test_the_readme_documents_single_and_bulk_verdicts_for_the_cli_and_the_api():
    cli = documented_cli()
    assert any(len(PLACEHOLDER.findall(c)) > 1 for c in cli) and any(len(PLACEHOLDER.findall(c)) == 1 for c in cli)
    paths = [path for _, _, path, _ in documented_curl()]
    assert "/_gw/api/alerts/ID/verdict" in paths and "/_gw/api/alerts/bulk" in paths


@pytest.mark.slow  # a store per command line, each in its own event loop
@pytest.mark.parametrize("line", documented_cli())
async def test_a_documented_verdict_command_does_what_it_says(line, make_store, redis_url, tmp_path):
    store = await make_store(redis_url)
    names = PLACEHOLDER.findall(line)
    ids = {name: await store.raise_alert(**raise_kwargs(user=f"u{i}")) for i, name in enumerate(names)}
    argv = [ids.get(token, token) for token in shlex.split(line)[1:]]
    argv += ["--journal", str(tmp_path / "cli.jsonl"), "--redis-url", redis_url, "--actor", "heidi"]
    args = build_parser().parse_args(argv)
    assert await asyncio.to_thread(args.func, args) == 0
    for alert_id in ids.values():
        alert = await store.get(alert_id)
        assert (alert.verdict, alert.determination) == (args.verdict, args.determination)
        assert alert.status == VERDICT_STATUS[args.verdict]
        assert alert.notes[-1].text == args.note and alert.notes[-1].actor == "heidi"
        assert [h.actor for h in alert.history if h.action == "verdict"] == ["heidi"]


@pytest.mark.parametrize("call", documented_curl(), ids=lambda c: c[2])
async def test_a_documented_api_call_does_what_it_says(call, console_api):
    headers, body, path, comment = call
    store = console_api.store
    ids = {"ID": await store.raise_alert(**raise_kwargs()), "ID1": await store.raise_alert(**raise_kwargs(user="u1"))}
    ids["ID2"] = "01UNKNOWN"  # the comment's refusal: an id the store does not know
    token = auth("heidi")["Authorization"].removeprefix("Bearer ")
    sent = {k: v.replace("$HEIDI", token) for k, v in headers.items()}
    if "ids" in body:
        body = {**body, "ids": [ids[i] for i in body["ids"]]}
    resp = await console_api.post(PLACEHOLDER.sub(lambda m: ids[m.group()], path), data=json.dumps(body), headers=sent)
    assert resp.status == 200, await resp.text()
    answer = await resp.json()
    if comment:  # the answer the README promises, with the real ids
        assert answer == json.loads(PLACEHOLDER.sub(lambda m: ids[m.group()], comment))
    changed = [ids["ID"]] if "ids" not in body else answer["done"]
    for alert_id in changed:
        alert = await store.get(alert_id)
        assert (alert.verdict, alert.determination) == (body["verdict"], body.get("determination"))
        assert alert.status == VERDICT_STATUS[body["verdict"]] and alert.history[-1].actor == "heidi"

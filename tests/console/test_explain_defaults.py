"""The console's explain form and ``crmgw explain`` share their defaults and give the same decision."""

from __future__ import annotations

import html
import json
import re
from urllib.parse import urlencode

import pytest

from gateway.cli import main
from gateway.explain import DEFAULT_IP, DEFAULT_METHOD
from tests.conftest import RULES
from tests.integration.conftest import auth

HEIDI = auth("heidi")
VERDICT = re.compile(r'<p class="verdict">.*?effect-(\w+).*?reason <code>([^<]+)</code> · rules ([^\n<]*)', re.S)


async def console_says(console, **fields) -> tuple[str, str, list[str]]:
    page = await console.get("/_gw/console/rules?" + urlencode(fields), headers=HEIDI)
    text = await page.text()
    assert page.status == 200, text
    effect, reason, rules = VERDICT.search(text).groups()
    rules = html.unescape(rules).strip()
    return effect, reason, [] if rules == "-" else rules.split(", ")


def cli_says(capsys, **fields) -> tuple[str, str, list[str]]:
    argv = ["explain", "--rules", str(RULES), "--json"]
    for name, value in fields.items():
        argv += [f"--{name}", value]
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    return data["effect"], data["reason"], data["rules"]


CASES = [
    # only what both require, and the time: the address and the method are the shared defaults
    {"user": "alice", "path": "/api/customers/1", "at": "2026-03-03T10:00:00+01:00"},
    {"user": "alice", "path": "/api/customers/1", "at": "2026-03-02T18:30:00+01:00"},
    {"user": "frank", "path": "/api/deals/1", "at": "2026-03-03T10:00:00+01:00"},
    {"user": "grace", "path": "/api/admin/users", "at": "2026-03-03T10:00:00+01:00"},
    # given explicitly, including an empty (unknown) address
    {"user": "alice", "path": "/api/customers/7", "method": "DELETE", "at": "2026-03-03T10:00:00+01:00"},
    {"user": "alice", "path": "/api/customers/1", "ip": "", "at": "2026-03-03T10:00:00+01:00"},
    {"user": "dave", "path": "/api/customers/1", "ip": "198.51.100.7", "at": "2026-03-03T21:00:00+01:00"},
]


@pytest.mark.parametrize("fields", CASES)
async def test_console_and_cli_decide_the_same_inputs_alike(console, capsys, fields):
    assert await console_says(console, **fields) == cli_says(capsys, **fields)


async def test_a_request_without_address_or_method_takes_the_shared_defaults(console, capsys):
    fields = {"user": "alice", "path": "/api/customers/1", "at": "2026-03-03T10:00:00+01:00"}
    assert await console_says(console, **fields) == ("allow", "allowed", ["sales-work-records-in-scope"])
    page = await (await console.get("/_gw/console/rules", headers=HEIDI)).text()
    assert f'name="ip" value="{DEFAULT_IP}"' in page  # the empty form shows the default it will use
    assert f"<option selected>{DEFAULT_METHOD}</option>" in page


async def test_without_a_time_the_console_decides_now_by_the_gateways_clock(console, clock):
    fields = {"user": "alice", "path": "/api/customers/1"}
    assert (await console_says(console, **fields))[0] == "allow"  # 10:00 in Paris: office hours
    clock.set(clock().replace(hour=20))
    assert (await console_says(console, **fields))[1] == "time-window-outside"


async def test_the_console_shows_the_condition_tree(console):
    fields = {"user": "alice", "path": "/api/customers/1", "at": "2026-03-02T18:30:00+01:00"}
    text = await (await console.get("/_gw/console/rules?" + urlencode(fields), headers=HEIDI)).text()
    assert re.search(
        r'<td class="depth-1">not time_window</td>\s*<td class="res-true">true</td>\s*'
        r"<td><code>time_window is false: time-window-outside</code></td>",
        text,
    )
    assert re.search(r'<td class="depth-0 logic">and</td>', text)

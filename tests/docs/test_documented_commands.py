"""Every `crmgw` command the README, the admin manual and the onboarding guide show exists as written.

Each ``sh`` block line that runs ``crmgw`` is parsed by crmgw's own argument parser: a documented
flag that does not exist, a missing required argument or a renamed subcommand fails here. Optional
parts written ``[--flag value]`` are parsed as if given, and ``a|b`` alternatives take the first.
(Commands are run for real elsewhere: the demo, the onboarding guide, serve, init, the CLIs.)
"""

from __future__ import annotations

import re
import shlex

import pytest

from gateway.cli import build_parser
from tests.conftest import REPO

DOCS = [REPO / "README.md", REPO / "rules" / "README.md", REPO / "docs" / "ONBOARDING.md"]


def documented_commands() -> list[tuple[str, str]]:
    found = []
    for doc in DOCS:
        for block in re.findall(r"```(?:sh|bash)\n(.*?)```", doc.read_text(), re.S):
            for line in block.splitlines():
                line = line.split(" #", 1)[0].strip()
                if line.startswith(("curl", "#")):
                    continue
                m = re.search(r"(?:^|\s|/)crmgw\s+(.*)", line)
                if m:
                    found.append((doc.relative_to(REPO).as_posix(), m.group(1)))
    return found


def as_arguments(text: str) -> list[str]:
    for sep in ("|&", "&&", " | ", ";", " > ", " &"):
        text = text.split(sep)[0]
    text = re.sub(r"\[([^\]]*)\]", lambda m: m.group(1).split("|")[0], text)  # [--a x|y] -> --a x
    return [
        token.split("|")[0] if "|" in token and not token.startswith(("'", '"')) else token
        for token in shlex.split(text)
    ]


COMMANDS = documented_commands()


def test_the_documents_show_crmgw_commands():
    assert len(COMMANDS) > 40


@pytest.mark.parametrize(("doc", "command"), COMMANDS, ids=[f"{d}:{c[:50]}" for d, c in COMMANDS])
def test_a_documented_command_parses_as_written(doc, command, capsys):
    try:
        build_parser().parse_args(as_arguments(command))
    except SystemExit as exc:
        pytest.fail(f"{doc}: `crmgw {command}` does not parse (exit {exc.code}): {capsys.readouterr().err}")

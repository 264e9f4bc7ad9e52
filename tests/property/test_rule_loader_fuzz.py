"""Fuzzing the rule loader: mutated rule files never crash it.

Every shipped rule file is mutated (lines deleted, duplicated, swapped, truncated, characters that
mean something to YAML injected) and the whole folder loaded with the real ``load_ruleset``. The
only acceptable outcomes are a rule set with no errors, or no rule set and at least one
``file:line:col: message`` error -- never an exception (the watcher would keep the last good rules,
but ``crmgw rules check`` and start-up would crash instead of explaining).
"""

from __future__ import annotations

import re
import shutil

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.rulefile import parse_yaml
from gateway.ruleset import load_ruleset, rule_files
from tests.conftest import RULES
from tests.property.conftest import examples

FILES = [f.relative_to(RULES).as_posix() for f in rule_files(RULES)]
ORIGINAL = {name: (RULES / name).read_text("utf-8") for name in FILES}
SPICE = st.sampled_from(
    list(":-[]{}&*!|>'\"#%@`,?")
    + [
        "\t",
        " ",
        "\x00",
        "\ufeff",
        "é",
        "\n",
        "  ",
        "- ",
        ": ",
        "&a ",
        "*a",
        "!!python/object:os.system ",
        "<<: *a",
        "on",
        "no",
        "1e3",
        "0x1F",
        "~",
        "null",
        "2026-13-45",
    ]
)
ERROR = re.compile(r"^[^:]+:\d+:\d+: .+", re.S)


@st.composite
def mutation(draw):
    name = draw(st.sampled_from(FILES))
    lines = ORIGINAL[name].splitlines(keepends=True)
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["delete", "duplicate", "swap", "truncate", "inject", "indent"]))
        i = draw(st.integers(0, max(len(lines) - 1, 0)))
        if not lines:
            break
        if kind == "delete":
            del lines[i]
        elif kind == "duplicate":
            lines.insert(i, lines[i])
        elif kind == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif kind == "truncate":
            text = "".join(lines)
            lines = [text[: draw(st.integers(0, len(text)))]]
        elif kind == "inject":
            line = lines[i]
            at = draw(st.integers(0, len(line)))
            lines[i] = line[:at] + draw(SPICE) + line[at:]
        else:
            lines[i] = draw(st.sampled_from(["", " ", "  ", "\t"])) + lines[i].lstrip(" ")
    return name, "".join(lines)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz") / "rules"
    shutil.copytree(RULES, root)
    return root


@pytest.mark.slow
@settings(max_examples=examples(25, 1500), deadline=None)
@given(mutation())
def test_mutated_rule_files_never_crash_the_loader(workdir, change):
    name, text = change
    try:
        (workdir / name).write_text(text, "utf-8")
        ruleset, errors = load_ruleset(workdir)
    finally:
        (workdir / name).write_text(ORIGINAL[name], "utf-8")
    if ruleset is None:
        assert errors and all(ERROR.match(str(e)) for e in errors), errors
    else:
        assert errors == []


@given(st.text(max_size=300))
def test_yaml_parser_never_crashes_on_any_text(text):
    doc, errors = parse_yaml(text, "fuzz.yaml")
    assert doc is not None or errors

"""Write constraints.txt: the installed versions of everything pyproject.toml needs, transitively.

    .venv/bin/python deploy/constraints.py            # rewrite ../constraints.txt from .venv
    .venv/bin/python deploy/constraints.py --check    # exit 1 when it differs from what .venv has

``./run`` and the Dockerfile install with ``-c constraints.txt``, so the tests, the demo and the image
run the versions the tests passed with. Re-pin deliberately: upgrade in .venv, run the tests, then
run this. It reads installed metadata (``importlib.metadata``), not a resolver: the closure of the
project's dependencies and its ``test`` extra on this platform (Linux, CPython 3.11), the project
itself and packages nothing requires (pip, tools installed by hand) left out.
"""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

PROJECT = "crm-access-gateway"
EXTRAS = ("test",)
OUT = Path(__file__).resolve().parent.parent / "constraints.txt"
HEADER = """\
# The tested versions: every dependency of pyproject.toml (with the test extra), transitively, as
# installed when the whole suite passed. Used by ./run and the Dockerfile (pip install -c).
# Regenerate after a deliberate upgrade: .venv/bin/python deploy/constraints.py
"""


def _wanted(req: Requirement, extras: frozenset[str]) -> bool:
    if req.marker is None:
        return True
    return any(req.marker.evaluate({"extra": e}) for e in (extras or {""}))


def closure(project: str = PROJECT, extras: tuple[str, ...] = EXTRAS) -> dict[str, str]:
    """{canonical name: installed version} of what ``project[extras]`` requires, transitively."""
    found: dict[str, str] = {}
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = [(canonicalize_name(project), frozenset(extras))]
    while todo:
        name, want = todo.pop()
        if (name, want) in seen:
            continue
        seen.add((name, want))
        dist = metadata.distribution(name)
        if name != canonicalize_name(project):
            found[name] = dist.version
        for text in dist.requires or ():
            req = Requirement(text)
            if _wanted(req, want):
                todo.append((canonicalize_name(req.name), frozenset(req.extras)))
    return dict(sorted(found.items()))


def render(pins: dict[str, str]) -> str:
    return HEADER + "".join(f"{name}=={version}\n" for name, version in pins.items())


def main(argv: list[str]) -> int:
    text = render(closure())
    if "--check" in argv:
        same = OUT.is_file() and OUT.read_text() == text
        print("constraints.txt matches .venv" if same else "constraints.txt differs from .venv", file=sys.stderr)
        return 0 if same else 1
    OUT.write_text(text)
    print(f"wrote {OUT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

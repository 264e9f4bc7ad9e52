"""The static checks are part of the suite, so ``./run test`` (and CI) proves them: ruff's lint and
format over the whole tree (ruff.toml) and mypy, strict, over gateway/ and detectors/ (pyproject.toml)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
pytestmark = pytest.mark.slow  # subprocesses


def run(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False)


def test_ruff_finds_no_lint_problem():
    done = run(str(BIN / "ruff"), "check", "--no-cache", ".")
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_tree_is_ruff_formatted():
    done = run(str(BIN / "ruff"), "format", "--check", "--no-cache", ".")
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.timeout(300)
def test_mypy_strict_finds_no_type_error():
    done = run(str(BIN / "mypy"))
    assert done.returncode == 0, done.stdout[-20000:] + done.stderr

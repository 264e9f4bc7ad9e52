"""Issue 11.4: no crmgw command, and no gateway without a model, imports scikit-learn, scipy, numpy
or skops (seconds of start-up on a loaded machine). Checked in a child process's ``sys.modules``:
a behaviour test, not a timed one (``python -m bench startup`` measures the time)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO, RULES
from tests.ops.conftest import free_port, write_config

pytestmark = pytest.mark.slow

HEAVY = ("sklearn", "scipy", "numpy", "skops")
REPORT = f"""
import json, sys
print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))
"""

CLI_CHILD = (
    """
import contextlib, io, sys
from gateway.cli import main
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    try:
        code = main(sys.argv[1:])
    except SystemExit as exc:  # --help
        code = exc.code
assert code == 0, code
"""
    + REPORT
)

SERVE_CHILD = (
    """
import asyncio, sys, urllib.request
from pathlib import Path
from gateway.server import ServeOptions, start
from gateway.settings import load_settings

async def serve_until_ready():
    settings, errors = load_settings(Path(sys.argv[1]))
    assert settings is not None, errors
    runner = await start(settings, ServeOptions.resolve(settings))
    try:
        url = f"http://127.0.0.1:{settings.listen.port}/readyz"
        status = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=10).status)
        assert status == 200, status
    finally:
        await runner.cleanup()

asyncio.run(serve_until_ready())
"""
    + REPORT
)


def heavy_modules_after(code: str, *args: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=50,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "argv",
    [
        ["token", "alice"],
        ["rules", "check", str(RULES)],
        ["rules", "test", str(RULES)],
        ["explain", "--user", "alice", "--path", "/api/customers", "--rules", str(RULES)],
        ["--help"],
    ],
    ids=lambda argv: " ".join(argv[:2]),
)
def test_crmgw_commands_import_no_machine_learning_library(argv):
    assert heavy_modules_after(CLI_CHILD, *argv) == []


def test_a_gateway_without_a_model_serves_without_them(tmp_path):
    config = write_config(tmp_path, upstream=f"http://127.0.0.1:{free_port()}", port=free_port())
    assert heavy_modules_after(SERVE_CHILD, str(config)) == []


def test_a_gateway_with_a_missing_model_does_not_import_them_either(tmp_path):
    """The model directory is read (card, sha256) before scikit-learn is imported to load it."""
    config = write_config(
        tmp_path,
        upstream=f"http://127.0.0.1:{free_port()}",
        port=free_port(),
        scoring={"model_dir": str(tmp_path / "no-model-here")},
    )
    assert heavy_modules_after(SERVE_CHILD, str(config)) == []


def test_the_check_sees_them_once_the_detector_is_imported():
    """The control: the same check reports scikit-learn when the model code is loaded."""
    assert "sklearn" in heavy_modules_after("import detectors.model\n" + REPORT)

"""``./run test --fast`` as the README gives it: the slow tests left out, the rest spread over
pytest-xdist workers that each start their own redis-server, and no tests at all is a failure."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow  # starts ./run, which starts redis-server and pytest

QUICK = "tests/integration/test_error_answers.py::test_the_error_body_is_json_with_the_three_keys"


def run_fast(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VENV": str(Path(sys.executable).parent.parent)}
    env.pop("CRMGW_TEST_REDIS_URL", None)  # ./run starts its own
    return subprocess.run(
        ["./run", "test", "--fast", *args, "-q", "-p", "no:cacheprovider"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


@pytest.mark.timeout(300)
def test_the_fast_loop_runs_tests_on_xdist_workers():
    done = run_fast(QUICK, "tests/test_static_checks.py")  # the second is slow: left out
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "1 passed" in done.stdout and "bringing up nodes" in done.stdout


@pytest.mark.timeout(300)
def test_the_fast_loop_fails_when_it_collects_nothing():
    done = run_fast("-k", "no_test_has_this_name")
    assert done.returncode == 5, done.stdout[-3000:] + done.stderr[-3000:]
    assert "collected no tests" in done.stderr

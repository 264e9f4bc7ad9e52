"""``python -m bench.export`` runs as README.md and bench/README.md give it (on a small file)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow


@pytest.mark.skipif(shutil.which("nginx") is None and not shutil.which("/usr/sbin/nginx"), reason="needs nginx")
def test_bench_export_prints_and_writes_throughput_and_peak_rss(tmp_path):
    out = tmp_path / "export.json"
    argv = [sys.executable, "-m", "bench.export", "--size-mb", "8", "--rounds", "1", "--json", str(out)]
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "gateway / nginx throughput" in done.stdout
    result = json.loads(out.read_text())
    assert result["caller_rows"] * 4 == result["rows"]
    for name in ("gateway", "nginx"):
        figures = result["servers"][name]
        assert figures["mb_per_s"] > 0 and figures["peak_rss_mb"] > 0
    assert result["servers"]["gateway"]["bytes_out"] < result["servers"]["nginx"]["bytes_out"] == result["file_bytes"]

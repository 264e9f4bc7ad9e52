"""``python -m democrm``: the command line reaches create_app and web.run_app."""

from __future__ import annotations

from aiohttp import web

import democrm.__main__ as cli
from democrm.state import CONFIG, STORE


def test_main_passes_the_options_on(monkeypatch, tmp_path):
    started = {}

    def record_run_app(app, *, host, port):
        started.update(app=app, host=host, port=port)

    monkeypatch.setattr(web, "run_app", record_run_app)
    cli.main(["--host", "0.0.0.0", "--port", "9999", "--gzip", "--db", str(tmp_path / "crm.sqlite3")])
    app = started["app"]
    assert (started["host"], started["port"], app[CONFIG].gzip) == ("0.0.0.0", 9999, True)
    assert app[STORE].count("customers") == 300
    assert (tmp_path / "crm.sqlite3").exists()
    app[STORE].close()

"""/readyz is false (503) while the audit log or the alerts journal cannot be written.

The tests run as root, and root ignores file permissions: an unwritable path is made structurally
(a regular file where a folder should be), which no user can write through. The probe is a real
open for appending (gateway.writable), so a read-only mount fails it the same way.
"""

from __future__ import annotations

from gateway.app import GATEWAY
from gateway.writable import cannot_append


def test_cannot_append_names_why_and_writes_nothing(tmp_path):
    assert cannot_append(tmp_path / "new" / "deeper" / "audit.log") is None
    assert (tmp_path / "new" / "deeper" / "audit.log").read_bytes() == b""
    (tmp_path / "blocker").write_text("a file where a folder should be")
    assert cannot_append(tmp_path / "blocker" / "audit.log")  # "Not a directory" / "File exists"


async def test_ready_when_both_can_be_written(make_gateway, crm, tmp_path):
    gw = await make_gateway(crm, alerts={"journal": str(tmp_path / "alerts.jsonl")})
    resp = await gw.get("/readyz")
    assert resp.status == 200 and await resp.json() == {"status": "ok", "ready": True}


async def test_not_ready_from_the_start_when_the_alerts_journal_cannot_be_written(make_gateway, crm, tmp_path):
    """The issue's case: readiness said ok until the first alert could not be journalled."""
    (tmp_path / "blocker").write_text("a file where the journal's folder should be")
    gw = await make_gateway(crm, alerts={"journal": str(tmp_path / "blocker" / "alerts.jsonl")})
    resp = await gw.get("/readyz")
    assert resp.status == 503
    assert await resp.json() == {"status": "degraded", "ready": False, "reasons": ["alerts-journal-unwritable"]}
    health = await (await gw.get("/_gw/health")).json()
    assert "alerts-journal-unwritable" in health["degraded"]
    assert gw.server.app[GATEWAY].alerts.journal.written == 0  # no alert was needed to find out


async def test_not_ready_while_the_audit_folder_is_gone_and_ready_again_after(make_gateway, crm, tmp_path):
    folder = tmp_path / "audit"
    gw = await make_gateway(
        crm, audit={"path": str(folder / "audit.log")}, alerts={"journal": str(tmp_path / "alerts.jsonl")}
    )
    assert (await gw.get("/readyz")).status == 200
    # The open file still takes lines (written into a renamed folder nobody reads): only a probe sees it.
    folder.rename(tmp_path / "audit-moved")
    folder.write_text("a file where the audit folder should be")
    resp = await gw.get("/readyz")
    assert resp.status == 503 and (await resp.json())["reasons"] == ["audit-unwritable"]
    folder.unlink()
    (tmp_path / "audit-moved").rename(folder)
    assert (await gw.get("/readyz")).status == 200


async def test_not_ready_after_an_audit_write_failed_even_when_serving_goes_on(make_gateway, crm, tmp_path):
    """audit.on_failure: allow keeps serving; readiness still says the log is not being written."""
    gw = await make_gateway(
        crm,
        audit={"path": str(tmp_path / "audit.log"), "on_failure": "allow"},
        alerts={"journal": str(tmp_path / "alerts.jsonl")},
    )
    gw.server.app[GATEWAY].audit.healthy = False  # as AuditLog.write leaves it after a refused write
    resp = await gw.get("/readyz")
    assert resp.status == 503 and (await resp.json())["reasons"] == ["audit-unwritable"]

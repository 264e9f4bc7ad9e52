"""The suspension overlay on a real Redis: shared by replicas (pub/sub + reload), audited, reversible."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import orjson
import pytest

from gateway.errors import Forbidden
from gateway.governance.actions import Governor, read_journal
from gateway.governance.guard import GovernanceGuard
from gateway.redisconn import connect_redis
from tests.governance.conftest import who


async def eventually(check, timeout: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "not seen in time"
        await asyncio.sleep(0.02)


async def test_a_suspension_reaches_every_replica_at_once_and_its_lift_too(guards, tmp_path):
    one, two = await guards(), await guards()
    governor = Governor(one, tmp_path / "governance.jsonl")
    record = await governor.act("suspend", "alice", actor="heidi", note="phished, resetting")
    assert record["until"] is None
    refusal = one.check(who("alice"))  # the instance acting refuses before any I/O completes elsewhere
    assert isinstance(refusal, Forbidden) and refusal.reason == "user-suspended" and refusal.status == 403
    await eventually(lambda: two.check(who("alice")) is not None)  # pub/sub
    assert two.check(who("bob")) is None
    with pytest.raises(Forbidden):
        two.enforce(who("alice"))
    assert two.health()["users"] == ["alice"] and two.health()["shared"] is True
    await governor.act("unsuspend", "alice", actor="heidi", note="password reset done")
    await eventually(lambda: two.check(who("alice")) is None)
    with pytest.raises(LookupError):
        await governor.act("unsuspend", "alice", actor="heidi", note="again")
    rows = read_journal(tmp_path / "governance.jsonl")
    assert [(r["action"], r["actor"], r["user"]) for r in rows] == [
        ("unsuspend", "heidi", "alice"),
        ("suspend", "heidi", "alice"),
    ]


async def test_a_replica_started_later_loads_the_suspensions_and_expired_ones_are_dropped(guards, redis_url, tmp_path):
    one = await guards()
    governor = Governor(one, tmp_path / "g.jsonl")
    await governor.act("suspend", "carol", actor="heidi", note="for one second", seconds=1)
    await governor.act("suspend", "bob", actor="heidi", note="until lifted")
    late = await guards()
    assert late.check(who("bob")) is not None and late.check(who("carol")) is not None
    await asyncio.sleep(1.1)
    assert late.check(who("carol")) is None  # its until has passed: no request is refused for it
    client = connect_redis(redis_url)
    await late._reload()
    assert sorted(await client.hkeys("crmgw:governance:suspended")) == [b"bob"]  # pruned by the reload
    await client.aclose()


@pytest.mark.parametrize(
    "action,user,actor,note,seconds,message",
    [
        ("suspend", "heidi", "heidi", "x", None, "own account"),
        ("suspend", "alice", "heidi", "  ", None, "needs a note"),
        ("block", "alice", "heidi", "x", None, "give a period"),
        ("block", "alice", "heidi", "x", "99999999", "between 1 second"),
        ("delete", "alice", "heidi", "x", None, "unknown action"),
    ],
)
async def test_incomplete_or_forbidden_actions_are_refused_before_anything_is_done(
    guards, tmp_path, action, user, actor, note, seconds, message
):
    guard = await guards()
    with pytest.raises(ValueError, match=message):
        await Governor(guard, tmp_path / "g.jsonl").act(action, user, actor=actor, note=note, seconds=seconds)
    assert guard.state.all(guard.now()) == [] and not (tmp_path / "g.jsonl").exists()


async def test_without_redis_the_overlay_is_this_process_only(tmp_path):
    guard = GovernanceGuard(None, lambda: datetime.now(UTC))
    await guard.start()
    await Governor(guard, tmp_path / "g.jsonl").act("suspend", "ivan", actor="heidi", note="local")
    assert guard.check(who("ivan")) is not None and guard.health()["shared"] is False
    line = orjson.loads((tmp_path / "g.jsonl").read_bytes().splitlines()[0])
    assert line["action"] == "suspend" and line["note"] == "local"
    await guard.stop()

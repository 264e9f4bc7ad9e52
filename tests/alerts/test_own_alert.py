"""Nobody triages an alert about themselves (review of issue 16): one check in the store's analyst
action, met by every path (single action, bulk, incidents, API, CLI); on a real Redis and on the
journal alone."""

from __future__ import annotations

import pytest

from gateway.alerts.triage import bulk_triage
from tests.alerts.conftest import raise_kwargs


@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize(
    "action",
    [
        {"status": "acknowledged"},
        {"verdict": "false_positive"},
        {"status": "resolved"},
        {"assignee": "heidi"},
        {"note": "it was me, all fine"},
    ],
)
async def test_the_store_refuses_any_action_by_the_alerts_own_user(make_store, redis_url, shared, action):
    store = await make_store(redis_url if shared else None)
    mine = await store.raise_alert(**raise_kwargs(user="heidi"))
    with pytest.raises(ValueError, match="another analyst") as refused:
        await store.transition(mine, actor="heidi", **action)
    assert getattr(refused.value, "reason", None) == "own-alert"  # the code the API and console answer
    alert = await store.get(mine)
    assert (alert.status, alert.rev, alert.notes, alert.assignee) == ("open", 1, [], None)
    done = await store.transition(mine, actor="grace", **action)  # another analyst may
    assert done.rev == 2


async def test_bulk_triage_refuses_the_own_alerts_with_a_fixed_code_and_does_the_rest(make_store, redis_url):
    store = await make_store(redis_url)
    mine = await store.raise_alert(**raise_kwargs(user="heidi", window="a"))
    other = await store.raise_alert(**raise_kwargs(user="bob", window="b"))
    result = await bulk_triage(store, [mine, other], actor="heidi", action="resolve", verdict="false_positive")
    assert result.done == [other] and result.codes == {mine: "own-alert"}
    assert (await store.get(mine)).status == "open"

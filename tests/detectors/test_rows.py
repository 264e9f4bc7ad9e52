"""The replay split by user over worker processes: same rows as one process, compact file."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from detectors.dataset import build
from detectors.rows import Shard, load_rows, replay_rows, save_rows, user_of_line
from tests.detectors.conftest import at, record


def _key(ds):
    order = np.lexsort((ds.times, np.array(ds.days), np.array(ds.users)))
    return [ds.users[i] for i in order], ds.X[order], ds.final[order]


def test_the_user_of_a_line_is_found_without_parsing():
    assert user_of_line(orjson.dumps(record("alice", at(2, 9)))) == b"alice"
    assert user_of_line(b'{"time": "x", "user": "bob"}') == b"bob"
    assert user_of_line(b'{"time":"x"}') is None


def test_every_line_goes_to_exactly_one_shard():
    lines = [orjson.dumps(record(f"u{i}", at(2, 9))) for i in range(50)] + [b'{"user" : "odd"}']
    shards = [Shard(i, 3) for i in range(3)]
    assert all(sum(s(line) for s in shards) == 1 for line in lines)


@pytest.mark.slow
def test_a_replay_on_two_processes_gives_the_rows_of_one(world_a, tmp_path):
    one, agg = build([world_a], snapshots_from="2026-01-05")
    two, state, stats = replay_rows([world_a], snapshots_from="2026-01-05", workers=2)
    users1, X1, final1 = _key(one)
    users2, X2, final2 = _key(two)
    assert users1 == users2 and np.array_equal(final1, final2)
    # the peer-country features too: a first pass gives every process everyone's countries
    assert np.allclose(X1, X2)
    assert state["history"].keys() == agg.state()["history"].keys()
    assert state["country_users"] == agg.state()["country_users"]
    assert stats["records"] == agg.records and stats["workers"] == 2
    assert stats["records_per_second_per_core"] > 0

    save_rows(tmp_path / "rows.npz", two, state, {"replay": {"x": 1}})
    again, state2, meta = load_rows(tmp_path / "rows.npz")
    assert np.array_equal(again.X, two.X) and again.users == two.users and state2 == state
    assert meta == {"replay": {"x": 1}}
    assert (tmp_path / "rows.npz").stat().st_size < sum(p.stat().st_size for p in world_a.glob("audit-*")) / 5


def test_rows_of_other_features_are_refused(tmp_path):
    np.savez(tmp_path / "old.npz", format=np.array(1), features=np.array(["requests"]))
    with pytest.raises(ValueError, match="other features"):
        load_rows(tmp_path / "old.npz")

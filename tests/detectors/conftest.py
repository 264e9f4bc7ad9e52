"""Small simulated worlds and a model trained on one, built once per test session."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from detectors.simulate import simulate
from detectors.train import train

SMALL = {"n_users": 40, "days": 28}


@pytest.fixture(scope="session")
def world_a(tmp_path_factory) -> Path:
    """Training world: 40 users, 28 days, 3 incidents of each scenario."""
    out = tmp_path_factory.mktemp("world-a")
    simulate(SMALL["n_users"], SMALL["days"], 11, out, incidents=3)
    return out


@pytest.fixture(scope="session")
def world_b(tmp_path_factory) -> Path:
    """A world the model never saw (another seed): for evaluation with all_days."""
    out = tmp_path_factory.mktemp("world-b")
    simulate(SMALL["n_users"], SMALL["days"], 12, out, incidents=3)
    return out


@pytest.fixture(scope="session")
def verdicts(tmp_path_factory, world_a) -> dict:
    """An analyst's verdicts on world A: one mass delete called benign, one day confirmed."""
    labels = [orjson.loads(x) for x in (world_a / "labels.jsonl").read_bytes().splitlines()]
    benign = next(x for x in labels if x["scenario"] == "mass_delete")
    confirmed_day = "2026-01-14"
    first = (world_a / f"audit-{confirmed_day}.log").read_bytes().splitlines()[0]
    confirmed = (orjson.loads(first)["user"], confirmed_day)
    path = tmp_path_factory.mktemp("verdicts") / "verdicts.jsonl"
    path.write_text(
        json.dumps(
            {
                "user": benign["user"],
                "type": "detector-anomaly",
                "window": benign["day"],
                "day": benign["day"],
                "verdict": "false_positive",
            }
        )
        + "\n"
        + json.dumps(
            {
                "user": confirmed[0],
                "type": "bulk-export",
                "window": "1d",
                "day": confirmed[1],
                "verdict": "confirmed",
                "alert_id": "a1",
            }
        )
        + "\n"
    )
    return {"path": path, "false_positive": (benign["user"], benign["day"]), "confirmed": confirmed}


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory, world_a, verdicts) -> Path:
    """Trained on all of world A (no held-out days), with labels and verdicts."""
    out = tmp_path_factory.mktemp("model")
    # 40 users x 28 days give ~130 calibration user-days: a budget of 5 per 1,000 would allow
    # none and put the threshold on the single most unusual benign day; 10 allows one.
    train(
        [world_a], out, labels_path=world_a / "labels.jsonl", verdicts_path=verdicts["path"], budget=10.0, holdout=0.0
    )
    return out


@pytest.fixture(scope="session")
def held_out_model(tmp_path_factory, world_a) -> Path:
    """Trained through the CLI on world A with its last quarter of days held out."""
    from detectors.cli import main

    out = tmp_path_factory.mktemp("held-out-model")
    assert (
        main(
            [
                "detector",
                "train",
                "--audit-log",
                str(world_a),
                "--out",
                str(out),
                "--labels",
                str(world_a / "labels.jsonl"),
                "--budget",
                "10",
                "--holdout",
                "0.25",
            ]
        )
        == 0
    )
    return out


class CollectingAlerts:
    """A real, minimal alert sink with the alert store's ``raise_alert`` signature."""

    def __init__(self, fail: bool = False):
        self.alerts: list[dict] = []
        self.fail = fail

    async def raise_alert(self, *, user, type, level, score, summary, evidence, rule, window, source="threshold"):
        if self.fail:
            raise RuntimeError("alert store down")
        self.alerts.append(
            {
                "user": user,
                "type": type,
                "level": level,
                "score": score,
                "summary": summary,
                "evidence": evidence,
                "rule": rule,
                "window": window,
                "source": source,
            }
        )
        return f"a{len(self.alerts)}"


def record(
    user: str,
    when: datetime,
    *,
    operation: str = "customers.list",
    returned: int = 1,
    ids=(),
    resource_id=None,
    country: str = "FR",
    ip: str = "198.51.100.7",
    ua: str = "Mozilla/5.0 test",
    roles=("sales_rep",),
    tz: str = "Europe/Paris",
    status: int = 200,
    effect: str = "allow",
    targets=None,
) -> dict:
    """One audit line as the gateway writes it (only the keys the detector reads, plus a few)."""
    return {
        "time": when.astimezone(UTC).isoformat(timespec="milliseconds"),
        "user": user,
        "roles": list(roles),
        "timezone": tz,
        "client_ip": ip,
        "country": country,
        "method": "GET",
        "path": "/api/x",
        "user_agent": ua,
        "operation": operation,
        "resource_id": resource_id,
        "effect": effect,
        "reason": "ok",
        "status": status,
        "records_returned": returned,
        "record_ids": list(ids),
        "targets": targets,
    }


def at(day: int, hour: float, minute: float = 0) -> datetime:
    """A UTC instant on day ``day`` of March 2026 (the 2nd is a Monday)."""
    return datetime(2026, 3, day, tzinfo=UTC) + timedelta(hours=hour, minutes=minute)

"""Train on one simulated world, evaluate on held-out days and on a world never seen."""

from __future__ import annotations

import json

import pytest

from detectors.calendar import DAY_TYPES
from detectors.cli import main
from detectors.evaluate import evaluate


@pytest.mark.slow
def test_evaluation_on_an_unseen_world_detects_mass_delete_and_enumeration(model_dir, world_b):
    report = evaluate(model_dir, [world_b], world_b / "labels.jsonl", all_days=True)
    assert {"recall", "pr_auc", "false_alerts_per_1000_user_days", "per_scenario"} <= set(report)
    assert report["per_scenario"]["enumeration"]["recall"] == 1.0
    # 3 mass deletes; one hits an admin, whose role does bulk clean-ups and, in a world this
    # small, has only ~30 baseline days: it scores under the threshold (the 200-user run does not)
    assert report["per_scenario"]["mass_delete"]["detected"] >= 2
    assert report["recall"] >= 0.75
    assert set(report["per_scenario"]["mass_delete"]) >= {"recall", "median_delay"}


@pytest.mark.slow
def test_evaluate_json_prints_one_object_for_the_held_out_days(held_out_model, world_a, capsys):
    code = main(
        [
            "detector",
            "evaluate",
            "--model",
            str(held_out_model),
            "--audit-log",
            str(world_a),
            "--labels",
            str(world_a / "labels.jsonl"),
            "--json",
        ]
    )
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["evaluated_from"] >= "2026-01-26"
    assert report["false_alerts_per_1000_user_days"] >= 0.0 and report["per_scenario"]
    # echo days are counted in the headline figure, and reported apart
    assert report["benign_user_days"] == sum(
        v["user_days"] for k, v in report["false_alerts_by_day_type"].items() if k in DAY_TYPES
    )
    assert report["false_alerts"] >= report["false_alerts_without_echo"]
    assert report["echo_user_days"] == report["false_alerts_by_day_type"].get("echo", {}).get("user_days", 0)
    # the attacks that look like work are in the evaluation, with their difficulty
    levels = {lv for v in report["per_scenario"].values() for lv in v["by_difficulty"]}
    assert "standard" in levels and levels & {"easy", "medium", "hard"}
    assert set(report["recall_by_difficulty"]) == levels


@pytest.mark.slow
def test_a_model_without_held_out_days_needs_all_days(model_dir, world_a, capsys):
    code = main(
        [
            "detector",
            "evaluate",
            "--model",
            str(model_dir),
            "--audit-log",
            str(world_a),
            "--labels",
            str(world_a / "labels.jsonl"),
        ]
    )
    assert code == 1
    assert "--all-days" in capsys.readouterr().err

"""``crmgw simulate`` and ``crmgw detector``: exit codes 0 ok, 1 failed, 2 bad usage."""

from __future__ import annotations

import json

import pytest

from detectors.cli import main


def test_simulate_writes_logs_and_labels(tmp_path, capsys):
    assert main(["simulate", "--users", "5", "--days", "9", "--seed", "3", "--out", str(tmp_path)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["events"] > 0 and (tmp_path / "labels.jsonl").exists()
    assert list(tmp_path.glob("audit-2026-01-*.log"))


def test_bad_usage_exits_2():
    with pytest.raises(SystemExit) as exc:
        main(["simulate", "--users", "0", "--out", "x"])
    assert exc.value.code == 2


def test_train_on_a_missing_file_exits_1(tmp_path, capsys):
    code = main(["detector", "train", "--audit-log", str(tmp_path / "nope.log"), "--out", str(tmp_path / "m")])
    assert code == 1
    assert "no such file" in capsys.readouterr().err


@pytest.mark.slow  # over a second
def test_evaluate_a_tampered_model_exits_1_with_the_reason(model_dir, world_a, tmp_path, capsys):
    import shutil

    shutil.copytree(model_dir, tmp_path / "m")
    (tmp_path / "m" / "model.skops").write_bytes(b"PK tampered")
    code = main(
        [
            "detector",
            "evaluate",
            "--model",
            str(tmp_path / "m"),
            "--audit-log",
            str(world_a),
            "--labels",
            str(world_a / "labels.jsonl"),
            "--all-days",
        ]
    )
    assert code == 1
    assert "does not match the model card" in capsys.readouterr().err


@pytest.mark.slow  # over a second
def test_train_writes_a_model_with_held_out_days(held_out_model):
    from detectors.store import load

    card = load(held_out_model).card
    assert card.budget == 10 and card.holdout_from == "2026-01-26"

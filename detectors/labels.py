"""Labels (simulator ground truth) and analyst verdicts: JSON lines, validated strictly.

Every problem is reported as ``file:line: message`` and nothing is used from a file that has one
(a half-read verdicts file would silently un-whitelist or un-exclude days).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal, Self, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Label(_Strict):
    user: str
    day: str
    scenario: str
    start: str
    end: str
    incident: str | None = None
    difficulty: str | None = None  # simulator knob: standard | easy | medium | hard

    @field_validator("day")
    @classmethod
    def _day(cls, v: str) -> str:
        if not DAY.match(v):
            raise ValueError("day must be YYYY-MM-DD")
        return v

    @property
    def incident_id(self) -> str:
        return self.incident or f"{self.scenario}:{self.user}:{self.day}"


class Verdict(_Strict):
    user: str
    verdict: Literal["false_positive", "confirmed", "benign", "malicious", "open", "acknowledged", "resolved"]
    type: str | None = None
    window: str | None = None
    day: str | None = None
    # fields an alert export may carry along; accepted, not used
    id: str | None = None
    alert_id: str | None = None
    time: str | None = None
    analyst: str | None = None
    notes: str | None = None
    rule: str | None = None
    source: str | None = None
    level: str | None = None
    score: float | None = None
    evidence: dict[str, Any] | None = None
    classification: str | None = None  # true_positive | benign_true_positive | false_positive (gateway verdicts)
    determination: str | None = None  # compromised_account, policy_violation, ... (gateway verdicts)

    @model_validator(mode="after")
    def _has_day(self) -> Self:
        if self._day_or_none() is None:
            raise ValueError("a verdict needs 'day' (YYYY-MM-DD) or a 'window' that is a day")
        return self

    def _day_or_none(self) -> str | None:
        for v in (self.day, self.window):
            if v and DAY.match(v[:10]):
                return v[:10]
        return None

    @property
    def the_day(self) -> str:
        day = self._day_or_none()
        assert day is not None, "validation (_has_day) refuses verdicts without a day"
        return day

    @property
    def benign(self) -> bool:
        return self.verdict in ("false_positive", "benign")

    @property
    def malicious(self) -> bool:
        return self.verdict in ("confirmed", "malicious")


M = TypeVar("M", bound=BaseModel)


def read_jsonl(path: str | Path, model: type[M]) -> tuple[list[M], list[str]]:
    items, errors = [], []
    try:
        lines = Path(path).read_bytes().splitlines()
    except OSError as exc:
        return [], [f"{path}: {exc.strerror or exc}"]
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            items.append(model.model_validate(orjson.loads(line)))
        except orjson.JSONDecodeError as exc:
            errors.append(f"{path}:{n}: not JSON: {exc}")
        except ValidationError as exc:
            for e in exc.errors():
                where = ".".join(str(p) for p in e["loc"])
                errors.append(f"{path}:{n}: {where + ': ' if where else ''}{e['msg']}")
    return (items, []) if not errors else ([], errors)

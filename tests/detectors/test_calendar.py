"""Day types and the kinds of user-day the false-alert breakdown counts."""

from __future__ import annotations

from detectors.calendar import day_type, user_day_kinds


def test_day_types_of_a_closing_quarter():
    assert day_type("2026-03-31") == "quarter_end"  # Tuesday, last weekday of Q1
    assert day_type("2026-02-26") == "month_end"  # Thursday, second-last weekday of February
    assert day_type("2026-02-28") == "weekend"
    assert day_type("2026-03-02") == "month_start"
    assert day_type("2026-03-11") == "weekday"
    assert day_type("2026-02-17") == "holiday"  # Spring festival at the Shanghai site


def test_new_users_and_role_changes_are_marked_for_a_week():
    rows = [("old", f"2026-03-{d:02d}", "sales_rep") for d in range(2, 20)]
    rows += [("new", f"2026-03-{d:02d}", "sales_rep") for d in range(10, 20)]
    rows += [("moved", f"2026-03-{d:02d}", "sales_rep" if d < 12 else "sales_manager") for d in range(2, 20)]
    kinds = user_day_kinds(rows, "2026-03-02")
    assert "new_user" not in kinds[("old", "2026-03-02")]
    assert "new_user" in kinds[("new", "2026-03-10")] and "new_user" in kinds[("new", "2026-03-16")]
    assert "new_user" not in kinds[("new", "2026-03-17")]
    assert "after_role_change" in kinds[("moved", "2026-03-12")]
    assert "after_role_change" not in kinds[("moved", "2026-03-11")]
    assert "after_role_change" not in kinds[("moved", "2026-03-19")]
    assert kinds[("old", "2026-03-11")] == ["weekday"]

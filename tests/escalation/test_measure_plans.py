"""A measure's plan and timers, and what its notices say: domain rules, no broker, no database."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from gridline.contracts.v1 import common_pb2, events_pb2
from gridline.db import alembic_config, upgrade
from gridline.timestamps import SHANGHAI, to_timestamp
from services.escalation import measure_notices, storage
from services.escalation.domain import Measure
from services.escalation.measures import (
    FollowUp,
    TimerKind,
    Timing,
    check_in_times,
    due_tests,
    measure_timers,
    verify_due,
    window,
)
from tests.test_migrations import value_for

ARRIVED = datetime(2026, 1, 20, 9, 0, tzinfo=SHANGHAI)
TIMING = Timing(
    reminder=timedelta(minutes=30),
    test_at=time(9),
    test_grace=timedelta(hours=8),
    end_notice=timedelta(hours=24),
)
QUARANTINE = FollowUp(
    plan_id="urgent",
    measure_days=14,
    test_days=(1, 4, 7, 14),
    check_in_times=(time(8), time(20)),
    verify_within_hours=2,
    verify_by=ARRIVED + timedelta(hours=2),
    measure_ends_at=ARRIVED + timedelta(days=14),
)


def test_the_plan_travels_and_is_stored_as_assignment_made_it() -> None:
    event = events_pb2.FollowUpPlan(
        plan_id="urgent", measure_days=14, test_days=[14, 1, 7, 4], verify_within_hours=2,
        check_in_times=["20:00", "08:00"], verify_by=to_timestamp(ARRIVED + timedelta(hours=2)),
        measure_ends_at=to_timestamp(ARRIVED + timedelta(days=14)),
    )  # fmt: skip
    plan = FollowUp.from_event(event)
    assert plan == QUARANTINE
    assert FollowUp.decode(plan.encode()) == plan
    assert FollowUp.decode(None) is None
    with pytest.raises(ValueError):
        FollowUp.from_event(events_pb2.FollowUpPlan(check_in_times=["早上8点"]))


def test_a_measure_counts_from_arrival_whenever_it_starts() -> None:
    started = ARRIVED + timedelta(hours=3)  # 12:00 on day 1
    measure = window(QUARANTINE, Measure.QUARANTINE, started)
    assert measure.ends_at == datetime(2026, 2, 3, 9, 0, tzinfo=SHANGHAI)
    slots = check_in_times(measure)
    assert slots[0] == datetime(2026, 1, 20, 20, 0, tzinfo=SHANGHAI)
    assert slots[-1] == datetime(2026, 2, 3, 8, 0, tzinfo=SHANGHAI)
    assert len(slots) == 1 + 13 * 2 + 1
    # Day 1's test was due at 09:00, before the start: it is owed at the start.
    assert due_tests(measure, time(9)) == [
        (1, started),
        (4, datetime(2026, 1, 23, 9, 0, tzinfo=SHANGHAI)),
        (7, datetime(2026, 1, 26, 9, 0, tzinfo=SHANGHAI)),
        (14, datetime(2026, 2, 2, 9, 0, tzinfo=SHANGHAI)),
    ]
    assert measure.day_of(datetime(2026, 1, 23, 18, 0, tzinfo=SHANGHAI)) == 4


def test_without_a_measure_in_the_plan_the_kind_s_usual_days_run() -> None:
    report_only = FollowUp(measure_days=0, verify_within_hours=24)
    start = datetime(2026, 1, 20, 10, 0, tzinfo=SHANGHAI)
    for plan in (report_only, None):
        measure = window(plan, Measure.MONITORING, start)
        assert measure.ends_at == start + timedelta(days=7)
        assert measure.test_days == ()
        assert {m.time() for m in check_in_times(measure)} == {time(8), time(20)}


def test_the_timers_of_a_measure() -> None:
    started = ARRIVED + timedelta(hours=3)
    timers = measure_timers(window(QUARANTINE, Measure.QUARANTINE, started), TIMING)
    kinds = [t.kind for t in timers]
    assert kinds.count(TimerKind.CHECK_IN_REMINDER) == 28
    assert kinds.count(TimerKind.TEST_REMINDER) == kinds.count(TimerKind.TEST_MISSED) == 4
    reminders = [t for t in timers if t.kind is TimerKind.CHECK_IN_REMINDER]
    assert all(t.fire_at == t.due_at - TIMING.reminder for t in reminders)
    day_one = [t for t in timers if t.test_day == 1]
    # Its reminder cannot come before the start; it is missed eight hours after it.
    assert {(t.kind, t.fire_at) for t in day_one} == {
        (TimerKind.TEST_REMINDER, started),
        (TimerKind.TEST_MISSED, started + timedelta(hours=8)),
    }
    (end,) = [t for t in timers if t.kind is TimerKind.END_NOTICE]
    assert end.fire_at == datetime(2026, 2, 2, 9, 0, tzinfo=SHANGHAI)
    assert all(t.kind.during_measure for t in timers)
    assert not TimerKind.POSITIVE.during_measure


def test_the_verification_deadline() -> None:
    acked = ARRIVED + timedelta(minutes=10)
    assert verify_due(QUARANTINE, acked, handed_over=False) == ARRIVED + timedelta(hours=2)
    # A task that came from another holder gets the plan's hours from its acknowledgement.
    assert verify_due(QUARANTINE, acked, handed_over=True) == acked + timedelta(hours=2)
    assert verify_due(None, acked, handed_over=False) is None


def _task() -> storage.Task:
    return storage.Task(
        task_id="t1", report_id="r1", node_id="h-101", grid_id="g", triage=False,
        state="under_control", level=common_pb2.CHAIN_LEVEL_CADRE, assignee_group_id="grp",
        summary="王*（身份证**************1234）自北京市（高风险地区）来，住文化苑1号楼1单元101室",
        report_accepted_at=ARRIVED, created_at=ARRIVED, assigned_at=ARRIVED,
        measure="quarantine", measure_started_at=ARRIVED + timedelta(hours=3),
        measure_ends_at=ARRIVED + timedelta(days=14),
    )  # fmt: skip


def _every_text() -> dict[str, measure_notices.Text]:
    task, due = _task(), datetime(2026, 1, 23, 9, 0, tzinfo=SHANGHAI)
    township, county = "镇联防联控办", "县联防联控办"
    return {
        "check_in_reminder": measure_notices.check_in_reminder(task, due),
        "resident_check_in_reminder": measure_notices.resident_check_in_reminder(task, due),
        "test_reminder": measure_notices.test_reminder(task, 4, due),
        "resident_test_reminder": measure_notices.resident_test_reminder(task, 4, due),
        "test_missed": measure_notices.test_missed(task, 4, due, township, False),
        "test_not_taken": measure_notices.test_missed(task, 4, due, township, True),
        "positive": measure_notices.positive(task, due, "卫生院"),
        "verification_missed": measure_notices.verification_missed(task, due, township),
        "high_risk": measure_notices.high_risk(task, county),
        "left_again": measure_notices.left_again(task, "兰州市城关区", due),
        "early_end_requested": measure_notices.early_end_requested(task, "系重复报告", "社区李敏"),
        "measure_ending": measure_notices.measure_ending(task, task.measure_ends_at or due),
        "resident_measure_ending": measure_notices.resident_measure_ending(task, due),
    }


def test_every_notice_reads_as_chinese_with_dates_as_people_write_them() -> None:
    for name, text in _every_text().items():
        whole = text.title + text.body
        assert not re.search(r"[A-Za-z]{2,}", whole.replace("**", "")), name
        assert not re.search(r"(?<!\d)0\d月|月0\d日", whole), name  # no 01月05日
        assert "未按时处置" not in whole, name
    texts = _every_text()
    assert "1月23日 09:00" in texts["test_missed"].body
    assert "居家隔离（1月20日至2月3日）" in texts["check_in_reminder"].body


def test_each_notice_closes_as_its_kind_asks() -> None:
    texts = _every_text()
    # Reminders ask for the check-in or the test; nothing was missed.
    for name in ("check_in_reminder", "test_reminder", "resident_check_in_reminder"):
        assert "督促" not in texts[name].body and "逾期" not in texts[name].title
    assert texts["check_in_reminder"].body.endswith("请提醒本人按时测量体温并打卡。")
    # What was missed asks the level to see it done.
    assert texts["verification_missed"].body.endswith("请镇联防联控办督促包户干部立即入户核查。")
    assert texts["test_missed"].body.endswith("请镇联防联控办督促尽快补检并登记结果。")
    # A positive test: transfer, never home quarantine.
    assert "转运" in texts["positive"].title and "不再居家" not in texts["positive"].body
    assert "停止居家管控" in texts["positive"].body
    # Notices for information ask for nothing missed.
    assert texts["high_risk"].body.endswith("处置进展将在任务页更新。")
    assert "兰州市城关区" in texts["left_again"].title
    assert texts["early_end_requested"].body.endswith("请镇联防联控办在任务页审批。")


def test_a_measure_running_at_the_upgrade_gets_its_start_and_end(tmp_path: Path) -> None:
    """Without its end a measure running when 0006 came could be ended on the spot by anyone."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'escalation.db'}")
    assigned = datetime(2022, 1, 28, 10, tzinfo=UTC)
    started = datetime(2022, 1, 29, 9, tzinfo=UTC)
    with engine.begin() as conn:
        command.upgrade(
            alembic_config(conn, storage.MIGRATIONS, storage.TASK.metadata, None), "0005"
        )
        metadata = sa.MetaData()
        metadata.reflect(conn)
        task, change = metadata.tables["task"], metadata.tables["task_change"]
        for n, (task_id, state, measure) in enumerate(
            (("t-home", "under_control", "quarantine"), ("t-seen", "visited", None))
        ):
            row = {c.name: value_for(c.type, "task", c.name, n) for c in task.columns}
            conn.execute(task.insert(), [row | {
                "task_id": task_id, "state": state, "measure": measure, "assigned_at": assigned,
            }])  # fmt: skip
        row = {c.name: value_for(c.type, "task_change", c.name, 0) for c in change.columns}
        conn.execute(change.insert(), [row | {
            "task_id": "t-home", "action": "start_measure", "changed_at": started,
        }])  # fmt: skip
    with engine.begin() as conn:
        upgrade(conn, storage.MIGRATIONS, storage.TABLES, None)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT task_id, measure_started_at, measure_ends_at FROM task ORDER BY task_id"
            )
        ).all()
    home, seen = rows
    assert home[0] == "t-home"
    assert datetime.fromisoformat(str(home[1])).replace(tzinfo=UTC) == started
    assert datetime.fromisoformat(str(home[2])).replace(tzinfo=UTC) == started + timedelta(days=14)
    assert seen[1:] == (None, None)  # no measure, nothing to end

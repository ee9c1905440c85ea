"""SMS check-in codes: random per measure, not derived from the task, refused when wrong, and a
sender who keeps guessing is stopped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import create_engine, text
from sqlmodel import select

from gridline.db import Database, alembic_config, upgrade
from gridline.timestamps import now, zh_time
from services.escalation import check_in_flows, storage
from services.escalation.check_ins import (
    CODE_ALPHABET,
    CODE_LENGTH,
    CheckInRefused,
    new_check_in_code,
)
from services.escalation.domain import Action
from services.escalation.flows import Change, change_task
from tests.links.conftest import LINKS, POLICY, RULES, chain_of, under_quarantine

WRONG = "打卡码不正确或管控已结束"
BLOCKED = "打卡码错误次数过多，请60分钟后再回复"


async def sms(db: Database, text: str, sender: str, at: datetime, message_id: str = "") -> str:
    """The task id the reply was taken for."""
    check_in, _ = await check_in_flows.take_sms(
        db, RULES, chain_of, text=text, message_id=message_id or f"{sender}-{at.isoformat()}",
        sender=sender, moment=at, links=LINKS,
    )  # fmt: skip
    return check_in.task_id


async def refusal(db: Database, text: str, sender: str, at: datetime) -> str:
    with pytest.raises(CheckInRefused) as caught:
        await sms(db, text, sender, at)
    return str(caught.value)


def test_codes_are_random_from_an_alphabet_without_look_alikes() -> None:
    codes = {new_check_in_code() for _ in range(2000)}
    assert len(codes) == 2000
    assert all(len(code) == CODE_LENGTH and set(code) <= set(CODE_ALPHABET) for code in codes)
    assert not set("01ILO") & set(CODE_ALPHABET)
    assert len(CODE_ALPHABET) ** CODE_LENGTH > 2**39


async def test_a_measure_s_code_is_not_the_task_id_s_and_the_old_derivation_is_refused(
    db: Database,
) -> None:
    tasks = [await under_quarantine(db, now()) for _ in range(3)]
    codes = [t.check_in_code for t in tasks]
    assert len(set(codes)) == 3
    for task in tasks:
        assert task.check_in_code is not None and task.check_in_code not in task.task_id.upper()
        # What the code used to be, the task id's first 8 characters, is no code (hex has 0
        # and 1) or the wrong one.
        said = await refusal(db, f"{task.task_id[:8].upper()} 36.5", "138", now())
        assert WRONG in said or "未能识别回复内容" in said
        assert await sms(db, f"{task.check_in_code.lower()} 36.5", "139", now()) == task.task_id


async def test_a_wrong_code_is_refused_and_a_sender_who_keeps_guessing_is_stopped(
    db: Database,
) -> None:
    task = await under_quarantine(db, now() - timedelta(days=1))
    assert task.check_in_code is not None
    guesser, resident, start = "13800000001", "13900000002", now()
    guesses = {new_check_in_code() for _ in range(RULES.config.wrong_codes)} - {task.check_in_code}
    for n, guess in enumerate(sorted(guesses)):
        assert WRONG in await refusal(db, f"{guess} 36.5", guesser, start + timedelta(minutes=n))
    # Now even the right code is refused from that number, until the window has passed...
    later = start + timedelta(minutes=30)
    assert BLOCKED in await refusal(db, f"{task.check_in_code} 36.5", guesser, later)
    # ...while the resident's own number is not held up.
    assert await sms(db, f"{task.check_in_code} 36.5", resident, later) == task.task_id
    after = start + timedelta(minutes=61 + len(guesses))
    assert await sms(db, f"{task.check_in_code} 36.6", guesser, after) == task.task_id
    async with db.session() as session:
        misses = (await session.exec(select(storage.CheckInCodeMiss))).all()
    # The sender is kept only as a derived key, never the number.
    assert misses and all(guesser not in m.sender_key for m in misses)


async def test_a_code_names_nothing_once_its_measure_ended(db: Database) -> None:
    task = await under_quarantine(db, now() - timedelta(days=14))
    code = task.check_in_code
    ended, _ = await change_task(
        db, POLICY, task.task_id, Change(Action.END_MEASURE, "包户干部", "http"), check_ins=RULES
    )
    assert ended.check_in_code is None
    assert WRONG in await refusal(db, f"{code} 36.5", "139", now())


def test_times_read_as_a_cadre_writes_them() -> None:
    assert zh_time(datetime(2026, 1, 30, 6, 5, tzinfo=UTC)) == "1月30日 14:05"


def test_tasks_under_a_measure_get_a_code_when_the_database_is_upgraded(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'escalation.db'}")
    moment = datetime(2026, 1, 20, tzinfo=UTC)
    with engine.begin() as conn:
        config = alembic_config(conn, storage.MIGRATIONS, storage.TASK.metadata, None)
        command.upgrade(config, "0003")
        for task_id, state in (("t-measured", "under_control"), ("t-open", "assigned")):
            conn.execute(
                text(
                    "INSERT INTO task (task_id, report_id, node_id, grid_id, triage, state, level,"
                    " assignee_group_id, assignee_level, origin_risk, measure_id, measure_name,"
                    " summary, link, report_accepted_at, created_at, assigned_at, step, version)"
                    " VALUES (:id, 'r', 'n', 'g', 0, :state, 1, 'g-cadre', 1, 2, '', '', 's',"
                    " 'http://old/t/x?e=1&s=y', :at, :at, :at, 0, 3)"
                ),
                {"id": task_id, "state": state, "at": moment},
            )
    with engine.begin() as conn:
        upgrade(conn, storage.MIGRATIONS, storage.TABLES, None)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT task_id, check_in_code FROM task")).all()
    codes: dict[str, str | None] = {task_id: code for task_id, code in rows}
    assert codes["t-open"] is None
    measured = codes["t-measured"]
    assert (
        measured is not None
        and len(measured) == CODE_LENGTH
        and set(measured) <= set(CODE_ALPHABET)
    )

"""Notices (`Notification`) as every service builds them: who is told what, when, about which task.

The caller derives the notice's id from its input (`gridline.ids.derived_id`), so that a replay
builds the same notice again; `gridline.bus.envelope.notice_envelope` sends it.

A notice goes out at once unless its builder marks it `deferrable`: only a notice that can wait
without harm (a low-risk case's escalation, a daily roll-up) is marked, and notify then holds it
in an office's quiet hours for the morning's digest (docs/notify.md, "Quiet hours"). A high-risk
case, a fever, a positive test or a broken channel is never marked.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from google.protobuf.timestamp_pb2 import Timestamp

from gridline.contracts.v1 import common_pb2, events_pb2
from gridline.timestamps import to_timestamp


class AboutTask(Protocol):
    """The task a notice is about: its page, and the report it was made for."""

    @property
    def task_id(self) -> str:
        """The task's id."""
        ...

    @property
    def report_id(self) -> str:
        """The report the task was made for."""
        ...

    @property
    def link(self) -> str:
        """The signed link to the task's page."""
        ...

    @property
    def report_accepted_at(self) -> datetime | Timestamp:
        """When intake accepted the report."""
        ...


@dataclass(frozen=True, slots=True)
class TaskRef:
    """A task a notice is about, for a caller that holds no task row (one is being placed)."""

    task_id: str
    report_id: str
    link: str
    report_accepted_at: datetime | Timestamp


def build_notice(
    notification_id: str,
    kind: events_pb2.NotificationKind,
    recipient: common_pb2.Responsible,
    *,
    title: str,
    body: str,
    at: datetime,
    about: AboutTask | None = None,
    deferrable: bool = False,
) -> events_pb2.Notification:
    """A notice to `recipient`, made at `at`; about a task, it carries the task's link and ids.

    `deferrable` lets notify hold it in its recipient's quiet hours; unmarked, it goes at once.
    """
    task: dict[str, Any] = {}
    if about is not None:
        task = {
            "task_id": about.task_id,
            "report_id": about.report_id,
            "link": about.link,
            # A Timestamp is copied as it is, set or not; a datetime is converted.
            "report_accepted_at": about.report_accepted_at,
        }
    return events_pb2.Notification(
        notification_id=notification_id,
        kind=kind,
        recipient=recipient,
        title=title,
        body=body,
        created_at=to_timestamp(at),
        deferrable=deferrable,
        **task,
    )

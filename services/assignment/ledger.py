"""Assignment's processed-events ledger as tools outside the service reach it
(`gridline dlq replay` releases a dead letter's mark in it)."""

from __future__ import annotations

from gridline.bus.ledger import ServiceLedger
from services.assignment.consumers import GROUP, TASKS_GROUP

LEDGER = ServiceLedger("assignment", frozenset({GROUP, TASKS_GROUP}))

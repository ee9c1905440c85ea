"""Notify's processed-events ledger as tools outside the service reach it
(`gridline dlq replay` releases a dead letter's mark in it)."""

from __future__ import annotations

from gridline.bus.ledger import ServiceLedger
from services.notify.consumers import GROUP

LEDGER = ServiceLedger("notify", frozenset({GROUP}))

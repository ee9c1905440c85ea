"""Intake's personal data: only its outbox, whose rows are the accepted reports (sealed ID
number and phone, address), purged by the personal-data retention with every other outbox."""

from __future__ import annotations

from gridline.bus.retention import PersonalData
from services.intake import storage

PERSONAL_DATA = PersonalData("intake", storage.TABLES)

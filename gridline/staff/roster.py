"""The people the local issuer may mint tokens for, kept in the data directory.

A county with an identity provider keeps its people there; this roster serves the embedded run
and a county trying Gridline before it plugs its provider in (`gridline staff add|list|token`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from gridline.staff.identity import Staff
from gridline.staff.roles import Role


def roster_path(data_dir: Path) -> Path:
    """Where the roster is kept."""
    return data_dir / "staff" / "people.json"


class Roster:
    """The recorded people, by subject."""

    def __init__(self, data_dir: Path) -> None:
        self._path = roster_path(data_dir)

    def people(self) -> list[Staff]:
        """Everyone recorded, by subject."""
        if not self._path.exists():
            return []
        entries = json.loads(self._path.read_text(encoding="utf-8"))
        people = [
            Staff(subject=e["subject"], name=e["name"], role=Role(e["role"]), node_id=e["node_id"])
            for e in entries
        ]
        return sorted(people, key=lambda p: p.subject)

    def get(self, subject: str) -> Staff | None:
        """The person recorded under `subject`, if any."""
        return next((p for p in self.people() if p.subject == subject), None)

    def put(self, person: Staff) -> bool:
        """Record a person, replacing the one of the same subject; whether it was new."""
        current = self.people()
        others = [p for p in current if p.subject != person.subject]
        new = len(others) == len(current)
        self._write([*others, person])
        return new

    def _write(self, people: list[Staff]) -> None:
        # Names and roles of staff: readable by the data directory's owner only, and replaced
        # whole so that a reader never sees half a file.
        self._path.parent.mkdir(parents=True, exist_ok=True)
        staged = self._path.with_suffix(".tmp")
        descriptor = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            os.fchmod(file.fileno(), 0o600)
            entries = [
                {"subject": p.subject, "name": p.name, "role": p.role.value, "node_id": p.node_id}
                for p in sorted(people, key=lambda p: p.subject)
            ]
            json.dump(entries, file, ensure_ascii=False, indent=2)
        staged.replace(self._path)

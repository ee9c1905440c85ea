"""`gridline up` starts everything on free ports and leaves nothing behind when stopped."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

GRIDLINE = Path(sys.executable).parent / "gridline"


def descendants(pid: int) -> set[int]:
    """Every process below `pid`, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found: set[int] = set()
    pending = [pid]
    while pending:
        for child in children.get(pending.pop(), []):
            found.add(child)
            pending.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_up_runs_on_free_ports_and_sigterm_stops_every_process(tmp_path: Path) -> None:
    log = (tmp_path / "up.log").open("wb")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDLINE_")}
    up = subprocess.Popen(
        [str(GRIDLINE), "up", "--data-dir", str(tmp_path / "run")],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
    )  # fmt: skip
    try:
        run_file = tmp_path / "run" / "run.json"
        deadline = time.monotonic() + 120
        while not run_file.exists():
            assert up.poll() is None, (tmp_path / "up.log").read_text()
            assert time.monotonic() < deadline, "gridline up did not come up"
            time.sleep(0.2)
        endpoints = json.loads(run_file.read_text())
        started = descendants(up.pid)
        # Four services, the broker and Valkey at least.
        assert len(started) >= 6
        for name in ("intake", "assignment", "escalation", "notify"):
            assert httpx.get(f"{endpoints[name]}/readyz").status_code == 200
        # Embedded parts never take the ports of servers already on the machine.
        used = {int(v.split(":")[-1].split()[0]) for k, v in endpoints.items()
                if k in ("kafka", "redis", "directory_grpc")}  # fmt: skip
        assert not used & {5432, 6379, 9092}
        up.send_signal(signal.SIGTERM)
        assert up.wait(60) == 0
    finally:
        if up.poll() is None:
            up.kill()
        log.close()
    assert [pid for pid in started if alive(pid)] == []

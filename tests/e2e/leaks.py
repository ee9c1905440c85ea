"""What the leak scan (test_no_personal_data_leaks.py) needs: people's numbers and the ways they
are written, a finder that reads every one of those ways back, and an OTLP sink that keeps whole
export requests.

The sink keeps each request as protobuf JSON, not only span attributes (as `tests.otlp_sink`
does): an exception event, a status description or a resource attribute is written out to the
collector as much as an attribute is. Like that sink it runs in a process of its own, since a
gRPC server in the test process can abort a service the platform forks.

    python -m tests.e2e.leaks --out requests.jsonl

prints the port it listens on, then serves until terminated.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import signal
import sys
import threading
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable
from concurrent import futures
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote, unquote_plus

import grpc
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from services.intake.domain import id_check_char
from tests.otlp_sink import SinkProcess

_FULL_WIDTH = str.maketrans("0123456789Xx+-", "０１２３４５６７８９Ｘｘ＋－")


# --- People's numbers, and how people write them -------------------------------------------


def resident_id(rng: random.Random) -> str:
    """A valid 18-character resident ID of a Lanzhou district, born 1950-2004."""
    born = date(1950, 1, 1) + timedelta(days=rng.randrange(365 * 55))
    first17 = f"{rng.choice(('620102', '620103', '620122'))}{born:%Y%m%d}{rng.randrange(1000):03d}"
    return first17 + id_check_char(first17)


def mobile(rng: random.Random) -> str:
    """A mainland mobile; the middle four digits are what every mask hides."""
    return f"1{rng.choice('3578')}{rng.randrange(10):d}{rng.randrange(10**8):08d}"


def phone_forms(phone: str) -> list[str]:
    """A mobile as people write it in free text: grouped, dashed, full-width, with +86."""
    a, b, c = phone[:3], phone[3:7], phone[7:]
    return [
        f"{a} {b} {c}",
        f"{a}-{b}-{c}",
        phone.translate(_FULL_WIDTH),
        f"+86 {a} {b} {c}",
        f"+86-{phone}",
        f"（+86）{a}.{b}.{c}",
        f"{a} - {b} - {c}".translate(_FULL_WIDTH),
    ]


def id_forms(id_number: str) -> list[str]:
    """An ID number as people write it in free text: in groups (region, birth date, sequence),
    dashed, full-width, in fours, with a lower-case x."""
    region, born, rest = id_number[:6], id_number[6:14], id_number[14:]
    return [
        f"{region} {born} {rest}",
        f"{region}-{born}-{rest}",
        id_number.translate(_FULL_WIDTH),
        " ".join(id_number[i : i + 4] for i in range(0, 18, 4)),
        f"{region}　{born}　{rest}".lower(),
    ]


# --- Reading them back ------------------------------------------------------------------------

# Up to three characters that are not letters, digits or a mask's `*` may stand between two
# digits of one number: what people put there (space, dash, dot, bracket, `+`) and what a
# renderer adds (a quote and comma between JSON array items). The scrubber reads the same.
_BETWEEN_DIGITS = re.compile(r"(?<=[0-9])(?:[^\w*]|_){1,3}(?=[0-9Xx])")
_JSON_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")
_PERCENT_ESCAPED = re.compile(r"(?:%[0-9A-Fa-f]{2})+")


class _Folding(dict[int, str]):
    """Per code point, for `str.translate`: a digit of any script as its ASCII digit, a
    compatibility form of an ASCII character (full-width `１`, `Ｘ`, `＋`) as that character,
    anything else as it is; each worked out once (the scan reads megabytes)."""

    def __missing__(self, code: int) -> str:
        char = chr(code)
        if char.isdecimal():
            folded = str(unicodedata.decimal(char))
        else:
            normal = unicodedata.normalize("NFKC", char)
            folded = normal if len(normal) == 1 and normal.isascii() else char
        self[code] = folded
        return folded


_FOLDING = _Folding()


def readings(text: str) -> list[str]:
    """`text` as written, URL-decoded, and with JSON `\\uXXXX` escapes undone, each folded."""
    seen = [text]
    if "%" in text:
        # Only the escaped runs: unquoting megabytes whole is slow. A `+` for a space needs no
        # decoding, the number readers take it for a separator as it is.
        seen.append(_PERCENT_ESCAPED.sub(lambda m: unquote(m[0]), text))
    if "\\u" in text:
        seen.append(_JSON_ESCAPE.sub(lambda m: chr(int(m[1], 16)), text))
    return list(dict.fromkeys(t if t.isascii() else t.translate(_FOLDING) for t in seen))


@dataclass(frozen=True)
class Finding:
    """A needle found in something the platform wrote."""

    source: str
    where: str
    needle: str
    excerpt: str

    def __str__(self) -> str:
        return f"{self.source} {self.where}: {self.needle} in …{self.excerpt}…"


@dataclass
class Scan:
    """Needles by label, and what was found of them where; what each source covered.

    Numbers (`numbers`: label → digits) are looked for in every reading of a text and again
    with the separators between its digits removed; secrets (`secrets`: label → value: robot
    keys, link signatures, addresses) as they are, in every reading. A text may be scanned with
    `allowed` labels: a robot key in its own vendor's URL, a link's signature where the link is
    delivered.
    """

    numbers: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    # Characters scanned per source, and the places read: proof the scan read something.
    covered: Counter[str] = field(default_factory=Counter)
    places: defaultdict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    def found_in(self, text: str) -> list[tuple[str, str]]:
        """(label, excerpt) of every needle in `text`."""
        found: list[tuple[str, str]] = []
        for reading in readings(text):
            compact = _BETWEEN_DIGITS.sub("", reading)
            for label, digits in self.numbers.items():
                # An ID number's check character is an X, or an x.
                spellings = {digits, digits.lower()}
                hits = [(v, v.find(d)) for v in (reading, compact) for d in spellings]
                variant, at = next(((v, at) for v, at in hits if at >= 0), ("", -1))
                if at >= 0:
                    found.append((label, variant[max(0, at - 40) : at + len(digits) + 40]))
            for label, value in self.secrets.items():
                at = reading.find(value)
                if at >= 0:
                    found.append((label, reading[max(0, at - 60) : at + len(value) + 20]))
        return found

    def text(self, source: str, where: str, text: str, *, allowed: Iterable[str] = ()) -> None:
        """Scan one text the platform wrote; record what is found there and not allowed."""
        self.covered[source] += len(text)
        self.places[source].add(where)
        permitted = set(allowed)
        reported: set[str] = set()
        for label, excerpt in self.found_in(text):
            if label not in permitted and label not in reported:
                reported.add(label)
                self.findings.append(Finding(source, where, label, excerpt))


def link_signatures(text: str) -> set[str]:
    """The `s=` values of the task links in `text` (URL-decoded)."""
    return {
        unquote_plus(m[1])
        for reading in readings(text)
        for m in re.finditer(r"/t/[^\s\"'<>)?]+\?[^\s\"'<>)]*?\bs=([A-Za-z0-9_\-%]+)", reading)
    }


def flatten(value: Any) -> str:
    """A JSON-able value as text, non-ASCII kept as written."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


# --- The sink ---------------------------------------------------------------------------------


class _Dumping(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, out: Path) -> None:
        self._out = out
        self._lock = threading.Lock()

    def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: object
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        line = json_format.MessageToJson(request, indent=None, ensure_ascii=False)
        with self._lock, self._out.open("a", encoding="utf-8") as out:
            out.write(line.replace("\n", " ") + "\n")
        return trace_service_pb2.ExportTraceServiceResponse()


class WholeRequestSink(SinkProcess):
    """The collector process of whole export requests: `requests()` what came, as JSON."""

    module = "tests.e2e.leaks"

    def requests(self) -> list[dict[str, Any]]:
        """Every export request received so far."""
        if not self.out.exists():
            return []
        text = self.out.read_text(encoding="utf-8")
        complete = text[: text.rfind("\n") + 1]  # the last line may still be being written
        return [json.loads(line) for line in complete.splitlines()]


def services_of(request: dict[str, Any]) -> set[str]:
    """The `service.name` of each resource in one export request."""
    return {
        attribute["value"].get("stringValue", "")
        for resource_spans in request.get("resourceSpans", [])
        for attribute in resource_spans.get("resource", {}).get("attributes", [])
        if attribute["key"] == "service.name"
    }


def main(argv: list[str] | None = None) -> None:
    """Serve until SIGTERM, printing the port first."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_Dumping(args.out), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    sys.stdout.write(f"{port}\n")
    sys.stdout.flush()
    stopped.wait()
    server.stop(grace=1).wait()


if __name__ == "__main__":
    main()

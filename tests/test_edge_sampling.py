"""Sampling HTTP requests at the edge, before the instrumentation runs (plain ASGI, no SDK)."""

from __future__ import annotations

from opentelemetry import trace
from starlette.types import Message, Receive, Scope, Send

from gridline.tracing import EdgeSampling


class Recorder:
    """An ASGI app noting each call and whether a sampled span context was current in it."""

    def __init__(self) -> None:
        self.calls: list[bool | None] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        context = trace.get_current_span().get_span_context()
        self.calls.append(context.trace_flags.sampled if context.is_valid else None)


def http_scope(*headers: tuple[bytes, bytes]) -> Scope:
    return {"type": "http", "method": "POST", "path": "/v1/reports", "headers": list(headers)}


async def no_receive() -> Message:
    return {"type": "http.disconnect"}


async def no_send(message: Message) -> None:
    return None


async def test_ratio_zero_runs_every_request_untraced_in_a_context_marked_not_sampled() -> None:
    traced, untraced = Recorder(), Recorder()
    edge = EdgeSampling(traced, untraced, ratio=0.0)
    for _ in range(50):
        await edge(http_scope(), no_receive, no_send)
    assert traced.calls == []
    assert untraced.calls == [False] * 50
    assert not trace.get_current_span().get_span_context().is_valid  # detached afterwards


async def test_ratio_one_traces_every_request() -> None:
    traced, untraced = Recorder(), Recorder()
    edge = EdgeSampling(traced, untraced, ratio=1.0)
    for _ in range(50):
        await edge(http_scope(), no_receive, no_send)
    assert (len(traced.calls), untraced.calls) == (50, [])


async def test_a_ratio_keeps_about_that_share() -> None:
    traced, untraced = Recorder(), Recorder()
    edge = EdgeSampling(traced, untraced, ratio=0.1)
    for _ in range(4000):
        await edge(http_scope(), no_receive, no_send)
    assert 250 < len(traced.calls) < 550  # 400 expected; bounds are over 7 standard deviations
    assert len(traced.calls) + len(untraced.calls) == 4000


async def test_a_caller_s_trace_context_is_left_to_the_instrumentation() -> None:
    traced, untraced = Recorder(), Recorder()
    edge = EdgeSampling(traced, untraced, ratio=0.0)
    parent = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    await edge(http_scope((b"traceparent", parent)), no_receive, no_send)
    await edge({"type": "lifespan"}, no_receive, no_send)
    assert (len(traced.calls), untraced.calls) == (2, [])

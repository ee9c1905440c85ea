"""Calls made in the same turn of the event loop, run together as one.

Concurrent requests each needing a round trip to Redis (or a wait for the broker) make one
between them instead: the first call of a turn schedules the wave, every call of that turn
joins it, and each gets its own result back. With a linger the wave also gathers the calls of
the next few milliseconds, up to a size: a round trip's fixed cost is what most of a report's
CPU goes to when reports arrive a few at a time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class Waves(Generic[Item, Result]):
    """Runs `run_all` once over the items of every call made in one turn of the loop.

    With `linger` (seconds), over the items of every call made that long after the first, or
    of the first `most` calls when that many come sooner.

    `run_all` answers one result per item, in order; if it raises, every call of the wave
    raises the same. A wave runs to its end even if a caller waiting on it goes away.
    """

    def __init__(
        self,
        run_all: Callable[[list[Item]], Awaitable[list[Result]]],
        linger: float = 0.0,
        most: int = 0,
    ) -> None:
        self._run_all = run_all
        self._linger = linger
        # A full wave does not wait out the linger: under load, callers that each keep one
        # call in flight would otherwise be held to one call a linger.
        self._most = most
        self._waiting: list[tuple[Item, asyncio.Future[Result]]] = []
        self._timer: asyncio.Handle | None = None
        self._running: set[asyncio.Task[None]] = set()

    async def __call__(self, item: Item) -> Result:
        """The result of `item`, run with the other items of this turn."""
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[Result] = loop.create_future()
        if not self._waiting:
            if self._linger:
                self._timer = loop.call_later(self._linger, self._start)
            else:
                self._timer = loop.call_soon(self._start)
        self._waiting.append((item, answer))
        if len(self._waiting) == self._most:
            self._start()
        return await asyncio.shield(answer)

    def _start(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        wave, self._waiting = self._waiting, []
        task = asyncio.ensure_future(self._run(wave))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _run(self, wave: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        try:
            results = await self._run_all([item for item, _ in wave])
        except asyncio.CancelledError:
            for _, answer in wave:
                answer.cancel()
            raise
        except Exception as error:
            for _, answer in wave:
                answer.set_exception(error)
        else:
            for (_, answer), result in zip(wave, results, strict=True):
                answer.set_result(result)

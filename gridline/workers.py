"""Background loops that run one pass every tick while their context is open."""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod

import grpc

from gridline.bus.producer import BrokerUnavailable
from gridline.logging import get_logger

log = get_logger(__name__)


class PeriodicWorker(ABC):
    """Runs `run_pass()` every `tick` seconds from `__aenter__` until `__aexit__`.

    A pass that fails is logged and the next tick tries again: an unreachable broker or peer
    service is expected during restarts and only warned about.
    """

    name = "worker"

    def __init__(self, tick: float) -> None:
        self._tick = tick
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def stopping(self) -> bool:
        """Whether the context is closing; long passes check it between steps."""
        return self._stopping.is_set()

    async def __aenter__(self) -> PeriodicWorker:
        self._task = asyncio.create_task(self._run(), name=self.name)
        return self

    async def __aexit__(self, *_: object) -> None:
        self._stopping.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    async def alive(self) -> bool:
        """Readiness: the loop is running."""
        return self._task is not None and not self._task.done()

    @abstractmethod
    async def run_pass(self) -> None:
        """One pass of the worker's job."""

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.run_pass()
            except BrokerUnavailable as exc:
                log.warning("broker unavailable, waiting", worker=self.name, error=str(exc))
            except grpc.aio.AioRpcError as exc:
                log.warning("peer unavailable, waiting", worker=self.name, code=exc.code().name)
            except Exception:
                log.exception("pass failed", worker=self.name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._tick)

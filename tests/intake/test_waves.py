"""Calls made in one turn of the event loop run together; each caller gets its own answer."""

from __future__ import annotations

import asyncio

import pytest

from services.intake.waves import Waves


class _Kept:
    """A `run_all` answering each item with itself; keeps the items of every wave it ran."""

    def __init__(self) -> None:
        self.runs: list[list[int]] = []

    async def __call__(self, items: list[int]) -> list[int]:
        self.runs.append(items)
        return items


async def _call_at(waves: Waves[int, int], moment: float, item: int) -> int:
    """Call `waves` with `item` after `moment` seconds."""
    await asyncio.sleep(moment)
    return await waves(item)


async def test_calls_of_one_turn_share_one_run_and_get_their_own_results() -> None:
    runs: list[list[int]] = []

    async def double_all(items: list[int]) -> list[int]:
        runs.append(items)
        await asyncio.sleep(0)
        return [2 * item for item in items]

    waves = Waves(double_all)
    assert await asyncio.gather(*(waves(i) for i in range(5))) == [0, 2, 4, 6, 8]
    assert await waves(7) == 14
    assert runs == [[0, 1, 2, 3, 4], [7]]


async def test_a_failing_run_fails_every_call_of_its_wave() -> None:
    async def refuse(items: list[int]) -> list[int]:
        raise ConnectionError(f"down for {len(items)}")

    waves = Waves(refuse)
    answers = await asyncio.gather(waves(1), waves(2), return_exceptions=True)
    assert [str(a) for a in answers] == ["down for 2", "down for 2"]


async def test_a_wave_runs_to_its_end_when_a_caller_goes_away() -> None:
    finished: list[list[int]] = []
    release = asyncio.Event()

    async def slow(items: list[int]) -> list[int]:
        await release.wait()
        finished.append(items)
        return items

    waves = Waves(slow)
    leaving = asyncio.ensure_future(waves(1))
    staying = asyncio.ensure_future(waves(2))
    await asyncio.sleep(0.01)
    leaving.cancel()
    release.set()
    assert await staying == 2
    with pytest.raises(asyncio.CancelledError):
        await leaving
    assert finished == [[1, 2]]


async def test_a_linger_gathers_the_calls_of_the_next_moments_into_the_wave() -> None:
    keep = _Kept()
    waves = Waves(keep, linger=0.2)

    # Two calls in different turns within the linger share a wave; one after it starts another.
    # list(): typeshed types a gather of fixed arguments as a tuple; it returns a list.
    assert list(
        await asyncio.gather(
            _call_at(waves, 0, 1), _call_at(waves, 0.05, 2), _call_at(waves, 0.5, 3)
        )
    ) == [1, 2, 3]
    assert keep.runs == [[1, 2], [3]]


async def test_a_full_wave_goes_at_once_and_the_next_call_starts_another() -> None:
    keep = _Kept()
    # A linger no test waits out: only a full wave can answer these.
    waves = Waves(keep, linger=600, most=3)
    calls = [asyncio.ensure_future(waves(i)) for i in range(4)]
    assert await asyncio.wait_for(asyncio.gather(*calls[:3]), 5) == [0, 1, 2]
    assert keep.runs == [[0, 1, 2]]
    await asyncio.sleep(0.05)
    assert not calls[3].done()  # the fourth waits for its own wave's linger or fill
    assert await asyncio.wait_for(asyncio.gather(*(waves(i) for i in (4, 5))), 5) == [4, 5]
    assert await calls[3] == 3
    assert keep.runs == [[0, 1, 2], [3, 4, 5]]


async def test_a_full_wave_leaves_no_linger_behind_to_cut_the_next_one_short() -> None:
    keep = _Kept()
    waves = Waves(keep, linger=1.0, most=2)

    # The first wave fills at once; the second starts at 0.5 s and lingers to 1.5 s, past the
    # moment (1 s) at which the first one's linger would have started it with one call.
    assert list(
        await asyncio.gather(
            _call_at(waves, 0, 1),
            _call_at(waves, 0, 2),
            _call_at(waves, 0.5, 3),
            _call_at(waves, 1.1, 4),
        )
    ) == [1, 2, 3, 4]
    assert keep.runs == [[1, 2], [3, 4]]

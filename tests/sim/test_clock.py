"""The virtual clock loop: time jumps, asyncio semantics hold, real I/O is refused."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import pytest

from peerwire.errors import UsageError
from peerwire.sim import SimulationStalled, VirtualClockLoop, current_rng, run_virtual


def test_sleep_takes_virtual_time_only() -> None:
    async def main() -> tuple[float, float]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        await asyncio.sleep(3600)
        return start, loop.time()

    wall = time.perf_counter()
    start, end = run_virtual(main(), start=100.0)
    assert start == 100.0
    assert end == 3700.0
    assert time.perf_counter() - wall < 5.0  # an hour of simulated time, no real waiting


def test_timers_fire_in_order_at_their_exact_times() -> None:
    async def main() -> list[tuple[str, float]]:
        loop = asyncio.get_running_loop()
        fired: list[tuple[str, float]] = []
        done = loop.create_future()
        for name, when in (("c", 3.0), ("a", 1.0), ("b", 2.5), ("a2", 1.0)):
            loop.call_at(when, lambda n=name: fired.append((n, loop.time())))
        loop.call_at(10.0, done.set_result, None)
        await done
        return fired

    assert run_virtual(main()) == [("a", 1.0), ("a2", 1.0), ("b", 2.5), ("c", 3.0)]


def test_timeout_fires_on_virtual_time() -> None:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(30):
                await asyncio.Event().wait()
        return loop.time()

    assert run_virtual(main()) == 30.0


def test_many_tiny_sleeps_accumulate_exactly() -> None:
    async def main() -> float:
        for _ in range(1000):
            await asyncio.sleep(0.001)
        return asyncio.get_running_loop().time()

    assert run_virtual(main()) == pytest.approx(1.0, abs=1e-9)


def test_other_threads_can_wake_an_idle_loop() -> None:
    async def main() -> str:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[str] = loop.create_future()

        def worker() -> None:
            time.sleep(0.05)
            loop.call_soon_threadsafe(fut.set_result, "woken")

        thread = threading.Thread(target=worker)
        thread.start()
        try:
            return await fut
        finally:
            thread.join()

    assert run_virtual(main()) == "woken"


def test_executor_works() -> None:
    async def main() -> int:
        return await asyncio.get_running_loop().run_in_executor(None, sum, [1, 2, 3])

    assert run_virtual(main()) == 6


def test_real_sockets_are_refused() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        with pytest.raises(UsageError, match="real I/O"):
            await asyncio.open_connection("127.0.0.1", 9)
        with pytest.raises(UsageError, match="real I/O"):
            await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        a, b = socket.socketpair()
        try:
            with pytest.raises(UsageError, match="real I/O"):
                loop.add_reader(a.fileno(), lambda: None)
        finally:
            a.close()
            b.close()

    run_virtual(main())


def test_a_deadlock_raises_instead_of_hanging() -> None:
    async def main() -> None:
        await asyncio.get_running_loop().create_future()  # nobody will ever resolve it

    with pytest.raises(SimulationStalled):
        run_virtual(main(), stall_timeout=0.05)


def test_seeded_rng_and_explicit_advance() -> None:
    async def main() -> tuple[float, float]:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, VirtualClockLoop)
        loop.advance(5.0)
        with pytest.raises(UsageError):
            loop.advance(-1.0)
        return current_rng().random(), loop.time()

    first = run_virtual(main(), seed=7)
    assert first == run_virtual(main(), seed=7)
    assert first[1] == 5.0
    assert run_virtual(main(), seed=8)[0] != first[0]


def test_current_rng_needs_the_virtual_loop() -> None:
    async def main() -> None:
        current_rng()

    with pytest.raises(UsageError):
        asyncio.run(main())


def test_instant_end_callbacks_run_after_everything_else_at_that_time() -> None:
    async def main() -> list[tuple[str, float]]:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, VirtualClockLoop)
        seen: list[tuple[str, float]] = []

        def note(what: str) -> None:
            seen.append((what, loop.time()))

        loop.call_later(1.0, note, "next instant")
        loop.call_at_instant_end(note, "end 1")
        loop.call_soon(note, "soon")
        loop.call_soon(lambda: loop.call_soon(note, "two passes later"))
        loop.call_at(loop.time(), note, "timer due now")
        cancelled = loop.call_at_instant_end(note, "cancelled")
        cancelled.cancel()
        loop.call_at_instant_end(note, "end 2")
        await asyncio.sleep(2.0)
        return seen

    assert run_virtual(main()) == [
        ("soon", 0.0),
        ("timer due now", 0.0),
        ("two passes later", 0.0),
        ("end 1", 0.0),
        ("end 2", 0.0),
        ("next instant", 1.0),
    ]

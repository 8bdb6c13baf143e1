"""``Config.idle_timeout``: connections without streams close after it, busy ones stay.

Runs on the simulator's virtual clock, so the minutes pass at once and the
times below are exact.
"""

from __future__ import annotations

import asyncio

from peerwire import Config
from peerwire.host.host import IDLE_REAP_LATENESS
from peerwire.mux.stream import Stream
from peerwire.sim import run_virtual
from peerwire.testing import running_nodes

TIMEOUT = 30.0
HOLD = "/test/hold/1.0.0"
ECHO = "/test/echo/1.0.0"


async def _hold(stream: Stream) -> None:
    # Ends its side at once, then waits: when the dialer ends its side much
    # later, nothing more arrives from here to count as activity.
    await stream.close_write()
    await stream.read()


async def _echo(stream: Stream) -> None:
    await stream.write(await stream.read())


async def _scenario() -> dict[str, bool]:
    loop = asyncio.get_running_loop()
    seen: dict[str, bool] = {}
    configs = [Config(idle_timeout=TIMEOUT)] * 4
    async with running_nodes(4, "memory", configs=configs) as (a, quiet, busy, later):
        busy.set_stream_handler(HOLD, _hold)
        later.set_stream_handler(ECHO, _echo)
        start = loop.time()
        for other in (quiet, busy, later):
            await a.connect(other.addrs[0])
        held = await a.open_stream(busy.peer_id, HOLD)
        await asyncio.sleep(start + 20.0 - loop.time())
        echo = await a.open_stream(later.peer_id, ECHO)  # activity at t=20
        await echo.write(b"x")
        await echo.close_write()
        assert await echo.read() == b"x"
        await echo.close()

        def connected(node_id: object) -> bool:
            return a.host.connection(node_id) is not None  # type: ignore[arg-type]

        await asyncio.sleep(start + TIMEOUT - 1.0 - loop.time())
        seen["quiet open before the timeout"] = connected(quiet.peer_id)
        await asyncio.sleep(start + TIMEOUT + IDLE_REAP_LATENESS + 1.0 - loop.time())
        seen["quiet closed after the timeout"] = not connected(quiet.peer_id)
        seen["busy kept while its stream is open"] = connected(busy.peer_id)
        seen["active one kept"] = connected(later.peer_id)
        await asyncio.sleep(start + 20.0 + TIMEOUT + IDLE_REAP_LATENESS + 1.0 - loop.time())
        seen["active one closed a timeout after its last activity"] = not connected(later.peer_id)
        # The held stream carried nothing since t=0; idle time counts from its end.
        ended = loop.time()
        assert await held.read() == b""
        await held.close()
        await asyncio.sleep(ended + TIMEOUT - 0.5 - loop.time())
        seen["busy kept a timeout after its stream ended"] = connected(busy.peer_id)
        await asyncio.sleep(ended + TIMEOUT + IDLE_REAP_LATENESS + 1.0 - loop.time())
        seen["busy closed once idle for the timeout"] = not connected(busy.peer_id)
    return seen


def test_idle_connections_close_and_busy_ones_stay() -> None:
    seen = run_virtual(_scenario(), seed=1)
    assert seen == dict.fromkeys(seen, True), seen
    assert len(seen) == 7

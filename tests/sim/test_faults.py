"""Application-level faults: dropped and delayed requests and messages, and the counters."""

from __future__ import annotations

import asyncio
import random

import pytest

from peerwire.errors import RemoteError, Timeout, UsageError
from peerwire.mux.stream import Stream
from peerwire.protocols.messaging.message import Message
from peerwire.sim import LinkSpec, MessageFaults, Simulation, install_message_faults, run_virtual

RPC = "/test/rpc/1.0.0"


async def _rpc_handler(stream: Stream) -> None:
    data = await stream.read()
    await stream.write(data)


async def _rpc(node: object, peer: object, data: bytes) -> bytes:
    stream = await node.open_stream(peer, RPC)  # type: ignore[attr-defined]
    await stream.write(data)
    await stream.close_write()
    answer: bytes = await stream.read()
    await stream.close()
    return answer


def run(faults: MessageFaults, body: object) -> object:
    async def main() -> object:
        async with asyncio.timeout(600):  # virtual seconds: a hang fails, never spins
            return await inner()

    async def inner() -> object:
        sim = Simulation(seed=5, link=LinkSpec(latency=0.01), fast_crypto=True)
        server = sim.add_node(faults=faults)
        client = sim.add_node(bootstrap=[server])
        server.node.set_stream_handler(RPC, _rpc_handler)
        await sim.start(server)
        await sim.start(client)
        await asyncio.sleep(1)
        try:
            return await body(sim, server, client)  # type: ignore[operator]
        finally:
            await sim.stop_all()

    return run_virtual(main())


def test_no_faults_counts_requests_and_messages() -> None:
    async def body(sim: Simulation, server, client) -> tuple[int, int, int]:  # type: ignore[no-untyped-def]
        got: list[bytes] = []
        server.node.add_handler("/m", lambda m: got.append(m.data))
        for i in range(5):
            assert await _rpc(client.node, server.peer_id, b"%d" % i) == b"%d" % i
        for _ in range(3):
            await client.node.send(server.peer_id, "/m", b"hi")
        await asyncio.sleep(1)
        c = server.counters
        return c.requests, c.messages, len(got)

    assert run(MessageFaults(), body) == (5, 3, 3)


def test_dropped_requests_go_unanswered_until_the_requester_gives_up() -> None:
    async def body(sim: Simulation, server, client) -> float:  # type: ignore[no-untyped-def]
        loop = asyncio.get_running_loop()
        start = loop.time()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(7):
                await _rpc(client.node, server.peer_id, b"anyone?")
        assert server.counters.dropped == 1
        return loop.time() - start

    assert run(MessageFaults(drop=1.0), body) == pytest.approx(7.0)


def test_delayed_requests_are_answered_late() -> None:
    async def body(sim: Simulation, server, client) -> float:  # type: ignore[no-untyped-def]
        loop = asyncio.get_running_loop()
        start = loop.time()
        assert await _rpc(client.node, server.peer_id, b"slow") == b"slow"
        assert server.counters.delayed == 1
        return loop.time() - start

    assert run(MessageFaults(delay=1.0, delay_by=3.0), body) >= 3.0


def test_dropped_messages_never_reach_the_handler() -> None:
    async def body(sim: Simulation, server, client) -> tuple[int, int]:  # type: ignore[no-untyped-def]
        got: list[Message] = []
        server.node.add_handler("/m", got.append)
        for _ in range(4):
            await client.node.send(server.peer_id, "/m", b"x")
        with pytest.raises(RemoteError):  # a dropped *request* is refused, not ignored
            await client.node.request(server.peer_id, "/m", b"x", timeout=5)
        await asyncio.sleep(1)
        return len(got), server.counters.dropped

    assert run(MessageFaults(drop=1.0), body) == (0, 5)


def test_infrastructure_is_never_faulted() -> None:
    async def body(sim: Simulation, server, client) -> float:  # type: ignore[no-untyped-def]
        return await client.node.ping(server.peer_id)

    assert run(MessageFaults(drop=1.0), body) >= 0.0


def test_only_listed_protocols_are_faulted() -> None:
    async def body(sim: Simulation, server, client) -> bytes:  # type: ignore[no-untyped-def]
        return await _rpc(client.node, server.peer_id, b"fine")

    assert run(MessageFaults(drop=1.0, protocols=frozenset({"/other"})), body) == b"fine"


def test_fault_rates_follow_the_seeded_rng() -> None:
    async def body(sim: Simulation, server, client) -> int:  # type: ignore[no-untyped-def]
        async def one(i: int) -> None:
            try:
                async with asyncio.timeout(2):
                    await _rpc(client.node, server.peer_id, b"%d" % i)
            except (TimeoutError, Timeout):
                pass

        await asyncio.gather(*(one(i) for i in range(200)))
        return server.counters.dropped

    first = run(MessageFaults(drop=0.3), body)
    assert 30 <= first <= 90  # type: ignore[operator]
    assert run(MessageFaults(drop=0.3), body) == first


@pytest.mark.parametrize(
    "kwargs",
    [{"drop": 1.5}, {"delay": -0.1}, {"drop": 0.6, "delay": 0.6}, {"hold": 0.0}],
)
def test_fault_config_validates(kwargs: dict[str, float]) -> None:
    with pytest.raises(UsageError):
        MessageFaults(**kwargs)  # type: ignore[arg-type]


def test_faults_install_once() -> None:
    async def body(sim: Simulation, server, client) -> None:  # type: ignore[no-untyped-def]
        with pytest.raises(UsageError):
            install_message_faults(server.node, None, rng=random.Random(0))

    run(MessageFaults(), body)

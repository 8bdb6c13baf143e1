"""SimNetwork's link model, partitions, dead hosts and churn, with real nodes."""

from __future__ import annotations

import asyncio
import gc
import random
import weakref
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

from peerwire.errors import ConnectionLost, PeerwireError, Timeout, UsageError
from peerwire.protocols.messaging.message import Message
from peerwire.sim import LinkSpec, SimNetwork, SimNode, Simulation, run_virtual

T = TypeVar("T")
ECHO = "/echo/1.0.0"


def _echo(msg: Message) -> bytes:
    return msg.data


def simulate(
    body: Callable[[Simulation, list[SimNode]], Awaitable[T]],
    *,
    nodes: int = 2,
    link: LinkSpec | None = None,
    **kwargs: object,
) -> T:
    """Start ``nodes`` nodes (node i dials node 0), run ``body``, stop everything."""

    async def main() -> T:
        sim = Simulation(seed=3, link=link, fast_crypto=True, **kwargs)  # type: ignore[arg-type]
        first = sim.add_node()
        group = [first] + [sim.add_node(bootstrap=[first]) for _ in range(nodes - 1)]
        for node in group:
            node.node.add_handler(ECHO, _echo)
            await sim.start(node)
        await asyncio.sleep(1.0)  # let identify finish
        try:
            return await body(sim, group)
        finally:
            await sim.stop_all()

    return run_virtual(main())


def now() -> float:
    return asyncio.get_running_loop().time()


async def timed_request(src: SimNode, dst: SimNode, data: bytes = b"x", **kw: float) -> float:
    start = now()
    assert await src.node.request(dst.peer_id, ECHO, data, **kw) == data
    return now() - start


def test_request_takes_one_round_trip_of_latency() -> None:
    async def body(sim: Simulation, n: list[SimNode]) -> tuple[float, float]:
        await timed_request(n[1], n[0])  # opens the message stream
        return await timed_request(n[1], n[0]), await timed_request(n[0], n[1])

    there, back = simulate(body, link=LinkSpec(latency=0.1))
    assert there == pytest.approx(0.2, abs=1e-6)
    assert back == pytest.approx(0.2 + 0.2, abs=1e-6)  # n0 opens its own stream first


def test_jitter_never_reorders_a_connection() -> None:
    async def body(sim: Simulation, n: list[SimNode]) -> list[int]:
        got: list[int] = []
        done = asyncio.Event()

        def collect(msg: Message) -> None:
            got.append(int(msg.data))
            if len(got) == 300:
                done.set()

        n[0].node.add_handler("/seq", collect)
        for i in range(300):
            await n[1].node.send(n[0].peer_id, "/seq", str(i).encode())
            await asyncio.sleep(0.001)
        async with asyncio.timeout(60):
            await done.wait()
        return got

    assert simulate(body, link=LinkSpec(latency=0.05, jitter=0.05)) == list(range(300))


def test_bandwidth_serialises_bytes() -> None:
    size = 500_000

    async def body(sim: Simulation, n: list[SimNode]) -> float:
        await timed_request(n[1], n[0])
        return await timed_request(n[1], n[0], b"z" * size, timeout=60)

    elapsed = simulate(body, link=LinkSpec(latency=0.01, bandwidth=1_000_000))
    assert elapsed >= 2 * size / 1_000_000  # there and back again
    assert elapsed < 2 * size / 1_000_000 + 1.0


def test_loss_is_retransmission_delay_with_backoff() -> None:
    net = SimNetwork(rng=random.Random(1))
    spec = LinkSpec(loss=0.5, rto=0.2, mss=1000)
    delays = {net._retransmit_delay(500, spec) for _ in range(2000)}
    assert delays <= {0.2 * (2**k - 1) for k in range(40)}
    assert {0.2 * (2**k - 1) for k in range(4)} <= delays
    lossless = LinkSpec(loss=0.0)
    assert net._retransmit_delay(10_000, lossless) == 0.0


def test_lossy_link_delivers_everything_in_order_but_later() -> None:
    async def body(sim: Simulation, n: list[SimNode]) -> list[float]:
        await timed_request(n[1], n[0])
        return [await timed_request(n[1], n[0], b"%d" % i) for i in range(100)]

    times = simulate(body, link=LinkSpec(latency=0.05, loss=0.2, rto=0.2))
    assert min(times) == pytest.approx(0.1, abs=1e-6)
    assert max(times) >= 0.3  # some segment was retransmitted


def test_same_seed_same_link_randomness() -> None:
    async def body(sim: Simulation, n: list[SimNode]) -> list[float]:
        return [await timed_request(n[1], n[0]) for _ in range(30)]

    link = LinkSpec(latency=0.02, jitter=0.03, loss=0.1)
    assert simulate(body, link=link) == simulate(body, link=link)


def test_partition_holds_traffic_and_heal_releases_it() -> None:
    async def body(sim: Simulation, n: list[SimNode]) -> None:
        a, b, c = n
        await timed_request(a, c)
        sim.network.partition([c.host])
        assert not sim.network.reachable(a.host, c.host)
        assert sim.network.reachable(a.host, b.host)
        with pytest.raises(Timeout):
            await a.node.request(c.peer_id, ECHO, b"lost?", timeout=5)
        await timed_request(a, b)
        pending = asyncio.ensure_future(a.node.request(c.peer_id, ECHO, b"held", timeout=30))
        await asyncio.sleep(5)
        assert not pending.done()
        sim.network.heal()
        assert await pending == b"held"
        assert a.node.connection(c.peer_id) is not None  # survived: shorter than user_timeout

    simulate(body, nodes=3, link=LinkSpec(latency=0.05))


def test_long_partition_resets_blocked_connections() -> None:
    async def body(sim: Simulation, n: list[SimNode]) -> None:
        a, c = n
        await timed_request(a, c)
        sim.network.partition([c.host])
        with pytest.raises(PeerwireError):
            await a.node.request(c.peer_id, ECHO, b"x", timeout=sim.network.user_timeout + 5)
        assert a.node.connection(c.peer_id) is None
        sim.network.heal()

    simulate(body, link=LinkSpec(latency=0.05), user_timeout=20.0)


def test_dial_across_a_partition_times_out() -> None:
    async def body(sim: Simulation, n: list[SimNode]) -> float:
        a, _b = n
        c = sim.add_node()
        await sim.start(c)
        sim.network.partition([c.host])
        start = now()
        with pytest.raises(ConnectionLost):
            await a.node.connect(c.addr)
        return now() - start

    elapsed = simulate(body, link=LinkSpec(latency=0.05), connect_timeout=2.5)
    assert elapsed == pytest.approx(2.5, abs=1e-6)


def test_silent_crash_is_noticed_only_through_timeouts() -> None:
    async def body(sim: Simulation, n: list[SimNode]) -> None:
        a, c = n
        await timed_request(a, c)
        await sim.crash(c, mode="silent")
        assert c.state == "crashed"
        assert a.node.connection(c.peer_id) is not None  # no goodbye arrived
        with pytest.raises(PeerwireError):
            await a.node.request(c.peer_id, ECHO, b"x", timeout=5)
        await asyncio.sleep(sim.network.user_timeout)
        assert a.node.connection(c.peer_id) is None  # TCP gave up after the user timeout

    simulate(body, link=LinkSpec(latency=0.05))


def test_reset_crash_is_seen_at_once_and_graceful_leave_says_goodbye() -> None:
    async def body(sim: Simulation, n: list[SimNode]) -> None:
        a, b, c = n
        await timed_request(b, a)
        await timed_request(c, a)
        await sim.crash(b, mode="reset")
        await sim.leave(c)
        await asyncio.sleep(0.5)
        assert a.node.connection(b.peer_id) is None
        assert a.node.connection(c.peer_id) is None
        start = now()
        with pytest.raises(ConnectionLost):
            await a.node.connect(b.addr)
        assert now() - start == pytest.approx(0.1, abs=1e-6)  # refused after one round trip

    simulate(body, nodes=3, link=LinkSpec(latency=0.05))


def test_restart_brings_the_same_identity_back() -> None:
    async def body(sim: Simulation, n: list[SimNode]) -> None:
        a, b = n
        peer = b.peer_id
        await sim.crash(b)
        await sim.restart(b)
        assert b.peer_id == peer
        assert b.alive
        b.node.add_handler(ECHO, _echo)
        # a still holds the connection to b's previous life: the new b resets it.
        with pytest.raises(ConnectionLost):
            await a.node.request(b.peer_id, ECHO, b"stale")
        await a.node.connect(b.addr)
        await timed_request(a, b)

    simulate(body, link=LinkSpec(latency=0.05))


def test_what_a_host_writes_in_one_instant_leaves_as_one_packet() -> None:
    """Connection set-up: security proposal, both Exchanges, the muxer echo with
    the listener's identify request, the dialer's identify request with its answer,
    the listener's answer with its half-close, the dialer's half-close: 7 packets,
    where flushing once per loop pass sent 10."""

    async def main() -> int:
        sim = Simulation(seed=1, fast_crypto=True)
        a, b = sim.add_node(), sim.add_node()
        await sim.start(a)
        await sim.start(b)
        stats = sim.network.stats

        def packets() -> int:
            return sum(s.packets_sent for s in stats.values())

        before = packets()
        await a.node.connect(b.addr)
        await asyncio.sleep(1.0)
        set_up = packets() - before
        await sim.stop_all()
        return set_up

    assert run_virtual(main()) == 7


def test_a_closed_connection_is_freed_without_the_garbage_collector() -> None:
    """Simulations run with the cyclic GC off. A closed connection (both ends,
    the muxer and the stack above) must go by reference counting alone, or
    10,000 nodes keep every connection they ever closed."""

    async def body(sim: Simulation, n: list[SimNode]) -> list[weakref.ref[object]]:
        a, b = n
        await timed_request(a, b)
        conn = a.node.connection(b.peer_id)
        assert conn is not None
        theirs = b.node.connection(a.peer_id)
        refs = [weakref.ref(x) for x in (conn, conn.raw, theirs, conn.raw._peer)]  # type: ignore[attr-defined]
        del theirs
        await conn.close()
        del conn
        await asyncio.sleep(1.0)
        assert a.node.connection(b.peer_id) is None
        assert b.node.connection(a.peer_id) is None
        assert sim.network.connections_of(a.host) == []
        assert sim.network.connections_of(b.host) == []
        return refs

    enabled = gc.isenabled()
    gc.disable()
    try:
        refs = simulate(body, link=LinkSpec(latency=0.05))
        alive = [r() for r in refs]
    finally:
        if enabled:
            gc.enable()
    assert alive == [None, None, None, None]


def test_streams_opened_with_the_muxer_answer_are_served() -> None:
    """Both sides identify each other even when the listener's identify stream
    arrives in the same delivery as its muxer answer (a race real TCP has too)."""

    async def body(sim: Simulation, n: list[SimNode]) -> None:
        a, b = n
        for x, y in ((a, b), (b, a)):
            record = x.node.peerstore.get(y.peer_id)
            assert record is not None
            assert "/ipfs/id/1.0.0" in record.protocols

    simulate(body, link=LinkSpec(latency=0.05))


def test_egress_delay_slows_one_host() -> None:
    async def body(sim: Simulation, n: list[SimNode]) -> float:
        await timed_request(n[1], n[0])
        sim.network.set_egress_delay(n[0].host, 1.0)
        return await timed_request(n[1], n[0])

    assert simulate(body, link=LinkSpec(latency=0.05)) == pytest.approx(1.1, abs=1e-6)


def test_per_pair_links_override_the_default() -> None:
    async def body(sim: Simulation, n: list[SimNode]) -> tuple[float, float]:
        a, b, c = n
        sim.network.set_link(a.host, c.host, LinkSpec(latency=0.5))
        await timed_request(a, b)
        await timed_request(a, c)
        return await timed_request(a, b), await timed_request(a, c)

    ab, ac = simulate(body, nodes=3, link=LinkSpec(latency=0.01))
    assert ab == pytest.approx(0.02, abs=1e-6)
    assert ac == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"latency": -1.0},
        {"loss": 1.0},
        {"bandwidth": 0.0},
        {"mss": 0},
    ],
)
def test_link_spec_validates(kwargs: dict[str, float]) -> None:
    with pytest.raises(UsageError):
        LinkSpec(**kwargs)  # type: ignore[arg-type]


def test_a_host_is_in_one_partition_group_only() -> None:
    net = SimNetwork(rng=random.Random(0))
    with pytest.raises(UsageError):
        net.partition(["a", "b"], ["b"])


def test_churn_joins_leaves_and_crashes_deterministically() -> None:
    from peerwire.sim import ChurnSpec

    async def body(sim: Simulation, n: list[SimNode]) -> list[tuple[str, str]]:
        events = await sim.churn(ChurnSpec(interval=2.0, bootstrap=2), duration=40.0)
        assert len(events) == 20
        kinds = {e.kind for e in events}
        assert kinds == {"join", "leave", "crash"}
        assert len(sim.live()) >= 2
        for event in events:
            node = next(x for x in sim.nodes if x.host == event.host)
            assert node.state in ("up", "left", "crashed")
        return [(e.kind, e.host) for e in events]

    first = simulate(body, nodes=4, link=LinkSpec(latency=0.02))
    assert first == simulate(body, nodes=4, link=LinkSpec(latency=0.02))

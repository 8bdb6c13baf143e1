"""FakeNet: a seeded datagram network that drops, duplicates, delays and reorders."""

from __future__ import annotations

import asyncio

import pytest

from peerwire.errors import ClosedError, UsageError
from peerwire.testing import Datagram, FakeNet, run_virtual


async def _exchange(net: FakeNet, count: int) -> list[bytes]:
    a, b = net.endpoint("a"), net.endpoint("b")
    for i in range(count):
        a.send("b", b"%d" % i)
    got: list[bytes] = []
    try:
        async with asyncio.timeout(10):
            while True:
                got.append((await b.recv()).data)
    except TimeoutError:
        pass
    return got


def test_perfect_network_delivers_in_order_after_the_delay() -> None:
    async def main() -> tuple[list[bytes], float]:
        net = FakeNet(delay=0.25)
        a, b = net.endpoint("a"), net.endpoint("b")
        a.send("b", b"one")
        a.send("b", b"two")
        first = await b.recv()
        when = asyncio.get_running_loop().time()
        second = await b.recv()
        assert first == Datagram("a", "b", b"one")
        return [first.data, second.data], when

    assert run_virtual(main()) == ([b"one", b"two"], 0.25)


def test_seeded_misfortune_repeats() -> None:
    def once(seed: int) -> list[bytes]:
        net = FakeNet(seed=seed, drop=0.2, duplicate=0.2, reorder=0.3, jitter=0.01)
        return run_virtual(_exchange(net, 200))

    first = once(1)
    assert first == once(1)
    assert first != once(2)
    assert len(set(first)) < 200  # some were lost
    assert len(first) > len(set(first))  # some were duplicated
    assert first != sorted(set(first), key=lambda d: int(d))  # some overtook others


def test_route_hook_scripts_deliveries() -> None:
    def route(packet: Datagram) -> list[tuple[float, Datagram]]:
        if packet.data == b"drop me":
            return []
        return [(0.0, packet), (1.0, Datagram(packet.src, packet.dst, packet.data.upper()))]

    async def main() -> list[bytes]:
        net = FakeNet(route=route)
        a, b = net.endpoint("a"), net.endpoint("b")
        a.send("b", b"drop me")
        a.send("b", b"x")
        got = [(await b.recv()).data, (await b.recv()).data]
        assert net.stats.dropped == 1
        assert net.stats.duplicated == 1
        return got

    assert run_virtual(main()) == [b"x", b"X"]


def test_full_receive_queue_drops_like_udp_and_close_wakes_readers() -> None:
    async def main() -> int:
        net = FakeNet()
        a, _b = net.endpoint("a"), net.endpoint("b", maxsize=3)
        for _ in range(10):
            a.send("b", b"x")
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        c = net.endpoint("c")
        reader = asyncio.ensure_future(c.recv())
        await asyncio.sleep(0)
        c.close()
        with pytest.raises(ClosedError):
            await reader
        a.close()
        with pytest.raises(ClosedError):
            a.send("b", b"y")
        return net.stats.overflowed

    assert run_virtual(main()) == 7


def test_fakenet_validates() -> None:
    with pytest.raises(UsageError):
        FakeNet(drop=2.0)
    net = FakeNet()
    net.endpoint("a")
    with pytest.raises(UsageError):
        net.endpoint("a")

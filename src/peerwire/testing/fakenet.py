"""A seeded in-memory datagram network for testing datagram protocols (UDP-like).

Unlike the memory transport (a reliable byte stream), :class:`FakeNet` moves
independent datagrams and can lose, duplicate, delay and reorder them, each
decision drawn from one seeded :class:`random.Random`: the same seed gives the
same misfortune. Every datagram passes through :meth:`FakeNet.route_packet`,
which returns the deliveries to make (``(delay, datagram)`` pairs: none to
drop it, two to duplicate it); override it, or pass ``route=``, to script
exactly what a test needs. Run it on a :class:`~peerwire.sim.VirtualClockLoop`
and delays cost no real time.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..errors import ClosedError, UsageError

__all__ = ["Datagram", "FakeEndpoint", "FakeNet", "FakeNetStats"]

Route = Callable[["Datagram"], Iterable[tuple[float, "Datagram"]]]


@dataclass(frozen=True, slots=True)
class Datagram:
    """One datagram: where from, where to, what."""

    src: str
    dst: str
    data: bytes


@dataclass(slots=True)
class FakeNetStats:
    sent: int = 0
    delivered: int = 0
    dropped: int = 0
    """Lost by the network (``drop``) or sent to nobody."""
    duplicated: int = 0
    overflowed: int = 0
    """Arrived at an endpoint whose receive queue was full (dropped, as UDP does)."""


class FakeNet:
    """Datagram endpoints by name, with seeded loss, duplication, delay and reordering.

    ``drop``/``duplicate``/``reorder`` are per-datagram probabilities. Each
    datagram is delayed ``delay`` plus uniform ``[0, jitter)``; a reordered
    one waits ``reorder_delay`` more, so later datagrams overtake it.
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        drop: float = 0.0,
        duplicate: float = 0.0,
        reorder: float = 0.0,
        delay: float = 0.0,
        jitter: float = 0.0,
        reorder_delay: float = 0.05,
        route: Route | None = None,
    ) -> None:
        for name, p in (("drop", drop), ("duplicate", duplicate), ("reorder", reorder)):
            if not 0.0 <= p <= 1.0:
                raise UsageError(f"{name} must be a probability in [0, 1]")
        if delay < 0 or jitter < 0 or reorder_delay < 0:
            raise UsageError("delays must be >= 0")
        self.rng = random.Random(seed)
        self.drop = drop
        self.duplicate = duplicate
        self.reorder = reorder
        self.delay = delay
        self.jitter = jitter
        self.reorder_delay = reorder_delay
        self._route = route
        self._endpoints: dict[str, FakeEndpoint] = {}
        self.stats = FakeNetStats()

    def endpoint(self, address: str, *, maxsize: int = 1024) -> FakeEndpoint:
        """Bind ``address`` (UsageError if taken). ``maxsize`` bounds its receive queue."""
        if address in self._endpoints:
            raise UsageError(f"{address!r} is already bound")
        ep = FakeEndpoint(self, address, maxsize)
        self._endpoints[address] = ep
        return ep

    def route_packet(self, packet: Datagram) -> list[tuple[float, Datagram]]:
        """The deliveries to make for ``packet``: THE hook to override."""
        if self._route is not None:
            return list(self._route(packet))
        rng = self.rng
        if self.drop and rng.random() < self.drop:
            return []
        copies = 2 if self.duplicate and rng.random() < self.duplicate else 1
        out = []
        for _ in range(copies):
            wait = self.delay + (rng.random() * self.jitter if self.jitter else 0.0)
            if self.reorder and rng.random() < self.reorder:
                wait += self.reorder_delay
            out.append((wait, packet))
        return out

    def _send(self, packet: Datagram) -> None:
        self.stats.sent += 1
        deliveries = self.route_packet(packet)
        if not deliveries:
            self.stats.dropped += 1
            return
        self.stats.duplicated += len(deliveries) - 1
        loop = asyncio.get_running_loop()
        for wait, datagram in deliveries:
            if wait <= 0:
                loop.call_soon(self._deliver, datagram)
            else:
                loop.call_later(wait, self._deliver, datagram)

    def _deliver(self, packet: Datagram) -> None:
        ep = self._endpoints.get(packet.dst)
        if ep is None:
            self.stats.dropped += 1
            return
        ep._arrive(packet)

    def _unbind(self, ep: FakeEndpoint) -> None:
        if self._endpoints.get(ep.address) is ep:
            del self._endpoints[ep.address]


class FakeEndpoint:
    """One bound address on a :class:`FakeNet`."""

    def __init__(self, net: FakeNet, address: str, maxsize: int) -> None:
        if maxsize < 1:
            raise UsageError("maxsize must be >= 1")
        self.net = net
        self.address = address
        self.maxsize = maxsize
        self._queue: deque[Datagram] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False

    def send(self, dst: str, data: bytes) -> None:
        """Send one datagram to ``dst`` (never blocks; it may be lost)."""
        if self._closed:
            raise ClosedError(f"endpoint {self.address!r} is closed")
        self.net._send(Datagram(self.address, dst, bytes(data)))

    async def recv(self) -> Datagram:
        """The next datagram that arrived (waits for one); ClosedError once closed."""
        while not self._queue:
            if self._closed:
                raise ClosedError(f"endpoint {self.address!r} is closed")
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._queue.popleft()

    def _arrive(self, packet: Datagram) -> None:
        if self._closed:
            return
        if len(self._queue) >= self.maxsize:
            self.net.stats.overflowed += 1
            return
        self.net.stats.delivered += 1
        self._queue.append(packet)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def close(self) -> None:
        self._closed = True
        self.net._unbind(self)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

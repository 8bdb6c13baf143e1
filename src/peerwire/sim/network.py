"""The simulated network: the memory transport with a link model, partitions and dead hosts.

:class:`SimNetwork` is a :class:`~peerwire.transport.memory.MemoryNetwork`
whose :meth:`schedule_delivery` hook decides when (and whether) each packet
reaches the other end. Every node gets its own :class:`SimTransport`, named
after the node's *host* name, so the network knows which two hosts every
connection joins.

Link model, per ordered pair of hosts or global (:class:`LinkSpec`). The
memory transport is a reliable byte stream, so the model is TCP's, not a
datagram network's:

* **latency** (one way) plus uniform **jitter** in ``[0, jitter)`` per packet;
* **bandwidth**: a packet of ``n`` bytes occupies its direction of the
  connection for ``n / bandwidth`` seconds (serialisation delay); packets
  queue behind each other;
* **loss** never loses bytes (TCP retransmits them): each packet is cut into
  ``mss``-byte segments, each segment is lost with probability ``loss`` (again
  on every retransmission), and the *k*-th consecutive loss of a segment costs
  ``rto * 2**(k-1)`` (exponential back-off). The packet arrives when its
  slowest segment does, so loss shows up as delay, as it does over TCP;
* **order** is kept per connection direction: a packet never overtakes an
  earlier one (jitter and loss delay the ones behind it: head-of-line blocking).

**Packets** are what a connection end writes during one instant of virtual
time: every write until nothing else is left to run at that time leaves
together (:meth:`VirtualClockLoop.call_at_instant_end`), as a sender that
corks its socket until its stack is done would send it. Setting up a
connection (security, muxer, identify both ways) takes 7 packets.

Dials take one round trip before the connection exists (the TCP handshake).
A dial to a name nobody listens on fails after one round trip ("refused").

**Partitions** (:meth:`partition`, :meth:`heal`) split hosts into islands.
Packets between islands are held, not lost (TCP keeps retransmitting): after
:meth:`heal` they flow again, unless a connection stayed blocked for
``user_timeout`` seconds, in which case both ends are reset (TCP's user
timeout). Dials between islands fail after ``connect_timeout``.

**Dead hosts** (:meth:`set_down`, used for crashes) are black holes: what they
send and what is sent to them vanishes. A live end that keeps sending into a
black hole is reset after ``user_timeout``, as TCP would; an end that sends
nothing notices nothing, exactly like a real half-open connection.

Randomness (jitter, loss) comes only from the ``rng`` the network was given.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from ..errors import ConnectionLost, UsageError
from ..identity.multiaddr import Multiaddr
from ..transport.base import DEFAULT_WRITE_HIGH_WATER
from ..transport.memory import (
    MemoryConnection,
    MemoryListener,
    MemoryNetwork,
    MemoryPacket,
    MemoryTransport,
)
from .clock import VirtualClockLoop

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_USER_TIMEOUT",
    "HostStats",
    "LinkSpec",
    "SimConnection",
    "SimNetwork",
    "SimTransport",
]

DEFAULT_USER_TIMEOUT: Final = 30.0
"""Seconds a connection may stay blocked (partition, dead peer) before it is reset."""
DEFAULT_CONNECT_TIMEOUT: Final = 3.0
"""Seconds a dial to an unreachable host (partitioned away, dead) takes to fail."""
_RESET: Final = MemoryPacket(reset=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkSpec:
    """How one direction of a link behaves. All times in (virtual) seconds."""

    latency: float = 0.0
    """One-way propagation delay."""
    jitter: float = 0.0
    """Extra delay per packet, uniform in ``[0, jitter)``."""
    bandwidth: float | None = None
    """Bytes per second per connection direction; None: unlimited."""
    loss: float = 0.0
    """Probability that one ``mss``-byte segment is lost (and retransmitted after ``rto``)."""
    rto: float = 0.2
    """Retransmission timeout of the first retransmission (Linux's minimum is 0.2 s);
    doubled for each further loss of the same segment."""
    mss: int = 1460
    """Segment size used by the loss model (bytes)."""

    def __post_init__(self) -> None:
        if self.latency < 0 or self.jitter < 0 or self.rto < 0:
            raise UsageError("latency, jitter and rto must be >= 0")
        if self.bandwidth is not None and self.bandwidth <= 0:
            raise UsageError("bandwidth must be > 0 bytes/s (or None: unlimited)")
        if not 0.0 <= self.loss < 1.0:
            raise UsageError("loss must be in [0, 1)")
        if self.mss < 1:
            raise UsageError("mss must be >= 1")

    @property
    def ideal(self) -> bool:
        """True if packets cross at once (no delay of any kind)."""
        return (
            self.latency == 0
            and self.jitter == 0
            and self.bandwidth is None
            and (self.loss == 0 or self.rto == 0)
        )


@dataclass(slots=True)
class HostStats:
    """Traffic one host put on and took off the simulated network (after the link model)."""

    packets_sent: int = 0
    bytes_sent: int = 0
    packets_received: int = 0
    bytes_received: int = 0
    packets_blackholed: int = 0
    dials: int = 0
    dials_failed: int = 0


class _LinkState:
    """One connection direction's state in the link model."""

    __slots__ = ("busy_until", "doomed", "held", "host", "in_flight", "last_arrival")

    def __init__(self, host: str) -> None:
        self.host = host
        """Name of the host that owns this end."""
        self.in_flight = 0
        """Our packets the network has accepted and not yet handed to the peer."""
        self.last_arrival = 0.0
        """When our latest packet reaches the peer: the next may not arrive earlier."""
        self.busy_until = 0.0
        """When this direction finishes serialising its latest packet (bandwidth)."""
        self.held: list[MemoryPacket] | None = None
        """Packets held by a partition, oldest first."""
        self.doomed = False
        """A reset is on its way to this end (it kept writing into a black hole)."""


class _Detached:
    """Stands in, as a dead end's ``_peer``, for the other dead end once both are gone
    and nothing is in flight (see :meth:`SimNetwork._detach`): it accepts and drops."""

    __slots__ = ("_lost", "_sim")

    def __init__(self, host: str) -> None:
        self._sim = _LinkState(host)
        self._lost = True

    @property
    def host(self) -> str:
        return self._sim.host

    def _credit(self, nbytes: int) -> None:
        pass

    def _arrive(self, packet: MemoryPacket) -> None:
        pass


class SimConnection(MemoryConnection):
    """A memory connection end that knows its host (and its direction's link state)."""

    _peer: SimConnection

    def __init__(self, host: str, *args: Any, **kwargs: Any) -> None:
        # One attribute only, set first: with one more, CPython stops sharing the
        # key table of the connections' __dict__s and each grows by ~1.3 KB.
        self._sim = _LinkState(host)
        super().__init__(*args, **kwargs)

    @property
    def host(self) -> str:
        """Name of the host that owns this end."""
        return self._sim.host

    @property
    def sim_lost(self) -> bool:
        """True once this end is gone (closed, reset or aborted)."""
        return self._lost

    def _route_lost(self, exc: BaseException | None, *, discard: bool) -> None:
        if self._lost:
            return
        super()._route_lost(exc, discard=discard)
        network = self._network
        if isinstance(network, SimNetwork):
            network._untrack(self)

    def _schedule_flush(self) -> None:
        # On virtual time, everything this end writes during one instant leaves
        # as one packet (see VirtualClockLoop.call_at_instant_end), however many
        # loop passes the layers above take to write it.
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop = self._loop
            if isinstance(loop, VirtualClockLoop):
                loop.call_at_instant_end(self._flush)
            else:
                loop.call_soon(self._flush)


class SimTransport(MemoryTransport):
    """The memory transport of one simulated host (see :class:`SimNetwork`)."""

    network: SimNetwork

    def __init__(
        self,
        network: SimNetwork,
        host: str,
        *,
        write_high_water: int = DEFAULT_WRITE_HIGH_WATER,
        write_low_water: int | None = None,
    ) -> None:
        super().__init__(
            network, write_high_water=write_high_water, write_low_water=write_low_water
        )
        self.host = host

    def _new_connection(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        local: Multiaddr,
        remote: Multiaddr,
        is_initiator: bool,
    ) -> MemoryConnection:
        conn = SimConnection(
            self.host,
            self.network,
            loop,
            local_addr=local,
            remote_addr=remote,
            is_initiator=is_initiator,
            write_high_water=self.write_high_water,
            write_low_water=self.write_low_water,
        )
        self.network._track(conn)
        return conn

    async def dial(self, addr: Multiaddr) -> MemoryConnection:
        """Connect after one simulated round trip; unreachable hosts fail after a timeout."""
        components = addr.without_peer_id().components
        name = components[0][1] if len(components) == 1 and components[0][0] == "memory" else None
        if not name:
            raise UsageError(f"memory transport cannot dial {addr}")
        return await self.network._dial(self, name)


class SimNetwork(MemoryNetwork):
    """A :class:`MemoryNetwork` with latency, bandwidth, loss, partitions and dead hosts."""

    def __init__(
        self,
        *,
        rng: random.Random,
        link: LinkSpec | None = None,
        user_timeout: float = DEFAULT_USER_TIMEOUT,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    ) -> None:
        super().__init__()
        self.rng = rng
        self.default_link = link or LinkSpec()
        self.user_timeout = user_timeout
        self.connect_timeout = connect_timeout
        self._links: dict[tuple[str, str], LinkSpec] = {}
        self._island: dict[str, int] = {}
        self._down: set[str] = set()
        self._egress_delay: dict[str, float] = {}
        self._host_of_name: dict[str, str] = {}
        self._conns: dict[str, dict[SimConnection, None]] = {}
        self._blocked: dict[SimConnection, float] = {}
        self.stats: dict[str, HostStats] = {}

    # --------------------------------------------------------------- setup
    def transport(self, host: str, **kwargs: int) -> SimTransport:
        """A transport for ``host`` (create one per simulated node)."""
        self.stats.setdefault(host, HostStats())
        return SimTransport(self, host, **kwargs)

    def set_link(self, a: str, b: str, spec: LinkSpec, *, symmetric: bool = True) -> None:
        """Use ``spec`` for packets from host ``a`` to host ``b`` (and back if symmetric)."""
        self._links[(a, b)] = spec
        if symmetric:
            self._links[(b, a)] = spec

    def link(self, a: str, b: str) -> LinkSpec:
        """The spec for packets from ``a`` to ``b``."""
        if self._links:
            spec = self._links.get((a, b))
            if spec is not None:
                return spec
        return self.default_link

    def set_egress_delay(self, host: str, seconds: float) -> None:
        """Delay every packet ``host`` sends by ``seconds`` more (a slow or faulty node)."""
        if seconds < 0:
            raise UsageError("egress delay must be >= 0")
        if seconds:
            self._egress_delay[host] = seconds
        else:
            self._egress_delay.pop(host, None)

    # ---------------------------------------------------- partitions, death
    def partition(self, *groups: Iterable[str]) -> None:
        """Split the network: each group becomes an island; everyone else stays together.

        Replaces any earlier partition. Held packets move again on :meth:`heal`.
        """
        island: dict[str, int] = {}
        for number, group in enumerate(groups, start=1):
            for host in group:
                if host in island:
                    raise UsageError(f"host {host!r} is in two partition groups")
                island[host] = number
        self._island = island
        self._release_held()

    def heal(self) -> None:
        """Remove every partition; held packets are sent now (with the link model)."""
        self._island = {}
        self._release_held()

    def reachable(self, a: str, b: str) -> bool:
        """True if packets from ``a`` can reach ``b`` now."""
        if a in self._down or b in self._down:
            return False
        island = self._island
        return not island or island.get(a, 0) == island.get(b, 0)

    def set_down(self, host: str, down: bool = True) -> None:
        """Turn ``host`` into a black hole (a crashed machine), or back."""
        if down:
            self._down.add(host)
        else:
            self._down.discard(host)

    def is_down(self, host: str) -> bool:
        return host in self._down

    def reset_host(self, host: str) -> int:
        """Reset every live connection of ``host`` at both ends now (a process crash:
        the kernel answers with RST). Returns how many connections were reset."""
        count = 0
        for conn in list(self._conns.get(host, ())):
            if not conn._lost or not conn._peer._lost:
                count += 1
                conn._arrive(_RESET)
                conn._peer._arrive(_RESET)
        self._prune(host)
        return count

    def connections_of(self, host: str) -> list[SimConnection]:
        """``host``'s connection ends that are still open."""
        self._prune(host)
        return list(self._conns.get(host, ()))

    # -------------------------------------------------------- the hook
    def schedule_delivery(self, sender: MemoryConnection, packet: MemoryPacket) -> None:
        assert isinstance(sender, SimConnection)
        state = sender._sim
        src = state.host
        dst = sender._peer._sim.host
        if src in self._down or dst in self._down:
            self._blackhole(sender, packet)
            return
        if state.held is not None or (self._island and not self.reachable(src, dst)):
            self._hold(sender, packet)
            return
        size = len(packet.data)
        stats = self.stats[src]
        stats.packets_sent += 1
        stats.bytes_sent += size
        spec = self.link(src, dst)
        loop = sender._loop
        now = loop.time()
        at = now
        if spec.bandwidth is not None and size:
            at = max(at, state.busy_until) + size / spec.bandwidth
            state.busy_until = at
        at += spec.latency
        if self._egress_delay:
            at += self._egress_delay.get(src, 0.0)
        if spec.jitter:
            at += self.rng.random() * spec.jitter
        if spec.loss and size:
            at += self._retransmit_delay(size, spec)
        last = state.last_arrival
        if at <= last:
            # Never overtake (or tie with: the timer heap is not FIFO) an earlier packet.
            at = math.nextafter(last, math.inf)
        elif at <= now:
            state.in_flight += 1
            self._arrive(sender, packet)  # an ideal link with nothing in flight
            return
        state.in_flight += 1
        state.last_arrival = at
        self._deliver_later(sender, packet, at)

    def _deliver_later(self, sender: SimConnection, packet: MemoryPacket, at: float) -> None:
        """Hand ``packet`` to ``sender``'s peer at virtual time ``at`` (a sharded network
        sends it to the shard that runs the peer instead)."""
        sender._loop.call_at(at, self._arrive, sender, packet)

    def _retransmit_delay(self, size: int, spec: LinkSpec) -> float:
        """Extra delay of the slowest segment of a ``size``-byte packet (see module doc)."""
        rng, loss = self.rng, spec.loss
        worst = 0
        for _ in range(math.ceil(size / spec.mss)):
            losses = 0
            while rng.random() < loss:
                losses += 1
            worst = max(worst, losses)
        return spec.rto * ((1 << worst) - 1)

    def _arrive(self, sender: SimConnection, packet: MemoryPacket) -> None:
        state = sender._sim
        state.in_flight -= 1
        receiver = sender._peer
        host = receiver._sim.host
        if host in self._down:
            self._blackhole(sender, packet)
            return
        stats = self.stats[host]
        stats.packets_received += 1
        stats.bytes_received += len(packet.data)
        receiver._arrive(packet)
        if receiver._lost and sender._lost and not state.in_flight:
            self._detach(sender, receiver)

    def _blackhole(self, sender: SimConnection, packet: MemoryPacket) -> None:
        self.stats[sender.host].packets_blackholed += 1
        if packet.data and not sender._sim.doomed and sender.host not in self._down:
            # A live sender writing into a dead host: TCP gives up after its user timeout.
            sender._sim.doomed = True
            sender._loop.call_later(self.user_timeout, sender._arrive, _RESET)

    def _hold(self, sender: SimConnection, packet: MemoryPacket) -> None:
        state = sender._sim
        if state.held is None:
            state.held = []
        state.held.append(packet)
        if sender not in self._blocked:
            now = sender._loop.time()
            self._blocked[sender] = now
            sender._loop.call_later(self.user_timeout, self._give_up, sender, now)

    def _give_up(self, sender: SimConnection, since: float) -> None:
        if self._blocked.get(sender) != since:
            return  # released (and maybe blocked again later) in between
        del self._blocked[sender]
        sender._sim.held = None
        sender._arrive(_RESET)
        sender._peer._arrive(_RESET)

    def _release_held(self) -> None:
        for sender in list(self._blocked):
            if not self.reachable(sender.host, sender._peer.host):
                continue
            del self._blocked[sender]
            held, sender._sim.held = sender._sim.held or [], None
            for packet in held:
                self.schedule_delivery(sender, packet)

    # ------------------------------------------------------- dials, names
    def _track(self, conn: SimConnection) -> None:
        self._conns.setdefault(conn.host, {})[conn] = None

    def _untrack(self, conn: SimConnection) -> None:
        """Forget ``conn`` once both its ends are gone (called as an end is lost).

        Until then :meth:`reset_host` must still reach it: a crash of the host
        whose end closed still resets the other end, as the kernel's RST would.
        Kept longer, every closed connection of a host stayed reachable from
        here (up to 128 per host), and with it the whole stack above it.
        """
        peer = conn._peer
        if not peer._lost:
            return
        self._forget_end(conn)
        self._forget_end(peer)
        self._detach(conn, peer)

    def _forget_end(self, end: SimConnection) -> None:
        conns = self._conns.get(end.host)
        if conns is not None:
            conns.pop(end, None)

    def _detach(self, a: SimConnection, b: SimConnection) -> None:
        """Break two dead ends' references to each other once nothing is in flight.

        The ends point at each other, a cycle only the garbage collector could
        free, and simulations run with it off. A packet still travelling
        between them needs both (a lost end answers data with a reset, and
        arrivals count in the stats), so the last arrival calls again. Ends
        holding packets for a partition stay linked (the collector frees them).
        """
        if a._peer is not b or not isinstance(b, SimConnection):
            return  # already done
        sa, sb = a._sim, b._sim
        if not (sa.in_flight or sb.in_flight or sa.held or sb.held):
            a._peer = _Detached(sb.host)  # type: ignore[assignment]
            b._peer = _Detached(sa.host)  # type: ignore[assignment]

    def _prune(self, host: str) -> None:
        conns = self._conns.get(host)
        if conns:
            for conn in [c for c in conns if c._lost]:
                del conns[conn]

    def _bind(self, name: str, listener: MemoryListener) -> str:
        bound = super()._bind(name, listener)
        transport = listener._transport
        if isinstance(transport, SimTransport):
            self._host_of_name[bound] = transport.host
        return bound

    def host_of(self, name: str) -> str | None:
        """The host that listens (or last listened) on ``/memory/<name>``."""
        return self._host_of_name.get(name)

    async def _dial(self, dialer: SimTransport, name: str) -> MemoryConnection:
        src = dialer.host
        dst = self._host_of_name.get(name)
        stats = self.stats[src]
        stats.dials += 1
        if src in self._down:
            stats.dials_failed += 1
            raise ConnectionLost(f"{src} is down")
        if dst is None or not self.reachable(src, dst):
            await asyncio.sleep(self.connect_timeout)
            stats.dials_failed += 1
            raise ConnectionLost(f"/memory/{name} is unreachable (timed out)")
        rtt = self.link(src, dst).latency + self.link(dst, src).latency
        if rtt:
            await asyncio.sleep(rtt)
        if not self.reachable(src, dst):
            stats.dials_failed += 1
            raise ConnectionLost(f"/memory/{name} became unreachable during the dial")
        try:
            return self._connect(name, dialer)
        except ConnectionLost:
            stats.dials_failed += 1
            raise

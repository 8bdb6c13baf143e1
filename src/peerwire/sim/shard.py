"""One simulation spread over several processes: conservative time windows.

A simulation is one event loop, so it runs on one core. To use more, the
nodes are split into *shards*, one process each, and every process runs its
own :class:`~peerwire.sim.VirtualClockLoop` with the real ``Node`` objects of
its shard. Connections between shards carry the same packets as local ones;
they just cross a pipe.

Why this stays exact (and deterministic): a packet sent at virtual time ``t``
reaches another host no earlier than ``t + L``, where ``L`` is the smallest
one-way link latency (the *lookahead*). So if ``G`` is the earliest pending
event anywhere, every shard may run everything before ``G + L`` on its own:
nothing another shard does in that window can reach it before ``G + L``. At
the window's end the shards meet (:meth:`ShardWindow.sync`): each sends what
it has for the others (packets with their arrival times, connection set-ups,
flow-control credit, barrier and signal messages) and its next event time,
injects what it received as timers, and every shard computes the same next
window. No shard ever receives anything in its past, and each window's input
is a pure function of the seed, so the same seed and shard count give the
same run.

What crosses shards, and the one difference from a single process:

* a **dial** to a remote host takes the same round trip; the listening end
  is created when the dialer's first packet could reach it (half a round trip
  later than in one process, as a real accept would), and a dial to a name
  nobody listens on any more is reset rather than refused;
* **credit** (the memory transport's end-to-end backpressure) travels with
  one link latency instead of at once, so a paused writer resumes a little
  later;
* **crashes** are mirrored: every shard runs the scenario's decisions, so a
  crashed host is down everywhere at the same virtual time.

Jitter and loss draw from each shard's own generator, so the figures of a
sharded run are deterministic for a given shard count but not equal to the
single-process figures.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import pickle
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, Final

from ..errors import PeerwireError, UsageError
from ..identity.multiaddr import Multiaddr
from ..transport.memory import MemoryConnection, MemoryPacket, MemoryTransport
from .clock import SimulationStalled, VirtualClockLoop
from .network import LinkSpec, SimConnection, SimNetwork, SimTransport, _LinkState

__all__ = ["ShardFailed", "ShardGone", "ShardWindow", "ShardedNetwork", "owner_of"]

_RESET: Final = MemoryPacket(reset=True)
_STALL_ROUNDS: Final = 3
"""Consecutive windows in which no shard has anything to do before a run counts as stalled."""


class ShardFailed(PeerwireError):
    """A shard of a sharded simulation failed (the message says which, and why)."""


class ShardGone(ShardFailed):
    """Another shard stopped talking to us (it failed, or its process died)."""


def owner_of(index: int, shards: int) -> int:
    """The shard that runs node ``index``: round-robin, so boot nodes spread out too."""
    return index % shards


@dataclass(slots=True)
class _Outgoing:
    """What this shard has for one other shard at the next sync."""

    timed: list[tuple[float, str, tuple[Any, ...]]]
    signals: list[tuple[str, Any]]
    earliest: float = math.inf


class ShardWindow:
    """This shard's side of the conservative time windows (see the module doc).

    ``links`` maps every other shard's index to a duplex pipe to it. Timed
    messages (:meth:`post`) run as timers on the receiving shard's loop at
    their time; signals (:meth:`signal`) and barriers run there at the next
    sync. Both are dispatched by kind to the handlers given to :meth:`on`.
    """

    def __init__(
        self, index: int, count: int, links: Mapping[int, Connection], lookahead: float
    ) -> None:
        if lookahead <= 0:
            raise UsageError("a sharded simulation needs a link latency > 0 (its lookahead)")
        self.index = index
        self.count = count
        self.lookahead = lookahead
        self._links = dict(links)
        self._out = {s: _Outgoing([], []) for s in self._links}
        self._handlers: dict[str, Callable[..., None]] = {}
        self._barriers: dict[str, dict[int, Any]] = {}
        self._waiting: dict[str, asyncio.Future[list[Any]]] = {}
        self._loop: VirtualClockLoop | None = None
        self._idle_rounds = 0
        self.end = lookahead
        """Events before this virtual time may run without hearing from other shards."""
        self.rounds = 0
        """Syncs so far."""

    def attach(self, loop: VirtualClockLoop) -> None:
        """Start windowing ``loop`` (from its current time)."""
        self._loop = loop
        self.end = loop.time() + self.lookahead
        loop.window = self

    def detach(self) -> None:
        """Stop windowing: after the last barrier, each shard winds down alone."""
        if self._loop is not None:
            self._loop.window = None
            self._loop = None

    def on(self, kind: str, handler: Callable[..., None]) -> None:
        """Run ``handler(*args)`` for every message of ``kind`` another shard sends us."""
        self._handlers[kind] = handler

    # ------------------------------------------------------------ sending
    def post(self, shard: int, at: float, kind: str, *args: Any) -> None:
        """Have ``kind``'s handler run on ``shard`` at virtual time ``at`` (>= now + lookahead)."""
        out = self._out[shard]
        out.timed.append((at, kind, args))
        if at < out.earliest:
            out.earliest = at

    def signal(self, shard: int, kind: str, payload: Any) -> None:
        """Have ``kind``'s handler run on ``shard`` with ``payload`` at the next sync."""
        self._out[shard].signals.append((kind, payload))

    async def barrier(self, name: str, payload: Any = None) -> list[Any]:
        """Wait until every shard has reached barrier ``name``; their payloads, by shard.

        Every shard resumes at the same sync, hence at the same virtual time.
        """
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[list[Any]] = loop.create_future()
        self._waiting[name] = fut
        self._barriers.setdefault(name, {})[self.index] = payload
        for shard in self._links:
            self.signal(shard, "\0barrier", (name, payload))
        return await fut

    # ------------------------------------------------------------- syncing
    def sync(self, next_event: float) -> None:
        """Meet the other shards: swap messages, inject them, compute the next window.

        Called by the loop when its next event is at or past :attr:`end`
        (``next_event`` is ``inf`` when it has none).
        """
        loop = self._loop
        assert loop is not None
        # Everything before the window's end has run everywhere: start from there.
        loop.move_to(self.end)
        now = loop.time()
        outgoing = [out.earliest for out in self._out.values()]
        earliest = [next_event, *outgoing]
        signalled = any(out.signals for out in self._out.values())
        received: list[tuple[int, Any]] = []
        # Pairwise swaps in one global order of pairs (lower index sends first):
        # no cycle of processes waiting on full pipes, so no deadlock.
        for shard in sorted(self._links):
            conn = self._links[shard]
            out = self._out[shard]
            blob = pickle.dumps(
                (
                    next_event,
                    outgoing,
                    signalled,
                    out.timed,
                    out.signals,
                ),
                protocol=pickle.HIGHEST_PROTOCOL,
            )
            try:
                if self.index < shard:
                    conn.send_bytes(blob)
                    data = conn.recv_bytes()
                else:
                    data = conn.recv_bytes()
                    conn.send_bytes(blob)
            except (EOFError, OSError) as exc:
                raise ShardGone(f"shard {shard} is gone: {exc!r}") from exc
            received.append((shard, pickle.loads(data)))
            self._out[shard] = _Outgoing([], [])
        timed_any = False
        for shard, (their_next, their_earliest, their_signalled, timed, signals) in received:
            earliest.append(their_next)
            earliest.extend(their_earliest)
            signalled = signalled or their_signalled
            for at, kind, args in timed:
                if at < self.end:
                    raise ShardFailed(
                        f"shard {shard} sent a {kind!r} for {at}, inside the window that "
                        f"ends at {self.end}: a lookahead larger than a link latency?"
                    )
                timed_any = True
                loop.call_at(at, self._handlers[kind], *args)
            for kind, payload in signals:
                if kind == "\0barrier":
                    name, value = payload
                    self._barriers.setdefault(name, {})[shard] = value
                else:
                    self._handlers[kind](payload)
        self._resolve_barriers()
        self.rounds += 1
        # A signal (or a barrier) anywhere means work at ``now`` somewhere: every
        # shard knows, since each says whether it sent any.
        start = now if signalled else min(earliest)
        if math.isinf(start):
            idle = not (timed_any or loop.has_ready)
            self._idle_rounds = self._idle_rounds + 1 if idle else 0
            if self._idle_rounds >= _STALL_ROUNDS:
                raise SimulationStalled("every shard is idle, with nothing pending anywhere")
            self.end = now + self.lookahead
        else:
            self._idle_rounds = 0
            self.end = max(start, now) + self.lookahead

    def _resolve_barriers(self) -> None:
        for name, seen in list(self._barriers.items()):
            if len(seen) < self.count:
                continue
            del self._barriers[name]
            fut = self._waiting.pop(name, None)
            if fut is not None and not fut.done():
                fut.set_result([seen[s] for s in range(self.count)])


class _RemoteEnd:
    """Stands in, as a local end's ``_peer``, for the end that lives in another shard."""

    __slots__ = ("_lost", "_sim", "key", "network", "shard")

    def __init__(self, network: ShardedNetwork, shard: int, key: int, host: str) -> None:
        self._sim = _LinkState(host)
        self._lost = False
        self.network = network
        self.shard = shard
        self.key = key

    @property
    def host(self) -> str:
        return self._sim.host

    def _credit(self, nbytes: int) -> None:
        self.network._send_credit(self, nbytes)

    def _arrive(self, packet: MemoryPacket) -> None:
        self.network._send_packet(self, packet, self.network.latency_to(self.host))


class ShardedNetwork(SimNetwork):
    """The :class:`SimNetwork` of one shard: local hosts as usual, remote ones through pipes.

    ``remote`` maps every host another shard runs to that shard's index; each
    listens on ``/memory/<host>``.
    """

    def __init__(
        self,
        window: ShardWindow,
        remote: Mapping[str, int],
        *,
        link: LinkSpec | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(link=link, **kwargs)
        if self.default_link.latency < window.lookahead:
            raise UsageError("the lookahead may not exceed the link latency")
        self.window = window
        self._remote = dict(remote)
        for host in self._remote:
            self._host_of_name[host] = host
        # Our ends of cross-shard connections, by connection key. A lost end stays
        # until the next packet for it arrives (it answers data with the reset a
        # closed socket sends), then goes. Held strongly: when an end goes must
        # not depend on when memory is freed (a closed end and its stack are
        # now freed by reference counting as soon as nothing else needs them).
        self._ends: dict[int, SimConnection] = {}
        self._keys = itertools.count()
        window.on("connect", self._on_connect)
        window.on("packet", self._on_packet)
        window.on("credit", self._on_credit)

    def latency_to(self, host: str) -> float:
        """One-way latency to ``host`` (one link model for every pair, see :meth:`set_link`)."""
        return self.default_link.latency

    def set_link(self, a: str, b: str, spec: LinkSpec, *, symmetric: bool = True) -> None:
        raise UsageError("a sharded simulation has one link model for every pair")

    def partition(self, *groups: Iterable[str]) -> None:
        raise UsageError("partitions are not supported in a sharded simulation")

    # ---------------------------------------------------------------- dials
    def _connect(self, name: str, dialer: MemoryTransport) -> MemoryConnection:
        """After :meth:`SimNetwork._dial`'s round trip and checks: our end now, theirs
        when our first packet could reach it (a ``connect`` message to its shard)."""
        shard = self._remote.get(name)
        if shard is None:
            return super()._connect(name, dialer)
        assert isinstance(dialer, SimTransport)
        loop = asyncio.get_running_loop()
        key = next(self._keys) * self.window.count + self.window.index
        local = Multiaddr(f"/memory/ephemeral-s{self.window.index}-{next(self._ephemeral_names)}")
        ours = dialer._new_connection(
            loop, local=local, remote=Multiaddr(f"/memory/{name}"), is_initiator=True
        )
        assert isinstance(ours, SimConnection)
        ours._peer = _RemoteEnd(self, shard, key, name)  # type: ignore[assignment]
        self._ends[key] = ours
        at = loop.time() + self.latency_to(name)
        self.window.post(shard, at, "connect", key, dialer.host, str(local), name)
        return ours

    def _on_connect(self, key: int, src: str, local: str, name: str) -> None:
        shard = self._remote[src]
        listener = self._listeners.get(name)
        if listener is None or name in self._down:
            loop = asyncio.get_running_loop()
            self.window.post(shard, loop.time() + self.latency_to(src), "packet", key, _RESET)
            return
        loop = asyncio.get_running_loop()
        theirs = listener._transport._new_connection(
            loop, local=Multiaddr(f"/memory/{name}"), remote=Multiaddr(local), is_initiator=False
        )
        assert isinstance(theirs, SimConnection)
        theirs._peer = _RemoteEnd(self, shard, key, src)  # type: ignore[assignment]
        self._ends[key] = theirs
        loop.call_soon(listener._accept, theirs)

    # -------------------------------------------------------------- packets
    def _deliver_later(self, sender: SimConnection, packet: MemoryPacket, at: float) -> None:
        peer = sender._peer
        if isinstance(peer, _RemoteEnd):
            self.window.post(peer.shard, at, "packet", peer.key, packet)
        else:
            super()._deliver_later(sender, packet, at)

    def _send_packet(self, end: _RemoteEnd, packet: MemoryPacket, delay: float) -> None:
        loop = asyncio.get_running_loop()
        self.window.post(end.shard, loop.time() + delay, "packet", end.key, packet)

    def _send_credit(self, end: _RemoteEnd, nbytes: int) -> None:
        loop = asyncio.get_running_loop()
        at = loop.time() + self.latency_to(end.host)
        self.window.post(end.shard, at, "credit", end.key, nbytes)

    def _on_packet(self, key: int, packet: MemoryPacket) -> None:
        end = self._ends.get(key)
        if end is None:
            return  # that end is gone; so is everything it would have answered
        host = end.host
        if host in self._down:
            # As SimNetwork._blackhole, seen from the receiving side: a live sender
            # that keeps writing into a dead host is reset after the user timeout.
            self.stats[host].packets_blackholed += 1
            peer = end._peer
            if packet.data and isinstance(peer, _RemoteEnd) and not peer._sim.doomed:
                peer._sim.doomed = True
                self._send_packet(peer, _RESET, self.user_timeout)
            return
        stats = self.stats[host]
        stats.packets_received += 1
        stats.bytes_received += len(packet.data)
        end._arrive(packet)
        if end._lost:
            self._ends.pop(key, None)

    def _on_credit(self, key: int, nbytes: int) -> None:
        end = self._ends.get(key)
        if end is not None and not end._lost:
            end._credit(nbytes)

    # --------------------------------------------------------------- deaths
    def _untrack(self, conn: SimConnection) -> None:
        """As :meth:`SimNetwork._untrack`; an end whose peer is in another shard leaves
        its host's list as soon as it is lost (that shard resets its own end on a
        crash), and ``_ends`` when the next packet reaches it."""
        if isinstance(conn._peer, _RemoteEnd):
            self._forget_end(conn)
        else:
            super()._untrack(conn)

    def reset_host(self, host: str) -> int:
        """As :meth:`SimNetwork.reset_host`, for the ends of ``host`` in this shard.

        Every shard mirrors a crash, so each resets its own ends of the
        connections: local ones of ``host``, and local ends of remote ones to it.
        """
        count = 0
        if host in self._remote:
            for end in list(self._ends.values()):
                peer = end._peer
                if isinstance(peer, _RemoteEnd) and peer.host == host and not end._lost:
                    count += 1
                    end._arrive(_RESET)
            return count
        for conn in list(self._conns.get(host, ())):
            if conn._lost:
                continue
            count += 1
            conn._arrive(_RESET)
            peer = conn._peer
            if not isinstance(peer, _RemoteEnd):
                peer._arrive(_RESET)
        self._prune(host)
        return count

"""In-process transport: ``/memory/<name>``, no sockets.

A :class:`MemoryNetwork` is a namespace of listeners (name -> listener).
Connections are pairs of :class:`MemoryConnection` ends joined through the
network, and behave like TCP as seen from a receiver: bytes arrive
asynchronously (never inside the writer's ``write()`` call), in order, with
EOF/half-close, graceful close, abort (the remote sees a reset) and end-to-end
backpressure.

Flow control: the bytes a writer has queued that the remote *receiver* has not
yet been handed count against the writer's high-water mark. A remote that
calls ``pause_reading()`` stops deliveries, so its writer stays paused until it
resumes, exactly the chain a real socket gives through kernel buffers.

Everything crossing the network goes through one overridable method,
:meth:`MemoryNetwork.schedule_delivery`, as a :class:`MemoryPacket`. The
default hands the packet over at once (it is always called from a loop
callback, never from inside ``write()``); a simulator subclass can delay it to
model latency and bandwidth, or replace it by a reset to model a broken link.

Names: listening on ``/memory/0`` picks a fresh unused name (like TCP port 0;
read it from ``listener.addrs``); any other name must be free, else
:class:`UsageError`. Dialers get an ephemeral ``/memory/ephemeral-<n>`` local
address that nothing listens on.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from ..errors import ConnectionLost, UsageError
from ..identity.multiaddr import Multiaddr
from ._routed import RoutedConnection, run_on_connection
from .base import DEFAULT_WRITE_HIGH_WATER, Buffer, Listener, OnConnection, Transport

__all__ = [
    "AUTO_NAME",
    "MemoryConnection",
    "MemoryListener",
    "MemoryNetwork",
    "MemoryPacket",
    "MemoryTransport",
    "default_network",
]

AUTO_NAME: Final = "0"
"""Listening on ``/memory/0`` asks the network for a fresh unused name."""


@dataclass(frozen=True, slots=True)
class MemoryPacket:
    """What one connection end sends to the other through the network.

    ``data`` (possibly empty) comes first, then ``eof`` if set (the sender
    will send nothing more). ``reset`` means the sender's end is gone (abort,
    or data arrived at an end that was already closed): the receiving end
    fails with :class:`ConnectionLost` and drops what it had not delivered.
    """

    data: bytes = b""
    eof: bool = False
    reset: bool = False

    def __reduce__(self) -> tuple[type[MemoryPacket], tuple[bytes, bool, bool]]:
        # Sharded simulations pickle every packet that crosses processes; the
        # dataclass default (__getstate__ over fields() in Python) cost ~0.8%
        # of a 10,000-node shard's CPU.
        return (MemoryPacket, (self.data, self.eof, self.reset))


class MemoryNetwork:
    """A namespace of memory listeners, and the medium packets cross.

    Create one per test (or simulation) for isolation; transports built
    without a network share :func:`default_network`.
    """

    def __init__(self) -> None:
        self._listeners: dict[str, MemoryListener] = {}
        self._auto_names = itertools.count(1)
        self._ephemeral_names = itertools.count(1)

    @property
    def names(self) -> list[str]:
        """Names currently listened on."""
        return list(self._listeners)

    def schedule_delivery(self, sender: MemoryConnection, packet: MemoryPacket) -> None:
        """Arrange for ``packet`` to reach ``sender``'s peer: THE hook for simulators.

        Called from an event-loop callback, never re-entrantly from a user's
        ``write()``. The default calls :meth:`deliver` at once. An override
        may call :meth:`deliver` later (``loop.call_at``) but must keep each
        sender's packets in order; it may also deliver a
        ``MemoryPacket(reset=True)`` to both ends to break a connection.
        """
        self.deliver(sender, packet)

    def deliver(self, sender: MemoryConnection, packet: MemoryPacket) -> None:
        """Hand ``packet`` to ``sender``'s peer now."""
        sender._peer._arrive(packet)

    # -- used by the transport
    def _bind(self, name: str, listener: MemoryListener) -> str:
        if name == AUTO_NAME:
            name = f"auto-{next(self._auto_names)}"
            while name in self._listeners:
                name = f"auto-{next(self._auto_names)}"
        elif name in self._listeners:
            raise UsageError(f"/memory/{name} is already being listened on")
        self._listeners[name] = listener
        return name

    def _unbind(self, name: str, listener: MemoryListener) -> None:
        if self._listeners.get(name) is listener:
            del self._listeners[name]

    def _connect(self, name: str, dialer: MemoryTransport) -> MemoryConnection:
        listener = self._listeners.get(name)
        if listener is None:
            raise ConnectionLost(f"connection refused: nothing listens on /memory/{name}")
        loop = asyncio.get_running_loop()
        local = Multiaddr(f"/memory/ephemeral-{next(self._ephemeral_names)}")
        remote = Multiaddr(f"/memory/{name}")
        ours = dialer._new_connection(loop, local=local, remote=remote, is_initiator=True)
        theirs = listener._transport._new_connection(
            loop, local=remote, remote=local, is_initiator=False
        )
        ours._peer, theirs._peer = theirs, ours
        loop.call_soon(listener._accept, theirs)
        return ours


_DEFAULT_NETWORK = MemoryNetwork()


def default_network() -> MemoryNetwork:
    """The process-wide network used by ``MemoryTransport()`` without an argument."""
    return _DEFAULT_NETWORK


class MemoryConnection(RoutedConnection):
    """One end of an in-memory connection. Created by :class:`MemoryTransport`.

    Writes are copied (``bytes`` objects are shared, being immutable) and
    flushed to the network once per loop pass, so a burst of small writes
    travels as one packet.
    """

    _peer: MemoryConnection

    def __init__(
        self,
        network: MemoryNetwork,
        loop: asyncio.AbstractEventLoop,
        *,
        local_addr: Multiaddr,
        remote_addr: Multiaddr,
        is_initiator: bool,
        write_high_water: int,
        write_low_water: int,
    ) -> None:
        super().__init__(loop)
        self.local_addr = local_addr
        self.remote_addr = remote_addr
        self.is_initiator = is_initiator
        self._network = network
        self._high = write_high_water
        self._low = write_low_water
        self._outbox: list[bytes] = []
        self._flush_scheduled = False
        self._in_flight = 0  # our bytes the peer's receiver has not been handed yet
        self._fin_flushed = False
        self._eof_received = False
        self._aborted = False

    # -- sending
    def write(self, data: Buffer) -> None:
        self._check_writable()
        chunk = bytes(data)
        if chunk:
            self._queue(chunk)

    def writelines(self, chunks: Iterable[Buffer]) -> None:
        self._check_writable()
        for data in chunks:
            chunk = bytes(data)
            if chunk:
                self._queue(chunk)

    def _queue(self, chunk: bytes) -> None:
        self._outbox.append(chunk)
        self._in_flight += len(chunk)
        self._schedule_flush()
        if self._in_flight > self._high:
            self._pause_writing()

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._lost:
            return
        if self._closed_by_us and any(isinstance(item, bytes) for item in self._pending):
            # Closing with unread input resets the connection, as TCP does, so
            # the writer is not left waiting for credit that will never come.
            self._aborted = True
        if self._aborted:
            self._outbox.clear()
            self._network.schedule_delivery(self, MemoryPacket(reset=True))
            self._route_lost(None, discard=True)
            return
        outbox = self._outbox
        data = outbox[0] if len(outbox) == 1 else b"".join(outbox)
        outbox.clear()
        eof = self._eof_sent and not self._fin_flushed
        if data or eof:
            self._fin_flushed = self._fin_flushed or eof
            self._network.schedule_delivery(self, MemoryPacket(data=data, eof=eof))
        if self._closed_by_us:
            self._route_lost(None, discard=True)
        elif self._fin_flushed and self._eof_received:
            self._route_lost(None, discard=False)

    def _data_delivered(self, nbytes: int) -> None:
        self._peer._credit(nbytes)

    def _credit(self, nbytes: int) -> None:
        self._in_flight -= nbytes
        if self._write_paused and self._in_flight <= self._low:
            self._resume_writing()

    def write_eof(self) -> None:
        if self._eof_sent or self._closed_by_us or self._lost:
            return
        self._eof_sent = True
        self._schedule_flush()

    def close(self) -> None:
        if self._closed_by_us:
            return
        self._mark_closed_by_us()
        if not self._lost:
            self._eof_sent = True
            self._schedule_flush()

    def abort(self) -> None:
        self._mark_closed_by_us()
        if self._aborted or self._lost:
            return
        self._aborted = True
        self._outbox.clear()
        self._schedule_flush()

    # -- receiving (called by the network)
    def _arrive(self, packet: MemoryPacket) -> None:
        if self._lost:
            # Like a closed socket: answer data with a reset so the writer learns.
            if packet.data and not packet.reset:
                self._network.schedule_delivery(self, MemoryPacket(reset=True))
            return
        if packet.reset:
            self._route_lost(ConnectionLost("connection reset by peer"), discard=True)
            return
        if packet.data:
            self._route_data(packet.data)
        if packet.eof:
            self._eof_received = True
            self._route_eof()
            if self._fin_flushed and not self._lost:
                self._route_lost(None, discard=False)

    def __repr__(self) -> str:
        return f"<MemoryConnection {self.local_addr} -> {self.remote_addr}>"


class MemoryListener(Listener):
    """A name bound in a :class:`MemoryNetwork`. Closing it frees the name."""

    def __init__(
        self, network: MemoryNetwork, transport: MemoryTransport, on_connection: OnConnection
    ) -> None:
        self._network = network
        self._transport = transport
        self._on_connection = on_connection
        self._name: str | None = None
        self._tasks: set[asyncio.Future[None]] = set()

    @property
    def addrs(self) -> list[Multiaddr]:
        return [] if self._name is None else [Multiaddr(f"/memory/{self._name}")]

    def _accept(self, conn: MemoryConnection) -> None:
        if self._name is None:  # closed between the dial and this callback
            conn.abort()
            return
        run_on_connection(self._on_connection, conn, self._tasks)

    async def close(self) -> None:
        if self._name is not None:
            self._network._unbind(self._name, self)
            self._name = None


def _memory_name(addr: Multiaddr) -> str | None:
    components = addr.without_peer_id().components
    if len(components) != 1 or components[0][0] != "memory":
        return None
    return components[0][1]


class MemoryTransport(Transport):
    """Dials and listens on ``/memory/<name>`` within one :class:`MemoryNetwork`.

    ``write_high_water``/``write_low_water`` bound the bytes a writer may have
    in the pipe (written but not yet handed to the remote receiver) before
    ``write_paused`` turns on, and the level at which it turns off again.
    """

    name = "memory"

    def __init__(
        self,
        network: MemoryNetwork | None = None,
        *,
        write_high_water: int = DEFAULT_WRITE_HIGH_WATER,
        write_low_water: int | None = None,
    ) -> None:
        low = write_high_water // 4 if write_low_water is None else write_low_water
        if not 0 <= low <= write_high_water:
            raise UsageError("need 0 <= write_low_water <= write_high_water")
        self.network = network if network is not None else default_network()
        self.write_high_water = write_high_water
        self.write_low_water = low

    def _new_connection(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        local: Multiaddr,
        remote: Multiaddr,
        is_initiator: bool,
    ) -> MemoryConnection:
        return MemoryConnection(
            self.network,
            loop,
            local_addr=local,
            remote_addr=remote,
            is_initiator=is_initiator,
            write_high_water=self.write_high_water,
            write_low_water=self.write_low_water,
        )

    def can_dial(self, addr: Multiaddr) -> bool:
        return _memory_name(addr) is not None

    async def dial(self, addr: Multiaddr) -> MemoryConnection:
        """Connect to the listener named in ``addr``; ConnectionLost if there is none."""
        name = _memory_name(addr)
        if name is None:
            raise UsageError(f"memory transport cannot dial {addr}")
        return self.network._connect(name, self)

    async def listen(self, addr: Multiaddr, on_connection: OnConnection) -> MemoryListener:
        """Bind the name in ``addr`` (``/memory/0``: a fresh one); UsageError if taken."""
        name = _memory_name(addr)
        if name is None:
            raise UsageError(f"memory transport cannot listen on {addr}")
        listener = MemoryListener(self.network, self, on_connection)
        listener._name = self.network._bind(name, listener)
        return listener

"""The transport interface: raw, reliable, ordered byte streams between two endpoints.

A transport turns a :class:`~peerwire.identity.multiaddr.Multiaddr` into a
:class:`RawConnection` (dialing) or hands accepted connections to a callback
(listening). Nothing here is encrypted or multiplexed: the upgrader adds Noise
and a muxer on top.

Data flows by callback, not by ``await read()``, so that the hot path is one
function call per socket read: the transport calls
``receiver.data_received(view)`` where ``view`` is valid *only during the call*
(the TCP transport reads into one reused buffer). A receiver that keeps bytes
must copy them.
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..identity.multiaddr import Multiaddr

Buffer = bytes | bytearray | memoryview

DEFAULT_WRITE_HIGH_WATER = 1 << 20
"""Bytes queued in a connection's write buffer before ``drain()`` waits."""


class ConnectionReceiver(Protocol):
    """What a :class:`RawConnection` delivers its events to."""

    def data_received(self, data: memoryview) -> None:
        """Bytes arrived. ``data`` is only valid during this call."""
        ...

    def eof_received(self) -> None:
        """The remote half-closed (no more data will arrive)."""
        ...

    def connection_lost(self, exc: BaseException | None) -> None:
        """The connection is gone; ``exc`` is ``None`` after a clean close."""
        ...

    def pause_writing(self) -> None:
        """The write buffer went above the high-water mark."""
        ...

    def resume_writing(self) -> None:
        """The write buffer drained below the low-water mark."""
        ...


class RawConnection(abc.ABC):
    """A reliable, ordered, bidirectional byte stream from a transport."""

    local_addr: Multiaddr
    remote_addr: Multiaddr
    is_initiator: bool

    @abc.abstractmethod
    def set_receiver(self, receiver: ConnectionReceiver) -> None:
        """Route incoming events to ``receiver``.

        Bytes that arrived while no receiver was set (or before the switch)
        are delivered to the new receiver first, in order. An EOF or loss seen
        before the switch is replayed too.
        """

    @abc.abstractmethod
    def write(self, data: Buffer) -> None:
        """Queue bytes for sending; never blocks. Raises ClosedError/ConnectionLost."""

    def writelines(self, chunks: Iterable[Buffer]) -> None:
        """Queue several buffers with as few system calls as the transport allows."""
        for chunk in chunks:
            self.write(chunk)

    @abc.abstractmethod
    async def drain(self) -> None:
        """Wait while the write buffer is above its high-water mark (backpressure)."""

    @property
    @abc.abstractmethod
    def write_paused(self) -> bool:
        """True while the write buffer is above its high-water mark."""

    @abc.abstractmethod
    def pause_reading(self) -> None:
        """Stop delivering data until :meth:`resume_reading` (receiver backpressure)."""

    @abc.abstractmethod
    def resume_reading(self) -> None:
        """Resume delivering data after :meth:`pause_reading`."""

    @abc.abstractmethod
    def write_eof(self) -> None:
        """Half-close: send EOF after queued data (if the transport supports it)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Flush queued data, then close. Idempotent."""

    @abc.abstractmethod
    def abort(self) -> None:
        """Close at once, discarding queued data. Idempotent."""

    @property
    @abc.abstractmethod
    def is_closing(self) -> bool:
        """True once close/abort was called or the connection was lost."""

    @abc.abstractmethod
    async def wait_closed(self) -> None:
        """Wait until the connection is fully closed."""


OnConnection = Callable[[RawConnection], Awaitable[None] | None]


class Listener(abc.ABC):
    """A bound listening endpoint."""

    @property
    @abc.abstractmethod
    def addrs(self) -> list[Multiaddr]:
        """The addresses actually bound (port 0 resolved)."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Stop accepting. Already accepted connections stay open."""


class Transport(abc.ABC):
    """Dials and listens on one family of multiaddrs."""

    name: str

    @abc.abstractmethod
    def can_dial(self, addr: Multiaddr) -> bool:
        """True if this transport understands ``addr`` (ignoring any /p2p suffix)."""

    def can_listen(self, addr: Multiaddr) -> bool:
        return self.can_dial(addr)

    @abc.abstractmethod
    async def dial(self, addr: Multiaddr) -> RawConnection:
        """Open a connection. Raises ConnectionLost (refused/unreachable) or UsageError."""

    @abc.abstractmethod
    async def listen(self, addr: Multiaddr, on_connection: OnConnection) -> Listener:
        """Bind and accept; ``on_connection`` is called once per accepted connection."""

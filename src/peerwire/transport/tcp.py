"""TCP transport: ``/ip4|ip6/<addr>/tcp/<port>`` (and ``/dns*`` for dialing).

The receive path is an :class:`asyncio.BufferedProtocol` that reads into one
reused buffer per connection and hands the receiver a ``memoryview`` slice of
it: no allocation per read, which PERF_NOTES measured as the largest single
cost of a Python socket path. Writes go straight to the asyncio transport
(``writelines`` for batches) and its high/low water marks drive
``pause_writing``/``resume_writing``, ``write_paused`` and ``drain()``.

The shared connection plumbing (routing events to a receiver that may be set
late or swapped, read pausing, write-pause waiters) lives here in
:class:`_RoutedConnection`, and the memory transport reuses it so both
transports behave identically as seen from a receiver.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import socket
import struct
from collections import deque
from collections.abc import Callable, Iterable
from typing import Final, cast

from ..errors import ClosedError, ConnectionLost, Timeout, UsageError
from ..identity.multiaddr import Multiaddr
from .base import (
    DEFAULT_WRITE_HIGH_WATER,
    Buffer,
    ConnectionReceiver,
    Listener,
    OnConnection,
    RawConnection,
    Transport,
)

__all__ = [
    "DEFAULT_BACKLOG",
    "DEFAULT_DIAL_TIMEOUT",
    "DEFAULT_READ_BUFFER_SIZE",
    "TcpConnection",
    "TcpListener",
    "TcpTransport",
]

log = logging.getLogger(__name__)

DEFAULT_READ_BUFFER_SIZE: Final = 256 * 1024
"""Bytes of the per-connection receive buffer (one ``recv_into`` fills at most this).

Large reads amortise the per-call Python overhead at high throughput. The
buffer is allocated zeroed, so pages the kernel never writes stay unbacked:
a connection carrying small messages costs far less resident memory than this.
"""

DEFAULT_DIAL_TIMEOUT: Final = 10.0
"""Seconds a dial may take (DNS resolution and TCP handshake) before :class:`Timeout`."""

DEFAULT_BACKLOG: Final = 128
"""Pending, not yet accepted connections the kernel queues for a listener."""

_MIN_READ_BUFFER_SIZE: Final = 1024


# ---------------------------------------------------------------- shared plumbing


class _EofMarker:
    __slots__ = ()


class _Lost:
    __slots__ = ("exc",)

    def __init__(self, exc: BaseException | None) -> None:
        self.exc = exc


_EOF: Final = _EofMarker()
_Pending = bytes | _EofMarker | _Lost


def _as_connection_lost(exc: BaseException) -> ConnectionLost:
    """The error a receiver sees for a broken connection: ConnectionLost, cause chained."""
    if isinstance(exc, ConnectionLost):
        return exc
    err = ConnectionLost(f"connection lost: {exc!r}")
    err.__cause__ = exc
    return err


class _RoutedConnection(RawConnection):
    """Receiver routing, read pausing and write-pause waiters, shared by tcp and memory.

    Incoming events reach the receiver directly when one is set, reading is not
    paused and nothing is queued (``_direct`` caches that condition so the hot
    path is one attribute test). Otherwise they are copied into ``_pending`` and
    replayed in order by :meth:`set_receiver` or after :meth:`resume_reading`.
    A loss waits behind queued data unless the subclass says to discard it
    (abort, reset, local close: the bytes will never be read).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._receiver: ConnectionReceiver | None = None
        self._direct: ConnectionReceiver | None = None
        self._pending: deque[_Pending] = deque()
        self._reading_paused = False
        self._replay_scheduled = False
        self._eof_delivered = False
        self._loss_delivered = False
        self._write_paused = False
        self._writable = asyncio.Event()
        self._writable.set()
        self._closed_event = asyncio.Event()
        self._lost = False
        self._lost_exc: BaseException | None = None
        self._closed_by_us = False
        self._eof_sent = False

    # -- hooks for subclasses
    def _pause_source(self) -> None:
        """Stop the underlying source of bytes (TCP: stop reading the socket)."""

    def _resume_source(self) -> None:
        """Restart the underlying source of bytes."""

    def _data_delivered(self, nbytes: int) -> None:
        """Called just before ``nbytes`` are handed to the receiver (memory flow credit)."""

    # -- receive side
    def set_receiver(self, receiver: ConnectionReceiver) -> None:
        previous = self._receiver
        eof_before, loss_before = self._eof_delivered, self._loss_delivered
        self._receiver = receiver
        self._direct = None
        if receiver is not previous:
            if self._write_paused:
                receiver.pause_writing()
            if eof_before:
                receiver.eof_received()
        self._deliver_pending()
        if receiver is not previous and loss_before and self._receiver is receiver:
            receiver.connection_lost(self._lost_exc)

    def _update_direct(self) -> None:
        receiver = self._receiver
        if receiver is not None and not self._reading_paused and not self._pending:
            self._direct = receiver
        else:
            self._direct = None

    def _deliver_pending(self) -> None:
        receiver = self._receiver
        pending = self._pending
        # A receiver may swap itself out (set_receiver) or pause while we replay;
        # re-check both before every item.
        while pending and receiver is not None and self._receiver is receiver:
            item = pending[0]
            if isinstance(item, _Lost):
                pending.popleft()
                self._loss_delivered = True
                receiver.connection_lost(item.exc)
            elif self._reading_paused:
                break
            elif isinstance(item, bytes):
                pending.popleft()
                self._data_delivered(len(item))
                receiver.data_received(memoryview(item))
            else:
                pending.popleft()
                self._eof_delivered = True
                receiver.eof_received()
        self._update_direct()

    def _replay(self) -> None:
        self._replay_scheduled = False
        self._deliver_pending()

    def _route_data(self, data: bytes) -> None:
        direct = self._direct
        if direct is not None:
            self._data_delivered(len(data))
            direct.data_received(memoryview(data))
        else:
            self._pending.append(data)

    def _route_eof(self) -> None:
        direct = self._direct
        if direct is not None:
            self._eof_delivered = True
            direct.eof_received()
        else:
            self._pending.append(_EOF)

    def _route_lost(self, exc: BaseException | None, *, discard: bool) -> None:
        if self._lost:
            return
        self._lost = True
        self._lost_exc = exc
        self._writable.set()
        self._closed_event.set()
        if discard:
            self._pending.clear()
        self._pending.append(_Lost(exc))
        self._direct = None
        self._deliver_pending()

    def pause_reading(self) -> None:
        if self._reading_paused:
            return
        self._reading_paused = True
        self._direct = None
        if not self._lost:
            self._pause_source()

    def resume_reading(self) -> None:
        if not self._reading_paused:
            return
        self._reading_paused = False
        if not self._lost:
            self._resume_source()
        if not self._pending:
            self._update_direct()
        elif not self._replay_scheduled:
            # Replay on the next loop pass, not inside the caller's resume_reading().
            self._replay_scheduled = True
            self._loop.call_soon(self._replay)

    # -- write side
    def _pause_writing(self) -> None:
        if self._write_paused:
            return
        self._write_paused = True
        if not (self._closed_by_us or self._lost):
            self._writable.clear()
        if self._receiver is not None:
            self._receiver.pause_writing()

    def _resume_writing(self) -> None:
        if not self._write_paused:
            return
        self._write_paused = False
        self._writable.set()
        if self._receiver is not None:
            self._receiver.resume_writing()

    def _lost_error(self) -> ConnectionLost:
        err = ConnectionLost("connection lost")
        err.__cause__ = self._lost_exc
        return err

    def _check_writable(self) -> None:
        if self._closed_by_us:
            raise ClosedError("connection was closed")
        if self._lost:
            raise self._lost_error()
        if self._eof_sent:
            raise ClosedError("cannot write after write_eof()")

    @property
    def write_paused(self) -> bool:
        return self._write_paused

    async def drain(self) -> None:
        """Wait while writes are paused; raises ClosedError/ConnectionLost once closed.

        Any number of tasks may wait at once; cancelling one does not disturb the others.
        """
        while True:
            if self._closed_by_us:
                raise ClosedError("connection was closed")
            if self._lost:
                raise self._lost_error()
            if not self._write_paused:
                return
            await self._writable.wait()

    @property
    def is_closing(self) -> bool:
        return self._closed_by_us or self._lost

    async def wait_closed(self) -> None:
        await self._closed_event.wait()


def _run_on_connection(
    on_connection: OnConnection, conn: RawConnection, tasks: set[asyncio.Future[None]]
) -> None:
    """Call a listener's callback; run an awaitable result as a tracked task.

    A callback that fails leaves a connection nobody owns, so it is aborted.
    """
    try:
        result = on_connection(conn)
    except Exception:
        log.exception("on_connection callback failed for %s", conn.remote_addr)
        conn.abort()
        return
    if result is None or not inspect.isawaitable(result):
        return
    task = asyncio.ensure_future(result)
    tasks.add(task)

    def done(task: asyncio.Future[None]) -> None:
        tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error(
                "on_connection handler failed for %s",
                conn.remote_addr,
                exc_info=task.exception(),
            )
            conn.abort()

    task.add_done_callback(done)


# ---------------------------------------------------------------- TCP


_UNKNOWN_ADDR: Final = "/ip4/0.0.0.0/tcp/0"


def _sockaddr_to_multiaddr(sockaddr: object) -> Multiaddr:
    if not isinstance(sockaddr, tuple) or len(sockaddr) < 2:
        return Multiaddr(_UNKNOWN_ADDR)
    host = str(sockaddr[0]).split("%", 1)[0]  # multiaddr /ip6 carries no zone id
    proto = "ip6" if ":" in host else "ip4"
    return Multiaddr(f"/{proto}/{host}/tcp/{int(sockaddr[1])}")


_FAMILIES: Final = {
    "ip4": socket.AF_INET,
    "ip6": socket.AF_INET6,
    "dns": socket.AF_UNSPEC,
    "dns4": socket.AF_INET,
    "dns6": socket.AF_INET6,
}


def _tcp_target(addr: Multiaddr, *, allow_dns: bool) -> tuple[str, int, int] | None:
    """``(host, port, family)`` for ``/<ip|dns>/<host>/tcp/<port>[/p2p/..]``, else None."""
    components = addr.without_peer_id().components
    if len(components) != 2:
        return None
    (net, host), (proto, port) = components
    family = _FAMILIES.get(net)
    if proto != "tcp" or family is None or host is None or port is None:
        return None
    if not allow_dns and net.startswith("dns"):
        return None
    return host, int(port), family


class _TcpProtocol(asyncio.BufferedProtocol):
    """asyncio's side of a :class:`TcpConnection`: reads into one reused buffer."""

    __slots__ = ("_conn", "_view")

    def __init__(self, conn: TcpConnection, buffer_size: int) -> None:
        self._conn = conn
        self._view = memoryview(bytearray(buffer_size))

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._conn._made(cast(asyncio.Transport, transport))

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._view

    def buffer_updated(self, nbytes: int) -> None:
        conn = self._conn
        direct = conn._direct
        if direct is not None:
            direct.data_received(self._view[:nbytes])
        else:
            conn._route_data(bytes(self._view[:nbytes]))

    def eof_received(self) -> bool:
        return self._conn._eof_from_socket()

    def connection_lost(self, exc: Exception | None) -> None:
        self._conn._lost_from_socket(exc)

    def pause_writing(self) -> None:
        self._conn._pause_writing()

    def resume_writing(self) -> None:
        self._conn._resume_writing()


class TcpConnection(_RoutedConnection):
    """One TCP connection. Created by :class:`TcpTransport`; not constructed directly.

    ``write``/``writelines`` copy buffers that are not ``bytes`` (asyncio and
    uvloop may keep a reference to unsent data), so a caller may reuse its
    buffer as soon as the call returns; pass ``bytes`` to avoid the copy.
    """

    local_addr: Multiaddr
    remote_addr: Multiaddr

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        is_initiator: bool,
        read_buffer_size: int,
        write_high_water: int,
        write_low_water: int,
        on_made: Callable[[TcpConnection], None] | None = None,
    ) -> None:
        super().__init__(loop)
        self.is_initiator = is_initiator
        self.local_addr = self.remote_addr = Multiaddr(_UNKNOWN_ADDR)
        self._transport: asyncio.Transport | None = None
        self._protocol = _TcpProtocol(self, read_buffer_size)
        self._high = write_high_water
        self._low = write_low_water
        self._on_made = on_made
        self._eof_received = False
        self._auto_closing = False
        self._aborted = False

    def _made(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        transport.set_write_buffer_limits(high=self._high, low=self._low)
        self.local_addr = _sockaddr_to_multiaddr(transport.get_extra_info("sockname"))
        self.remote_addr = _sockaddr_to_multiaddr(transport.get_extra_info("peername"))
        if self._on_made is not None:
            on_made, self._on_made = self._on_made, None
            on_made(self)

    def _eof_from_socket(self) -> bool:
        self._eof_received = True
        self._route_eof()
        if self._eof_sent or self._closed_by_us:
            # Both directions are finished: let asyncio close the socket.
            self._auto_closing = True
            return False
        return True  # keep our sending half open (half-close)

    def _lost_from_socket(self, exc: Exception | None) -> None:
        if exc is not None:
            self._route_lost(_as_connection_lost(exc), discard=True)
        else:
            # A clean end after both EOFs keeps unread data; a local close/abort drops it.
            self._route_lost(None, discard=not self._auto_closing)

    def _pause_source(self) -> None:
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.pause_reading()

    def _resume_source(self) -> None:
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.resume_reading()

    def _usable_transport(self) -> asyncio.Transport:
        transport = self._transport
        if transport is None or self._closed_by_us or self._lost or self._eof_sent:
            self._check_writable()
        if transport is None or transport.is_closing():
            raise ConnectionLost("connection is closing")
        return transport

    def write(self, data: Buffer) -> None:
        transport = self._usable_transport()
        transport.write(data if data.__class__ is bytes else bytes(data))

    def writelines(self, chunks: Iterable[Buffer]) -> None:
        transport = self._usable_transport()
        transport.writelines([c if c.__class__ is bytes else bytes(c) for c in chunks])

    def write_eof(self) -> None:
        transport = self._transport
        if self._eof_sent or self._closed_by_us or self._lost or transport is None:
            return
        if transport.is_closing():
            return
        self._eof_sent = True
        transport.write_eof()
        if self._eof_received:
            self._auto_closing = True
            transport.close()

    def close(self) -> None:
        if self._closed_by_us:
            return
        self._closed_by_us = True
        self._writable.set()
        if self._transport is not None and not self._lost:
            self._transport.close()

    def abort(self) -> None:
        self._closed_by_us = True
        self._writable.set()
        transport = self._transport
        if self._aborted or self._lost or transport is None:
            return
        self._aborted = True
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # Linger 0: close with RST, so the remote learns at once that the
            # connection broke instead of seeing an orderly EOF.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()

    @property
    def is_closing(self) -> bool:
        transport = self._transport
        return (
            self._closed_by_us
            or self._lost
            or (transport is not None and transport.is_closing())
        )

    def __repr__(self) -> str:
        return f"<TcpConnection {self.local_addr} -> {self.remote_addr}>"


class TcpListener(Listener):
    """A listening TCP socket. Closing it stops accepting; accepted connections stay open."""

    def __init__(self, on_connection: OnConnection) -> None:
        self._on_connection = on_connection
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Future[None]] = set()

    def _accepted(self, conn: TcpConnection) -> None:
        _run_on_connection(self._on_connection, conn, self._tasks)

    @property
    def addrs(self) -> list[Multiaddr]:
        if self._server is None:
            return []
        return [_sockaddr_to_multiaddr(sock.getsockname()) for sock in self._server.sockets]

    async def close(self) -> None:
        # Not Server.wait_closed(): from Python 3.12 it also waits for every
        # accepted connection to close, which is not what closing a listener means.
        if self._server is not None:
            self._server.close()
        await asyncio.sleep(0)


class TcpTransport(Transport):
    """Dials and listens on TCP over IPv4/IPv6; dials ``/dns``, ``/dns4``, ``/dns6`` too.

    All options are keyword-only: ``dial_timeout`` (seconds, then
    :class:`Timeout`), ``backlog``, ``reuse_port`` (SO_REUSEPORT, off by
    default), ``read_buffer_size``, and the write buffer's
    ``write_high_water``/``write_low_water`` (bytes; low defaults to high / 4).
    """

    name = "tcp"

    def __init__(
        self,
        *,
        dial_timeout: float = DEFAULT_DIAL_TIMEOUT,
        backlog: int = DEFAULT_BACKLOG,
        reuse_port: bool = False,
        read_buffer_size: int = DEFAULT_READ_BUFFER_SIZE,
        write_high_water: int = DEFAULT_WRITE_HIGH_WATER,
        write_low_water: int | None = None,
    ) -> None:
        if not dial_timeout > 0:
            raise UsageError(f"dial_timeout must be positive, not {dial_timeout!r}")
        if backlog < 1:
            raise UsageError(f"backlog must be at least 1, not {backlog!r}")
        if read_buffer_size < _MIN_READ_BUFFER_SIZE:
            raise UsageError(f"read_buffer_size must be at least {_MIN_READ_BUFFER_SIZE}")
        low = write_high_water // 4 if write_low_water is None else write_low_water
        if not 0 <= low <= write_high_water:
            raise UsageError("need 0 <= write_low_water <= write_high_water")
        self.dial_timeout = dial_timeout
        self.backlog = backlog
        self.reuse_port = reuse_port
        self.read_buffer_size = read_buffer_size
        self.write_high_water = write_high_water
        self.write_low_water = low

    def _new_connection(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        is_initiator: bool,
        on_made: Callable[[TcpConnection], None] | None = None,
    ) -> TcpConnection:
        return TcpConnection(
            loop,
            is_initiator=is_initiator,
            read_buffer_size=self.read_buffer_size,
            write_high_water=self.write_high_water,
            write_low_water=self.write_low_water,
            on_made=on_made,
        )

    def can_dial(self, addr: Multiaddr) -> bool:
        return _tcp_target(addr, allow_dns=True) is not None

    def can_listen(self, addr: Multiaddr) -> bool:
        return _tcp_target(addr, allow_dns=False) is not None

    async def dial(self, addr: Multiaddr) -> TcpConnection:
        """Connect; ConnectionLost (refused, unreachable, DNS failure) or Timeout."""
        target = _tcp_target(addr, allow_dns=True)
        if target is None:
            raise UsageError(f"TCP transport cannot dial {addr}")
        host, port, family = target
        loop = asyncio.get_running_loop()
        conn = self._new_connection(loop, is_initiator=True)
        try:
            async with asyncio.timeout(self.dial_timeout):
                await loop.create_connection(lambda: conn._protocol, host, port, family=family)
        except TimeoutError as exc:  # before OSError: TimeoutError is an OSError subclass
            raise Timeout(f"dialing {addr} timed out after {self.dial_timeout} s") from exc
        except OSError as exc:
            raise ConnectionLost(f"dialing {addr} failed: {exc}") from exc
        return conn

    async def listen(self, addr: Multiaddr, on_connection: OnConnection) -> TcpListener:
        """Bind and accept; port 0 picks a free port (see ``listener.addrs``)."""
        target = _tcp_target(addr, allow_dns=False)
        if target is None:
            raise UsageError(f"TCP transport cannot listen on {addr}")
        host, port, family = target
        loop = asyncio.get_running_loop()
        listener = TcpListener(on_connection)

        def factory() -> _TcpProtocol:
            conn = self._new_connection(loop, is_initiator=False, on_made=listener._accepted)
            return conn._protocol

        try:
            listener._server = await loop.create_server(
                factory,
                host,
                port,
                family=family,
                backlog=self.backlog,
                reuse_port=self.reuse_port or None,
            )
        except OSError as exc:
            raise UsageError(f"cannot listen on {addr}: {exc}") from exc
        return listener
